#!/usr/bin/env bash
# The test command README.md gives: everything a fresh machine needs that does not need root,
# then every suite.
#
#   1. set-up without root: a Python virtualenv with the end-to-end clients
#      (crates/server/tests/e2e/requirements.txt), `npm ci` for every Node package the tests
#      use, the shared corpus located, PostgreSQL found when it runs here;
#   2. `cargo fmt --check` and `cargo clippy -D warnings`;
#   3. every crate's tests, then the end-to-end suites (real boto3 / AWS CLI / openai / npm
#      oidc-provider clients against a real `gatehouse serve`).
#
# Strict mode (GATEHOUSE_STRICT=1; on by default when CI is set): a test that would skip for a
# missing part (PostgreSQL, the shared corpus, a Node or Python package) fails instead, and
# so does any skipped end-to-end test. Locally, without it, such tests skip loudly.
# `.ci/run` adds only what needs root (Debian packages, starting PostgreSQL) and calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ -n "${CI:-}" ] && [ -z "${GATEHOUSE_STRICT:-}" ]; then
  export GATEHOUSE_STRICT=1
fi
strict() { [ -n "${GATEHOUSE_STRICT:-}" ] && [ "${GATEHOUSE_STRICT}" != 0 ]; }
step() { printf '\n=== %s (%ss)\n' "$1" "$SECONDS"; }
missing() {
  if strict; then
    echo "strict mode (GATEHOUSE_STRICT): $1 is missing: $2" >&2
    exit 1
  fi
  echo "notice: SKIPPING what needs $1 ($2)" >&2
}
# A stamp per installed part: redo the install only when its lock file changed.
fresh() { [ -f "$2" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$(cat "$2")" ]; }
stamp() { sha256sum "$1" | cut -d' ' -f1 >"$2"; }

step "set-up: Python virtualenv for the end-to-end clients"
venv="$repo/target/e2e-venv"
req="crates/server/tests/e2e/requirements.txt"
if ! fresh "$req" "$venv/.stamp"; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  stamp "$req" "$venv/.stamp"
fi
export PATH="$venv/bin:$PATH"

step "set-up: Node packages (npm ci)"
if command -v npm >/dev/null 2>&1; then
  for lock in $(git ls-files '*package-lock.json'); do
    dir=$(dirname "$lock")
    if ! fresh "$lock" "$dir/node_modules/.gatehouse-stamp"; then
      npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
      stamp "$lock" "$dir/node_modules/.gatehouse-stamp"
    fi
  done
else
  missing "Node.js and npm" "install Node.js; the differential and OIDC tests need them"
fi

step "set-up: shared corpus and PostgreSQL"
# The corpus lives beside the repository (../shared/corpus). A clone elsewhere (CI clones
# main into a temporary directory) finds it beside the repository it was cloned from.
if [ -z "${GATEHOUSE_CORPUS:-}" ]; then
  for base in "$repo/.." "$(git config --get remote.origin.url 2>/dev/null || true)/.."; do
    if [ -d "$base/shared/corpus" ]; then
      GATEHOUSE_CORPUS=$(cd "$base/shared/corpus" && pwd)
      export GATEHOUSE_CORPUS
      break
    fi
  done
fi
if [ -n "${GATEHOUSE_CORPUS:-}" ]; then
  echo "shared corpus: $GATEHOUSE_CORPUS"
else
  missing "the shared corpus" "keep ../shared/corpus beside the repository, or set GATEHOUSE_CORPUS"
fi
if [ -z "${GATEHOUSE_TEST_POSTGRES_URL:-}" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  if bash scripts/test-postgres.sh >/dev/null 2>&1; then
    export GATEHOUSE_TEST_POSTGRES_URL="postgres://gatehouse:gatehouse@127.0.0.1:5432/gatehouse_test"
  fi
fi
if [ -n "${GATEHOUSE_TEST_POSTGRES_URL:-}" ]; then
  echo "PostgreSQL: $GATEHOUSE_TEST_POSTGRES_URL"
else
  missing "PostgreSQL" "run scripts/test-postgres.sh as root (apt-get install postgresql first)"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "end-to-end suites"
# The binary the cargo tests just built, driven by real clients.
cargo build --locked -p gatehouse-cli --bin gatehouse
python -m pytest -q -p no:cacheprovider -rs crates/server/tests/e2e

step "done"
