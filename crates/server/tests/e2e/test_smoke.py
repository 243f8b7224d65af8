"""The fixture itself: a server starts on each backend and answers a signed boto3 call."""


def test_root_creates_and_reads_a_user(iam):
    created = iam.create_user(UserName="smoke")["User"]
    assert created["Arn"].startswith("arn:gatehouse:iam::")
    assert created["UserId"].startswith("AIDA")
    got = iam.get_user(UserName="smoke")["User"]
    assert got["UserId"] == created["UserId"]
