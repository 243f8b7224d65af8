"""Control-plane hardening (issue 10) with the real clients: the standard AWS guardrails
copied from AWS's documentation hold against boto3 and the AWS CLI, whatever the spelling
of a name, and a session does not outlive its principal.
"""

import json
import os
import shutil
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import REGION, error_code, unique, user_client

AWS = shutil.which("aws")


@pytest.fixture
def server(shared_gatehouse):
    return shared_gatehouse


@pytest.fixture
def iam(server):
    return server.client("iam")


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


READ = doc({"Effect": "Allow", "Action": "ai:ListModels", "Resource": "*"})


def denied(fn, **kw):
    with pytest.raises(ClientError) as e:
        fn(**kw)
    assert error_code(e) == ("AccessDenied", 403), e.value.response["Error"]


def test_deny_attaching_administrator_access_holds(server, iam):
    """AWS's example: Deny iam:Attach*Policy when iam:PolicyARN is AdministratorAccess."""
    admin_name = unique("AdministratorAccess")
    admin = iam.create_policy(PolicyName=admin_name, PolicyDocument=READ)["Policy"]["Arn"]
    other = iam.create_policy(PolicyName=unique("reader"), PolicyDocument=READ)["Policy"]["Arn"]
    name = unique("delegate")
    delegate = user_client(server, iam, name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
        {"Sid": "NoAdmin", "Effect": "Deny", "Action": "iam:Attach*Policy", "Resource": "*",
         "Condition": {"ArnEquals": {"iam:PolicyARN": admin}}},
    ))
    victim, group, role = unique("victim"), unique("grp"), unique("role")
    iam.create_user(UserName=victim)
    iam.create_group(GroupName=group)
    account = admin.split(":")[4]
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:gatehouse:iam::{account}:root"}, "Action": "sts:AssumeRole"}))
    for fn, kw in [
        (delegate.attach_user_policy, {"UserName": name}),
        (delegate.attach_user_policy, {"UserName": victim.upper()}),
        (delegate.attach_group_policy, {"GroupName": group}),
        (delegate.attach_role_policy, {"RoleName": role}),
    ]:
        denied(fn, PolicyArn=admin, **kw)
        fn(PolicyArn=other, **kw)
    assert [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=victim)["AttachedPolicies"]] == [other]


def test_a_differently_cased_name_meets_the_deny(server, iam):
    protected = unique("protected")
    iam.create_user(UserName=protected, Path="/vip/")
    name = unique("mallory")
    mallory = user_client(server, iam, name)
    arn = iam.get_user(UserName=protected)["User"]["Arn"]
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:*", "Resource": arn},
    ))
    for spelling in (protected, protected.upper(), protected.capitalize()):
        denied(mallory.create_access_key, UserName=spelling)
        denied(mallory.put_user_policy, UserName=spelling, PolicyName="x", PolicyDocument=READ)
    assert iam.list_access_keys(UserName=protected)["AccessKeyMetadata"] == []


@pytest.mark.skipif(AWS is None, reason="the AWS CLI is not installed")
def test_aws_cli_create_access_key_for_an_upper_case_name_is_denied(server, iam):
    protected = unique("protected")
    iam.create_user(UserName=protected)
    name = unique("cli-mallory")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:*", "Resource": iam.get_user(UserName=protected)["User"]["Arn"]},
    ))
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_MAX_ATTEMPTS": "1",
    }
    r = subprocess.run([AWS, "iam", "create-access-key", "--user-name", protected.upper(),
                        "--endpoint-url", server.endpoint], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "AccessDenied" in r.stderr, r.stderr
    assert iam.list_access_keys(UserName=protected)["AccessKeyMetadata"] == []


def test_old_session_of_a_recreated_role_is_refused(server, iam):
    role = unique("app")
    account = iam.create_user(UserName=unique("probe"))["User"]["Arn"].split(":")[4]
    trust = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:gatehouse:iam::{account}:root"}, "Action": "sts:AssumeRole"})
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
    iam.put_role_policy(RoleName=role, PolicyName="read", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}))
    name = unique("assumer")
    sts = user_client(server, iam, name, service="sts")
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}))
    creds = sts.assume_role(RoleArn=f"arn:gatehouse:iam::{account}:role/{role}", RoleSessionName="s1")["Credentials"]
    old = server.client("iam", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    old.get_role(RoleName=role)
    iam.delete_role_policy(RoleName=role, PolicyName="read")
    iam.delete_role(RoleName=role)
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=doc(
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}))
    iam.put_role_policy(RoleName=role, PolicyName="all", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "*", "Resource": "*"}))
    with pytest.raises(ClientError) as e:
        old.list_users()
    assert error_code(e) == ("InvalidClientTokenId", 403), e.value.response["Error"]
