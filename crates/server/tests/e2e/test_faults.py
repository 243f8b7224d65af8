"""Faults from outside: what Gatehouse does when what it depends on fails, and that it
recovers by itself.

- The model server fails (refuses connections, accepts and never answers, stalls in the
  middle of a stream, resets the connection, or echoes the provider key in an error): the
  caller gets OpenAI's error shape (502/504) within the configured upstream timeout, other
  callers are still served, and the provider key is in no answer and no log line.
- PostgreSQL goes away under traffic (a private cluster made for the test, stopped and
  started again: the shared test cluster is never touched): calls fail closed in their
  protocol's shape (AWS XML `ServiceFailure`, OpenAI JSON 5xx) within a bound, no call is
  answered without its audit record, and the same server process serves again once the
  database is back.
- The SQLite disk fills up (a size-limited tmpfs as the data directory, root only): writes
  are refused with `ServiceFailure`, nothing is half-written, and once space returns the
  same process writes again and the audit chain verifies.
"""

import concurrent.futures
import glob
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid

import httpx
import openai
import pytest
from botocore.exceptions import ClientError

from conftest import Servers, free_port
from test_gateway import Upstream

PROVIDER_KEY = "sk-fault-provider-key-0123456789abcdef"
TIMEOUT = 2  # upstream_timeout_secs in the config below
# A busy CI machine (two cores, parallel builds) stretches every figure: bounds are generous
# multiples of what a quiet machine shows, still far below "hangs".
SLACK = 3.0


def allow_all():
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ai:*", "iam:GetUser", "iam:ListUsers"], "Resource": "*"}]})


def api_key(server, name=None):
    """A user allowed everything the tests call; returns its OpenAI API key."""
    iam = server.client("iam")
    name = name or f"fault-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=allow_all())
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return name, k["AccessKeyId"], k["SecretAccessKey"]


def gateway(server, key, timeout=60):
    return openai.OpenAI(api_key=f"{key[1]}:{key[2]}", base_url=server.endpoint + "/v1", max_retries=0,
                         timeout=timeout)


def chat(client, model, content="hello", **kw):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}], **kw)


# ------------------------------------------------------------------ misbehaving model servers


class BadUpstream:
    """A model server that misbehaves at the TCP/HTTP level, one way per instance:

    - `hang`: accepts connections and never reads or answers;
    - `stall`: answers 200 with one SSE chunk, then sends nothing more;
    - `reset`: reads the request and resets the connection;
    - `echo`: answers 401 with the `Authorization` header it received in the message, as
      some servers do with a key they reject.
    """

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_request(conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head.decode("latin-1")

    def _one(self, conn):
        try:
            if self.mode == "hang":
                self.stopped.wait()
                return
            head = self._read_request(conn)
            if head is None:
                return
            if self.mode == "stall":
                first = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "partial"},
                                                 "finish_reason": None}]})
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
                event = f"data: {first}\n\n".encode()
                conn.sendall(b"%x\r\n%s\r\n" % (len(event), event))
                self.stopped.wait()
            elif self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()
            elif self.mode == "echo":
                auth = next((l.split(":", 1)[1].strip() for l in head.split("\r\n")
                             if l.lower().startswith("authorization:")), "")
                body = json.dumps({"error": {"message": f"Incorrect API key provided: {auth}",
                                             "type": "invalid_request_error", "param": None,
                                             "code": "invalid_api_key"}}).encode()
                conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
                conn.close()
        except OSError:
            pass

    def close(self):
        self.stopped.set()
        self.sock.close()
        for c in self.held:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """One SQLite server whose deployments point at a healthy upstream double and at each
    kind of failing model server; upstream timeout 2 s."""
    good = Upstream()
    bad = {m: BadUpstream(m) for m in ("hang", "stall", "reset", "echo")}
    dead = free_port()  # nothing listens: connection refused
    data_dir = str(tmp_path_factory.mktemp("gatehouse-faults"))
    cfg = os.path.join(data_dir, "gatehouse.toml")
    with open(cfg, "w") as f:
        f.write(f"[gateway]\nupstream_timeout_secs = {TIMEOUT}\n")
        models = {"ok-model": good.base, "dead-model": f"http://127.0.0.1:{dead}/v1",
                  **{f"{m}-model": b.base for m, b in bad.items()}}
        for model, base in models.items():
            f.write(f'[[gateway.deployments]]\nmodel = "{model}"\nbase_url = "{base}"\napi_key_env = "UPSTREAM_KEY"\n')
    servers = Servers(tmp_path_factory)
    server = servers.make("sqlite", data_dir=data_dir, config=cfg, extra_env={"UPSTREAM_KEY": PROVIDER_KEY})
    yield server, api_key(server)
    servers.close()
    good.stop()
    for b in bad.values():
        b.close()


def timed_call(client, model, **kw):
    """(status, error body or None, seconds) of one chat call."""
    started = time.monotonic()
    try:
        chat(client, model, **kw)
        return 200, None, time.monotonic() - started
    except openai.APIStatusError as e:
        return e.status_code, e.response.text, time.monotonic() - started


def assert_no_key_leak(server, *texts):
    for t in texts:
        assert PROVIDER_KEY not in (t or ""), "the provider key reached the caller"
    assert PROVIDER_KEY not in server.read_log(), "the provider key is in the server log"


def openai_error(text):
    err = json.loads(text)["error"]
    assert err["message"] and err["type"] and "code" in err, text
    return err


def test_upstream_refusing_connections_is_502_at_once(faulty):
    server, key = faulty
    status, body, took = timed_call(gateway(server, key), "dead-model")
    assert status == 502 and openai_error(body)["code"] == "upstream_unavailable"
    assert took < 1 + SLACK, f"a refused connection took {took:.1f}s"
    assert_no_key_leak(server, body)


def test_upstream_resetting_the_connection_is_502(faulty):
    server, key = faulty
    status, body, took = timed_call(gateway(server, key), "reset-model")
    assert status == 502 and openai_error(body)["code"] == "upstream_unavailable"
    assert took < 1 + SLACK
    assert_no_key_leak(server, body)


def test_upstream_that_never_answers_is_504_within_the_timeout_and_others_are_served(faulty):
    """Sixteen callers stuck on a model server that accepted and went silent each get a 504
    once the upstream timeout passes; meanwhile a caller of a healthy model is answered at
    once (the stuck calls hold no lock, worker or connection that others need)."""
    server, key = faulty
    client = gateway(server, key)
    with concurrent.futures.ThreadPoolExecutor(17) as pool:
        stuck = [pool.submit(timed_call, client, "hang-model") for _ in range(16)]
        time.sleep(0.5)
        status, _, took = timed_call(client, "ok-model")
        assert status == 200 and took < 1 + SLACK, f"a healthy call took {took:.1f}s beside stuck ones"
        results = [f.result(timeout=TIMEOUT + 30) for f in stuck]
    for status, body, took in results:
        assert status == 504 and openai_error(body)["code"] == "upstream_timeout", body
        assert TIMEOUT - 0.2 <= took < TIMEOUT + SLACK, f"504 after {took:.1f}s (timeout {TIMEOUT}s)"
        assert_no_key_leak(server, body)


def test_upstream_stalling_mid_stream_ends_the_stream_with_a_timeout_event(faulty):
    server, key = faulty
    client = gateway(server, key)
    started = time.monotonic()
    received = []
    with pytest.raises(openai.APIError) as e:
        for chunk in chat(client, "stall-model", stream=True):
            received.append(chunk.choices[0].delta.content)
    took = time.monotonic() - started
    assert received == ["partial"], "the chunk sent before the stall reaches the caller"
    assert "did not answer" in str(e.value) or "timeout" in str(e.value).lower(), str(e.value)
    assert TIMEOUT - 0.2 <= took < TIMEOUT + SLACK, f"the stalled stream ended after {took:.1f}s"
    assert_no_key_leak(server, str(e.value))


def test_upstream_echoing_the_provider_key_does_not_show_it_to_the_caller(faulty):
    server, key = faulty
    status, body, _ = timed_call(gateway(server, key), "echo-model")
    assert status == 401
    assert PROVIDER_KEY not in body, "the upstream's echo of the provider key reached the caller"
    assert openai_error(body)["code"] == "invalid_api_key", "the rest of the answer is kept"


def test_failed_upstream_calls_are_audited_with_their_cause(faulty):
    server, key = faulty
    name = key[0]
    client = gateway(server, key)
    timed_call(client, "dead-model")
    timed_call(client, "hang-model")
    deadline = time.time() + 10
    while True:
        out = server.cli("audit", "tail", "-n", "1000", "--format", "json")
        recs = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
        mine = [r for r in recs if r.get("principal", "").endswith(f":user/{name}")]
        codes = {(r.get("model"), r.get("error_code"), r.get("status")) for r in mine}
        if {("dead-model", "upstream_unavailable", 502), ("hang-model", "upstream_timeout", 504)} <= codes:
            break
        assert time.time() < deadline, f"records of the failed calls: {sorted(map(str, codes))}"
        time.sleep(0.2)
    assert PROVIDER_KEY not in out.stdout


# ------------------------------------------------------------ PostgreSQL going away


def pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PrivateCluster:
    """A PostgreSQL cluster of this test's own (initdb in a temporary directory, one port on
    loopback), run as the `postgres` user when the test runs as root. Stopping it touches
    nobody else's database."""

    def __init__(self):
        if not pg_bin("initdb") or not pg_bin("pg_ctl"):
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.dir = tempfile.mkdtemp(prefix="gh-faults-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run(pg_bin("initdb"), "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/gatehouse"
        subprocess.run(["psql", f"postgres://postgres@127.0.0.1:{self.port}/postgres", "-qAtc",
                        "create database gatehouse"], check=True, capture_output=True)

    def _run(self, *cmd):
        subprocess.run(self.as_user + list(cmd), check=True, capture_output=True, timeout=120)

    def start(self):
        self._run(pg_bin("pg_ctl"), "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self):
        self._run(pg_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")

    def destroy(self):
        subprocess.run(self.as_user + [pg_bin("pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


# The store waits this long for a database connection before it fails a call (the pool's
# acquire timeout, `gatehouse_store::DEFAULT_ACQUIRE_TIMEOUT`, during which a refused
# connection is retried).
ACQUIRE_TIMEOUT = 5.0
# How long a call may take while the database is gone before it must have been answered: a
# control-plane call waits once for its caller's key, then once more for its audit record
# (the group commit), each wait bounded by the acquire timeout. (With sqlx's 30 s default
# calls took about 47 s to fail: this bound failed before the timeout was shortened.)
OUTAGE_BOUND = 2 * ACQUIRE_TIMEOUT + 10
# The outage outlasts the bound, so a call that waits for the database instead of failing
# fast is seen taking longer than the bound.
OUTAGE = OUTAGE_BOUND + 15


class Traffic:
    """Callers that keep calling until stopped: the gateway (a chat call) and the control
    plane (GetUser, signed by the user), each call's start, duration and outcome kept."""

    def __init__(self, server, key, workers=2):
        self.server, self.key = server, key
        self.calls, self.lock = [], threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._gateway, daemon=True) for _ in range(workers)]
        self.threads += [threading.Thread(target=self._iam, daemon=True) for _ in range(workers)]
        for t in self.threads:
            t.start()

    def _note(self, face, started, outcome, detail=None):
        with self.lock:
            self.calls.append({"face": face, "t": started, "took": time.monotonic() - started,
                               "outcome": outcome, "detail": detail})

    def _gateway(self):
        client = gateway(self.server, self.key, timeout=OUTAGE_BOUND + 30)
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model="ok-model", messages=[{"role": "user", "content": "during"}])
                self._note("gateway", started, "ok", raw.headers.get("x-request-id"))
            except openai.APIStatusError as e:
                try:
                    code = json.loads(e.response.text)["error"]["code"]
                except (ValueError, KeyError, TypeError):
                    code = "not-openai-shape"
                self._note("gateway", started, f"{e.status_code}:{code}", e.response.text)
            except openai.APIError as e:  # no answer at all (timeout, connection)
                self._note("gateway", started, "no-answer", repr(e))
            time.sleep(0.05)

    def _iam(self):
        import boto3
        import botocore.config
        iam = boto3.session.Session().client(
            "iam", endpoint_url=self.server.endpoint, aws_access_key_id=self.key[1],
            aws_secret_access_key=self.key[2], region_name="us-east-1",
            config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=OUTAGE_BOUND + 30))
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                iam.get_user(UserName=self.key[0])
                self._note("iam", started, "ok")
            except ClientError as e:
                err = e.response["Error"]
                self._note("iam", started, f"{e.response['ResponseMetadata']['HTTPStatusCode']}:{err.get('Code')}",
                           err.get("Message"))
            except Exception as e:  # noqa: BLE001 - no answer at all
                self._note("iam", started, "no-answer", repr(e))
            time.sleep(0.05)

    def between(self, t0, t1):
        with self.lock:
            return [c for c in self.calls if t0 <= c["t"] < t1]

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(OUTAGE_BOUND + 60)


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_postgresql_outage_under_traffic_fails_closed_and_recovers_by_itself(make_server, tmp_path):
    cluster = PrivateCluster()
    upstream = Upstream()
    traffic = None
    try:
        cfg = tmp_path / "gatehouse.toml"
        cfg.write_text(f'[gateway]\nupstream_timeout_secs = {TIMEOUT}\n[[gateway.deployments]]\nmodel = "ok-model"\n'
                       f'base_url = "{upstream.base}"\napi_key_env = "UPSTREAM_KEY"\n')
        server = make_server("postgres", database_url=cluster.url, config=str(cfg),
                             extra_env={"UPSTREAM_KEY": PROVIDER_KEY})
        pid = server.proc.pid
        key = api_key(server)
        traffic = Traffic(server, key)
        wait_until(lambda: {c["face"] for c in traffic.calls if c["outcome"] == "ok"} == {"gateway", "iam"},
                   30, "both faces answer before the outage")

        cluster.stop()
        down = time.monotonic()
        time.sleep(OUTAGE)
        cluster.start()
        up = time.monotonic()
        # Recovery: the same process answers both faces again, by itself.
        wait_until(lambda: {c["face"] for c in traffic.between(up, float("inf")) if c["outcome"] == "ok"}
                   == {"gateway", "iam"}, 60, "not serving again within 60 s of PostgreSQL's return")
        recovered = time.monotonic()
        time.sleep(2)
        traffic.finish()
        assert server.proc.poll() is None and server.proc.pid == pid, "the server did not survive the outage"

        during = [c for c in traffic.calls if down <= c["t"] < up]
        summary = sorted({(c["face"], c["outcome"]) for c in during})
        assert during, "no call was made during the outage"
        # Fail closed, in the protocol's shape, within the bound: never a hang, never a
        # connection dropped without an answer, never an error body in another shape.
        # Every call in flight while the database was gone, also one begun just before.
        overlapping = [c for c in traffic.calls if c["t"] < up and c["t"] + c["took"] > down]
        for c in overlapping:
            assert c["took"] < OUTAGE_BOUND, f"a call took {c['took']:.1f}s over the outage: {c}"
        for c in during:
            assert c["outcome"] != "no-answer", f"a call got no answer: {c}"
            if c["outcome"] != "ok":
                status, code = c["outcome"].split(":", 1)
                assert status.startswith("5"), c
                if c["face"] == "iam":
                    assert code == "ServiceFailure", c
                else:
                    assert code != "not-openai-shape", c
        # The control plane needs its database for every call (the caller's key, the audit
        # record): no call that ran wholly inside the outage succeeded, and calls were
        # refused once the wait for a connection ran out.
        iam = [c for c in traffic.calls if c["face"] == "iam" and c["t"] < up and c["t"] + c["took"] > down]
        print("control-plane calls over the outage (start, took, outcome):",
              [(round(c["t"] - down, 1), round(c["took"], 1), c["outcome"]) for c in iam])
        assert not [c for c in iam if c["outcome"] == "ok" and c["t"] > down + 0.5 and c["t"] + c["took"] < up], \
            "a control-plane call succeeded without its database"
        assert any(c["outcome"] == "500:ServiceFailure" for c in iam), summary
        after = traffic.between(recovered, float("inf"))
        assert after and all(c["outcome"] == "ok" for c in after), sorted({c["outcome"] for c in after})

        # No gateway call was answered without its audit record: every request id answered
        # 200, before, during or after the outage, is in the (verified) chain.
        answered = {c["detail"] for c in traffic.calls if c["face"] == "gateway" and c["outcome"] == "ok"}

        def audited():
            out = server.cli("audit", "tail", "-n", "100000", "--format", "json")
            return {json.loads(l).get("request_id") for l in out.stdout.splitlines() if l.strip()}
        wait_until(lambda: answered <= audited(), 30,
                   f"{len(answered - audited())} answered gateway calls have no audit record")
        verify = server.cli("audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        print(f"outage outcomes: {summary}; longest call during the outage "
              f"{max(c['took'] for c in during):.1f}s; recovered {recovered - up:.1f}s after PostgreSQL returned; "
              f"{len(answered)} gateway calls answered and audited")
    finally:
        if traffic:
            traffic.finish()
        upstream.stop()
        cluster.destroy()


# ------------------------------------------------------------------ SQLite disk full


class SmallDisk:
    """A size-limited tmpfs mounted for the test (root only), and a filler file that takes
    (and gives back) all of its free space."""

    def __init__(self, size_mib):
        self.path = tempfile.mkdtemp(prefix="gh-faults-disk-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0700", "tmpfs", self.path],
                       check=True, capture_output=True)
        self.filler = os.path.join(self.path, "filler")

    def fill(self):
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 20, 1 << 12, 1):
                try:
                    while os.write(fd, b"\0" * chunk):
                        pass
                except OSError:
                    pass
        finally:
            os.close(fd)
        free = os.statvfs(self.path)
        return free.f_bavail * free.f_frsize

    def free(self):
        os.unlink(self.filler)

    def unmount(self):
        subprocess.run(["umount", "-l", self.path], capture_output=True)
        shutil.rmtree(self.path, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a size-limited tmpfs needs root (CI runs as root)")
def test_sqlite_disk_full_refuses_writes_whole_and_recovers_when_space_returns(make_server, tmp_path):
    disk = SmallDisk(32)
    server = None
    try:
        server = make_server("sqlite", data_dir=disk.path, start=False)
        server.log_path = str(tmp_path / "server.log")  # the log is not what fills the disk
        server.start()
        pid = server.proc.pid
        iam = server.client("iam")
        iam.create_user(UserName="before", Tags=[{"Key": "k", "Value": "v"}])
        for i in range(20):
            iam.create_user(UserName=f"warm-{i}")  # the WAL and the database have grown a bit
        left = disk.fill()
        assert left < 4096, f"{left} bytes still free"

        refused, started = None, time.monotonic()
        try:
            iam.create_user(UserName="during", Tags=[{"Key": "k", "Value": "v"}])
        except ClientError as e:
            refused = e.response
        assert time.monotonic() - started < 20, "a write on a full disk hung"
        assert refused is not None, "a write on a full disk succeeded"
        assert refused["Error"]["Code"] == "ServiceFailure", refused["Error"]
        assert refused["ResponseMetadata"]["HTTPStatusCode"] == 500
        # Reads are refused too while no audit record can be written: a call that cannot be
        # audited fails (ARCHITECTURE.md, "Audit"), whatever it is.
        with pytest.raises(ClientError) as read:
            iam.get_user(UserName="before")
        assert read.value.response["Error"]["Code"] == "ServiceFailure"
        assert server.proc.poll() is None, "the server died on a full disk"

        disk.free()
        # The same process writes again, and nothing of the refused call was stored.
        wait_ok = time.monotonic() + 30
        while True:
            try:
                iam.create_user(UserName="after")
                break
            except ClientError:
                assert time.monotonic() < wait_ok, "no write succeeds 30 s after space returned"
                time.sleep(0.5)
        assert server.proc.pid == pid
        with pytest.raises(ClientError) as gone:
            iam.get_user(UserName="during")
        assert gone.value.response["Error"]["Code"] == "NoSuchEntity"
        assert iam.list_user_tags(UserName="before")["Tags"] == [{"Key": "k", "Value": "v"}]
        users = {u["UserName"] for u in iam.list_users(MaxItems=1000)["Users"]}
        assert {"before", "after"} <= users and "during" not in users
        server.stop()
        verify = server.cli("audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        db = os.path.join(server.data_dir, "gatehouse.db")
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        out = server.cli("audit", "tail", "-n", "1000", "--format", "json")
        records = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
        assert not [r for r in records if r.get("action") == "iam:CreateUser" and "during" in json.dumps(r)
                    and not r.get("error_code")], "a refused write is recorded as a success"
    finally:
        if server:
            server.stop()
        disk.unmount()
