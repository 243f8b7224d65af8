"""The token service with boto3: AssumeRole (trust policies, cross-account with ExternalId,
durations and chaining, session policies, session tags, source identity), temporary
credentials used with SigV4, GetSessionToken, and the end of a stolen session (expiry,
revocation)."""

import json
import os
import shutil
import subprocess
import sys
import time

import botocore.exceptions
import pytest

from conftest import REGION

ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def trust(principal, actions=("sts:AssumeRole",), condition=None):
    st = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": list(actions)}
    if condition:
        st["Condition"] = condition
    return doc(st)


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def make_user(gatehouse, iam, name, *statements):
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(*statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def make_role(iam, name, trust_doc, *statements, **kw):
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_doc, **kw)["Role"]
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=doc(*statements))
    return role["Arn"]


def session_client(gatehouse, creds, service="iam"):
    return gatehouse.client(service, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def account_of(arn):
    return arn.split(":")[4]


def test_assume_role_gives_working_temporary_credentials(gatehouse, iam):
    alice = make_user(gatehouse, iam, "alice")
    account = account_of(iam.get_user(UserName="alice")["User"]["Arn"])
    role_arn = make_role(
        iam, "reader", trust(f"arn:gatehouse:iam::{account}:user/alice"), allow("iam:ListUsers")
    )
    sts = gatehouse.client("sts", *alice)
    out = sts.assume_role(RoleArn=role_arn, RoleSessionName="s1")
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert creds["SessionToken"] and creds["SecretAccessKey"]
    assert out["AssumedRoleUser"]["Arn"] == f"arn:gatehouse:sts::{account}:assumed-role/reader/s1"
    assert out["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA")
    assert out["AssumedRoleUser"]["AssumedRoleId"].endswith(":s1")
    left = (creds["Expiration"] - creds["Expiration"].now(creds["Expiration"].tzinfo)).total_seconds()
    assert 3500 < left <= 3600

    who = session_client(gatehouse, creds, "sts").get_caller_identity()
    assert who["Arn"] == out["AssumedRoleUser"]["Arn"]
    assert who["UserId"] == out["AssumedRoleUser"]["AssumedRoleId"]
    role_iam = session_client(gatehouse, creds)
    assert any(u["UserName"] == "alice" for u in role_iam.list_users()["Users"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        role_iam.create_user(UserName="mallory")
    assert error_code(e) == "AccessDenied"
    assert "assumed-role/reader/s1" in e.value.response["Error"]["Message"]

    # A session token that does not belong to the key, or was tampered with, is refused.
    forged = dict(creds, SessionToken=creds["SessionToken"][:-4] + "AAAA")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        session_client(gatehouse, forged, "sts").get_caller_identity()
    assert error_code(e) in ("InvalidClientTokenId", "InvalidToken")


def test_trust_policy_decides(gatehouse, iam):
    account = account_of(iam.create_user(UserName="alice")["User"]["Arn"])
    bob = make_user(gatehouse, iam, "bob", allow("sts:AssumeRole"))
    role_arn = make_role(iam, "only-alice", trust(f"arn:gatehouse:iam::{account}:user/alice"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        gatehouse.client("sts", *bob).assume_role(RoleArn=role_arn, RoleSessionName="x1")
    assert error_code(e) == "AccessDenied"
    # A role that does not exist looks the same as one the caller may not assume.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        gatehouse.client("sts", *bob).assume_role(
            RoleArn=f"arn:gatehouse:iam::{account}:role/nope", RoleSessionName="x1"
        )
    assert error_code(e) == "AccessDenied"
    # Root credentials cannot assume roles, as in AWS.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        gatehouse.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="x1")
    assert error_code(e) == "AccessDenied"


def test_account_root_in_trust_delegates_to_identity_policies(gatehouse, iam):
    carol = make_user(gatehouse, iam, "carol")
    account = account_of(iam.get_user(UserName="carol")["User"]["Arn"])
    role_arn = make_role(iam, "delegated", trust(f"arn:gatehouse:iam::{account}:root"))
    sts = gatehouse.client("sts", *carol)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="c1")
    assert error_code(e) == "AccessDenied"
    iam.put_user_policy(UserName="carol", PolicyName="assume", PolicyDocument=doc(allow("sts:AssumeRole", role_arn)))
    wait_until(lambda: try_assume(sts, role_arn, "c1"))
    # "*" in the trust policy grants by itself within the account, like any resource
    # policy naming every principal.
    star = make_role(iam, "star", trust("*"))
    assert sts.assume_role(RoleArn=star, RoleSessionName="c2")["Credentials"]


def try_assume(sts, role_arn, name, **kw):
    try:
        return sts.assume_role(RoleArn=role_arn, RoleSessionName=name, **kw)
    except botocore.exceptions.ClientError as e:
        if error_code_of(e) == "AccessDenied":
            return None
        raise


def error_code_of(e):
    return e.response["Error"]["Code"]


def wait_until(fn, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        out = fn()
        if out:
            return out
        if time.time() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def test_cross_account_with_external_id(gatehouse, iam):
    alice = make_user(gatehouse, iam, "alice")
    home = account_of(iam.get_user(UserName="alice")["User"]["Arn"])
    out = gatehouse.cli("admin", "account", "create", "partner", "--admin-user", "admin")
    assert out.returncode == 0, out.stderr
    partner = json.loads(out.stdout)
    other = partner["AccountId"]
    assert other != home
    other_iam = gatehouse.client("iam", partner["AccessKeyId"], partner["SecretAccessKey"])
    role_arn = make_role(
        other_iam,
        "vendor-access",
        trust(f"arn:gatehouse:iam::{home}:root", condition={"StringEquals": {"sts:ExternalId": "ext-7781"}}),
        allow("iam:ListRoles"),
    )
    assert account_of(role_arn) == other
    sts = gatehouse.client("sts", *alice)
    # The trusted side alone is not enough: alice's own policies must allow it too.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="v1", ExternalId="ext-7781")
    assert error_code(e) == "AccessDenied"
    iam.put_user_policy(UserName="alice", PolicyName="x", PolicyDocument=doc(allow("sts:AssumeRole", role_arn)))
    wait_until(lambda: try_assume(sts, role_arn, "v0", ExternalId="ext-7781"))
    for bad in ({}, {"ExternalId": "ext-0000"}):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sts.assume_role(RoleArn=role_arn, RoleSessionName="v1", **bad)
        assert error_code(e) == "AccessDenied"
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="v1", ExternalId="ext-7781")["Credentials"]
    who = session_client(gatehouse, creds, "sts").get_caller_identity()
    assert who["Account"] == other
    assert who["Arn"] == f"arn:gatehouse:sts::{other}:assumed-role/vendor-access/v1"
    roles = session_client(gatehouse, creds).list_roles()["Roles"]
    assert [r["RoleName"] for r in roles] == ["vendor-access"]


def test_durations_and_chaining(gatehouse, iam):
    alice = make_user(gatehouse, iam, "alice")
    account = account_of(iam.get_user(UserName="alice")["User"]["Arn"])
    me = f"arn:gatehouse:iam::{account}:user/alice"
    first = make_role(iam, "first", trust(me), allow("sts:AssumeRole"), MaxSessionDuration=7200)
    second = make_role(
        iam, "second", trust(f"arn:gatehouse:iam::{account}:role/first"), allow("iam:ListRoles"),
        MaxSessionDuration=43200,
    )
    sts = gatehouse.client("sts", *alice, validate=False)
    for bad in (899, 7201, 43201):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sts.assume_role(RoleArn=first, RoleSessionName="d1", DurationSeconds=bad)
        assert error_code(e) == "ValidationError", bad
    long = sts.assume_role(RoleArn=first, RoleSessionName="d1", DurationSeconds=7200)["Credentials"]
    left = (long["Expiration"] - long["Expiration"].now(long["Expiration"].tzinfo)).total_seconds()
    assert 7100 < left <= 7200
    chain_sts = session_client(gatehouse, long, "sts")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        chain_sts.assume_role(RoleArn=second, RoleSessionName="d2", DurationSeconds=3601)
    assert error_code(e) == "ValidationError"
    assert "chaining" in e.value.response["Error"]["Message"]
    chained = chain_sts.assume_role(RoleArn=second, RoleSessionName="d2", DurationSeconds=3600)
    who = session_client(gatehouse, chained["Credentials"], "sts").get_caller_identity()
    assert who["Arn"].endswith(":assumed-role/second/d2")
    # The chained session has the second role's permissions, not the first's.
    session_client(gatehouse, chained["Credentials"]).list_roles()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        session_client(gatehouse, chained["Credentials"], "sts").assume_role(RoleArn=second, RoleSessionName="d3")
    assert error_code(e) == "AccessDenied"


def test_session_policies_narrow_the_role(gatehouse, iam):
    alice = make_user(gatehouse, iam, "alice")
    account = account_of(iam.get_user(UserName="alice")["User"]["Arn"])
    role_arn = make_role(
        iam, "broad", trust(f"arn:gatehouse:iam::{account}:user/alice"), allow(["iam:List*", "iam:Get*"])
    )
    sts = gatehouse.client("sts", *alice)
    full = session_client(gatehouse, sts.assume_role(RoleArn=role_arn, RoleSessionName="f1")["Credentials"])
    full.list_roles()
    full.list_users()

    narrow = sts.assume_role(
        RoleArn=role_arn, RoleSessionName="n1", Policy=doc(allow(["iam:ListUsers", "iam:CreateUser"]))
    )
    assert narrow["PackedPolicySize"] > 0
    n = session_client(gatehouse, narrow["Credentials"])
    n.list_users()
    for call in (n.list_roles, lambda: n.create_user(UserName="x")):
        # ListRoles: the session policy does not allow it; CreateUser: the role does not.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_code(e) == "AccessDenied"

    managed = iam.create_policy(PolicyName="roles-only", PolicyDocument=doc(allow("iam:ListRoles")))["Policy"]["Arn"]
    m = session_client(
        gatehouse, sts.assume_role(RoleArn=role_arn, RoleSessionName="m1", PolicyArns=[{"arn": managed}])["Credentials"]
    )
    m.list_roles()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        m.list_users()
    assert error_code(e) == "AccessDenied"

    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="bad", Policy="{not json")
    assert error_code(e) == "MalformedPolicyDocument"


def test_session_tags_reach_principal_tag(gatehouse, iam):
    alice = make_user(gatehouse, iam, "alice")
    account = account_of(iam.get_user(UserName="alice")["User"]["Arn"])
    me = f"arn:gatehouse:iam::{account}:user/alice"
    tagged_only = allow("iam:ListUsers", Condition={"StringEquals": {"aws:PrincipalTag/team": "search"}})
    role_arn = make_role(iam, "team", trust(me, ("sts:AssumeRole", "sts:TagSession")), tagged_only, allow("sts:AssumeRole"))
    untaggable = make_role(iam, "untaggable", trust(me), tagged_only)
    make_role(
        iam, "downstream",
        trust(f"arn:gatehouse:iam::{account}:role/team", ("sts:AssumeRole", "sts:TagSession")), tagged_only,
    )
    sts = gatehouse.client("sts", *alice)

    search = sts.assume_role(
        RoleArn=role_arn, RoleSessionName="t1", Tags=[{"Key": "team", "Value": "search"}],
        TransitiveTagKeys=["team"],
    )["Credentials"]
    session_client(gatehouse, search).list_users()

    other = sts.assume_role(RoleArn=role_arn, RoleSessionName="t2", Tags=[{"Key": "team", "Value": "ads"}])["Credentials"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        session_client(gatehouse, other).list_users()
    assert error_code(e) == "AccessDenied"

    # Tagging needs sts:TagSession in the trust policy.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=untaggable, RoleSessionName="t3", Tags=[{"Key": "team", "Value": "search"}])
    assert error_code(e) == "AccessDenied"

    # Transitive tags pass down a chain and cannot be overridden there.
    chain_sts = session_client(gatehouse, search, "sts")
    down_arn = f"arn:gatehouse:iam::{account}:role/downstream"
    down = chain_sts.assume_role(RoleArn=down_arn, RoleSessionName="t4")["Credentials"]
    session_client(gatehouse, down).list_users()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        chain_sts.assume_role(RoleArn=down_arn, RoleSessionName="t5", Tags=[{"Key": "team", "Value": "ads"}])
    assert error_code(e) == "InvalidParameterValue"
    # A non-transitive tag does not pass down.
    plain = session_client(gatehouse, sts.assume_role(
        RoleArn=role_arn, RoleSessionName="t6", Tags=[{"Key": "team", "Value": "search"}]
    )["Credentials"], "sts")
    down2 = plain.assume_role(RoleArn=down_arn, RoleSessionName="t7")["Credentials"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        session_client(gatehouse, down2).list_users()
    assert error_code(e) == "AccessDenied"


def test_source_identity_is_set_once_and_kept(gatehouse, iam):
    alice = make_user(gatehouse, iam, "alice")
    account = account_of(iam.get_user(UserName="alice")["User"]["Arn"])
    me = f"arn:gatehouse:iam::{account}:user/alice"
    first = make_role(iam, "si-first", trust(me, ("sts:AssumeRole", "sts:SetSourceIdentity")), allow("sts:AssumeRole"))
    second = make_role(
        iam, "si-second",
        trust(f"arn:gatehouse:iam::{account}:role/si-first", ("sts:AssumeRole", "sts:SetSourceIdentity")),
        allow("iam:ListUsers", Condition={"StringEquals": {"aws:SourceIdentity": "alice@example.com"}}),
    )
    no_set = make_role(iam, "si-noset", trust(me))
    sts = gatehouse.client("sts", *alice)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=no_set, RoleSessionName="s1", SourceIdentity="alice@example.com")
    assert error_code(e) == "AccessDenied"
    out = sts.assume_role(RoleArn=first, RoleSessionName="s1", SourceIdentity="alice@example.com")
    assert out["SourceIdentity"] == "alice@example.com"
    chain = session_client(gatehouse, out["Credentials"], "sts")
    kept = chain.assume_role(RoleArn=second, RoleSessionName="s2")
    assert kept["SourceIdentity"] == "alice@example.com"
    session_client(gatehouse, kept["Credentials"]).list_users()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        chain.assume_role(RoleArn=second, RoleSessionName="s3", SourceIdentity="mallory")
    assert error_code(e) == "AccessDenied"


def test_bad_input_is_a_validation_error(gatehouse, iam):
    alice = make_user(gatehouse, iam, "alice")
    account = account_of(iam.get_user(UserName="alice")["User"]["Arn"])
    role_arn = make_role(iam, "r", trust(f"arn:gatehouse:iam::{account}:user/alice"))
    sts = gatehouse.client("sts", *alice, validate=False)
    cases = [
        dict(RoleArn=role_arn, RoleSessionName="a"),
        dict(RoleArn=role_arn, RoleSessionName="bad name!"),
        dict(RoleArn="arn:aws:iam::123456789012:role/r", RoleSessionName="ok"),
        dict(RoleArn=role_arn, RoleSessionName="ok", ExternalId="x"),
        dict(RoleArn=role_arn, RoleSessionName="ok", Tags=[{"Key": "a", "Value": "1"}, {"Key": "A", "Value": "2"}]),
        dict(RoleArn=role_arn, RoleSessionName="ok", Tags=[{"Key": "a", "Value": "1"}], TransitiveTagKeys=["b"]),
    ]
    for kw in cases:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sts.assume_role(**kw)
        assert error_code(e) == "ValidationError", kw


def test_get_session_token(gatehouse, iam):
    dave = make_user(gatehouse, iam, "dave", allow(["iam:ListUsers", "iam:CreateAccessKey"]))
    out = gatehouse.client("sts", *dave).get_session_token(DurationSeconds=900)["Credentials"]
    assert out["AccessKeyId"].startswith("ASIA")
    who = session_client(gatehouse, out, "sts").get_caller_identity()
    assert who["Arn"].endswith(":user/dave")
    gatehouse.client("iam", *dave).list_users()
    # As in AWS: without MFA, GetSessionToken credentials call no IAM action, even one
    # the user is allowed: a stolen session token cannot mint access keys.
    for call in (session_client(gatehouse, out).list_users,
                 session_client(gatehouse, out).list_roles,
                 lambda: session_client(gatehouse, out).create_access_key(UserName="dave")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_code(e) == "AccessDenied"
    assert len(iam.list_access_keys(UserName="dave")["AccessKeyMetadata"]) == 1
    # Temporary credentials cannot mint more temporary credentials.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        session_client(gatehouse, out, "sts").get_session_token()
    assert error_code(e) == "AccessDenied"


def test_revoked_sessions_are_useless_on_every_node(gatehouse, iam, make_server):
    alice = make_user(gatehouse, iam, "alice")
    account = account_of(iam.get_user(UserName="alice")["User"]["Arn"])
    role_arn = make_role(iam, "revokable", trust(f"arn:gatehouse:iam::{account}:user/alice"), allow("iam:ListUsers"), allow("sts:AssumeRole"))
    nodes = [gatehouse]
    if gatehouse.backend == "postgres":
        # A second node on the same database: sessions from one work on the other.
        nodes.append(make_server("postgres", database_url=gatehouse.database_url, data_dir=gatehouse.data_dir))
    sts = gatehouse.client("sts", *alice)
    stolen = sts.assume_role(RoleArn=role_arn, RoleSessionName="victim")["Credentials"]
    for node in nodes:
        session_client(node, stolen).list_users()
    out = gatehouse.cli("admin", "revoke-sessions", "--role", "revokable")
    assert out.returncode == 0, out.stderr
    assert "revoked" in out.stdout

    def denied_everywhere():
        for node in nodes:
            try:
                session_client(node, stolen).list_users()
                return False
            except botocore.exceptions.ClientError as e:
                assert error_code_of(e) == "AccessDenied"
        return True

    wait_until(denied_everywhere)
    # Chaining from a revoked session is refused too.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        session_client(gatehouse, stolen, "sts").assume_role(RoleArn=role_arn, RoleSessionName="again")
    assert error_code(e) == "AccessDenied"
    # Sessions issued after the revocation work.
    time.sleep(0.01)
    fresh = sts.assume_role(RoleArn=role_arn, RoleSessionName="fresh")["Credentials"]
    for node in nodes:
        session_client(node, fresh).list_users()
    # Unknown role: an error in the CLI's shape, exit 2.
    out = gatehouse.cli("admin", "revoke-sessions", "--role", "no-such-role")
    assert out.returncode == 2


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

CALLER = """
import boto3, sys, json
c = boto3.client("sts", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],
                 aws_secret_access_key=sys.argv[3], aws_session_token=sys.argv[4], region_name=sys.argv[5])
try:
    print(json.dumps({"ok": c.get_caller_identity()["Arn"]}))
except Exception as e:
    print(json.dumps({"error": e.response["Error"]["Code"]}))
"""


@pytest.mark.skipif(not os.path.exists(FAKETIME_LIB), reason="libfaketime not installed (Debian package faketime)")
def test_stolen_session_is_useless_after_expiry(gatehouse, iam):
    """The server and the client both run 16 minutes in the future (libfaketime): the
    signature is fresh, the 15-minute session is not."""
    alice = make_user(gatehouse, iam, "alice")
    account = account_of(iam.get_user(UserName="alice")["User"]["Arn"])
    role_arn = make_role(iam, "short", trust(f"arn:gatehouse:iam::{account}:user/alice"))
    stolen = gatehouse.client("sts", *alice).assume_role(
        RoleArn=role_arn, RoleSessionName="short", DurationSeconds=900
    )["Credentials"]
    gatehouse.stop()
    env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "+16m", "FAKETIME_DONT_RESET": "1"}
    gatehouse.extra_env.update(env)
    gatehouse.start()

    def call(extra_env):
        run_env = dict(os.environ, **extra_env)
        out = subprocess.run(
            [sys.executable, "-c", CALLER, gatehouse.endpoint, stolen["AccessKeyId"],
             stolen["SecretAccessKey"], stolen["SessionToken"], REGION],
            env=run_env, capture_output=True, text=True, timeout=60,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    assert call(env) == {"error": "ExpiredToken"}
    # The same request at the real time is refused for its clock skew instead; either way
    # nothing is served.
    assert "ok" not in call({})


def test_denials_carry_a_message_only_allowed_principals_can_decode(gatehouse, iam):
    ivan = make_user(gatehouse, iam, "ivan", allow("iam:ListUsers"))
    auditor = make_user(gatehouse, iam, "auditor", allow("sts:DecodeAuthorizationMessage"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        gatehouse.client("iam", *ivan).list_roles()
    assert error_code(e) == "AccessDenied"
    message = e.value.response["Error"]["Message"]
    marker = "Encoded authorization failure message: "
    assert marker in message
    encoded = message.split(marker, 1)[1].strip()
    assert "ListRoles" not in encoded
    # The denied caller cannot read it...
    with pytest.raises(botocore.exceptions.ClientError) as e:
        gatehouse.client("sts", *ivan).decode_authorization_message(EncodedMessage=encoded)
    assert error_code(e) == "AccessDenied"
    # ...a principal allowed sts:DecodeAuthorizationMessage can.
    decoded = json.loads(
        gatehouse.client("sts", *auditor).decode_authorization_message(EncodedMessage=encoded)["DecodedMessage"]
    )
    assert decoded["allowed"] is False
    assert decoded["explicitDeny"] is False
    assert decoded["context"]["action"] == "iam:ListRoles"
    assert decoded["context"]["principal"]["arn"].endswith(":user/ivan")
    keys = {c["key"] for c in decoded["context"]["conditions"]["items"]}
    assert "aws:SourceIp" in keys
    with pytest.raises(botocore.exceptions.ClientError) as e:
        gatehouse.client("sts", *auditor).decode_authorization_message(EncodedMessage="ghm1.nope.AAAA")
    assert error_code(e) == "InvalidAuthorizationMessageException"


def test_source_ip_condition_in_trust(gatehouse, iam):
    alice = make_user(gatehouse, iam, "alice")
    account = account_of(iam.get_user(UserName="alice")["User"]["Arn"])
    me = f"arn:gatehouse:iam::{account}:user/alice"
    office = make_role(iam, "office", trust(me, condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}))
    elsewhere = make_role(iam, "elsewhere", trust(me, condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    sts = gatehouse.client("sts", *alice)
    sts.assume_role(RoleArn=office, RoleSessionName="ip1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=elsewhere, RoleSessionName="ip2")
    assert error_code(e) == "AccessDenied"


def test_role_sessions_obey_boundary_and_guardrails(gatehouse, iam, tmp_path):
    alice = make_user(gatehouse, iam, "alice")
    account = account_of(iam.get_user(UserName="alice")["User"]["Arn"])
    boundary = iam.create_policy(
        PolicyName="list-only", PolicyDocument=doc(allow(["iam:ListUsers", "iam:ListRoles", "iam:ListPolicies"]))
    )["Policy"]["Arn"]
    role_arn = make_role(
        iam, "bounded", trust(f"arn:gatehouse:iam::{account}:user/alice"),
        allow(["iam:List*", "iam:GetUser"]), PermissionsBoundary=boundary,
    )
    creds = gatehouse.client("sts", *alice).assume_role(RoleArn=role_arn, RoleSessionName="b1")["Credentials"]
    s = session_client(gatehouse, creds)
    s.list_users()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s.get_user(UserName="alice")  # the role allows it, the boundary does not
    assert error_code(e) == "AccessDenied"
    guard = tmp_path / "guardrail.json"
    guard.write_text(doc(allow("*"), {"Effect": "Deny", "Action": "iam:ListRoles", "Resource": "*"}))
    out = gatehouse.cli("admin", "guardrail", "put", "--account", account, "--name", "no-list-roles", "--file", str(guard))
    assert out.returncode == 0, out.stderr
    s.list_policies()

    def guarded():
        try:
            s.list_roles()
            return False
        except botocore.exceptions.ClientError as e:
            return error_code_of(e) == "AccessDenied"

    wait_until(guarded)
    s.list_users()


def test_aws_cli_assume_role_and_use_the_session(gatehouse, iam):
    """The AWS CLI as a client: assume-role, then get-caller-identity with the session."""
    alice = make_user(gatehouse, iam, "alice")
    account = account_of(iam.get_user(UserName="alice")["User"]["Arn"])
    role_arn = make_role(iam, "cli-role", trust(f"arn:gatehouse:iam::{account}:user/alice"))

    def aws(*args, key, secret, token=None):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret,
                   AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        env.pop("AWS_SESSION_TOKEN", None)
        if token:
            env["AWS_SESSION_TOKEN"] = token
        out = subprocess.run(["aws", "--endpoint-url", gatehouse.endpoint, "--output", "json", *args],
                             env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    creds = aws("sts", "assume-role", "--role-arn", role_arn, "--role-session-name", "cli",
                "--duration-seconds", "900", key=alice[0], secret=alice[1])["Credentials"]
    who = aws("sts", "get-caller-identity", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
              token=creds["SessionToken"])
    assert who["Arn"] == f"arn:gatehouse:sts::{account}:assumed-role/cli-role/cli"


def test_signing_key_rotation_keeps_live_sessions(gatehouse, iam):
    """`gatehouse admin rotate-signing-key`: the running node signs new sessions with the new
    key within a second, and sessions signed before the rotation keep working."""
    alice = make_user(gatehouse, iam, "alice")
    account = account_of(iam.get_user(UserName="alice")["User"]["Arn"])
    role_arn = make_role(iam, "rotating", trust(f"arn:gatehouse:iam::{account}:user/alice"))
    sts = gatehouse.client("sts", *alice)
    before = sts.assume_role(RoleArn=role_arn, RoleSessionName="before")["Credentials"]
    kid_before = before["SessionToken"].split(".")[1]

    out = gatehouse.cli("admin", "rotate-signing-key")
    assert out.returncode == 0, out.stderr
    new_kid = out.stdout.split("signed with key ")[1].split(";")[0]
    assert new_kid != kid_before

    deadline = time.time() + 3
    while True:
        after = sts.assume_role(RoleArn=role_arn, RoleSessionName="after")["Credentials"]
        if after["SessionToken"].split(".")[1] == new_kid or time.time() > deadline:
            break
        time.sleep(0.2)
    assert after["SessionToken"].split(".")[1] == new_kid
    for creds in (before, after):
        who = session_client(gatehouse, creds, "sts").get_caller_identity()
        assert who["Arn"].endswith("assumed-role/rotating/" + ("before" if creds is before else "after"))
