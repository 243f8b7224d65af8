"""The MCP gateway end to end: the official MCP Python SDK (`mcp`) as the agent, through a
real `gatehouse serve` (SQLite and PostgreSQL), to real upstream MCP servers — an `mcp` SDK
server over streamable HTTP on loopback (mcp_upstream.py) and the npm
`@modelcontextprotocol/server-filesystem` over stdio, started by Gatehouse. Users,
policies and keys are made with boto3; servers are registered with `gatehouse mcp add`.
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from conftest import ROOT_KEY_ID, ROOT_SECRET, Servers, backends, free_port, gatehouse_bin, unique

HERE = os.path.dirname(os.path.abspath(__file__))
FS_SERVER = os.path.join(HERE, "mcp", "node_modules", "@modelcontextprotocol", "server-filesystem",
                         "dist", "index.js")
UPSTREAM_TOKEN = "Bearer upstream-secret-token-0123"


class HttpUpstream:
    """mcp_upstream.py on a loopback port; every executed tool call lands in `calls`."""

    def __init__(self, tmp, variant="1", port=None):
        self.port = port or free_port()
        self.log = os.path.join(tmp, f"calls-{self.port}.jsonl")
        self.variant = variant
        self.proc = None
        self.start()

    def start(self, variant=None):
        self.variant = variant or self.variant
        env = {**os.environ, "UPSTREAM_EXPECTED_AUTH": UPSTREAM_TOKEN}
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "mcp_upstream.py"), str(self.port), self.log,
             "--variant", self.variant],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("upstream MCP server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/mcp"

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(l) for l in f if l.strip()]


async def _session(url, bearer, fn):
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {bearer}"}) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as s:
                await s.initialize()
                return await fn(s)


def agent(url, bearer, fn):
    """Runs `fn(session)` in an initialized MCP client session through Gatehouse; an error
    raised inside the SDK's task groups is raised as itself."""
    try:
        return asyncio.run(_session(url, bearer, fn))
    except BaseExceptionGroup as group:
        leaf = group
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        raise leaf from None


def list_names(url, bearer):
    async def go(s):
        return sorted(t.name for t in (await s.list_tools()).tools)
    return agent(url, bearer, go)


def eventually(fn, want, timeout=10):
    """`fn()` until it returns `want`: a change made with the CLI reaches the server with
    the store generation (NOTIFY on PostgreSQL, a poll on SQLite)."""
    deadline = time.time() + timeout
    while True:
        try:
            got = fn()
        except MCPError as e:
            got = e
        if (want(got) if callable(want) else got == want) or time.time() > deadline:
            return got
        time.sleep(0.2)


def call(url, bearer, tool, args):
    async def go(s):
        return await s.call_tool(tool, args)
    return agent(url, bearer, go)


def text(result):
    return " ".join(c.text for c in result.content if getattr(c, "text", None))


def make_agent(server, iam, name, statements):
    """A user with `statements` as its inline policy; returns its Bearer credential."""
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="mcp",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return f"{key['AccessKeyId']}:{key['SecretAccessKey']}"


def audit_records(server, pred, timeout=5):
    deadline = time.time() + timeout
    while True:
        out = server.cli("audit", "tail", "-n", "500", "--format", "json")
        recs = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
        hits = [r for r in recs if pred(r)]
        if hits or time.time() > deadline:
            return hits
        time.sleep(0.1)


def raw_post(url, bearer, body, headers=None):
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if bearer:
        h["authorization"] = f"Bearer {bearer}"
    h.update(headers or {})
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(url, content=data, headers=h, timeout=30)


def cli(server, *args, env=None):
    """The `gatehouse` binary on this server's store, with `env` added to the environment."""
    cmd = [gatehouse_bin(), *args, "--data-dir", server.data_dir]
    if server.database_url:
        cmd += ["--database-url", server.database_url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **server.extra_env, **(env or {})})


@pytest.fixture(scope="module", params=backends())
def mcp_env(request, tmp_path_factory):
    """One Gatehouse per backend for the module."""
    servers = Servers(tmp_path_factory)
    server = servers.make(request.param)
    yield server
    servers.close()


@pytest.fixture(scope="module")
def docs(mcp_env, tmp_path_factory):
    """The HTTP upstream registered as `docs`, its token from an environment variable."""
    up = HttpUpstream(str(tmp_path_factory.mktemp("mcp")))
    r = cli(mcp_env, "mcp", "add", "docs", "--url", up.url, "--header-env", "Authorization=DOCS_TOKEN",
            env={"DOCS_TOKEN": UPSTREAM_TOKEN})
    assert r.returncode == 0, r.stderr
    yield mcp_env, up, f"{mcp_env.endpoint}/mcp/docs"
    up.stop()


def policy_for_docs():
    return [
        {"Sid": "List", "Effect": "Allow", "Action": "mcp:ListTools", "Resource": "arn:gatehouse:mcp:*:*:server/docs"},
        {"Sid": "ReadOnly", "Effect": "Allow", "Action": "mcp:CallTool", "Resource": "arn:gatehouse:mcp:*:*:tool/docs/*",
         "Condition": {"StringEquals": {"mcp:ToolAnnotation/readOnlyHint": "true"}}},
        {"Sid": "SmallRefunds", "Effect": "Allow", "Action": "mcp:CallTool",
         "Resource": "arn:gatehouse:mcp:*:*:tool/docs/refund",
         "Condition": {"NumericLessThanEquals": {"mcp:Argument/amount": "100"}}},
    ]


def test_calls_are_decided_by_tool_argument_and_annotation(docs):
    server, up, url = docs
    iam = server.client("iam")
    bearer = make_agent(server, iam, unique("agent"), policy_for_docs())

    # Listing shows exactly what may be called for some arguments: refund (amount-bound)
    # yes, purge (destructive, nothing grants it) no.
    assert eventually(lambda: list_names(url, bearer), ["lookup", "refund"]) == ["lookup", "refund"]

    before = len(up.calls())
    r = call(url, bearer, "lookup", {"doc_id": "d-1"})
    assert not r.is_error and "document d-1" in text(r)
    r = call(url, bearer, "refund", {"order": "o-1", "amount": 40})
    assert not r.is_error and "refunded 40" in text(r)
    executed = up.calls()[before:]
    assert [c["tool"] for c in executed] == ["lookup", "refund"]
    # The upstream saw the operator's sealed token, never the caller's credential.
    assert all(c["authorization"] == UPSTREAM_TOKEN for c in executed)

    # Refused by argument and by annotation: an MCP tool error, nothing executed.
    for tool, args in [("refund", {"order": "o-2", "amount": 500}), ("purge", {})]:
        r = call(url, bearer, tool, args)
        assert r.is_error, tool
        assert "denied by Gatehouse" in text(r)
        assert "Encoded authorization failure message: " in text(r)
    assert len(up.calls()) == before + 2

    # The encoded message opens with the store, and names the action and the tool.
    encoded = text(call(url, bearer, "purge", {})).rsplit(": ", 1)[1].strip()
    out = cli(server, "decode-authorization-message", encoded)
    assert out.returncode == 0, out.stderr
    decoded = json.loads(out.stdout)
    assert decoded["context"]["action"] == "mcp:CallTool"
    assert decoded["context"]["resource"].endswith(":tool/docs/purge")

    # One audit record per request, with the argument digest and no argument values.
    recs = audit_records(server, lambda r: r.get("action") == "mcp:CallTool"
                         and r.get("resource", "").endswith("tool/docs/refund"))
    assert {r["decision"] for r in recs} >= {"Allow", "ImplicitDeny"}
    assert all(len(r["mcp"]["arguments_sha256"]) == 64 for r in recs)
    assert not any("o-2" in json.dumps(r) for r in recs)
    denied = [r for r in recs if r["decision"] == "ImplicitDeny"]
    assert denied and all(r["mcp"]["upstream"] is None for r in denied)
    allowed = [r for r in recs if r["decision"] == "Allow"]
    assert allowed and allowed[0]["mcp"]["upstream"] == "ok"


def test_listing_needs_list_tools_and_unauthenticated_is_401(docs):
    server, up, url = docs
    iam = server.client("iam")
    no_list = make_agent(server, iam, unique("nolist"), policy_for_docs()[1:])
    with pytest.raises(MCPError) as e:
        list_names(url, no_list)
    assert "denied by Gatehouse" in str(e.value)

    for bearer in [None, "AKIAFORGED0000000000:not-the-secret", "not-a-token", ROOT_KEY_ID + ":wrong"]:
        r = raw_post(url, bearer, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert r.status_code == 401, (bearer, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["error"]["code"] == -32001


def test_bad_input_gets_json_rpc_errors_and_nothing_is_forwarded(docs):
    server, up, url = docs
    root = f"{ROOT_KEY_ID}:{ROOT_SECRET}"
    before = len(up.calls())
    cases = [
        (b"{not json", 400, -32700),
        (json.dumps([{"jsonrpc": "2.0", "id": i, "method": "tools/call",
                      "params": {"name": "purge", "arguments": {}}} for i in range(50)]), 400, -32600),
        ({"jsonrpc": "2.0", "id": 1}, 400, -32600),
        ({"jsonrpc": "1.0", "id": 1, "method": "tools/list"}, 400, -32600),
        ({"jsonrpc": "2.0", "id": 1, "method": "resources/list"}, 200, -32601),
        ({"jsonrpc": "2.0", "id": 1, "method": "sampling/createMessage"}, 200, -32601),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"arguments": {}}}, 200, -32602),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "lookup", "arguments": [1]}}, 200, -32602),
    ]
    # Tool names with path and case tricks: refused before any decision.
    for name in ["../purge", "lookup/../purge", "purge%00", "look up", "lookup\u200b", "ｐｕｒｇｅ", ""]:
        cases.append(({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                       "params": {"name": name, "arguments": {}}}, 200, -32602))
    # Names that are well formed but not the upstream's: unknown.
    for name in ["PURGE", "Lookup", ".."]:
        cases.append(({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                       "params": {"name": name, "arguments": {}}}, 200, -32602))
    # Arguments a policy could not see whole.
    deep = "x"
    for _ in range(12):
        deep = {"a": deep}
    for args in [{"doc_id": "1", "DOC_ID": "2"}, {"doc_id": deep}, {"doc_id": list(range(2000))}]:
        cases.append(({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                       "params": {"name": "lookup", "arguments": args}}, 200, -32602))
    for body, status, code in cases:
        r = raw_post(url, root, body)
        assert r.status_code == status, (body, r.status_code, r.text)
        assert r.json()["error"]["code"] == code, (body, r.text)
    # A body over 1 MiB: 413, unread past the limit.
    huge = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "lookup", "arguments": {"doc_id": "x" * (2 << 20)}}}
    r = raw_post(url, root, huge)
    assert r.status_code == 413
    # Server names with case and encoding tricks: no such server.
    for path in ["DOCS", "docs%2F..", "docs%00", "Docs", "..%2Fdocs", "docs/tools"]:
        r = raw_post(f"{server.endpoint}/mcp/{path}", root, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert r.status_code == 404, (path, r.text)
    # A notification is accepted and not forwarded; GET offers no stream.
    assert raw_post(url, root, {"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
    assert httpx.get(url, headers={"authorization": f"Bearer {root}"}).status_code == 405
    assert len(up.calls()) == before


def test_changed_definition_is_blocked_until_approved(mcp_env, tmp_path):
    server = mcp_env
    up = HttpUpstream(str(tmp_path))
    try:
        r = cli(server, "mcp", "add", "pinned", "--url", up.url, "--header-env", "Authorization=T",
                env={"T": UPSTREAM_TOKEN})
        assert r.returncode == 0, r.stderr
        url = f"{server.endpoint}/mcp/pinned"
        root = f"{ROOT_KEY_ID}:{ROOT_SECRET}"
        want = ["lookup", "purge", "refund"]
        assert eventually(lambda: list_names(url, root), want) == want
        pins = {s["name"]: s for s in json.loads(cli(server, "mcp", "list", "--format", "json").stdout)}
        assert {t["state"] for t in pins["pinned"]["tools"]} == {"pinned"}

        # The upstream changes lookup's description (same port: Gatehouse's session is gone).
        up.stop()
        up.start(variant="2")
        assert list_names(url, root) == ["purge", "refund"]
        before = len(up.calls())
        r = raw_post(url, root, {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                                 "params": {"name": "lookup", "arguments": {"doc_id": "x"}}})
        assert r.json()["error"]["code"] == -32602
        assert "approval" in r.json()["error"]["message"]
        assert len(up.calls()) == before
        listed = {s["name"]: s for s in json.loads(cli(server, "mcp", "list", "--format", "json").stdout)}
        lookup = next(t for t in listed["pinned"]["tools"] if t["name"] == "lookup")
        assert lookup["state"] == "changed" and lookup["changed"] == ["description"]
        assert "id_rsa" in lookup["pending_definition"]["description"]
        text_out = cli(server, "mcp", "list").stdout
        assert "pinned/lookup  changed  changed: description" in text_out

        r = cli(server, "mcp", "approve", "pinned", "--tool", "lookup")
        assert r.returncode == 0 and "approved pinned/lookup" in r.stdout, r.stderr
        assert eventually(lambda: list_names(url, root), want) == want
        assert not call(url, root, "lookup", {"doc_id": "y"}).is_error

        # Upstream down: a clear error, and the record says so.
        up.stop()
        r = raw_post(url, root, {"jsonrpc": "2.0", "id": 10, "method": "tools/list"})
        err = r.json()["error"]
        assert err["code"] == -32010 and "unavailable" in err["message"], r.text
        assert audit_records(server, lambda x: (x.get("mcp") or {}).get("upstream") == "unavailable")
    finally:
        up.stop()


def test_add_pins_at_once_so_a_change_before_first_use_is_blocked(mcp_env, tmp_path):
    """A server is pinned by `mcp add`, not trusted on first contact: a definition that
    changes between registration and the first client is a change to approve."""
    server = mcp_env
    up = HttpUpstream(str(tmp_path))
    try:
        name = unique("early").replace("_", "-")
        r = cli(server, "mcp", "add", name, "--url", up.url, "--header-env", "Authorization=T",
                env={"T": UPSTREAM_TOKEN})
        assert r.returncode == 0, r.stderr
        assert "pinned 3 tools: lookup, purge, refund" in r.stdout, r.stdout
        # Pinned before any MCP request reached Gatehouse.
        listed = {s["name"]: s for s in json.loads(cli(server, "mcp", "list", "--format", "json").stdout)}
        assert listed[name]["pinned"]
        assert {t["name"]: t["state"] for t in listed[name]["tools"]} == \
            {"lookup": "pinned", "purge": "pinned", "refund": "pinned"}

        # The rug pull happens before the first client connects.
        up.stop()
        up.start(variant="2")
        url = f"{server.endpoint}/mcp/{name}"
        root = f"{ROOT_KEY_ID}:{ROOT_SECRET}"
        assert eventually(lambda: list_names(url, root), ["purge", "refund"]) == ["purge", "refund"]
        before = len(up.calls())
        r = raw_post(url, root, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                 "params": {"name": "lookup", "arguments": {"doc_id": "x"}}})
        assert r.json()["error"]["code"] == -32602 and "approval" in r.json()["error"]["message"], r.text
        assert len(up.calls()) == before
        r = cli(server, "mcp", "approve", name, "--tool", "lookup")
        assert r.returncode == 0 and f"approved {name}/lookup" in r.stdout, r.stderr
        want = ["lookup", "purge", "refund"]
        assert eventually(lambda: list_names(url, root), want) == want
    finally:
        up.stop()


def test_add_with_an_unreachable_upstream_fails_and_stores_nothing(mcp_env):
    server = mcp_env
    name = unique("down").replace("_", "-")
    r = cli(server, "mcp", "add", name, "--url", f"http://127.0.0.1:{free_port()}/mcp")
    assert r.returncode != 0
    assert "cannot be listed to pin them" in r.stderr and "not added" in r.stderr, r.stderr
    listed = json.loads(cli(server, "mcp", "list", "--format", "json").stdout)
    assert name not in {s["name"] for s in listed}
    r = cli(server, "mcp", "add", name, "--command", "/nonexistent/mcp-server")
    assert r.returncode != 0 and "not added" in r.stderr, r.stderr
    listed = json.loads(cli(server, "mcp", "list", "--format", "json").stdout)
    assert name not in {s["name"] for s in listed}


def test_refusals_are_decided_on_the_pin_without_asking_the_upstream(mcp_env, tmp_path):
    """With the upstream down, a refused call is still "denied by Gatehouse" (decided on the
    stored pin, the upstream never asked), and a caller who may call nothing gets an empty
    listing; only what is allowed meets the unavailable upstream."""
    server = mcp_env
    up = HttpUpstream(str(tmp_path))
    name = unique("pinonly").replace("_", "-")
    try:
        r = cli(server, "mcp", "add", name, "--url", up.url, "--header-env", "Authorization=T",
                env={"T": UPSTREAM_TOKEN})
        assert r.returncode == 0, r.stderr
        url = f"{server.endpoint}/mcp/{name}"
        iam = server.client("iam")
        reader = make_agent(server, iam, unique("reader"), [
            {"Effect": "Allow", "Action": "mcp:ListTools", "Resource": "*"},
            {"Effect": "Allow", "Action": "mcp:CallTool", "Resource": f"arn:gatehouse:mcp:*:*:tool/{name}/*",
             "Condition": {"StringEquals": {"mcp:ToolAnnotation/readOnlyHint": "true"}}},
        ])
        lister = make_agent(server, iam, unique("lister"), [
            {"Effect": "Allow", "Action": "mcp:ListTools", "Resource": "*"},
        ])
        assert eventually(lambda: list_names(url, reader), ["lookup"]) == ["lookup"]
        up.stop()
        r = call(url, reader, "purge", {})
        assert r.is_error and "denied by Gatehouse" in text(r), text(r)
        assert list_names(url, lister) == []
        r = raw_post(url, reader, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                   "params": {"name": "lookup", "arguments": {"doc_id": "x"}}})
        assert r.json()["error"]["code"] == -32010, r.text
    finally:
        up.stop()


def test_servers_from_the_config_file(make_server, tmp_path):
    """[[gateway.mcp_servers]]: registered and pinned at start, the header value read from
    the environment variable the file names; a server whose upstream is not up yet is
    pinned on first contact; a variable that is not set stops the start."""
    up = HttpUpstream(str(tmp_path))
    later_port = free_port()
    later = None
    cfg = tmp_path / "gatehouse.toml"
    cfg.write_text(f"""
[[gateway.mcp_servers]]
name = "cfgdocs"
url = "{up.url}"
header_env = {{ Authorization = "CFG_DOCS_TOKEN" }}

[[gateway.mcp_servers]]
name = "later"
url = "http://127.0.0.1:{later_port}/mcp"
header_env = {{ Authorization = "CFG_DOCS_TOKEN" }}
""")
    try:
        server = make_server("sqlite", config=str(cfg), extra_env={"CFG_DOCS_TOKEN": UPSTREAM_TOKEN})
        listed = {s["name"]: s for s in json.loads(cli(server, "mcp", "list", "--format", "json").stdout)}
        assert listed["cfgdocs"]["pinned"] and listed["cfgdocs"]["headers"] == ["Authorization"]
        assert {t["name"] for t in listed["cfgdocs"]["tools"]} == {"lookup", "purge", "refund"}
        assert listed["later"]["pinned"] is None and listed["later"]["tools"] == []
        root = f"{ROOT_KEY_ID}:{ROOT_SECRET}"
        assert list_names(f"{server.endpoint}/mcp/cfgdocs", root) == ["lookup", "purge", "refund"]
        r = call(f"{server.endpoint}/mcp/cfgdocs", root, "lookup", {"doc_id": "cfg"})
        assert not r.is_error and up.calls()[-1]["authorization"] == UPSTREAM_TOKEN

        later = HttpUpstream(str(tmp_path), port=later_port)
        assert list_names(f"{server.endpoint}/mcp/later", root) == ["lookup", "purge", "refund"]
        listed = {s["name"]: s for s in json.loads(cli(server, "mcp", "list", "--format", "json").stdout)}
        assert listed["later"]["pinned"]

        # Restarted with the same file: nothing changes, pins are kept.
        server.stop()
        server.start()
        again = {s["name"]: s for s in json.loads(cli(server, "mcp", "list", "--format", "json").stdout)}
        assert [t["digest"] for t in again["cfgdocs"]["tools"]] == [t["digest"] for t in listed["cfgdocs"]["tools"]]

        server.stop()
        server.extra_env.pop("CFG_DOCS_TOKEN")
        with pytest.raises(RuntimeError) as e:
            server.start()
        assert "environment variable CFG_DOCS_TOKEN is not set" in str(e.value)
    finally:
        up.stop()
        if later:
            later.stop()


def test_stdio_filesystem_server(gatehouse, tmp_path):
    """server-filesystem over stdio, started by Gatehouse: reads allowed, writes only
    under public/; a refused write never happens; the program killed is started again."""
    assert os.path.exists(FS_SERVER), "run npm ci in crates/server/tests/e2e/mcp"
    root = tmp_path / "files"
    (root / "public").mkdir(parents=True)
    (root / "secret").mkdir()
    (root / "public" / "hello.txt").write_text("hello")
    r = cli(gatehouse, "mcp", "add", "fs", "--command", "node", "--arg", FS_SERVER, "--arg", str(root),
            "--env", "FS_TOKEN=FS_TOKEN_VALUE", env={"FS_TOKEN_VALUE": "stdio-secret"})
    assert r.returncode == 0, r.stderr
    iam = gatehouse.client("iam")
    bearer = make_agent(gatehouse, iam, unique("fsagent"), [
        {"Effect": "Allow", "Action": "mcp:ListTools", "Resource": "*"},
        {"Effect": "Allow", "Action": "mcp:CallTool", "Resource": "arn:gatehouse:mcp:*:*:tool/fs/*",
         "Condition": {"StringEquals": {"mcp:ToolAnnotation/readOnlyHint": "true"}}},
        {"Effect": "Allow", "Action": "mcp:CallTool", "Resource": "arn:gatehouse:mcp:*:*:tool/fs/write_file",
         "Condition": {"StringLike": {"mcp:Argument/path": f"{root}/public/*"}}},
        {"Effect": "Deny", "Action": "mcp:CallTool", "Resource": "*",
         "Condition": {"StringLike": {"mcp:Argument/path": "*..*"}}},
    ])
    url = f"{gatehouse.endpoint}/mcp/fs"
    names = eventually(lambda: list_names(url, bearer), lambda n: isinstance(n, list) and "write_file" in n)
    assert "read_text_file" in names and "write_file" in names
    assert "move_file" not in names  # destructive, not granted

    r = call(url, bearer, "read_text_file", {"path": str(root / "public" / "hello.txt")})
    assert not r.is_error and "hello" in text(r)
    r = call(url, bearer, "write_file", {"path": str(root / "public" / "new.txt"), "content": "ok"})
    assert not r.is_error, text(r)
    assert (root / "public" / "new.txt").read_text() == "ok"
    for path in [root / "secret" / "x.txt", f"{root}/public/../secret/y.txt"]:
        r = call(url, bearer, "write_file", {"path": str(path), "content": "leak"})
        assert r.is_error and "denied by Gatehouse" in text(r)
    assert sorted(os.listdir(root / "secret")) == []

    # The program Gatehouse started: killed, then started again.
    children = subprocess.run(["pgrep", "-P", str(gatehouse.proc.pid)], capture_output=True, text=True)
    pids = [int(p) for p in children.stdout.split()]
    assert pids, "no child program"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 10
    while True:
        r = call(url, bearer, "read_text_file", {"path": str(root / "public" / "hello.txt")})
        if not r.is_error or time.time() > deadline:
            break
        time.sleep(0.2)
    assert not r.is_error and "hello" in text(r)
    again = subprocess.run(["pgrep", "-P", str(gatehouse.proc.pid)], capture_output=True, text=True)
    assert again.stdout.split() and set(again.stdout.split()) != {str(p) for p in pids}
