"""The IAM Query API through boto3: every action of issue 3, success and error paths, and
the authorization scenario (a user denied, allowed by a policy, then denied again by a
permissions boundary, an account guardrail and an explicit Deny).

All tests share one server per backend (`shared_gatehouse`) and keep to their own names
(`unique(...)`) and, for list calls, their own path, so they do not see each other.
"""

import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, unique, user_client

ALLOW_ALL_IAM = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}],
}


def doc(action, effect="Allow", resource="*", sid=None):
    st = {"Effect": effect, "Action": action, "Resource": resource}
    if sid:
        st["Sid"] = sid
    return json.dumps({"Version": "2012-10-17", "Statement": [st]})


TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ai.gatehouse.local"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@pytest.fixture
def server(shared_gatehouse):
    return shared_gatehouse


@pytest.fixture
def iam(server):
    return server.client("iam")


@pytest.fixture
def account(iam):
    name = unique("acct-probe")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    iam.delete_user(UserName=name)
    return arn.split(":")[4]


def fails(code, status, fn, *args, **kw):
    with pytest.raises(ClientError) as e:
        fn(*args, **kw)
    assert error_code(e) == (code, status), e.value.response["Error"]
    return e.value.response["Error"]["Message"]


def list_all(fn, key, **kw):
    """Follows Marker/IsTruncated with MaxItems=1 pages; returns items and page count."""
    items, pages, marker = [], 0, None
    while True:
        args = dict(kw, MaxItems=1)
        if marker:
            args["Marker"] = marker
        page = fn(**args)
        pages += 1
        items += page[key]
        assert len(page[key]) <= 1
        if not page["IsTruncated"]:
            assert "Marker" not in page
            return items, pages
        marker = page["Marker"]
        assert pages < 100


# ---------------------------------------------------------------- users


def test_user_lifecycle(iam, account):
    name, path = unique("alice"), f"/{unique('p')}/"
    u = iam.create_user(UserName=name, Path=path, Tags=[{"Key": "team", "Value": "search"}])["User"]
    assert u["UserName"] == name and u["Path"] == path
    assert u["UserId"].startswith("AIDA") and len(u["UserId"]) == 21
    assert u["Arn"] == f"arn:gatehouse:iam::{account}:user{path}{name}"
    assert u["Tags"] == [{"Key": "team", "Value": "search"}]
    got = iam.get_user(UserName=name)["User"]
    assert got["UserId"] == u["UserId"] and got["Tags"] == u["Tags"]
    assert got["CreateDate"] == u["CreateDate"]

    listed = iam.list_users(PathPrefix=path)
    assert [x["UserName"] for x in listed["Users"]] == [name]
    assert listed["IsTruncated"] is False

    new_name, new_path = unique("alice2"), f"/{unique('q')}/"
    iam.update_user(UserName=name, NewUserName=new_name, NewPath=new_path)
    fails("NoSuchEntity", 404, iam.get_user, UserName=name)
    moved = iam.get_user(UserName=new_name)["User"]
    assert moved["UserId"] == u["UserId"] and moved["Path"] == new_path
    assert moved["Arn"] == f"arn:gatehouse:iam::{account}:user{new_path}{new_name}"
    assert iam.list_users(PathPrefix=path)["Users"] == []

    iam.delete_user(UserName=new_name)
    fails("NoSuchEntity", 404, iam.get_user, UserName=new_name)
    fails("NoSuchEntity", 404, iam.delete_user, UserName=new_name)
    fails("NoSuchEntity", 404, iam.update_user, UserName=new_name, NewPath="/x/")


def test_user_errors(iam):
    name = unique("bob")
    iam.create_user(UserName=name)
    fails("EntityAlreadyExists", 409, iam.create_user, UserName=name)
    # IAM names are case-insensitively unique.
    fails("EntityAlreadyExists", 409, iam.create_user, UserName=name.upper())
    fails("ValidationError", 400, iam.create_user, UserName="has/slash")
    fails("ValidationError", 400, iam.create_user, UserName="x" * 65)
    fails("ValidationError", 400, iam.create_user, UserName=unique("c"), Path="no-slashes")
    other = unique("bob-other")
    iam.create_user(UserName=other)
    fails("EntityAlreadyExists", 409, iam.update_user, UserName=name, NewUserName=other)
    fails("ValidationError", 400, iam.update_user, UserName=name, NewUserName="bad name")
    assert iam.get_user(UserName=name)["User"]["UserName"] == name


def test_delete_user_conflicts_until_everything_is_removed(iam):
    name, group = unique("carol"), unique("g")
    pol = iam.create_policy(PolicyName=unique("p"), PolicyDocument=doc("iam:GetUser"))["Policy"]
    iam.create_user(UserName=name)
    iam.create_group(GroupName=group)
    key = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
    iam.add_user_to_group(GroupName=group, UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn=pol["Arn"])
    iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=doc("iam:ListUsers"))

    steps = [
        lambda: iam.delete_access_key(UserName=name, AccessKeyId=key),
        lambda: iam.remove_user_from_group(GroupName=group, UserName=name),
        lambda: iam.detach_user_policy(UserName=name, PolicyArn=pol["Arn"]),
        lambda: iam.delete_user_policy(UserName=name, PolicyName="inline"),
    ]
    for step in steps:
        fails("DeleteConflict", 409, iam.delete_user, UserName=name)
        assert iam.get_user(UserName=name)["User"]["UserName"] == name
        step()
    iam.delete_user(UserName=name)
    fails("NoSuchEntity", 404, iam.get_user, UserName=name)


def test_list_users_paginates(iam):
    path = f"/{unique('page')}/"
    names = sorted(unique(f"u{i}") for i in range(5))
    for n in names:
        iam.create_user(UserName=n, Path=path)
    first = iam.list_users(PathPrefix=path, MaxItems=2)
    assert first["IsTruncated"] is True and len(first["Users"]) == 2 and first["Marker"]
    items, pages = list_all(iam.list_users, "Users", PathPrefix=path)
    assert [u["UserName"] for u in items] == names
    assert pages == 5
    # boto3's paginator follows the same markers.
    seen = []
    for page in iam.get_paginator("list_users").paginate(
        PathPrefix=path, PaginationConfig={"PageSize": 2}
    ):
        seen += [u["UserName"] for u in page["Users"]]
    assert seen == names
    fails("ValidationError", 400, iam.list_users, PathPrefix=path, MaxItems=1001)


def test_get_user_without_name_is_the_caller(server, iam):
    name = unique("self")
    client = user_client(server, iam, name)
    iam.attach_user_policy(UserName=name, PolicyArn=make_policy(iam, doc("iam:GetUser")))
    assert wait_until(lambda: client.get_user()["User"]["UserName"] == name)


# ---------------------------------------------------------------- groups


def test_group_lifecycle_and_membership(iam, account):
    group, path = unique("eng"), f"/{unique('gp')}/"
    users = sorted(unique("m") for _ in range(3))
    g = iam.create_group(GroupName=group, Path=path)["Group"]
    assert g["GroupId"].startswith("AGPA")
    assert g["Arn"] == f"arn:gatehouse:iam::{account}:group{path}{group}"
    fails("EntityAlreadyExists", 409, iam.create_group, GroupName=group)
    fails("ValidationError", 400, iam.create_group, GroupName="bad:name")
    assert [x["GroupName"] for x in iam.list_groups(PathPrefix=path)["Groups"]] == [group]

    for u in users:
        iam.create_user(UserName=u)
        iam.add_user_to_group(GroupName=group, UserName=u)
    got = iam.get_group(GroupName=group)
    assert got["Group"]["GroupId"] == g["GroupId"]
    assert sorted(u["UserName"] for u in got["Users"]) == users
    members, pages = list_all(iam.get_group, "Users", GroupName=group)
    assert sorted(u["UserName"] for u in members) == users and pages == 3

    assert [x["GroupName"] for x in iam.list_groups_for_user(UserName=users[0])["Groups"]] == [group]
    fails("NoSuchEntity", 404, iam.add_user_to_group, GroupName=group, UserName=unique("ghost"))
    fails("NoSuchEntity", 404, iam.add_user_to_group, GroupName=unique("ghost"), UserName=users[0])
    fails("NoSuchEntity", 404, iam.list_groups_for_user, UserName=unique("ghost"))
    fails("NoSuchEntity", 404, iam.get_group, GroupName=unique("ghost"))

    fails("DeleteConflict", 409, iam.delete_group, GroupName=group)
    for u in users:
        iam.remove_user_from_group(GroupName=group, UserName=u)
    fails("NoSuchEntity", 404, iam.remove_user_from_group, GroupName=group, UserName=users[0])
    assert iam.list_groups_for_user(UserName=users[0])["Groups"] == []
    iam.delete_group(GroupName=group)
    fails("NoSuchEntity", 404, iam.delete_group, GroupName=group)


def test_group_policies(iam):
    group = unique("ops")
    iam.create_group(GroupName=group)
    arn = make_policy(iam, doc("iam:ListRoles"))
    iam.attach_group_policy(GroupName=group, PolicyArn=arn)
    attached = iam.list_attached_group_policies(GroupName=group)["AttachedPolicies"]
    assert [a["PolicyArn"] for a in attached] == [arn]
    iam.put_group_policy(GroupName=group, PolicyName="g1", PolicyDocument=doc("iam:GetRole"))
    got = iam.get_group_policy(GroupName=group, PolicyName="g1")
    assert got["GroupName"] == group
    assert got["PolicyDocument"]["Statement"][0]["Action"] == "iam:GetRole"
    assert iam.list_group_policies(GroupName=group)["PolicyNames"] == ["g1"]
    fails("DeleteConflict", 409, iam.delete_group, GroupName=group)
    iam.detach_group_policy(GroupName=group, PolicyArn=arn)
    iam.delete_group_policy(GroupName=group, PolicyName="g1")
    fails("NoSuchEntity", 404, iam.get_group_policy, GroupName=group, PolicyName="g1")
    iam.delete_group(GroupName=group)


# ---------------------------------------------------------------- roles


def test_role_lifecycle(iam, account):
    name, path = unique("runner"), f"/{unique('rp')}/"
    r = iam.create_role(
        RoleName=name,
        Path=path,
        AssumeRolePolicyDocument=TRUST,
        Description="runs jobs",
        MaxSessionDuration=7200,
        Tags=[{"Key": "env", "Value": "ci"}],
    )["Role"]
    assert r["RoleId"].startswith("AROA")
    assert r["Arn"] == f"arn:gatehouse:iam::{account}:role{path}{name}"
    assert r["AssumeRolePolicyDocument"] == json.loads(TRUST)
    got = iam.get_role(RoleName=name)["Role"]
    assert got["Description"] == "runs jobs" and got["MaxSessionDuration"] == 7200
    assert got["Tags"] == [{"Key": "env", "Value": "ci"}]
    assert [x["RoleName"] for x in iam.list_roles(PathPrefix=path)["Roles"]] == [name]

    iam.update_role(RoleName=name, Description="new words", MaxSessionDuration=3600)
    got = iam.get_role(RoleName=name)["Role"]
    assert got["Description"] == "new words" and got["MaxSessionDuration"] == 3600
    fails("ValidationError", 400, iam.update_role, RoleName=name, MaxSessionDuration=43201)

    trust2 = json.loads(TRUST)
    trust2["Statement"][0]["Principal"] = {"AWS": f"arn:gatehouse:iam::{account}:root"}
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust2))
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == trust2
    fails(
        "MalformedPolicyDocument", 400, iam.update_assume_role_policy,
        RoleName=name, PolicyDocument="{not json",
    )
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == trust2

    fails("EntityAlreadyExists", 409, iam.create_role, RoleName=name, AssumeRolePolicyDocument=TRUST)
    fails(
        "MalformedPolicyDocument", 400, iam.create_role,
        RoleName=unique("r"), AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": 7}',
    )
    fails("ValidationError", 400, iam.create_role, RoleName="bad name", AssumeRolePolicyDocument=TRUST)
    fails("ValidationError", 400, iam.create_role, RoleName=unique("r"), AssumeRolePolicyDocument=TRUST,
          MaxSessionDuration=43201)

    iam.delete_role(RoleName=name)
    fails("NoSuchEntity", 404, iam.get_role, RoleName=name)
    fails("NoSuchEntity", 404, iam.delete_role, RoleName=name)
    fails("NoSuchEntity", 404, iam.update_role, RoleName=name, Description="x")


def test_role_policies_and_delete_conflict(iam):
    name = unique("svc")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    arn = make_policy(iam, doc("ai:InvokeModel"))
    iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    assert [a["PolicyArn"] for a in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]] == [arn]
    iam.put_role_policy(RoleName=name, PolicyName="r1", PolicyDocument=doc("ai:ListModels"))
    assert iam.get_role_policy(RoleName=name, PolicyName="r1")["RoleName"] == name
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["r1"]
    fails("DeleteConflict", 409, iam.delete_role, RoleName=name)
    iam.detach_role_policy(RoleName=name, PolicyArn=arn)
    fails("DeleteConflict", 409, iam.delete_role, RoleName=name)
    iam.delete_role_policy(RoleName=name, PolicyName="r1")
    fails("NoSuchEntity", 404, iam.delete_role_policy, RoleName=name, PolicyName="r1")
    iam.delete_role(RoleName=name)


# ---------------------------------------------------------------- managed policies


def make_policy(iam, document, path=None):
    kw = {"Path": path} if path else {}
    return iam.create_policy(PolicyName=unique("pol"), PolicyDocument=document, **kw)["Policy"]["Arn"]


def test_policy_lifecycle(iam, account):
    name, path = unique("invoke"), f"/{unique('pp')}/"
    p = iam.create_policy(
        PolicyName=name,
        Path=path,
        PolicyDocument=doc("ai:InvokeModel"),
        Description="invoke models",
        Tags=[{"Key": "owner", "Value": "ml"}],
    )["Policy"]
    assert p["Arn"] == f"arn:gatehouse:iam::{account}:policy{path}{name}"
    assert p["PolicyId"].startswith("ANPA")
    assert p["DefaultVersionId"] == "v1" and p["AttachmentCount"] == 0
    got = iam.get_policy(PolicyArn=p["Arn"])["Policy"]
    assert got["Description"] == "invoke models" and got["Tags"] == [{"Key": "owner", "Value": "ml"}]
    listed = iam.list_policies(Scope="Local", PathPrefix=path)["Policies"]
    assert [x["Arn"] for x in listed] == [p["Arn"]]
    v1 = iam.get_policy_version(PolicyArn=p["Arn"], VersionId="v1")["PolicyVersion"]
    assert v1["IsDefaultVersion"] is True
    assert v1["Document"]["Statement"][0]["Action"] == "ai:InvokeModel"

    fails("EntityAlreadyExists", 409, iam.create_policy, PolicyName=name, Path=path,
          PolicyDocument=doc("ai:InvokeModel"))
    fails("MalformedPolicyDocument", 400, iam.create_policy, PolicyName=unique("p"), PolicyDocument="[]")
    fails("MalformedPolicyDocument", 400, iam.create_policy, PolicyName=unique("p"),
          PolicyDocument=json.dumps({"Version": "2012-10-17",
                                     "Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}))
    fails("ValidationError", 400, iam.create_policy, PolicyName="bad/name", PolicyDocument=doc("iam:GetUser"))
    fails("NoSuchEntity", 404, iam.get_policy, PolicyArn=f"arn:gatehouse:iam::{account}:policy/{unique('none')}")

    user = unique("att")
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn=p["Arn"])
    assert iam.get_policy(PolicyArn=p["Arn"])["Policy"]["AttachmentCount"] == 1
    only = iam.list_policies(Scope="Local", OnlyAttached=True, PathPrefix=path)["Policies"]
    assert [x["Arn"] for x in only] == [p["Arn"]]
    fails("DeleteConflict", 409, iam.delete_policy, PolicyArn=p["Arn"])
    iam.detach_user_policy(UserName=user, PolicyArn=p["Arn"])
    assert iam.list_policies(Scope="Local", OnlyAttached=True, PathPrefix=path)["Policies"] == []
    iam.delete_policy(PolicyArn=p["Arn"])
    fails("NoSuchEntity", 404, iam.get_policy, PolicyArn=p["Arn"])
    fails("NoSuchEntity", 404, iam.delete_policy, PolicyArn=p["Arn"])


def test_policy_versions(iam):
    arn = make_policy(iam, doc("iam:GetUser"))
    for i in range(2, 6):
        v = iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(f"iam:Get{i}"),
                                      SetAsDefault=(i == 3))["PolicyVersion"]
        assert v["VersionId"] == f"v{i}" and v["IsDefaultVersion"] is (i == 3)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"
    msg = fails("LimitExceeded", 409, iam.create_policy_version, PolicyArn=arn,
                PolicyDocument=doc("iam:Get6"))
    assert "5" in msg
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == ["v1", "v2", "v3", "v4", "v5"]
    assert [v["VersionId"] for v in versions if v["IsDefaultVersion"]] == ["v3"]
    paged, pages = list_all(iam.list_policy_versions, "Versions", PolicyArn=arn)
    assert sorted(v["VersionId"] for v in paged) == ["v1", "v2", "v3", "v4", "v5"] and pages == 5

    fails("DeleteConflict", 409, iam.delete_policy_version, PolicyArn=arn, VersionId="v3")
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v5")
    got = iam.get_policy_version(PolicyArn=arn, VersionId="v5")["PolicyVersion"]
    assert got["IsDefaultVersion"] is True and got["Document"]["Statement"][0]["Action"] == "iam:Get5"
    iam.delete_policy_version(PolicyArn=arn, VersionId="v3")
    fails("NoSuchEntity", 404, iam.get_policy_version, PolicyArn=arn, VersionId="v3")
    fails("NoSuchEntity", 404, iam.set_default_policy_version, PolicyArn=arn, VersionId="v3")
    fails("NoSuchEntity", 404, iam.delete_policy_version, PolicyArn=arn, VersionId="v9")
    # A slot is free again; version ids keep counting up.
    v6 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc("iam:Get6"))["PolicyVersion"]
    assert v6["VersionId"] == "v6"
    fails("MalformedPolicyDocument", 400, iam.create_policy_version, PolicyArn=arn, PolicyDocument="nope")
    # A policy with non-default versions cannot be deleted (AWS: delete the versions first).
    fails("DeleteConflict", 409, iam.delete_policy, PolicyArn=arn)
    for v in ["v1", "v2", "v4", "v6"]:
        iam.delete_policy_version(PolicyArn=arn, VersionId=v)
    iam.delete_policy(PolicyArn=arn)


def test_list_policies_paginates(iam):
    path = f"/{unique('lp')}/"
    arns = [make_policy(iam, doc("iam:GetUser"), path=path) for _ in range(3)]
    items, pages = list_all(iam.list_policies, "Policies", Scope="Local", PathPrefix=path)
    assert sorted(p["Arn"] for p in items) == sorted(arns) and pages == 3


# ---------------------------------------------------------------- attachments and inline


def test_user_attachments_and_inline_policies(iam, account):
    user = unique("dana")
    iam.create_user(UserName=user)
    arns = [make_policy(iam, doc(f"iam:Get{i}")) for i in range(3)]
    for a in arns:
        iam.attach_user_policy(UserName=user, PolicyArn=a)
    iam.attach_user_policy(UserName=user, PolicyArn=arns[0])  # idempotent, as in AWS
    attached, pages = list_all(iam.list_attached_user_policies, "AttachedPolicies", UserName=user)
    assert sorted(a["PolicyArn"] for a in attached) == sorted(arns) and pages == 3
    missing = f"arn:gatehouse:iam::{account}:policy/{unique('none')}"
    fails("NoSuchEntity", 404, iam.attach_user_policy, UserName=user, PolicyArn=missing)
    fails("NoSuchEntity", 404, iam.attach_user_policy, UserName=unique("ghost"), PolicyArn=arns[0])
    fails("NoSuchEntity", 404, iam.detach_user_policy, UserName=user, PolicyArn=missing)
    iam.detach_user_policy(UserName=user, PolicyArn=arns[1])
    fails("NoSuchEntity", 404, iam.detach_user_policy, UserName=user, PolicyArn=arns[1])

    for n in ["b-inline", "a-inline"]:
        iam.put_user_policy(UserName=user, PolicyName=n, PolicyDocument=doc("iam:ListUsers"))
    iam.put_user_policy(UserName=user, PolicyName="a-inline", PolicyDocument=doc("iam:ListGroups"))
    got = iam.get_user_policy(UserName=user, PolicyName="a-inline")
    assert got["UserName"] == user and got["PolicyName"] == "a-inline"
    assert got["PolicyDocument"]["Statement"][0]["Action"] == "iam:ListGroups"
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["a-inline", "b-inline"]
    names, pages = list_all(iam.list_user_policies, "PolicyNames", UserName=user)
    assert names == ["a-inline", "b-inline"] and pages == 2
    fails("MalformedPolicyDocument", 400, iam.put_user_policy, UserName=user, PolicyName="c",
          PolicyDocument='{"Statement": []}')
    fails("NoSuchEntity", 404, iam.put_user_policy, UserName=unique("ghost"), PolicyName="c",
          PolicyDocument=doc("iam:GetUser"))
    fails("NoSuchEntity", 404, iam.get_user_policy, UserName=user, PolicyName="c")
    iam.delete_user_policy(UserName=user, PolicyName="b-inline")
    fails("NoSuchEntity", 404, iam.delete_user_policy, UserName=user, PolicyName="b-inline")
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["a-inline"]


def test_attachment_limit(iam):
    user = unique("many")
    iam.create_user(UserName=user)
    arns = [make_policy(iam, doc("iam:GetUser")) for _ in range(11)]
    for a in arns[:10]:
        iam.attach_user_policy(UserName=user, PolicyArn=a)
    fails("LimitExceeded", 409, iam.attach_user_policy, UserName=user, PolicyArn=arns[10])
    assert len(iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]) == 10


def test_permissions_boundaries(iam):
    user, role = unique("bounded"), unique("bounded-role")
    arn = make_policy(iam, doc("iam:Get*"))
    iam.create_user(UserName=user)
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    iam.put_user_permissions_boundary(UserName=user, PermissionsBoundary=arn)
    iam.put_role_permissions_boundary(RoleName=role, PermissionsBoundary=arn)
    b = iam.get_user(UserName=user)["User"]["PermissionsBoundary"]
    assert b == {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn}
    assert iam.get_role(RoleName=role)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == arn
    assert iam.get_policy(PolicyArn=arn)["Policy"]["PermissionsBoundaryUsageCount"] == 2
    fails("DeleteConflict", 409, iam.delete_policy, PolicyArn=arn)
    missing = arn + "-none"
    fails("NoSuchEntity", 404, iam.put_user_permissions_boundary, UserName=user, PermissionsBoundary=missing)
    iam.delete_user_permissions_boundary(UserName=user)
    iam.delete_role_permissions_boundary(RoleName=role)
    assert "PermissionsBoundary" not in iam.get_user(UserName=user)["User"]
    assert "PermissionsBoundary" not in iam.get_role(RoleName=role)["Role"]
    fails("NoSuchEntity", 404, iam.delete_user_permissions_boundary, UserName=unique("ghost"))
    # A boundary given at creation is kept.
    u2 = iam.create_user(UserName=unique("born-bounded"), PermissionsBoundary=arn)["User"]
    assert u2["PermissionsBoundary"]["PermissionsBoundaryArn"] == arn


# ---------------------------------------------------------------- access keys


def test_access_keys(server, iam):
    user = unique("keyed")
    iam.create_user(UserName=user)
    k1 = iam.create_access_key(UserName=user)["AccessKey"]
    assert k1["AccessKeyId"].startswith("AKIA") and len(k1["AccessKeyId"]) == 20
    assert len(k1["SecretAccessKey"]) == 40 and k1["Status"] == "Active"
    k2 = iam.create_access_key(UserName=user)["AccessKey"]
    fails("LimitExceeded", 409, iam.create_access_key, UserName=user)
    listed = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    assert sorted(k["AccessKeyId"] for k in listed) == sorted([k1["AccessKeyId"], k2["AccessKeyId"]])
    assert all("SecretAccessKey" not in k for k in listed)
    keys, pages = list_all(iam.list_access_keys, "AccessKeyMetadata", UserName=user)
    assert len(keys) == 2 and pages == 2

    before = iam.get_access_key_last_used(AccessKeyId=k1["AccessKeyId"])
    assert before["UserName"] == user
    assert "LastUsedDate" not in before["AccessKeyLastUsed"]
    # A signed call with the key records its use (GetCallerIdentity needs no permission).
    sts = server.client("sts", k1["AccessKeyId"], k1["SecretAccessKey"])
    assert sts.get_caller_identity()["Arn"].endswith(f":user/{user}")
    after = iam.get_access_key_last_used(AccessKeyId=k1["AccessKeyId"])["AccessKeyLastUsed"]
    assert "LastUsedDate" in after and after["ServiceName"] == "sts"

    iam.update_access_key(UserName=user, AccessKeyId=k1["AccessKeyId"], Status="Inactive")
    statuses = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}
    assert statuses[k1["AccessKeyId"]] == "Inactive"
    with pytest.raises(ClientError) as e:
        sts.get_caller_identity()
    assert error_code(e) == ("InvalidClientTokenId", 403)
    fails("ValidationError", 400, iam.update_access_key, UserName=user,
          AccessKeyId=k1["AccessKeyId"], Status="Sleeping")
    iam.update_access_key(UserName=user, AccessKeyId=k1["AccessKeyId"], Status="Active")
    assert sts.get_caller_identity()["Arn"].endswith(f":user/{user}")

    iam.delete_access_key(UserName=user, AccessKeyId=k1["AccessKeyId"])
    fails("NoSuchEntity", 404, iam.delete_access_key, UserName=user, AccessKeyId=k1["AccessKeyId"])
    fails("NoSuchEntity", 404, iam.get_access_key_last_used, AccessKeyId=k1["AccessKeyId"])
    # A caller without the permission learns nothing about which keys exist.
    k2_client = server.client("iam", k2["AccessKeyId"], k2["SecretAccessKey"])
    fails("AccessDenied", 403, k2_client.get_access_key_last_used, AccessKeyId=k1["AccessKeyId"])
    fails("AccessDenied", 403, k2_client.get_access_key_last_used, AccessKeyId=k2["AccessKeyId"])
    with pytest.raises(ClientError) as e:
        sts.get_caller_identity()
    assert error_code(e) == ("InvalidClientTokenId", 403)
    # Another user's key cannot be addressed through this user.
    other = unique("other")
    iam.create_user(UserName=other)
    fails("NoSuchEntity", 404, iam.update_access_key, UserName=other,
          AccessKeyId=k2["AccessKeyId"], Status="Inactive")
    fails("NoSuchEntity", 404, iam.create_access_key, UserName=unique("ghost"))


def test_user_manages_own_access_keys_without_naming_itself(server, iam):
    user = unique("selfkeys")
    client = user_client(server, iam, user)
    iam.put_user_policy(
        UserName=user, PolicyName="own-keys",
        PolicyDocument=doc(["iam:CreateAccessKey", "iam:ListAccessKeys"],
                           resource="arn:gatehouse:iam::*:user/${aws:username}"),
    )
    assert wait_until(lambda: allowed(lambda: client.list_access_keys()))
    created = client.create_access_key()["AccessKey"]
    assert created["UserName"] == user
    assert len(client.list_access_keys()["AccessKeyMetadata"]) == 2
    # The policy variable scopes it to the caller: another user's keys are refused.
    other = unique("notme")
    iam.create_user(UserName=other)
    fails("AccessDenied", 403, client.list_access_keys, UserName=other)


# ---------------------------------------------------------------- tags


@pytest.mark.parametrize("kind", ["user", "role", "policy"])
def test_tags(iam, kind):
    if kind == "user":
        name = unique("tagged")
        iam.create_user(UserName=name)
        ident = {"UserName": name}
        tag, untag, list_ = iam.tag_user, iam.untag_user, iam.list_user_tags
    elif kind == "role":
        name = unique("tagged-role")
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
        ident = {"RoleName": name}
        tag, untag, list_ = iam.tag_role, iam.untag_role, iam.list_role_tags
    else:
        ident = {"PolicyArn": make_policy(iam, doc("iam:GetUser"))}
        tag, untag, list_ = iam.tag_policy, iam.untag_policy, iam.list_policy_tags
    tag(**ident, Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "1"}])
    tag(**ident, Tags=[{"Key": "a", "Value": "one"}])  # replaces the value
    tags = sorted((t["Key"], t["Value"]) for t in list_(**ident)["Tags"])
    assert tags == [("a", "one"), ("b", "2")]
    page = list_(**ident, MaxItems=1)
    assert page["IsTruncated"] is True and len(page["Tags"]) == 1
    rest = list_(**ident, Marker=page["Marker"])
    assert rest["IsTruncated"] is False
    assert sorted(t["Key"] for t in page["Tags"] + rest["Tags"]) == ["a", "b"]
    untag(**ident, TagKeys=["a", "never-there"])
    assert [(t["Key"], t["Value"]) for t in list_(**ident)["Tags"]] == [("b", "2")]
    fails("LimitExceeded", 409, tag, **ident,
          Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert len(list_(**ident)["Tags"]) == 1


def test_tags_on_missing_entities(iam, account):
    fails("NoSuchEntity", 404, iam.tag_user, UserName=unique("ghost"), Tags=[{"Key": "a", "Value": "b"}])
    fails("NoSuchEntity", 404, iam.list_role_tags, RoleName=unique("ghost"))
    fails("NoSuchEntity", 404, iam.untag_policy,
          PolicyArn=f"arn:gatehouse:iam::{account}:policy/{unique('none')}", TagKeys=["a"])


# ---------------------------------------------------------------- simulation and details


def test_simulate_principal_policy(iam, account):
    user = unique("sim")
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    iam.put_user_policy(UserName=user, PolicyName="invoke", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Invoke", "Effect": "Allow", "Action": "ai:InvokeModel",
             "Resource": f"arn:gatehouse:ai:local:{account}:model/*",
             "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
            {"Sid": "NoBig", "Effect": "Deny", "Action": "ai:InvokeModel",
             "Resource": f"arn:gatehouse:ai:local:{account}:model/big-*"},
        ],
    }))
    model = f"arn:gatehouse:ai:local:{account}:model/small"
    big = f"arn:gatehouse:ai:local:{account}:model/big-1"
    out = iam.simulate_principal_policy(
        PolicySourceArn=arn,
        ActionNames=["ai:InvokeModel", "ai:DeleteDeployment"],
        ResourceArns=[model, big],
        ContextEntries=[{"ContextKeyName": "aws:SourceIp", "ContextKeyValues": ["10.1.2.3"],
                         "ContextKeyType": "ip"}],
    )["EvaluationResults"]
    decisions = {(r["EvalActionName"], r["EvalResourceName"]): r["EvalDecision"] for r in out}
    assert decisions == {
        ("ai:InvokeModel", model): "allowed",
        ("ai:InvokeModel", big): "explicitDeny",
        ("ai:DeleteDeployment", model): "implicitDeny",
        ("ai:DeleteDeployment", big): "implicitDeny",
    }
    allowed_row = next(r for r in out if r["EvalDecision"] == "allowed")
    assert allowed_row["MatchedStatements"][0]["SourcePolicyType"] == "IAM Policy"
    outside = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["ai:InvokeModel"], ResourceArns=[model],
        ContextEntries=[{"ContextKeyName": "aws:SourceIp", "ContextKeyValues": ["192.0.2.1"],
                         "ContextKeyType": "ip"}],
    )["EvaluationResults"]
    assert outside[0]["EvalDecision"] == "implicitDeny"
    fails("NoSuchEntity", 404, iam.simulate_principal_policy,
          PolicySourceArn=f"arn:gatehouse:iam::{account}:user/{unique('ghost')}",
          ActionNames=["ai:InvokeModel"])
    fails("MalformedPolicyDocument", 400, iam.simulate_principal_policy, PolicySourceArn=arn,
          ActionNames=["ai:InvokeModel"], PolicyInputList=["{"])


def test_simulate_custom_policy(iam):
    out = iam.simulate_custom_policy(
        PolicyInputList=[doc("ai:InvokeModel", resource="arn:gatehouse:ai:local:*:model/llama-*")],
        ActionNames=["ai:InvokeModel"],
        ResourceArns=["arn:gatehouse:ai:local:111122223333:model/llama-3", "arn:gatehouse:ai:local:111122223333:model/gpt"],
    )["EvaluationResults"]
    assert [r["EvalDecision"] for r in out] == ["allowed", "implicitDeny"]
    bounded = iam.simulate_custom_policy(
        PolicyInputList=[doc("ai:*")],
        PermissionsBoundaryPolicyInputList=[doc("ai:ListModels")],
        ActionNames=["ai:InvokeModel", "ai:ListModels"],
    )["EvaluationResults"]
    assert [r["EvalDecision"] for r in bounded] == ["implicitDeny", "allowed"]
    fails("MalformedPolicyDocument", 400, iam.simulate_custom_policy,
          PolicyInputList=['{"Version": "2012-10-17"}'], ActionNames=["ai:InvokeModel"])


def test_get_account_authorization_details(iam):
    user, group, role = unique("det-u"), unique("det-g"), unique("det-r")
    arn = make_policy(iam, doc("ai:InvokeModel"))
    iam.create_user(UserName=user)
    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="u-inline", PolicyDocument=doc("ai:ListModels"))
    iam.attach_group_policy(GroupName=group, PolicyArn=arn)
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    # The whole account, page by page as boto3's paginator follows Marker.
    d = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
    pages = 0
    for page in iam.get_paginator("get_account_authorization_details").paginate(
            PaginationConfig={"PageSize": 2}):
        pages += 1
        assert sum(len(page[k]) for k in d) <= 2
        for k in d:
            d[k] += page[k]
    entities = sum(len(v) for v in d.values())
    assert entities >= 4 and pages == -(-entities // 2)
    names = [x["UserName"] for x in d["UserDetailList"]]
    assert len(names) == len(set(names)), "no entity is repeated across pages"
    first = iam.get_account_authorization_details(MaxItems=1)
    assert first["IsTruncated"] and first["Marker"]
    with pytest.raises(ClientError) as e:
        iam.get_account_authorization_details(Marker="not-a-marker")
    assert error_code(e) == ("ValidationError", 400)
    u = next(x for x in d["UserDetailList"] if x["UserName"] == user)
    assert u["GroupList"] == [group]
    assert [p["PolicyName"] for p in u["UserPolicyList"]] == ["u-inline"]
    assert u["UserPolicyList"][0]["PolicyDocument"]["Statement"][0]["Action"] == "ai:ListModels"
    g = next(x for x in d["GroupDetailList"] if x["GroupName"] == group)
    assert [p["PolicyArn"] for p in g["AttachedManagedPolicies"]] == [arn]
    r = next(x for x in d["RoleDetailList"] if x["RoleName"] == role)
    assert r["AssumeRolePolicyDocument"] == json.loads(TRUST)
    p = next(x for x in d["Policies"] if x["Arn"] == arn)
    assert p["AttachmentCount"] == 2
    assert p["PolicyVersionList"][0]["Document"]["Statement"][0]["Action"] == "ai:InvokeModel"
    only_roles = iam.get_account_authorization_details(Filter=["Role"])
    assert only_roles["UserDetailList"] == [] and only_roles["GroupDetailList"] == []
    assert any(x["RoleName"] == role for x in only_roles["RoleDetailList"])


# ---------------------------------------------------------------- authorization scenario


def allowed(call):
    try:
        call()
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] != "AccessDenied":
            raise
        return False


def wait_until(pred, timeout=2.0):
    """Policy changes are in force within a second on every node; allow a little slack."""
    deadline = time.time() + timeout
    while True:
        if pred():
            return True
        if time.time() > deadline:
            return False
        time.sleep(0.05)


def test_user_denied_allowed_then_denied_by_boundary_guardrail_and_deny(server, iam, account, tmp_path):
    user = unique("dev")
    dev = user_client(server, iam, user)
    list_users = lambda: dev.list_users(MaxItems=1)  # noqa: E731
    get_self = lambda: dev.get_user(UserName=user)  # noqa: E731

    # 1. No policy: implicitly denied, with AWS's message naming the action and resource.
    msg = fails("AccessDenied", 403, dev.list_users)
    assert "iam:ListUsers" in msg and user in msg
    assert not allowed(get_self)

    # 2. A managed policy attached: allowed.
    arn = make_policy(iam, doc(["iam:ListUsers", "iam:GetUser"]))
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    assert wait_until(lambda: allowed(list_users))
    assert allowed(get_self)
    # Writes it was not granted stay denied.
    fails("AccessDenied", 403, dev.create_user, UserName=unique("nope"))

    # 3. A permissions boundary that allows only iam:Get*: ListUsers denied, GetUser allowed.
    boundary = make_policy(iam, doc("iam:Get*"))
    iam.put_user_permissions_boundary(UserName=user, PermissionsBoundary=boundary)
    assert wait_until(lambda: not allowed(list_users))
    assert allowed(get_self)
    iam.delete_user_permissions_boundary(UserName=user)
    assert wait_until(lambda: allowed(list_users))

    # 4. An account guardrail (put with the admin CLI, straight into the store): denied, on
    #    this node within a second, though the change did not go through the API.
    guard = tmp_path / "guardrail.json"
    guard.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:List*", "Resource": "*"},
    ]}))
    r = server.cli("admin", "guardrail", "put", "--account", account, "--name", "no-lists", "--file", str(guard))
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: not allowed(list_users), timeout=1.5)
    assert allowed(get_self)
    r = server.cli("admin", "guardrail", "delete", "--account", account, "--name", "no-lists")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: allowed(list_users), timeout=1.5)

    # 5. An explicit Deny in an inline policy overrides the Allow.
    iam.put_user_policy(UserName=user, PolicyName="deny-list",
                        PolicyDocument=doc("iam:ListUsers", effect="Deny", sid="NoListing"))
    assert wait_until(lambda: not allowed(list_users))
    msg = fails("AccessDenied", 403, dev.list_users)
    assert "explicit deny" in msg
    assert allowed(get_self)

    # 6. Root is not subject to any of it.
    assert iam.list_users(MaxItems=1)["Users"]


def test_guardrail_that_allows_nothing_denies_everything(server, iam, account, tmp_path):
    """An account guardrail must allow too (SCP semantics): one that allows only ai:* denies
    the IAM calls the user's own policy allows. Uses a second account so that the guardrail
    does not affect the other tests sharing this server."""
    other = server.cli("admin", "account", "create", "sandbox")
    assert other.returncode == 0, other.stderr
    other_id = other.stdout.strip()
    assert len(other_id) == 12 and other_id != account
    guard = tmp_path / "g.json"
    guard.write_text(doc("ai:*"))
    r = server.cli("admin", "guardrail", "put", "--account", other_id, "--name", "ai-only", "--file", str(guard))
    assert r.returncode == 0, r.stderr
    listed = server.cli("admin", "guardrail", "list", "--account", other_id)
    assert listed.stdout.split() == ["ai-only"]
    # The default account is untouched.
    user = unique("free")
    dev = user_client(server, iam, user)
    iam.attach_user_policy(UserName=user, PolicyArn=make_policy(iam, doc("iam:ListUsers")))
    assert wait_until(lambda: allowed(lambda: dev.list_users(MaxItems=1)))
    bad = tmp_path / "bad.json"
    bad.write_text('{"Statement": "nope"}')
    r = server.cli("admin", "guardrail", "put", "--account", other_id, "--name", "bad", "--file", str(bad))
    assert r.returncode == 2 and str(bad) in r.stderr
    assert server.cli("admin", "guardrail", "list", "--account", other_id).stdout.split() == ["ai-only"]


def test_denied_calls_change_nothing(server, iam):
    user = unique("readonly")
    dev = user_client(server, iam, user)
    iam.attach_user_policy(UserName=user, PolicyArn=make_policy(iam, doc(["iam:Get*", "iam:List*"])))
    assert wait_until(lambda: allowed(lambda: dev.get_user(UserName=user)))
    victim = unique("victim")
    iam.create_user(UserName=victim)
    fails("AccessDenied", 403, dev.delete_user, UserName=victim)
    fails("AccessDenied", 403, dev.create_user, UserName=unique("sneaky"))
    fails("AccessDenied", 403, dev.put_user_policy, UserName=user, PolicyName="escalate",
          PolicyDocument=json.dumps(ALLOW_ALL_IAM))
    fails("AccessDenied", 403, dev.attach_user_policy, UserName=user,
          PolicyArn=make_policy(iam, json.dumps(ALLOW_ALL_IAM)))
    assert iam.get_user(UserName=victim)["User"]["UserName"] == victim
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == []
    assert len(iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]) == 1


def test_resource_scoped_permissions_follow_paths(server, iam, account):
    """Policies name Gatehouse ARNs with paths; a grant on one path does not reach another."""
    user = unique("pathy")
    dev = user_client(server, iam, user)
    team = f"/{unique('team')}/"
    iam.put_user_policy(UserName=user, PolicyName="team", PolicyDocument=doc(
        ["iam:CreateUser", "iam:GetUser", "iam:DeleteUser"],
        resource=f"arn:gatehouse:iam::{account}:user{team}*"))
    mine = unique("teammate")
    assert wait_until(lambda: allowed(lambda: dev.create_user(UserName=mine, Path=team)))
    assert dev.get_user(UserName=mine)["User"]["Path"] == team
    fails("AccessDenied", 403, dev.create_user, UserName=unique("outsider"))
    outsider = unique("outsider")
    iam.create_user(UserName=outsider)
    fails("AccessDenied", 403, dev.delete_user, UserName=outsider)
    dev.delete_user(UserName=mine)
