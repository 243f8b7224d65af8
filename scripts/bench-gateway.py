#!/usr/bin/env python3
"""Load test: the same chat-completion request, driven by wrk, sent (1) straight to the
upstream test double, (2) through Gatehouse (Bearer access key → policy decision → audit →
proxy), (3) through LiteLLM proxy (master key, model list from its config), all on loopback
against one upstream. Reports latency percentiles at one connection (added latency =
through − direct) and the highest request rate with no errors over a few concurrency levels.

Usage: python3 scripts/bench-gateway.py [--duration 8] [--litellm /path/to/venv/bin/litellm]
                                      [--upstream double|nginx]
Needs: a release build (cargo build --release -p gatehouse-cli), wrk, aiohttp, boto3; for
`--upstream nginx` Debian's nginx, which answers with a canned completion so that the
upstream's own latency tail (a Python process's) does not hide the proxy's p99.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import boto3
import botocore.config

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DOUBLE = os.path.join(REPO, "crates", "server", "tests", "e2e", "upstream_double.py")
ROOT_ID, ROOT_SECRET = "AKIABENCHROOT0000001", "bench-root-secret-000000000000000000000"
BODY = json.dumps({"model": "bench-model", "max_tokens": 16,
                   "messages": [{"role": "user", "content": "hello benchmark"}]})


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


def wrk(url, auth, conns, duration, tmp):
    script = os.path.join(tmp, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(BODY)}\n")
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


CANNED = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench-model",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "echo: hello benchmark"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--levels", default="1,8,32,64")
    ap.add_argument("--litellm", default=shutil.which("litellm"))
    ap.add_argument("--gatehouse", default=os.path.join(REPO, "target", "release", "gatehouse"))
    ap.add_argument("--upstream", choices=["double", "nginx"], default="double")
    ap.add_argument("--budget", action="store_true",
                    help="give the benchmark user a principal budget and a group budget (limits far above "
                         "the load, so nothing is refused) to measure what budget enforcement adds")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gh-bench-")
    procs = []
    try:
        up = free_port()
        if args.upstream == "nginx":
            procs.append(start_nginx(up, tmp))
            wait_port(up, procs[-1], "nginx")
        else:
            procs.append(subprocess.Popen([sys.executable, DOUBLE, str(up)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            wait_port(up, procs[-1], "upstream double")
        gh = free_port()
        cfg = os.path.join(tmp, "gatehouse.toml")
        with open(cfg, "w") as f:
            f.write(f'[[gateway.deployments]]\nmodel = "bench-model"\n'
                    f'base_url = "http://127.0.0.1:{up}/v1"\napi_key_env = "UPSTREAM_KEY"\n')
            if args.budget:
                # Every request is checked and charged against both budgets (tokens too), and the
                # counts are shared through the store every 250 ms, as with several nodes.
                f.write('[[gateway.budgets]]\nprincipal = "arn:gatehouse:iam::*:user/bench"\n'
                        'requests_per_minute = 1000000000\ntokens_per_minute = 1000000000000\n'
                        'tokens_per_day = 1000000000000\n'
                        '[[gateway.budgets]]\ngroup = "arn:gatehouse:iam::*:group/bench-team"\n'
                        'requests_per_minute = 1000000000\ntokens_per_day = 1000000000000\n')
        env = dict(os.environ, GATEHOUSE_ROOT_ACCESS_KEY_ID=ROOT_ID, GATEHOUSE_ROOT_SECRET_ACCESS_KEY=ROOT_SECRET,
                   GATEHOUSE_LOG="warn", UPSTREAM_KEY="sk-upstream")
        procs.append(subprocess.Popen([args.gatehouse, "serve", "--data-dir", os.path.join(tmp, "data"),
                                       "--listen", f"127.0.0.1:{gh}", "--config", cfg], env=env,
                                      stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "gh.log"), "w")))
        wait_port(gh, procs[-1], "gatehouse")
        iam = boto3.client("iam", endpoint_url=f"http://127.0.0.1:{gh}", aws_access_key_id=ROOT_ID,
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
        iam.create_group(GroupName="bench-team")
        iam.add_user_to_group(GroupName="bench-team", UserName="bench")
        k = iam.create_access_key(UserName="bench")["AccessKey"]
        targets = [("direct", f"http://127.0.0.1:{up}/v1/chat/completions", "sk-upstream"),
                   ("gatehouse", f"http://127.0.0.1:{gh}/v1/chat/completions",
                    f"{k['AccessKeyId']}:{k['SecretAccessKey']}")]
        if args.litellm:
            ll = free_port()
            llcfg = os.path.join(tmp, "litellm.yaml")
            with open(llcfg, "w") as f:
                f.write(f"model_list:\n  - model_name: bench-model\n    litellm_params:\n"
                        f"      model: openai/bench-model\n      api_base: http://127.0.0.1:{up}/v1\n"
                        f"      api_key: sk-upstream\ngeneral_settings:\n  master_key: sk-bench-master\n")
            llenv = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
            procs.append(subprocess.Popen([args.litellm, "--config", llcfg, "--port", str(ll), "--host", "127.0.0.1",
                                           "--num_workers", "1"], env=llenv, stdout=subprocess.DEVNULL,
                                          stderr=open(os.path.join(tmp, "litellm.log"), "w")))
            wait_port(ll, procs[-1], "litellm", timeout=180)
            targets.append(("litellm", f"http://127.0.0.1:{ll}/v1/chat/completions", "sk-bench-master"))
        # Warm up every path (connection pools, caches, LiteLLM's first-request work).
        for name, url, auth in targets:
            wrk(url, auth, 1, 2, tmp)
        results = {}
        for name, url, auth in targets:
            results[name] = {c: wrk(url, auth, c, args.duration, tmp) for c in map(int, args.levels.split(","))}
        print(json.dumps(results, indent=1))
        d1 = results["direct"][1]
        print("\n| path | p50 ms (c=1) | p99 ms (c=1) | added p50 µs | added p99 µs | max req/s with 0 errors (conns) |")
        print("|---|---|---|---|---|---|")
        for name, by_c in results.items():
            r1 = by_c[1]
            ok = [(r["rps"], c) for c, r in by_c.items() if r["errors"] == 0 and r["requests"] > 0]
            best = max(ok) if ok else (0, "-")
            add50 = "" if name == "direct" else f"{(r1['p50'] - d1['p50']) * 1000:.0f}"
            add99 = "" if name == "direct" else f"{(r1['p99'] - d1['p99']) * 1000:.0f}"
            print(f"| {name} | {r1['p50']:.3f} | {r1['p99']:.3f} | {add50} | {add99} | {best[0]:.0f} ({best[1]}) |")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
