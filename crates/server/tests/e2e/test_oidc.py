"""AssumeRoleWithWebIdentity against a real OpenID Connect provider: panva's `oidc-provider`
from npm (crates/server/tests/e2e/oidc/provider.mjs), started on loopback. Gatehouse fetches
its discovery document and JWKS, validates the token, and the role's trust policy decides
with the token's claims as condition keys; each way a token can be wrong gets AWS's error
code."""

import base64
import json
import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import botocore.exceptions
import pytest

from test_sts import allow, doc, error_code, session_client

HERE = os.path.dirname(os.path.abspath(__file__))
OIDC_DIR = os.path.join(HERE, "oidc")
AUDIENCE = "urn:gatehouse:sts"


class Idp:
    def __init__(self, port):
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.key = f"127.0.0.1:{port}"  # condition-key prefix: the issuer without scheme

    def token(self, client, resource=AUDIENCE):
        req = urllib.request.Request(
            f"{self.issuer}/token",
            data=f"grant_type=client_credentials&resource={resource}".encode(),
            headers={
                "Authorization": "Basic " + base64.b64encode(f"{client}:{client}-secret".encode()).decode(),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)["access_token"]

    def mint(self, claims, alg="RS256", unpublished=False, kid=None):
        body = json.dumps({"claims": claims, "alg": alg, "unpublished": unpublished, "kid": kid}).encode()
        req = urllib.request.Request(f"{self.issuer}/test/mint", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)["token"]

    def publish(self, kid, publish=True):
        what = "publish" if publish else "unpublish"
        req = urllib.request.Request(f"{self.issuer}/test/{what}", data=json.dumps({"kid": kid}).encode(), method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def jwks(self):
        with urllib.request.urlopen(f"{self.issuer}/jwks", timeout=10) as r:
            return json.load(r)


@pytest.fixture
def idp(tmp_path):
    if not os.path.isdir(os.path.join(OIDC_DIR, "node_modules", "oidc-provider")):
        pytest.fail(f"run `npm ci --prefix {OIDC_DIR}` first (.ci/run does)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "oidc-provider.log", "wb")
    proc = subprocess.Popen(["node", "provider.mjs", str(port)], cwd=OIDC_DIR, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError((tmp_path / "oidc-provider.log").read_text())
            time.sleep(0.1)
    yield Idp(port)
    proc.terminate()
    proc.wait(10)


def setup_role(iam, idp, subjects=("repo-org-app-main", "app-es", "app-ed"), extra_condition=None):
    arn = iam.create_open_id_connect_provider(
        Url=idp.issuer, ClientIDList=[AUDIENCE], ThumbprintList=["0" * 40]
    )["OpenIDConnectProviderArn"]
    condition = {"StringEquals": {f"{idp.key}:sub": list(subjects), f"{idp.key}:aud": AUDIENCE}}
    if extra_condition:
        condition.update(extra_condition)
    trust = doc({
        "Effect": "Allow",
        "Principal": {"Federated": arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    })
    role = iam.create_role(RoleName="ci-deploy", AssumeRolePolicyDocument=trust)["Role"]
    iam.put_role_policy(RoleName="ci-deploy", PolicyName="p", PolicyDocument=doc(allow("iam:ListRoles")))
    return arn, role["Arn"]


def assume(gatehouse, role_arn, token, name="ci-run"):
    # boto3 sends AssumeRoleWithWebIdentity unsigned, as with AWS.
    return gatehouse.client("sts").assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName=name, WebIdentityToken=token
    )


def test_provider_management(gatehouse, iam, idp):
    arn, _ = setup_role(iam, idp)
    assert arn.endswith(f":oidc-provider/127.0.0.1:{idp.port}")
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert got["Url"] == idp.key
    assert got["ClientIDList"] == [AUDIENCE]
    assert [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]] == [arn]
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="other")
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert sorted(got["ClientIDList"]) == sorted([AUDIENCE, "other"])
    iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="other")
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ClientIDList"] == [AUDIENCE]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_open_id_connect_provider(Url=idp.issuer, ClientIDList=[AUDIENCE], ThumbprintList=["0" * 40])
    assert error_code(e) == "EntityAlreadyExists"
    # Plain HTTP only for real loopback hosts: the URL is parsed, not prefix-matched. And no
    # issuer whose condition keys would read as Gatehouse's own (`aws:SourceIp`).
    for bad in ("http://example.com", "http://127.0.0.1.nip.io", "http://localhost.attacker.example",
                "http://127.0.0.1@attacker.example", "http://[::1].attacker.example", "https://aws",
                "https://sts", "ftp://127.0.0.1", "https://", "http://127.0.0.1:1/x?q=1"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            iam.create_open_id_connect_provider(Url=bad, ClientIDList=[AUDIENCE], ThumbprintList=["0" * 40])
        assert error_code(e) == "ValidationError", bad
    for good in ("http://localhost:1/a", "http://127.0.0.2:1", "http://[::1]:1"):
        p = iam.create_open_id_connect_provider(Url=good, ClientIDList=[AUDIENCE], ThumbprintList=["0" * 40])
        iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=p["OpenIDConnectProviderArn"])
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert error_code(e) == "NoSuchEntity"


@pytest.mark.parametrize("client", ["repo-org-app-main", "app-es", "app-ed"])
def test_web_identity_gives_working_credentials(gatehouse, iam, idp, client):
    """RS256, ES256 and EdDSA tokens from the provider, keys from its jwks_uri."""
    _, role_arn = setup_role(iam, idp)
    out = assume(gatehouse, role_arn, idp.token(client))
    assert out["SubjectFromWebIdentityToken"] == client
    assert out["Audience"] == AUDIENCE
    assert out["Provider"] == idp.key
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    who = session_client(gatehouse, creds, "sts").get_caller_identity()
    assert who["Arn"].endswith(":assumed-role/ci-deploy/ci-run")
    roles = session_client(gatehouse, creds).list_roles()["Roles"]
    assert [r["RoleName"] for r in roles] == ["ci-deploy"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        session_client(gatehouse, creds).list_users()
    assert error_code(e) == "AccessDenied"


def test_sub_condition_mismatch_is_access_denied(gatehouse, iam, idp):
    _, role_arn = setup_role(iam, idp, subjects=("repo-org-app-main",))
    assume(gatehouse, role_arn, idp.token("repo-org-app-main"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(gatehouse, role_arn, idp.token("repo-org-app-dev"))
    assert error_code(e) == "AccessDenied"


def test_amr_claim_is_a_condition_key(gatehouse, iam, idp):
    _, role_arn = setup_role(
        iam, idp, extra_condition={"ForAnyValue:StringEquals": {f"{idp.key}:amr": "mfa"}}
    )
    base = {"sub": "repo-org-app-main", "aud": AUDIENCE}
    assume(gatehouse, role_arn, idp.mint({**base, "amr": ["pwd", "mfa"]}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(gatehouse, role_arn, idp.mint({**base, "amr": ["pwd"]}))
    assert error_code(e) == "AccessDenied"


def test_bad_tokens_get_aws_error_codes(gatehouse, iam, idp):
    _, role_arn = setup_role(iam, idp)
    now = int(time.time())
    good = {"sub": "repo-org-app-main", "aud": AUDIENCE}
    real = idp.token("repo-org-app-main")
    header, payload, sig = real.split(".")
    tampered_payload = base64.urlsafe_b64encode(
        json.dumps({**json.loads(base64.urlsafe_b64decode(payload + "==")), "sub": "app-es"}).encode()
    ).decode().rstrip("=")
    flipped_sig = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    cases = {
        "expired": (idp.mint({**good, "iat": now - 7200, "exp": now - 3600}), "ExpiredTokenException"),
        "wrong audience": (idp.token("repo-org-app-main", resource="urn:somewhere:else"), "InvalidIdentityToken"),
        "wrong issuer": (idp.mint({**good, "iss": "http://127.0.0.1:1"}), "InvalidIdentityToken"),
        "tampered claims": (f"{header}.{tampered_payload}.{sig}", "InvalidIdentityToken"),
        "tampered signature": (f"{header}.{payload}.{flipped_sig}", "InvalidIdentityToken"),
        "alg none": (idp.mint(good, alg="none"), "InvalidIdentityToken"),
        "unknown kid": (idp.mint(good, unpublished=True), "InvalidIdentityToken"),
        "HMAC from the provider": (idp.token("repo-org-app-main", resource="urn:gatehouse:hs256"), "InvalidIdentityToken"),
        "issued in the future": (idp.mint({**good, "iat": now + 3600}), "IDPRejectedClaim"),
        "not yet valid": (idp.mint({**good, "nbf": now + 3600}), "IDPRejectedClaim"),
        "no sub": (idp.mint({"aud": AUDIENCE}), "IDPRejectedClaim"),
        "not a JWT": ("not-a-jwt", "InvalidIdentityToken"),
    }
    for what, (token, code) in cases.items():
        with pytest.raises(botocore.exceptions.ClientError) as e:
            assume(gatehouse, role_arn, token)
        assert error_code(e) == code, what
    # A token within the allowed clock skew is fine.
    assume(gatehouse, role_arn, idp.mint({**good, "iat": now + 20, "nbf": now + 20}))


def test_removed_audience_and_deleted_provider_refuse_tokens(gatehouse, iam, idp):
    arn, role_arn = setup_role(iam, idp)
    token = idp.token("repo-org-app-main")
    assume(gatehouse, role_arn, token)
    iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID=AUDIENCE)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(gatehouse, role_arn, token)
    assert error_code(e) == "InvalidIdentityToken"
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(gatehouse, role_arn, token)
    assert error_code(e) == "InvalidIdentityToken"


def test_unsigned_requests_reach_nothing_else(gatehouse, idp):
    """Only AssumeRoleWithWebIdentity may come unsigned."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    anon = boto3.client("sts", endpoint_url=gatehouse.endpoint, region_name="us-east-1",
                        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        anon.get_caller_identity()
    assert error_code(e) != "200"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)


def test_rotated_provider_key_is_fetched_on_unknown_kid(gatehouse, iam, idp):
    _, role_arn = setup_role(iam, idp)
    good = {"sub": "repo-org-app-main", "aud": AUDIENCE}
    assume(gatehouse, role_arn, idp.token("repo-org-app-main"))  # keys now cached
    rotated = idp.mint(good, kid="rsa-2")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(gatehouse, role_arn, rotated)
    assert error_code(e) == "InvalidIdentityToken"
    idp.publish("rsa-2")
    # Refetches for unknown key ids are rate-limited (5 s per provider).
    deadline = time.time() + 15
    while True:
        try:
            assume(gatehouse, role_arn, rotated)
            break
        except botocore.exceptions.ClientError as e:
            assert error_code_of(e) == "InvalidIdentityToken"
            assert time.time() < deadline, "the rotated key was never fetched"
            time.sleep(1)
    # The old keys still work.
    assume(gatehouse, role_arn, idp.token("app-es"))


def error_code_of(e):
    return e.response["Error"]["Code"]


def signed_iam_call(gatehouse, params):
    """An IAM Query call with a parameter boto3 does not know (Gatehouse's inline Jwks)."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    from conftest import ROOT_KEY_ID, ROOT_SECRET

    body = urllib.parse.urlencode({"Version": "2010-05-08", **params})
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=gatehouse.endpoint + "/", data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ROOT_KEY_ID, ROOT_SECRET), "iam", "us-east-1").add_auth(req)
    http = urllib.request.Request(req.url, data=body.encode(), headers=dict(req.headers.items()), method="POST")
    with urllib.request.urlopen(http, timeout=10) as r:
        return r.read().decode()


def test_inline_jwks_for_an_unreachable_issuer(gatehouse, iam, idp):
    offline = "http://127.0.0.1:9/offline-issuer"  # nothing listens there
    out = signed_iam_call(gatehouse, {
        "Action": "CreateOpenIDConnectProvider", "Url": offline,
        "ClientIDList.member.1": AUDIENCE, "ThumbprintList.member.1": "0" * 40,
        "Jwks": json.dumps(idp.jwks()),
    })
    arn = out.split("<OpenIDConnectProviderArn>")[1].split("<")[0]
    trust = doc({"Effect": "Allow", "Principal": {"Federated": arn}, "Action": "sts:AssumeRoleWithWebIdentity",
                 "Condition": {"StringEquals": {"127.0.0.1:9/offline-issuer:sub": "offline-job"}}})
    role_arn = iam.create_role(RoleName="offline", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    token = idp.mint({"iss": offline, "sub": "offline-job", "aud": AUDIENCE})
    out = assume(gatehouse, role_arn, token)
    assert out["SubjectFromWebIdentityToken"] == "offline-job"
    # A key outside the inline set is refused (no fetch can rescue it).
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(gatehouse, role_arn, idp.mint({"iss": offline, "sub": "offline-job", "aud": AUDIENCE}, unpublished=True))
    assert error_code(e) == "InvalidIdentityToken"


# --- claims as condition keys -------------------------------------------------------------

GH_CLAIMS = {"Key": "gatehouse:claims", "Value": "repository ref job_workflow_ref"}


def trust_role(iam, name, provider_arn, condition):
    trust = doc({"Effect": "Allow", "Principal": {"Federated": provider_arn},
                 "Action": "sts:AssumeRoleWithWebIdentity", "Condition": condition})
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]


def test_a_claim_differing_only_in_case_cannot_impersonate(gatehouse, iam, idp):
    """Bug 5: `SUB` beside the token's own `sub` used to become `ISSUER:SUB`, which the
    case-insensitive context took for `ISSUER:sub`: the trust policy saw another subject than
    the session's. Such tokens are refused, whoever minted them."""
    _, role_arn = setup_role(iam, idp, subjects=("repo-org-app-main",))
    minted = idp.mint({"sub": "forger", "SUB": "repo-org-app-main", "aud": AUDIENCE})
    for token in (minted, idp.token("forger")):  # the second from the provider's own token endpoint
        with pytest.raises(botocore.exceptions.ClientError) as e:
            assume(gatehouse, role_arn, token)
        assert error_code(e) == "InvalidIdentityToken"
    # A claim named like a Gatehouse key under another prefix is no key at all.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(gatehouse, role_arn, idp.mint({"sub": "forger", "aud": AUDIENCE, "aws:SourceIp": "10.0.0.1"}))
    assert error_code(e) == "AccessDenied"


def test_only_registered_claims_are_condition_keys(gatehouse, iam, idp):
    """GitHub-Actions-like tokens from the provider itself (extraTokenClaims): the claims the
    provider's `gatehouse:claims` tag names decide the trust policy; others are not keys."""
    arn = iam.create_open_id_connect_provider(
        Url=idp.issuer, ClientIDList=[AUDIENCE], ThumbprintList=["0" * 40], Tags=[GH_CLAIMS]
    )["OpenIDConnectProviderArn"]
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["Tags"] == [GH_CLAIMS]
    deploy = trust_role(iam, "gh-deploy", arn, {"StringEquals": {
        f"{idp.key}:aud": AUDIENCE, f"{idp.key}:repository": "org/app", f"{idp.key}:ref": "refs/heads/main"},
        "StringLike": {f"{idp.key}:job_workflow_ref": "org/app/.github/workflows/deploy.yml@*"}})
    out = assume(gatehouse, deploy, idp.token("gh-main"))
    assert out["SubjectFromWebIdentityToken"] == "gh-main"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(gatehouse, deploy, idp.token("gh-dev"))
    assert error_code(e) == "AccessDenied"
    # `environment` is in the token but not registered: its key is absent.
    prod = trust_role(iam, "gh-prod", arn, {"StringEquals": {f"{idp.key}:environment": "prod"}})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(gatehouse, prod, idp.token("gh-main"))
    assert error_code(e) == "AccessDenied"
    iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=[
        {"Key": "gatehouse:claims", "Value": "repository ref environment"}])
    assert iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=arn)["Tags"] == [
        {"Key": "gatehouse:claims", "Value": "repository ref environment"}]
    assume(gatehouse, prod, idp.token("gh-main"))
    iam.untag_open_id_connect_provider(OpenIDConnectProviderArn=arn, TagKeys=["gatehouse:claims"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(gatehouse, prod, idp.token("gh-main"))
    assert error_code(e) == "AccessDenied"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=[
            {"Key": "gatehouse:claims", "Value": "x" * 65}])
    assert error_code(e) == "ValidationError"


def test_aud_list_azp_and_oaud(gatehouse, iam, idp):
    """AWS's keys: `ISSUER:aud` is the token's azp when it has one, `ISSUER:oaud` the
    audience that matched; `aud` may be a list."""
    arn = iam.create_open_id_connect_provider(
        Url=idp.issuer, ClientIDList=[AUDIENCE], ThumbprintList=["0" * 40])["OpenIDConnectProviderArn"]
    role = trust_role(iam, "aud-role", arn, {"StringEquals": {
        f"{idp.key}:aud": "web-app", f"{idp.key}:oaud": AUDIENCE}})
    assume(gatehouse, role, idp.mint({"sub": "u1", "aud": ["other", AUDIENCE], "azp": "web-app"}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(gatehouse, role, idp.mint({"sub": "u1", "aud": [AUDIENCE]}))  # no azp: aud is the audience
    assert error_code(e) == "AccessDenied"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(gatehouse, role, idp.mint({"sub": "u1", "aud": ["other"], "azp": "web-app"}))
    assert error_code(e) == "InvalidIdentityToken"


# --- fetching keys ------------------------------------------------------------------------


def test_a_key_removed_from_the_jwks_stops_working_within_its_max_age(gatehouse, iam, idp):
    """The provider serves its key set with Cache-Control: max-age=2; Gatehouse trusts fetched
    keys that long (at least 5 s, at most 5 min), not an hour."""
    _, role_arn = setup_role(iam, idp)
    idp.publish("rsa-3")
    token = idp.mint({"sub": "repo-org-app-main", "aud": AUDIENCE}, kid="rsa-3")
    assume(gatehouse, role_arn, token)
    idp.publish("rsa-3", publish=False)
    deadline = time.time() + 15
    while True:
        try:
            assume(gatehouse, role_arn, token)
        except botocore.exceptions.ClientError as e:
            assert error_code_of(e) == "InvalidIdentityToken"
            break
        assert time.time() < deadline, "a key removed from the provider's JWKS is still trusted"
        time.sleep(1)


class CountingIdp:
    """An identity provider that is down: every request waits a little and gets a 503; the
    requests are counted."""

    def __init__(self):
        import http.server
        import threading

        outer = self
        self.hits = 0
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with outer.lock:
                    outer.hits += 1
                time.sleep(0.5)
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_failing_provider_is_asked_once_for_many_concurrent_callers(gatehouse, iam, idp):
    """Anonymous callers cannot make Gatehouse hammer a failing identity provider: concurrent
    fetches are merged into one, and the failure is remembered for a while."""
    from concurrent.futures import ThreadPoolExecutor

    down = CountingIdp()
    try:
        arn = iam.create_open_id_connect_provider(
            Url=down.url, ClientIDList=[AUDIENCE], ThumbprintList=["0" * 40])["OpenIDConnectProviderArn"]
        role = trust_role(iam, "down-role", arn, {"StringEquals": {f"{down.url[7:]}:sub": "x"}})
        token = idp.mint({"iss": down.url, "sub": "x", "aud": AUDIENCE})
        sts = gatehouse.client("sts")

        def one(_):
            try:
                sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="ss", WebIdentityToken=token)
            except botocore.exceptions.ClientError as e:
                return error_code_of(e)
            return "ok"

        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(one, range(16)))
        assert codes == ["InvalidIdentityToken"] * 16
        assert down.hits == 1, f"{down.hits} requests to the failing provider"
        # Remembered: more callers within the failure window ask nothing.
        assert [one(i) for i in range(5)] == ["InvalidIdentityToken"] * 5
        assert down.hits == 1
    finally:
        down.close()


def test_control_characters_in_a_subject_leave_answers_boto3_can_parse(gatehouse, iam, idp):
    """A subject with control characters (which XML 1.0 cannot carry) in the success answer
    (SubjectFromWebIdentityToken) and in an AccessDenied message: both stay parseable, the
    characters replaced by U+FFFD, tab kept."""
    arn = iam.create_open_id_connect_provider(
        Url=idp.issuer, ClientIDList=[AUDIENCE], ThumbprintList=["0" * 40])["OpenIDConnectProviderArn"]
    role = trust_role(iam, "ctl-role", arn, {"StringLike": {f"{idp.key}:sub": "ok*"}})
    out = assume(gatehouse, role, idp.mint({"sub": "ok\u0001\u0007\ttab\u001b", "aud": AUDIENCE}))
    assert out["SubjectFromWebIdentityToken"] == "ok\ufffd\ufffd\ttab\ufffd"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume(gatehouse, role, idp.mint({"sub": "no\u0001\u0000", "aud": AUDIENCE}))
    assert error_code(e) == "AccessDenied"
    assert "no\ufffd\ufffd" in e.value.response["Error"]["Message"]
