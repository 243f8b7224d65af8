//! SigV4, header and presigned forms: `METHOD \0 PATH \0 QUERY \0 HEADERS \0 BODY` (headers
//! as `name: value` lines). Checks, at a fixed clock with one known key:
//! - verifying the request as sent never panics; an error carries an AWS code and status
//!   and never the secret; a request without SigV4 is never accepted; an accepted one names
//!   the known key, a default service, and signs `host`;
//! - the same request signed by Gatehouse's own signer (header form, every header signed)
//!   verifies, and stops verifying when one byte of its body, query or a signed header
//!   changes;
//! - the same request presigned (query form, over the body's hash) verifies, and stops
//!   verifying when its body changes.
#![no_main]

use gatehouse_auth::Secret;
use gatehouse_auth::sigv4::{
    self, AuthLocation, LookupError, Request, ResolvedCredential, SigV4Error, VerifyOptions,
};
use gatehouse_fuzz::{fields, header_lines, now, text};
use libfuzzer_sys::fuzz_target;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";

fn lookup(id: &str, token: Option<&str>) -> Result<ResolvedCredential<()>, LookupError> {
    match (id, token) {
        (AKID, None) => Ok(ResolvedCredential {
            secret: Secret::from(SECRET),
            context: (),
        }),
        (AKID, Some(_)) => Err(LookupError::InvalidSessionToken),
        _ => Err(LookupError::UnknownAccessKey),
    }
}

#[derive(Clone)]
struct Owned {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Owned {
    fn verify(&self) -> Result<sigv4::Verified<()>, SigV4Error> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let req = Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        };
        let out = sigv4::verify(&req, &lookup, now(), &VerifyOptions::default());
        match &out {
            Ok(v) => {
                assert!(sigv4::has_sigv4(&req), "accepted without SigV4");
                assert_eq!(v.identity.access_key_id, AKID);
                assert!(sigv4::DEFAULT_SERVICES.contains(&v.identity.service.as_str()));
                assert!(v.identity.signed_headers.iter().any(|h| h == "host"));
                if v.identity.location == AuthLocation::Query {
                    assert!(v.identity.expires_at.is_some_and(|e| e >= now()));
                }
            }
            Err(e) => {
                assert!(!e.to_string().contains(SECRET), "error shows the secret");
                assert!(matches!(e.http_status(), 400 | 403));
                assert!(!e.aws_code().is_empty());
            }
        }
        out
    }

    fn borrowed_headers(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// A header an HTTP server would have accepted (a token name, a value without controls).
fn plausible_header(k: &str, v: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
        && v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fn plausible_method(m: &str) -> bool {
    !m.is_empty() && m.len() <= 16 && m.bytes().all(|b| b.is_ascii_uppercase())
}

fn plausible_target(path: &str, query: &str) -> bool {
    path.starts_with('/')
        && !path.contains(['?', '#'])
        && !query.contains('#')
        && (path.bytes().chain(query.bytes())).all(|b| b.is_ascii_graphic())
}

fn signed_header_form(base: &Owned) -> Option<Owned> {
    let mut headers: Vec<(String, String)> = base
        .headers
        .iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !matches!(
                k.as_str(),
                "host"
                    | "x-amz-date"
                    | "date"
                    | "authorization"
                    | "x-amz-security-token"
                    | "x-amz-content-sha256"
            )
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    headers.push(("host".into(), "gatehouse.example.test:8470".into()));
    headers.push(("x-amz-date".into(), sigv4::format_amz_date(now())));
    let mut signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
    signed.sort();
    signed.dedup();
    let names: Vec<&str> = signed.iter().map(String::as_str).collect();
    let req = Owned {
        method: base.method.clone(),
        path: base.path.clone(),
        query: base.query.clone(),
        headers,
        body: base.body.clone(),
    };
    let hs = req.borrowed_headers();
    let auth = sigv4::authorization_header(
        &Request {
            method: &req.method,
            path: &req.path,
            query: &req.query,
            headers: &hs,
            body: &req.body,
        },
        AKID,
        &Secret::from(SECRET),
        REGION,
        "iam",
        &names,
    )
    .ok()?;
    drop(hs);
    let mut req = req;
    req.headers.push(("authorization".into(), auth));
    Some(req)
}

fn presigned(base: &Owned) -> Option<Owned> {
    let amz_date = sigv4::format_amz_date(now());
    let scope = format!("{}/{REGION}/iam/aws4_request", &amz_date[..8]);
    let credential = sigv4::uri_encode(format!("{AKID}/{scope}").as_bytes());
    let mut query = base.query.clone();
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str(&format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}&X-Amz-Date={amz_date}&X-Amz-Expires=300&X-Amz-SignedHeaders=host"
    ));
    let headers = vec![("host".to_owned(), "gatehouse.example.test:8470".to_owned())];
    let hs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let req = Request {
        method: &base.method,
        path: &base.path,
        query: &query,
        headers: &hs,
        body: &base.body,
    };
    let creq = sigv4::canonical_request(
        &req,
        &["host".to_owned()],
        &sigv4::sha256_hex(&base.body),
        true,
    )
    .ok()?;
    let sts = sigv4::string_to_sign(&amz_date, &scope, &creq);
    let key = sigv4::signing_key(SECRET.as_bytes(), &amz_date[..8], REGION, "iam");
    let sig = hmac_hex(&key, sts.as_bytes());
    query.push_str(&format!("&X-Amz-Signature={sig}"));
    Some(Owned {
        method: base.method.clone(),
        path: base.path.clone(),
        query,
        headers,
        body: base.body.clone(),
    })
}

fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let [method, path, query, headers, body] = fields::<5>(data);
    let sent = Owned {
        method: text(method),
        path: text(path),
        query: text(query),
        headers: header_lines(headers),
        body: body.to_vec(),
    };
    let _ = sent.verify();

    if !plausible_method(&sent.method)
        || !plausible_target(&sent.path, &sent.query)
        || !sent.headers.iter().all(|(k, v)| plausible_header(k, v))
        || sent.query.contains("X-Amz-")
    {
        return;
    }
    if let Some(signed) = signed_header_form(&sent) {
        if let Err(e) = signed.verify() {
            panic!("Gatehouse's own header signature does not verify: {e}");
        }
        let mut body_changed = signed.clone();
        body_changed.body.push(b'x');
        assert!(
            body_changed.verify().is_err(),
            "a changed body still verifies"
        );
        let mut query_changed = signed.clone();
        query_changed.query.push_str(if signed.query.is_empty() {
            "Action=CreateUser"
        } else {
            "&Action=CreateUser"
        });
        assert!(
            query_changed.verify().is_err(),
            "an added query parameter still verifies"
        );
        // Change the value of a signed header other than the signature itself.
        let mut header_changed = signed.clone();
        if let Some((_, v)) = header_changed
            .headers
            .iter_mut()
            .find(|(k, _)| k != "authorization" && k != "x-amz-date")
        {
            v.push('x');
            assert!(
                header_changed.verify().is_err(),
                "a changed signed header still verifies"
            );
        }
    }
    if let Some(pre) = presigned(&sent) {
        if let Err(e) = pre.verify() {
            panic!("a presigned request does not verify: {e}");
        }
        let mut body_changed = pre.clone();
        body_changed.body.push(b'x');
        assert!(
            body_changed.verify().is_err(),
            "a presigned request verifies with a changed body"
        );
    }
});
