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

# Parliament reads only plain documents named *.json (the corpus has get-policy-version
# output without an extension), and aborts the whole run on two policies whose condition
# keys it cannot type ("Unknown data format: ArrayOfARN"). So both tools get the same 1,523
# plain documents: every managed policy but those two.
DOCS="$OUT/managed-docs"
python3 - "$MP" "$DOCS" <<'PY'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst)
skip = {"SageMakerStudioEMRContainersSystemNamespaceRolePolicy", "SageMakerStudioProjectUserRolePolicy"}
for f in sorted(os.listdir(src)):
    if f in skip:
        continue
    text = open(os.path.join(src, f)).read()
    doc = json.loads(text)["PolicyVersion"]["Document"] if text.strip() else None
    with open(os.path.join(dst, f + ".json"), "w") as out:
        out.write(json.dumps(doc) if doc is not None else text)
PY
echo "managed policies: $(ls "$DOCS" | wc -l) documents"

# -i: Parliament exits 1 when it reports findings.
hyperfine -i --warmup 1 --runs "$RUNS" --export-json "$OUT/managed.json" \
  -n gatehouse "$GH scan $DOCS --format json > /dev/null" \
  -n parliament "$V/parliament --directory $DOCS > /dev/null 2>&1"

hyperfine -i --warmup 1 --runs "$RUNS" --export-json "$OUT/exports.json" \
  -n gatehouse "$GH scan $AD --format json > /dev/null" \
  -n parliament "for f in $AD/*.json; do $V/parliament --auth-details-file \$f; done > /dev/null 2>&1" \
  -n cloudsplaining "for f in $AD/*.json; do $V/cloudsplaining scan --input-file \$f --output $OUT/cs --skip-open-report; done > /dev/null 2>&1"

python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
for name in ("managed", "exports"):
    res = json.load(open(f"{out}/{name}.json"))["results"]
    wall = {r["command"]: statistics.median(r["times"]) for r in res}
    cpu = {r["command"]: r["user"] + r["system"] for r in res}
    print(f"{name}: " + "; ".join(
        f"{k} median {wall[k]*1000:.0f} ms wall, {cpu[k]*1000:.0f} ms CPU"
        + ("" if k == "gatehouse" else f" ({wall[k]/wall['gatehouse']:.1f}x wall, {cpu[k]/cpu['gatehouse']:.1f}x CPU)")
        for k in wall))
PY
