"""Shared fixtures for the end-to-end suites: a real `gatehouse serve` process on loopback,
on SQLite and (when GATEHOUSE_TEST_POSTGRES_URL is set) on PostgreSQL, and real clients.

Every suite that needs a server takes the `gatehouse` fixture; it is parametrized over the
backends available, each server on a fresh data directory (and a fresh PostgreSQL database).
"""

import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
ROOT_KEY_ID = "AKIAGATEHOUSEROOT001"
ROOT_SECRET = "root-secret-for-tests-only-0000000000000"
REGION = "us-east-1"


# One botocore session for every client: it caches the loaded service models.
_SESSION = boto3.session.Session()


def gatehouse_bin():
    path = os.environ.get("GATEHOUSE_BIN") or os.path.join(REPO, "target", "debug", "gatehouse")
    if not os.path.exists(path):
        pytest.exit(f"gatehouse binary not found at {path}: run `cargo build -p gatehouse-cli` first", 2)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_url():
    return os.environ.get("GATEHOUSE_TEST_POSTGRES_URL")


# Strict mode (GATEHOUSE_STRICT=1, set by scripts/test.sh under CI): a skipped test is not a
# passed one, so any skip fails the run, and a missing PostgreSQL fails its tests.
STRICT = os.environ.get("GATEHOUSE_STRICT", "") not in ("", "0")


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if STRICT and skipped and session.exitstatus == 0:
        for report in skipped:
            print(f"\nstrict mode: skipped {report.nodeid}: {report.longrepr}")
        print(f"\nstrict mode (GATEHOUSE_STRICT): {len(skipped)} skipped test(s) fail the run")
        session.exitstatus = 1



class Server:
    """One `gatehouse serve` process. Start, stop, kill -9, restart on the same data."""

    def __init__(self, backend, data_dir, database_url=None, extra_env=None, config=None):
        self.backend = backend
        self.data_dir = data_dir
        self.database_url = database_url
        self.extra_env = extra_env or {}
        self.config = config
        self.port = free_port()
        self.proc = None
        self._clients = {}
        self.log_path = os.path.join(data_dir, f"server-{self.port}.log")

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        env = dict(os.environ)
        env.update(
            GATEHOUSE_ROOT_ACCESS_KEY_ID=ROOT_KEY_ID,
            GATEHOUSE_ROOT_SECRET_ACCESS_KEY=ROOT_SECRET,
            GATEHOUSE_LOG=env.get("GATEHOUSE_LOG", "info"),
        )
        env.pop("GATEHOUSE_DATABASE_URL", None)
        env.update(self.extra_env)
        cmd = [gatehouse_bin(), "serve", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}"]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        if self.config:
            cmd += ["--config", self.config]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gatehouse exited with {self.proc.returncode}:\n{self.read_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"gatehouse did not start listening:\n{self.read_log()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def client(self, service="iam", key_id=ROOT_KEY_ID, secret=ROOT_SECRET, token=None, validate=True):
        """A boto3 client; validate=False skips botocore's own parameter checks, so that
        the server's answer to bad input can be tested."""
        # Making a boto3 client costs a tenth of a second (it loads the service model):
        # one per credential and server is plenty.
        key = (service, key_id, secret, token, validate)
        if key not in self._clients:
            self._clients[key] = self._new_client(*key)
        return self._clients[key]

    def _new_client(self, service, key_id, secret, token, validate=True):
        return _SESSION.client(
            service,
            endpoint_url=self.endpoint,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=token,
            region_name=REGION,
            config=botocore.config.Config(retries={"max_attempts": 1}, parameter_validation=validate),
        )

    def cli(self, *args, data_dir=True):
        """Runs the `gatehouse` binary against this server's store (admin/audit commands)."""
        cmd = [gatehouse_bin(), *args]
        if data_dir:
            cmd += ["--data-dir", self.data_dir]
            if self.database_url:
                cmd += ["--database-url", self.database_url]
        # The operator's key material (e.g. GATEHOUSE_MASTER_KEY) is the server's: the CLI
        # opens the same store, so it unwraps the same data key.
        env = {**os.environ, **self.extra_env}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


def _create_postgres_database(base_url):
    """A fresh database on the test cluster (the test role may create databases)."""
    name = "gh_" + uuid.uuid4().hex[:12]
    subprocess.run(
        ["psql", base_url, "-qAtc", f"create database {name}"], check=True, capture_output=True
    )
    parts = urllib.parse.urlsplit(base_url)
    return parts._replace(path="/" + name).geturl()


def backends():
    out = ["sqlite"]
    if postgres_url() or STRICT:
        out.append("postgres")
    else:
        print("notice: GATEHOUSE_TEST_POSTGRES_URL unset; end-to-end suites run on SQLite only")
    return out


class Servers:
    """Starts servers on fresh data directories (and fresh PostgreSQL databases); stops them
    all, and drops their databases, at teardown."""

    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory
        self.started = []
        self.databases = []

    def make(self, backend="sqlite", database_url=None, data_dir=None, start=True, **kw):
        data_dir = data_dir or str(self.tmp.mktemp("gatehouse-data"))
        if backend == "postgres" and database_url is None:
            if not postgres_url():
                pytest.fail("strict mode: GATEHOUSE_TEST_POSTGRES_URL is unset, PostgreSQL tests cannot run")
            database_url = _create_postgres_database(postgres_url())
            self.databases.append(database_url)
        s = Server(backend, data_dir, database_url, **kw)
        self.started.append(s)
        return s.start() if start else s

    def close(self):
        for s in self.started:
            s.stop()
        for url in self.databases:
            name = urllib.parse.urlsplit(url).path.lstrip("/")
            subprocess.run(
                ["psql", postgres_url(), "-qAtc", f"drop database if exists {name} with (force)"],
                capture_output=True,
            )


@pytest.fixture
def make_server(tmp_path_factory):
    """Factory: make_server(backend, **kw) -> started Server; all stopped at teardown."""
    servers = Servers(tmp_path_factory)
    yield servers.make
    servers.close()


@pytest.fixture(params=backends())
def gatehouse(request, make_server):
    """A running Gatehouse on each available backend."""
    return make_server(request.param)


@pytest.fixture(scope="module", params=backends())
def shared_gatehouse(request, tmp_path_factory):
    """One Gatehouse per backend for a whole module: tests share it and keep to their own
    names (and paths, for list calls), which keeps long suites fast."""
    servers = Servers(tmp_path_factory)
    yield servers.make(request.param)
    servers.close()


@pytest.fixture
def iam(gatehouse):
    """boto3 IAM client with the bootstrap root credentials."""
    return gatehouse.client("iam")


def unique(prefix):
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def user_client(server, root_iam, name, service="iam", path=None):
    """Creates user `name` with an access key; returns a client signed with that key."""
    kw = {"Path": path} if path else {}
    root_iam.create_user(UserName=name, **kw)
    key = root_iam.create_access_key(UserName=name)["AccessKey"]
    return server.client(service, key["AccessKeyId"], key["SecretAccessKey"])


def error_code(excinfo):
    """The AWS error code and HTTP status of a botocore ClientError."""
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


# ---------------------------------------------------------------- raw signed requests

IAM_VERSION = "Action={action}&Version=2010-05-08"


class Signer(botocore.auth.SigV4Auth):
    """botocore's SigV4 signer with the signing time under the test's control (to produce
    expired and future-dated requests that are otherwise correctly signed)."""

    def __init__(self, key_id, secret, service="iam", when=None, token=None):
        super().__init__(botocore.credentials.Credentials(key_id, secret, token), service, REGION)
        self.when = when

    def add_auth(self, request):
        if self.when is None:
            return super().add_auth(request)
        request.context["timestamp"] = self.when.strftime(botocore.auth.SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        sts = self.string_to_sign(request, canonical)
        self._inject_signature_to_request(request, self.signature(sts, request))


class RawResponse:
    def __init__(self, status, body):
        self.status = status
        self.body = body
        self.text = body.decode("utf-8", "replace")

    @property
    def code(self):
        """The AWS error code of an error response (None for a success)."""
        root = ET.fromstring(self.body)
        el = root.find(".//{*}Error/{*}Code")
        return el.text if el is not None else None

    def field(self, name):
        el = ET.fromstring(self.body).find(f".//{{*}}{name}")
        return el.text if el is not None else None


def raw_call(server, body, *, signer=None, sign=True, headers=None, path="/", method="POST",
             query="", mutate=None):
    """Sends one Query request as bytes, signed by `signer` (root's key by default);
    `mutate(headers, body) -> body` may tamper with it after signing."""
    if isinstance(body, str):
        body = body.encode()
    url = server.endpoint + path + (("?" + query) if query else "")
    req = botocore.awsrequest.AWSRequest(
        method=method, url=url, data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", **(headers or {})},
    )
    if sign:
        (signer or Signer(ROOT_KEY_ID, ROOT_SECRET)).add_auth(req)
    prepared = req.prepare()
    out_headers = dict(prepared.headers)
    out_body = prepared.body or b""
    if isinstance(out_body, str):
        out_body = out_body.encode()
    if mutate:
        out_body = mutate(out_headers, out_body)
    return send(server, prepared.method, prepared.url, out_headers, out_body)


def send(server, method, url, headers, body):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        target = urllib.parse.urlsplit(url)
        target = target.path + (("?" + target.query) if target.query else "")
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        sent_host = False
        for k, v in headers.items():
            if k.lower() == "host":
                sent_host = True
            if k.lower() == "content-length":
                continue
            conn.putheader(k, v)
        if not sent_host:
            conn.putheader("Host", f"127.0.0.1:{server.port}")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            conn.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (and close) before reading an oversized body
        r = conn.getresponse()
        return RawResponse(r.status, r.read())
    finally:
        conn.close()


def snapshot(server):
    """Everything stored that an API call could change, as seen through the API."""
    iam = server.client("iam")
    state = {}
    for u in iam.get_paginator("list_users").paginate().build_full_result()["Users"]:
        name = u["UserName"]
        state[("user", name)] = {
            "user": iam.get_user(UserName=name)["User"],
            "keys": iam.list_access_keys(UserName=name)["AccessKeyMetadata"],
            "inline": iam.list_user_policies(UserName=name)["PolicyNames"],
            "attached": iam.list_attached_user_policies(UserName=name)["AttachedPolicies"],
            "groups": iam.list_groups_for_user(UserName=name)["Groups"],
        }
    for g in iam.list_groups(MaxItems=1000)["Groups"]:
        state[("group", g["GroupName"])] = g
    for r in iam.list_roles(MaxItems=1000)["Roles"]:
        state[("role", r["RoleName"])] = iam.get_role(RoleName=r["RoleName"])["Role"]
    for p in iam.list_policies(Scope="Local", MaxItems=1000)["Policies"]:
        state[("policy", p["Arn"])] = {
            "policy": p,
            "versions": iam.list_policy_versions(PolicyArn=p["Arn"])["Versions"],
        }
    return state
