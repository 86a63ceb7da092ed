#!/bin/sh
# Entry point of the Coffer image: turns Docker/Compose secrets into the variables `coffer server`
# reads, then execs the CLI, so the node process itself receives SIGTERM (leadership hand-over and
# a clean stop; with compose's `init: true` a tiny init is PID 1 and forwards it).
#
# For each variable V below, V_FILE=/run/secrets/NAME sets V to that file's content (trailing
# newlines stripped), so keys never appear in the image, the compose file or `docker inspect`.
# Setting both V and V_FILE is refused: which one wins would be a guess. The _FILE variables are
# removed before exec because the server warns about every COFFER_* variable it does not know.
set -eu

for var in COFFER_CLUSTER_KEY COFFER_PREVIOUS_CLUSTER_KEY COFFER_LOCAL_MASTER_KEY COFFER_BOOTSTRAP_TOKEN; do
  file_var="${var}_FILE"
  eval "file=\${$file_var:-}"
  [ -n "$file" ] || continue
  eval "direct=\${$var+set}"
  if [ "$direct" = set ]; then
    echo "coffer-entrypoint: $var and $file_var are both set; set one of them" >&2
    exit 2
  fi
  if [ ! -f "$file" ] || [ ! -r "$file" ]; then
    echo "coffer-entrypoint: $file_var: $file does not exist or is not readable by uid $(id -u)" >&2
    exit 2
  fi
  value=$(cat "$file")
  export "$var=$value"
  unset "$file_var"
done
unset file direct value 2>/dev/null || true

# ENTRYPOINT_COFFER_BIN exists for the test of this script (packages/cluster-tests/test/deploy-assets.test.ts).
exec "${ENTRYPOINT_COFFER_BIN:-/opt/coffer/bin/coffer}" "$@"
