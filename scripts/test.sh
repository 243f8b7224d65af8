#!/usr/bin/env bash
# The test command README.md gives. Runs every crate's tests, then the end-to-end suites
# (real boto3 / AWS CLI clients against a real `gatehouse serve`). Tests that need
# PostgreSQL use GATEHOUSE_TEST_POSTGRES_URL and print a notice and skip when it is unset;
# suites whose clients are missing (Node.js packages, Python packages) say so and skip.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${GATEHOUSE_TEST_POSTGRES_URL:-}" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  if bash scripts/test-postgres.sh >/dev/null 2>&1; then
    export GATEHOUSE_TEST_POSTGRES_URL="postgres://gatehouse:gatehouse@127.0.0.1:5432/gatehouse_test"
  fi
fi
cargo test --workspace --locked

# End-to-end: the binary the cargo tests just built, driven by real clients.
cargo build --locked -p gatehouse-cli --bin gatehouse
if python3 -c 'import pytest, boto3' 2>/dev/null; then
  python3 -m pytest -q -p no:cacheprovider crates/server/tests/e2e
else
  echo "notice: pytest/boto3 not installed (pip install -r crates/server/tests/e2e/requirements.txt); skipping end-to-end suites"
fi
