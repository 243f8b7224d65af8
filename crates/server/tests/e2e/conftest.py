"""Shared fixtures for the end-to-end suites: a real `gatehouse serve` process on loopback,
on SQLite and (when GATEHOUSE_TEST_POSTGRES_URL is set) on PostgreSQL, and real clients.

Every suite that needs a server takes the `gatehouse` fixture; it is parametrized over the
backends available, each server on a fresh data directory (and a fresh PostgreSQL database).
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid

import boto3
import botocore.config
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
ROOT_KEY_ID = "AKIAGATEHOUSEROOT001"
ROOT_SECRET = "root-secret-for-tests-only-0000000000000"
REGION = "us-east-1"


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
        return boto3.client(
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
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


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
    if postgres_url():
        out.append("postgres")
    else:
        print("notice: GATEHOUSE_TEST_POSTGRES_URL unset; end-to-end suites run on SQLite only")
    return out


@pytest.fixture
def make_server(tmp_path_factory):
    """Factory: make_server(backend, **kw) -> started Server; all stopped at teardown."""
    started = []

    def make(backend="sqlite", database_url=None, data_dir=None, start=True, **kw):
        data_dir = data_dir or str(tmp_path_factory.mktemp("gatehouse-data"))
        if backend == "postgres" and database_url is None:
            database_url = _create_postgres_database(postgres_url())
        s = Server(backend, data_dir, database_url, **kw)
        started.append(s)
        return s.start() if start else s

    yield make
    for s in started:
        s.stop()


@pytest.fixture(params=backends())
def gatehouse(request, make_server):
    """A running Gatehouse on each available backend."""
    return make_server(request.param)


@pytest.fixture
def iam(gatehouse):
    """boto3 IAM client with the bootstrap root credentials."""
    return gatehouse.client("iam")
