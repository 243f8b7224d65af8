"""Keys that never sit beside the data: envelope encryption under a real HSM (SoftHSM2
through PKCS#11) and a real implementation of the AWS KMS API (moto's server on
loopback), the faults the issue lists (key manager gone at start: refused; gone while
running: keeps serving and says so in the log, /metrics and, when configured, /readyz),
periodic audit digests signed by each key manager, a `--reseal` killed half way
(resumes, nothing lost), and the audit log checked against signed digests after a
database admin rewrote, truncated or replaced it."""

import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import pytest

from conftest import free_port, gatehouse_bin, unique

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4321"


def write_config(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def cli(*args, env=None, timeout=60):
    return subprocess.run([gatehouse_bin(), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def files_contain(root, needle):
    """Whether any file under `root` holds `needle` (bytes)."""
    for dirpath, _, names in os.walk(root):
        for n in names:
            with open(os.path.join(dirpath, n), "rb") as f:
                if needle in f.read():
                    return os.path.join(dirpath, n)
    return None


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def user_with_key(server):
    iam = server.client("iam")
    name = unique("keyed")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, key["AccessKeyId"], key["SecretAccessKey"]


def works(server, key_id, secret, name):
    own = server._new_client("iam", key_id, secret, None)
    try:
        own.get_user(UserName=name)
    except own.exceptions.ClientError as e:
        # Authenticated and decided: a denial is fine, an unknown key is not.
        return e.response["Error"]["Code"] == "AccessDenied"
    return True


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def metric(text, name, **labels):
    """The value of the sample `name{labels}` in a Prometheus text exposition, or None."""
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if have == {k: str(v) for k, v in labels.items()}:
            return float(m.group(3))
    return None


def readyz(server):
    try:
        with urllib.request.urlopen(server.endpoint + "/readyz", timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def periodic_digests(digest_file, metrics_port):
    """The `[audit]` and `[metrics]` tables: a digest every second to `digest_file`, and
    /metrics on its own loopback listener."""
    return (f'[audit]\ndigest_interval_secs = 1\ndigest_file = "{digest_file}"\n'
            f'[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n')


def wait_for_signed_digest(digest_file, signing_key, records):
    """Waits for the ticker to sign a digest covering `records` records with
    `signing_key`, and for it to settle (no new record, no new digest)."""
    wait_for(lambda: any(d["audit_seq"] >= records and d["signing_key"] == signing_key
                         for d in digest_lines(digest_file)), 20, f"a periodic digest by {signing_key}")
    time.sleep(1.5)


def verify_against_file(data_dir, config, digest_file, env):
    r = cli("audit", "verify", "--format", "json", "--digests", str(digest_file),
            "--data-dir", data_dir, "--config", config, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    v = json.loads(r.stdout)
    assert v["intact"] is True, v
    return v


# --------------------------------------------------------------------------- KMS (moto)

class MotoKms:
    def __init__(self, tmp):
        self.port = free_port()
        self.log = open(os.path.join(tmp, "moto.log"), "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        kms = boto3.client("kms", endpoint_url=self.url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        wait_for(lambda: self._up(kms), 30, "moto to listen")
        self.key_id = kms.create_key(Description="gatehouse kek")["KeyMetadata"]["Arn"]
        self.signing_key_id = kms.create_key(
            KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]

    @staticmethod
    def _up(kms):
        try:
            kms.list_keys()
            return True
        except Exception:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


KMS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1"}


def kms_config(path, url, kms, extra=""):
    return write_config(path, f"""
[keys]
provider = "kms"
health_check_secs = 1
[keys.kms]
key_id = "{kms.key_id}"
signing_key_id = "{kms.signing_key_id}"
endpoint_url = "{url}"
timeout_secs = 2
{extra}""")


def test_kms_envelope_refuses_without_kms_and_serves_when_it_goes_away(make_server, tmp_path):
    kms = MotoKms(str(tmp_path))
    try:
        cfg = kms_config(tmp_path / "kms.toml", kms.url, kms)
        server = make_server("sqlite", config=cfg, extra_env=KMS_ENV)
        name, key_id, secret = user_with_key(server)
        assert works(server, key_id, secret, name)
        # The data key is wrapped by KMS: no key file beside the data.
        assert not os.path.exists(os.path.join(server.data_dir, "master.key"))
        env = {**os.environ, **KMS_ENV}
        signed = cli("audit", "sign-digest", "--data-dir", server.data_dir, "--config", cfg, env=env)
        assert signed.returncode == 0, signed.stderr
        assert f"kms:{kms.signing_key_id}" in signed.stdout
        v = cli("audit", "verify", "--data-dir", server.data_dir, "--config", cfg, env=env)
        assert v.returncode == 0 and "signed digests (database): 1 checked" in v.stdout, v.stdout

        # KMS goes away while the server runs: requests keep working (the data key is
        # in memory), new secrets are sealed, and the log says the key manager is gone.
        kms.stop()
        wait_for(lambda: "key manager unreachable" in server.read_log(), 15, "the log line")
        assert works(server, key_id, secret, name)
        name2, key_id2, secret2 = user_with_key(server)
        assert works(server, key_id2, secret2, name2)
        server.stop()
        # Nothing on disk opens a secret: no plaintext, and without KMS nothing starts.
        for s in (secret, secret2):
            assert files_contain(server.data_dir, s.encode()) is None
        with pytest.raises(RuntimeError) as refused:
            server.start()
        assert "unreachable" in str(refused.value) and "kms" in str(refused.value)
        # Nor does the file provider (a master.key made now holds no data key).
        plain = cli("audit", "tail", "--data-dir", server.data_dir)
        assert plain.returncode == 2 and "does not hold" in plain.stderr
    finally:
        kms.stop()


def test_kms_stopped_while_running_shows_in_metrics_and_readyz_after_kms_signed_periodic_digests(
        make_server, tmp_path):
    kms = MotoKms(str(tmp_path))
    try:
        env = {**os.environ, **KMS_ENV}
        digest_file = tmp_path / "digests.jsonl"
        mport = free_port()
        cfg = kms_config(tmp_path / "kms.toml", kms.url, kms, periodic_digests(digest_file, mport))
        # A second node that an operator wants out of the load balancer while its key
        # manager is unreachable.
        strict = write_config(tmp_path / "strict.toml", open(kms_config(
            tmp_path / "strict-base.toml", kms.url, kms)).read().replace(
            "health_check_secs = 1", "health_check_secs = 1\nready_requires_key_manager = true"))
        server = make_server("sqlite", config=cfg, extra_env=KMS_ENV)
        other = make_server("sqlite", config=strict, extra_env=KMS_ENV)
        name, key_id, secret = user_with_key(server)
        assert works(server, key_id, secret, name)
        text = scrape(mport)
        assert metric(text, "gatehouse_key_manager_up", provider="kms") == 1, text
        for op in ("check", "sign", "unwrap"):
            assert metric(text, "gatehouse_key_manager_failures_total", provider="kms", operation=op) == 0
        assert readyz(server) == 200 and readyz(other) == 200

        # Timed digests signed by KMS's ECC_NIST_P256 key, exported, and checked by
        # `audit verify --digests` with the public key asked of KMS.
        wait_for_signed_digest(digest_file, f"kms:{kms.signing_key_id}", 2)
        lines = digest_lines(digest_file)
        assert all(d["algorithm"] == "ecdsa-p256-sha256" for d in lines), lines
        v = verify_against_file(server.data_dir, cfg, digest_file, env)
        assert [d["verification"]["digests"] for d in v["digests"]] == [len(lines), len(lines)], v

        # KMS stops while both nodes run.
        kms.stop()
        wait_for(lambda: metric(scrape(mport), "gatehouse_key_manager_up", provider="kms") == 0,
                 15, "gatehouse_key_manager_up 0")
        assert metric(scrape(mport), "gatehouse_key_manager_failures_total",
                      provider="kms", operation="check") >= 1
        # Requests are served from the data key in memory (old and new secrets), so the
        # node stays ready; the strict node says it is not.
        assert works(server, key_id, secret, name)
        name2, key_id2, secret2 = user_with_key(server)
        assert works(server, key_id2, secret2, name2)
        assert readyz(server) == 200
        wait_for(lambda: readyz(other) == 503, 15, "the strict node to be not ready")
        assert "ready_requires_key_manager" in other.read_log()
        # The new records cannot be covered by a digest: each tick's failure is counted.
        wait_for(lambda: (metric(scrape(mport), "gatehouse_key_manager_failures_total",
                                 provider="kms", operation="sign") or 0) >= 2,
                 15, "failed digest signatures counted")
        assert "could not sign an audit digest" in server.read_log()
        assert "key manager unreachable" in server.read_log()
        assert len(digest_lines(digest_file)) == len(lines)
        server.stop()
        other.stop()
    finally:
        kms.stop()


# --------------------------------------------------------------------------- PKCS#11 (SoftHSM2)

class SoftHsm:
    def __init__(self, tmp):
        if not os.path.exists(SOFTHSM_MODULE) or not shutil.which("pkcs11-tool"):
            pytest.fail("SoftHSM2 and OpenSC are needed (apt-get install softhsm2 opensc)")
        self.tokens = os.path.join(tmp, "tokens")
        os.makedirs(self.tokens)
        self.conf = write_config(os.path.join(tmp, "softhsm2.conf"),
                                 f"directories.tokendir = {self.tokens}\n"
                                 "objectstore.backend = file\nlog.level = ERROR\n")
        self.env = {**os.environ, "SOFTHSM2_CONF": self.conf, "GATEHOUSE_PKCS11_PIN": PIN}
        self.run("softhsm2-util", "--init-token", "--free", "--label", "gatehouse",
                 "--pin", PIN, "--so-pin", "87654321")
        tool = ["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "gatehouse",
                "--login", "--pin", PIN]
        self.run(*tool, "--keygen", "--key-type", "AES:32", "--label", "gatehouse-kek")
        self.run(*tool, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "gatehouse-audit")

    def run(self, *cmd):
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
        assert r.returncode == 0, f"{cmd}: {r.stdout}{r.stderr}"
        return r

    def config(self, path, extra=""):
        return write_config(path, f"""
[keys]
provider = "pkcs11"
health_check_secs = 1
[keys.pkcs11]
module = "{SOFTHSM_MODULE}"
token_label = "gatehouse"
{extra}""")

    def remove_token(self):
        self.run("softhsm2-util", "--delete-token", "--token", "gatehouse")


def test_softhsm_envelope_refuses_without_token_and_serves_when_it_is_removed(make_server, tmp_path):
    hsm = SoftHsm(str(tmp_path))
    digest_file = tmp_path / "digests.jsonl"
    mport = free_port()
    cfg = hsm.config(tmp_path / "hsm.toml", periodic_digests(digest_file, mport))
    extra = {"SOFTHSM2_CONF": hsm.conf, "GATEHOUSE_PKCS11_PIN": PIN}
    server = make_server("sqlite", config=cfg, extra_env=extra)
    name, key_id, secret = user_with_key(server)
    assert works(server, key_id, secret, name)
    assert not os.path.exists(os.path.join(server.data_dir, "master.key"))
    # Timed digests signed in the token (CKM_ECDSA, P-256), exported, and checked by
    # `audit verify --digests` with the public key read from the token.
    wait_for_signed_digest(digest_file, "pkcs11:gatehouse/gatehouse-audit", 2)
    lines = digest_lines(digest_file)
    assert all(d["algorithm"] == "ecdsa-p256-sha256" for d in lines), lines
    v = verify_against_file(server.data_dir, cfg, digest_file, hsm.env)
    assert [d["verification"]["digests"] for d in v["digests"]] == [len(lines), len(lines)], v
    # And one on demand, beside them in the database's chain.
    signed = cli("audit", "sign-digest", "--data-dir", server.data_dir, "--config", cfg, env=hsm.env)
    assert signed.returncode == 0 and "pkcs11:gatehouse/gatehouse-audit" in signed.stdout, signed.stderr
    v = cli("audit", "verify", "--data-dir", server.data_dir, "--config", cfg, env=hsm.env)
    assert v.returncode == 0 and f"{len(lines) + 1} checked" in v.stdout, v.stdout + v.stderr
    assert metric(scrape(mport), "gatehouse_key_manager_up", provider="pkcs11") == 1

    # The token is removed while the server runs: it keeps serving, and says so in the
    # log and in /metrics; it stays ready (the data key is in memory).
    hsm.remove_token()
    wait_for(lambda: "key manager unreachable" in server.read_log(), 15, "the log line")
    text = scrape(mport)
    assert metric(text, "gatehouse_key_manager_up", provider="pkcs11") == 0, text
    assert metric(text, "gatehouse_key_manager_failures_total", provider="pkcs11", operation="check") >= 1
    assert works(server, key_id, secret, name)
    assert readyz(server) == 200
    server.stop()
    assert files_contain(server.data_dir, secret.encode()) is None
    # Without the token nothing starts.
    with pytest.raises(RuntimeError) as refused:
        server.start()
    assert "pkcs11" in str(refused.value) and "gatehouse" in str(refused.value)


def test_softhsm_token_back_after_an_outage_is_seen_and_the_outage_records_get_signed(make_server, tmp_path):
    """The token goes away and comes back (its files moved out of the token directory and
    back, as a token unplugged and plugged in again): the strict node is out of rotation
    meanwhile and back after, the metrics follow, and the first digest after the outage
    covers the records written during it."""
    hsm = SoftHsm(str(tmp_path))
    digest_file = tmp_path / "digests.jsonl"
    mport = free_port()
    cfg = hsm.config(tmp_path / "hsm.toml", periodic_digests(digest_file, mport))
    strict = write_config(tmp_path / "strict.toml", open(cfg).read().replace(
        "health_check_secs = 1", "health_check_secs = 1\nready_requires_key_manager = true"))
    extra = {"SOFTHSM2_CONF": hsm.conf, "GATEHOUSE_PKCS11_PIN": PIN}
    server = make_server("sqlite", config=strict, extra_env=extra)
    name, key_id, secret = user_with_key(server)
    wait_for_signed_digest(digest_file, "pkcs11:gatehouse/gatehouse-audit", 2)
    assert readyz(server) == 200

    aside = tmp_path / "unplugged"
    shutil.move(hsm.tokens, aside)
    os.makedirs(hsm.tokens)
    wait_for(lambda: readyz(server) == 503, 15, "not ready while the token is away")
    assert metric(scrape(mport), "gatehouse_key_manager_up", provider="pkcs11") == 0
    # Served meanwhile (a probe's 503 only takes it out of a load balancer).
    assert works(server, key_id, secret, name)
    during, _, _ = user_with_key(server)
    wait_for(lambda: (metric(scrape(mport), "gatehouse_key_manager_failures_total",
                             provider="pkcs11", operation="sign") or 0) >= 1, 15, "a failed digest")
    signed_before = max(d["audit_seq"] for d in digest_lines(digest_file))

    shutil.rmtree(hsm.tokens)
    shutil.move(aside, hsm.tokens)
    wait_for(lambda: readyz(server) == 200, 20, "ready again once the token is back")
    assert metric(scrape(mport), "gatehouse_key_manager_up", provider="pkcs11") == 1
    assert "key manager reachable again" in server.read_log()
    wait_for(lambda: max(d["audit_seq"] for d in digest_lines(digest_file)) > signed_before + 1,
             20, "a digest covering the outage's records")
    server.stop()
    v = verify_against_file(server.data_dir, cfg, digest_file, hsm.env)
    assert v["digests"][1]["verification"]["anchored_records"] >= signed_before + 2, v


# --------------------------------------------------------------------------- migration

def audit_verify(data_dir, config, env):
    args = ["audit", "verify", "--format", "json", "--data-dir", data_dir]
    if config:
        args += ["--config", config]
    r = cli(*args, env=env)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else r.stderr


@pytest.mark.parametrize("provider", ["pkcs11", "kms"])
def test_migration_from_file_to_a_key_manager_and_back_as_the_readme_says(make_server, tmp_path, provider):
    """README "Keys that never sit beside the data", Migration, step by step: a store
    sealed by the `file` provider moved onto an HSM (SoftHSM2) or KMS (moto) and back,
    every secret readable at each step, and the key it left refused afterwards."""
    if provider == "pkcs11":
        manager = SoftHsm(str(tmp_path))
        km_config = manager.config(tmp_path / "to.toml")
        km_env = {"SOFTHSM2_CONF": manager.conf, "GATEHOUSE_PKCS11_PIN": PIN}
    else:
        manager = MotoKms(str(tmp_path))
        km_config = kms_config(tmp_path / "to.toml", manager.url, manager)
        km_env = KMS_ENV
    env = {**os.environ, **km_env}
    try:
        server = make_server("sqlite", extra_env=km_env)
        name, key_id, secret = user_with_key(server)
        master = os.path.join(server.data_dir, "master.key")
        old_master = open(master, "rb").read()
        server.stop()  # a digest signed at shutdown with the file key
        server.start()

        # 1. Describe the key manager, set `provider`, run rotate-master-key (the node
        #    keeps running and serving: its data key is in memory).
        r = cli("admin", "rotate-master-key", "--data-dir", server.data_dir, "--config", km_config, env=env)
        assert r.returncode == 0 and f"re-wrapped 1 data key(s) under {provider}:" in r.stdout, r.stdout + r.stderr
        assert works(server, key_id, secret, name)
        # 2. Restart the node with the new config.
        server.stop()
        server.config = km_config
        server.start()
        assert works(server, key_id, secret, name)
        # 3. Delete master.key.
        os.remove(master)
        server.stop()  # a digest signed at shutdown by the key manager
        server.start()
        assert works(server, key_id, secret, name)
        # Every digest checks out: the file key's from before the move, the key
        # manager's since.
        code, v = audit_verify(server.data_dir, km_config, env)
        assert code == 0 and v["intact"] is True, v
        listed = cli("audit", "digests", "--data-dir", server.data_dir, "--config", km_config, env=env)
        signers = [json.loads(line)["signing_key"].split(":")[0] for line in listed.stdout.splitlines()]
        assert signers[0] == "file" and signers[-1] == provider, signers
        server.stop()

        # The key the store left is refused: master.key restored from a backup opens
        # nothing and the `file` provider does not start on it.
        with open(master, "wb") as f:
            f.write(old_master)
        server.config = None
        with pytest.raises(RuntimeError) as refused:
            server.start()
        assert "does not hold" in str(refused.value) and f"{provider}:" in str(refused.value)
        plain = cli("audit", "tail", "--data-dir", server.data_dir, env=env)
        assert plain.returncode == 2 and "does not hold" in plain.stderr, plain.stderr
        os.remove(master)

        # Back to file: provider = "file", the key manager's table kept so that it can
        # unwrap; the same command makes a new master.key and wraps under it.
        back = write_config(tmp_path / "back.toml", open(km_config).read().replace(
            f'provider = "{provider}"', 'provider = "file"'))
        r = cli("admin", "rotate-master-key", "--data-dir", server.data_dir, "--config", back, env=env)
        assert r.returncode == 0 and "re-wrapped 1 data key(s) under file:" in r.stdout, r.stdout + r.stderr
        assert open(master, "rb").read() != old_master
        server.start()
        assert works(server, key_id, secret, name)
        server.stop()
        code, v = audit_verify(server.data_dir, back, env)
        assert code == 0 and v["intact"] is True, v
        # Now the key manager's key is the one refused.
        server.config = km_config
        with pytest.raises(RuntimeError) as refused:
            server.start()
        assert "does not hold" in str(refused.value) and "file:" in str(refused.value)
        server.config = None
        server.start()
        assert works(server, key_id, secret, name)
    finally:
        if provider == "kms":
            manager.stop()


# --------------------------------------------------------------------------- reseal

def test_reseal_killed_half_way_resumes_and_loses_nothing(make_server):
    server = make_server("sqlite")
    iam = server.client("iam")
    keys = []
    for _ in range(40):
        name = unique("many")
        iam.create_user(UserName=name)
        for _ in range(2):
            k = iam.create_access_key(UserName=name)["AccessKey"]
            keys.append((name, k["AccessKeyId"], k["SecretAccessKey"]))
    proc = subprocess.Popen(
        [gatehouse_bin(), "admin", "rotate-master-key", "--reseal", "--batch-size", "1",
         "--data-dir", server.data_dir], stdout=subprocess.PIPE, text=True)
    moved = 0
    for line in proc.stdout:
        m = re.match(r"re-sealed (\d+) of", line)
        if m and int(m.group(1)) >= 10:
            moved = int(m.group(1))
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert moved >= 10
    # Every secret is readable while half of them are under the new data key.
    for name, key_id, secret in keys:
        assert works(server, key_id, secret, name)
    again = server.cli("admin", "rotate-master-key", "--reseal", "--batch-size", "50")
    assert again.returncode == 0, again.stderr
    assert "continuing the reseal" in again.stdout and "reseal done" in again.stdout
    for name, key_id, secret in keys:
        assert works(server, key_id, secret, name)
    db = sqlite3.connect(os.path.join(server.data_dir, "gatehouse.db"))
    try:
        (active,), = db.execute("SELECT key_id FROM data_keys").fetchall()
        prefixes = {v.split(".")[1] for (v,) in db.execute("SELECT secret_sealed FROM access_keys")}
    finally:
        db.close()
    assert prefixes == {active}


# --------------------------------------------------------------------------- audit digests

def rehash_from(db, first_seq):
    """What a database admin does to cover an edit: recompute every hash from `first_seq`
    on, and the head."""
    rows = db.execute("SELECT seq, record, prev_hash FROM audit_log WHERE seq >= ? ORDER BY seq",
                      (first_seq,)).fetchall()
    prev = rows[0][2] if rows else ""
    for seq, record, _ in rows:
        h = hashlib.sha256(prev.encode() + b"\0" + record.encode()).hexdigest()
        db.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, seq))
        prev = h
    (last,) = db.execute("SELECT max(seq) FROM audit_log").fetchone()
    db.execute("UPDATE audit_head SET seq = ?, hash = ?", (last or 0, prev))
    db.commit()


def verdict(server, *extra):
    r = server.cli("audit", "verify", "--format", "json", *extra)
    return r.returncode, json.loads(r.stdout)


def test_rewritten_truncated_or_replaced_log_is_detected_from_its_digest(make_server, tmp_path):
    digest_file = tmp_path / "digests.jsonl"
    cfg = write_config(tmp_path / "audit.toml", f'[audit]\ndigest_file = "{digest_file}"\n')
    server = make_server("sqlite", config=cfg)
    iam = server.client("iam")
    marks = []
    for batch in range(3):
        for _ in range(3):
            iam.create_user(UserName=unique(f"b{batch}"))
        signed = server.cli("audit", "sign-digest", "--config", cfg)
        assert signed.returncode == 0, signed.stderr
        marks.append(int(re.search(r"of (\d+) records", signed.stdout).group(1)))
    server.stop()  # and a last digest at shutdown
    code, v = verdict(server, "--digests", str(digest_file))
    assert code == 0 and v["intact"] is True, v
    assert [d["verification"]["digests"] for d in v["digests"]] == [4, 4]

    path = os.path.join(server.data_dir, "gatehouse.db")
    pristine = str(tmp_path / "pristine.db")
    # One self-contained copy (the WAL folded in) to restore between the scenarios.
    src = sqlite3.connect(path)
    src.execute(f"VACUUM INTO '{pristine}'")
    src.close()

    def restore():
        for suffix in ("-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        shutil.copy(pristine, path)

    # 1. A record after digest 1 is rewritten and the whole chain re-hashed: the chain
    #    itself checks out, the digests do not, from digest 2 on.
    db = sqlite3.connect(path)
    target = marks[0] + 1
    db.execute("UPDATE audit_log SET record = replace(record, 'Allow', 'ExplicitDeny') WHERE seq = ?",
               (target,))
    db.commit()
    rehash_from(db, target)
    db.close()
    code, v = verdict(server)
    assert code == 1 and v["intact"] is False and v["digest_seq"] == 2, v
    assert "rewritten" in v["reason"]
    text = server.cli("audit", "verify")
    assert "hash chain intact" in text.stdout and "BROKEN from digest 2 on" in text.stdout

    # 2. The tail is dropped (records and their digest), head fixed: the exported file
    #    still has the digests, and says so.
    restore()
    db = sqlite3.connect(path)
    db.execute("DELETE FROM audit_log WHERE seq > ?", (marks[1],))
    db.execute("DELETE FROM audit_digests WHERE seq > 2")
    rehash_from(db, marks[1])
    db.close()
    code, v = verdict(server)
    assert code == 0, v  # the database alone cannot tell
    code, v = verdict(server, "--digests", str(digest_file))
    assert code == 1 and v["intact"] is False, v
    file_report = v["digests"][1]["verification"]["broken"]
    assert file_report["digest_seq"] == 3 and "truncated" in file_report["reason"]

    # 3. The whole log is replaced by a consistent chain of other records.
    restore()
    db = sqlite3.connect(path)
    db.execute("UPDATE audit_log SET record = replace(record, 'CreateUser', 'GetUser')")
    db.commit()
    rehash_from(db, 1)
    db.close()
    code, v = verdict(server)
    assert code == 1 and v["digest_seq"] == 1, v


def digest_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_periodic_digests_are_piped_to_the_configured_command(make_server, tmp_path):
    # The external sink: a command that gets each digest on its standard input (here it
    # appends to a file the database admin is assumed not to reach).
    sink = tmp_path / "sink.jsonl"
    cfg = write_config(tmp_path / "periodic.toml", f"""
[audit]
digest_interval_secs = 1
digest_command = ["sh", "-c", "cat >> '{sink}'"]
""")
    server = make_server("sqlite", config=cfg)
    iam = server.client("iam")
    iam.create_user(UserName=unique("periodic"))
    # Signed by the ticker, with no `audit sign-digest` and no shutdown (the first tick, at
    # start, may sign the empty log).
    wait_for(lambda: any(d["audit_seq"] >= 1 for d in digest_lines(sink)), 15, "a periodic digest")
    first = digest_lines(sink)[-1]
    assert first["signing_key"].startswith("file:ed25519:") and first["audit_seq"] >= 1
    iam.create_user(UserName=unique("periodic"))
    wait_for(lambda: digest_lines(sink)[-1]["audit_seq"] > first["audit_seq"], 15,
             "a periodic digest covering the new record")
    # No record since the last digest: the ticker signs nothing new.
    settled = len(digest_lines(sink))
    time.sleep(2.5)
    assert len(digest_lines(sink)) == settled
    server.stop()
    lines = digest_lines(sink)
    assert [d["seq"] for d in lines] == list(range(1, len(lines) + 1))
    code, v = verdict(server, "--digests", str(sink))
    assert code == 0 and v["intact"] is True, v
    assert [d["verification"]["digests"] for d in v["digests"]] == [len(lines), len(lines)]

    # A record covered by the first digest rewritten, chain re-hashed: the sink's digests
    # catch it from digest 1 even after the database's own digests are deleted.
    path = os.path.join(server.data_dir, "gatehouse.db")
    db = sqlite3.connect(path)
    db.execute("UPDATE audit_log SET record = replace(record, 'CreateUser', 'GetUser')")
    db.execute("DELETE FROM audit_digests")
    db.commit()
    rehash_from(db, 1)
    db.close()
    code, v = verdict(server, "--digests", str(sink))
    assert code == 1 and v["intact"] is False, v
    assert v["digests"][1]["verification"]["broken"]["digest_seq"] == 1, v


def test_postgres_nodes_each_unwrap_through_kms_and_a_dump_opens_nothing(make_server, tmp_path):
    kms = MotoKms(str(tmp_path))
    try:
        cfg = kms_config(tmp_path / "kms.toml", kms.url, kms)
        a = make_server("postgres", config=cfg, extra_env=KMS_ENV)
        # A second node: same database, its own data directory, its own access to KMS.
        b = make_server("postgres", database_url=a.database_url, config=cfg, extra_env=KMS_ENV)
        name, key_id, secret = user_with_key(a)
        assert works(b, key_id, secret, name)
        name2, key_id2, secret2 = user_with_key(b)
        assert works(a, key_id2, secret2, name2)
        for node in (a, b):
            assert not os.path.exists(os.path.join(node.data_dir, "master.key"))

        dump = subprocess.run(["pg_dump", "--no-owner", a.database_url], capture_output=True)
        assert dump.returncode == 0, dump.stderr
        # The dump holds the keys (their ids, their sealed secrets) but no secret.
        assert key_id.encode() in dump.stdout and key_id2.encode() in dump.stdout
        for s in (secret, secret2):
            assert s.encode() not in dump.stdout
            for node in (a, b):
                assert files_contain(node.data_dir, s.encode()) is None

        a.stop()
        b.stop()
        kms.stop()
        # The database and either data directory without KMS: neither node starts.
        for node in (a, b):
            with pytest.raises(RuntimeError) as refused:
                node.start()
            assert "unreachable" in str(refused.value) and "kms" in str(refused.value)
    finally:
        kms.stop()
