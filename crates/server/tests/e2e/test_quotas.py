"""AWS's IAM quotas that span documents, through boto3: the inline policies of a user
(2,048 characters together, whitespace not counted), a group (5,120) and a role (10,240)
are refused past the quota with AWS's LimitExceeded (HTTP 409) and message, and nothing
stored changes."""

import json

import botocore.exceptions
import pytest

from conftest import unique


def padded(n):
    """An identity policy of about n + 110 counted characters."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "ai:InvokeModel",
        "Resource": "arn:gatehouse:ai:local:111122223333:model/" + "m" * n}]}, indent=4)


@pytest.mark.parametrize("kind,limit", [("user", 2048), ("group", 5120), ("role", 10240)])
def test_inline_policies_together_are_held_to_awss_quota(gatehouse, iam, kind, limit):
    name = unique("quota")
    if kind == "user":
        iam.create_user(UserName=name)
        put, listed = iam.put_user_policy, lambda: iam.list_user_policies(UserName=name)["PolicyNames"]
        who = {"UserName": name}
    elif kind == "group":
        iam.create_group(GroupName=name)
        put, listed = iam.put_group_policy, lambda: iam.list_group_policies(GroupName=name)["PolicyNames"]
        who = {"GroupName": name}
    else:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}))
        put, listed = iam.put_role_policy, lambda: iam.list_role_policies(RoleName=name)["PolicyNames"]
        who = {"RoleName": name}
    half = limit // 2 - 200
    put(**who, PolicyName="a", PolicyDocument=padded(half))
    put(**who, PolicyName="a", PolicyDocument=padded(half))  # replacing counts once
    with pytest.raises(botocore.exceptions.ClientError) as e:
        put(**who, PolicyName="b", PolicyDocument=padded(half + 300))
    r = e.value.response
    assert r["Error"]["Code"] == "LimitExceeded"
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert r["Error"]["Message"] == f"Maximum policy size of {limit} bytes exceeded for {kind} {name}"
    assert listed() == ["a"]
    put(**who, PolicyName="b", PolicyDocument=padded(half))
    assert sorted(listed()) == ["a", "b"]
