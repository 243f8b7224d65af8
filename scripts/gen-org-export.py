#!/usr/bin/env python3
"""Builds an organization-sized `aws iam get-account-authorization-details` export from one
account's export: N copies of the account, each under its own 12-digit account ids (every
occurrence of the id of an account holding principals replaced, so ARNs, trust policies and
resource patterns move with it), with the AWS managed policies (`arn:aws:iam::aws:policy/...`) listed once and
shared, as an export covering many accounts would list them.

Usage:
  scripts/gen-org-export.py N OUT.json [--source FILE]
      one file holding every account (what `gatehouse scan` and Cloudsplaining read);
  scripts/gen-org-export.py N OUTDIR --split [--source FILE]
      one file per account (OUTDIR/accounts/ACCOUNT.json) plus AWS Organizations data in
      OUTDIR/organizations/ (the layout `gatehouse scan --org` reads; see README.md).

The source defaults to ../shared/corpus/authorization-details/example.json. Copy i of the
source's most frequent account is 100000000000 + i, of the next 200000000000 + i, and so on,
so runs are reproducible.
"""

import argparse
import json
import os
import re
import sys

DEFAULT_SOURCE = os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "corpus", "authorization-details", "example.json"
)


def source_accounts(export):
    """The accounts of the export's users, groups and roles, most frequent first."""
    counts = {}
    for key in ("UserDetailList", "GroupDetailList", "RoleDetailList"):
        for entry in export.get(key, []):
            parts = entry.get("Arn", "").split(":")
            if len(parts) > 4 and parts[4]:
                counts[parts[4]] = counts.get(parts[4], 0) + 1
    if not counts:
        sys.exit("the source export has no users, groups or roles with ARNs")
    return sorted(counts, key=lambda a: -counts[a])


def account_ids(n, k=0):
    """The ids of copy 0..n-1 of the export's k-th account (100000000000 + i for the first)."""
    return ["%012d" % ((k + 1) * 100000000000 + i) for i in range(n)]


def split_managed(export):
    """(AWS managed policies, the rest of the export as text with the managed ones removed)."""
    aws = [p for p in export.get("Policies", []) if p.get("Arn", "").startswith("arn:aws:iam::aws:")]
    own = dict(export)
    own["Policies"] = [p for p in export.get("Policies", []) if p not in aws]
    return aws, json.dumps(own)


def copy_for(text, sources, index):
    """Copy `index`: each source account's id replaced by its copy's, ids that must be unique
    suffixed."""
    for k, src in enumerate(sources):
        text = re.sub(r"\b%s\b" % src, account_ids(index + 1, k)[index], text)
    copy = json.loads(text)
    for key, id_key in (("UserDetailList", "UserId"), ("GroupDetailList", "GroupId"),
                        ("RoleDetailList", "RoleId")):
        for entry in copy.get(key, []):
            if id_key in entry:
                entry[id_key] = "%s%06d" % (entry[id_key][:15], index)
    return copy


def merged(export, n):
    sources = source_accounts(export)
    aws, text = split_managed(export)
    out = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": list(aws)}
    for i in range(n):
        copy = copy_for(text, sources, i)
        for key in out:
            out[key].extend(copy.get(key, []))
    return out


def organization(accounts):
    """AWS Organizations data for the accounts: one root, two OUs, an SCP on one of them."""
    root = "r-ex01"
    ous = [("ou-ex01-prod0001", "prod"), ("ou-ex01-sand0001", "sandbox")]
    mgmt = accounts[0]
    listing = {
        "Accounts": [
            {"Id": a, "Arn": "arn:aws:organizations::%s:account/o-example0001/%s" % (mgmt, a),
             "Email": "aws+%s@example.com" % a, "Name": "account-%s" % a, "Status": "ACTIVE"}
            for a in accounts
        ]
    }
    roots = {"Roots": [{"Id": root, "Arn": "arn:aws:organizations::%s:root/o-example0001/%s" % (mgmt, root),
                        "Name": "Root", "PolicyTypes": [{"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"}]}]}
    children = {root: [{"Id": ou, "Name": name, "Arn": "arn:aws:organizations::%s:ou/o-example0001/%s" % (mgmt, ou)}
                       for ou, name in ous]}
    parents = {}
    for i, a in enumerate(accounts[1:]):
        parents.setdefault(ous[i % 2][0], []).append(a)
    return mgmt, listing, roots, children, parents


def write_split(export, n, outdir):
    sources = source_accounts(export)
    aws, text = split_managed(export)
    accounts = account_ids(n)
    os.makedirs(os.path.join(outdir, "accounts"), exist_ok=True)
    for i, account in enumerate(accounts):
        copy = copy_for(text, sources, i)
        copy["Policies"] = list(aws) + copy["Policies"]
        with open(os.path.join(outdir, "accounts", account + ".json"), "w") as f:
            json.dump(copy, f)
    mgmt, listing, roots, children, parents = organization(accounts)
    org = os.path.join(outdir, "organizations")
    os.makedirs(os.path.join(org, "ous"), exist_ok=True)
    os.makedirs(os.path.join(org, "policies"), exist_ok=True)
    dump = lambda path, value: json.dump(value, open(os.path.join(org, path), "w"), indent=1)
    dump("describe-organization.json", {"Organization": {
        "Id": "o-example0001", "MasterAccountId": mgmt, "FeatureSet": "ALL",
        "Arn": "arn:aws:organizations::%s:organization/o-example0001" % mgmt}})
    dump("list-accounts.json", listing)
    dump("list-roots.json", roots)
    for parent, ous in children.items():
        dump(os.path.join("ous", parent + ".json"), {"OrganizationalUnits": ous})
        dump(os.path.join("ous", parent + ".accounts.json"), {"Accounts": [mgmt_entry(listing, mgmt)]})
    for ou, accts in parents.items():
        dump(os.path.join("ous", ou + ".json"), {"OrganizationalUnits": []})
        dump(os.path.join("ous", ou + ".accounts.json"),
             {"Accounts": [a for a in listing["Accounts"] if a["Id"] in accts]})
    full = {"Id": "p-FullAWSAccess", "Name": "FullAWSAccess", "AwsManaged": True,
            "Type": "SERVICE_CONTROL_POLICY",
            "Content": json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"}]})}
    deny = {"Id": "p-denybedrock1", "Name": "sandbox-no-bedrock", "AwsManaged": False,
            "Type": "SERVICE_CONTROL_POLICY",
            "Content": json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Deny", "Action": "bedrock:*", "Resource": "*"}]})}
    root = roots["Roots"][0]["Id"]
    ous = children[root]
    targets = {"p-FullAWSAccess": [root] + [ou["Id"] for ou in ous] + accounts[1:],
               "p-denybedrock1": [ous[1]["Id"]]}
    for pol in (full, deny):
        summary = {k: pol[k] for k in ("Id", "Name", "AwsManaged", "Type")}
        dump(os.path.join("policies", pol["Id"] + ".json"),
             {"Policy": {"PolicySummary": summary, "Content": pol["Content"]}})
        dump(os.path.join("policies", pol["Id"] + ".targets.json"),
             {"Targets": [{"TargetId": t, "Type": "ORGANIZATIONAL_UNIT" if t.startswith("ou-") else "ROOT"}
                          for t in targets[pol["Id"]]]})


def mgmt_entry(listing, mgmt):
    return next(a for a in listing["Accounts"] if a["Id"] == mgmt)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("accounts", type=int)
    ap.add_argument("out")
    ap.add_argument("--source", default=DEFAULT_SOURCE)
    ap.add_argument("--split", action="store_true")
    a = ap.parse_args()
    if a.accounts < 1:
        sys.exit("N must be at least 1")
    export = json.load(open(a.source))
    if a.split:
        write_split(export, a.accounts, a.out)
    else:
        with open(a.out, "w") as f:
            json.dump(merged(export, a.accounts), f)


if __name__ == "__main__":
    main()
