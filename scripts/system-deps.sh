#!/usr/bin/env bash
# System tools the tests use that a fresh machine may lack. Installs only what is missing (machines
# run as root). moto_server (the AWS KMS emulator) is preinstalled on these machines and cannot be
# installed here: PyPI is unreachable.
set -euo pipefail
need=()
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)  # promtool checks deploy/monitoring's alert rules
# WireGuard test: userspace wireguard-go (no kernel module here) and wg/wg-quick. Installed with
# --no-install-recommends (below): the recommends pull in a kernel image.
command -v wireguard-go >/dev/null 2>&1 || need+=(wireguard-go)
{ command -v wg >/dev/null 2>&1 && command -v wg-quick >/dev/null 2>&1; } || need+=(wireguard-tools)
# PostgreSQL 15 for the rotation-target test (packages/cluster-tests/src/postgres.ts runs its own
# server from these binaries in a temp dir). Debian would also create and start a "main" cluster on
# port 5432 that nothing uses: a createcluster.d drop-in (read by postgresql-common, not a conffile
# of any package) turns that off before the install.
pg_bin=/usr/lib/postgresql/15/bin
if [ ! -x "$pg_bin/postgres" ] || [ ! -x "$pg_bin/initdb" ] || [ ! -x "$pg_bin/psql" ]; then
  need+=(postgresql-15 postgresql-client-15)
  if [ ! -e /etc/postgresql-common/createcluster.d/coffer-tests.conf ]; then
    mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/coffer-tests.conf
  fi
fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "coffer: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
