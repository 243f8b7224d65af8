"""Virtual MFA devices and MFA-authenticated sessions with boto3, codes from pyotp (a real
authenticator implementation): enabling needs two consecutive codes, seeds are sealed at
rest, a code cannot be replayed, and policies testing aws:MultiFactorAuthPresent /
aws:MultiFactorAuthAge deny without MFA and allow with it."""

import json
import os
import time

import botocore.exceptions
import pyotp
import pytest

from test_sts import account_of, allow, doc, error_code, make_role, make_user, session_client, trust


def new_device(iam, name):
    d = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    seed = d["Base32StringSeed"].decode()
    return d["SerialNumber"], pyotp.TOTP(seed)


def enable(iam, user, serial, totp):
    now = time.time()
    iam.enable_mfa_device(
        UserName=user, SerialNumber=serial,
        AuthenticationCode1=totp.at(now - 30), AuthenticationCode2=totp.at(now),
    )
    return now


def test_virtual_mfa_device_lifecycle(gatehouse, iam):
    iam.create_user(UserName="erin")
    serial, totp = new_device(iam, "erin-phone")
    assert serial.endswith(":mfa/erin-phone")
    # Two codes that are not consecutive, or wrong, are refused.
    now = time.time()
    for c1, c2 in ((totp.at(now), totp.at(now - 30)), ("000000", "111111"), (totp.at(now - 60), totp.at(now))):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            iam.enable_mfa_device(UserName="erin", SerialNumber=serial, AuthenticationCode1=c1, AuthenticationCode2=c2)
        assert error_code(e) == "InvalidAuthenticationCode"
    assert iam.list_mfa_devices(UserName="erin")["MFADevices"] == []
    enable(iam, "erin", serial, totp)
    devices = iam.list_mfa_devices(UserName="erin")["MFADevices"]
    assert [d["SerialNumber"] for d in devices] == [serial]
    assert devices[0]["UserName"] == "erin"
    # In use: cannot be deleted, nor enabled twice.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.delete_virtual_mfa_device(SerialNumber=serial)
    assert error_code(e) == "DeleteConflict"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_virtual_mfa_device(VirtualMFADeviceName="erin-phone")
    assert error_code(e) == "EntityAlreadyExists"
    # As in AWS, a user with an MFA device cannot be deleted until the device is deactivated.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.delete_user(UserName="erin")
    assert error_code(e) == "DeleteConflict"
    iam.deactivate_mfa_device(UserName="erin", SerialNumber=serial)
    assert iam.list_mfa_devices(UserName="erin")["MFADevices"] == []
    iam.delete_virtual_mfa_device(SerialNumber=serial)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.delete_virtual_mfa_device(SerialNumber=serial)
    assert error_code(e) == "NoSuchEntity"
    iam.delete_user(UserName="erin")


def test_seeds_are_sealed_at_rest(make_server):
    # Reads the SQLite file, so SQLite only (the PostgreSQL store seals with the same code).
    gatehouse = make_server("sqlite")
    iam = gatehouse.client("iam")
    serial, totp = new_device(iam, "sealed")
    with open(os.path.join(gatehouse.data_dir, "gatehouse.db"), "rb") as f:
        raw = f.read()
    for w in ("gatehouse.db-wal",):
        p = os.path.join(gatehouse.data_dir, w)
        if os.path.exists(p):
            raw += open(p, "rb").read()
    assert serial.encode() in raw  # the device is there...
    assert totp.secret.encode() not in raw  # ...its seed is not, in the clear


MFA_GUARDED = [
    allow(["iam:ListUsers", "iam:ListRoles"]),
    {"Effect": "Deny", "Action": "iam:ListUsers", "Resource": "*",
     "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}},
    {"Effect": "Deny", "Action": "iam:ListRoles", "Resource": "*",
     "Condition": {"NumericGreaterThanIfExists": {"aws:MultiFactorAuthAge": "3600"}}},
    {"Effect": "Deny", "Action": "iam:ListRoles", "Resource": "*",
     "Condition": {"Null": {"aws:MultiFactorAuthAge": "true"}}},
]


def test_mfa_required_policy_denies_then_allows(gatehouse, iam):
    frank = make_user(gatehouse, iam, "frank", *MFA_GUARDED)
    serial, totp = new_device(iam, "frank-phone")
    t = enable(iam, "frank", serial, totp)
    long_term = gatehouse.client("iam", *frank)
    for call in (long_term.list_users, long_term.list_roles):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_code(e) == "AccessDenied"
    sts = gatehouse.client("sts", *frank)
    plain = session_client(gatehouse, sts.get_session_token()["Credentials"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        plain.list_users()
    assert error_code(e) == "AccessDenied"

    code = totp.at(t + 30)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.get_session_token(SerialNumber=serial, TokenCode="123456" if code != "123456" else "654321")
    assert error_code(e) == "AccessDenied"
    mfa = sts.get_session_token(SerialNumber=serial, TokenCode=code)["Credentials"]
    with_mfa = session_client(gatehouse, mfa)
    with_mfa.list_users()
    with_mfa.list_roles()
    # The same code again is a replay, even a moment later.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.get_session_token(SerialNumber=serial, TokenCode=code)
    assert error_code(e) == "AccessDenied"
    # The code of a device that is someone else's is refused.
    iam.create_user(UserName="grace")
    other_serial, other = new_device(iam, "grace-phone")
    enable(iam, "grace", other_serial, other)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.get_session_token(SerialNumber=other_serial, TokenCode=other.at(time.time() + 30))
    assert error_code(e) == "AccessDenied"


def test_trust_policy_requiring_mfa(gatehouse, iam):
    heidi = make_user(gatehouse, iam, "heidi")
    account = account_of(iam.get_user(UserName="heidi")["User"]["Arn"])
    role_arn = make_role(
        iam, "break-glass",
        trust(f"arn:gatehouse:iam::{account}:user/heidi", condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
        allow("iam:ListUsers", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
    )
    serial, totp = new_device(iam, "heidi-phone")
    t = enable(iam, "heidi", serial, totp)
    sts = gatehouse.client("sts", *heidi)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="bg")
    assert error_code(e) == "AccessDenied"
    creds = sts.assume_role(
        RoleArn=role_arn, RoleSessionName="bg", SerialNumber=serial, TokenCode=totp.at(t + 30)
    )["Credentials"]
    # The role session carries MFA, so the role's MFA-conditioned permission applies.
    session_client(gatehouse, creds).list_users()
