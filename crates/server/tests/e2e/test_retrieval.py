"""Knowledge bases under policy, end to end: a real Chroma server (`chroma run`, started
here on loopback) holding a small corpus with metadata, a real `gatehouse serve` (SQLite and
PostgreSQL) in front of it, and the `openai` client's `vector_stores.search(...)` through
Gatehouse. The query's embedding comes from a deployment whose upstream is a test double
speaking OpenAI's `/v1/embeddings` (what a user brings); the corpus is embedded with the
same function, so the expected ranking is computed here: brute force over the corpus,
filtered by what each caller's policy allows, best first.
"""

import hashlib
import json
import math
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai
import pytest

from conftest import ROOT_KEY_ID, ROOT_SECRET, STRICT, Servers, backends, free_port, unique

DIM = 64
KB = "corp"
COLLECTION = "corp-docs"


def embed(text):
    """A deterministic bag-of-words embedding: each word hashed to a signed dimension,
    normalised (cosine similarity then counts shared words)."""
    v = [0.0] * DIM
    for word in text.lower().split():
        h = hashlib.sha256(word.strip(".,?!").encode()).digest()
        v[h[0] % DIM] += 1.0 if h[1] % 2 == 0 else -1.0
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b))


# id, text, metadata
CORPUS = [
    ("hr-1", "salary bands and payroll policy", {"department": "hr", "classification": "internal", "acl": ["hr"]}),
    ("hr-2", "payroll calendar and salary review dates", {"department": "hr", "classification": "confidential", "acl": ["hr"]}),
    ("hr-3", "parental leave policy and payroll", {"department": "hr", "classification": "internal", "acl": ["hr", "all"]}),
    ("hr-4", "salary of the executive team payroll", {"department": "hr", "classification": "confidential", "acl": ["hr-leads"]}),
    ("hr-5", "payroll provider contract salary", {"department": "hr", "classification": "internal", "acl": ["hr"]}),
    ("eng-1", "payroll service deployment runbook", {"department": "eng", "classification": "internal", "acl": ["eng"]}),
    ("eng-2", "salary api rate limits and payroll errors", {"department": "eng", "classification": "internal", "acl": ["eng", "all"]}),
    ("eng-3", "incident review payroll outage", {"department": "eng", "classification": "confidential", "acl": ["eng-leads"]}),
    ("eng-4", "onboarding guide for engineers", {"department": "eng", "classification": "public", "acl": ["all"]}),
    ("fin-1", "quarterly payroll cost salary budget", {"department": "finance", "classification": "internal", "acl": ["finance"]}),
    ("fin-2", "expense policy", {"department": "finance", "classification": "public", "acl": ["all"]}),
    ("pub-1", "company holidays and payroll dates", {"department": "comms", "classification": "public", "acl": ["all"]}),
]
META = {doc_id: meta for doc_id, _, meta in CORPUS}


def expected(query, allowed, k):
    """The brute-force reference: every document decided, the allowed ranked by similarity."""
    q = embed(query)
    ranked = sorted(CORPUS, key=lambda d: (-cosine(q, embed(d[1])), d[0]))
    return [d[0] for d in ranked if allowed(d[2])][:k]


TEXT = {doc_id: text for doc_id, text, _ in CORPUS}


def assert_top_k(got, query, allowed, k):
    """`got` is a best-k of the allowed documents: allowed, distinct, as many as the
    reference, with the reference's similarities in order (documents of equal similarity
    may come in either order)."""
    want = expected(query, allowed, k)
    q = embed(query)
    sim = lambda d: round(cosine(q, embed(TEXT[d])), 9)
    assert len(got) == len(want) and len(set(got)) == len(got), (got, want)
    assert all(allowed(META[d]) for d in got), got
    assert [sim(d) for d in got] == [sim(d) for d in want], (got, want)


class EmbeddingsDouble:
    """OpenAI's /v1/embeddings on loopback; records the Authorization header it saw."""

    def __init__(self):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                seen.append({"path": self.path, "authorization": self.headers.get("authorization"),
                             "model": body.get("model")})
                text = body["input"] if isinstance(body["input"], str) else " ".join(body["input"])
                out = json.dumps({"object": "list", "model": body.get("model"),
                                  "data": [{"object": "embedding", "index": 0, "embedding": embed(text)}],
                                  "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


class Chroma:
    """`chroma run` on a loopback port with its own data directory."""

    def __init__(self, path):
        exe = shutil.which("chroma")
        if not exe:
            if STRICT:
                pytest.fail("strict mode: `chroma` (chromadb from PyPI) is not installed")
            pytest.skip("notice: SKIPPING: `chroma` (chromadb from PyPI) is not installed")
        self.port = free_port()
        self.proc = subprocess.Popen([exe, "run", "--path", path, "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        self.close()
        raise RuntimeError("chroma did not start")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def load(self, name, corpus):
        import chromadb
        client = chromadb.HttpClient(host="127.0.0.1", port=self.port)
        col = client.create_collection(name, metadata={"hnsw:space": "cosine"})
        col.add(ids=[d[0] for d in corpus], documents=[d[1] for d in corpus],
                embeddings=[embed(d[1]) for d in corpus], metadatas=[d[2] for d in corpus])

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def cli(server, *args, env=None):
    cmd = [*args, "--data-dir", server.data_dir]
    if server.database_url:
        cmd += ["--database-url", server.database_url]
    from conftest import gatehouse_bin
    return subprocess.run([gatehouse_bin(), *cmd], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **server.extra_env, **(env or {})})


@pytest.fixture(scope="module", params=backends())
def kb_env(request, tmp_path_factory):
    """Chroma with the corpus, the embeddings double, and one Gatehouse per backend with
    the embedding deployment and the knowledge base registered."""
    chroma = Chroma(str(tmp_path_factory.mktemp("chroma")))
    double = EmbeddingsDouble()
    servers = Servers(tmp_path_factory)
    try:
        chroma.load(COLLECTION, CORPUS)
        server = servers.make(request.param)
        r = cli(server, "model", "add", "embed-small", "--base-url", f"http://127.0.0.1:{double.port}/v1",
                "--api-key-env", "EMBED_KEY", env={"EMBED_KEY": "sk-embedding-provider-key"})
        assert r.returncode == 0, r.stderr
        r = cli(server, "kb", "add", KB, "--backend", "chroma", "--url", chroma.url,
                "--collection", COLLECTION, "--embedding-model", "embed-small")
        assert r.returncode == 0, r.stderr
        out = cli(server, "kb", "list", "--format", "json")
        assert json.loads(out.stdout)[0]["name"] == KB
        yield server, chroma, double
    finally:
        servers.close()
        double.close()
        chroma.close()


KB_ARN = "arn:gatehouse:ai:*:*:knowledge-base/" + KB
DOCS_ARN = KB_ARN + "/document/*"


def make_user(server, name, statements, tags=None):
    iam = server.client("iam")
    iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
    iam.put_user_policy(UserName=name, PolicyName="kb",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def oai(server, key):
    return openai.OpenAI(base_url=f"{server.endpoint}/v1", api_key=f"{key[0]}:{key[1]}", max_retries=0)


def search_ids(client, query, k, **kw):
    page = client.vector_stores.search(vector_store_id=KB, query=query, max_num_results=k, **kw)
    return [r.file_id for r in page.data], page


def eventually_ids(client, query, k, want, timeout=10, **kw):
    """A policy or registry change reaches the server with the store generation."""
    deadline = time.time() + timeout
    while True:
        got, page = search_ids(client, query, k, **kw)
        if got == want or time.time() > deadline:
            return got, page
        time.sleep(0.2)


# The department's own documents, confidential ones only with MFA.
HR_POLICY = [
    {"Sid": "Search", "Effect": "Allow", "Action": "ai:Retrieve", "Resource": KB_ARN},
    {"Sid": "OwnDepartment", "Effect": "Allow", "Action": "ai:Retrieve", "Resource": DOCS_ARN,
     "Condition": {"StringEquals": {"ai:DocumentTag/department": "${aws:PrincipalTag/team}"}}},
    {"Sid": "ConfidentialNeedsMfa", "Effect": "Deny", "Action": "ai:Retrieve", "Resource": DOCS_ARN,
     "Condition": {"StringEquals": {"ai:DocumentTag/classification": "confidential"},
                   "BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}},
]

# Documents whose acl holds one of the caller's groups (a principal tag lists them).
ACL_POLICY = [
    {"Sid": "Search", "Effect": "Allow", "Action": "ai:Retrieve", "Resource": KB_ARN},
    {"Sid": "Acl", "Effect": "Allow", "Action": "ai:Retrieve", "Resource": DOCS_ARN,
     "Condition": {"ForAnyValue:StringEquals": {"ai:DocumentTag/acl": ["eng", "all"]}}},
]


def test_each_caller_gets_exactly_the_best_k_of_what_it_may_read(kb_env):
    server, _, double = kb_env
    query = "payroll salary"
    hr = oai(server, make_user(server, unique("hr"), HR_POLICY, {"team": "hr"}))
    hr_allowed = lambda m: m["department"] == "hr" and m["classification"] != "confidential"
    got, page = eventually_ids(hr, query, 3, expected(query, hr_allowed, 3))
    assert_top_k(got, query, hr_allowed, 3)
    assert len(got) == 3
    # The page is OpenAI's shape, with the documents' attributes and text.
    assert page.data[0].attributes["department"] == "hr"
    assert page.data[0].content[0].text
    assert all(0 < r.score <= 1 for r in page.data)
    # All allowed documents when fewer than k exist — and no hint of the refused ones.
    got, page = search_ids(hr, query, 10)
    assert_top_k(got, query, hr_allowed, 10)
    assert len(got) == 3
    raw = str(page.data)
    assert "hr-2" not in raw and "hr-4" not in raw and "hidden" not in raw.lower()

    eng = oai(server, make_user(server, unique("eng"), ACL_POLICY, {"team": "eng"}))
    acl_allowed = lambda m: bool({"eng", "all"} & set(m["acl"]))
    for k in (1, 2, 4):
        got, _ = search_ids(eng, query, k)
        assert_top_k(got, query, acl_allowed, k)
        assert len(got) == k

    # Root is not subject to policy: every document, best first.
    root = openai.OpenAI(base_url=f"{server.endpoint}/v1", api_key=f"{ROOT_KEY_ID}:{ROOT_SECRET}", max_retries=0)
    got, _ = search_ids(root, query, 5)
    assert_top_k(got, query, lambda m: True, 5)

    # The embedding deployment got its sealed provider key, never a caller's credential.
    assert double.seen and all(s["authorization"] == "Bearer sk-embedding-provider-key" for s in double.seen)
    assert {s["path"] for s in double.seen} == {"/v1/embeddings"}


def test_a_session_gets_the_intersection_with_its_session_policy(kb_env):
    """An agent working for a person through a role session scoped down by a session policy
    sees only what both allow."""
    server, _, _ = kb_env
    iam = server.client("iam")
    account = server.client("sts").get_caller_identity()["Account"]
    role = unique("kb-agent")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": f"arn:gatehouse:iam::{account}:root"}}]}
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=role, PolicyName="kb", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": ACL_POLICY}))
    # The person may read engineering's documents only: the session policy says so.
    person = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ai:Retrieve", "Resource": KB_ARN},
        {"Effect": "Allow", "Action": "ai:Retrieve", "Resource": DOCS_ARN,
         "Condition": {"StringEquals": {"ai:DocumentTag/department": "eng"}}}]}
    caller = make_user(server, unique("agent-runner"), [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:gatehouse:iam::{account}:role/{role}"}])
    creds = server.client("sts", key_id=caller[0], secret=caller[1]).assume_role(
        RoleArn=f"arn:gatehouse:iam::{account}:role/{role}", RoleSessionName="for-dana",
        Policy=json.dumps(person))["Credentials"]
    agent = openai.OpenAI(base_url=f"{server.endpoint}/v1", api_key=creds["SessionToken"], max_retries=0)
    query = "payroll salary"
    both = lambda m: bool({"eng", "all"} & set(m["acl"])) and m["department"] == "eng"
    got, _ = eventually_ids(agent, query, 5, expected(query, both, 5))
    assert_top_k(got, query, both, 5)
    assert set(got) == {"eng-1", "eng-2", "eng-4"}


def test_denied_knowledge_base_is_403_and_audited(kb_env):
    server, _, _ = kb_env
    nobody = oai(server, make_user(server, unique("nobody"), [
        {"Effect": "Allow", "Action": "ai:Retrieve", "Resource": DOCS_ARN}]))
    with pytest.raises(openai.PermissionDeniedError) as e:
        search_ids(nobody, "payroll", 3)
    assert "Encoded authorization failure message" in str(e.value)
    # An unknown knowledge base is refused the same way when the caller may not search it.
    with pytest.raises(openai.PermissionDeniedError):
        nobody.vector_stores.search(vector_store_id="no-such-kb", query="payroll")


def test_one_audit_record_per_search_with_digest_ids_and_refused_count(kb_env):
    server, _, _ = kb_env
    name = unique("audited")
    hr = oai(server, make_user(server, name, HR_POLICY, {"team": "hr"}))
    query = "payroll salary"
    hr_allowed = lambda m: m["department"] == "hr" and m["classification"] != "confidential"
    got, _ = eventually_ids(hr, query, 3, expected(query, hr_allowed, 3))
    assert_top_k(got, query, hr_allowed, 3)
    digest = hashlib.sha256(query.encode()).hexdigest()
    deadline = time.time() + 5
    while True:
        out = server.cli("audit", "tail", "-n", "500", "--format", "json")
        recs = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
        mine = [r for r in recs if r.get("principal", "").endswith(f"user/{name}")
                and r.get("retrieval", {}).get("query_sha256") == digest]
        if mine or time.time() > deadline:
            break
        time.sleep(0.1)
    assert len(mine) == 1, mine
    r = mine[0]
    assert r["action"] == "ai:Retrieve" and r["decision"] == "Allow" and r["status"] == 200
    assert r["resource"].endswith(f":knowledge-base/{KB}")
    assert r["retrieval"]["returned"] == got
    assert r["retrieval"]["refused"] >= 1
    assert r["retrieval"]["fetched"] >= len(got)
    # The query text is not in the record, only its digest.
    assert "payroll salary" not in json.dumps(r)


def test_bad_input_gets_openai_errors(kb_env):
    server, _, _ = kb_env
    root = openai.OpenAI(base_url=f"{server.endpoint}/v1", api_key=f"{ROOT_KEY_ID}:{ROOT_SECRET}", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        root.vector_stores.search(vector_store_id="no-such-kb", query="payroll")
    for kw in [
        {"max_num_results": 1000},
        {"max_num_results": 0},
        {"filters": {"type": "regex", "key": "department", "value": "h.*"}},
        {"filters": {"type": "eq", "key": "department", "value": {"$ne": "nothing"}}},
        {"filters": {"type": "eq", "key": "$or", "value": "x"}},
        {"filters": {"type": "and", "filters": []}},
        {"rewrite_query": True},
    ]:
        with pytest.raises(openai.BadRequestError) as e:
            root.vector_stores.search(vector_store_id=KB, query="payroll", **kw)
        assert e.value.body["type"] == "invalid_request_error", kw
    # Not JSON, not an object, an unknown field, an empty query.
    url = f"{server.endpoint}/v1/vector_stores/{KB}/search"
    auth = {"authorization": f"Bearer {ROOT_KEY_ID}:{ROOT_SECRET}", "content-type": "application/json"}
    for body in [b"{nope", b"[]", b'{"query": "x", "where": {}}', b'{"query": ""}', b'{"query": 5}']:
        r = httpx.post(url, content=body, headers=auth)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["type"] == "invalid_request_error"
    # No credential: 401 in the same shape.
    r = httpx.post(url, json={"query": "x"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_filters_narrow_and_injection_never_widens(kb_env):
    server, _, _ = kb_env
    eng = oai(server, make_user(server, unique("eng-f"), ACL_POLICY))
    query = "payroll salary"
    acl = lambda m: bool({"eng", "all"} & set(m["acl"]))
    got, _ = search_ids(eng, query, 5, filters={"type": "eq", "key": "department", "value": "eng"})
    assert_top_k(got, query, lambda m: acl(m) and m["department"] == "eng", 5)
    # An operator smuggled in as text is compared as text: it matches nothing.
    got, _ = search_ids(eng, query, 5, filters={"type": "eq", "key": "department", "value": '{"$ne": "x"}'})
    assert got == []
    got, _ = search_ids(eng, query, 5, filters={"type": "ne", "key": "department", "value": "eng"})
    assert_top_k(got, query, lambda m: acl(m) and m["department"] != "eng", 5)
    # A filter can never reach beyond the policy: asking for HR's documents finds only the
    # one HR document the acl allows.
    got, _ = search_ids(eng, query, 5, filters={"type": "eq", "key": "department", "value": "hr"})
    assert got == ["hr-3"]


def test_batch_decisions_for_a_persons_session(kb_env):
    server, _, _ = kb_env
    app_key = make_user(server, unique("app"), [
        {"Effect": "Allow", "Action": "gatehouse:IsAuthorized", "Resource": KB_ARN}])
    person_name = unique("person")
    person_key = make_user(server, person_name, HR_POLICY, {"team": "hr"})
    token = server.client("sts", key_id=person_key[0], secret=person_key[1]).get_session_token()[
        "Credentials"]["SessionToken"]
    docs = [{"id": d, "tags": m} for d, _, m in CORPUS] * 50
    url = f"{server.endpoint}/v1/knowledge_bases/{KB}/authorize"
    app_auth = {"authorization": f"Bearer {app_key[0]}:{app_key[1]}"}
    deadline = time.time() + 10
    while True:
        r = httpx.post(url, json={"session_token": token, "documents": docs}, headers=app_auth, timeout=30)
        if r.status_code == 200 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 200, r.text
    body = r.json()
    want = [m["department"] == "hr" and m["classification"] != "confidential" for _, _, m in CORPUS] * 50
    assert body["decisions"] == want
    assert body["allowed"] == [d["id"] for d, ok in zip(docs, want) if ok]
    assert body["principal"].endswith(f"user/{person_name}")

    # The application itself must be allowed gatehouse:IsAuthorized.
    other = make_user(server, unique("app2"), [{"Effect": "Allow", "Action": "ai:Retrieve", "Resource": KB_ARN}])
    r = httpx.post(url, json={"session_token": token, "documents": docs[:1]},
                   headers={"authorization": f"Bearer {other[0]}:{other[1]}"})
    assert r.status_code == 403
    # Bad input: not a token, too many documents, unknown fields.
    for body in [{"session_token": "forged", "documents": []},
                 {"session_token": token, "documents": [{"id": "x"}] * 10_001},
                 {"session_token": token, "documents": [], "extra": 1},
                 {"session_token": token, "documents": [{"id": "x", "tags": {"a": {"b": 1}}}], "x": 2}]:
        r = httpx.post(url, json=body, headers=app_auth, timeout=30)
        assert r.status_code == 400, (str(body)[:80], r.text)
        assert r.json()["error"]["type"] == "invalid_request_error"
