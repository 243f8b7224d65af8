#!/usr/bin/env bash
# Times `gatehouse scan` side by side with Parliament and Cloudsplaining on the same files
# (the shared corpus: 1,525 AWS managed policies; Cloudsplaining's two authorization-details
# exports). Needs: a release build (`cargo build --release -p gatehouse-cli`), hyperfine
# (apt), and the peers in a venv:
#   python3 -m venv /tmp/scanners-venv
#   /tmp/scanners-venv/bin/pip install cloudsplaining==0.9.1 parliament==1.6.4
# (a venv because Cloudsplaining wants a newer boto3 than the e2e suite pins).
# Usage: scripts/bench-scanners.sh [CORPUS_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${1:-../shared/corpus}
RUNS=${2:-5}
V=${SCANNERS_VENV:-/tmp/scanners-venv}/bin
GH=target/release/gatehouse
OUT=$(mktemp -d)
[ -x "$GH" ] || { echo "build first: cargo build --release -p gatehouse-cli" >&2; exit 2; }
[ -d "$CORPUS" ] || { echo "corpus $CORPUS not found" >&2; exit 2; }
AD="$CORPUS/authorization-details"
MP="$CORPUS/aws-managed-policies"

# Parliament crashes on two managed policies (exit 1): -i keeps timing them.
hyperfine -i --warmup 1 --runs "$RUNS" --export-json "$OUT/managed.json" \
  -n gatehouse "$GH scan $MP --format json > /dev/null" \
  -n parliament "$V/parliament --directory $MP > /dev/null 2>&1"

hyperfine -i --warmup 1 --runs "$RUNS" --export-json "$OUT/exports.json" \
  -n gatehouse "$GH scan $AD --format json > /dev/null" \
  -n parliament "for f in $AD/*.json; do $V/parliament --auth-details-file \$f; done > /dev/null 2>&1" \
  -n cloudsplaining "for f in $AD/*.json; do $V/cloudsplaining scan --input-file \$f --output $OUT/cs --skip-open-report; done > /dev/null 2>&1"

python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
for name in ("managed", "exports"):
    res = json.load(open(f"{out}/{name}.json"))["results"]
    med = {r["command"]: statistics.median(r["times"]) for r in res}
    gh = med["gatehouse"]
    print(f"{name}: " + ", ".join(
        f"{k} {v*1000:.0f} ms" + ("" if k == "gatehouse" else f" ({v/gh:.0f}x)")
        for k, v in med.items()))
PY
