#!/usr/bin/env bash
# Build the images a real worker node runs, with no registry and no Docker daemon, into a
# cache folder outside the repository:
#
#   ${SAILVL_CACHE:-$HOME/.cache/sailvl}/images/
#     rootfs-bookworm-<hash>.tar   Debian bookworm root file system (mmdebstrap)
#     buildah/                     buildah's storage: the base image and every layer
#     oci/<name>.tar (+ .id)       OCI archives the harness imports into containerd
#   ${SAILVL_CACHE}/pip/           pip's cache, the same as the venv's (Makefile
#                                  PIP_CACHE_DIR), mounted into the RUN steps that install
#
# Images (all tagged localhost/..., never pulled: pods use imagePullPolicy IfNotPresent):
#   sailvl/base:bookworm   the root file system as a one-layer image; the project's
#                          Dockerfiles take it through their BASE build argument (the
#                          same Debian bookworm + Python 3.11 as python:3.11-slim-bookworm)
#   pause:3.10             the pod sandbox: a 700 KB static C binary built here
#   sailvl/operator:local  images/operator.Dockerfile
#   sailvl/job-cpu:local   images/job-cpu.Dockerfile (caption, train, eval on CPU)
#
# Warm runs: the root file system is reused when its package list is unchanged, buildah
# reuses every layer whose inputs are unchanged (--layers), and an archive is rewritten
# only when its image id changed. pip's cache keeps the wheels pip builds from sdists;
# it keeps downloads only where the index's responses carry Cache-Control, which the
# proxy of the project's machines strips (so a changed requirement layer downloads again).
# Each Dockerfile's `build` stage is tagged too (localhost/sailvl/<name>-build:cache), so
# that after a successful build every image no tag reaches (the layers of earlier builds:
# 40 GB after a day of rebuilds) is pruned while the layers of the current ones stay.
# Prints each step's time and the storage's size.
#
# Usage: tests/cluster/controlplane/build-images.sh [--print-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${SAILVL_CACHE:-$HOME/.cache/sailvl}/images"
if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$cache/oci"
  exit 0
fi
for tool in mmdebstrap buildah gcc; do
  command -v "$tool" >/dev/null || {
    echo "build-images.sh: $tool not found: run tests/cluster/controlplane/install-node-tools.sh" >&2
    exit 2
  }
done
pipcache="${SAILVL_CACHE:-$HOME/.cache/sailvl}/pip"
mkdir -p "$cache"/{oci,buildah/root,buildah/runroot} "$pipcache"
exec 9>"$cache/.build.lock"
flock 9

# crun (buildah's default runtime) rejects the hybrid cgroup layout of the CI machines:
# RUN steps use runc. Host network: RUN steps reach PyPI without a CNI bridge of buildah's.
bh=(buildah --root "$cache/buildah/root" --runroot "$cache/buildah/runroot" --storage-driver overlay)
bud=(bud --runtime /usr/sbin/runc --network host --layers --format oci)
t_all=$(date +%s)
step() { echo "build-images.sh: $1 took $(($(date +%s) - $2)) s"; }
exists() { "${bh[@]}" inspect --type image "$1" >/dev/null 2>&1; }
# A build that died (a full disk, a kill) leaves its working container behind, and that
# container pins its image against the prune below: remove them (the lock is held, so no
# other build of this storage is running).
"${bh[@]}" rm --all >/dev/null 2>&1 || true

# --- 1. base: Debian bookworm with Python 3.11 -------------------------------------------
base_pkgs="python3,python3-venv,python-is-python3,ca-certificates"
rootfs="$cache/rootfs-bookworm-$(echo "$base_pkgs" | md5sum | cut -c1-8).tar"
base=localhost/sailvl/base:bookworm
if [[ ! -f "$rootfs" ]]; then
  t=$(date +%s)
  # minbase + Python; docs, man pages and locales left out (as the slim images do).
  mmdebstrap --quiet --variant=minbase --include="$base_pkgs" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "${rootfs%.tar}.tmp.tar" http://deb.debian.org/debian # the suffix picks tar
  mv "${rootfs%.tar}.tmp.tar" "$rootfs"
  "${bh[@]}" rmi -f "$base" >/dev/null 2>&1 || true
  step "mmdebstrap bookworm" "$t"
fi
if ! exists "$base"; then
  t=$(date +%s)
  c=$("${bh[@]}" from scratch)
  "${bh[@]}" add "$c" "$rootfs" / >/dev/null # ADD of a tar extracts it
  "${bh[@]}" config --cmd '["/bin/bash"]' \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 "$c"
  "${bh[@]}" commit -q "$c" "$base" >/dev/null
  "${bh[@]}" rm "$c" >/dev/null
  step "base image" "$t"
fi

# --- 2. pause: registry.k8s.io/pause is out of reach -------------------------------------
pause=localhost/pause:3.10
if ! exists "$pause"; then
  t=$(date +%s)
  gcc -Os -static -o "$cache/pause" "$here/pause.c"
  strip "$cache/pause"
  c=$("${bh[@]}" from scratch)
  "${bh[@]}" copy "$c" "$cache/pause" /pause >/dev/null
  "${bh[@]}" config --entrypoint '["/pause"]' --user 65535:65535 "$c"
  "${bh[@]}" commit -q "$c" "$pause" >/dev/null
  "${bh[@]}" rm "$c" >/dev/null
  step "pause image" "$t"
fi

# --- 3. the project's Dockerfiles ---------------------------------------------------------
# The RUN steps see the machine's CA bundle (some networks intercept TLS, and pip must
# trust their CA) and the pip cache; both are build-time mounts, never in a layer.
ca=/etc/ssl/certs/ca-certificates.crt
printf '[global]\ncert = %s\n' "$ca" >"$cache/pip.conf"
mounts=(-v "$pipcache:/root/.cache/pip" -v "$cache/pip.conf:/etc/pip.conf:ro")
[[ -f $ca ]] && mounts+=(-v "$ca:$ca:ro")
build() { # build NAME DOCKERFILE: its `build` stage (tagged: kept by the prune), then all
  local t; t=$(date +%s)
  "${bh[@]}" "${bud[@]}" -q "${mounts[@]}" --build-arg "BASE=$base" --target build \
    -f "$repo/images/$2" -t "localhost/sailvl/$1-build:cache" "$repo" >/dev/null
  "${bh[@]}" "${bud[@]}" -q "${mounts[@]}" --build-arg "BASE=$base" \
    -f "$repo/images/$2" -t "localhost/sailvl/$1:local" "$repo" >/dev/null
  step "buildah bud $2" "$t"
}
build operator operator.Dockerfile
build job-cpu job-cpu.Dockerfile

# --- 4. OCI archives for containerd (rewritten only when the image changed) -------------
for img in pause:3.10 sailvl/base:bookworm sailvl/operator:local sailvl/job-cpu:local; do
  name="${img//\//-}"; name="${name%%:*}"
  id=$("${bh[@]}" inspect --type image --format '{{.FromImageID}}' "localhost/$img")
  [[ -f "$cache/oci/$name.tar" && "$(cat "$cache/oci/$name.id" 2>/dev/null)" == "$id" ]] && continue
  t=$(date +%s)
  rm -f "$cache/oci/$name.tar"
  "${bh[@]}" push -q "localhost/$img" "oci-archive:$cache/oci/$name.tar:localhost/$img"
  echo "$id" >"$cache/oci/$name.id"
  step "archive $img ($(du -m "$cache/oci/$name.tar" | cut -f1) MB)" "$t"
done

# --- 5. prune what no tag reaches --------------------------------------------------------
# One `rmi --prune` removes the untagged images no other image builds on; their parents
# become such images in turn, so it repeats until nothing is left to remove.
t=$(date +%s)
for _ in $(seq 30); do
  [[ -n "$("${bh[@]}" rmi --prune 2>/dev/null)" ]] || break
done
step "prune ($(du -sh "$cache/buildah" | cut -f1) of storage left)" "$t"
"${bh[@]}" images
echo "build-images.sh: images ready in $(($(date +%s) - t_all)) s"
echo "$cache/oci"
