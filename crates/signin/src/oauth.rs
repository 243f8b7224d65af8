//! The OAuth 2.1 authorization server's rules, without HTTP: what an authorization request
//! must carry (authorization code with PKCE S256 only — `plain` and a missing challenge
//! are refused, RFC 9700 §2.1.1), which redirect URIs are acceptable (registered ones
//! exactly; a loopback one with any port, RFC 8252 §7.3), the RFC 8707 `resource`, the
//! authorization response with RFC 9207's `iss`, errors in RFC 6749 §5.2's shape, and the
//! RFC 8414 metadata. Codes themselves (single-use, short-lived, bound to client, redirect
//! URI, resource and challenge) are kept by the store as hashes: [`crate::codes`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// An error of the token or authorization endpoint, RFC 6749 §5.2 (token) and §4.1.2.1
/// (authorization) codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, ...
    pub code: &'static str,
    /// For the developer reading it (never a secret, a code or a token).
    pub description: String,
}

impl OAuthError {
    fn new(code: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: description.into(),
        }
    }

    /// `invalid_request`: a parameter missing, repeated, or malformed.
    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_request", description)
    }

    /// `invalid_client`: the client is unknown (or failed to authenticate).
    pub fn invalid_client(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_client", description)
    }

    /// `invalid_grant`: the code is invalid, expired, used, or bound to something else,
    /// or the PKCE verifier does not match.
    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_grant", description)
    }

    /// `unsupported_grant_type`.
    pub fn unsupported_grant_type(grant: &str) -> OAuthError {
        OAuthError::new(
            "unsupported_grant_type",
            format!("grant_type {grant:?} is not supported"),
        )
    }

    /// `unsupported_response_type`.
    pub fn unsupported_response_type(kind: &str) -> OAuthError {
        OAuthError::new(
            "unsupported_response_type",
            format!("response_type {kind:?} is not supported; use code"),
        )
    }

    /// `invalid_target` (RFC 8707): the resource is not one this server issues for.
    pub fn invalid_target(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_target", description)
    }

    /// The HTTP status of a token-endpoint answer: 401 for `invalid_client`, else 400.
    pub fn http_status(&self) -> u16 {
        if self.code == "invalid_client" {
            401
        } else {
            400
        }
    }

    /// The JSON body, `{"error": ..., "error_description": ...}`.
    pub fn to_json(&self) -> Value {
        json!({"error": self.code, "error_description": self.description})
    }
}

/// Checks a PKCE code verifier (RFC 7636 §4.1: 43-128 characters of
/// `[A-Za-z0-9-._~]`) against an S256 challenge, in constant time over the digest.
pub fn verify_pkce_s256(verifier: &str, challenge: &str) -> Result<(), OAuthError> {
    let ok_chars = verifier
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !(43..=128).contains(&verifier.len()) || !ok_chars {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)",
        ));
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let same = computed.len() == challenge.len()
        && computed
            .bytes()
            .zip(challenge.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(OAuthError::invalid_grant(
            "the code_verifier does not match the code_challenge",
        ))
    }
}

/// The S256 challenge of a verifier (the client's side; tests and `gatehouse login`).
pub fn pkce_s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// True when a challenge is shaped like an S256 one: 43 base64url characters (32 bytes).
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// True for an `http` redirect URI to a loopback IP literal (RFC 8252 §7.3; `localhost`
/// is not accepted, §8.3), which matches a registered one whatever its port.
fn is_loopback_redirect(url: &url::Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            _ => false,
        }
}

/// Whether `requested` is acceptable for a client that registered `registered`: the same
/// string exactly, or — for a loopback registration — the same URI but for the port
/// (native apps listen on an ephemeral port). Never a prefix, a sub-path, another host,
/// a fragment, or user information.
pub fn redirect_uri_matches(registered: &[String], requested: &str) -> bool {
    let Ok(req) = url::Url::parse(requested) else {
        return false;
    };
    if req.fragment().is_some() || !req.username().is_empty() || req.password().is_some() {
        return false;
    }
    registered.iter().any(|r| {
        if r == requested {
            return true;
        }
        let Ok(reg) = url::Url::parse(r) else {
            return false;
        };
        is_loopback_redirect(&reg)
            && is_loopback_redirect(&req)
            && reg.host() == req.host()
            && reg.path() == req.path()
            && reg.query() == req.query()
    })
}

/// Checks an RFC 8707 resource indicator: an absolute URI without a fragment.
pub fn validate_resource(resource: &str) -> Result<(), OAuthError> {
    match url::Url::parse(resource) {
        Ok(u) if u.fragment().is_none() && !u.cannot_be_a_base() => Ok(()),
        _ => Err(OAuthError::invalid_target(
            "resource must be an absolute URI without a fragment (RFC 8707)",
        )),
    }
}

/// A request parameter given at most once (RFC 6749 §3.1: "Request and response
/// parameters MUST NOT be included more than once"); empty counts as absent.
pub(crate) fn single(
    params: &[(String, String)],
    name: &str,
) -> Result<Option<String>, OAuthError> {
    let mut values = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
    match (values.next(), values.next()) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(format!(
            "{name} is given more than once"
        ))),
        (v, _) => Ok(v.filter(|v| !v.is_empty()).cloned()),
    }
}

/// A registered client as the authorization endpoint needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its id.
    pub client_id: String,
    /// Its redirect URIs.
    pub redirect_uris: Vec<String>,
}

/// An authorization request, checked (RFC 6749 §4.1.1 with PKCE and RFC 8707).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The client.
    pub client_id: String,
    /// Where the answer goes (checked against the client's).
    pub redirect_uri: String,
    /// The S256 challenge.
    pub code_challenge: String,
    /// The client's state, returned as given.
    pub state: Option<String>,
    /// The resource the token is for (its audience).
    pub resource: Option<String>,
    /// The scope asked for.
    pub scope: Option<String>,
}

/// How a refused authorization request is answered: to the client's redirect URI when it
/// is known good (RFC 6749 §4.1.2.1), otherwise to the user agent directly — never a
/// redirect to an unchecked URI (an open redirector).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationRefusal {
    /// The client or redirect URI cannot be trusted: show the error, do not redirect.
    Show(OAuthError),
    /// Redirect this URL (the error, `state` and `iss` as query parameters).
    Redirect(String),
}

/// Checks an authorization request's parameters (`params` as received: a parameter given
/// twice is refused, RFC 6749 §3.1) against the client found by `client`.
pub fn check_authorization_request(
    params: &[(String, String)],
    issuer: &str,
    client: impl Fn(&str) -> Option<Client>,
) -> Result<AuthorizationRequest, AuthorizationRefusal> {
    let show = |e: OAuthError| AuthorizationRefusal::Show(e);
    let one = |name: &str| single(params, name);
    let client_id = one("client_id")
        .map_err(show)?
        .ok_or_else(|| show(OAuthError::invalid_request("client_id is missing")))?;
    let Some(client) = client(&client_id) else {
        return Err(show(OAuthError::invalid_client("unknown client_id")));
    };
    let redirect_uri = match one("redirect_uri").map_err(show)? {
        Some(r) => r,
        None => match client.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(show(OAuthError::invalid_request(
                    "redirect_uri is missing and the client has more than one",
                )));
            }
        },
    };
    if !redirect_uri_matches(&client.redirect_uris, &redirect_uri) {
        return Err(show(OAuthError::invalid_request(
            "redirect_uri is not one registered for this client",
        )));
    }
    // From here the redirect URI is trusted: errors go back to the client.
    let state = one("state").ok().flatten();
    let back = |e: OAuthError| {
        AuthorizationRefusal::Redirect(error_redirect(&redirect_uri, &e, state.as_deref(), issuer))
    };
    match one("response_type").map_err(back)?.as_deref() {
        Some("code") => {}
        Some(other) => return Err(back(OAuthError::unsupported_response_type(other))),
        None => {
            return Err(back(OAuthError::invalid_request(
                "response_type is missing",
            )));
        }
    }
    let code_challenge = one("code_challenge").map_err(back)?.ok_or_else(|| {
        back(OAuthError::invalid_request(
            "code_challenge is required (PKCE with S256)",
        ))
    })?;
    match one("code_challenge_method").map_err(back)?.as_deref() {
        Some("S256") => {}
        _ => {
            return Err(back(OAuthError::invalid_request(
                "code_challenge_method must be S256",
            )));
        }
    }
    if !is_s256_challenge(&code_challenge) {
        return Err(back(OAuthError::invalid_request(
            "code_challenge is not an S256 challenge (43 base64url characters)",
        )));
    }
    let resource = one("resource").map_err(back)?;
    if let Some(r) = &resource {
        validate_resource(r).map_err(back)?;
    }
    Ok(AuthorizationRequest {
        client_id,
        redirect_uri: redirect_uri.clone(),
        code_challenge,
        state: state.clone(),
        resource,
        scope: one("scope").map_err(back)?,
    })
}

fn with_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            u.into()
        }
        // Only checked URIs get here; an unparsable one gets nothing appended.
        Err(_) => redirect_uri.to_owned(),
    }
}

/// The successful authorization response: `code`, `state` and `iss` (RFC 9207) added to
/// the redirect URI's query.
pub fn code_redirect(redirect_uri: &str, code: &str, state: Option<&str>, issuer: &str) -> String {
    let mut pairs = vec![("code", code)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", issuer));
    with_query(redirect_uri, &pairs)
}

/// An error authorization response: `error`, `error_description`, `state`, `iss`.
pub fn error_redirect(
    redirect_uri: &str,
    e: &OAuthError,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut pairs = vec![
        ("error", e.code),
        ("error_description", e.description.as_str()),
    ];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", issuer));
    with_query(redirect_uri, &pairs)
}

/// RFC 8414 authorization server metadata for `issuer` (endpoints under `/signin/`).
pub fn metadata(issuer: &str) -> Value {
    let base = issuer.trim_end_matches('/');
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/signin/authorize"),
        "token_endpoint": format!("{base}/signin/token"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "authorization_response_iss_parameter_supported": true,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const ISS: &str = "https://gatehouse.example.com";

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(pkce_s256_challenge(verifier), challenge);
        verify_pkce_s256(verifier, challenge).unwrap();
        let wrong = "dBjftJeZ4CVP-mJ92Z6oC5qsWc5ZhP3JI0JIZjB3GcV";
        assert_eq!(
            verify_pkce_s256(wrong, challenge).unwrap_err().code,
            "invalid_grant"
        );
        // The verifier itself as the "challenge" (a plain downgrade) does not verify.
        assert!(verify_pkce_s256(verifier, verifier).is_err());
        for bad in ["short", &"a".repeat(129), &format!("{}!", "a".repeat(43))] {
            assert_eq!(
                verify_pkce_s256(bad, challenge).unwrap_err().code,
                "invalid_request"
            );
        }
    }

    #[test]
    fn redirect_uris_match_exactly_or_loopback_with_any_port() {
        let reg = vec![
            "http://127.0.0.1/callback".to_owned(),
            "https://app.example.com/cb".to_owned(),
        ];
        for ok in [
            "http://127.0.0.1/callback",
            "http://127.0.0.1:53121/callback",
            "https://app.example.com/cb",
        ] {
            assert!(redirect_uri_matches(&reg, ok), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:53121/callback/x",
            "http://127.0.0.1:53121/other",
            "http://localhost:53121/callback",
            "http://127.0.0.1:53121/callback#frag",
            "http://user@127.0.0.1:53121/callback",
            "http://127.0.0.1:53121/callback?x=1",
            "https://app.example.com/cb/../evil",
            "https://app.example.com/cb/",
            "https://app.example.com:8443/cb",
            "https://app.example.com.evil.com/cb",
            "https://app.example.com/cb?next=https://evil",
            "http://app.example.com/cb",
            "not a uri",
        ] {
            assert!(!redirect_uri_matches(&reg, bad), "{bad}");
        }
    }

    fn client(id: &str) -> Option<Client> {
        (id == "cli").then(|| Client {
            client_id: "cli".into(),
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
        })
    }

    fn params(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", "cli"),
            ("redirect_uri", "http://127.0.0.1:4000/callback"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
            ("state", "st-1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (k, v) in extra {
            p.retain(|(key, _)| key != k);
            if !v.is_empty() {
                p.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        p
    }

    fn redirected_error(r: AuthorizationRefusal) -> url::Url {
        match r {
            AuthorizationRefusal::Redirect(u) => url::Url::parse(&u).unwrap(),
            AuthorizationRefusal::Show(e) => panic!("shown, not redirected: {e}"),
        }
    }

    fn query(u: &url::Url, k: &str) -> Option<String> {
        u.query_pairs()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.into_owned())
    }

    #[test]
    fn a_good_request_passes() {
        let r = check_authorization_request(
            &params(&[("resource", "https://gh.example.com/mcp/docs")]),
            ISS,
            client,
        )
        .unwrap();
        assert_eq!(r.redirect_uri, "http://127.0.0.1:4000/callback");
        assert_eq!(
            r.resource.as_deref(),
            Some("https://gh.example.com/mcp/docs")
        );
        let ok =
            url::Url::parse(&code_redirect(&r.redirect_uri, "C0DE", Some("st-1"), ISS)).unwrap();
        assert_eq!(query(&ok, "code").as_deref(), Some("C0DE"));
        assert_eq!(query(&ok, "state").as_deref(), Some("st-1"));
        assert_eq!(query(&ok, "iss").as_deref(), Some(ISS));
    }

    #[test]
    fn untrusted_client_or_redirect_is_shown_not_redirected() {
        for extra in [
            vec![("client_id", "nobody")],
            vec![("client_id", "")],
            vec![("redirect_uri", "https://evil.example.com/callback")],
            vec![("redirect_uri", "http://localhost:4000/callback")],
        ] {
            match check_authorization_request(&params(&extra), ISS, client) {
                Err(AuthorizationRefusal::Show(e)) => {
                    assert!(
                        ["invalid_client", "invalid_request"].contains(&e.code),
                        "{e}"
                    );
                }
                other => panic!("{extra:?}: {other:?}"),
            }
        }
        let mut twice = params(&[]);
        twice.push(("client_id".into(), "cli".into()));
        assert!(matches!(
            check_authorization_request(&twice, ISS, client),
            Err(AuthorizationRefusal::Show(_))
        ));
    }

    #[test]
    fn pkce_downgrades_and_bad_parameters_go_back_with_state_and_iss() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("code_challenge", "")], "invalid_request"),
            (vec![("code_challenge_method", "plain")], "invalid_request"),
            (vec![("code_challenge_method", "")], "invalid_request"),
            (vec![("code_challenge", "short")], "invalid_request"),
            (
                vec![("response_type", "token")],
                "unsupported_response_type",
            ),
            (vec![("resource", "relative/path")], "invalid_target"),
            (
                vec![("resource", "https://x.example.com/#f")],
                "invalid_target",
            ),
        ];
        for (extra, code) in cases {
            let u = redirected_error(
                check_authorization_request(&params(&extra), ISS, client).unwrap_err(),
            );
            assert_eq!(query(&u, "error").as_deref(), Some(code), "{extra:?}");
            assert_eq!(query(&u, "state").as_deref(), Some("st-1"));
            assert_eq!(query(&u, "iss").as_deref(), Some(ISS));
            assert_eq!(u.host_str(), Some("127.0.0.1"));
        }
    }

    #[test]
    fn errors_have_rfc_6749_shape_and_metadata_says_s256_only() {
        let e = OAuthError::invalid_client("unknown client_id");
        assert_eq!(e.http_status(), 401);
        assert_eq!(
            e.to_json(),
            json!({"error": "invalid_client", "error_description": "unknown client_id"})
        );
        assert_eq!(OAuthError::invalid_grant("x").http_status(), 400);
        let m = metadata(ISS);
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        assert_eq!(m["token_endpoint"], format!("{ISS}/signin/token"));
    }
}
