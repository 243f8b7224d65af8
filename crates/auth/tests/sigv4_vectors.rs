//! SigV4 verification against published vectors: the AWS SigV4 test suite
//! (`aws-sig-v4-test-suite`, service `service`, region `us-east-1`, 2015-08-30
//! 12:36:00Z) and the IAM examples of the AWS General Reference.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, Utc};
use gatehouse_auth::Secret;
use gatehouse_auth::sigv4::{
    self, AuthLocation, LookupError, Request, ResolvedCredential, SigV4Error, VerifyOptions,
};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20150830T123600Z";
const HOST: &str = "example.amazonaws.com";

fn now() -> DateTime<Utc> {
    sigv4::parse_amz_date(DATE).unwrap()
}

fn lookup(
    id: &str,
    token: Option<&str>,
) -> Result<ResolvedCredential<Option<String>>, LookupError> {
    if id == AKID {
        Ok(ResolvedCredential {
            secret: Secret::from(SECRET),
            context: token.map(str::to_owned),
        })
    } else {
        Err(LookupError::UnknownAccessKey)
    }
}

fn suite_opts() -> VerifyOptions {
    VerifyOptions::with_services(["service"])
}

struct Vector {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    extra_headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    signed_headers: &'static str,
    signature: &'static str,
}

/// Vectors from the AWS SigV4 test suite. Paths and queries are given as they go on
/// the wire (percent-encoded); vectors whose published request line holds raw
/// characters a real client would percent-encode (`get-space`, `get-utf8`) sign a
/// request line no SDK sends, and are covered by the canonical-URI unit tests.
const VECTORS: &[Vector] = &[
    Vector {
        name: "get-vanilla",
        method: "GET",
        path: "/",
        query: "",
        extra_headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "get-vanilla-query-order-key-case",
        method: "GET",
        path: "/",
        query: "Param2=value2&Param1=value1",
        extra_headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    Vector {
        name: "get-vanilla-query-order-value",
        method: "GET",
        path: "/",
        query: "Param1=value2&Param1=value1",
        extra_headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        signature: "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
    },
    Vector {
        name: "get-vanilla-utf8-query",
        method: "GET",
        path: "/",
        query: "%E1%88%B4=bar",
        extra_headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    },
    Vector {
        name: "get-unreserved",
        method: "GET",
        path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        query: "",
        extra_headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    },
    Vector {
        name: "get-slashes",
        method: "GET",
        path: "//example//",
        query: "",
        extra_headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
    },
    Vector {
        name: "get-header-value-order",
        method: "GET",
        path: "/",
        query: "",
        extra_headers: &[
            ("My-Header1", "value4"),
            ("My-Header1", "value1"),
            ("My-Header1", "value3"),
            ("My-Header1", "value2"),
        ],
        body: "",
        signed_headers: "host;my-header1;x-amz-date",
        signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    },
    Vector {
        name: "get-header-key-duplicate",
        method: "GET",
        path: "/",
        query: "",
        extra_headers: &[
            ("My-Header1", "value2"),
            ("My-Header1", "value2"),
            ("My-Header1", "value1"),
        ],
        body: "",
        signed_headers: "host;my-header1;x-amz-date",
        signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    },
    Vector {
        name: "get-header-value-trim",
        method: "GET",
        path: "/",
        query: "",
        extra_headers: &[("My-Header1", " value1"), ("My-Header2", "\"a   b   c\"")],
        body: "",
        signed_headers: "host;my-header1;my-header2;x-amz-date",
        signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    },
    Vector {
        name: "post-x-www-form-urlencoded",
        method: "POST",
        path: "/",
        query: "",
        extra_headers: &[("Content-Type", "application/x-www-form-urlencoded")],
        body: "Param1=value1",
        signed_headers: "content-type;host;x-amz-date",
        signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    },
];

fn run_vector(
    v: &Vector,
    authorization: &str,
) -> Result<sigv4::Verified<Option<String>>, SigV4Error> {
    let mut headers: Vec<(&str, &str)> = vec![("Host", HOST), ("X-Amz-Date", DATE)];
    headers.extend_from_slice(v.extra_headers);
    headers.push(("Authorization", authorization));
    let req = Request {
        method: v.method,
        path: v.path,
        query: v.query,
        headers: &headers,
        body: v.body.as_bytes(),
    };
    sigv4::verify(&req, &lookup, now(), &suite_opts())
}

fn authz(v: &Vector, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/service/aws4_request, SignedHeaders={}, Signature={signature}",
        v.signed_headers
    )
}

#[test]
fn aws_test_suite_vectors_verify() {
    for v in VECTORS {
        let out =
            run_vector(v, &authz(v, v.signature)).unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
        assert_eq!(out.identity.access_key_id, AKID, "{}", v.name);
        assert_eq!(out.identity.region, "us-east-1");
        assert_eq!(out.identity.service, "service");
        assert_eq!(out.identity.location, AuthLocation::Header);
        assert_eq!(out.identity.request_time, now());
    }
}

#[test]
fn aws_test_suite_vectors_reject_a_flipped_signature_bit() {
    for v in VECTORS {
        let mut sig = hex::decode(v.signature).unwrap();
        sig[7] ^= 0x01;
        let err = run_vector(v, &authz(v, &hex::encode(sig))).unwrap_err();
        assert_eq!(err.aws_code(), "SignatureDoesNotMatch", "{}", v.name);
    }
}

#[test]
fn client_signer_reproduces_vectors() {
    for v in VECTORS {
        let mut headers: Vec<(&str, &str)> = vec![("Host", HOST), ("X-Amz-Date", DATE)];
        headers.extend_from_slice(v.extra_headers);
        let req = Request {
            method: v.method,
            path: v.path,
            query: v.query,
            headers: &headers,
            body: v.body.as_bytes(),
        };
        let names: Vec<&str> = v.signed_headers.split(';').collect();
        let got = sigv4::authorization_header(
            &req,
            AKID,
            &Secret::from(SECRET),
            "us-east-1",
            "service",
            &names,
        )
        .unwrap();
        assert_eq!(got, authz(v, v.signature), "{}", v.name);
    }
}

#[test]
fn canonical_request_of_query_order_vector() {
    let headers = [("Host", HOST), ("X-Amz-Date", DATE)];
    let req = Request {
        method: "GET",
        path: "/",
        query: "Param2=value2&Param1=value1",
        headers: &headers,
        body: b"",
    };
    let creq = sigv4::canonical_request(
        &req,
        &["host".to_owned(), "x-amz-date".to_owned()],
        &sigv4::sha256_hex(b""),
        false,
    )
    .unwrap();
    assert_eq!(
        creq,
        "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sigv4::sha256_hex(creq.as_bytes()),
        "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0"
    );
}

/// The suite's `get-vanilla-with-session-token`: the token is signed as a header and
/// handed to the lookup.
#[test]
fn session_token_vector() {
    let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    let authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8";
    let headers = [
        ("Host", HOST),
        ("X-Amz-Date", DATE),
        ("X-Amz-Security-Token", token),
        ("Authorization", authz),
    ];
    let req = Request {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    let out = sigv4::verify(&req, &lookup, now(), &suite_opts()).unwrap();
    assert_eq!(out.identity.session_token.as_deref(), Some(token));
    assert_eq!(out.context.as_deref(), Some(token));
}

/// The IAM `ListUsers` example of the AWS General Reference ("Signature Version 4
/// signing process"), service `iam`, accepted with the default options.
#[test]
fn iam_list_users_header_example() {
    let authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
    let headers = [
        ("Host", "iam.amazonaws.com"),
        (
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("X-Amz-Date", DATE),
        ("Authorization", authz),
    ];
    let req = Request {
        method: "GET",
        path: "/",
        query: "Action=ListUsers&Version=2010-05-08",
        headers: &headers,
        body: b"",
    };
    let out = sigv4::verify(&req, &lookup, now(), &VerifyOptions::default()).unwrap();
    assert_eq!(out.identity.service, "iam");
}

/// The same example presigned (query-string authentication).
#[test]
fn iam_list_users_presigned_example() {
    let query = "Action=ListUsers&Version=2010-05-08&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiam%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=content-type%3Bhost&X-Amz-Signature=37ac2f4fde00b0ac9bd9eadeb459b1bbee224158d66e7ae5fcadb70b2d181d02";
    let headers = [
        ("Host", "iam.amazonaws.com"),
        (
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
    ];
    let req = Request {
        method: "GET",
        path: "/",
        query,
        headers: &headers,
        body: b"",
    };
    let out = sigv4::verify(&req, &lookup, now(), &VerifyOptions::default()).unwrap();
    assert_eq!(out.identity.location, AuthLocation::Query);
    assert_eq!(out.identity.expires_at, Some(now() + Duration::seconds(60)));
    // Expired one second after X-Amz-Date + X-Amz-Expires.
    let err = sigv4::verify(
        &req,
        &lookup,
        now() + Duration::seconds(61),
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.aws_code(), "RequestExpired");
}

#[test]
fn service_outside_the_allowed_set_is_refused() {
    let v = &VECTORS[0];
    let headers = [
        ("Host", HOST),
        ("X-Amz-Date", DATE),
        ("Authorization", &*authz(v, v.signature)),
    ];
    let req = Request {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    let err = sigv4::verify(&req, &lookup, now(), &VerifyOptions::default()).unwrap_err();
    assert_eq!(err.aws_code(), "SignatureDoesNotMatch");
}
