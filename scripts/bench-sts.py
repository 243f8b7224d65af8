#!/usr/bin/env python3
"""AssumeRole requests per second against a real `gatehouse serve`, on SQLite or PostgreSQL.

One SigV4-signed AssumeRole request is made with botocore and replayed by `wrk` (SigV4
signatures stay valid for 15 minutes and Gatehouse, like AWS, does not refuse a replay), so
the load generator spends no CPU on signing and the figure is the server's: authenticate
(SigV4 + access-key lookup), compile/cache the caller's policies, evaluate the trust and
identity policies, mint and sign the session token, append the audit record. A second
scenario replays GetCallerIdentity signed with the resulting temporary credentials (session
token verified on every request, no store lookup except the audit append).

Usage:
  python3 scripts/bench-sts.py --binary target/release/gatehouse --backend sqlite
  python3 scripts/bench-sts.py --binary target/release/gatehouse --backend postgres \
      --database-url postgres://gatehouse:gatehouse@127.0.0.1:5432/gatehouse_test
Bounded in time (--duration seconds per scenario), loopback only.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials

ROOT_KEY_ID = "AKIAGATEHOUSEBENCH01"
ROOT_SECRET = "bench-root-secret-000000000000000000000"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database(base_url):
    name = "bench_" + uuid.uuid4().hex[:10]
    subprocess.run(["psql", base_url, "-qAtc", f"create database {name}"], check=True, capture_output=True)
    return urllib.parse.urlsplit(base_url)._replace(path="/" + name).geturl()


def signed(endpoint, body, key, secret, token=None):
    creds = botocore.credentials.Credentials(key, secret, token)
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=endpoint + "/", data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    botocore.auth.SigV4Auth(creds, "sts", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def wrk(endpoint, body, headers, duration, connections, workdir):
    lua = os.path.join(workdir, f"req-{uuid.uuid4().hex[:6]}.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        for k, v in headers.items():
            if k.lower() in ("host", "content-length"):
                continue
            f.write(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n")
        # Show the first failure, if any (the run is only valid without failures).
        f.write("local shown = false\n")
        f.write("response = function(status, headers, body)\n")
        f.write("  if status ~= 200 and not shown then shown = true; io.stderr:write(body .. \"\\n\") end\n")
        f.write("end\n")
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--latency", "-s", lua, endpoint + "/"],
        capture_output=True, text=True, timeout=duration + 60,
    )
    if out.stderr.strip():
        print(out.stderr.strip()[:500], file=sys.stderr)
    out = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    return {"rps": rps, "p50": p50, "p99": p99, "errors": int(non2xx.group(1)) if non2xx else 0}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/gatehouse")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--database-url", default=os.environ.get("GATEHOUSE_TEST_POSTGRES_URL"))
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()

    data = tempfile.mkdtemp(prefix="gh-bench-")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    cmd = [args.binary, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}"]
    if args.backend == "postgres":
        if not args.database_url:
            sys.exit("--database-url (or GATEHOUSE_TEST_POSTGRES_URL) is required for postgres")
        cmd += ["--database-url", fresh_database(args.database_url)]
    env = dict(os.environ, GATEHOUSE_ROOT_ACCESS_KEY_ID=ROOT_KEY_ID,
               GATEHOUSE_ROOT_SECRET_ACCESS_KEY=ROOT_SECRET, GATEHOUSE_LOG="warn")
    log = open(os.path.join(data, "server.log"), "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        iam = boto3.client("iam", endpoint_url=endpoint, aws_access_key_id=ROOT_KEY_ID,
                           aws_secret_access_key=ROOT_SECRET, region_name="us-east-1")
        user = iam.create_user(UserName="bench")["User"]
        account = user["Arn"].split(":")[4]
        key = iam.create_access_key(UserName="bench")["AccessKey"]
        iam.put_user_policy(UserName="bench", PolicyName="assume", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": "*"}]}))
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:gatehouse:iam::{account}:root"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]}
        role = iam.create_role(RoleName="bench-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        body = urllib.parse.urlencode({
            "Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": role["Arn"],
            "RoleSessionName": "bench", "Tags.member.1.Key": "team", "Tags.member.1.Value": "search",
        })
        headers = signed(endpoint, body, key["AccessKeyId"], key["SecretAccessKey"])
        # Warm up and check the request is answered with credentials.
        sts = boto3.client("sts", endpoint_url=endpoint, aws_access_key_id=key["AccessKeyId"],
                           aws_secret_access_key=key["SecretAccessKey"], region_name="us-east-1")
        creds = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="bench")["Credentials"]
        assume = wrk(endpoint, body, headers, args.duration, args.connections, data)
        gci_body = "Action=GetCallerIdentity&Version=2011-06-15"
        gci_headers = signed(endpoint, gci_body, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
        session = wrk(endpoint, gci_body, gci_headers, args.duration, args.connections, data)
        print(json.dumps({"backend": args.backend, "connections": args.connections, "duration_s": args.duration,
                          "assume_role": assume, "get_caller_identity_with_session": session}))
        if assume["errors"] or session["errors"]:
            sys.exit("some requests failed: the figures are not valid")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
