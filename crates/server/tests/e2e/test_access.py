"""Just-in-time access end to end (issue 15), with boto3 (IAM, STS, MFA from pyotp), the
`openai` package against a model server double, and signed Query calls of the `gatehouse:`
actions: a deployer without standing rights is
refused ai:UpdateDeployment, requests, an approver approves, the deployer activates with an
MFA session and succeeds; the server's clock moves past the window (libfaketime reading
a timestamp file the test rewrites) and the very same session is refused. Self-approval,
non-approvers, over-long durations, unknown roles, replayed approvals and expired pending
requests are refused with AWS-shaped errors and change nothing. A revoke on one node of a
PostgreSQL pair applies on the other within a second, also to a role session already open
under a role grant; the webhook receives signed events."""

import datetime
import hashlib
import hmac
import http.server
import json
import os
import threading
import time
import urllib.parse

import openai
import pyotp
import pytest

from conftest import ROOT_KEY_ID, ROOT_SECRET, Signer, backends, free_port, raw_call
from test_gateway import Upstream

ACCOUNT = None  # the server's default account, read by setup_world
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
needs_faketime = pytest.mark.skipif(not os.path.exists(FAKETIME_LIB),
                                    reason="libfaketime not installed (Debian package faketime)")


def arn(kind, name):
    return f"arn:gatehouse:iam::{ACCOUNT}:{kind}/{name}"


class Clock:
    """The server's clock offset, in a file libfaketime reads at every call."""

    def __init__(self, path):
        self.path = path
        self.offset = datetime.timedelta(0)
        self.set(0)

    def set(self, seconds):
        self.offset = datetime.timedelta(seconds=seconds)
        with open(self.path, "w") as f:
            f.write(f"+{int(seconds)}s\n")

    def env(self):
        return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": self.path,
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_RESET": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1"}

    def now(self):
        return datetime.datetime.now(datetime.timezone.utc) + self.offset


def call(server, action, params, key, clock=None, service="iam", version="2010-05-08"):
    """A signed Query call (the key: (id, secret) or (id, secret, token)); signed at the
    server's time."""
    body = urllib.parse.urlencode({"Action": action, "Version": version, **params})
    when = clock.now().replace(tzinfo=None) if clock else None
    token = key[2] if len(key) > 2 else None
    return raw_call(server, body, signer=Signer(key[0], key[1], service, when=when, token=token))


def setup_world(server, model_base_url=None):
    """Users deployer (eligible for the managed policy `deploy`, MFA to activate), alice
    (approver), mallory (may call the approve action, but is no approver); a deployment
    `jit-model` of the model server at `model_base_url` (none listening by default)."""
    global ACCOUNT
    ACCOUNT = server.client("sts").get_caller_identity()["Account"]
    iam = server.client("iam")
    keys = {}
    base = ["sts:GetSessionToken", "gatehouse:CreateAccessRequest", "gatehouse:ListAccessRequests",
            "gatehouse:ActivateAccessRequest", "gatehouse:RevokeAccessRequest",
            "gatehouse:ApproveAccessRequest", "gatehouse:DenyAccessRequest"]
    for name in ("deployer", "alice", "mallory"):
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="jit", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": base, "Resource": "*"}]}))
        k = iam.create_access_key(UserName=name)["AccessKey"]
        keys[name] = (k["AccessKeyId"], k["SecretAccessKey"])
    iam.create_policy(PolicyName="deploy", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ai:UpdateDeployment", "Resource": "*"}]}))
    d = iam.create_virtual_mfa_device(VirtualMFADeviceName="deployer-phone")["VirtualMFADevice"]
    totp = pyotp.TOTP(d["Base32StringSeed"].decode())
    now = time.time()
    iam.enable_mfa_device(UserName="deployer", SerialNumber=d["SerialNumber"],
                          AuthenticationCode1=totp.at(now - 30), AuthenticationCode2=totp.at(now))
    r = call(server, "CreateDeployment", {"ModelId": "jit-model", "BaseUrl": model_base_url or f"http://127.0.0.1:{free_port()}/v1"},
             (ROOT_KEY_ID, ROOT_SECRET), service="ai", version="2024-01-01")
    assert r.status == 200, r.text
    r = call(server, "CreateEligibility", {
        "Subject": arn("user", "deployer"), "Target": arn("policy", "deploy"), "MaxDurationSeconds": "3600",
        "Approvers.member.1": arn("user", "alice"), "MfaRequired": "true"}, (ROOT_KEY_ID, ROOT_SECRET))
    assert r.status == 200, r.text
    return keys, d["SerialNumber"], totp


def update_deployment(server, key, clock=None):
    return call(server, "UpdateDeployment", {"ModelId": "jit-model", "LogInvocations": "true"}, key,
                clock, service="ai", version="2024-01-01")


def requests(server):
    r = call(server, "ListAccessRequests", {}, (ROOT_KEY_ID, ROOT_SECRET))
    assert r.status == 200, r.text
    return r.text.count("<AccessRequest>")


def audit(server):
    out = server.cli("audit", "tail", "-n", "500", "--format", "json")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


@needs_faketime
@pytest.mark.parametrize("backend", backends())
def test_request_approve_activate_then_the_window_ends_in_the_same_session(make_server, backend, tmp_path):
    clock = Clock(str(tmp_path / "faketime"))
    server = make_server(backend, extra_env=clock.env())
    keys, serial, totp = setup_world(server)
    deployer, alice, mallory = keys["deployer"], keys["alice"], keys["mallory"]

    # No standing right.
    r = update_deployment(server, deployer)
    assert (r.status, r.code) == (403, "AccessDenied"), r.text

    # Bad input: refused, nothing stored.
    r = call(server, "CreateAccessRequest", {"Target": arn("policy", "deploy"), "DurationSeconds": "7200",
                                             "Justification": "hotfix"}, deployer)
    assert (r.status, r.code) == (400, "ValidationError"), r.text
    assert "exceeds the maximum of 3600" in r.text
    r = call(server, "CreateAccessRequest", {"Target": arn("role", "nope"), "DurationSeconds": "600",
                                             "Justification": "hotfix"}, deployer)
    assert (r.status, r.code) == (404, "NoSuchEntity"), r.text
    assert requests(server) == 0

    r = call(server, "CreateAccessRequest", {"Target": arn("policy", "deploy"), "DurationSeconds": "1800",
                                             "Justification": "hotfix 1.2.3", "Ticket": "OPS-42"}, deployer)
    assert r.status == 200, r.text
    rid = r.field("RequestId")
    assert r.field("State") == "pending"

    # Self-approval and a non-approver: refused, still pending.
    for who in (deployer, mallory):
        r = call(server, "ApproveAccessRequest", {"RequestId": rid}, who)
        assert (r.status, r.code) == (403, "AccessDenied"), r.text
    r = call(server, "ListAccessRequests", {}, alice)
    assert r.field("State") == "pending"

    r = call(server, "ApproveAccessRequest", {"RequestId": rid, "Comment": "ok"}, alice)
    assert r.status == 200 and r.field("State") == "approved", r.text
    # A replayed approval changes nothing.
    r = call(server, "ApproveAccessRequest", {"RequestId": rid}, alice)
    assert (r.status, r.code) == (409, "InvalidRequestState"), r.text

    # Activation needs MFA: refused with the long-term key, done with an MFA session.
    r = call(server, "ActivateAccessRequest", {"RequestId": rid}, deployer)
    assert (r.status, r.code) == (403, "AccessDenied"), r.text
    sts = server.client("sts", *deployer)
    creds = sts.get_session_token(SerialNumber=serial, TokenCode=totp.at(time.time() + 30))["Credentials"]
    session = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    r = call(server, "ActivateAccessRequest", {"RequestId": rid}, session)
    assert r.status == 200 and r.field("State") == "active", r.text

    r = update_deployment(server, session)
    assert r.status == 200, r.text
    allowed = [a for a in audit(server) if a["action"] == "ai:UpdateDeployment" and a["decision"] == "Allow"]
    assert allowed and f"elevation:{rid}" in (allowed[-1].get("statement") or ""), allowed
    assert allowed[-1]["elevation_id"] == rid, allowed

    # The window ends: the very same session is refused at once.
    # (20 s before the end: the steps since the activation took real time too)
    clock.set(1780)
    assert update_deployment(server, session, clock).status == 200
    clock.set(1801)
    r = update_deployment(server, session, clock)
    assert (r.status, r.code) == (403, "AccessDenied"), r.text

    # A pending request left 24 hours cannot be approved.
    r = call(server, "CreateAccessRequest", {"Target": arn("policy", "deploy"), "DurationSeconds": "600",
                                             "Justification": "later"}, deployer, clock)
    assert r.status == 200, r.text
    late = r.field("RequestId")
    clock.set(1801 + 24 * 3600)
    r = call(server, "ApproveAccessRequest", {"RequestId": late}, alice, clock)
    assert (r.status, r.code) == (409, "InvalidRequestState"), r.text
    assert "expired" in r.text


@needs_faketime
@pytest.mark.parametrize("backend", backends())
def test_the_openai_client_gets_the_model_only_under_the_grant_and_its_window(make_server, backend, tmp_path):
    """The `openai` package, its API key the deployer's MFA session token: the model call is
    refused without standing rights, allowed once a grant of the managed policy `invoke` is
    approved and activated with MFA (audited with the grant's id), and refused again in the
    very same client when the window ends."""
    upstream = Upstream()
    try:
        clock = Clock(str(tmp_path / "faketime"))
        server = make_server(backend, extra_env=clock.env())
        keys, serial, totp = setup_world(server, model_base_url=upstream.base)
        deployer, alice = keys["deployer"], keys["alice"]
        model = f"arn:gatehouse:ai:local:{ACCOUNT}:model/jit-model"
        server.client("iam").create_policy(PolicyName="invoke", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ai:InvokeModel*", "Resource": model}]}))
        r = call(server, "CreateEligibility", {
            "Subject": arn("user", "deployer"), "Target": arn("policy", "invoke"), "MaxDurationSeconds": "600",
            "Approvers.member.1": arn("user", "alice"), "MfaRequired": "true"}, (ROOT_KEY_ID, ROOT_SECRET))
        assert r.status == 200, r.text
        creds = server.client("sts", *deployer).get_session_token(
            SerialNumber=serial, TokenCode=totp.at(time.time() + 30))["Credentials"]
        session = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
        client = openai.OpenAI(api_key=creds["SessionToken"], base_url=server.endpoint + "/v1",
                               max_retries=0, timeout=30)

        def chat(text):
            return client.chat.completions.create(model="jit-model", messages=[{"role": "user", "content": text}])

        with pytest.raises(openai.PermissionDeniedError):
            chat("before the grant")
        assert upstream.requests() == [], "a refused call reached the model"

        r = call(server, "CreateAccessRequest", {"Target": arn("policy", "invoke"), "DurationSeconds": "600",
                                                 "Justification": "evaluate the release candidate"}, session)
        assert r.status == 200, r.text
        rid = r.field("RequestId")
        assert call(server, "ApproveAccessRequest", {"RequestId": rid}, alice).status == 200
        r = call(server, "ActivateAccessRequest", {"RequestId": rid}, deployer)
        assert (r.status, r.code) == (403, "AccessDenied"), r.text  # MFA needed: not the long-term key
        r = call(server, "ActivateAccessRequest", {"RequestId": rid}, session)
        assert r.status == 200 and r.field("State") == "active", r.text

        answer = chat("under the grant")
        assert answer.choices[0].message.content.startswith("echo: under the grant")
        deadline = time.time() + 5
        while not (hits := [a for a in audit(server) if a["action"] == "ai:InvokeModel" and a["decision"] == "Allow"]):
            assert time.time() < deadline, "the allowed call was not audited"
            time.sleep(0.1)
        assert f"elevation:{rid}" in (hits[-1].get("statement") or ""), hits
        assert hits[-1]["elevation_id"] == rid, hits
        # The grant's story from the log alone: its steps and the calls made under it.
        out = server.cli("audit", "tail", "-n", "500", "--elevation", rid, "--format", "json")
        assert out.returncode == 0, out.stderr
        story = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        assert [(a["action"], a.get("error_code")) for a in story] == [
            ("gatehouse:ApproveAccessRequest", None), ("gatehouse:ActivateAccessRequest", "AccessDenied"),
            ("gatehouse:ActivateAccessRequest", None), ("ai:InvokeModel", None)], story
        assert all(a["elevation_id"] == rid for a in story)

        # The window ends: the same client, the same session token, refused.
        clock.set(601)
        with pytest.raises(openai.PermissionDeniedError):
            chat("after the window")
        assert len(upstream.requests()) == 1
    finally:
        upstream.stop()


@pytest.mark.skipif("postgres" not in backends(), reason="needs PostgreSQL")
def test_a_revoke_on_one_node_applies_on_the_other_within_a_second(make_server):
    env = {"GATEHOUSE_MASTER_KEY": os.urandom(32).hex()}
    a = make_server("postgres", extra_env=env)
    b = make_server("postgres", database_url=a.database_url, extra_env=env)
    keys, serial, totp = setup_world(a)
    deployer, alice = keys["deployer"], keys["alice"]
    rid = call(a, "CreateAccessRequest", {"Target": arn("policy", "deploy"), "DurationSeconds": "3600",
                                          "Justification": "incident"}, deployer).field("RequestId")
    assert call(a, "ApproveAccessRequest", {"RequestId": rid}, alice).status == 200
    creds = a.client("sts", *deployer).get_session_token(SerialNumber=serial, TokenCode=totp.at(time.time() + 30))["Credentials"]
    session = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert call(a, "ActivateAccessRequest", {"RequestId": rid}, session).status == 200
    deadline = time.time() + 1
    while update_deployment(b, session).status != 200:
        assert time.time() < deadline, "node b never applied the grant"
        time.sleep(0.05)
    r = call(a, "RevokeAccessRequest", {"RequestId": rid}, alice)
    assert r.status == 200 and r.field("State") == "revoked", r.text
    revoked_at = time.time()
    while update_deployment(b, session).status == 200:
        assert time.time() - revoked_at < 1.0, "node b still applies a revoked grant after a second"
        time.sleep(0.02)


@pytest.mark.skipif("postgres" not in backends(), reason="needs PostgreSQL")
def test_a_revoke_ends_role_sessions_open_on_the_other_node_within_a_second(make_server):
    """A role grant: the deployer assumes the role on node a under it; the session works on
    node b; a revoke on node a ends that open session on node b within a second."""
    env = {"GATEHOUSE_MASTER_KEY": os.urandom(32).hex()}
    a = make_server("postgres", extra_env=env)
    b = make_server("postgres", database_url=a.database_url, extra_env=env)
    keys, _, _ = setup_world(a)
    deployer, alice = keys["deployer"], keys["alice"]
    iam = a.client("iam")
    iam.create_role(RoleName="deploy-role", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:gatehouse:iam::{ACCOUNT}:root"},
                                                 "Action": "sts:AssumeRole"}]}))
    iam.attach_role_policy(RoleName="deploy-role", PolicyArn=arn("policy", "deploy"))
    r = call(a, "CreateEligibility", {"Subject": arn("user", "deployer"), "Target": arn("role", "deploy-role"),
                                      "MaxDurationSeconds": "3600", "Approvers.member.1": arn("user", "alice")},
             (ROOT_KEY_ID, ROOT_SECRET))
    assert r.status == 200, r.text
    sts = a.client("sts", *deployer)
    with pytest.raises(Exception, match="AccessDenied"):
        sts.assume_role(RoleArn=arn("role", "deploy-role"), RoleSessionName="before")
    rid = call(a, "CreateAccessRequest", {"Target": arn("role", "deploy-role"), "DurationSeconds": "3600",
                                          "Justification": "incident"}, deployer).field("RequestId")
    assert call(a, "ApproveAccessRequest", {"RequestId": rid}, alice).status == 200
    assert call(a, "ActivateAccessRequest", {"RequestId": rid}, deployer).status == 200
    creds = sts.assume_role(RoleArn=arn("role", "deploy-role"), RoleSessionName="fix")["Credentials"]
    session = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    r = update_deployment(b, session)
    assert r.status == 200, r.text
    r = call(a, "RevokeAccessRequest", {"RequestId": rid}, alice)
    assert r.status == 200 and r.field("State") == "revoked", r.text
    revoked_at = time.time()
    while (r := update_deployment(b, session)).status == 200:
        assert time.time() - revoked_at < 1.0, "node b still accepts a session of a revoked grant after a second"
        time.sleep(0.02)
    assert (r.status, r.code) == (403, "ExpiredToken"), r.text
    assert rid in r.text


@pytest.mark.parametrize("backend", backends())
def test_an_eligibility_is_deleted_over_the_api_once_nothing_is_open(make_server, backend):
    """gatehouse:DeleteEligibility: an unknown id is NoSuchEntity, an eligibility with an
    open request DeleteConflict (nothing changed), then deleted; nobody can ask under it."""
    server = make_server(backend)
    keys, _, _ = setup_world(server)
    root = (ROOT_KEY_ID, ROOT_SECRET)
    r = call(server, "ListEligibilities", {}, root)
    elig = r.field("EligibilityId")
    r = call(server, "DeleteEligibility", {"EligibilityId": "ELIGNOSUCHTHING"}, root)
    assert (r.status, r.code) == (404, "NoSuchEntity"), r.text
    r = call(server, "DeleteEligibility", {"EligibilityId": elig}, keys["alice"])
    assert (r.status, r.code) == (403, "AccessDenied"), r.text  # not allowed by her policy
    rid = call(server, "CreateAccessRequest", {"Target": arn("policy", "deploy"), "DurationSeconds": "600",
                                               "Justification": "why"}, keys["deployer"]).field("RequestId")
    r = call(server, "DeleteEligibility", {"EligibilityId": elig}, root)
    assert (r.status, r.code) == (409, "DeleteConflict"), r.text
    assert elig in call(server, "ListEligibilities", {}, root).text
    assert call(server, "RevokeAccessRequest", {"RequestId": rid}, keys["deployer"]).status == 200
    r = call(server, "DeleteEligibility", {"EligibilityId": elig}, root)
    assert r.status == 200, r.text
    assert elig not in call(server, "ListEligibilities", {}, root).text
    r = call(server, "CreateAccessRequest", {"Target": arn("policy", "deploy"), "DurationSeconds": "600",
                                             "Justification": "again"}, keys["deployer"])
    assert (r.status, r.code) == (403, "AccessDenied"), r.text
    assert "not eligible" in r.text


@pytest.mark.parametrize("configured_by", ["config file", "environment"])
def test_the_webhook_receives_signed_events(make_server, configured_by, tmp_path):
    """The webhook configured in the config file's [access] table (its secret in the
    variable `webhook_secret_env` names), or by the two environment variables."""
    secret = os.urandom(16).hex()
    got = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.headers, body))  # case-insensitive
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}/hook"
        if configured_by == "environment":
            server = make_server("sqlite", extra_env={
                "GATEHOUSE_ACCESS_WEBHOOK_URL": url, "GATEHOUSE_ACCESS_WEBHOOK_SECRET": secret})
        else:
            cfg = tmp_path / "gatehouse.toml"
            cfg.write_text(f'[access]\nwebhook_url = "{url}"\nwebhook_secret_env = "JIT_HOOK_SECRET"\n')
            server = make_server("sqlite", config=str(cfg), extra_env={"JIT_HOOK_SECRET": secret})
        keys, _, _ = setup_world(server)
        rid = call(server, "CreateAccessRequest", {"Target": arn("policy", "deploy"), "DurationSeconds": "600",
                                                   "Justification": "why"}, keys["deployer"]).field("RequestId")
        assert call(server, "DenyAccessRequest", {"RequestId": rid, "Comment": "no"}, keys["alice"]).status == 200
        deadline = time.time() + 10
        while len(got) < 2 and time.time() < deadline:
            time.sleep(0.05)
    finally:
        httpd.shutdown()
    assert [h["X-Gatehouse-Event"] for h, _ in got] == ["requested", "denied"]
    for headers, body in got:
        ts = headers["X-Gatehouse-Timestamp"]
        want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Gatehouse-Signature"], want)
        event = json.loads(body)
        assert event["request"]["request_id"] == rid
    denied = json.loads(got[1][1])
    assert denied["actor"] == arn("user", "alice")
    assert denied["request"]["state"] == "denied"
    assert denied["request"]["decision_comment"] == "no"


def test_a_webhook_that_would_send_unsigned_or_to_a_bad_url_stops_the_start(make_server, tmp_path):
    """Refused at start with the file and the field: a URL without a secret, a secret
    variable that is unset, a URL that is not http(s)."""
    cases = [
        ('[access]\nwebhook_url = "http://127.0.0.1:9/hook"\n', "access.webhook_url is set without a secret"),
        ('[access]\nwebhook_url = "http://127.0.0.1:9/hook"\nwebhook_secret_env = "NOPE_UNSET"\n',
         "access.webhook_secret_env: the environment variable NOPE_UNSET is unset or empty"),
        ('[access]\nwebhook_url = "ftp://127.0.0.1/hook"\nwebhook_secret_env = "HOME"\n', "access.webhook_url: "),
        ('[access]\nwebhook = "http://127.0.0.1:9/hook"\n', "unknown field `webhook`"),
    ]
    for i, (text, message) in enumerate(cases):
        cfg = tmp_path / f"bad{i}.toml"
        cfg.write_text(text)
        server = make_server("sqlite", config=str(cfg), start=False)
        with pytest.raises(RuntimeError) as e:
            server.start()
        assert f"bad{i}.toml" in str(e.value) and message in str(e.value), str(e.value)
