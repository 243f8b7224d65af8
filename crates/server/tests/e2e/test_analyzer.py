"""The analyzer against a running Gatehouse: `gatehouse policy generate` reads the audit log
the server wrote for real boto3 calls and proposes a policy of exactly what was done."""
import json
import os
import subprocess
import tempfile

import botocore.exceptions
import pytest

from conftest import gatehouse_bin

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
