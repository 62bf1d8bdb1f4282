#!/usr/bin/env bash
# Build the Kueue controller (sigs.k8s.io/kueue/cmd/kueue) from its Go module into a cache
# folder outside the repository, next to the control plane's:
#
#   ${SAILVL_CACHE:-$HOME/.cache/sailvl}/kueue/<version>/bin/kueue
#
# Idempotent: a stamped binary is not rebuilt, so a warm run only prints the path.
#
# Mechanism: Kueue's go.mod has no `replace` directives, so `go install module@version`
# builds it as published (like kwok in build.sh). The CRDs the tests install are read
# from the same module in the Go module cache (`go mod download -json` gives its Dir),
# so they always match the controller; `--print-crds` prints that folder.
#
# Usage: tests/cluster/controlplane/build-kueue.sh [--print-bin | --print-crds]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$here/versions.env"

export PATH="/usr/local/go/bin:$PATH"
root="${SAILVL_CACHE:-$HOME/.cache/sailvl}/kueue/$KUEUE_VERSION"
bin="$root/bin"

case "${1:-}" in
  --print-bin) echo "$bin"; exit 0 ;;
  --print-crds)
    command -v go >/dev/null || { echo "build-kueue.sh: go not found" >&2; exit 2; }
    dir="$(GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
    echo "$dir/config/components/crd/bases"
    exit 0 ;;
esac

command -v go >/dev/null || { echo "build-kueue.sh: go not found (expected /usr/local/go/bin/go)" >&2; exit 2; }
export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOMAXPROCS="${GOMAXPROCS:-2}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
jobs="${BUILD_JOBS:-2}"

if [[ -x "$bin/kueue" && -f "$bin/.kueue.stamp" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"
t=$(date +%s)
echo "build-kueue.sh: building kueue $KUEUE_VERSION"
v=sigs.k8s.io/kueue/pkg/version
GOBIN="$bin" go install -p "$jobs" -trimpath \
  -ldflags "-s -w -X $v.GitVersion=$KUEUE_VERSION -X $v.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  "sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION"
echo "$KUEUE_VERSION" >"$bin/.kueue.stamp"
echo "build-kueue.sh: kueue took $(($(date +%s) - t)) s"
echo "$bin"
