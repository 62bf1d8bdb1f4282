#!/bin/sh
# Entrypoint wrapper for the Ascend image: CANN's libraries and tools are only found once
# its set_env.sh has run (the base image sources it in interactive shells only, which a
# pod's exec-form command never starts). Then run the given command in its place.
set -e
for f in /usr/local/Ascend/ascend-toolkit/set_env.sh /usr/local/Ascend/nnal/atb/set_env.sh; do
  # shellcheck disable=SC1090
  if [ -f "$f" ]; then . "$f"; fi
done
exec "$@"
