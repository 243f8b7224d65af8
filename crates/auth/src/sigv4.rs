//! AWS Signature Version 4 verification (server side).
//!
//! Gatehouse's control plane speaks the AWS IAM and STS Query protocols so that the
//! AWS CLI, boto3 and the AWS SDKs work against it unchanged; those clients
//! authenticate every request with SigV4. This module checks such a signature, in
//! both of its forms:
//!
//! - the `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
//!   Signature=...` header, with a 15-minute clock-skew window around `X-Amz-Date`
//!   (or `Date`);
//! - presigned URLs (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//!   `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`, optionally
//!   `X-Amz-Security-Token`), valid until `X-Amz-Date + X-Amz-Expires`.
//!
//! The canonical request is built exactly as AWS specifies for non-S3 services: the
//! raw (already percent-encoded) path has its dot and empty segments removed and
//! each segment percent-encoded once more; query parameters are decoded
//! (form-style: `+` is a space, as botocore and `aws-sigv4` assume), re-encoded
//! with the SigV4 unreserved set and sorted by name then value; signed headers are
//! lower-cased, trimmed, inner whitespace collapsed and repeated headers joined
//! with commas.
//!
//! The module is pure: the caller passes the request, the current time and a
//! [`CredentialLookup`] that maps an access key id (and session token, if any) to
//! the secret. Any region is accepted in the credential scope (the signature binds
//! it); the service must be one of [`VerifyOptions::services`] (`iam`, `sts`, `ai`
//! by default; a server passes the one service of the API a request addresses).
//! `UNSIGNED-PAYLOAD` is refused unless [`VerifyOptions::allow_unsigned_payload`]
//! says otherwise: AWS accepts it only for S3-like services, and elsewhere it would
//! leave a presigned request's body (its parameters) outside the signature.
//! Signatures are compared in constant time, and no error message ever contains a
//! secret or the signature Gatehouse computed.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use gatehouse_secret::Secret;

/// The only signing algorithm Gatehouse accepts.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash placeholder of presigned requests to S3-like services; accepted
/// only with [`VerifyOptions::allow_unsigned_payload`].
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Services accepted in the credential scope by default.
pub const DEFAULT_SERVICES: &[&str] = &["iam", "sts", "ai"];
/// The longest validity a presigned URL may ask for (7 days), as AWS.
pub const MAX_PRESIGN_EXPIRES_SECS: i64 = 604_800;
/// The clock skew allowed for the header form, as AWS (15 minutes).
pub const DEFAULT_MAX_SKEW_SECS: i64 = 15 * 60;

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

type HmacSha256 = Hmac<Sha256>;

/// An HTTP request as seen by the server, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The path exactly as on the request line (percent-encoded, without the query).
    pub path: &'a str,
    /// The raw query string, without the leading `?` (may be empty).
    pub query: &'a str,
    /// All request headers, names in any case, repeated names allowed (in arrival
    /// order). Over HTTP/2, pass the `:authority` as a `host` header.
    pub headers: &'a [(&'a str, &'a str)],
    /// The request body bytes.
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    fn header(&self, name: &str) -> Option<&'a str> {
        self.header_values(name).next()
    }
}

/// Verification settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Service names accepted in the credential scope.
    pub services: Vec<String>,
    /// Allowed difference between the request time and now (header form), and how far
    /// in the future a presigned URL's `X-Amz-Date` may be.
    pub max_skew: Duration,
    /// Whether a presigned request may leave its body unsigned (`UNSIGNED-PAYLOAD`),
    /// as S3-like uploads do. Off by default: for a Query API the body holds
    /// parameters, and an unsigned one could change the call a URL was signed for.
    pub allow_unsigned_payload: bool,
    /// The body has not been read yet: its SHA-256 is the one the request declares in
    /// `x-amz-content-sha256`, which must then be a hex digest, signed, in the header form
    /// — so that the signature is verified before a byte of the body is read. The caller
    /// checks the body against it once read ([`declared_payload_matches`]).
    pub body_follows: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            services: DEFAULT_SERVICES.iter().map(|s| (*s).to_owned()).collect(),
            max_skew: Duration::seconds(DEFAULT_MAX_SKEW_SECS),
            allow_unsigned_payload: false,
            body_follows: false,
        }
    }
}

impl VerifyOptions {
    /// Options accepting the given service names (instead of `iam`, `sts`, `ai`).
    pub fn with_services<I, S>(services: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            services: services.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// Where the signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthLocation {
    /// `Authorization` header.
    Header,
    /// Presigned URL query parameters.
    Query,
}

/// Who signed a verified request, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Identity {
    /// The access key id from the credential scope.
    pub access_key_id: String,
    /// Region from the credential scope (any region is accepted).
    pub region: String,
    /// Service from the credential scope (`iam`, `sts`, `ai`, ...).
    pub service: String,
    /// The signed request time (`X-Amz-Date` or `Date`).
    pub request_time: DateTime<Utc>,
    /// The session token sent with the request, if any.
    pub session_token: Option<String>,
    /// Header or presigned query.
    pub location: AuthLocation,
    /// The signed header names, lower-case and sorted.
    pub signed_headers: Vec<String>,
    /// For presigned URLs, the instant after which the URL is no longer valid.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A verified request: the SigV4 identity plus whatever the lookup attached.
#[derive(Debug, Clone)]
pub struct Verified<C> {
    /// Signature facts.
    pub identity: SigV4Identity,
    /// What [`CredentialLookup::lookup`] returned beside the secret (e.g. the
    /// principal, or the verified session claims).
    pub context: C,
}

/// A secret found for an access key id, plus caller-defined context.
#[derive(Debug, Clone)]
pub struct ResolvedCredential<C> {
    /// The secret access key the request must have been signed with.
    pub secret: Secret,
    /// Anything the caller wants back on success.
    pub context: C,
}

/// Why a lookup found no usable secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No such access key id, or the key is inactive.
    #[error("unknown or inactive access key")]
    UnknownAccessKey,
    /// A session token was required and is missing, forged, or does not belong to
    /// the access key id; or a token was sent with a long-term key that takes none.
    #[error("invalid session token")]
    InvalidSessionToken,
    /// The session token has expired.
    #[error("expired session token")]
    ExpiredSessionToken,
    /// The credential exists but is refused (e.g. its sessions were revoked). The
    /// message is returned to the caller: it must not contain a secret.
    #[error("{0}")]
    Denied(String),
}

/// Maps an access key id (and the session token sent with it) to the secret.
///
/// Implemented for closures `Fn(&str, Option<&str>) -> Result<ResolvedCredential<C>, LookupError>`.
pub trait CredentialLookup {
    /// Extra data returned on success.
    type Context;
    /// Finds the secret for `access_key_id`. `session_token` is the
    /// `X-Amz-Security-Token` sent with the request, if any; the lookup decides
    /// whether a token is required (temporary `ASIA` keys) or forbidden.
    fn lookup(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
    ) -> Result<ResolvedCredential<Self::Context>, LookupError>;
}

impl<F, C> CredentialLookup for F
where
    F: Fn(&str, Option<&str>) -> Result<ResolvedCredential<C>, LookupError>,
{
    type Context = C;
    fn lookup(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
    ) -> Result<ResolvedCredential<C>, LookupError> {
        self(access_key_id, session_token)
    }
}

/// Why a request's signature was refused. Each variant maps to an AWS error code
/// ([`SigV4Error::aws_code`]); messages never contain secrets or computed signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("Request is missing Authentication Token")]
    MissingAuthenticationToken,
    /// The signature elements are malformed or incomplete.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The signature (or the credential scope it covers) does not match.
    #[error("{0}")]
    SignatureDoesNotMatch(String),
    /// The access key id is unknown, or the session token is invalid.
    #[error("The security token included in the request is invalid.")]
    InvalidClientTokenId,
    /// The session token has expired.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    /// The request time is outside the allowed skew, or the presigned URL expired.
    #[error("{0}")]
    RequestExpired(String),
    /// `x-amz-content-sha256` does not match the body (or is not allowed here).
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    XAmzContentSha256Mismatch,
    /// The credential is valid but refused.
    #[error("{0}")]
    AccessDenied(String),
}

impl SigV4Error {
    /// The AWS error code for the protocol's error response.
    pub fn aws_code(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationToken",
            Self::IncompleteSignature(_) => "IncompleteSignature",
            Self::SignatureDoesNotMatch(_) => "SignatureDoesNotMatch",
            Self::InvalidClientTokenId => "InvalidClientTokenId",
            Self::ExpiredToken => "ExpiredToken",
            Self::RequestExpired(_) => "RequestExpired",
            Self::XAmzContentSha256Mismatch => "XAmzContentSHA256Mismatch",
            Self::AccessDenied(_) => "AccessDenied",
        }
    }

    /// The HTTP status AWS answers this error with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::IncompleteSignature(_)
            | Self::RequestExpired(_)
            | Self::ExpiredToken
            | Self::XAmzContentSha256Mismatch => 400,
            Self::MissingAuthenticationToken
            | Self::SignatureDoesNotMatch(_)
            | Self::InvalidClientTokenId
            | Self::AccessDenied(_) => 403,
        }
    }

    fn mismatch() -> Self {
        Self::SignatureDoesNotMatch(SIGNATURE_MISMATCH.to_owned())
    }

    fn incomplete(msg: &str) -> Self {
        Self::IncompleteSignature(msg.to_owned())
    }
}

impl From<LookupError> for SigV4Error {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::UnknownAccessKey | LookupError::InvalidSessionToken => {
                Self::InvalidClientTokenId
            }
            LookupError::ExpiredSessionToken => Self::ExpiredToken,
            LookupError::Denied(m) => Self::AccessDenied(m),
        }
    }
}

/// The credential scope `AKID/YYYYMMDD/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Credential {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
}

impl Credential {
    fn parse(s: &str) -> Result<Self, SigV4Error> {
        let parts: Vec<&str> = s.split('/').collect();
        let [akid, date, region, service, terminator] = parts.as_slice() else {
            return Err(SigV4Error::incomplete(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term",
            ));
        };
        if akid.is_empty() || akid.len() > 128 {
            return Err(SigV4Error::incomplete(
                "Credential has an invalid access key id",
            ));
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SigV4Error::incomplete(
                "Credential date must be in the form YYYYMMDD",
            ));
        }
        let valid_token = |t: &str| {
            !t.is_empty()
                && t.len() <= 64
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !valid_token(region) {
            return Err(SigV4Error::SignatureDoesNotMatch(
                "Credential should be scoped to a valid region.".to_owned(),
            ));
        }
        if !valid_token(service) {
            return Err(SigV4Error::SignatureDoesNotMatch(
                "Credential should be scoped to a valid service.".to_owned(),
            ));
        }
        if *terminator != "aws4_request" {
            return Err(SigV4Error::SignatureDoesNotMatch(
                "Credential should be scoped with a valid terminator: 'aws4_request'.".to_owned(),
            ));
        }
        Ok(Self {
            access_key_id: (*akid).to_owned(),
            date: (*date).to_owned(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
        })
    }

    fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Everything needed to recompute the signature, parsed from either form.
struct Parsed {
    location: AuthLocation,
    credential: Credential,
    signed_headers: Vec<String>,
    signature: [u8; 32],
    signature_ok_format: bool,
    amz_date: String,
    request_time: DateTime<Utc>,
    expires: Option<i64>,
    session_token: Option<String>,
}

/// Verifies the SigV4 signature of `req` at time `now`.
///
/// On success returns the signer's identity and the lookup's context. The order of
/// checks is: form and scope, request time, credential lookup, payload hash,
/// signature (constant-time).
pub fn verify<L: CredentialLookup>(
    req: &Request<'_>,
    lookup: &L,
    now: DateTime<Utc>,
    opts: &VerifyOptions,
) -> Result<Verified<L::Context>, SigV4Error> {
    let parsed = parse(req)?;
    let cred = &parsed.credential;

    if !opts.services.iter().any(|s| s == &cred.service) {
        // AWS names the service it expected when there is one.
        return Err(SigV4Error::SignatureDoesNotMatch(
            match opts.services.as_slice() {
                [one] => format!("Credential should be scoped to correct service: '{one}'."),
                _ => "Credential should be scoped to correct service.".to_owned(),
            },
        ));
    }
    let declared = if opts.body_follows {
        Some(declared_payload_hash(req, &parsed)?)
    } else {
        None
    };
    if Some(cred.date.as_str()) != parsed.amz_date.get(..8) {
        return Err(SigV4Error::SignatureDoesNotMatch(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.".to_owned(),
        ));
    }

    // Time window.
    let t = parsed.request_time;
    let expires_at = match parsed.expires {
        None => {
            if t < now - opts.max_skew {
                return Err(SigV4Error::RequestExpired(format!(
                    "Signature expired: {} is now earlier than {} ({} - {} min.)",
                    parsed.amz_date,
                    format_amz_date(now - opts.max_skew),
                    format_amz_date(now),
                    opts.max_skew.num_minutes()
                )));
            }
            if t > now + opts.max_skew {
                return Err(SigV4Error::RequestExpired(format!(
                    "Signature not yet current: {} is still later than {} ({} + {} min.)",
                    parsed.amz_date,
                    format_amz_date(now + opts.max_skew),
                    format_amz_date(now),
                    opts.max_skew.num_minutes()
                )));
            }
            None
        }
        Some(secs) => {
            if t > now + opts.max_skew {
                return Err(SigV4Error::RequestExpired(
                    "Request is not yet valid: X-Amz-Date is in the future.".to_owned(),
                ));
            }
            let end = t + Duration::seconds(secs);
            if now > end {
                return Err(SigV4Error::RequestExpired(format!(
                    "Request has expired: it was valid until {}.",
                    format_amz_date(end)
                )));
            }
            Some(end)
        }
    };

    let resolved = lookup.lookup(&cred.access_key_id, parsed.session_token.as_deref())?;

    // Payload hash candidates.
    let computed = declared.map_or_else(|| sha256_hex(req.body), str::to_ascii_lowercase);
    let claimed = req.header("x-amz-content-sha256").map(str::trim);
    let candidates: Vec<&str> = match (parsed.location, claimed) {
        (AuthLocation::Header, Some(c)) => {
            if c.eq_ignore_ascii_case(&computed) {
                vec![c]
            } else {
                return Err(SigV4Error::XAmzContentSha256Mismatch);
            }
        }
        (AuthLocation::Header, None) => vec![computed.as_str()],
        (AuthLocation::Query, Some(c)) => {
            if (c == UNSIGNED_PAYLOAD && opts.allow_unsigned_payload)
                || c.eq_ignore_ascii_case(&computed)
            {
                vec![c]
            } else {
                return Err(SigV4Error::XAmzContentSha256Mismatch);
            }
        }
        (AuthLocation::Query, None) if opts.allow_unsigned_payload => {
            vec![computed.as_str(), UNSIGNED_PAYLOAD]
        }
        (AuthLocation::Query, None) => vec![computed.as_str()],
    };

    let key = signing_key(
        resolved.secret.expose(),
        &cred.date,
        &cred.region,
        &cred.service,
    );
    let scope = cred.scope();
    let mut matched = Choice::from(0u8);
    for payload_hash in candidates {
        let creq = canonical_request(
            req,
            &parsed.signed_headers,
            payload_hash,
            parsed.location == AuthLocation::Query,
        )?;
        let sts = string_to_sign(&parsed.amz_date, &scope, &creq);
        let expected = hmac_sha256(&key, sts.as_bytes());
        matched |= expected.ct_eq(&parsed.signature);
    }
    if !parsed.signature_ok_format || !bool::from(matched) {
        return Err(SigV4Error::mismatch());
    }

    Ok(Verified {
        identity: SigV4Identity {
            access_key_id: parsed.credential.access_key_id,
            region: parsed.credential.region,
            service: parsed.credential.service,
            request_time: parsed.request_time,
            session_token: parsed.session_token,
            location: parsed.location,
            signed_headers: parsed.signed_headers,
            expires_at,
        },
        context: resolved.context,
    })
}

/// The body's SHA-256 a header-signed request declares (for [`VerifyOptions::body_follows`]):
/// `x-amz-content-sha256`, a hex digest, among the signed headers.
fn declared_payload_hash<'a>(req: &Request<'a>, parsed: &Parsed) -> Result<&'a str, SigV4Error> {
    let declared = req.header("x-amz-content-sha256").map(str::trim);
    match declared {
        Some(d)
            if parsed.location == AuthLocation::Header
                && d.len() == 64
                && d.bytes().all(|b| b.is_ascii_hexdigit())
                && parsed
                    .signed_headers
                    .iter()
                    .any(|h| h == "x-amz-content-sha256") =>
        {
            Ok(d)
        }
        _ => Err(SigV4Error::incomplete(
            "Declare the body's SHA-256 (hex) in an x-amz-content-sha256 header and sign it: \
             the signature is checked before the body is read.",
        )),
    }
}

/// Whether `body` is the one a request verified with [`VerifyOptions::body_follows`]
/// declared in its `x-amz-content-sha256` header (`declared`).
pub fn declared_payload_matches(declared: &str, body: &[u8]) -> bool {
    let computed = sha256_hex(body);
    bool::from(
        computed
            .as_bytes()
            .ct_eq(declared.trim().to_ascii_lowercase().as_bytes()),
    )
}

/// Whether the request carries SigV4 credentials at all (header or presigned).
pub fn has_sigv4(req: &Request<'_>) -> bool {
    req.header("authorization")
        .is_some_and(|a| a.trim_start().starts_with("AWS4-"))
        || query_pairs(req.query).any(|(k, _)| k == "X-Amz-Algorithm")
}

fn parse(req: &Request<'_>) -> Result<Parsed, SigV4Error> {
    let auth_header = req.header("authorization");
    let presigned = query_pairs(req.query).any(|(k, _)| k == "X-Amz-Algorithm");
    match (auth_header, presigned) {
        (Some(_), true) => Err(SigV4Error::incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified",
        )),
        (Some(h), false) => parse_header(req, h),
        (None, true) => parse_query(req),
        (None, false) => Err(SigV4Error::MissingAuthenticationToken),
    }
}

fn parse_header(req: &Request<'_>, header: &str) -> Result<Parsed, SigV4Error> {
    let header = header.trim();
    let Some(rest) = header.strip_prefix(ALGORITHM) else {
        if header.starts_with("AWS") {
            return Err(SigV4Error::incomplete(
                "Unsupported AWS 'algorithm': only AWS4-HMAC-SHA256 is supported",
            ));
        }
        return Err(SigV4Error::MissingAuthenticationToken);
    };
    if !rest.starts_with([' ', '\t']) {
        return Err(SigV4Error::incomplete(
            "Unsupported AWS 'algorithm': only AWS4-HMAC-SHA256 is supported",
        ));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(SigV4Error::incomplete(
                "Authorization header requires each component to be of the form key=value",
            ));
        };
        let slot = match k.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => {
                return Err(SigV4Error::incomplete(
                    "Authorization header contains an unknown component",
                ));
            }
        };
        if slot.replace(v.trim()).is_some() {
            return Err(SigV4Error::incomplete(
                "Authorization header contains a repeated component",
            ));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(SigV4Error::incomplete(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters",
        ));
    };
    let credential = Credential::parse(credential)?;
    let signed_headers = parse_signed_headers(signed_headers)?;

    let (amz_date, request_time) = if let Some(d) = req.header("x-amz-date") {
        let t = parse_amz_date(d.trim()).ok_or_else(|| {
            SigV4Error::incomplete(
                "X-Amz-Date must be in the ISO-8601 basic format YYYYMMDD'T'HHMMSS'Z'",
            )
        })?;
        (d.trim().to_owned(), t)
    } else if let Some(d) = req.header("date") {
        let t = DateTime::parse_from_rfc2822(d.trim())
            .map_err(|_| SigV4Error::incomplete("Date header is not a valid HTTP date"))?
            .with_timezone(&Utc);
        (format_amz_date(t), t)
    } else {
        return Err(SigV4Error::incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };

    let (signature, signature_ok_format) = decode_signature(signature);
    Ok(Parsed {
        location: AuthLocation::Header,
        credential,
        signed_headers,
        signature,
        signature_ok_format,
        amz_date,
        request_time,
        expires: None,
        session_token: req
            .header("x-amz-security-token")
            .map(|t| t.trim().to_owned()),
    })
}

fn parse_query(req: &Request<'_>) -> Result<Parsed, SigV4Error> {
    let mut algorithm = None;
    let mut credential = None;
    let mut date = None;
    let mut expires = None;
    let mut signed_headers = None;
    let mut signature = None;
    let mut token = None;
    for (k, v) in query_pairs(req.query) {
        let slot = match k.as_str() {
            "X-Amz-Algorithm" => &mut algorithm,
            "X-Amz-Credential" => &mut credential,
            "X-Amz-Date" => &mut date,
            "X-Amz-Expires" => &mut expires,
            "X-Amz-SignedHeaders" => &mut signed_headers,
            "X-Amz-Signature" => &mut signature,
            "X-Amz-Security-Token" => &mut token,
            _ => continue,
        };
        if slot.replace(v).is_some() {
            return Err(SigV4Error::incomplete(
                "AWS query-string parameters must not be repeated",
            ));
        }
    }
    let (
        Some(algorithm),
        Some(credential),
        Some(date),
        Some(expires),
        Some(signed_headers),
        Some(signature),
    ) = (
        algorithm,
        credential,
        date,
        expires,
        signed_headers,
        signature,
    )
    else {
        return Err(SigV4Error::incomplete(
            "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', and 'X-Amz-Expires'.",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(SigV4Error::incomplete(
            "X-Amz-Algorithm only supports 'AWS4-HMAC-SHA256'",
        ));
    }
    let credential = Credential::parse(&credential)?;
    let signed_headers = parse_signed_headers(&signed_headers)?;
    let request_time = parse_amz_date(&date).ok_or_else(|| {
        SigV4Error::incomplete(
            "X-Amz-Date must be in the ISO-8601 basic format YYYYMMDD'T'HHMMSS'Z'",
        )
    })?;
    let expires: i64 = match expires.parse::<i64>() {
        Ok(e) if (1..=MAX_PRESIGN_EXPIRES_SECS).contains(&e) && !expires.starts_with('+') => e,
        _ => {
            return Err(SigV4Error::incomplete(
                "X-Amz-Expires must be a whole number of seconds between 1 and 604800 (7 days)",
            ));
        }
    };
    let (signature, signature_ok_format) = decode_signature(&signature);
    Ok(Parsed {
        location: AuthLocation::Query,
        credential,
        signed_headers,
        signature,
        signature_ok_format,
        amz_date: date,
        request_time,
        expires: Some(expires),
        session_token: token,
    })
}

fn parse_signed_headers(s: &str) -> Result<Vec<String>, SigV4Error> {
    let mut names = Vec::new();
    for name in s.split(';') {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase() && b != b':');
        if !valid {
            return Err(SigV4Error::incomplete(
                "SignedHeaders must be a ';'-separated list of lower-case header names",
            ));
        }
        names.push(name.to_owned());
    }
    names.sort();
    names.dedup();
    if !names.iter().any(|n| n == "host") {
        return Err(SigV4Error::SignatureDoesNotMatch(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    Ok(names)
}

/// Decodes a hex signature; a malformed one yields zeros and `false` so that the
/// comparison still runs and fails the same way as a wrong one.
fn decode_signature(s: &str) -> ([u8; 32], bool) {
    let mut out = [0u8; 32];
    let ok = s.len() == 64 && hex::decode_to_slice(s, &mut out).is_ok();
    (out, ok)
}

/// Parses `YYYYMMDD'T'HHMMSS'Z'`.
pub fn parse_amz_date(s: &str) -> Option<DateTime<Utc>> {
    if s.len() != 16 || !s.is_ascii() {
        return None;
    }
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|n| n.and_utc())
}

/// Formats a time as `YYYYMMDD'T'HHMMSS'Z'`.
pub fn format_amz_date(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Splits a raw query string into decoded (name, value) pairs.
fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (decode_component(k), decode_component(v))
    })
}

fn decode_component(s: &str) -> String {
    String::from_utf8_lossy(&decode_component_bytes(s)).into_owned()
}

/// Decodes one query component as `application/x-www-form-urlencoded`: `+` is a
/// space, then `%XX` escapes are decoded (malformed escapes stay literal). This is
/// what the AWS signers assume: botocore sends spaces as `+` and signs `%20`, and
/// `aws-sigv4` parses the query the same way; a literal plus travels as `%2B`.
fn decode_component_bytes(s: &str) -> Vec<u8> {
    if s.contains('+') {
        let replaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&replaced).collect()
    } else {
        percent_encoding::percent_decode_str(s).collect()
    }
}

/// SigV4 URI encoding: every byte except `A-Z a-z 0-9 - _ . ~` becomes `%XX`
/// (upper-case hex). `/` is encoded too; callers encode path segments one by one.
pub fn uri_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// The canonical URI for a non-S3 service, from the path as sent on the wire:
/// dot segments and empty segments removed (RFC 3986 §5.2.4, as the AWS SDKs
/// normalize), then each segment URI-encoded once more (so `%` becomes `%25`).
pub fn canonical_uri(raw_path: &str) -> String {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 8);
    for seg in &segments {
        out.push('/');
        out.push_str(&uri_encode(seg.as_bytes()));
    }
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if out.is_empty() || (trailing && !out.ends_with('/')) {
        out.push('/');
    }
    out
}

/// The canonical query string: pairs decoded (`+` as space), re-encoded with [`uri_encode`], sorted
/// by encoded name then value. With `presigned`, `X-Amz-Signature` is left out.
pub fn canonical_query(raw_query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let name = decode_component_bytes(k);
            if presigned && name == b"X-Amz-Signature" {
                return None;
            }
            Some((uri_encode(&name), uri_encode(&decode_component_bytes(v))))
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(raw_query.len() + 16);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Trims a header value and collapses inner runs of whitespace to one space.
fn normalize_header_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for word in v.split_ascii_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The canonical request text (method, URI, query, headers, signed headers, payload
/// hash) for the given signed header names (lower-case, sorted).
pub fn canonical_request(
    req: &Request<'_>,
    signed_headers: &[String],
    payload_hash: &str,
    presigned: bool,
) -> Result<String, SigV4Error> {
    let mut out = String::with_capacity(256);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.path));
    out.push('\n');
    out.push_str(&canonical_query(req.query, presigned));
    out.push('\n');
    for name in signed_headers {
        let values: Vec<String> = req
            .header_values(name)
            .map(normalize_header_value)
            .collect();
        if values.is_empty() {
            return Err(SigV4Error::SignatureDoesNotMatch(
                "A header listed in SignedHeaders is not present in the request.".to_owned(),
            ));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

/// The string to sign for a canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The derived signing key `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")`.
pub fn signing_key(secret: &[u8], date: &str, region: &str, service: &str) -> SigningKey {
    let mut k = Vec::with_capacity(secret.len() + 4);
    k.extend_from_slice(b"AWS4");
    k.extend_from_slice(secret);
    let k = zeroize::Zeroizing::new(k);
    let k_date = hmac_sha256(&k, date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    SigningKey(hmac_sha256(&k_service, b"aws4_request"))
}

/// A derived SigV4 signing key (secret; `Debug` is redacted).
#[derive(Clone)]
pub struct SigningKey([u8; 32]);

impl std::ops::Deref for SigningKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// Client-side signing of the header form, for tests and for Gatehouse's own
/// clients: returns the `Authorization` header value for `req`, which must already
/// carry `host` and `x-amz-date` (and `x-amz-security-token`, if any) headers. All
/// of the request's headers named in `signed_headers` are signed.
pub fn authorization_header(
    req: &Request<'_>,
    access_key_id: &str,
    secret: &Secret,
    region: &str,
    service: &str,
    signed_headers: &[&str],
) -> Result<String, SigV4Error> {
    let amz_date = req
        .header("x-amz-date")
        .ok_or_else(|| SigV4Error::incomplete("x-amz-date header is required to sign"))?;
    if parse_amz_date(amz_date).is_none() {
        return Err(SigV4Error::incomplete("x-amz-date header is malformed"));
    }
    let mut names: Vec<String> = signed_headers
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let date = amz_date.get(..8).unwrap_or_default();
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let creq = canonical_request(req, &names, &sha256_hex(req.body), false)?;
    let sts = string_to_sign(amz_date, &scope, &creq);
    let key = signing_key(secret.expose(), date, region, service);
    let sig = hex::encode(hmac_sha256(&key, sts.as_bytes()));
    Ok(format!(
        "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={}, Signature={sig}",
        names.join(";")
    ))
}

/// Client-side presigning, for tests and Gatehouse's own clients: returns `req`'s query
/// string with the presigned parameters added (`X-Amz-Algorithm` ... `X-Amz-Signature`),
/// valid for `expires_secs` from `now`. Only `host` is signed (it must be among `req`'s
/// headers); `payload_hash` is what the canonical request names for the body (the body's
/// [`sha256_hex`], or [`UNSIGNED_PAYLOAD`] as S3 presigners do).
#[allow(clippy::too_many_arguments)]
pub fn presigned_query(
    req: &Request<'_>,
    access_key_id: &str,
    secret: &Secret,
    region: &str,
    service: &str,
    now: DateTime<Utc>,
    expires_secs: i64,
    payload_hash: &str,
) -> Result<String, SigV4Error> {
    let amz_date = format_amz_date(now);
    let date = amz_date.get(..8).unwrap_or_default();
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let credential = format!("{access_key_id}/{scope}");
    let auth = [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", credential.as_str()),
        ("X-Amz-Date", amz_date.as_str()),
        ("X-Amz-Expires", &expires_secs.to_string()),
        ("X-Amz-SignedHeaders", "host"),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", uri_encode(v.as_bytes())))
    .collect::<Vec<_>>()
    .join("&");
    let query = if req.query.is_empty() {
        auth
    } else {
        format!("{}&{auth}", req.query)
    };
    let unsigned = Request {
        query: &query,
        ..*req
    };
    let creq = canonical_request(&unsigned, &["host".to_owned()], payload_hash, true)?;
    let sts = string_to_sign(&amz_date, &scope, &creq);
    let key = signing_key(secret.expose(), date, region, service);
    let sig = hex::encode(hmac_sha256(&key, sts.as_bytes()));
    Ok(format!("{query}&X-Amz-Signature={sig}"))
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // HMAC accepts keys of any length, so this never fails.
    if let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) {
        mac.update(data);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn uri_canonicalization() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("//example//"), "/example/");
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
        assert_eq!(canonical_uri("/a/./b/../c"), "/a/c");
        assert_eq!(canonical_uri("/foo/bar/."), "/foo/bar/");
        assert_eq!(
            canonical_uri("/v1/chat/completions"),
            "/v1/chat/completions"
        );
        assert_eq!(
            canonical_uri("/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
            "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        );
    }

    #[test]
    fn query_canonicalization() {
        assert_eq!(
            canonical_query("Param2=value2&Param1=value1", false),
            "Param1=value1&Param2=value2"
        );
        assert_eq!(canonical_query("a=10&a=9", false), "a=10&a=9");
        assert_eq!(canonical_query("x=a.b&x=a%2Fb", false), "x=a%2Fb&x=a.b");
        assert_eq!(canonical_query("q=a+b", false), "q=a%20b");
        assert_eq!(canonical_query("q=a%2Bb", false), "q=a%2Bb");
        assert_eq!(canonical_query("b&a=1", false), "a=1&b=");
        assert_eq!(canonical_query("a=1=2", false), "a=1%3D2");
        assert_eq!(canonical_query("%E1%88%B4=bar", false), "%E1%88%B4=bar");
        assert_eq!(
            canonical_query("X-Amz-Signature=abc&X-Amz-Date=1", true),
            "X-Amz-Date=1"
        );
        assert_eq!(canonical_query("", false), "");
    }

    #[test]
    fn header_value_normalization() {
        assert_eq!(normalize_header_value("  a   b \t c  "), "a b c");
        assert_eq!(normalize_header_value("\"a   b   c\""), "\"a b c\"");
    }

    #[test]
    fn error_codes() {
        assert_eq!(
            SigV4Error::MissingAuthenticationToken.aws_code(),
            "MissingAuthenticationToken"
        );
        assert_eq!(SigV4Error::mismatch().aws_code(), "SignatureDoesNotMatch");
        assert_eq!(SigV4Error::mismatch().http_status(), 403);
        assert_eq!(
            SigV4Error::from(LookupError::UnknownAccessKey).aws_code(),
            "InvalidClientTokenId"
        );
        assert_eq!(
            SigV4Error::from(LookupError::Denied("x".into())).aws_code(),
            "AccessDenied"
        );
    }

    #[test]
    fn presigned_query_round_trip() {
        let now = parse_amz_date("20260101T000000Z").unwrap();
        let headers = [("host", "example.test")];
        let req = Request {
            method: "GET",
            path: "/",
            query: "Action=GetUser&Version=2010-05-08",
            headers: &headers,
            body: b"",
        };
        let secret = Secret::from("s".repeat(40));
        let lookup = |_: &str, _: Option<&str>| -> Result<ResolvedCredential<()>, LookupError> {
            Ok(ResolvedCredential {
                secret: Secret::from("s".repeat(40)),
                context: (),
            })
        };
        let q =
            presigned_query(&req, "AKID", &secret, "r", "iam", now, 60, &sha256_hex(b"")).unwrap();
        let signed = Request { query: &q, ..req };
        let opts = VerifyOptions::with_services(["iam"]);
        let v = verify(&signed, &lookup, now, &opts).unwrap();
        assert_eq!(v.identity.location, AuthLocation::Query);
        // Signed UNSIGNED-PAYLOAD: refused unless the service allows it.
        let q =
            presigned_query(&req, "AKID", &secret, "r", "iam", now, 60, UNSIGNED_PAYLOAD).unwrap();
        let signed = Request { query: &q, ..req };
        assert!(verify(&signed, &lookup, now, &opts).is_err());
        let s3_like = VerifyOptions {
            allow_unsigned_payload: true,
            ..opts
        };
        verify(&signed, &lookup, now, &s3_like).unwrap();
    }

    #[test]
    fn amz_date() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert!(parse_amz_date("2015-08-30T12:36:00Z").is_none());
        assert!(parse_amz_date("20150830T123600").is_none());
    }
}
