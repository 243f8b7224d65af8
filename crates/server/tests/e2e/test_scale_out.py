"""Scale-out: two `gatehouse serve` processes on one PostgreSQL database behave as one. A
change made through either node is in force on the other within one second (each node
caches compiled policies and drops them on PostgreSQL `LISTEN/NOTIFY`)."""

import json
import os
import time

import pytest
from botocore.exceptions import ClientError

from conftest import postgres_url, unique

pytestmark = pytest.mark.skipif(
    not postgres_url(),
    reason="notice: GATEHOUSE_TEST_POSTGRES_URL unset; the scale-out test needs PostgreSQL",
)

WITHIN = 1.0  # seconds: the bound for a change to reach every node


def doc(action, effect="Allow"):
    return json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": effect, "Action": action, "Resource": "*"}]})


def outcome(call):
    try:
        call()
        return "Allow"
    except ClientError as e:
        return e.response["Error"]["Code"]


def time_until(pred, limit=5.0):
    """Seconds until pred() holds (polling every 10 ms), or None after `limit`."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if pred():
            return time.monotonic() - start
        time.sleep(0.01)
    return None


@pytest.fixture
def nodes(make_server):
    # One master key for both (it seals access-key secrets): from the environment, as an
    # operator running several nodes would provide it.
    env = {"GATEHOUSE_MASTER_KEY": os.urandom(32).hex()}
    a = make_server("postgres", extra_env=env)
    b = make_server("postgres", database_url=a.database_url, extra_env=env)
    return a, b


def test_a_change_on_one_node_is_in_force_on_the_other_within_a_second(nodes, tmp_path):
    a, b = nodes
    root_a, root_b = a.client("iam"), b.client("iam")
    user = unique("dev")
    root_a.create_user(UserName=user)
    # Both nodes serve the same store: a user made on A is visible on B at once.
    assert root_b.get_user(UserName=user)["User"]["UserName"] == user
    key = root_a.create_access_key(UserName=user)["AccessKey"]
    dev_a = a.client("iam", key["AccessKeyId"], key["SecretAccessKey"])
    dev_b = b.client("iam", key["AccessKeyId"], key["SecretAccessKey"])
    list_on_a = lambda: outcome(lambda: dev_a.list_users(MaxItems=1))  # noqa: E731
    list_on_b = lambda: outcome(lambda: dev_b.list_users(MaxItems=1))  # noqa: E731

    # B has compiled (and cached) the user's empty policy set: denied.
    assert list_on_b() == "AccessDenied"
    assert list_on_a() == "AccessDenied"

    latencies = []
    # Grant through A; B must follow.
    arn = root_a.create_policy(PolicyName=unique("list"), PolicyDocument=doc("iam:ListUsers"))["Policy"]["Arn"]
    root_a.attach_user_policy(UserName=user, PolicyArn=arn)
    assert list_on_a() == "Allow"  # the writing node at once
    latencies.append(time_until(lambda: list_on_b() == "Allow"))

    # An explicit Deny through B; A must follow.
    root_b.put_user_policy(UserName=user, PolicyName="deny", PolicyDocument=doc("iam:ListUsers", "Deny"))
    assert list_on_b() == "AccessDenied"
    latencies.append(time_until(lambda: list_on_a() == "AccessDenied"))

    # Lift it through A; B must follow.
    root_a.delete_user_policy(UserName=user, PolicyName="deny")
    latencies.append(time_until(lambda: list_on_b() == "Allow"))

    # A new policy version through B changes what the attached policy allows on A.
    root_b.create_policy_version(PolicyArn=arn, PolicyDocument=doc("iam:GetUser"), SetAsDefault=True)
    latencies.append(time_until(lambda: list_on_a() == "AccessDenied"))
    root_b.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    latencies.append(time_until(lambda: list_on_a() == "Allow"))

    # A guardrail written straight into the store by the admin CLI reaches both nodes.
    account = root_a.get_user(UserName=user)["User"]["Arn"].split(":")[4]
    guard = tmp_path / "no-lists.json"
    guard.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:List*", "Resource": "*"}]}))
    r = a.cli("admin", "guardrail", "put", "--account", account, "--name", "no-lists", "--file", str(guard))
    assert r.returncode == 0, r.stderr
    latencies.append(time_until(lambda: list_on_a() == "AccessDenied" and list_on_b() == "AccessDenied"))

    # Deactivating the key on A locks it out of B (keys are checked on every request).
    root_a.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    latencies.append(time_until(lambda: outcome(lambda: dev_b.get_user(UserName=user)) == "InvalidClientTokenId"))

    print(f"propagation latencies (s): {[round(x, 3) if x is not None else None for x in latencies]}")
    assert all(x is not None and x <= WITHIN for x in latencies), latencies


def test_nodes_share_one_audit_chain(nodes):
    a, b = nodes
    for i in range(5):
        a.client("iam").create_user(UserName=unique(f"a{i}"))
        b.client("iam").create_user(UserName=unique(f"b{i}"))
    r = a.cli("audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "intact" in r.stdout
    exported = [json.loads(line) for line in a.cli("audit", "export", "--format", "jsonl").stdout.splitlines()]
    created = [e for e in exported if e["action"] == "iam:CreateUser"]
    assert len(created) == 10
