#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/seeds/TARGET/) from real inputs:

- query, sigv4: requests serialized and signed by botocore (the AWS SDK for Python) for
  IAM, STS and `ai` actions, header-signed and presigned, at the targets' fixed clock
  (2026-01-15T12:00:00Z) with the targets' key (AKIDEXAMPLE), so that seeds verify;
- openai_request: bodies the official `openai` client sends (captured with an httpx mock
  transport), plus the token-cap bypass bodies of issue 10;
- web_identity: JWTs with the claims GitHub Actions, Kubernetes and Google put in their
  OIDC tokens, signed with the test keys in keys/ (RS256, ES256, EdDSA), and a few the
  server must refuse (alg none, HS256);
- session_token: session tokens and authorization messages from a real `gatehouse serve`
  (AssumeRole with tags and a session policy, GetSessionToken), and their claims;
- config: the README's config example and the e2e and benchmark configs.

Usage: python3 fuzz/seeds/make_seeds.py   (needs target/debug/gatehouse for session_token)
"""

import base64
import datetime
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import boto3
import httpx
import openai
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
NOW = datetime.datetime(2026, 1, 15, 12, 0, 0)
AKID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
HOST = "gatehouse.example.test:8470"


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --------------------------------------------------------------- query and SigV4 (botocore)

class _Frozen(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return NOW

    @classmethod
    def now(cls, tz=None):
        return NOW.replace(tzinfo=tz) if tz else NOW


# Stands in for the datetime module inside botocore.auth: signing happens at NOW.
FixedClock = types.SimpleNamespace(datetime=_Frozen, timezone=datetime.timezone, timedelta=datetime.timedelta)


def captured_requests():
    """(service, operation, AWSRequest) for real operations, as boto3 builds them."""
    seen = []

    def capture(request, **_):
        seen.append(request)
        return botocore.awsrequest.AWSResponse(request.url, 400, {}, None)

    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Invoke", "Effect": "Allow", "Action": "ai:InvokeModel",
         "Resource": "arn:gatehouse:ai:local:111122223333:model/${aws:PrincipalTag/team}-*",
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]})
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": "arn:gatehouse:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
         "Action": "sts:AssumeRoleWithWebIdentity",
         "Condition": {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/*:ref:refs/heads/main"}}}]})
    calls = {
        "iam": [
            ("create_user", dict(UserName="alice", Path="/eng/", Tags=[{"Key": "team", "Value": "search"}])),
            ("put_user_policy", dict(UserName="alice", PolicyName="invoke", PolicyDocument=policy)),
            ("create_role", dict(RoleName="ci", AssumeRolePolicyDocument=trust, MaxSessionDuration=3600,
                                 PermissionsBoundary="arn:gatehouse:iam::111122223333:policy/boundary",
                                 Tags=[{"Key": "env", "Value": "prod"}, {"Key": "owner", "Value": "ml ops"}])),
            ("attach_role_policy", dict(RoleName="ci", PolicyArn="arn:gatehouse:iam::111122223333:policy/AdministratorAccess")),
            ("list_users", dict(PathPrefix="/eng/", MaxItems=100, Marker="abc")),
            ("create_access_key", dict(UserName="alice")),
            ("untag_role", dict(RoleName="ci", TagKeys=["env", "owner"])),
            ("simulate_principal_policy", dict(PolicySourceArn="arn:gatehouse:iam::111122223333:user/alice",
                                               ActionNames=["ai:InvokeModel", "iam:CreateUser"],
                                               ContextEntries=[{"ContextKeyName": "aws:SourceIp", "ContextKeyValues": ["10.1.2.3"], "ContextKeyType": "ip"}])),
            ("create_open_id_connect_provider", dict(Url="https://token.actions.githubusercontent.com",
                                                     ClientIDList=["sts.amazonaws.com"], ThumbprintList=["6938fd4d98bab03faadb97b34396831e3780aea1"])),
        ],
        "sts": [
            ("assume_role", dict(RoleArn="arn:gatehouse:iam::111122223333:role/search-app", RoleSessionName="me",
                                 Policy=policy, DurationSeconds=900, ExternalId="ext-1",
                                 Tags=[{"Key": "team", "Value": "search"}], TransitiveTagKeys=["team"],
                                 PolicyArns=[{"arn": "arn:gatehouse:iam::111122223333:policy/readonly"}],
                                 SourceIdentity="alice@example.com")),
            ("get_session_token", dict(DurationSeconds=3600, SerialNumber="arn:gatehouse:iam::111122223333:mfa/alice", TokenCode="123456")),
            ("get_caller_identity", {}),
            ("decode_authorization_message", dict(EncodedMessage="ghm1.k1.AAAA")),
        ],
    }
    for service, ops in calls.items():
        c = boto3.client(service, endpoint_url=f"http://{HOST}", region_name="us-east-1",
                         aws_access_key_id=AKID, aws_secret_access_key=SECRET)
        c.meta.events.register("before-send", capture)
        for op, kw in ops:
            try:
                getattr(c, op)(**kw)
            except Exception:
                pass
            yield service, op, seen.pop()


def sign(request, service, presign=False, token=None):
    creds = botocore.credentials.Credentials(AKID, SECRET, token)
    real = botocore.auth.datetime
    botocore.auth.datetime = FixedClock
    try:
        if presign:
            botocore.auth.SigV4QueryAuth(creds, service, "us-east-1", expires=300).add_auth(request)
        else:
            botocore.auth.SigV4Auth(creds, service, "us-east-1").add_auth(request)
    finally:
        botocore.auth.datetime = real


def wire(request):
    """METHOD \\0 PATH \\0 QUERY \\0 HEADERS \\0 BODY, as the server receives it."""
    p = request.prepare()
    url = httpx.URL(p.url)
    headers = dict(p.headers)
    headers.setdefault("Host", HOST)
    body = p.body or b""
    if isinstance(body, str):
        body = body.encode()
    lines = "\n".join(f"{k}: {v}" for k, v in headers.items())
    q = url.query.decode() if isinstance(url.query, bytes) else url.query
    return b"\0".join([p.method.encode(), url.raw_path.split(b"?")[0], q.encode(), lines.encode(), body])


def query_and_sigv4():
    for service, op, req in captured_requests():
        body = req.body if isinstance(req.body, bytes) else (req.body or "").encode()
        write("query", f"{service}-{op}", b"\0" + body)
        fresh = botocore.awsrequest.AWSRequest(method="POST", url=f"http://{HOST}/", data=body,
                                               headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        sign(fresh, service)
        write("sigv4", f"{service}-{op}-header", wire(fresh))
        get = botocore.awsrequest.AWSRequest(method="GET", url=f"http://{HOST}/?{body.decode()}")
        sign(get, service, presign=True)
        w = wire(get)
        write("sigv4", f"{service}-{op}-presigned", w)
        write("query", f"{service}-{op}-presigned", w.split(b"\0")[2] + b"\0")
    # Temporary credentials (X-Amz-Security-Token), and a gateway call signed for `ai`.
    r = botocore.awsrequest.AWSRequest(method="POST", url=f"http://{HOST}/", data=b"Action=GetCallerIdentity&Version=2011-06-15",
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    sign(r, "sts", token="ghs1.k1.eyJjIjp7fX0.AAAA")
    write("sigv4", "sts-session-token", wire(r))
    body = json.dumps({"model": "llama-3-8b", "messages": [{"role": "user", "content": "hi"}]}).encode()
    r = botocore.awsrequest.AWSRequest(method="POST", url=f"http://{HOST}/v1/chat/completions", data=body,
                                       headers={"Content-Type": "application/json"})
    sign(r, "ai")
    write("sigv4", "ai-chat-completions", wire(r))


# ------------------------------------------------------------------------- OpenAI bodies

def openai_bodies():
    seen = []

    def handler(request):
        seen.append((request.url.path, request.content))
        return httpx.Response(400, json={"error": {"message": "seed", "type": "x", "param": None, "code": None}})

    c = openai.OpenAI(api_key="AKIA:secret", base_url="http://gatehouse.test/v1", max_retries=0,
                      http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    msgs = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "What is in this image?"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                              "required": ["city"]}}}]
    attempts = [
        lambda: c.chat.completions.create(model="llama-3-8b", messages=[{"role": "user", "content": "hello"}]),
        lambda: c.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_completion_tokens=64, temperature=0.2,
                                          n=2, stop=["\n\n"], user="alice", seed=7, logprobs=True, top_logprobs=2),
        lambda: c.chat.completions.create(model="llama-3-8b", messages=[{"role": "user", "content": "weather in Paris?"},
                                          {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                                           "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                                          {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}],
                                          tools=tools, tool_choice="auto", max_tokens=256),
        lambda: c.chat.completions.create(model="llama-3-8b", messages=[{"role": "user", "content": "stream"}], stream=True,
                                          stream_options={"include_usage": True}),
        lambda: c.chat.completions.create(model="llama-3-8b", messages=[{"role": "user", "content": "json"}],
                                          response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}),
        lambda: c.completions.create(model="llama-3-8b", prompt=["say hi", "say bye"], max_tokens=16, echo=True, best_of=2),
        lambda: c.embeddings.create(model="llama-3-8b", input=["a", "b"], encoding_format="float", dimensions=8),
        lambda: c.embeddings.create(model="llama-3-8b", input=[[1, 2, 3]]),
    ]
    for a in attempts:
        try:
            r = a()
            if hasattr(r, "__iter__"):
                list(r)
        except Exception:
            pass
    selector = {"/v1/chat/completions": 0, "/v1/completions": 1, "/v1/embeddings": 2}
    for i, (path, body) in enumerate(seen):
        write("openai_request", f"client-{i:02d}", bytes([selector[path]]) + body)
    # Issue 10's token-cap bypasses, as an attacker sends them.
    write("openai_request", "cap-null-then-max", b"\0" + json.dumps(
        {"model": "llama-3-8b", "max_completion_tokens": None, "max_tokens": 100000, "messages": [{"role": "user", "content": "x"}]}).encode())
    write("openai_request", "cap-both-completions", b"\1" + json.dumps(
        {"model": "llama-3-8b", "max_completion_tokens": 10, "max_tokens": 100000, "prompt": "x"}).encode())
    write("openai_request", "duplicate-keys", b"\0" + b'{"model":"a","max_tokens":1,"max_tokens":99999,"messages":[]}')


# ------------------------------------------------------------------------------ JWTs

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def key(name):
    with open(os.path.join(HERE, "keys", name), "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def jwt(header, claims, alg):
    signing_input = (b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
    if alg == "RS256":
        sig = key("rsa.pem").sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = decode_dss_signature(key("ec.pem").sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "EdDSA":
        sig = key("ed25519.pem").sign(signing_input)
    else:
        sig = b""
    return signing_input.decode() + "." + b64u(sig)


def web_identity():
    iat, exp = int(NOW.timestamp()), 4102444800  # exp: 2100-01-01, so seeds stay valid
    github = {"jti": "example-id", "sub": "repo:acme/models:ref:refs/heads/main", "aud": "sts.amazonaws.com",
              "ref": "refs/heads/main", "sha": "example-sha", "repository": "acme/models", "repository_owner": "acme",
              "run_id": "1", "event_name": "push", "ref_type": "branch", "workflow": "deploy",
              "job_workflow_ref": "acme/models/.github/workflows/deploy.yml@refs/heads/main",
              "iss": "https://token.actions.githubusercontent.com", "nbf": iat - 5, "exp": exp, "iat": iat}
    k8s = {"aud": ["gatehouse"], "exp": exp, "iat": iat, "nbf": iat, "iss": "https://oidc.example.test/tenant-1",
           "kubernetes.io": {"namespace": "ml", "serviceaccount": {"name": "trainer", "uid": "u-1"}},
           "sub": "system:serviceaccount:ml:trainer"}
    google = {"iss": "https://oidc.example.test/tenant-1", "azp": "gatehouse", "aud": "gatehouse",
              "sub": "110169484474386276334", "email": "alice@example.com", "email_verified": True,
              "amr": ["pwd", "mfa"], "iat": iat, "exp": exp}
    for name, claims in [("github", github), ("kubernetes", k8s), ("google", google)]:
        for alg, kid in [("RS256", "rsa-1"), ("ES256", "ec-1"), ("EdDSA", "ed-1")]:
            write("web_identity", f"{name}-{alg}", b"\0" + jwt({"alg": alg, "kid": kid, "typ": "JWT"}, claims, alg).encode())
        write("web_identity", f"{name}-claims", b"\1" + json.dumps(claims).encode())
    write("web_identity", "no-kid-EdDSA", b"\0" + jwt({"alg": "EdDSA"}, github, "EdDSA").encode())
    write("web_identity", "alg-none", b"\0" + jwt({"alg": "none"}, github, "none").encode())
    hs = (b64u(b'{"alg":"HS256","kid":"rsa-1"}') + "." + b64u(json.dumps(github).encode()) + ".")
    write("web_identity", "alg-hs256", b"\0" + hs.encode())
    write("web_identity", "shadow-sub-claims", b"\1" + json.dumps(dict(github, SUB="repo:acme/other:ref:refs/heads/main")).encode())
    write("web_identity", "expired-claims", b"\1" + json.dumps(dict(github, exp=iat - 3600)).encode())


# ------------------------------------------------------- session tokens (a real server)

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_tokens():
    binary = os.path.join(REPO, "target", "debug", "gatehouse")
    if not os.path.exists(binary):
        print("skipping session_token seeds: build target/debug/gatehouse first", file=sys.stderr)
        return
    tmp = tempfile.mkdtemp(prefix="gh-seeds-")
    port = free_port()
    env = dict(os.environ, GATEHOUSE_ROOT_ACCESS_KEY_ID="AKIASEEDROOT00000001",
               GATEHOUSE_ROOT_SECRET_ACCESS_KEY="seed-root-secret-00000000000000000000", GATEHOUSE_LOG="warn")
    proc = subprocess.Popen([binary, "serve", "--data-dir", tmp, "--listen", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        kw = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id=env["GATEHOUSE_ROOT_ACCESS_KEY_ID"],
                  aws_secret_access_key=env["GATEHOUSE_ROOT_SECRET_ACCESS_KEY"])
        iam, sts = boto3.client("iam", **kw), boto3.client("sts", **kw)
        account = sts.get_caller_identity()["Account"]
        iam.create_role(RoleName="search-app", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:gatehouse:iam::{account}:root"},
             "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]}]}))
        iam.create_user(UserName="alice")
        iam.put_user_policy(UserName="alice", PolicyName="sts", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:*", "Resource": "*"}]}))
        k = iam.create_access_key(UserName="alice")["AccessKey"]
        sts = boto3.client("sts", endpoint_url=kw["endpoint_url"], region_name="us-east-1",
                           aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"])
        tokens = [
            sts.assume_role(RoleArn=f"arn:gatehouse:iam::{account}:role/search-app", RoleSessionName="svc",
                            Tags=[{"Key": "team", "Value": "search"}, {"Key": "gatehouse:rpm", "Value": "60"}],
                            TransitiveTagKeys=["team"], SourceIdentity="alice@example.com",
                            Policy=json.dumps({"Version": "2012-10-17", "Statement": [
                                {"Effect": "Allow", "Action": "ai:InvokeModel", "Resource": "*"}]}))["Credentials"]["SessionToken"],
            sts.assume_role(RoleArn=f"arn:gatehouse:iam::{account}:role/search-app",
                            RoleSessionName="plain")["Credentials"]["SessionToken"],
            sts.get_session_token()["Credentials"]["SessionToken"],
        ]
        for i, t in enumerate(tokens):
            write("session_token", f"token-{i}", b"\0" + t.encode())
            claims = json.loads(base64.urlsafe_b64decode(t.split(".")[2] + "==="))["c"]
            write("session_token", f"claims-{i}", b"\1" + json.dumps(claims).encode())
        try:
            iam.delete_user(UserName="missing-user")
        except iam.exceptions.NoSuchEntityException:
            pass
        denied = boto3.client("iam", endpoint_url=kw["endpoint_url"], region_name="us-east-1",
                              aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"])
        try:
            denied.create_user(UserName="bob")
        except Exception as e:
            msg = str(e).rsplit("Encoded authorization failure message: ", 1)[-1].strip()
            write("session_token", "authorization-message", b"\0" + msg.encode())
        write("session_token", "message-plaintext", b"\2" + json.dumps(
            {"allowed": False, "explicitDeny": False, "matchedStatements": {"items": []},
             "context": {"principal": {"arn": f"arn:gatehouse:iam::{account}:user/alice"}, "action": "iam:CreateUser"}}).encode())
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------ config

def configs():
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    blocks = [b.split("```", 1)[0] for b in readme.split("```toml\n")[1:]]
    for i, b in enumerate(blocks):
        write("config", f"readme-{i}", b)
    sys.path.insert(0, os.path.join(REPO, "crates", "server", "tests", "e2e"))
    import test_gateway  # noqa: E402  (only for write_config, no server is started)

    class Up:
        base = "http://127.0.0.1:9/v1"
    path = os.path.join(tempfile.mkdtemp(), "gatehouse.toml")
    test_gateway.write_config(path, Up(), 8471, 9)
    with open(path) as f:
        e2e = f.read()
    write("config", "e2e-gateway", e2e)
    write("config", "e2e-gateway-forwarded", 'forwarded_for = "203.0.113.9, 127.0.0.2"\n' + e2e)
    write("config", "trusted-v6", 'forwarded_for = "2001:db8::1, fd00::2"\n[gateway]\ntrusted_proxies = ["fd00::/8", "10.0.0.0/8"]\n')


if __name__ == "__main__":
    for d in ["query", "sigv4", "openai_request", "web_identity", "session_token", "config"]:
        shutil.rmtree(os.path.join(HERE, d), ignore_errors=True)
    query_and_sigv4()
    openai_bodies()
    web_identity()
    session_tokens()
    configs()
    for d in sorted(os.listdir(HERE)):
        if os.path.isdir(os.path.join(HERE, d)) and d != "keys":
            print(d, len(os.listdir(os.path.join(HERE, d))))
