"""The audit log: every call — allowed, denied, or refused before authentication — is
recorded with its request id, principal, action, resource, decision, deciding statement,
source IP and error code, in a hash chain that `gatehouse audit verify` checks; `audit
tail` and `audit export --format jsonl` read it; root use beyond bootstrap is warned about.
"""

import hashlib
import json
import os
import sqlite3
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ROOT_KEY_ID, Signer, error_code, raw_call, unique, user_client


def doc(action, effect="Allow", sid="S1"):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": sid, "Effect": effect, "Action": action, "Resource": "*"}]})


def rid_of(call):
    """Runs a boto3 call; returns its request id (from the response or the error)."""
    try:
        return call()["ResponseMetadata"]["RequestId"]
    except ClientError as e:
        return e.response["ResponseMetadata"]["RequestId"]


def export(server):
    r = server.cli("audit", "export", "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def wait_allowed(call, timeout=2.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            return call()
        except ClientError as e:
            if e.response["Error"]["Code"] != "AccessDenied":
                raise
            time.sleep(0.05)
    return call()


def test_every_call_is_recorded(gatehouse):
    server = gatehouse
    iam = server.client("iam")
    user = unique("aud")
    dev = user_client(server, iam, user)
    account = iam.get_user(UserName=user)["User"]["Arn"].split(":")[4]
    user_arn = f"arn:gatehouse:iam::{account}:user/{user}"
    key_id = iam.list_access_keys(UserName=user)["AccessKeyMetadata"][0]["AccessKeyId"]

    calls = {}
    calls["root-create"] = rid_of(lambda: iam.create_user(UserName=unique("made")))
    calls["implicit-deny"] = rid_of(lambda: dev.list_users())
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Sid": "ReadUsers", "Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"},
            {"Sid": "NoRoles", "Effect": "Deny", "Action": "iam:ListRoles", "Resource": "*"}]}))
    wait_allowed(lambda: dev.get_user(UserName=user))
    calls["allowed"] = rid_of(lambda: dev.get_user(UserName=user))
    calls["explicit-deny"] = rid_of(lambda: dev.list_roles())
    calls["no-such"] = rid_of(lambda: iam.get_user(UserName=unique("ghost")))
    calls["validation"] = rid_of(lambda: iam.create_user(UserName="bad name"))
    bad_sig = raw_call(server, "Action=CreateUser&Version=2010-05-08&UserName=x",
                       signer=Signer(ROOT_KEY_ID, "w" * 40))
    calls["bad-signature"] = bad_sig.field("RequestId")
    invalid = raw_call(server, "Action=LaunchRockets&Version=2010-05-08")
    calls["invalid-action"] = invalid.field("RequestId")
    unsigned = raw_call(server, "Action=ListUsers&Version=2010-05-08", sign=False)
    calls["unsigned"] = unsigned.field("RequestId")
    calls["sts"] = rid_of(lambda: server.client("sts").get_caller_identity())

    records = {r["request_id"]: r for r in export(server)}
    got = {name: records.get(rid) for name, rid in calls.items()}
    missing = [name for name, r in got.items() if r is None]
    assert not missing, f"calls not audited: {missing}"
    for r in got.values():
        assert r["source_ip"] == "127.0.0.1"
        assert r["time"].endswith("Z")

    root_arn = f"arn:gatehouse:iam::{account}:root"
    assert got["root-create"]["principal"] == root_arn
    assert got["root-create"]["action"] == "iam:CreateUser"
    assert got["root-create"]["decision"] == "Allow" and got["root-create"]["error_code"] is None
    assert got["root-create"]["resource"].startswith(f"arn:gatehouse:iam::{account}:user/made-")

    r = got["implicit-deny"]
    assert (r["principal"], r["action"], r["resource"]) == (user_arn, "iam:ListUsers", "*")
    assert (r["decision"], r["error_code"]) == ("ImplicitDeny", "AccessDenied")
    assert r["access_key_id"] == key_id

    r = got["allowed"]
    assert (r["decision"], r["error_code"], r["resource"]) == ("Allow", None, user_arn)
    assert "ReadUsers" in r["statement"]

    r = got["explicit-deny"]
    assert (r["action"], r["decision"], r["error_code"]) == ("iam:ListRoles", "ExplicitDeny", "AccessDenied")
    assert "NoRoles" in r["statement"]

    assert (got["no-such"]["decision"], got["no-such"]["error_code"]) == ("Allow", "NoSuchEntity")
    assert got["validation"]["error_code"] == "ValidationError"
    assert got["validation"]["action"] == "iam:CreateUser"

    r = got["bad-signature"]
    assert (r["principal"], r["decision"], r["error_code"]) == ("", "Error", "SignatureDoesNotMatch")
    assert (r["action"], r["access_key_id"]) == ("iam:CreateUser", ROOT_KEY_ID)
    assert (got["invalid-action"]["action"], got["invalid-action"]["error_code"]) == (
        "iam:LaunchRockets", "InvalidAction")
    assert got["unsigned"]["error_code"] == "MissingAuthenticationToken"
    assert got["unsigned"]["access_key_id"] is None
    assert got["sts"]["action"] == "sts:GetCallerIdentity" and got["sts"]["decision"] == "Allow"

    # Secrets never reach the log.
    assert not any("SecretAccessKey" in json.dumps(r) for r in records.values())


def test_tail_and_export(gatehouse):
    server = gatehouse
    iam = server.client("iam")
    names = [unique("t") for _ in range(3)]
    for n in names:
        iam.create_user(UserName=n)
    r = server.cli("audit", "tail", "-n", "3", "--format", "json")
    assert r.returncode == 0, r.stderr
    tail = [json.loads(line) for line in r.stdout.splitlines()]
    assert [t["resource"].rsplit("/", 1)[1] for t in tail] == names

    text = server.cli("audit", "tail", "-n", "2")
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert len(lines) == 2 and all("iam:CreateUser" in line and "Allow" in line for line in lines)
    assert names[2] in lines[1]

    exported = export(server)
    verify = server.cli("audit", "verify", "--format", "json")
    v = json.loads(verify.stdout)
    assert v["intact"] is True and v["records"] == len(exported)
    assert exported[-3:] == tail

    bad = server.cli("audit", "export", "--format", "csv")
    assert bad.returncode == 2 and "csv" in bad.stderr


class Tamper:
    """Edits the audit table behind Gatehouse's back, on either backend."""

    def __init__(self, server):
        self.server = server

    def sql(self, statement):
        if self.server.backend == "sqlite":
            db = sqlite3.connect(os.path.join(self.server.data_dir, "gatehouse.db"))
            try:
                db.execute(statement)
                db.commit()
            finally:
                db.close()
        else:
            subprocess.run(["psql", self.server.database_url, "-qAtc", statement], check=True,
                           capture_output=True)

    def query(self, statement):
        if self.server.backend == "sqlite":
            db = sqlite3.connect(os.path.join(self.server.data_dir, "gatehouse.db"))
            try:
                return db.execute(statement).fetchall()
            finally:
                db.close()
        out = subprocess.run(["psql", self.server.database_url, "-qAtc", statement], check=True,
                             capture_output=True, text=True).stdout
        return [tuple(line.split("|")) for line in out.splitlines()]


def verdict(server):
    r = server.cli("audit", "verify", "--format", "json")
    return r.returncode, json.loads(r.stdout)


def test_verify_detects_edited_and_deleted_records(gatehouse):
    server = gatehouse
    iam = server.client("iam")
    user = unique("victim")
    dev = user_client(server, iam, user)
    for _ in range(3):
        rid_of(lambda: dev.delete_user(UserName=user))  # denied, and recorded as such
    iam.create_user(UserName=unique("later"))
    server.stop()  # nothing else appends while we tamper
    code, v = verdict(server)
    assert code == 0 and v["intact"] is True
    n = v["records"]

    t = Tamper(server)
    denied = [int(seq) for (seq,) in t.query(
        "SELECT seq FROM audit_log WHERE record LIKE '%ImplicitDeny%' ORDER BY seq")]
    assert len(denied) == 3
    target = denied[1]
    (original,) = t.query(f"SELECT record FROM audit_log WHERE seq = {target}")[0]

    # 1. Someone turns a denied call into an allowed one.
    t.sql(f"UPDATE audit_log SET record = replace(record, 'ImplicitDeny', 'Allow') WHERE seq = {target}")
    code, v = verdict(server)
    assert code == 1 and v["intact"] is False and v["seq"] == target and "edited" in v["reason"]
    text = server.cli("audit", "verify")
    assert text.returncode == 1 and f"BROKEN at record {target}" in text.stdout

    t.sql(f"UPDATE audit_log SET record = '{original}' WHERE seq = {target}")
    assert verdict(server)[0] == 0

    # 2. ... and recomputes that entry's hash to cover their tracks: the chain breaks at the
    #    next entry, whose prev_hash no longer matches.
    (prev_hash,) = t.query(f"SELECT prev_hash FROM audit_log WHERE seq = {target}")[0]
    forged = original.replace("ImplicitDeny", "Allow")
    forged_hash = hashlib.sha256(prev_hash.encode() + b"\0" + forged.encode()).hexdigest()
    t.sql(f"UPDATE audit_log SET record = '{forged}', hash = '{forged_hash}' WHERE seq = {target}")
    code, v = verdict(server)
    assert code == 1 and v["seq"] == target + 1 and "previous" in v["reason"]
    t.sql(f"UPDATE audit_log SET record = '{original}', hash = (SELECT prev_hash FROM audit_log "
          f"WHERE seq = {target + 1}) WHERE seq = {target}")
    assert verdict(server)[0] == 0

    # 3. Someone deletes a record from the middle.
    t.sql(f"DELETE FROM audit_log WHERE seq = {target}")
    code, v = verdict(server)
    assert code == 1 and v["seq"] == target + 1 and "missing" in v["reason"]
    assert n > target


def test_verify_detects_a_deleted_tail(gatehouse):
    server = gatehouse
    iam = server.client("iam")
    for _ in range(3):
        iam.create_user(UserName=unique("tail"))
    server.stop()
    code, v = verdict(server)
    assert code == 0
    Tamper(server).sql(f"DELETE FROM audit_log WHERE seq = {v['records']}")
    code, v2 = verdict(server)
    assert code == 1 and "deleted" in v2["reason"]


def test_root_beyond_bootstrap_is_warned_about(gatehouse):
    server = gatehouse
    iam = server.client("iam")
    name = unique("first-admin")
    iam.create_user(UserName=name)
    iam.create_access_key(UserName=name)
    warning = "root credentials used beyond bootstrap"
    assert warning not in server.read_log()
    rid = rid_of(lambda: iam.list_roles())
    log = server.read_log()
    assert warning in log and "iam:ListRoles" in log and rid in log


def test_a_call_that_cannot_be_audited_fails_and_changes_nothing(gatehouse):
    """Fail closed, both ways a record is written: while the audit log refuses inserts (a
    trigger planted behind Gatehouse's back), a read fails with ServiceFailure (its record's
    group commit failed), and a write fails too and leaves nothing behind, because its
    record was part of its own transaction. Afterwards everything works and the chain
    verifies."""
    server = gatehouse
    iam = server.client("iam")
    kept = unique("kept")
    iam.create_user(UserName=kept)
    t = Tamper(server)
    if server.backend == "sqlite":
        t.sql("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
              "BEGIN SELECT RAISE(ABORT, 'audit refused'); END")
    else:
        t.sql("CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
              "$$ BEGIN RAISE EXCEPTION 'audit refused'; END $$; "
              "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
              "FOR EACH ROW EXECUTE FUNCTION refuse_audit()")
    lost = unique("lost")
    try:
        with pytest.raises(ClientError) as e:
            iam.get_user(UserName=kept)
        assert error_code(e) == ("ServiceFailure", 500)
        with pytest.raises(ClientError) as e:
            iam.create_user(UserName=lost)
        assert error_code(e) == ("ServiceFailure", 500)
    finally:
        if server.backend == "sqlite":
            t.sql("DROP TRIGGER refuse_audit")
        else:
            t.sql("DROP TRIGGER refuse_audit ON audit_log; DROP FUNCTION refuse_audit()")
    # The refused write committed nothing: the name is free, and no record claims it.
    with pytest.raises(ClientError) as e:
        iam.get_user(UserName=lost)
    assert error_code(e)[0] == "NoSuchEntity"
    assert not any(r["resource"].endswith(f"/{lost}") and r["error_code"] is None
                   for r in export(server))
    iam.create_user(UserName=lost)
    assert iam.get_user(UserName=lost)["User"]["UserName"] == lost
    code, v = verdict(server)
    assert code == 0 and v["intact"] is True
