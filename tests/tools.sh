#!/usr/bin/env bash
# `make tools`: every tool the test suite needs that is not a Python package, built or
# installed into ${SAILVL_CACHE:-$HOME/.cache/sailvl} (outside the repo). Each step is an
# idempotent script that returns at once when its result is cached.
#
# On a cold machine the steps take most of CI's time, and they wait on different things:
# the Go builds on the CPU, the rest mostly on the network. So they run in three lanes at
# once; the steps of a lane run in order (a later one needs an earlier one, or both use
# apt, whose lock the scripts wait for):
#
#   system  Debian packages (node tools, CJK font, promtool), then the images (buildah,
#           PyPI downloads)
#   go      the control plane, real-node binaries and CoreDNS, then Kueue (both with the
#           default Go module and build caches, so Kueue reuses the modules they share)
#   fetch   the MiniDFSCluster (Maven), then the LMDeploy venv (4.3 GB of wheels)
#
# Each step's output goes to $SAILVL_CACHE/logs/tools/<step>.log and its time is printed
# when it ends. A lane stops at its first failing step; the others run to their end; then
# the log tail of every failed step is printed and the exit status is 1.
#
# Usage: tests/tools.sh [--serial]   (--serial: one step at a time, in lane order)
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
logs="${SAILVL_CACHE:-$HOME/.cache/sailvl}/logs/tools"
mkdir -p "$logs"
rm -f "$logs"/*.failed

lane_system=(
  tests/cluster/controlplane/install-node-tools.sh
  tests/install-fonts.sh
  tests/chart/install-tools.sh
  tests/cluster/controlplane/build-images.sh
)
lane_go=(tests/cluster/controlplane/build.sh tests/cluster/controlplane/build-kueue.sh)
lane_fetch=(tests/fixtures/hdfs/build.sh tests/fixtures/lmdeploy/install.sh)

run_lane() { # run_lane LANE SCRIPT...: the scripts in order; stops at the first failure
  local lane=$1 script name t rc
  shift
  for script in "$@"; do
    name="$(echo "${script#tests/}" | tr / -)"
    name="${name%.sh}"
    t=$(date +%s)
    (cd "$repo" && bash "$script") >"$logs/$name.log" 2>&1
    rc=$?
    if ((rc != 0)); then
      echo "tools.sh: [$lane] $script FAILED (exit $rc) after $(($(date +%s) - t)) s"
      echo "$script" >"$logs/$name.failed"
      return 1
    fi
    echo "tools.sh: [$lane] $script took $(($(date +%s) - t)) s ($(tail -n1 "$logs/$name.log"))"
  done
}

start=$(date +%s)
if [[ "${1:-}" == "--serial" ]]; then
  run_lane system "${lane_system[@]}" && run_lane go "${lane_go[@]}" &&
    run_lane fetch "${lane_fetch[@]}"
else
  pids=()
  run_lane system "${lane_system[@]}" & pids+=($!)
  run_lane go "${lane_go[@]}" & pids+=($!)
  run_lane fetch "${lane_fetch[@]}" & pids+=($!)
  for pid in "${pids[@]}"; do wait "$pid"; done
fi

failed=0
for f in "$logs"/*.failed; do
  [[ -e "$f" ]] || continue
  failed=1
  log="${f%.failed}.log"
  echo "tools.sh: ---- last 30 lines of $log ($(cat "$f")) ----"
  tail -n 30 "$log"
done
if ((failed)); then
  echo "tools.sh: FAILED after $(($(date +%s) - start)) s (logs in $logs)"
  exit 1
fi
echo "tools.sh: all tools ready in $(($(date +%s) - start)) s (logs in $logs)"
