"""The loopback rig the gateway benchmarks stand on (bench-gateway.py, soak-gateway.py):
free ports, a canned upstream (nginx answering one fixed chat completion, or the Python
test double), a release `gatehouse serve` with that upstream as a deployment, the benchmark
user with an access key and an invoke policy, and wrk driving one POST.

Import it from a script in this directory (`sys.path[0]` is the script's own folder).
"""

import json
import os
import re
import socket
import subprocess
import sys
import time

import boto3
import botocore.config

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DOUBLE = os.path.join(REPO, "crates", "server", "tests", "e2e", "upstream_double.py")
ROOT_ID, ROOT_SECRET = "AKIABENCHROOT0000001", "bench-root-secret-000000000000000000000"
PROVIDER_KEY = "sk-upstream-bench-provider-key"
MODEL = "bench-model"
BODY = json.dumps({"model": MODEL, "max_tokens": 16,
                   "messages": [{"role": "user", "content": "hello benchmark"}]})
CANNED = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": MODEL,
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "echo: hello benchmark"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


def start_nginx(port, tmp):
    """nginx in the foreground answering every POST with CANNED (OpenAI's wire shape)."""
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{ default_type application/json; return 200 '{CANNED}'; }}
  }}
}}
""")
    return subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def start_upstream(kind, tmp, procs):
    """Starts the upstream (`nginx` or `double`), appends it to `procs`; returns its port."""
    port = free_port()
    if kind == "nginx":
        procs.append(start_nginx(port, tmp))
    else:
        procs.append(subprocess.Popen([sys.executable, DOUBLE, str(port)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    wait_port(port, procs[-1], kind)
    return port


def start_gatehouse(binary, tmp, upstream_port, procs, extra_config=""):
    """A `gatehouse serve` on SQLite in `tmp` with the bench deployment; returns its port."""
    port = free_port()
    cfg = os.path.join(tmp, "gatehouse.toml")
    with open(cfg, "w") as f:
        f.write(f'[[gateway.deployments]]\nmodel = "{MODEL}"\n'
                f'base_url = "http://127.0.0.1:{upstream_port}/v1"\napi_key_env = "UPSTREAM_KEY"\n')
        f.write(extra_config)
    env = dict(os.environ, GATEHOUSE_ROOT_ACCESS_KEY_ID=ROOT_ID, GATEHOUSE_ROOT_SECRET_ACCESS_KEY=ROOT_SECRET,
               GATEHOUSE_LOG="warn", UPSTREAM_KEY=PROVIDER_KEY)
    procs.append(subprocess.Popen([binary, "serve", "--data-dir", os.path.join(tmp, "data"),
                                   "--listen", f"127.0.0.1:{port}", "--config", cfg], env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "gh.log"), "w")))
    wait_port(port, procs[-1], "gatehouse")
    return port


def bench_user(port, group=None):
    """Creates the benchmark user (tag team=search, invoke policy with an IP condition and a
    token-cap deny, optionally in `group`); returns its `ACCESS_KEY_ID:SECRET` API key."""
    iam = boto3.client("iam", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=ROOT_ID,
                       aws_secret_access_key=ROOT_SECRET, region_name="us-east-1",
                       config=botocore.config.Config(retries={"max_attempts": 1}))
    iam.create_user(UserName="bench", Tags=[{"Key": "team", "Value": "search"}])
    iam.put_user_policy(UserName="bench", PolicyName="invoke", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ai:InvokeModel", "Resource": "arn:gatehouse:ai:*:*:model/bench-*",
             "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"},
                           "StringEquals": {"aws:PrincipalTag/team": "search"}}},
            {"Effect": "Deny", "Action": "ai:Invoke*", "Resource": "*",
             "Condition": {"NumericGreaterThan": {"ai:MaxTokens": "4096"}}}]}))
    if group:
        iam.create_group(GroupName=group)
        iam.add_user_to_group(GroupName=group, UserName="bench")
    k = iam.create_access_key(UserName="bench")["AccessKey"]
    return f"{k['AccessKeyId']}:{k['SecretAccessKey']}"


def stop_all(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def wrk(url, auth, conns, duration, tmp, body=BODY):
    """One wrk run of POST `body`: p50/p99 (ms), requests/s, request count, errors
    (non-2xx answers plus socket errors)."""
    script = os.path.join(tmp, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        f.write(f'wrk.headers["Authorization"] = "Bearer {auth}"\n')
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, timeout=duration + 60).stdout

    def ms(label):
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        v = float(m.group(1))
        return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {"p50": ms("50%"), "p99": ms("99%"), "rps": rps, "requests": total, "errors": errors}
