"""Bad input gets AWS's XML error with the right code and status, and changes nothing
stored: unknown actions, malformed and oversized bodies, invalid names and paths, invalid
policy documents, and bad, expired, incomplete or forged signatures.

Requests here are built by hand (signed with botocore's own SigV4 signer) because boto3
refuses to send most of them.
"""

import datetime
import http.client
import json
import urllib.parse

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from conftest import (
    ROOT_KEY_ID,
    ROOT_SECRET,
    Signer,
    raw_call,
    send,
    snapshot,
    unique,
)


@pytest.fixture
def server(shared_gatehouse):
    server = shared_gatehouse
    iam = server.client("iam")
    # Something to lose: a user with a key, a policy, a group, a role.
    if not iam.list_users(PathPrefix="/keep/")["Users"]:
        iam.create_user(UserName="keeper", Path="/keep/")
        iam.create_access_key(UserName="keeper")
        arn = iam.create_policy(PolicyName="keep", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}]}))["Policy"]["Arn"]
        iam.attach_user_policy(UserName="keeper", PolicyArn=arn)
        iam.create_group(GroupName="keepers")
        iam.add_user_to_group(GroupName="keepers", UserName="keeper")
    return server


@pytest.fixture
def unchanged(server):
    """Asserts at the end of the test that nothing stored changed."""
    before = snapshot(server)
    yield
    assert snapshot(server) == before


def form(**params):
    return urllib.parse.urlencode(dict({"Version": "2010-05-08"}, **params))


def assert_error(r, code, status):
    assert (r.status, r.code) == (status, code), r.text
    assert r.field("Type") == ("Receiver" if status >= 500 else "Sender")
    assert r.field("Message")
    assert r.field("RequestId")
    assert r.text.startswith("<?xml")
    assert "<ErrorResponse" in r.text


# ---------------------------------------------------------------- actions and bodies


def test_unknown_action_is_invalid_action(server, unchanged):
    r = raw_call(server, form(Action="LaunchRockets", UserName="x"))
    assert_error(r, "InvalidAction", 400)
    assert "LaunchRockets" in r.field("Message")
    r = raw_call(server, "Action=LaunchRockets&Version=2011-06-15", signer=Signer(ROOT_KEY_ID, ROOT_SECRET, "sts"))
    assert_error(r, "InvalidAction", 400)
    # Action names are case-sensitive, as in AWS.
    assert_error(raw_call(server, form(Action="createuser", UserName=unique("x"))), "InvalidAction", 400)


def test_unauthenticated_callers_learn_nothing(server, unchanged):
    # Not even whether an action exists: authentication comes first.
    r = raw_call(server, form(Action="LaunchRockets"), sign=False)
    assert_error(r, "MissingAuthenticationToken", 403)
    r = raw_call(server, form(Action="CreateUser", UserName=unique("anon")), sign=False)
    assert_error(r, "MissingAuthenticationToken", 403)


def test_missing_action(server, unchanged):
    assert_error(raw_call(server, "Version=2010-05-08&UserName=x"), "MissingAction", 400)
    assert_error(raw_call(server, ""), "MissingAction", 400)


def test_malformed_bodies(server, unchanged):
    # Not UTF-8.
    r = raw_call(server, b"Action=CreateUser&Version=2010-05-08&UserName=\xff\xfe")
    assert_error(r, "MalformedQueryString", 400)
    # A JSON body is not a Query request.
    r = raw_call(server, json.dumps({"Action": "CreateUser", "UserName": "json"}),
                 headers={"Content-Type": "application/json"})
    assert_error(r, "MissingAction", 400)
    # Parameters of the wrong type or shape.
    assert_error(raw_call(server, form(Action="ListUsers", MaxItems="many")), "ValidationError", 400)
    assert_error(raw_call(server, form(Action="ListUsers", MaxItems="0")), "ValidationError", 400)
    assert_error(raw_call(server, form(Action="ListUsers", Marker="not a marker!")), "ValidationError", 400)
    assert_error(raw_call(server, form(Action="CreateUser", UserName=unique("t"), **{
        "Tags.member.1.Value": "no key"})), "ValidationError", 400)
    assert_error(raw_call(server, form(Action="CreateRole", RoleName=unique("r"),
                                       AssumeRolePolicyDocument="{}", MaxSessionDuration="1h")),
                 "ValidationError", 400)
    assert_error(raw_call(server, form(Action="CreatePolicyVersion",
                                       PolicyArn="arn:gatehouse:iam::123456789012:policy/keep",
                                       PolicyDocument="{}", SetAsDefault="yes")), "ValidationError", 400)
    # A required parameter missing or empty.
    assert_error(raw_call(server, form(Action="CreateUser")), "ValidationError", 400)
    assert_error(raw_call(server, form(Action="CreateUser", UserName="")), "ValidationError", 400)
    assert_error(raw_call(server, form(Action="DeleteUser")), "ValidationError", 400)
    # A policy ARN that is not one.
    assert_error(raw_call(server, form(Action="GetPolicy", PolicyArn="keep")), "ValidationError", 400)
    assert_error(raw_call(server, form(Action="AttachUserPolicy", UserName="keeper",
                                       PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")),
                 "ValidationError", 400)


def test_body_over_one_mib_is_refused(server, unchanged):
    name = unique("huge")
    padding = "x" * (1024 * 1024)
    r = raw_call(server, form(Action="CreateUser", UserName=name, Description=padding))
    assert_error(r, "RequestEntityTooLarge", 413)
    # Without a Content-Length (chunked), the limit holds as the body streams in.
    body = form(Action="CreateUser", UserName=name, Description=padding).encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("POST", "/")
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for i in range(0, len(body), 65536):
                chunk = body[i:i + 65536]
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = conn.getresponse()
        assert resp.status == 413
        assert b"RequestEntityTooLarge" in resp.read()
    finally:
        conn.close()
    iam = server.client("iam")
    assert not [u for u in iam.list_users()["Users"] if u["UserName"] == name]


# ---------------------------------------------------------------- names and paths


@pytest.mark.parametrize("action,param,value", [
    ("CreateUser", "UserName", "has space"),
    ("CreateUser", "UserName", "slash/inside"),
    ("CreateUser", "UserName", "colon:inside"),
    ("CreateUser", "UserName", "ünicode"),
    ("CreateUser", "UserName", "u" * 65),
    ("CreateGroup", "GroupName", "g" * 129),
    ("CreateGroup", "GroupName", "star*"),
    ("CreateRole", "RoleName", "r" * 65),
    ("CreatePolicy", "PolicyName", "p" * 129),
    ("CreatePolicy", "PolicyName", "semi;colon"),
])
def test_invalid_names(server, unchanged, action, param, value):
    extra = {}
    if action == "CreateRole":
        extra["AssumeRolePolicyDocument"] = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ai.gatehouse.local"}, "Action": "sts:AssumeRole"}]})
    if action == "CreatePolicy":
        extra["PolicyDocument"] = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}]})
    r = raw_call(server, form(Action=action, **{param: value}, **extra))
    assert_error(r, "ValidationError", 400)


@pytest.mark.parametrize("path", ["no-slash", "/no-trailing", "trailing/", "/sp ace/", "/" + "a" * 512 + "/", "//"])
def test_invalid_paths(server, unchanged, path):
    assert_error(raw_call(server, form(Action="CreateUser", UserName=unique("p"), Path=path)), "ValidationError", 400)
    assert_error(raw_call(server, form(Action="CreatePolicy", PolicyName=unique("p"), Path=path,
                                       PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                           {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}]}))),
                 "ValidationError", 400)
    assert_error(raw_call(server, form(Action="UpdateUser", UserName="keeper", NewPath=path)), "ValidationError", 400)


def test_invalid_names_in_updates(server, unchanged):
    assert_error(raw_call(server, form(Action="UpdateUser", UserName="keeper", NewUserName="bad name")),
                 "ValidationError", 400)
    assert_error(raw_call(server, form(Action="PutUserPolicy", UserName="keeper", PolicyName="bad name",
                                       PolicyDocument="{}")), "ValidationError", 400)


# ---------------------------------------------------------------- policy documents

GOOD = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}]}


def with_statement(**fields):
    st = dict(GOOD["Statement"][0], **fields)
    return json.dumps({"Version": "2012-10-17", "Statement": [{k: v for k, v in st.items() if v is not None}]})


BAD_DOCUMENTS = [
    "{",
    "",
    "null",
    "[]",
    '{"Version": "2012-10-17"}',
    json.dumps(GOOD) + " trailing",
    json.dumps({"Version": "2030-01-01", "Statement": GOOD["Statement"]}),
    with_statement(Effect="Permit"),
    with_statement(Action=None),
    with_statement(Resource=None),
    with_statement(Action=7),
    with_statement(Condition={"NoSuchOperator": {"aws:SourceIp": "10.0.0.0/8"}}),
    with_statement(Condition={"IpAddress": {"aws:SourceIp": "not-an-ip"}}),
    # Identity policies name no principal: AWS refuses the element.
    with_statement(Principal="*"),
    # The `get-policy-version` wrapper is not a policy document.
    json.dumps({"PolicyVersion": {"Document": GOOD, "VersionId": "v1"}}),
]


@pytest.mark.parametrize("document", BAD_DOCUMENTS, ids=range(len(BAD_DOCUMENTS)))
def test_invalid_policy_documents(server, unchanged, document):
    code = "ValidationError" if document == "" else "MalformedPolicyDocument"
    account = server.client("iam").get_user(UserName="keeper")["User"]["Arn"].split(":")[4]
    keep = f"arn:gatehouse:iam::{account}:policy/keep"
    for params in [
        dict(Action="CreatePolicy", PolicyName=unique("bad")),
        dict(Action="CreatePolicyVersion", PolicyArn=keep, SetAsDefault="true"),
        dict(Action="PutUserPolicy", UserName="keeper", PolicyName="bad"),
        dict(Action="PutGroupPolicy", GroupName="keepers", PolicyName="bad"),
    ]:
        r = raw_call(server, form(**params, PolicyDocument=document))
        assert_error(r, code, 400)


def test_oversized_policy_documents(server, unchanged):
    big = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": f"iam:Get{'X' * 40}{i}", "Resource": "*"} for i in range(200)]})
    assert_error(raw_call(server, form(Action="CreatePolicy", PolicyName=unique("big"), PolicyDocument=big)),
                 "LimitExceeded", 409)
    assert_error(raw_call(server, form(Action="PutUserPolicy", UserName="keeper", PolicyName="big",
                                       PolicyDocument=big)), "LimitExceeded", 409)


def test_trust_policies(server, unchanged):
    no_principal = with_statement(Action="sts:AssumeRole", Resource=None)
    r = raw_call(server, form(Action="CreateRole", RoleName=unique("r"), AssumeRolePolicyDocument=no_principal))
    assert_error(r, "MalformedPolicyDocument", 400)
    with_resource = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ai.gatehouse.local"}, "Action": "sts:AssumeRole",
         "Resource": "*"}]})
    r = raw_call(server, form(Action="CreateRole", RoleName=unique("r"), AssumeRolePolicyDocument=with_resource))
    assert_error(r, "MalformedPolicyDocument", 400)
    r = raw_call(server, form(Action="CreateRole", RoleName=unique("r"), AssumeRolePolicyDocument="{"))
    assert_error(r, "MalformedPolicyDocument", 400)


def test_invalid_simulation_input(server, unchanged):
    r = raw_call(server, form(Action="SimulateCustomPolicy", **{"PolicyInputList.member.1": "{",
                                                                 "ActionNames.member.1": "iam:GetUser"}))
    assert_error(r, "MalformedPolicyDocument", 400)
    r = raw_call(server, form(Action="SimulateCustomPolicy", **{"PolicyInputList.member.1": json.dumps(GOOD)}))
    assert_error(r, "ValidationError", 400)
    r = raw_call(server, form(Action="SimulatePrincipalPolicy", PolicySourceArn="not-an-arn",
                              **{"ActionNames.member.1": "iam:GetUser"}))
    assert_error(r, "ValidationError", 400)


# ---------------------------------------------------------------- signatures

CREATE = form(Action="CreateUser", UserName="intruder")


def test_wrong_secret_is_signature_does_not_match(server, unchanged):
    r = raw_call(server, CREATE, signer=Signer(ROOT_KEY_ID, "w" * 40))
    assert_error(r, "SignatureDoesNotMatch", 403)
    assert ROOT_SECRET not in r.text


def test_body_tampered_after_signing(server, unchanged):
    r = raw_call(server, form(Action="CreateUser", UserName="innocent"),
                 mutate=lambda h, b: b.replace(b"innocent", b"intruder"))
    assert_error(r, "SignatureDoesNotMatch", 403)


def test_header_tampered_after_signing(server, unchanged):
    def swap_date(h, b):
        h["X-Amz-Date"] = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)).strftime(
            "%Y%m%dT%H%M%SZ")
        return b
    assert_error(raw_call(server, CREATE, mutate=swap_date), "SignatureDoesNotMatch", 403)


def test_unknown_access_key_is_invalid_client_token_id(server, unchanged):
    r = raw_call(server, CREATE, signer=Signer("AKIAUNKNOWNKEY000000", "s" * 40))
    assert_error(r, "InvalidClientTokenId", 403)


def test_session_token_with_a_long_term_key(server, unchanged):
    r = raw_call(server, CREATE, signer=Signer(ROOT_KEY_ID, ROOT_SECRET, token="forged-token"))
    assert_error(r, "InvalidClientTokenId", 403)


@pytest.mark.parametrize("header", [
    "AWS4-HMAC-SHA256",
    "AWS4-HMAC-SHA256 Credential=AKIAGATEHOUSEROOT001/20260101/us-east-1/iam/aws4_request",
    "AWS4-HMAC-SHA256 Credential=AKIAGATEHOUSEROOT001/20260101/us-east-1/iam/aws4_request, SignedHeaders=host",
    "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
    "AWS4-HMAC-SHA256 Credential=AKIAGATEHOUSEROOT001, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
])
def test_incomplete_signature(server, unchanged, header):
    def replace(h, b):
        h["Authorization"] = header
        return b
    assert_error(raw_call(server, CREATE, mutate=replace), "IncompleteSignature", 400)


@pytest.mark.parametrize("minutes", [-20, 20])
def test_request_outside_clock_skew_is_expired(server, unchanged, minutes):
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
    r = raw_call(server, CREATE, signer=Signer(ROOT_KEY_ID, ROOT_SECRET, when=when))
    assert_error(r, "RequestExpired", 400)
    # Within the 15-minute skew it is accepted (a read, to change nothing).
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes * 0.6)
    ok = raw_call(server, form(Action="GetUser", UserName="keeper"), signer=Signer(ROOT_KEY_ID, ROOT_SECRET, when=when))
    assert ok.status == 200, ok.text


def presigned(server, params, when, expires):
    req = botocore.awsrequest.AWSRequest(method="GET", url=server.endpoint + "/?" + urllib.parse.urlencode(params))

    class QuerySigner(botocore.auth.SigV4QueryAuth):
        def add_auth(self, request):
            request.context["timestamp"] = when.strftime(botocore.auth.SIGV4_TIMESTAMP)
            self._modify_request_before_signing(request)
            canonical = self.canonical_request(request)
            sts = self.string_to_sign(request, canonical)
            self._inject_signature_to_request(request, self.signature(sts, request))

    QuerySigner(botocore.credentials.Credentials(ROOT_KEY_ID, ROOT_SECRET), "iam", "us-east-1",
                expires=expires).add_auth(req)
    p = req.prepare()
    return send(server, "GET", p.url, {}, b"")


def test_presigned_urls(server, unchanged):
    now = datetime.datetime.now(datetime.timezone.utc)
    params = {"Action": "GetUser", "UserName": "keeper", "Version": "2010-05-08"}
    ok = presigned(server, params, now, 300)
    assert ok.status == 200 and ok.field("UserName") == "keeper", ok.text
    expired = presigned(server, params, now - datetime.timedelta(minutes=10), 60)
    assert_error(expired, "RequestExpired", 400)
    tampered = presigned(server, params, now, 300)
    assert tampered.status == 200
    # Same URL with another user name: the signature covers the query.
    req = botocore.awsrequest.AWSRequest(method="GET", url=server.endpoint + "/?" + urllib.parse.urlencode(params))
    botocore.auth.SigV4QueryAuth(botocore.credentials.Credentials(ROOT_KEY_ID, ROOT_SECRET), "iam", "us-east-1",
                                 expires=300).add_auth(req)
    url = req.prepare().url.replace("UserName=keeper", "UserName=other")
    assert_error(send(server, "GET", url, {}, b""), "SignatureDoesNotMatch", 403)


def test_presigned_url_runs_only_its_own_call(server, unchanged):
    """A URL botocore presigned for GetUser, replayed as a POST with a form body that names
    CreateUser: refused, nothing created (issue 10). S3-style presigning
    (UNSIGNED-PAYLOAD, botocore's S3SigV4QueryAuth) is refused for IAM too."""
    params = {"Action": "GetUser", "UserName": "keeper", "Version": "2010-05-08"}
    creds = botocore.credentials.Credentials(ROOT_KEY_ID, ROOT_SECRET)
    body = form(Action="CreateUser", UserName=unique("presigned-evil")).encode()
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    for signer in (botocore.auth.SigV4QueryAuth, botocore.auth.S3SigV4QueryAuth):
        req = botocore.awsrequest.AWSRequest(method="POST", url=server.endpoint + "/?" + urllib.parse.urlencode(params))
        signer(creds, "iam", "us-east-1", expires=300).add_auth(req)
        url = req.prepare().url
        r = send(server, "POST", url, form_type, body)
        assert r.status in (400, 403) and r.code in ("SignatureDoesNotMatch", "InvalidParameterCombination"), r.text
    # The S3-style URL is refused even without a body.
    req = botocore.awsrequest.AWSRequest(method="GET", url=server.endpoint + "/?" + urllib.parse.urlencode(params))
    botocore.auth.S3SigV4QueryAuth(creds, "iam", "us-east-1", expires=300).add_auth(req)
    assert_error(send(server, "GET", req.prepare().url, {}, b""), "SignatureDoesNotMatch", 403)


@pytest.mark.parametrize("service", ["sts", "ai", "s3"])
def test_iam_call_signed_for_another_service_is_refused(server, unchanged, service):
    r = raw_call(server, form(Action="CreateUser", UserName=unique("scoped")), signer=Signer(ROOT_KEY_ID, ROOT_SECRET, service))
    assert_error(r, "SignatureDoesNotMatch", 403)
    assert "'iam'" in r.field("Message")
    r = raw_call(server, "Action=GetCallerIdentity&Version=2011-06-15", signer=Signer(ROOT_KEY_ID, ROOT_SECRET, "iam"))
    assert_error(r, "SignatureDoesNotMatch", 403)


def test_no_secret_in_responses_or_logs(server):
    iam = server.client("iam")
    user = unique("secretive")
    iam.create_user(UserName=user)
    secret = iam.create_access_key(UserName=user)["AccessKey"]["SecretAccessKey"]
    raw_call(server, CREATE, signer=Signer(ROOT_KEY_ID, "w" * 40))
    log = server.read_log()
    assert ROOT_SECRET not in log and secret not in log

