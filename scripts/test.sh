#!/usr/bin/env bash
# The test command README.md gives. Runs every crate's tests; tests that need PostgreSQL
# use GATEHOUSE_TEST_POSTGRES_URL and print a notice and skip when it is unset.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${GATEHOUSE_TEST_POSTGRES_URL:-}" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  if bash scripts/test-postgres.sh >/dev/null 2>&1; then
    export GATEHOUSE_TEST_POSTGRES_URL="postgres://gatehouse:gatehouse@127.0.0.1:5432/gatehouse_test"
  fi
fi
cargo test --workspace --locked
