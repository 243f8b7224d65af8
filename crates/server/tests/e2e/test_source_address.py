"""Where a control-plane call comes from, with real proxies and a real TLS listener.

- Debian's nginx (`proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`) and
  HAProxy (`option forwardfor`, which appends its own `X-Forwarded-For` line after the
  client's) in front of Gatehouse on loopback, each connecting from 127.0.0.2, the one
  trusted proxy. boto3 adds a forged `X-Forwarded-For` line to every request; the address
  the proxy saw (127.0.0.1) must decide `aws:SourceIp` and the audit record, for IAM and
  STS calls alike.
- A TLS listener with a self-signed certificate: boto3 over it (verify= the certificate)
  gets `aws:SecureTransport` true, so the "deny when not over TLS" guardrail lets it
  through, and refuses it over plain HTTP.
"""

import json
import os
import shutil
import socket
import subprocess
import time

import boto3
import botocore.config
import botocore.exceptions
import pytest

from conftest import REGION, free_port, unique

ALLOW_FROM = lambda cidr: {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["iam:ListUsers", "sts:DecodeAuthorizationMessage"], "Resource": "*",
                   "Condition": {"IpAddress": {"aws:SourceIp": cidr}}}],
}


def wait_port(port, proc, what):
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


def start_nginx(tmp, port, upstream_port):
    conf = tmp / "nginx.conf"
    conf.write_text(f"""daemon off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://127.0.0.1:{upstream_port};
      proxy_bind 127.0.0.2;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
}}
""")
    return subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_haproxy(tmp, port, upstream_port):
    conf = tmp / "haproxy.cfg"
    conf.write_text(f"""global
  maxconn 64
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option forwardfor
frontend front
  bind 127.0.0.1:{port}
  default_backend gatehouse
backend gatehouse
  source 127.0.0.2
  server g 127.0.0.1:{upstream_port}
""")
    return subprocess.Popen(["haproxy", "-db", "-f", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


PROXIES = {"nginx": start_nginx, "haproxy": start_haproxy}


@pytest.fixture(params=sorted(PROXIES))
def proxied(request, make_server, tmp_path):
    """(server, proxy endpoint): Gatehouse trusting 127.0.0.2, the proxy in front of it."""
    name = request.param
    if not shutil.which(name):
        pytest.fail(f"{name} is not installed (.ci/run installs it)")
    cfg = tmp_path / "gatehouse.toml"
    cfg.write_text('[gateway]\ntrusted_proxies = ["127.0.0.2/32"]\n')
    server = make_server("sqlite", config=str(cfg))
    port = free_port()
    proc = PROXIES[name](tmp_path, port, server.port)
    try:
        wait_port(port, proc, name)
        yield server, f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def client(service, endpoint, key, forged=None, verify=None):
    c = boto3.session.Session().client(
        service, endpoint_url=endpoint, region_name=REGION, verify=verify,
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    if forged:
        def add_forged_line(request, **_):
            # After signing: a proxy's own line must not break the signature.
            request.headers["X-Forwarded-For"] = forged
        c.meta.events.register("before-send", add_forged_line)
    return c


def decode(c):
    """sts:DecodeAuthorizationMessage of a message that is not one: refused with
    InvalidAuthorizationMessageException once the call is allowed."""
    try:
        c.decode_authorization_message(EncodedMessage="not-a-message")
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return "ok"


def new_user(iam, policy):
    name = unique("src")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    return name, iam.create_access_key(UserName=name)["AccessKey"]


def audit_records(server):
    out = server.cli("audit", "export")
    assert out.returncode == 0, out.stderr
    return [json.loads(l) for l in out.stdout.splitlines() if l.strip()]


def test_a_forged_forwarded_line_decides_nothing_behind_a_proxy(proxied):
    server, endpoint = proxied
    iam = server.client("iam")
    forged = "203.0.113.7"
    # Allowed only from the forged address: denied through the proxy, IAM and STS alike.
    name, key = new_user(iam, ALLOW_FROM("203.0.113.0/24"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client("iam", endpoint, key, forged=forged).list_users()
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert decode(client("sts", endpoint, key, forged=forged)) == "AccessDenied"
    # Allowed only from the address the proxy saw (127.0.0.1, not the proxy's 127.0.0.2).
    name2, key2 = new_user(iam, ALLOW_FROM("127.0.0.1/32"))
    client("iam", endpoint, key2, forged=forged).list_users()
    assert decode(client("sts", endpoint, key2, forged=forged)) == "InvalidAuthorizationMessageException"
    records = [r for r in audit_records(server) if r.get("principal", "").endswith((f"/{name}", f"/{name2}"))]
    assert len(records) == 4, records
    assert {r["source_ip"] for r in records} == {"127.0.0.1"}, records


def test_unreadable_forwarded_hop_from_the_proxy_leaves_the_source_unknown(proxied):
    """A client that sends only an unreadable line: with HAProxy it stays a line of its own
    left of the proxy's, and is never reached; through nginx it is joined the same way. In
    both, the client the proxy saw decides."""
    server, endpoint = proxied
    iam = server.client("iam")
    name, key = new_user(iam, ALLOW_FROM("127.0.0.1/32"))
    client("iam", endpoint, key, forged="unknown, 1.2.3.4:80").list_users()


def test_unreadable_hop_from_a_trusted_peer_fails_closed(make_server, tmp_path):
    """Gatehouse behind a trusted proxy on loopback (127.0.0.1 itself trusted): an unreadable
    hop means no aws:SourceIp, so an IP-allowing statement does not match, and the audit
    record says the source is unknown and which proxy sent it."""
    cfg = tmp_path / "gatehouse.toml"
    cfg.write_text('[gateway]\ntrusted_proxies = ["127.0.0.0/8"]\n')
    server = make_server("sqlite", config=str(cfg))
    iam = server.client("iam")
    name, key = new_user(iam, ALLOW_FROM("127.0.0.0/8"))
    for hop in ("unknown", "203.0.113.7:443", "[2001:db8::1]:443", "fe80::1%eth0"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client("iam", server.endpoint, key, forged=hop).list_users()
        assert e.value.response["Error"]["Code"] == "AccessDenied", hop
    client("iam", server.endpoint, key, forged="127.0.0.9").list_users()
    mine = [r for r in audit_records(server) if r.get("principal", "").endswith(f"/{name}")]
    assert [r["source_ip"] for r in mine] == [None] * 4 + ["127.0.0.9"], mine
    assert [r.get("source_unknown_via") for r in mine] == ["127.0.0.1"] * 4 + [None], mine


def test_secure_transport_over_a_tls_listener(make_server, tmp_path):
    if not shutil.which("openssl"):
        pytest.fail("openssl (to make a test certificate) is not installed")
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
""")
    server = make_server("sqlite", config=str(cfg))
    iam = server.client("iam")
    tls = f"https://127.0.0.1:{tls_port}"
    # The standard guardrail: deny everything not over TLS.
    _, deny_plain = new_user(iam, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:ListUsers", "sts:DecodeAuthorizationMessage"], "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})
    # And its mirror: allow only over TLS, only on the listener named `secure`.
    _, allow_tls = new_user(iam, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "true"},
                       "StringEquals": {"aws:SourceVpce": "secure"}}}]})
    for key in (deny_plain, allow_tls):
        client("iam", tls, key, verify=str(cert)).list_users()
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client("iam", server.endpoint, key).list_users()
        assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert decode(client("sts", tls, deny_plain, verify=str(cert))) == "InvalidAuthorizationMessageException"
    assert decode(client("sts", server.endpoint, deny_plain)) == "AccessDenied"
    # The certificate is checked: without the CA file boto3 refuses the self-signed one.
    with pytest.raises(botocore.exceptions.SSLError):
        client("iam", tls, deny_plain).list_users()
