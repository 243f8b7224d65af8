#!/usr/bin/env python3
"""Key managers: start-up time and per-request cost with each provider, and `--reseal`
throughput.

- start-up: time from exec to the listening socket, on an existing store (the data key
  is unwrapped once at start), median of --starts runs per provider;
- per request: a Bearer-authenticated `GET /v1/models` over one keep-alive connection
  (authentication opens the caller's sealed secret), median and p99 of --requests;
- reseal: `gatehouse admin rotate-master-key --reseal` over --secrets access keys
  (file provider, SQLite), secrets per second.

Providers: file (the default), pkcs11 (SoftHSM2, token made here), kms (moto's server on
loopback). Loopback only; every process it starts is stopped.

    cargo build --release -p gatehouse-cli
    python3 scripts/bench-keys.py --bin target/release/gatehouse
"""

import argparse
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import boto3

ROOT = ("AKIAGATEHOUSEROOT001", "root-secret-for-tests-only-0000000000000")
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4321"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, data_dir, config, env):
    port = free_port()
    cmd = [binary, "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}"]
    if config:
        cmd += ["--config", config]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        if proc.poll() is not None:
            sys.exit(f"gatehouse exited: {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.05):
                return proc, port, time.perf_counter() - t0
        except OSError:
            time.sleep(0.002)


def stop(proc):
    proc.terminate()
    proc.wait(20)


def provider_setup(name, tmp):
    env = dict(os.environ, GATEHOUSE_ROOT_ACCESS_KEY_ID=ROOT[0],
               GATEHOUSE_ROOT_SECRET_ACCESS_KEY=ROOT[1], GATEHOUSE_LOG="warn")
    cleanup = []
    config = None
    if name == "pkcs11":
        tokens = os.path.join(tmp, "tokens")
        os.makedirs(tokens)
        conf = os.path.join(tmp, "softhsm2.conf")
        open(conf, "w").write(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
        env.update(SOFTHSM2_CONF=conf, GATEHOUSE_PKCS11_PIN=PIN)
        run = lambda *c: subprocess.run(c, env=env, check=True, capture_output=True)
        run("softhsm2-util", "--init-token", "--free", "--label", "gatehouse", "--pin", PIN,
            "--so-pin", "87654321")
        tool = ["pkcs11-tool", "--module", SOFTHSM, "--token-label", "gatehouse", "--login",
                "--pin", PIN]
        run(*tool, "--keygen", "--key-type", "AES:32", "--label", "gatehouse-kek")
        run(*tool, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "gatehouse-audit")
        config = os.path.join(tmp, "keys.toml")
        open(config, "w").write(f'[keys]\nprovider = "pkcs11"\n[keys.pkcs11]\nmodule = "{SOFTHSM}"\n'
                                'token_label = "gatehouse"\n')
    elif name == "kms":
        port = free_port()
        moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                 str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cleanup.append(lambda: (moto.kill(), moto.wait()))
        url = f"http://127.0.0.1:{port}"
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_REGION="us-east-1")
        kms = boto3.client("kms", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        for _ in range(300):
            try:
                kms.list_keys()
                break
            except Exception:
                time.sleep(0.1)
        key = kms.create_key()["KeyMetadata"]["Arn"]
        sign = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        config = os.path.join(tmp, "keys.toml")
        open(config, "w").write(f'[keys]\nprovider = "kms"\n[keys.kms]\nkey_id = "{key}"\n'
                                f'signing_key_id = "{sign}"\nendpoint_url = "{url}"\n')
    return env, config, cleanup


def bench_provider(binary, name, starts, requests):
    tmp = tempfile.mkdtemp(prefix=f"bench-keys-{name}-")
    env, config, cleanup = provider_setup(name, tmp)
    data = os.path.join(tmp, "data")
    try:
        proc, port, _ = start(binary, data, config, env)  # first start creates the store
        iam = boto3.client("iam", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                           aws_access_key_id=ROOT[0], aws_secret_access_key=ROOT[1])
        iam.create_user(UserName="bench")
        k = iam.create_access_key(UserName="bench")["AccessKey"]
        stop(proc)
        times = []
        for _ in range(starts):
            proc, port, took = start(binary, data, config, env)
            times.append(took)
            stop(proc)
        proc, port, _ = start(binary, data, config, env)
        conn = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"Authorization": f"Bearer {k['AccessKeyId']}:{k['SecretAccessKey']}"}
        lat = []
        for i in range(requests + 50):
            t0 = time.perf_counter()
            conn.request("GET", "/v1/models", headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                sys.exit(f"{name}: /v1/models answered {r.status}")
            if i >= 50:  # warm-up
                lat.append(time.perf_counter() - t0)
        stop(proc)
        lat.sort()
        return {
            "start_ms": statistics.median(times) * 1000,
            "req_p50_us": lat[len(lat) // 2] * 1e6,
            "req_p99_us": lat[int(len(lat) * 0.99)] * 1e6,
        }
    finally:
        for c in cleanup:
            c()
        shutil.rmtree(tmp, ignore_errors=True)


def bench_reseal(binary, secrets):
    tmp = tempfile.mkdtemp(prefix="bench-reseal-")
    env, _, _ = provider_setup("file", tmp)
    data = os.path.join(tmp, "data")
    try:
        proc, port, _ = start(binary, data, None, env)
        iam = boto3.client("iam", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                           aws_access_key_id=ROOT[0], aws_secret_access_key=ROOT[1])
        for i in range(secrets // 2):
            iam.create_user(UserName=f"u{i}")
            iam.create_access_key(UserName=f"u{i}")
            iam.create_access_key(UserName=f"u{i}")
        out = {}
        for batch in (100, 500):
            r = subprocess.run([binary, "admin", "rotate-master-key", "--reseal", "--batch-size",
                                str(batch), "--data-dir", data], env=env, capture_output=True,
                               text=True, check=True)
            m = re.search(r"reseal done: (\d+) secret\(s\) moved in ([0-9.]+) s", r.stdout)
            out[batch] = int(m.group(1)) / float(m.group(2))
        stop(proc)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/gatehouse")
    ap.add_argument("--starts", type=int, default=7)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--secrets", type=int, default=2000)
    a = ap.parse_args()
    print(f"{'provider':<8} {'start-up (median)':>18} {'request p50':>12} {'request p99':>12}")
    for name in ("file", "pkcs11", "kms"):
        r = bench_provider(a.bin, name, a.starts, a.requests)
        print(f"{name:<8} {r['start_ms']:>15.1f} ms {r['req_p50_us']:>9.0f} µs {r['req_p99_us']:>9.0f} µs",
              flush=True)
    for batch, rate in bench_reseal(a.bin, a.secrets).items():
        print(f"--reseal, {a.secrets} secrets (SQLite, batch {batch}): {rate:.0f} secrets/s")


if __name__ == "__main__":
    main()
