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
