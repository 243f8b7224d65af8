"""The analyzer against a running Gatehouse: `gatehouse policy generate` reads the audit log
the server wrote for real boto3 calls and proposes a policy of exactly what was done."""
import json
import os
import subprocess
import sys
import tempfile
import time

import botocore.exceptions
import pyotp
import pytest

from conftest import ROOT_KEY_ID, ROOT_SECRET, Signer, gatehouse_bin, raw_call

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["iam:GetUser", "iam:ListUsers", "iam:ListGroups"], "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:CreateGroup", "Resource": "arn:*:iam::*:group/team-*"},
    ],
}


def test_generate_from_the_audit_log(gatehouse, iam):
    arn = iam.create_user(UserName="alice")["User"]["Arn"]
    iam.put_user_policy(UserName="alice", PolicyName="work", PolicyDocument=json.dumps(POLICY))
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    alice = gatehouse.client("iam", key["AccessKeyId"], key["SecretAccessKey"])
    alice.list_users()
    alice.get_user(UserName="alice")
    alice.create_group(GroupName="team-a")
    with pytest.raises(botocore.exceptions.ClientError):
        alice.create_user(UserName="mallory")  # refused: must not appear in the policy

    out = gatehouse.cli("policy", "generate", "--principal", arn, "--since", "1h")
    assert out.returncode == 0, out.stderr
    policy = json.loads(out.stdout)
    granted = {}
    for st in policy["Statement"]:
        assert st["Effect"] == "Allow"
        for a in st["Action"]:
            granted.setdefault(a, set()).update(st["Resource"])
    assert set(granted) == {"iam:ListUsers", "iam:GetUser", "iam:CreateGroup"}, policy
    assert granted["iam:GetUser"] == {arn}
    assert all(r.endswith(":group/team-a") for r in granted["iam:CreateGroup"]), policy
    assert "iam:ListGroups" not in granted  # allowed, but never used

    # The generated policy is valid, and replacing the inline policy with it keeps alice working.
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(policy, f)
    try:
        v = subprocess.run([gatehouse_bin(), "policy", "validate", f.name], capture_output=True, text=True)
        assert v.returncode == 0, v.stdout + v.stderr
    finally:
        os.unlink(f.name)
    iam.put_user_policy(UserName="alice", PolicyName="work", PolicyDocument=json.dumps(policy))
    alice.get_user(UserName="alice")
    with pytest.raises(botocore.exceptions.ClientError):
        alice.list_groups()

    # Someone who did nothing gets no policy and exit 1.
    out = gatehouse.cli("policy", "generate", "--principal", arn.replace("alice", "nobody"), "--since", "1h")
    assert out.returncode == 1
    assert "made no allowed call" in out.stderr


INVOKE_LLAMA = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ai:InvokeModel", "Resource": "arn:gatehouse:ai:*:*:model/llama-*"}],
}
BEDROCK_LIKE_ADMIN = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ai:*", "Resource": "*"}],
}


def test_who_can_what_can_and_review_read_the_store(gatehouse, iam):
    bob = iam.create_user(UserName="bob")["User"]["Arn"]
    iam.put_user_policy(UserName="bob", PolicyName="invoke", PolicyDocument=json.dumps(INVOKE_LLAMA))
    iam.create_group(GroupName="ops")
    iam.put_group_policy(GroupName="ops", PolicyName="all-ai", PolicyDocument=json.dumps(BEDROCK_LIKE_ADMIN))
    carol = iam.create_user(UserName="carol")["User"]["Arn"]
    iam.add_user_to_group(GroupName="ops", UserName="carol")
    iam.create_user(UserName="dave")
    model = "arn:gatehouse:ai:local:111122223333:model/llama-3-8b"

    out = gatehouse.cli("who-can", "ai:InvokeModel", model, "--format", "json")
    assert out.returncode == 0, out.stderr
    who = {p["arn"]: p["access"] for p in json.loads(out.stdout)["principals"]}
    assert who == {bob: "allowed", carol: "allowed"}, who

    out = gatehouse.cli("who-can", "ai:UpdateGuardrail", "arn:gatehouse:ai:local:111122223333:guardrail/g", "--format", "json")
    assert [p["arn"] for p in json.loads(out.stdout)["principals"]] == [carol]

    out = gatehouse.cli("what-can", bob)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{bob} can ai:InvokeModel on arn:gatehouse:ai:*:*:model/llama-* when always\n"

    out = gatehouse.cli("review", "--format", "json")
    assert out.returncode == 0, out.stderr
    review = json.loads(out.stdout)
    changers = [a["principal"] for a in review["guardrail_changes"]]
    assert changers == [carol]
    assert any("group ops/all-ai" in t for a in review["guardrail_changes"] for t in a["through"])


def test_review_by_person_reads_the_store(gatehouse, iam, tmp_path):
    """Gatehouse's own users join the review by person: a user named by email is a person,
    a user without one is listed as unmatched until the groups file names who is behind it,
    and a user who can invoke nothing is nobody's grant."""
    alice = iam.create_user(UserName="alice@example.com")["User"]["Arn"]
    iam.put_user_policy(UserName="alice@example.com", PolicyName="invoke", PolicyDocument=json.dumps(INVOKE_LLAMA))
    batch = iam.create_user(UserName="batch")["User"]["Arn"]
    iam.put_user_policy(UserName="batch", PolicyName="invoke", PolicyDocument=json.dumps(INVOKE_LLAMA))
    iam.create_user(UserName="erin@example.com")

    def people(*extra):
        out = gatehouse.cli("review", "--by-person", *extra, "--format", "json")
        assert out.returncode == 0, out.stderr
        r = json.loads(out.stdout)
        return ({p["person"]: [(g["cloud"], g["access"], g["identity"]) for g in p["grants"]] for p in r["people"]},
                [(g["cloud"], g["identity"]) for g in r["unmatched"]])

    found, unmatched = people()
    assert found == {"alice@example.com": [("gatehouse", "invoke", alice)]}, found
    assert unmatched == [("gatehouse", batch)], unmatched

    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"identities": {batch: ["group:data@example.com"]},
                                  "groups": {"data@example.com": ["bob@example.com"]}}))
    found, unmatched = people("--groups", str(groups))
    assert found == {"alice@example.com": [("gatehouse", "invoke", alice)],
                     "bob@example.com": [("gatehouse", "invoke", batch)]}, found
    assert unmatched == [], unmatched


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

# Calls made by a client that lives 100 days in the past, like the server it talks to then.
OLD_CALLS = """
import boto3, sys
c = boto3.client("iam", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],
                 aws_secret_access_key=sys.argv[3], region_name="us-east-1")
c.list_groups()
c.get_user(UserName="bob")
print("ok")
"""


def _unused(review, arn):
    """{action: through} of one identity's unused access in a review."""
    for u in review["unused_access"]:
        if u["principal"] == arn:
            return {a: g["through"] for g in u["unused"] for a in g["actions"]}
    return {}


@pytest.mark.skipif(not os.path.exists(FAKETIME_LIB), reason="libfaketime not installed (Debian package faketime)")
def test_unused_permissions_mfa_and_deprecated_models_from_the_store(gatehouse, iam):
    """boto3 calls age the audit log (the server runs 100 days in the past under libfaketime
    for some of them); `gatehouse scan --store` and `gatehouse review` on the data dir then
    name exactly the permissions not used in the window, users without MFA who can manage,
    and who can still invoke a deprecated deployment."""
    bob = iam.create_user(UserName="bob")["User"]["Arn"]
    account = bob.split(":")[4]
    work = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Read", "Effect": "Allow", "Action": ["iam:ListUsers", "iam:GetUser", "iam:ListGroups"], "Resource": "*"},
        {"Sid": "Groups", "Effect": "Allow", "Action": "iam:CreateGroup", "Resource": f"arn:gatehouse:iam::{account}:group/team-*"},
        {"Sid": "Invoke", "Effect": "Allow", "Action": "ai:InvokeModel", "Resource": f"arn:gatehouse:ai:*:{account}:model/old-*"},
        {"Sid": "Assume", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:gatehouse:iam::{account}:role/app"},
    ]}
    iam.put_user_policy(UserName="bob", PolicyName="work", PolicyDocument=json.dumps(work))
    key = iam.create_access_key(UserName="bob")["AccessKey"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": bob}, "Action": "sts:AssumeRole"}]}
    app = iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="app", PolicyName="roles", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:ListRoles", "iam:GetRole"], "Resource": "*"}]}))
    manage = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:AttachUserPolicy", "Resource": "*"}]})
    for name in ("ops", "secops"):
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="manage", PolicyDocument=manage)
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName="secops")["VirtualMFADevice"]
    totp = pyotp.TOTP(device["Base32StringSeed"].decode())
    now = time.time()
    iam.enable_mfa_device(UserName="secops", SerialNumber=device["SerialNumber"],
                          AuthenticationCode1=totp.at(now - 30), AuthenticationCode2=totp.at(now))

    # 100 days ago: bob lists groups and reads himself.
    old = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "-100d", "FAKETIME_DONT_RESET": "1"}
    gatehouse.stop()
    gatehouse.extra_env.update(old)
    gatehouse.start()
    out = subprocess.run([sys.executable, "-c", OLD_CALLS, gatehouse.endpoint, key["AccessKeyId"], key["SecretAccessKey"]],
                         env=dict(os.environ, **old), capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
    gatehouse.stop()
    for k in old:
        gatehouse.extra_env.pop(k)
    gatehouse.start()

    # Now: bob lists users, reads himself, and works as role app, which lists roles.
    b = gatehouse.client("iam", key["AccessKeyId"], key["SecretAccessKey"])
    b.list_users()
    b.get_user(UserName="bob")
    creds = gatehouse.client("sts", key["AccessKeyId"], key["SecretAccessKey"]).assume_role(
        RoleArn=app, RoleSessionName="job")["Credentials"]
    gatehouse.client("iam", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]).list_roles()

    # Deployments: one past its deprecation date, one with an upcoming date set through the
    # ai Query API (a bad date is refused and changes nothing).
    out = gatehouse.cli("model", "add", "old-llama", "--base-url", "http://127.0.0.1:9/v1", "--deprecated-on", "2026-01-01")
    assert out.returncode == 0, out.stderr
    out = gatehouse.cli("model", "add", "new-llama", "--base-url", "http://127.0.0.1:9/v1", "--deprecated-on", "2026-13-01")
    assert out.returncode == 2 and "YYYY-MM-DD" in out.stderr, out.stderr
    assert gatehouse.cli("model", "add", "new-llama", "--base-url", "http://127.0.0.1:9/v1").returncode == 0
    ai = Signer(ROOT_KEY_ID, ROOT_SECRET, service="ai")
    r = raw_call(gatehouse, "Action=UpdateDeployment&Version=2024-01-01&ModelId=new-llama&DeprecatedOn=June", signer=ai)
    assert r.status == 400 and r.code == "ValidationError", r.text
    r = raw_call(gatehouse, "Action=UpdateDeployment&Version=2024-01-01&ModelId=new-llama&DeprecatedOn=2999-06-30", signer=ai)
    assert r.status == 200 and r.field("DeprecatedOn") == "2999-06-30", r.text
    listed = {d["model"]: d["deprecated_on"] for d in json.loads(gatehouse.cli("model", "list", "--format", "json").stdout)}
    assert listed == {"old-llama": "2026-01-01", "new-llama": "2999-06-30"}

    # The review: granted against used, exactly.
    out = gatehouse.cli("review", "--format", "json")
    assert out.returncode == 0, out.stderr
    review = json.loads(out.stdout)
    assert review["usage_window"]["covered_days"] == 90 and review["usage_window"]["asked_days"] == 90
    unused = _unused(review, bob)
    assert set(unused) == {"iam:ListGroups", "iam:CreateGroup", "ai:InvokeModel"}, review["unused_access"]
    assert "`user bob/work` statement `Groups`" in unused["iam:CreateGroup"]
    assert set(_unused(review, app)) == {"iam:GetRole"}
    assert set(_unused(review, f"arn:gatehouse:iam::{account}:user/ops")) == {"iam:AttachUserPolicy"}
    deprecated = {m["model"]: m for m in review["deprecated_models"]}
    assert deprecated["old-llama"]["status"] == "deprecated since 2026-01-01"
    assert [a["principal"] for a in deprecated["old-llama"]["invokers"]] == [bob]
    assert "user bob/work" in deprecated["old-llama"]["invokers"][0]["through"][0]
    assert deprecated["new-llama"]["status"] == "deprecated on 2999-06-30 (upcoming)"
    assert deprecated["new-llama"]["invokers"] == []

    # The scan: the same as findings, plus MFA.
    out = gatehouse.cli("scan", "--store", "--format", "json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report.get("notices", []) == []
    by = {}
    for f in report["findings"]:
        by.setdefault(f["rule"], []).append(f)
    mine = {f["location"]["entity"]: f for f in by["GH-HY-004"]}
    assert set(mine) == {"user bob", "role app", "user ops", "user secops"}, mine.keys()
    msg = mine["user bob"]["message"]
    assert mine["user bob"]["severity"] == "medium"
    assert "has not used 3 of its 6 allowed actions in the last 90 days" in msg, msg
    assert f"gatehouse policy generate --principal {bob} --since 90d" in msg
    assert [f["location"]["entity"] for f in by["GH-HY-003"]] == ["user ops"]
    assert [f["location"]["entity"] for f in by["GH-AI-007"]] == [bob]

    # A 120-day window: the log (100 days) does not cover it; said so, at low severity, and
    # the 100-day-old calls count as use.
    out = gatehouse.cli("scan", "--store", "--unused-days", "120", "--format", "json")
    report = json.loads(out.stdout)
    assert any("100 of the 120 days" in n for n in report["notices"]), report.get("notices")
    bob_f = [f for f in report["findings"] if f["rule"] == "GH-HY-004" and f["location"]["entity"] == "user bob"][0]
    assert bob_f["severity"] == "low"
    assert "iam:ListGroups" not in bob_f["message"] and "iam:CreateGroup" in bob_f["message"]
    assert "in the 100 days the audit log covers (of 120 asked" in bob_f["message"]

    # --fail-on turns the findings into exit 1; a bad window is an error.
    assert gatehouse.cli("scan", "--store", "--fail-on", "medium").returncode == 1
    assert gatehouse.cli("scan", "--store", "--unused-days", "0").returncode == 2


def test_deprecation_date_from_the_config_file(make_server, tmp_path):
    """`deprecated_on` in `[[gateway.deployments]]` reaches the store and the review; a
    malformed date stops the server with a message naming it, and nothing is stored."""
    cfg = tmp_path / "gatehouse.toml"
    cfg.write_text("""
[[gateway.deployments]]
model = "llama-2-13b"
base_url = "http://127.0.0.1:9/v1"
deprecated_on = "2025-12-31"
""")
    s = make_server("sqlite", config=str(cfg))
    listed = json.loads(s.cli("model", "list", "--format", "json").stdout)
    assert [(d["model"], d["deprecated_on"]) for d in listed] == [("llama-2-13b", "2025-12-31")]
    review = json.loads(s.cli("review", "--format", "json").stdout)
    assert [(m["model"], m["status"], m["invokers"]) for m in review["deprecated_models"]] == [
        ("llama-2-13b", "deprecated since 2025-12-31", [])]
    s.stop()

    bad = tmp_path / "bad.toml"
    bad.write_text(cfg.read_text().replace("2025-12-31", "31.12.2025").replace("llama-2-13b", "other"))
    s.config = str(bad)
    with pytest.raises(RuntimeError) as e:
        s.start()
    assert "YYYY-MM-DD" in str(e.value)
    listed = json.loads(s.cli("model", "list", "--format", "json").stdout)
    assert [d["model"] for d in listed] == ["llama-2-13b"]


# ---------------------------------------------------------------- over the IAM API

ADMIN_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
OPEN_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}
# Read from the data dir only: the audit log, MFA devices and deployments.
STORE_ONLY_RULES = {"GH-HY-003", "GH-HY-004", "GH-AI-007"}


def api_cli(server, *args, key_id=ROOT_KEY_ID, secret=ROOT_SECRET, token=None):
    """Runs the `gatehouse` binary against the running server's IAM API (no data dir)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if key_id:
        env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret, AWS_REGION="us-east-1")
    if token:
        env["AWS_SESSION_TOKEN"] = token
    cmd = [gatehouse_bin(), *args, "--endpoint-url", server.endpoint]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def _rules_and_entities(report, skip=()):
    return sorted(
        (f["rule"], f["location"].get("entity") or f["location"].get("policy"))
        for f in report["findings"]
        if f["rule"] not in skip
    )


def _details_calls(server):
    r = server.cli("audit", "export", "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    return sum(json.loads(line)["action"] == "iam:GetAccountAuthorizationDetails" for line in r.stdout.splitlines())


def test_the_analyzer_reads_a_running_gatehouse_over_its_api(gatehouse, iam):
    """`scan`, `who-can`, `what-can` and `review` with `--endpoint-url` read the server through
    GetAccountAuthorizationDetails (paged) and answer as they do from its data dir."""
    bob = iam.create_user(UserName="bob")["User"]["Arn"]
    iam.put_user_policy(UserName="bob", PolicyName="invoke", PolicyDocument=json.dumps(INVOKE_LLAMA))
    iam.create_user(UserName="root-like")
    iam.put_user_policy(UserName="root-like", PolicyName="all", PolicyDocument=json.dumps(ADMIN_ALL))
    iam.create_role(RoleName="open", AssumeRolePolicyDocument=json.dumps(OPEN_TRUST))
    iam.put_role_policy(RoleName="open", PolicyName="ai", PolicyDocument=json.dumps(BEDROCK_LIKE_ADMIN))
    # A group's and a managed policy's grants: the store folds them into the users, the API
    # (like an AWS export) names the group and the policy.
    iam.create_group(GroupName="ops")
    iam.put_group_policy(GroupName="ops", PolicyName="all", PolicyDocument=json.dumps(ADMIN_ALL))
    iam.create_user(UserName="carol")
    iam.add_user_to_group(GroupName="ops", UserName="carol")
    managed = iam.create_policy(PolicyName="admin", PolicyDocument=json.dumps(ADMIN_ALL))["Policy"]["Arn"]
    iam.create_user(UserName="dave")
    iam.attach_user_policy(UserName="dave", PolicyArn=managed)
    # More entities than one default page (100) holds; root-like and open come after them.
    for i in range(105):
        iam.create_user(UserName=f"filler-{i:03}")

    store = gatehouse.cli("scan", "--store", "--format", "json")
    assert store.returncode == 0, store.stderr
    api = api_cli(gatehouse, "scan", "--format", "json")
    assert api.returncode == 0, api.stderr
    store_report, api_report = json.loads(store.stdout), json.loads(api.stdout)
    folded = {("GH-OP-001", "user carol"), ("GH-OP-001", "user dave")}
    store_found = _rules_and_entities(store_report, STORE_ONLY_RULES)
    assert folded <= set(store_found), store_found
    expected = sorted(
        [f for f in store_found if f not in folded] + [("GH-OP-001", "group ops"), ("GH-OP-001", "admin")]
    )
    assert ("GH-OP-001", "user root-like") in expected and ("GH-TR-001", "role open") in expected, expected
    assert _rules_and_entities(api_report) == expected
    assert any("--data-dir" in n for n in api_report["notices"]), api_report["notices"]
    # A small page size walks many pages (one audited call each) to the same answer.
    before = _details_calls(gatehouse)
    small = api_cli(gatehouse, "scan", "--format", "json", "--page-size", "7")
    assert small.returncode == 0, small.stderr
    assert _rules_and_entities(json.loads(small.stdout)) == expected
    entities = 4 + 105 + 1 + 1 + 1  # users, fillers, the group, the role, the policy
    pages = -(-entities // 7)
    # Read calls' audit records are group-committed: give them a moment to land.
    deadline = time.time() + 3
    while _details_calls(gatehouse) - before < pages and time.time() < deadline:
        time.sleep(0.1)
    assert _details_calls(gatehouse) - before == pages

    model = "arn:gatehouse:ai:local:111122223333:model/llama-3-8b"
    out = api_cli(gatehouse, "who-can", "ai:InvokeModel", model, "--format", "json")
    assert out.returncode == 0, out.stderr
    who = {p["arn"] for p in json.loads(out.stdout)["principals"]}
    root_like = f"{bob.rsplit(':', 1)[0]}:user/root-like"
    open_role = iam.get_role(RoleName="open")["Role"]["Arn"]
    prefix = bob.rsplit(":", 1)[0]
    carol, dave, ops = f"{prefix}:user/carol", f"{prefix}:user/dave", f"{prefix}:group/ops"
    assert who == {bob, root_like, open_role, carol, dave, ops}, who
    store_who = gatehouse.cli("who-can", "ai:InvokeModel", model, "--format", "json")
    assert {p["arn"] for p in json.loads(store_who.stdout)["principals"]} == who - {ops}

    out = api_cli(gatehouse, "what-can", bob)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{bob} can ai:InvokeModel on arn:gatehouse:ai:*:*:model/llama-* when always\n"

    out = api_cli(gatehouse, "review", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert "--data-dir" in out.stderr


def test_the_api_refuses_a_caller_without_the_permission(gatehouse, iam):
    """A caller without iam:GetAccountAuthorizationDetails, an unknown key and a server that
    is not there: exit 2 with the endpoint and the reason."""
    iam.create_user(UserName="weak")
    iam.put_user_policy(UserName="weak", PolicyName="p", PolicyDocument=json.dumps(POLICY))
    key = iam.create_access_key(UserName="weak")["AccessKey"]
    out = api_cli(gatehouse, "scan", key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
    assert out.returncode == 2, out
    assert "AccessDenied" in out.stderr and gatehouse.endpoint in out.stderr, out.stderr
    assert out.stdout == ""

    out = api_cli(gatehouse, "who-can", "ai:InvokeModel", "*", key_id="AKIANOSUCHKEY0000000", secret="x" * 40)
    assert out.returncode == 2
    assert "InvalidClientTokenId" in out.stderr, out.stderr

    out = api_cli(gatehouse, "scan", key_id=None)
    assert out.returncode == 2
    assert "AWS_ACCESS_KEY_ID" in out.stderr, out.stderr

    endpoint = gatehouse.endpoint
    gatehouse.stop()
    out = api_cli(gatehouse, "what-can", "bob")
    assert out.returncode == 2
    assert endpoint in out.stderr and "refused" in out.stderr.lower(), out.stderr


def test_the_api_reads_with_temporary_credentials(gatehouse, iam):
    """An auditor role's session (AWS_SESSION_TOKEN) reads the account over the API."""
    alice = iam.create_user(UserName="alice")["User"]["Arn"]
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    trust = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Principal": {"AWS": alice}, "Action": "sts:AssumeRole"}]}
    read = {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iam:GetAccountAuthorizationDetails", "Resource": "*"}]}
    role = iam.create_role(RoleName="auditor", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="auditor", PolicyName="read", PolicyDocument=json.dumps(read))
    iam.put_user_policy(UserName="alice", PolicyName="invoke", PolicyDocument=json.dumps(INVOKE_LLAMA))
    sts = gatehouse.client("sts", key["AccessKeyId"], key["SecretAccessKey"])
    creds = sts.assume_role(RoleArn=role, RoleSessionName="audit")["Credentials"]
    model = "arn:gatehouse:ai:local:111122223333:model/llama-3-8b"
    out = api_cli(gatehouse, "who-can", "ai:InvokeModel", model, "--format", "json",
                  key_id=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"])
    assert out.returncode == 0, out.stderr
    assert [p["arn"] for p in json.loads(out.stdout)["principals"]] == [alice]
    # Without its token the session key is not accepted.
    out = api_cli(gatehouse, "who-can", "ai:InvokeModel", model,
                  key_id=creds["AccessKeyId"], secret=creds["SecretAccessKey"])
    assert out.returncode == 2 and gatehouse.endpoint in out.stderr, out.stderr
