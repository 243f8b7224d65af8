#!/usr/bin/env bash
# Start the Debian PostgreSQL cluster (installing does not start it) and make sure the
# test role and database exist. Idempotent; used by .ci/run and by developers.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "notice: PostgreSQL is not installed; run: apt-get install -y postgresql" >&2
  exit 1
fi
ver=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
pg_ctlcluster "$ver" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  if su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1; then break; fi
  sleep 1
done
su postgres -c "psql -qAtc \"select 1 from pg_roles where rolname='gatehouse'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"create role gatehouse login password 'gatehouse' createdb\""
su postgres -c "psql -qAtc \"select 1 from pg_database where datname='gatehouse_test'\"" | grep -q 1 ||
  su postgres -c "psql -qc 'create database gatehouse_test owner gatehouse'"
echo "PostgreSQL $ver is up: postgres://gatehouse:gatehouse@127.0.0.1:5432/gatehouse_test"
