"""The AI gateway end to end: the official `openai` package as the client, through a real
`gatehouse serve` (SQLite and PostgreSQL), to an upstream test double speaking OpenAI's
wire protocol (upstream_double.py). Users, policies and keys are made with boto3 against
the same server; deployments come from the config file, the CLI and the `ai` Query API.
"""

import json
import os
import re
import shutil
import socketserver
import ssl
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import concurrent.futures

import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.exceptions import ClientError
import httpx
import openai
import pytest

from conftest import (ROOT_KEY_ID, ROOT_SECRET, Server, _create_postgres_database, backends, free_port,
                      gatehouse_bin, postgres_url)

HERE = os.path.dirname(os.path.abspath(__file__))
PROVIDER_KEY = "provider-secret-0123456789"
GLOBAL_RPM = 20  # the cross-node budget
SYNC_LAG = 0.75  # seconds: two budget sync intervals (2 x 250 ms) plus slack for a busy machine
ACCOUNT = "111122223333"


class Upstream:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "upstream_double.py"), str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        assert "ready" in line, line

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def requests(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_requests") as r:
            return json.load(r)

    def reset(self):
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{self.port}/_reset", method="POST"))

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def upstream():
    u = Upstream()
    yield u
    u.stop()


def write_config(path, upstream, private_port, dead_port):
    with open(path, "w") as f:
        f.write(f"""
account_id = "{ACCOUNT}"

[gateway]
upstream_timeout_secs = 2
max_body_bytes = 65536
trusted_proxies = ["127.0.0.2/32"]

[[gateway.listeners]]
name = "private"
listen = "127.0.0.1:{private_port}"

[[gateway.budgets]]
principal = "arn:gatehouse:iam::*:user/budgeted"
requests_per_minute = 3

[[gateway.budgets]]
principal = "arn:gatehouse:iam::*:user/tokenbudget"
tokens_per_minute = 30

# Shared by every member of the group.
[[gateway.budgets]]
group = "arn:gatehouse:iam::*:group/budget-team"
requests_per_minute = 3

# Shared by every session of the role; a session's tags can narrow it.
[[gateway.budgets]]
role = "arn:gatehouse:iam::*:role/budget-role"
requests_per_minute = 4

# Token budgets of the usage-accounting tests: each matching caller has its own counters.
[[gateway.budgets]]
principal = "arn:gatehouse:iam::*:user/tpm30-*"
tokens_per_minute = 30

[[gateway.budgets]]
principal = "arn:gatehouse:iam::*:user/tpm60-*"
tokens_per_minute = 60

[[gateway.budgets]]
principal = "arn:gatehouse:iam::*:user/tpm300-*"
tokens_per_minute = 300

# Spent across nodes (test_budget_is_global_across_two_nodes_on_one_postgresql).
[[gateway.budgets]]
principal = "arn:gatehouse:iam::*:user/global-*"
requests_per_minute = {GLOBAL_RPM}

[[gateway.deployments]]
model = "llama-3-8b"
base_url = "{upstream.base}"
provider = "vllm"
api_key_env = "UPSTREAM_KEY"

[[gateway.deployments]]
model = "gpt-4o-mini"
base_url = "{upstream.base}"
provider = "openai"
api_key_env = "UPSTREAM_KEY"

[[gateway.deployments]]
model = "search-llama"
base_url = "{upstream.base}"
upstream_model = "llama-upstream-name"

[[gateway.deployments]]
model = "ads-llama"
base_url = "{upstream.base}"

[[gateway.deployments]]
model = "logged-model"
base_url = "{upstream.base}"
log_invocations = true

[[gateway.deployments]]
model = "broken"
base_url = "http://127.0.0.1:{dead_port}/v1"
""")


class Gw:
    """A server with the gateway configured, and helpers to make principals."""

    def __init__(self, server, private_port, upstream):
        self.server = server
        self.private_port = private_port
        self.upstream = upstream
        self.iam = server.client("iam")
        self.n = 0

    @property
    def base(self):
        return self.server.endpoint + "/v1"

    @property
    def private_base(self):
        return f"http://127.0.0.1:{self.private_port}/v1"

    def user(self, policy, name=None, tags=None):
        self.n += 1
        name = name or f"u{self.n}"
        kw = {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}
        self.iam.create_user(UserName=name, **kw)
        self.iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
        k = self.iam.create_access_key(UserName=name)["AccessKey"]
        return k["AccessKeyId"], k["SecretAccessKey"]

    def client(self, key, base=None, **kw):
        return openai.OpenAI(api_key=f"{key[0]}:{key[1]}", base_url=base or self.base, max_retries=0,
                             timeout=30, **kw)

    def ai(self, action, params, key=(ROOT_KEY_ID, ROOT_SECRET)):
        """A SigV4-signed `ai` Query API call; returns (status, body text)."""
        body = urllib.parse.urlencode({"Action": action, "Version": "2024-01-01", **params})
        req = botocore.awsrequest.AWSRequest(
            method="POST", url=self.server.endpoint + "/", data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(*key), "ai", "us-east-1").add_auth(req)
        r = urllib.request.Request(self.server.endpoint + "/", data=body.encode(), method="POST",
                                   headers=dict(req.headers.items()))
        try:
            with urllib.request.urlopen(r) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def audit(self, pred, timeout=5):
        """Waits for an audit record (gateway records are written in batches)."""
        deadline = time.time() + timeout
        while True:
            out = self.server.cli("audit", "tail", "-n", "500", "--format", "json")
            recs = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
            hits = [r for r in recs if pred(r)]
            if hits or time.time() > deadline:
                return hits
            time.sleep(0.1)


def allow(resource="*", action="ai:InvokeModel*", condition=None, sid="AllowInvoke"):
    st = {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        st["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [st]}


def model_arn(m):
    return f"arn:gatehouse:ai:local:{ACCOUNT}:model/{m}"


@pytest.fixture(scope="module", params=backends())
def gw(request, tmp_path_factory, upstream):
    data_dir = str(tmp_path_factory.mktemp("gatehouse-gw"))
    private_port, dead_port = free_port(), free_port()
    cfg = os.path.join(data_dir, "gatehouse.toml")
    write_config(cfg, upstream, private_port, dead_port)
    db = _create_postgres_database(postgres_url()) if request.param == "postgres" else None
    s = Server(request.param, data_dir, db, extra_env={"UPSTREAM_KEY": PROVIDER_KEY}, config=cfg).start()
    yield Gw(s, private_port, upstream)
    s.stop()


def chat(client, model="llama-3-8b", content="hello there", **kw):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}], **kw)


# --- allowed, and what goes upstream ------------------------------------------------------


def test_allowed_call_injects_provider_key_and_never_forwards_caller_credentials(gw):
    key = gw.user(allow(model_arn("llama-3-8b")), name="allowed1")
    gw.upstream.reset()
    r = chat(gw.client(key), content="ping one two")
    assert r.choices[0].message.content.startswith("echo: ping one two")
    assert r.usage.total_tokens == 13
    seen = gw.upstream.requests()
    assert len(seen) == 1
    headers = {k.lower(): v for k, v in seen[0]["headers"].items()}
    assert headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert key[1] not in json.dumps(seen)
    rec = gw.audit(lambda r: r["principal"].endswith(":user/allowed1") and r.get("model") == "llama-3-8b")
    assert rec, "the allowed call is audited with its tokens"
    assert rec[-1]["decision"] == "Allow" and rec[-1]["total_tokens"] == 13
    assert rec[-1]["action"] == "ai:InvokeModel" and "AllowInvoke" in rec[-1]["statement"]
    assert rec[-1]["latency_ms"] > 0


def test_session_token_is_the_api_key_and_revocation_ends_it(gw):
    """Roles, not keys: an application assumes a role and passes the STS session token
    alone as its OpenAI API key; the role's policies and the session's tags decide, and
    `admin revoke-sessions` ends the session."""
    app = gw.user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": "*"}]},
        name="session-app")
    gw.iam.create_role(
        RoleName="search-invoker",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:gatehouse:iam::{ACCOUNT}:root"},
            "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))
    gw.iam.put_role_policy(RoleName="search-invoker", PolicyName="p", PolicyDocument=json.dumps(
        allow(model_arn("*"), condition={"StringEquals": {"aws:PrincipalTag/team": "search"}})))
    sts = gw.server.client("sts", *app)
    arn = f"arn:gatehouse:iam::{ACCOUNT}:role/search-invoker"
    search = sts.assume_role(RoleArn=arn, RoleSessionName="svc",
                             Tags=[{"Key": "team", "Value": "search"}])["Credentials"]
    ads = sts.assume_role(RoleArn=arn, RoleSessionName="svc2",
                          Tags=[{"Key": "team", "Value": "ads"}])["Credentials"]

    def session(creds):
        return openai.OpenAI(api_key=creds["SessionToken"], base_url=gw.base, max_retries=0, timeout=30)

    r = chat(session(search), content="via a role session")
    assert r.choices[0].message.content.startswith("echo: via a role session")
    rec = gw.audit(lambda r: r["principal"].endswith(":assumed-role/search-invoker/svc"))
    assert rec and rec[-1]["decision"] == "Allow"
    with pytest.raises(openai.PermissionDeniedError):
        chat(session(ads))  # the session tag decides (ABAC)
    with pytest.raises(openai.AuthenticationError):
        chat(session(dict(search, SessionToken=search["SessionToken"][:-4] + "AAAA")))

    time.sleep(1.1)  # aws:TokenIssueTime has millisecond precision; revoke strictly after
    out = gw.server.cli("admin", "revoke-sessions", "--role", "search-invoker")
    assert out.returncode == 0, out.stderr
    deadline = time.time() + 3
    while True:
        try:
            chat(session(search))
        except openai.PermissionDeniedError:
            break
        assert time.time() < deadline, "a revoked session still invokes"
        time.sleep(0.2)


def test_completions_embeddings_and_upstream_model_rewrite(gw):
    key = gw.user(allow([model_arn("llama-3-8b"), model_arn("search-llama")]))
    c = gw.client(key)
    assert c.completions.create(model="llama-3-8b", prompt="say hi").choices[0].text == "echo: say hi"
    e = c.embeddings.create(model="llama-3-8b", input=["a", "b"])
    assert len(e.data) == 2 and len(e.data[0].embedding) == 8
    gw.upstream.reset()
    chat(c, model="search-llama")
    assert gw.upstream.requests()[0]["body"]["model"] == "llama-upstream-name"


# --- denied -------------------------------------------------------------------------------


def test_denied_by_model_is_403_with_encoded_message_and_nothing_forwarded(gw):
    key = gw.user(allow(model_arn("llama-3-8b"), sid="SecretSidName"))
    gw.upstream.reset()
    with pytest.raises(openai.PermissionDeniedError) as e:
        chat(gw.client(key), model="gpt-4o-mini")
    body = e.value.body
    assert e.value.status_code == 403
    assert body["code"] == "access_denied"
    assert "ai:InvokeModel" in body["message"] and model_arn("gpt-4o-mini") in body["message"]
    encoded = re.search(r"Encoded authorization failure message: (\S+)", body["message"]).group(1)
    assert len(encoded) > 40
    assert "SecretSidName" not in body["message"] and "Allow" not in body["message"]
    assert gw.upstream.requests() == []
    # An operator decodes it: the decision, what was missing, and the context it saw.
    out = gw.server.cli("decode-authorization-message", encoded)
    assert out.returncode == 0, out.stderr
    decoded = json.loads(out.stdout)
    assert decoded["allowed"] is False and decoded["decision"]["decision"] == "ImplicitDeny"
    conditions = {c["key"]: c["values"]["items"][0]["value"] for c in decoded["context"]["conditions"]["items"]}
    assert conditions["ai:ModelId"] == "gpt-4o-mini"
    assert decoded["context"]["action"] == "ai:InvokeModel"
    assert gw.server.cli("decode-authorization-message", encoded[:-4] + "AAAA").returncode == 2
    # The token service decodes gateway denials too, for principals allowed to.
    sts = gw.server.client("sts")
    via_sts = json.loads(sts.decode_authorization_message(EncodedMessage=encoded)["DecodedMessage"])
    assert via_sts["context"]["resource"] == model_arn("gpt-4o-mini")
    assert gw.audit(lambda r: r.get("model") == "gpt-4o-mini" and r["decision"] == "ImplicitDeny")


def test_explicit_deny_wins(gw):
    pol = allow("*")
    pol["Statement"].append({"Effect": "Deny", "Action": "ai:*", "Resource": model_arn("gpt-4o-mini")})
    c = gw.client(gw.user(pol))
    assert chat(c).choices
    with pytest.raises(openai.PermissionDeniedError):
        chat(c, model="gpt-4o-mini")
    assert gw.audit(lambda r: r.get("model") == "gpt-4o-mini" and r["decision"] == "ExplicitDeny")


def test_denied_by_listener(gw):
    key = gw.user(allow("*", condition={"StringEquals": {"aws:SourceVpce": "private"}}))
    with pytest.raises(openai.PermissionDeniedError):
        chat(gw.client(key))
    assert chat(gw.client(key, base=gw.private_base)).choices


def test_denied_by_source_ip_and_forwarded_for_only_from_trusted_proxies(gw):
    key = gw.user(allow("*", condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}))
    xff = {"X-Forwarded-For": "203.0.113.9"}
    # From 127.0.0.1 (not a trusted proxy) the header is ignored: the peer address decides.
    with pytest.raises(openai.PermissionDeniedError):
        chat(gw.client(key, default_headers=xff))
    # From the trusted proxy 127.0.0.2 the header is believed.
    proxied = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    assert chat(gw.client(key, default_headers=xff, http_client=proxied)).choices
    with pytest.raises(openai.PermissionDeniedError):
        chat(gw.client(key, default_headers={"X-Forwarded-For": "198.51.100.1"}, http_client=proxied))


def test_denied_by_max_tokens(gw):
    key = gw.user(allow("*", condition={"NumericLessThanEquals": {"ai:MaxTokens": "100"}}))
    c = gw.client(key)
    assert chat(c, max_tokens=100).choices
    with pytest.raises(openai.PermissionDeniedError):
        chat(c, max_tokens=101)
    with pytest.raises(openai.PermissionDeniedError):
        chat(c)  # no max_tokens: the key is absent, the condition cannot hold


def test_the_token_cap_holds_over_null_both_fields_and_choices(gw):
    """The `openai` client sends an explicit None as JSON null: `max_completion_tokens=None`
    beside a large `max_tokens` must not slip past a cap, nor `n` multiply it."""
    pol = allow("*")
    pol["Statement"].append({"Effect": "Deny", "Action": "ai:Invoke*", "Resource": "*",
                             "Condition": {"NumericGreaterThan": {"ai:MaxTokens": "100"}}})
    c = gw.client(gw.user(pol))
    gw.upstream.reset()
    for kw in [dict(max_completion_tokens=None, max_tokens=100000),
               dict(max_completion_tokens=10, max_tokens=100000),
               dict(max_tokens=60, n=2)]:
        with pytest.raises(openai.PermissionDeniedError):
            chat(c, **kw)
    with pytest.raises(openai.PermissionDeniedError):
        c.completions.create(model="llama-3-8b", prompt="x", max_tokens=30, best_of=4)
    assert gw.upstream.requests() == []
    assert chat(c, max_tokens=None, max_completion_tokens=50, n=2).choices
    sent = gw.upstream.requests()[0]["body"]
    assert "max_tokens" not in sent and sent["max_completion_tokens"] == 50


def test_a_denied_caller_cannot_tell_whether_a_model_exists(gw):
    c = gw.client(gw.user(allow(model_arn("llama-3-8b"))))
    answers = []
    for model in ["gpt-4o-mini", "no-such-model-anywhere"]:
        with pytest.raises(openai.PermissionDeniedError) as e:
            chat(c, model=model)
        answers.append(e.value.body["message"].split(". Encoded")[0].replace(model, "M"))
        with pytest.raises(openai.PermissionDeniedError):
            c.embeddings.create(model=model, input="x")
    assert answers[0] == answers[1]


def test_abac_principal_tag_selects_models(gw):
    pol = allow(f"arn:gatehouse:ai:local:{ACCOUNT}:model/${{aws:PrincipalTag/team}}-*")
    c = gw.client(gw.user(pol, tags={"team": "search"}))
    assert chat(c, model="search-llama").choices
    with pytest.raises(openai.PermissionDeniedError):
        chat(c, model="ads-llama")


def test_streaming_needs_its_own_action(gw):
    c = gw.client(gw.user(allow("*", action="ai:InvokeModel")))
    assert chat(c).choices
    with pytest.raises(openai.PermissionDeniedError):
        list(chat(c, stream=True))


# --- streaming ----------------------------------------------------------------------------


def test_stream_is_passed_through_chunk_by_chunk(gw):
    c = gw.client(gw.user(allow("*")))
    started = time.monotonic()
    arrivals, text = [], []
    # 8 words, 0.4 s apart: the upstream needs > 3 s to finish.
    for chunk in chat(c, content="STREAM_DELAY:0.4 a b c d e f g", stream=True):
        arrivals.append(time.monotonic() - started)
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
    assert "".join(text).startswith("echo: STREAM_DELAY:0.4 a b")
    assert arrivals[0] < 1.0, arrivals          # the first chunk did not wait for the rest
    assert arrivals[-1] > 3.0, arrivals
    assert arrivals[3] - arrivals[1] > 0.6, arrivals  # chunks arrive spread out, not in one burst
    assert gw.audit(lambda r: r["action"] == "ai:InvokeModelWithResponseStream" and r["stream"]
                    and r["latency_ms"] > 3000)


def test_access_revoked_mid_stream_ends_the_stream_within_a_second(gw):
    c = gw.client(gw.user(allow("*"), name="revokee"))
    stream = chat(c, content="STREAM_DELAY:0.5 a b c d e f g h", stream=True)
    chunks = iter(stream)
    next(chunks)
    revoked_at = None
    with pytest.raises(openai.APIError) as e:
        for i, _ in enumerate(chunks):
            if i == 1:
                gw.iam.put_user_policy(UserName="revokee", PolicyName="stop", PolicyDocument=json.dumps(
                    {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ai:*", "Resource": "*"}]}))
                revoked_at = time.monotonic()
    assert revoked_at is not None
    assert time.monotonic() - revoked_at < 1.5
    assert "revoked" in str(e.value)
    assert gw.audit(lambda r: r["principal"].endswith("user/revokee") and r.get("error_code") == "revoked")


# --- budgets ------------------------------------------------------------------------------


def _refused(client, **kw):
    """The 429 a budget answers with (asserting it carries Retry-After)."""
    with pytest.raises(openai.RateLimitError) as e:
        chat(client, **kw)
    retry = int(e.value.response.headers["retry-after"])
    assert 1 <= retry <= 61  # a sliding minute, counted in seconds
    return e.value


def test_requests_per_minute_budget_answers_429_with_retry_after(gw):
    c = gw.client(gw.user(allow("*"), name="budgeted"))
    for _ in range(3):
        chat(c)
    with pytest.raises(openai.RateLimitError) as e:
        chat(c)
    retry = int(e.value.response.headers["retry-after"])
    assert 1 <= retry <= 61  # a sliding minute, counted in seconds


def test_tokens_per_minute_budget_counts_upstream_usage(gw):
    c = gw.client(gw.user(allow("*"), name="tokenbudget"))
    chat(c, content=" ".join(["w"] * 25))  # 25 prompt + 10 completion = 35 tokens > 30
    with pytest.raises(openai.RateLimitError):
        chat(c, content="small")
    assert gw.audit(lambda r: r["principal"].endswith("user/tokenbudget") and r["status"] == 429)


def test_a_group_budget_is_shared_by_its_members(gw):
    """Every member's traffic counts against the group's one budget: the second member is
    refused once the first has used it up, while a user outside the group is not."""
    gw.iam.create_group(GroupName="budget-team")
    first = gw.client(gw.user(allow("*"), name="team-first"))
    second = gw.client(gw.user(allow("*"), name="team-second"))
    outsider = gw.client(gw.user(allow("*"), name="team-outsider"))
    for u in ("team-first", "team-second"):
        gw.iam.add_user_to_group(GroupName="budget-team", UserName=u)
    for _ in range(3):
        chat(first)
    e = _refused(second)
    assert "group arn:gatehouse:iam::" in str(e) and "budget-team" in str(e)
    _refused(first)
    assert chat(outsider).choices
    assert gw.audit(lambda r: r["principal"].endswith("user/team-second") and r["status"] == 429)


def _budget_role(gw):
    """The role with a 4-requests-per-minute budget, and a user allowed to assume it with tags."""
    app = gw.user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": "*"}]})
    try:
        gw.iam.create_role(
            RoleName="budget-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": f"arn:gatehouse:iam::{ACCOUNT}:root"},
                "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))
        gw.iam.put_role_policy(RoleName="budget-role", PolicyName="p", PolicyDocument=json.dumps(allow("*")))
    except ClientError as e:
        assert e.response["Error"]["Code"] == "EntityAlreadyExists"
    sts = gw.server.client("sts", *app)

    def session(name, **tags):
        kw = {"Tags": [{"Key": k.replace("_", ":"), "Value": v} for k, v in tags.items()]} if tags else {}
        creds = sts.assume_role(RoleArn=f"arn:gatehouse:iam::{ACCOUNT}:role/budget-role",
                                RoleSessionName=name, **kw)["Credentials"]
        return openai.OpenAI(api_key=creds["SessionToken"], base_url=gw.base, max_retries=0, timeout=30)

    return sts, session


def test_a_role_session_can_carry_a_narrower_budget_never_a_wider_one(gw):
    sts, session = _budget_role(gw)
    narrow = session("narrow", gatehouse_rpm="2")
    other = session("other")
    greedy = session("greedy", gatehouse_rpm="100")
    chat(narrow)
    chat(narrow)
    # The session's own budget is spent before the role's (4)...
    e = _refused(narrow)
    assert "session ASIA" in str(e)
    # ...while another session of the same role still passes, until the role's is spent.
    chat(other)
    chat(other)
    e = _refused(other)
    assert "role arn:gatehouse:iam::" in str(e) and "budget-role" in str(e)
    # A tag asking for more than the role has gets nothing beyond the role's budget.
    _refused(greedy)
    assert gw.audit(lambda r: r["principal"].endswith("assumed-role/budget-role/narrow") and r["status"] == 429)


def test_a_budget_tag_that_is_not_a_number_is_refused_at_assume_role(gw):
    sts, _ = _budget_role(gw)
    for bad in ("lots", "-1", "1.5"):
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=f"arn:gatehouse:iam::{ACCOUNT}:role/budget-role", RoleSessionName="bad",
                            Tags=[{"Key": "gatehouse:tpd", "Value": bad}])
        assert e.value.response["Error"]["Code"] == "ValidationError"
        assert "whole number" in e.value.response["Error"]["Message"]


TWENTY_FIVE_WORDS = " ".join(["w"] * 25)  # the double counts 25 prompt + 10 completion = 35 tokens


def _own_record(gw, name, **match):
    """The caller's audit records that match (status 200 by default), newest last."""
    match.setdefault("status", 200)
    return gw.audit(lambda r: r["principal"].endswith(f":user/{name}")
                    and all(r.get(k) == v for k, v in match.items()))


@pytest.mark.parametrize("variant,options", [("absent", None), ("false", {"include_usage": False}),
                                             ("empty", {}), ("null", None)],
                         ids=["absent", "include_usage-false", "empty", "null"])
def test_streamed_tokens_are_charged_whatever_stream_options_says(gw, variant, options):
    """Usage is always asked of the upstream and charged; a client that did not ask for the
    usage chunk does not get one (nor a `usage` key in any chunk)."""
    name = f"tpm30-stream-{variant}"
    c = gw.client(gw.user(allow("*"), name=name))
    kw = {} if variant == "absent" else {"stream_options": options}
    gw.upstream.reset()
    chunks = list(chat(c, content=TWENTY_FIVE_WORDS, stream=True, **kw))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices).startswith("echo: w w")
    assert all(ch.choices and "usage" not in ch.model_fields_set for ch in chunks), chunks[-1]
    sent = gw.upstream.requests()[-1]["body"]
    assert sent["stream_options"]["include_usage"] is True
    rec = _own_record(gw, name)
    assert rec and rec[-1]["total_tokens"] == 35 and rec[-1]["usage_source"] == "measured", rec
    e = _refused(c)  # 35 tokens charged against 30 per minute
    assert "tokens per minute" in str(e)


def test_a_stream_that_asks_for_usage_gets_the_usage_chunk(gw):
    c = gw.client(gw.user(allow("*")))
    chunks = list(chat(c, content="four words right here", stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 14
    assert all(ch.usage is None for ch in chunks[:-1])


def test_a_client_gone_before_the_usage_chunk_is_still_charged(gw):
    """The client reads every content chunk and closes the connection while the upstream
    is still to send the usage chunk: Gatehouse keeps reading the upstream (bounded) and
    charges what it reports."""
    name = "tpm30-gone"
    c = gw.client(gw.user(allow("*"), name=name))
    stream = chat(c, content="USAGE_DELAY:1 " + " ".join(["w"] * 24), stream=True)
    for ch in stream:
        if ch.choices and ch.choices[0].finish_reason:
            break
    stream.close()
    rec = _own_record(gw, name)
    assert rec and rec[-1]["error_code"] == "client_closed", rec
    assert rec[-1]["total_tokens"] == 35 and rec[-1]["usage_source"] == "measured", rec
    _refused(c)


def test_a_client_that_gives_up_on_an_answer_is_still_charged_and_audited(gw):
    """The client times out while the upstream is still answering: the call runs to its
    end anyway — its tokens charged, its audit record written."""
    name = "tpm30-impatient"
    c = gw.client(gw.user(allow("*"), name=name))
    impatient = c.with_options(timeout=0.5)
    with pytest.raises(openai.APITimeoutError):
        chat(impatient, content="SLEEP:1.5 " + " ".join(["w"] * 24))
    rec = _own_record(gw, name)
    assert rec and rec[-1]["total_tokens"] == 35 and rec[-1]["usage_source"] == "measured", rec
    _refused(c)


def test_n_answers_reserve_n_times_the_maximum(gw):
    """n=3 answers of up to 100 tokens cannot fit 300 tokens per minute with a prompt:
    refused as too large (400 on max_tokens: waiting would not help); n=2 fits, and is
    charged what the upstream reports for both answers."""
    name = "tpm300-n"
    c = gw.client(gw.user(allow("*"), name=name))
    gw.upstream.reset()
    with pytest.raises(openai.BadRequestError) as e:
        chat(c, content="hi", max_tokens=100, n=3)
    assert e.value.body["code"] == "request_exceeds_budget" and e.value.body["param"] == "max_tokens"
    assert gw.upstream.requests() == []
    r = chat(c, content="hi", max_tokens=100, n=2)
    assert len(r.choices) == 2 and r.usage.total_tokens == 21
    rec = _own_record(gw, name)
    assert rec[-1]["reserved_tokens"] == 201 and rec[-1]["charged_tokens"] == 21, rec
    for bad in (0, -1, "2", 1.5):
        with pytest.raises(openai.BadRequestError) as e:
            chat(c, content="hi", max_tokens=10, n=bad)
        assert e.value.body["param"] == "n"
    for bad in ({"max_tokens": -1}, {"max_tokens": 10, "max_completion_tokens": -5}, {"max_tokens": 2**70}):
        with pytest.raises(openai.BadRequestError):
            chat(c, content="hi", **bad)


def test_parallel_requests_cannot_overshoot_a_token_budget(gw):
    """50 requests of up to 100 tokens at once against 300 tokens per minute: each reserves
    its maximum at admission, so at most 3 are ever in flight together (the upstream
    never holds more than 3 at once; before reservations all 50 were), and once they are
    answered (12 tokens each) the unused reservations are refunded. A request that
    arrives after the first ones were settled may be admitted in their place, so on a
    machine too loaded to send 50 requests within the upstream's 1 s answer a few more
    than 3 may pass in all, never more than 3 at once."""
    name = "tpm300-parallel"
    c = gw.client(gw.user(allow("*"), name=name))
    gw.upstream.reset()
    start = threading.Barrier(50)

    def one(_):
        start.wait()
        try:
            chat(c, content="SLEEP:1 hi", max_tokens=100)
            return True
        except openai.RateLimitError:
            return False

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        admitted = sum(pool.map(one, range(50)))
    spans = [(r["received_at"], r["answered_at"]) for r in gw.upstream.requests()
             if r["path"].endswith("/chat/completions")]
    assert len(spans) == admitted
    most_at_once = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most_at_once <= 3, spans
    # Most are refused (all 50 were admitted before); 16 settled at 12 tokens leave room
    # for the request below.
    assert 1 <= admitted <= 16, admitted
    rec = _own_record(gw, name)
    assert len(rec) == admitted and all(r["total_tokens"] == 12 for r in rec), rec
    # Settled to 12 tokens each: room again for a request of up to 100.
    assert chat(c, max_tokens=100).choices


def test_an_answer_without_usage_is_charged_an_estimate(gw):
    """No `usage` in the answer: the prompt and answer text are counted at 4 bytes a token
    (209 + 49 bytes: 53 + 13 = 66 tokens), more than the 60 of the budget."""
    name = "tpm60-estimate"
    c = gw.client(gw.user(allow("*"), name=name))
    r = chat(c, content="NO_USAGE " + "wwww " * 40)
    assert r.usage is None
    rec = _own_record(gw, name)
    assert rec and rec[-1]["usage_source"] == "estimated" and rec[-1]["charged_tokens"] == 66, rec
    assert rec[-1].get("total_tokens") is None
    _refused(c)


# --- /v1/models ---------------------------------------------------------------------------


def test_models_lists_only_invocable_models(gw):
    c = gw.client(gw.user(allow([model_arn("llama-3-8b"), model_arn("ads-llama")])))
    assert sorted(m.id for m in c.models.list()) == ["ads-llama", "llama-3-8b"]
    assert c.models.retrieve("llama-3-8b").owned_by == "vllm"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("gpt-4o-mini")
    root = openai.OpenAI(api_key=f"{ROOT_KEY_ID}:{ROOT_SECRET}", base_url=gw.base, max_retries=0)
    assert {"llama-3-8b", "gpt-4o-mini", "broken"} <= {m.id for m in root.models.list()}


# --- upstream failure and timeout -----------------------------------------------------------


def test_upstream_down_is_502(gw):
    c = gw.client(gw.user(allow("*")))
    with pytest.raises(openai.APIStatusError) as e:
        chat(c, model="broken")
    assert e.value.status_code == 502 and e.value.body["code"] == "upstream_unavailable"


def test_upstream_timeout_is_504(gw):
    c = gw.client(gw.user(allow("*")))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as e:
        chat(c, content="SLEEP:5")
    assert e.value.status_code == 504 and e.value.body["code"] == "upstream_timeout"
    assert time.monotonic() - started < 4.5


def test_upstream_error_status_is_passed_through(gw):
    c = gw.client(gw.user(allow("*")))
    with pytest.raises(openai.RateLimitError):
        chat(c, content="FAIL:429")


# --- bad input ----------------------------------------------------------------------------


def raw(gw, body, auth=None, path="/chat/completions"):
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    return httpx.post(gw.base + path, content=body, headers=headers, timeout=10)


def test_bad_input_gets_openai_errors_and_nothing_is_forwarded(gw):
    key = gw.user(allow("*"))
    good = f"Bearer {key[0]}:{key[1]}"
    gw.upstream.reset()
    cases = [
        (raw(gw, b'{"model": "llama-3-8b", "messages": [', good), 400, "invalid_json"),
        (raw(gw, b'[1, 2]', good), 400, "invalid_json"),
        (raw(gw, b'{"messages": []}', good), 400, "invalid_value"),
        (raw(gw, b'{"model": "llama-3-8b", "stream": "yes", "messages": []}', good), 400, "invalid_value"),
        (raw(gw, json.dumps({"model": "llama-3-8b", "messages": [{"role": "user", "content": "x" * 70000}]}).encode(),
             good), 413, "request_too_large"),
        (raw(gw, b'{"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}', good), 404,
         "model_not_found"),
        (raw(gw, b'{"model": "llama-3-8b", "messages": "hi"}', good), 400, "invalid_value"),
        (raw(gw, b'{"model": "llama-3-8b", "messages": [1]}', good), 400, "invalid_value"),
        (raw(gw, b'{"model": "llama-3-8b", "messages": []}'), 401, "invalid_api_key"),
        (raw(gw, b'{"model": "llama-3-8b", "messages": []}', f"Bearer {key[0]}:forged"), 401, "invalid_api_key"),
        (raw(gw, b'{"model": "llama-3-8b", "messages": []}', "Bearer AKIANOSUCHKEY0000000:x"), 401, "invalid_api_key"),
        (raw(gw, b'{"model": "llama-3-8b", "messages": []}', "Bearer some-session-token"), 401, "invalid_api_key"),
    ]
    for resp, status, code in cases:
        assert resp.status_code == status, resp.text
        err = resp.json()["error"]
        assert err["code"] == code and err["message"] and "type" in err, resp.text
    assert gw.upstream.requests() == []
    with pytest.raises(openai.AuthenticationError):
        chat(openai.OpenAI(api_key=f"{key[0]}:wrong", base_url=gw.base, max_retries=0))
    # What the gateway does not serve answers in OpenAI's shape, which the client parses.
    c = gw.client(key)
    with pytest.raises(openai.NotFoundError) as e:
        c.files.list()
    assert e.value.body["code"] == "unknown_url"
    with pytest.raises(openai.APIStatusError) as e:
        c.get("/chat/completions", cast_to=object)
    assert e.value.status_code == 405 and e.value.body["code"] == "method_not_allowed"
    assert e.value.response.headers["allow"] == "POST"


# --- control plane: deployments and guardrails ----------------------------------------------


def test_deployments_and_guardrails_are_authorized_control_plane_actions(gw):
    admin = gw.user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ai:CreateDeployment", "ai:UpdateDeployment", "ai:DeleteDeployment",
                                       "ai:*Guardrail", "ai:InvokeModel", "ai:GetModel"], "Resource": "*"}]})
    invoker = gw.user(allow("*"))
    st, body = gw.ai("CreateDeployment", {"ModelId": "cp-model", "BaseUrl": gw.upstream.base,
                                          "Provider": "vllm", "ApiKey": "cp-secret-key"}, key=invoker)
    assert st == 403 and "AccessDenied" in body
    st, body = gw.ai("CreateDeployment", {"ModelId": "cp-model", "BaseUrl": gw.upstream.base,
                                          "Provider": "vllm", "ApiKey": "cp-secret-key"}, key=admin)
    assert st == 200, body
    assert "<HasApiKey>true</HasApiKey>" in body and "cp-secret-key" not in body
    st, body = gw.ai("CreateDeployment", {"ModelId": "cp-model", "BaseUrl": gw.upstream.base}, key=admin)
    assert st == 409 and "EntityAlreadyExists" in body
    st, body = gw.ai("CreateDeployment", {"ModelId": "bad model", "BaseUrl": gw.upstream.base}, key=admin)
    assert st == 400
    c = gw.client(invoker)
    gw.upstream.reset()
    assert chat(c, model="cp-model").choices
    assert gw.upstream.requests()[0]["headers"]["Authorization"] == "Bearer cp-secret-key"

    guard = json.dumps({"max_tokens": 50, "deny_patterns": ["forbidden\\s+topic"],
                        "allowed_parameters": ["max_tokens", "temperature"]})
    st, body = gw.ai("CreateGuardrail", {"ModelId": "cp-model", "Guardrail": guard}, key=invoker)
    assert st == 403
    st, body = gw.ai("CreateGuardrail", {"ModelId": "cp-model", "Guardrail": "{\"max_tokens\": \"x\"}"}, key=admin)
    assert st == 400
    st, body = gw.ai("CreateGuardrail", {"ModelId": "cp-model", "Guardrail": guard}, key=admin)
    assert st == 200, body
    time.sleep(0.2)
    gw.upstream.reset()
    with pytest.raises(openai.BadRequestError) as e:
        chat(c, model="cp-model", max_tokens=51)
    assert e.value.body["code"] == "guardrail_violation"
    with pytest.raises(openai.BadRequestError):
        chat(c, model="cp-model", content="tell me the FORBIDDEN  topic")
    with pytest.raises(openai.BadRequestError):
        chat(c, model="cp-model", top_p=0.5)
    # Every text the model reads: a tool's description, a tool call's arguments, a name.
    tool = {"type": "function", "function": {"name": "lookup", "description": "the forbidden topic",
                                             "parameters": {"type": "object", "properties": {}}}}
    with pytest.raises(openai.BadRequestError) as e:
        chat(c, model="cp-model", tools=[tool])
    assert e.value.body["code"] == "guardrail_violation"
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
        "name": "lookup", "arguments": json.dumps({"q": "forbidden topic"})}}]}
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="cp-model", messages=[{"role": "user", "content": "hi"}, call,
                                                            {"role": "tool", "tool_call_id": "c1", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="cp-model", messages=[
            {"role": "user", "name": "forbidden topic", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        chat(c, model="cp-model", max_completion_tokens=None, max_tokens=51)
    assert gw.upstream.requests() == []
    chat(c, model="cp-model", temperature=0.2)
    assert gw.upstream.requests()[0]["body"]["max_tokens"] == 50  # the cap is applied
    st, _ = gw.ai("DeleteGuardrail", {"ModelId": "cp-model"}, key=admin)
    assert st == 200
    assert chat(c, model="cp-model", max_tokens=500).choices
    st, _ = gw.ai("DeleteDeployment", {"ModelId": "cp-model"}, key=admin)
    assert st == 200
    with pytest.raises(openai.NotFoundError):
        chat(c, model="cp-model")
    assert gw.audit(lambda r: r["action"] == "ai:CreateDeployment" and r["decision"] == "ImplicitDeny")


def test_a_deployment_cannot_be_moved_with_its_key_nor_pointed_at_metadata_or_gatehouse(gw):
    admin = gw.user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ai:CreateDeployment", "ai:UpdateDeployment", "ai:InvokeModel"],
         "Resource": "*"}]})
    st, body = gw.ai("CreateDeployment", {"ModelId": "mv-model", "BaseUrl": gw.upstream.base,
                                          "ApiKey": "mv-provider-key"}, key=admin)
    assert st == 200, body
    elsewhere = f"http://127.0.0.1:{free_port()}/v1"
    # Re-pointing the URL would send the sealed key to the new host: refused.
    st, body = gw.ai("UpdateDeployment", {"ModelId": "mv-model", "BaseUrl": elsewhere}, key=admin)
    assert st == 400 and "ValidationError" in body and "provider key" in body, body
    # The same host (another path) keeps the key; a move with a new key or none is fine.
    st, body = gw.ai("UpdateDeployment", {"ModelId": "mv-model", "BaseUrl": gw.upstream.base + "/"}, key=admin)
    assert st == 200 and "<HasApiKey>true</HasApiKey>" in body, body
    st, body = gw.ai("UpdateDeployment", {"ModelId": "mv-model", "BaseUrl": elsewhere, "ClearApiKey": "true"},
                     key=admin)
    assert st == 200 and "<HasApiKey>false</HasApiKey>" in body, body
    st, body = gw.ai("UpdateDeployment", {"ModelId": "mv-model", "BaseUrl": gw.upstream.base,
                                          "ApiKey": "mv-provider-key-2"}, key=admin)
    assert st == 200 and "<HasApiKey>true</HasApiKey>" in body, body
    gw.upstream.reset()
    assert chat(gw.client(admin), model="mv-model").choices
    assert gw.upstream.requests()[0]["headers"]["Authorization"] == "Bearer mv-provider-key-2"
    # Metadata services, link-local, this-host and Gatehouse's own address are refused.
    for url in ["http://169.254.169.254/latest", "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/",
                "http://metadata.google.internal/v1", "http://0.0.0.0:8000/v1", f"{gw.server.endpoint}/v1",
                f"http://127.0.0.1:{gw.private_port}/v1", "http://user:pw@127.0.0.1:9/v1"]:
        for action, params in [("CreateDeployment", {"ModelId": "meta-model"}),
                               ("UpdateDeployment", {"ModelId": "mv-model"})]:
            st, body = gw.ai(action, dict(params, BaseUrl=url, ApiKey="k"), key=admin)
            assert st == 400 and "ValidationError" in body, (url, action, body)
    out = subprocess.run([gatehouse_bin(), "model", "add", "cli-meta", "--base-url", "http://169.254.169.254/v1",
                          "--data-dir", gw.server.data_dir]
                         + (["--database-url", gw.server.database_url] if gw.server.database_url else []),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "169.254.169.254" in out.stderr, out.stderr


# --- invocation logs --------------------------------------------------------------------------


def test_invocation_logs_are_sealed_and_readable_only_with_permission(gw):
    c = gw.client(gw.user(allow("*")))
    chat(c, model="logged-model", content="the quick brown marmot")
    list(chat(c, model="logged-model", content="streamed wombat", stream=True))
    chat(c, model="llama-3-8b", content="unlogged platypus")
    reader = gw.user(allow(f"arn:gatehouse:ai:local:{ACCOUNT}:invocation-log/logged-model",
                           action="ai:ReadInvocationLogs"))
    env = dict(os.environ, GATEHOUSE_ACCESS_KEY_ID=reader[0], GATEHOUSE_SECRET_ACCESS_KEY=reader[1])
    deadline = time.time() + 5
    while True:
        out = subprocess.run([gatehouse_bin(), "logs", "read",
                              "logged-model", "--endpoint", gw.server.endpoint, "--format", "json"],
                             capture_output=True, text=True, env=env, timeout=30)
        assert out.returncode == 0, out.stderr
        logs = json.loads(out.stdout)
        if len(logs) >= 2 or time.time() > deadline:
            break
        time.sleep(0.2)
    text = json.dumps(logs)
    assert "marmot" in text and "wombat" in text and "platypus" not in text
    # Another principal (allowed to invoke, not to read logs) is refused: exit 1.
    other = gw.user(allow("*"))
    env = dict(os.environ, GATEHOUSE_ACCESS_KEY_ID=other[0], GATEHOUSE_SECRET_ACCESS_KEY=other[1])
    out = subprocess.run([gatehouse_bin(), "logs", "read", "logged-model",
                          "--endpoint", gw.server.endpoint], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 1 and "not authorized" in out.stderr
    if gw.server.backend == "sqlite":
        con = sqlite3.connect(os.path.join(gw.server.data_dir, "gatehouse.db"))
        dump = "\n".join(con.iterdump())
        assert "marmot" not in dump and PROVIDER_KEY not in dump


# --- fine-tuning ----------------------------------------------------------------------------


def test_fine_tuning_jobs_create_list_get_cancel(gw):
    tuner = gw.client(gw.user(allow("*", action="ai:*FineTuningJob*")))
    outsider = gw.client(gw.user(allow("*", action="ai:InvokeModel")))
    with pytest.raises(openai.PermissionDeniedError):
        outsider.fine_tuning.jobs.create(model="llama-3-8b", training_file="file-abc")
    job = tuner.fine_tuning.jobs.create(model="llama-3-8b", training_file="file-abc")
    assert job.status == "queued"
    assert job.id in [j.id for j in tuner.fine_tuning.jobs.list()]
    assert tuner.fine_tuning.jobs.retrieve(job.id).id == job.id
    with pytest.raises(openai.PermissionDeniedError):
        outsider.fine_tuning.jobs.retrieve(job.id)
    with pytest.raises(openai.PermissionDeniedError):
        outsider.fine_tuning.jobs.cancel(job.id)
    assert tuner.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    with pytest.raises(openai.NotFoundError):
        tuner.fine_tuning.jobs.retrieve("ftjob-nope")
    # Listing shows only the jobs the caller may read: another principal's job stays hidden
    # from one allowed to list but not to get it.
    lister = gw.client(gw.user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ai:ListFineTuningJobs", "Resource": "*"},
        {"Effect": "Allow", "Action": "ai:GetFineTuningJob",
         "Resource": f"arn:gatehouse:ai:local:{ACCOUNT}:fine-tuning-job/ftjob-none"}]}))
    assert job.id not in [j.id for j in lister.fine_tuning.jobs.list()]
    with pytest.raises(openai.PermissionDeniedError):
        lister.fine_tuning.jobs.retrieve(job.id)
    # Pages are cut from the jobs the caller may read: hidden jobs neither fill a page nor
    # tell, through has_more, that there are more.
    second = tuner.fine_tuning.jobs.create(model="llama-3-8b", training_file="file-abc")
    page = lister.fine_tuning.jobs.list(limit=1)
    assert (page.data, page.has_more) == ([], False)
    page = tuner.fine_tuning.jobs.list(limit=1)
    assert [j.id for j in page.data] == [second.id] and page.has_more
    assert job.id in [j.id for j in tuner.fine_tuning.jobs.list(limit=1, after=second.id).data]


# --- CLI --------------------------------------------------------------------------------------


def test_model_cli_adds_lists_and_removes(gw):
    env_key = {"CLI_MODEL_KEY": "cli-provider-key"}
    out = subprocess.run([gatehouse_bin(), "model", "add", "cli-model", "--base-url",
                          gw.upstream.base, "--provider", "ollama", "--api-key-env", "CLI_MODEL_KEY",
                          "--data-dir", gw.server.data_dir]
                         + (["--database-url", gw.server.database_url] if gw.server.database_url else []),
                         capture_output=True, text=True, env=dict(os.environ, **env_key), timeout=60)
    assert out.returncode == 0, out.stderr
    out = gw.server.cli("model", "list", "--format", "json")
    models = {m["model"]: m for m in json.loads(out.stdout)}
    assert models["cli-model"]["provider"] == "ollama" and models["cli-model"]["has_api_key"]
    assert "cli-provider-key" not in out.stdout
    # The running server picks the new deployment up (change notification / poll).
    c = gw.client(gw.user(allow("*")))
    deadline = time.time() + 5
    while True:
        try:
            assert chat(c, model="cli-model").choices
            break
        except openai.NotFoundError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    out = gw.server.cli("model", "remove", "cli-model")
    assert out.returncode == 0, out.stderr
    out = gw.server.cli("model", "remove", "cli-model")
    assert out.returncode == 2 and "cannot be found" in out.stderr


# --- TLS listener -----------------------------------------------------------------------------


def test_tls_listener_sets_secure_transport(make_server, upstream, tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl (to make a test certificate) is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    tls_port = free_port()
    cfg = tmp_path / "gatehouse.toml"
    cfg.write_text(f"""
[[gateway.listeners]]
name = "secure"
listen = "127.0.0.1:{tls_port}"
tls_cert = "{cert}"
tls_key = "{key}"

[[gateway.deployments]]
model = "llama-3-8b"
base_url = "{upstream.base}"
""")
    s = make_server("sqlite", config=str(cfg))
    iam = s.client("iam")
    iam.create_user(UserName="tlsuser")
    iam.put_user_policy(UserName="tlsuser", PolicyName="p", PolicyDocument=json.dumps(
        allow("*", condition={"Bool": {"aws:SecureTransport": "true"}})))
    k = iam.create_access_key(UserName="tlsuser")["AccessKey"]
    api_key = f"{k['AccessKeyId']}:{k['SecretAccessKey']}"
    plain = openai.OpenAI(api_key=api_key, base_url=s.endpoint + "/v1", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        chat(plain)
    secure = openai.OpenAI(api_key=api_key, base_url=f"https://127.0.0.1:{tls_port}/v1", max_retries=0,
                           http_client=httpx.Client(verify=ssl.create_default_context(cafile=str(cert))))
    assert chat(secure).choices
    # Plain HTTP to the TLS port gets no answer in clear text.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_port}/v1/models", timeout=3)


class RecordingProxy:
    """An HTTP proxy double: records each request it gets (line and headers) and answers 502."""

    def __init__(self):
        self.seen = []
        seen = self.seen

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                head = []
                while True:
                    line = self.rfile.readline(65536)
                    if line in (b"", b"\r\n", b"\n"):
                        break
                    head.append(line.decode("latin-1").rstrip("\r\n"))
                seen.append(head)
                self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_an_egress_proxy_in_the_environment_gets_neither_the_prompt_nor_the_provider_key(
        make_server, upstream, tmp_path):
    """HTTP(S)_PROXY / ALL_PROXY in Gatehouse's environment: the gateway still connects to the
    deployment itself. Through a proxy, the proxy would resolve the name (past the connect-time
    address checks, so DNS rebinding reaches metadata or Gatehouse's own listeners again) and
    get the prompt and the provider key."""
    proxy = RecordingProxy()
    try:
        cfg = tmp_path / "gatehouse.toml"
        cfg.write_text(f"""
[[gateway.deployments]]
model = "by-name"
base_url = "http://localhost:{upstream.port}/v1"
api_key_env = "UPSTREAM_KEY"
""")
        env = {"UPSTREAM_KEY": PROVIDER_KEY, "NO_PROXY": "", "no_proxy": ""}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            env[name] = proxy.url
        s = make_server("sqlite", config=str(cfg), extra_env=env)
        iam = s.client("iam")
        iam.create_user(UserName="proxied")
        iam.put_user_policy(UserName="proxied", PolicyName="p", PolicyDocument=json.dumps(allow()))
        k = iam.create_access_key(UserName="proxied")["AccessKey"]
        client = openai.OpenAI(api_key=f"{k['AccessKeyId']}:{k['SecretAccessKey']}",
                               base_url=s.endpoint + "/v1", max_retries=0, timeout=30)
        upstream.reset()
        try:
            answer = chat(client, model="by-name", content="via no proxy").choices[0].message.content
        except openai.APIStatusError as e:
            answer = e
        assert proxy.seen == [], f"the upstream call went through the proxy: {proxy.seen}"
        assert answer.startswith("echo: via no proxy"), answer
        seen = upstream.requests()
        assert len(seen) == 1
        assert {k.lower(): v for k, v in seen[0]["headers"].items()}["authorization"] == f"Bearer {PROVIDER_KEY}"
    finally:
        proxy.close()


# --- budgets across nodes -----------------------------------------------------------------


@pytest.mark.skipif(not postgres_url(), reason="notice: GATEHOUSE_TEST_POSTGRES_URL unset; needs PostgreSQL")
def test_budget_is_global_across_two_nodes_on_one_postgresql(make_server, upstream, tmp_path):
    """Two `gatehouse serve` processes on one PostgreSQL enforce one budget. Each counts in
    memory and shares its counts every 250 ms, so (documented bound) a budget of N admits at
    most N plus what the other node admitted within two sync intervals; requests spaced wider
    than that are admitted exactly N times in total."""
    env = {"GATEHOUSE_MASTER_KEY": os.urandom(32).hex(), "UPSTREAM_KEY": PROVIDER_KEY}
    cfgs = []
    for name in ("a", "b"):
        cfg = str(tmp_path / f"node-{name}.toml")
        write_config(cfg, upstream, free_port(), free_port())
        cfgs.append(cfg)
    a = make_server("postgres", extra_env=env, config=cfgs[0])
    b = make_server("postgres", database_url=a.database_url, extra_env=env, config=cfgs[1])
    gw_a = Gw(a, None, upstream)
    spaced = gw_a.user(allow("*"), name="global-spaced")
    burst = gw_a.user(allow("*"), name="global-burst")
    clients = lambda key: (gw_a.client(key), gw_a.client(key, base=b.endpoint + "/v1"))

    # Spaced wider than the sync lag, alternating nodes: exactly N in total, then both refuse.
    admitted, refused = 0, set()
    for i in range(GLOBAL_RPM + 4):
        node = i % 2
        try:
            chat(clients(spaced)[node])
            admitted += 1
        except openai.RateLimitError as e:
            assert int(e.response.headers["retry-after"]) >= 1
            refused.add(node)
        time.sleep(SYNC_LAG)
    assert admitted == GLOBAL_RPM
    assert refused == {0, 1}

    # Both nodes at once, each paced at 5 requests/s: the total stays within the bound.
    ca, cb = clients(burst)

    def hammer(client, n=GLOBAL_RPM, every=0.2):
        start, ok = time.monotonic(), []
        for i in range(n):
            time.sleep(max(0.0, start + i * every - time.monotonic()))
            t = time.monotonic()
            try:
                chat(client)
                ok.append(t)
            except openai.RateLimitError:
                pass
        return ok

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        got_a, got_b = pool.map(hammer, (ca, cb))
    total = len(got_a) + len(got_b)

    def most_within(times, span=SYNC_LAG):
        return max((sum(1 for u in times if t <= u < t + span) for t in times), default=0)

    bound = GLOBAL_RPM + max(most_within(got_a), most_within(got_b))
    assert GLOBAL_RPM <= total <= bound, (len(got_a), len(got_b), bound)
    # Per-node counting would have admitted N on each node.
    assert total < 2 * GLOBAL_RPM
