#!/usr/bin/env bash
# Build the test control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok) and the real worker node's Go parts (kubelet, kube-proxy,
# CoreDNS) from Go modules into a cache folder outside the repository:
#
#   ${SAILVL_CACHE:-$HOME/.cache/sailvl}/controlplane/<versions>/bin
#
# Idempotent: a binary that is already there (with its stamp) is not rebuilt, so a warm
# run only prints the cache path. Prints the wall time of each step.
#
# Mechanism (no Docker, only the Go module proxy):
# - etcd: go.etcd.io/etcd/server/v3 has `replace` directives in its go.mod, which Go
#   ignores unless it is the main module, so it is built from a throwaway module that
#   requires it; its sibling modules then resolve to their published versions.
# - kube-*: k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) at v0.0.0
#   and replaces them with ./staging/src/...; a throwaway module requires
#   k8s.io/kubernetes and replaces every staging module named in the release's own
#   go.mod with its published v0.<minor>.<patch>. The five commands (apiserver,
#   controller-manager, scheduler, kubelet, kube-proxy) are built in one `go build` so
#   shared packages compile once (kubelet + kube-proxy add ~130 packages to ~1,700);
#   version ldflags make /version report the release.
# - kwok, CoreDNS: `go install <module>/cmd@version` (no replace directives).
# Concurrent runs (two `make tools`) serialise on a lock file in the cache folder.
#
# Usage: tests/cluster/controlplane/build.sh [--print-bin]
#   --print-bin   only print the bin folder path (build nothing)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$here/versions.env"

export PATH="/usr/local/go/bin:$PATH"
# "-node": the kube build includes kubelet + kube-proxy (older caches lacked them).
key="etcd-${ETCD_VERSION}_kube-${KUBE_VERSION}-node_kwok-${KWOK_VERSION}_coredns-${COREDNS_VERSION}"
root="${SAILVL_CACHE:-$HOME/.cache/sailvl}/controlplane/$key"
bin="$root/bin"

if [[ "${1:-}" == "--print-bin" ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: go not found (expected /usr/local/go/bin/go)" >&2; exit 2; }

# Static binaries, module mode, small output; two cores on CI.
export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOMAXPROCS="${GOMAXPROCS:-2}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
jobs="${BUILD_JOBS:-2}"
mkdir -p "$bin" "$root/src"
exec 9>"$root/.build.lock"
flock 9

t_all=$(date +%s)
step() { # step NAME: prints elapsed seconds since the step started
  echo "build.sh: $1 took $(($(date +%s) - $2)) s"
}
have() { # have NAME...: all binaries present and stamped with this key
  local n
  for n in "$@"; do [[ -x "$bin/$n" && -f "$bin/.$n.stamp" ]] || return 1; done
}
stamp() { local n; for n in "$@"; do echo "$key" >"$bin/.$n.stamp"; done; }

build_kwok() {
  have kwok && return 0
  local t; t=$(date +%s)
  echo "build.sh: building kwok $KWOK_VERSION"
  GOBIN="$bin" go install -p "$jobs" -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  stamp kwok
  step "kwok" "$t"
}

build_coredns() {
  have coredns && return 0
  local t; t=$(date +%s)
  echo "build.sh: building coredns $COREDNS_VERSION"
  GOBIN="$bin" go install -p "$jobs" -trimpath -ldflags "-s -w" \
    "github.com/coredns/coredns@$COREDNS_VERSION"
  stamp coredns
  step "coredns" "$t"
}

build_etcd() {
  have etcd && return 0
  local t d; t=$(date +%s); d="$root/src/etcd"
  echo "build.sh: building etcd $ETCD_VERSION"
  rm -rf "$d" && mkdir -p "$d"
  (
    cd "$d"
    go mod init sailvl.local/etcd-build >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go build -p "$jobs" -trimpath -o "$bin/etcd.tmp" \
      -ldflags "-s -w" go.etcd.io/etcd/server/v3
  )
  mv "$bin/etcd.tmp" "$bin/etcd"
  stamp etcd
  step "etcd" "$t"
}

build_kube() {
  have kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy && return 0
  local t d gomod staging minor; t=$(date +%s); d="$root/src/kube"
  echo "build.sh: building kube-apiserver/controller-manager/scheduler/kubelet/proxy $KUBE_VERSION"
  rm -rf "$d" && mkdir -p "$d/out"
  staging="v0.${KUBE_VERSION#v1.}"   # v1.36.3 -> v0.36.3
  minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
  [[ -f "$gomod" ]] || { echo "build.sh: cannot read go.mod of k8s.io/kubernetes@$KUBE_VERSION" >&2; exit 1; }
  (
    cd "$d"
    {
      echo "module sailvl.local/kube-build"
      echo
      echo "go $(sed -n 's/^go \([0-9.]*\).*/\1/p' "$gomod" | head -1)"
      echo
      # Keep the release's godebug defaults (they are main-module settings).
      grep '^godebug' "$gomod" || true
      echo
      echo "require k8s.io/kubernetes $KUBE_VERSION"
      echo
      # Every `k8s.io/x => ./staging/src/k8s.io/x` becomes `k8s.io/x => k8s.io/x v0.N.P`.
      sed -n 's#^[[:space:]]*\(replace[[:space:]]*\)\{0,1\}\(k8s\.io/[^[:space:]]*\) => \./staging/.*#\2#p' "$gomod" |
        sort -u | while read -r m; do echo "replace $m => $m $staging"; done
    } >go.mod
    echo "build.sh: $(grep -c '^replace' go.mod) staging replaces -> $staging"
    go mod download k8s.io/kubernetes
    pkg=k8s.io/component-base/version
    cgo=k8s.io/client-go/pkg/version
    date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    ld="-s -w"
    for p in "$pkg" "$cgo"; do
      ld+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
      ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
    done
    go build -p "$jobs" -trimpath -ldflags "$ld" -o out/ \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubelet \
      k8s.io/kubernetes/cmd/kube-proxy
  )
  mv "$d/out/"* "$bin/"
  stamp kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy
  step "kube" "$t"
}

build_kwok
build_etcd
build_kube
build_coredns
echo "build.sh: control plane ready in $(($(date +%s) - t_all)) s"
echo "$bin"
