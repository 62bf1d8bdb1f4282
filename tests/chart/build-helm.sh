#!/usr/bin/env bash
# Build the helm CLI from the Go module proxy (only needed where helm-python-sdk cannot
# load; the chart tests prefer the SDK). Idempotent: an existing binary is reused.
#   out: ${SAILVL_CACHE:-$HOME/.cache/sailvl}/helm/<version>/helm  (+ BUILD_SECONDS)
# The version must match HELM_VERSION in tests/chart/helpers.py.
set -euo pipefail

VERSION="${HELM_VERSION:-v3.17.3}"
CACHE="${SAILVL_CACHE:-$HOME/.cache/sailvl}"
DEST="$CACHE/helm/$VERSION"
if [ -x "$DEST/helm" ]; then
  echo "$DEST/helm"
  exit 0
fi
command -v go >/dev/null || { echo "go not found (install Go >= 1.23)" >&2; exit 1; }
mkdir -p "$DEST"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)
# A throwaway module that requires helm: `go install pkg@version` refuses modules with
# replace directives, a wrapper module does not.
cd "$WORK"
go mod init sailvl.local/helmbuild >/dev/null 2>&1
go get "helm.sh/helm/v3@$VERSION" >/dev/null
CGO_ENABLED=0 go build -p "${BUILD_JOBS:-2}" -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$VERSION" \
  -o "$DEST/helm" helm.sh/helm/v3/cmd/helm
echo $(( $(date +%s) - start )) > "$DEST/BUILD_SECONDS"
"$DEST/helm" version --short
echo "$DEST/helm (built in $(cat "$DEST/BUILD_SECONDS") s)"
