#!/usr/bin/env bash
# Generates one WireGuard key pair per node name into ./keys (mode 0700; private keys 0600).
# Usage: deploy/wireguard/gen-keys.sh n1 n2 n3
set -euo pipefail
if [ "$#" -eq 0 ]; then echo "usage: $0 NODE..." >&2; exit 2; fi
command -v wg >/dev/null || { echo "wg not found: apt-get install --no-install-recommends wireguard-tools" >&2; exit 1; }
umask 077
mkdir -p keys
for n in "$@"; do
  if [ -e "keys/$n.key" ]; then echo "keys/$n.key exists; not overwriting" >&2; continue; fi
  wg genkey | tee "keys/$n.key" | wg pubkey > "keys/$n.pub"
  echo "keys/$n.key keys/$n.pub"
done
