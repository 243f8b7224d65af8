"""A committed write survives `kill -9`: the server is killed in the middle of a burst of
concurrent CreateUser calls, restarted on the same data, and every acknowledged user is
there, whole (with the tag written in the same call), and the store is consistent. Its
audit record was committed in the same transaction: every user that exists has exactly
one successful CreateUser record, no such record names a user that does not exist, and
the chain verifies."""

import json
import os
import sqlite3
import threading
import time

from botocore.exceptions import BotoCoreError, ClientError

from conftest import ROOT_KEY_ID, ROOT_SECRET, unique

WORKERS = 8


def burst(server, prefix, stop):
    """Creates users from WORKERS threads until `stop` is set; returns (acknowledged, tried)."""
    acked, tried, lock = [], [], threading.Lock()

    def work(w):
        client = server._new_client("iam", ROOT_KEY_ID, ROOT_SECRET, None)
        i = 0
        while not stop.is_set():
            name = f"{prefix}-{w}-{i}"
            i += 1
            with lock:
                tried.append(name)
            try:
                client.create_user(UserName=name, Tags=[{"Key": "worker", "Value": str(w)}])
            except (ClientError, BotoCoreError, OSError):
                return  # the server is gone
            with lock:
                acked.append(name)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    return threads, acked, tried


def test_kill9_during_create_user_burst(gatehouse):
    server = gatehouse
    prefix = unique("crash")
    iam = server.client("iam")
    iam.create_user(UserName="before-the-crash")

    stop = threading.Event()
    threads, acked, tried = burst(server, prefix, stop)
    deadline = time.time() + 10
    while len(acked) < 60 and time.time() < deadline:
        time.sleep(0.01)
    server.kill9()  # mid-burst: requests are in flight on every worker
    stop.set()
    for t in threads:
        t.join(30)
    acked, tried = set(acked), set(tried)
    assert len(acked) >= 20, f"the burst barely started ({len(acked)} acknowledged)"
    assert len(tried) > len(acked), "the kill should have caught requests in flight"

    server.start()
    iam = server.client("iam")
    stored = {
        u["UserName"]: u
        for u in iam.get_paginator("list_users").paginate().build_full_result()["Users"]
    }
    assert "before-the-crash" in stored
    missing = acked - set(stored)
    assert not missing, f"acknowledged users lost in the crash: {sorted(missing)[:10]}"
    ours = {n for n in stored if n.startswith(prefix)}
    # Only names that were sent can exist; in-flight ones may or may not have committed.
    assert ours <= tried
    for name in ours:
        # Whole or absent: the tag was written in the same transaction as the user.
        got = iam.get_user(UserName=name)["User"]
        worker = name.split("-")[-2]
        assert got["Tags"] == [{"Key": "worker", "Value": worker}], name
        assert got["UserId"] == stored[name]["UserId"]

    # A change and its audit record committed together: every user of the burst that
    # exists has exactly one successful CreateUser record (none lost to the kill, none
    # appended twice), and every such record is of a user that exists.
    r = server.cli("audit", "export", "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    request_ids = [rec["request_id"] for rec in records]
    assert len(request_ids) == len(set(request_ids)), "a call was recorded twice"
    created = {}
    for rec in records:
        name = rec["resource"].rsplit("/", 1)[-1]
        if (rec["action"], rec["decision"], rec["error_code"]) == ("iam:CreateUser", "Allow", None) \
                and name.startswith(prefix):
            created[name] = created.get(name, 0) + 1
    assert created.keys() == ours, (
        f"users without their record: {sorted(ours - created.keys())[:10]}; "
        f"records without their user: {sorted(created.keys() - ours)[:10]}")
    assert all(n == 1 for n in created.values()), "a CreateUser was recorded twice"

    # The server works normally after the restart, and a name that was in flight can be
    # created exactly when it was not committed.
    for name in sorted(tried - ours)[:3]:
        iam.create_user(UserName=name)
    fresh = unique("after")
    iam.create_user(UserName=fresh)
    assert iam.get_user(UserName=fresh)["User"]["UserName"] == fresh

    # The audit chain survived too.
    r = server.cli("audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr

    if server.backend == "sqlite":
        server.stop()
        db = sqlite3.connect(os.path.join(server.data_dir, "gatehouse.db"))
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
            # Tags belong to existing users only.
            orphans = db.execute(
                "SELECT COUNT(*) FROM tags t WHERE t.resource_kind = 'user' AND NOT EXISTS "
                "(SELECT 1 FROM users u WHERE u.user_id = t.resource_id)"
            ).fetchone()[0]
            assert orphans == 0
        finally:
            db.close()
