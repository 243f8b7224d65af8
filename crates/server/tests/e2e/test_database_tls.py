"""Encryption in transit to the database: a private PostgreSQL (Debian's, started here in a
temporary directory on a free port, never the shared cluster) that accepts only TLS, with a
certificate from a self-signed CA made by the test. Gatehouse connects with
`sslmode=verify-full` and the CA file from its config; a wrong CA, a host name the
certificate does not name, and plain text are each refused, and `require_tls` refuses a
mode that could fall back to plain text before connecting."""

import glob
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import free_port, unique


def postgres_bin():
    """The newest Debian PostgreSQL's server binaries (the private cluster needs initdb)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


PG_BIN = postgres_bin()


def run(*cmd, user=None, cwd=None):
    if user:
        cmd = ("runuser", "-u", user, "--", *cmd)
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, f"{cmd}: {r.stdout}{r.stderr}"
    return r


def make_ca(d, name):
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.crt")
    return f"{d}/{name}.crt"


class PrivatePostgres:
    def __init__(self):
        if PG_BIN is None:
            pytest.fail("PostgreSQL's server binaries are needed (apt-get install postgresql)")
        # Not under pytest's private temporary tree: the postgres user must reach it.
        self.dir = tempfile.mkdtemp(prefix="gatehouse-pg-")
        self.ca = make_ca(self.dir, "ca")
        self.other_ca = make_ca(self.dir, "other-ca")
        # The server's certificate names only "localhost".
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", f"{self.dir}/server.key", "-out", f"{self.dir}/server.csr")
        with open(f"{self.dir}/san.ext", "w") as f:
            f.write("subjectAltName=DNS:localhost\n")
        run("openssl", "x509", "-req", "-in", f"{self.dir}/server.csr", "-CA", self.ca,
            "-CAkey", f"{self.dir}/ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", f"{self.dir}/san.ext", "-out", f"{self.dir}/server.crt")
        shutil.chown(self.dir, "postgres", "postgres")
        for n in os.listdir(self.dir):
            shutil.chown(os.path.join(self.dir, n), "postgres", "postgres")
        os.chmod(f"{self.dir}/server.key", 0o600)
        self.data = f"{self.dir}/data"
        run(f"{PG_BIN}/initdb", "-D", self.data, "-U", "gatehouse", "--auth=trust", user="postgres")
        self.port = free_port()
        with open(f"{self.data}/postgresql.conf", "a") as f:
            f.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.dir}'\nssl = on\n"
                    f"ssl_cert_file = '{self.dir}/server.crt'\nssl_key_file = '{self.dir}/server.key'\n")
        with open(f"{self.data}/pg_hba.conf", "w") as f:
            # TLS only over TCP: a plain-text connection matches no line.
            f.write("local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
        run(f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", f"{self.dir}/log", "-w", "start",
            user="postgres")

    def url(self, host="localhost", query=""):
        return f"postgres://gatehouse@{host}:{self.port}/postgres{query}"

    def stop(self):
        subprocess.run(("runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", self.data,
                        "-m", "immediate", "stop"), capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def private_postgres():
    pg = PrivatePostgres()
    yield pg
    pg.stop()


def tls_config(path, sslmode, ca=None, require=False):
    lines = ["[database]", f'sslmode = "{sslmode}"']
    if ca:
        lines.append(f'ca_file = "{ca}"')
    if require:
        lines.append("require_tls = true")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_verify_full_with_the_configured_ca(make_server, private_postgres, tmp_path):
    cfg = tls_config(tmp_path / "tls.toml", "verify-full", private_postgres.ca, require=True)
    server = make_server("postgres", database_url=private_postgres.url(), config=cfg)
    iam = server.client("iam")
    name = unique("over-tls")
    iam.create_user(UserName=name)
    assert iam.get_user(UserName=name)["User"]["UserName"] == name
    # The connection really is TLS: the server's own view of its sessions says so.
    ssl = subprocess.run(
        ("runuser", "-u", "postgres", "--", f"{PG_BIN}/psql",
         "-h", private_postgres.dir, "-p", str(private_postgres.port), "-U", "gatehouse",
         "-d", "postgres", "-qAtc",
         "select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid) "
         "where a.client_addr is not null and s.ssl"),
        capture_output=True, text=True)
    assert ssl.returncode == 0 and int(ssl.stdout.strip()) >= 1, ssl.stdout + ssl.stderr


@pytest.mark.parametrize("case", ["other-ca", "wrong-host", "plain-text", "prefer-with-require"])
def test_connections_that_are_not_verified_tls_are_refused(make_server, private_postgres, tmp_path,
                                                           case):
    pg = private_postgres
    url = pg.url()
    if case == "other-ca":
        cfg = tls_config(tmp_path / "c.toml", "verify-full", pg.other_ca)
    elif case == "wrong-host":
        url = pg.url(host="127.0.0.1")  # the certificate names only localhost
        cfg = tls_config(tmp_path / "c.toml", "verify-full", pg.ca)
    elif case == "plain-text":
        cfg = tls_config(tmp_path / "c.toml", "disable")
    else:
        cfg = tls_config(tmp_path / "c.toml", "prefer", pg.ca, require=True)
    server = make_server("postgres", database_url=url, config=cfg, start=False)
    with pytest.raises(RuntimeError) as refused:
        server.start()
    log = str(refused.value)
    if case == "prefer-with-require":
        assert "require_tls" in log
    elif case == "plain-text":
        assert "no pg_hba.conf entry" in log or "SSL off" in log, log
    else:
        assert "certificate" in log.lower() or "invalid peer" in log.lower(), log
