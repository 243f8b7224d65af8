"""The AWS CLI, unchanged, pointed at Gatehouse with --endpoint-url: a typical session
(create a user, a policy, attach it, create an access key, list) and then the new user's
own key at work."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import REGION, ROOT_KEY_ID, ROOT_SECRET, unique

AWS = shutil.which("aws")
pytestmark = pytest.mark.skipif(AWS is None, reason="the AWS CLI is not installed (pip install awscli)")


def aws(server, *args, key_id=ROOT_KEY_ID, secret=ROOT_SECRET, check=True):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        # Nothing from the developer's own AWS configuration may leak into the test.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }
    r = subprocess.run(
        [AWS, *args, "--endpoint-url", server.endpoint, "--output", "json"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    if check:
        assert r.returncode == 0, f"aws {' '.join(args)} failed ({r.returncode}):\n{r.stderr}"
    return r


def out(r):
    return json.loads(r.stdout) if r.stdout.strip() else None


def test_typical_cli_session(gatehouse, tmp_path):
    user, policy = unique("cli-user"), unique("cli-policy")
    created = out(aws(gatehouse, "iam", "create-user", "--user-name", user))["User"]
    assert created["UserName"] == user and created["UserId"].startswith("AIDA")

    doc = tmp_path / "policy.json"
    doc.write_text(json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iam:ListUsers", "iam:GetUser"], "Resource": "*"}],
    }))
    pol = out(aws(gatehouse, "iam", "create-policy", "--policy-name", policy,
                  "--policy-document", f"file://{doc}"))["Policy"]
    assert pol["Arn"].endswith(f":policy/{policy}") and pol["DefaultVersionId"] == "v1"

    assert out(aws(gatehouse, "iam", "attach-user-policy", "--user-name", user,
                   "--policy-arn", pol["Arn"])) is None
    attached = out(aws(gatehouse, "iam", "list-attached-user-policies", "--user-name", user))
    assert [a["PolicyArn"] for a in attached["AttachedPolicies"]] == [pol["Arn"]]

    key = out(aws(gatehouse, "iam", "create-access-key", "--user-name", user))["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40

    users = out(aws(gatehouse, "iam", "list-users"))["Users"]
    assert user in [u["UserName"] for u in users]

    # The new key works from the CLI too, within what the policy allows.
    mine = dict(key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
    who = out(aws(gatehouse, "sts", "get-caller-identity", **mine))
    assert who["Arn"] == created["Arn"]
    assert user in [u["UserName"] for u in out(aws(gatehouse, "iam", "list-users", **mine))["Users"]]
    denied = aws(gatehouse, "iam", "create-user", "--user-name", unique("x"), check=False, **mine)
    assert denied.returncode != 0 and "AccessDenied" in denied.stderr

    got = out(aws(gatehouse, "iam", "get-policy-version", "--policy-arn", pol["Arn"], "--version-id", "v1"))
    assert got["PolicyVersion"]["Document"]["Statement"][0]["Action"] == ["iam:ListUsers", "iam:GetUser"]


def test_cli_pagination_and_errors(gatehouse):
    path = f"/{unique('clipath')}/"
    names = sorted(unique("p") for _ in range(5))
    root = gatehouse.client("iam")  # setup through boto3: the CLI is slow to start
    for n in names:
        root.create_user(UserName=n, Path=path)
    # The CLI follows Marker/IsTruncated itself; --page-size forces several pages.
    listed = out(aws(gatehouse, "iam", "list-users", "--path-prefix", path, "--page-size", "2"))
    assert [u["UserName"] for u in listed["Users"]] == names
    one = out(aws(gatehouse, "iam", "list-users", "--path-prefix", path, "--max-items", "2"))
    assert len(one["Users"]) == 2 and one.get("NextToken")

    dup = aws(gatehouse, "iam", "create-user", "--user-name", names[0], check=False)
    assert dup.returncode != 0 and "EntityAlreadyExists" in dup.stderr
    missing = aws(gatehouse, "iam", "get-user", "--user-name", unique("ghost"), check=False)
    assert missing.returncode != 0 and "NoSuchEntity" in missing.stderr
    forged = aws(gatehouse, "iam", "list-users", check=False, secret="x" * 40)
    assert forged.returncode != 0 and "SignatureDoesNotMatch" in forged.stderr
