"""Attacks on the MCP gateway's `/mcp/NAME`, each against a real `gatehouse serve` (SQLite
and PostgreSQL) in front of the `mcp` SDK upstream of test_mcp.py: forged, revoked and
expired session tokens; tools conditioned on MFA and on the listener; case, encoding and
path tricks on the server and tool names; duplicate JSON keys; oversized bodies; slow
clients. Every refusal is checked against the upstream's own log of executed calls.
"""

import json
import os
import socket
import time

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from conftest import ROOT_KEY_ID, ROOT_SECRET, Servers, backends, free_port, unique
from test_mcp import (UPSTREAM_TOKEN, HttpUpstream, audit_records, call, cli, eventually, list_names,
                      make_agent, raw_post, text)
from test_mfa import enable, new_device

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
ALL_TOOLS = ["lookup", "purge", "refund"]


class Env:
    def __init__(self, server, up, private_port):
        self.server = server
        self.up = up
        self.url = f"{server.endpoint}/mcp/docs"
        self.private_url = f"http://127.0.0.1:{private_port}/mcp/docs"
        self.iam = server.client("iam")


def write_config(path, private_port):
    with open(path, "w") as f:
        f.write(f"""
[gateway]
header_read_timeout_secs = 2
body_read_timeout_secs = 2

[[gateway.listeners]]
name = "private"
listen = "127.0.0.1:{private_port}"
""")


def register_docs(server, up):
    r = cli(server, "mcp", "add", "docs", "--url", up.url, "--header-env", "Authorization=T",
            env={"T": UPSTREAM_TOKEN})
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module", params=backends())
def env(request, tmp_path_factory):
    servers = Servers(tmp_path_factory)
    tmp = str(tmp_path_factory.mktemp("mcp-attacks"))
    private_port = free_port()
    cfg = os.path.join(tmp, "gatehouse.toml")
    write_config(cfg, private_port)
    server = servers.make(request.param, config=cfg)
    up = HttpUpstream(tmp)
    register_docs(server, up)
    yield Env(server, up, private_port)
    up.stop()
    servers.close()


def rpc_call(tool, args, id=1):
    return {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}}


def account_of(iam, user):
    return iam.get_user(UserName=user)["User"]["Arn"].split(":")[4]


def role_session(env, statements, role=None):
    """A role whose policy is `statements`, assumed by a fresh user: (role name, the STS
    credentials)."""
    user = unique("assumer")
    key = make_agent(env.server, env.iam, user, [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}])
    account = account_of(env.iam, user)
    role = role or unique("mcp-role")
    env.iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:gatehouse:iam::{account}:root"},
            "Action": "sts:AssumeRole"}]}))
    env.iam.put_role_policy(RoleName=role, PolicyName="mcp", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    ak, secret = key.split(":", 1)
    creds = env.server.client("sts", ak, secret).assume_role(
        RoleArn=f"arn:gatehouse:iam::{account}:role/{role}", RoleSessionName="agent")["Credentials"]
    return role, creds


EVERYTHING_ON_DOCS = [
    {"Effect": "Allow", "Action": "mcp:*", "Resource": ["arn:gatehouse:mcp:*:*:server/docs",
                                                         "arn:gatehouse:mcp:*:*:tool/docs/*"]},
]


def test_forged_and_revoked_session_tokens_reach_nothing(env):
    role, creds = role_session(env, EVERYTHING_ON_DOCS)
    token = creds["SessionToken"]
    assert eventually(lambda: list_names(env.url, token), ALL_TOOLS) == ALL_TOOLS
    before = len(env.up.calls())
    assert not call(env.url, token, "lookup", {"doc_id": "s-1"}).is_error
    assert len(env.up.calls()) == before + 1

    forged = [token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
              token[:20], token + "x", creds["AccessKeyId"] + ":" + creds["SecretAccessKey"]]
    before = len(env.up.calls())
    for bad in forged:
        r = raw_post(env.url, bad, rpc_call("purge", {}))
        assert r.status_code == 401, (bad[:12], r.status_code, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["error"]["code"] == -32001
    assert len(env.up.calls()) == before

    time.sleep(1.1)  # aws:TokenIssueTime has millisecond precision; revoke strictly after
    out = env.server.cli("admin", "revoke-sessions", "--role", role)
    assert out.returncode == 0, out.stderr

    def refused():
        r = raw_post(env.url, token, rpc_call("purge", {}))
        if r.status_code == 401:
            return True
        body = r.json()
        return "error" in body or body["result"].get("isError") is True
    assert eventually(refused, True) is True
    before = len(env.up.calls())
    for tool in ALL_TOOLS:
        r = raw_post(env.url, token, rpc_call(tool, {"doc_id": "x", "order": "o", "amount": 1}))
        body = r.json()
        assert r.status_code == 401 or "error" in body or body["result"]["isError"], r.text
    r = raw_post(env.url, token, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert r.status_code == 401 or "error" in r.json() or r.json()["result"]["tools"] == [], r.text
    assert len(env.up.calls()) == before


def test_destructive_tools_need_mfa(env):
    user = unique("mfa-agent")
    key = make_agent(env.server, env.iam, user, [
        {"Effect": "Allow", "Action": "sts:GetSessionToken", "Resource": "*"},
        {"Effect": "Allow", "Action": ["mcp:ListTools", "mcp:CallTool"],
         "Resource": ["arn:gatehouse:mcp:*:*:server/docs", "arn:gatehouse:mcp:*:*:tool/docs/*"]},
        {"Sid": "NoDestructiveWithoutMfa", "Effect": "Deny", "Action": "mcp:CallTool", "Resource": "*",
         "Condition": {"StringEquals": {"mcp:ToolAnnotation/destructiveHint": "true"},
                       "BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}},
    ])
    serial, totp = new_device(env.iam, unique("phone"))
    t = enable(env.iam, user, serial, totp)
    ak, secret = key.split(":", 1)
    sts = env.server.client("sts", ak, secret)
    plain = sts.get_session_token()["Credentials"]["SessionToken"]
    mfa = sts.get_session_token(SerialNumber=serial, TokenCode=totp.at(t + 30))["Credentials"]["SessionToken"]

    before = len(env.up.calls())
    for bearer in [key, plain]:
        assert eventually(lambda: list_names(env.url, bearer), ["lookup"]) == ["lookup"]
        r = call(env.url, bearer, "purge", {})
        assert r.is_error and "denied by Gatehouse" in text(r)
        assert not call(env.url, bearer, "lookup", {"doc_id": "m"}).is_error
    assert [c["tool"] for c in env.up.calls()[before:]] == ["lookup", "lookup"]
    assert list_names(env.url, mfa) == ALL_TOOLS
    r = call(env.url, mfa, "refund", {"order": "o-mfa", "amount": 1})
    assert not r.is_error, text(r)
    assert env.up.calls()[-1]["args"]["order"] == "o-mfa"
    recs = audit_records(env.server, lambda r: r.get("action") == "mcp:CallTool"
                         and r["principal"].endswith(f"user/{user}") and r["decision"] == "ExplicitDeny")
    assert recs and all("NoDestructiveWithoutMfa" in (r["statement"] or "") for r in recs)


def test_a_role_bound_to_the_private_listener(env):
    _, creds = role_session(env, [
        {"Effect": "Allow", "Action": "mcp:*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceVpce": "private"}}},
    ])
    token = creds["SessionToken"]
    assert eventually(lambda: list_names(env.private_url, token), ALL_TOOLS) == ALL_TOOLS
    before = len(env.up.calls())
    with pytest.raises(MCPError) as e:
        list_names(env.url, token)
    assert "denied by Gatehouse" in str(e.value)
    r = call(env.url, token, "lookup", {"doc_id": "pub"})
    assert r.is_error and "denied by Gatehouse" in text(r)
    assert len(env.up.calls()) == before
    assert not call(env.private_url, token, "lookup", {"doc_id": "priv"}).is_error
    assert env.up.calls()[-1]["args"] == {"doc_id": "priv"}


def test_name_tricks_do_not_escape_a_deny(env):
    """Everything allowed except the server docs: no spelling of its name or of a tool's
    reaches it, and what the JSON says twice is decided as forwarded."""
    key = make_agent(env.server, env.iam, unique("tricks"), [
        {"Effect": "Allow", "Action": "mcp:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "mcp:*", "Resource": ["arn:gatehouse:mcp:*:*:server/docs",
                                                           "arn:gatehouse:mcp:*:*:tool/docs/*"]},
    ])
    before = len(env.up.calls())
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for path in ["docs", "%64ocs", "docs/", "/docs", "./docs", "docs%2f", "docs;x", "DOCS", "docs%20",
                 "docs%09", "docs%00", "%2e%2e/mcp/docs", "docs/.", "d%C3%B6cs", "docs?x=1"]:
        r = httpx.post(f"{env.server.endpoint}/mcp/{path}", content=json.dumps(listing),
                       headers={"authorization": f"Bearer {key}", "content-type": "application/json",
                                "accept": "application/json, text/event-stream"}, timeout=30)
        assert r.status_code in (404, 200), (path, r.status_code, r.text)
        body = r.json()
        assert "error" in body, (path, r.text)
        if r.status_code == 200:
            assert "denied by Gatehouse" in body["error"]["message"], (path, r.text)
    raw = [
        # The same tool in JSON escapes.
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\\u0070urge","arguments":{}}}',
        # A name given twice: decided and forwarded as one.
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup","name":"purge","arguments":{}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"purge","name":"lookup","arguments":{"doc_id":"secret"}}}',
        # An argument given twice.
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup","arguments":{"doc_id":"public","doc_id":"secret"}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup","arguments":{"doc_id":"secret","doc_id":"public"}}}',
    ]
    for body in raw:
        for headers in [{}, {"mcp-method": "tools/call", "mcp-name": "lookup"}]:
            payload = raw_post(env.url, key, body, headers).json()
            assert "error" in payload or payload["result"]["isError"], body
            if "result" in payload:
                assert "denied by Gatehouse" in text_of(payload), body
    assert len(env.up.calls()) == before


def text_of(payload):
    return " ".join(c.get("text", "") for c in payload["result"]["content"])


def test_duplicate_keys_are_decided_as_forwarded(env):
    """lookup is allowed only for doc_id "public": whatever a duplicate key says, the
    upstream executes exactly what was decided."""
    key = make_agent(env.server, env.iam, unique("dups"), [
        {"Effect": "Allow", "Action": "mcp:ListTools", "Resource": "*"},
        {"Effect": "Allow", "Action": "mcp:CallTool", "Resource": "arn:gatehouse:mcp:*:*:tool/docs/lookup",
         "Condition": {"StringEquals": {"mcp:Argument/doc_id": "public"}}},
    ])
    assert eventually(lambda: list_names(env.url, key), ["lookup"]) == ["lookup"]
    bodies = [
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup","arguments":{"doc_id":"public","doc_id":"secret"}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup","arguments":{"doc_id":"secret","doc_id":"public"}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"purge","name":"lookup","arguments":{"doc_id":"public"}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup","name":"purge","arguments":{"doc_id":"public"}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\\u006cookup","arguments":{"doc_id":"\\u0073ecret"}}}',
    ]
    for body in bodies:
        before = len(env.up.calls())
        r = raw_post(env.url, key, body, {"mcp-method": "tools/call", "mcp-name": "lookup"})
        payload = r.json()
        executed = env.up.calls()[before:]
        allowed = "result" in payload and not payload["result"].get("isError")
        if allowed:
            assert [(c["tool"], c["args"]) for c in executed] == [("lookup", {"doc_id": "public"})], body
        else:
            assert executed == [], body


def test_oversized_bodies_are_refused_unread(env):
    root = f"{ROOT_KEY_ID}:{ROOT_SECRET}"
    before = len(env.up.calls())
    huge = json.dumps(rpc_call("lookup", {"doc_id": "x" * (4 << 20)}))
    # No credentials: refused before the body is read.
    started = time.monotonic()
    r = raw_post(env.url, None, huge)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    # Credentials, a body over 1 MiB without a length (chunked): 413.

    def chunks():
        piece = b"x" * 65536
        yield b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup","arguments":{"doc_id":"'
        for _ in range(40):
            yield piece
        yield b'"}}}'
    r = httpx.post(env.url, content=chunks(), headers={
        "authorization": f"Bearer {root}", "content-type": "application/json",
        "accept": "application/json, text/event-stream"}, timeout=30)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == -32600
    # A declared length over the limit: 413 without waiting for the bytes.
    with socket.create_connection(("127.0.0.1", env.server.port), timeout=10) as s:
        s.sendall((f"POST /mcp/docs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {root}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {8 << 20}\r\n\r\n").encode())
        s.sendall(b"{" * 1024)
        head = s.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
    assert time.monotonic() - started < 20
    assert len(env.up.calls()) == before


def read_response(s, timeout):
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            got = s.recv(4096)
            if not got:
                break
            data += got
    except socket.timeout:
        pass
    return data.decode("latin-1")


def test_slow_clients_are_cut_off(env):
    """A client that stops sending its body is answered 408 (a JSON-RPC error, audited)
    once the body timeout (2 s here) passes; one that stops in its head is cut off."""
    root = f"{ROOT_KEY_ID}:{ROOT_SECRET}"
    before = len(env.up.calls())
    body = json.dumps(rpc_call("lookup", {"doc_id": "slow"})).encode()
    with socket.create_connection(("127.0.0.1", env.server.port), timeout=10) as s:
        s.sendall((f"POST /mcp/docs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {root}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode())
        s.sendall(body[:10])
        started = time.monotonic()
        head = read_response(s, 15)
        waited = time.monotonic() - started
    assert head.startswith("HTTP/1.1 408"), head
    assert 1.5 < waited < 10, waited
    with socket.create_connection(("127.0.0.1", env.server.port), timeout=10) as s:
        s.sendall(f"POST /mcp/docs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {root}\r\n".encode())
        started = time.monotonic()
        head = read_response(s, 15)
        waited = time.monotonic() - started
    assert waited < 10 and not head.startswith("HTTP/1.1 200"), head
    assert len(env.up.calls()) == before
    assert audit_records(env.server, lambda r: (r.get("mcp") or {}).get("server") == "docs"
                         and r.get("error_code") == "body_timeout")


def test_an_expired_session_token_is_refused(make_server, tmp_path):
    """The server restarted 16 minutes in the future (libfaketime): the 15-minute session
    token it issued is expired, as a Bearer token on /mcp too."""
    server = make_server("sqlite")
    up = HttpUpstream(str(tmp_path))
    try:
        register_docs(server, up)
        iam = server.client("iam")
        user = unique("short")
        key = make_agent(server, iam, user, [
            {"Effect": "Allow", "Action": "sts:GetSessionToken", "Resource": "*"},
            {"Effect": "Allow", "Action": "mcp:*", "Resource": "*"},
        ])
        ak, secret = key.split(":", 1)
        token = server.client("sts", ak, secret).get_session_token(DurationSeconds=900)["Credentials"]["SessionToken"]
        assert eventually(lambda: list_names(server.endpoint + "/mcp/docs", token), ALL_TOOLS) == ALL_TOOLS
        server.stop()
        server.extra_env.update({"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "+16m", "FAKETIME_DONT_RESET": "1"})
        server.start()
        before = len(up.calls())
        r = raw_post(server.endpoint + "/mcp/docs", token, rpc_call("lookup", {"doc_id": "late"}))
        assert r.status_code == 401, r.text
        assert "expired" in r.json()["error"]["message"].lower(), r.text
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert len(up.calls()) == before
        # The long-term key still works at that time.
        assert not call(server.endpoint + "/mcp/docs", key, "lookup", {"doc_id": "k"}).is_error
    finally:
        up.stop()
