#!/usr/bin/env bash
# Install the Debian packages a real worker node and the image builds need, idempotently:
#
#   containerd + runc            the container runtime kubelet talks to (CRI)
#   containernetworking-plugins  bridge, host-local, portmap, loopback (/usr/lib/cni)
#   iptables + conntrack         kube-proxy's iptables mode and the CNI masquerade rule
#   mmdebstrap                   the Debian bookworm root file system of the base image
#   buildah + uidmap             builds the project's Dockerfiles without a Docker daemon
#   gcc + libc6-dev              the pause image is a static C binary made here
#   prometheus                   the server the monitoring test runs (tests/fixtures/
#                                prometheus.py), and promtool for the chart's rules
#
# When every package is already installed nothing runs (no `apt-get update`), so a warm
# `make tools` costs a dpkg query. apt waits for another apt's lock instead of failing.
set -euo pipefail

pkgs=(containerd runc containernetworking-plugins iptables conntrack mmdebstrap buildah
  uidmap gcc libc6-dev prometheus)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-node-tools.sh: all present (${pkgs[*]})"
  exit 0
fi

SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
t=$(date +%s)
lock=(-o DPkg::Lock::Timeout=600)
$SUDO apt-get "${lock[@]}" update -qq
# --no-install-recommends: no podman/slirp/crun extras; runc is named explicitly.
$SUDO apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}"
# The package starts containerd under systemd where there is one; the harness runs its
# own containerd with its own socket and state, so the system one is not needed.
$SUDO systemctl disable --now containerd >/dev/null 2>&1 || true
# Likewise the packaged Prometheus service: the tests start their own, on a free port.
$SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
echo "install-node-tools.sh: installed ${missing[*]} in $(($(date +%s) - t)) s"
