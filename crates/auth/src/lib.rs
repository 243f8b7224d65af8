//! Gatehouse credentials: the pure, I/O-free half of authentication.
//!
//! This crate exists so that every way a caller proves who it is can be checked
//! without touching the network or the database, on any node, and be tested in
//! isolation against published vectors:
//!
//! - [`sigv4`] verifies AWS Signature Version 4 (the `Authorization` header form and
//!   presigned URLs), the protocol the AWS CLI, boto3 and the SDKs speak to the
//!   control plane.
//! - [`session`] issues and verifies STS session tokens: signed, self-contained,
//!   carrying the session's secret sealed with AES-256-GCM, so any node holding the
//!   signing key ring can verify a request made with temporary credentials without a
//!   database round trip, and key rotation never invalidates live sessions.
//! - [`totp`] implements RFC 6238 one-time codes for virtual MFA devices, with a
//!   replay guard.
//! - [`Secret`] (re-exported from `gatehouse-secret`, the workspace's one secret type)
//!   holds every secret value; [`SealingKey`] is the one AEAD primitive.
//!
//! The crate never logs, never stores and never puts a secret into an error message.
//!
//! # Example: temporary credentials end to end
//!
//! ```
//! use chrono::{Duration, Utc};
//! use gatehouse_auth::session::{self, SessionClaims, SigningKeyRing};
//! use gatehouse_auth::sigv4::{self, Request, VerifyOptions};
//!
//! // STS side: mint credentials and a token (any node holding the ring can verify).
//! let ring = SigningKeyRing::generate();
//! let now = Utc::now();
//! let (akid, secret) = session::generate_temporary_credentials();
//! let claims = SessionClaims::new(
//!     akid.clone(),
//!     "arn:gatehouse:sts::111122223333:assumed-role/app/s1",
//!     "111122223333",
//!     now,
//!     now + Duration::hours(1),
//! );
//! let token = session::issue(&ring, &claims, &secret)?;
//!
//! // Client side: sign a request with them (normally the AWS SDK does this).
//! let amz_date = sigv4::format_amz_date(now);
//! let headers = vec![
//!     ("host", "127.0.0.1:8470"),
//!     ("x-amz-date", amz_date.as_str()),
//!     ("x-amz-security-token", token.as_str()),
//! ];
//! let body = b"Action=GetCallerIdentity&Version=2011-06-15";
//! let unsigned = Request { method: "POST", path: "/", query: "", headers: &headers, body };
//! let authz = sigv4::authorization_header(
//!     &unsigned, &akid, &secret, "us-east-1", "sts",
//!     &["host", "x-amz-date", "x-amz-security-token"],
//! )?;
//! let mut signed_headers = headers.clone();
//! signed_headers.push(("authorization", authz.as_str()));
//!
//! // Server side: verify, resolving ASIA keys from the token itself.
//! let req = Request { headers: &signed_headers, ..unsigned };
//! let lookup = |id: &str, tok: Option<&str>| session::resolve_for_sigv4(&ring, id, tok, now);
//! let verified = sigv4::verify(&req, &lookup, now, &VerifyOptions::default())?;
//! assert_eq!(verified.identity.service, "sts");
//! assert_eq!(verified.context.principal_arn, claims.principal_arn);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod session;
pub mod sigv4;
pub mod totp;

pub use gatehouse_secret::{SealingKey, Secret};
