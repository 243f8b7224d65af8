//! Identity sources: the company's OpenID Connect providers people sign in with. The rules
//! a source must keep live here, once, for the CLI, the config file and the Query API:
//! an issuer Gatehouse will trust to redirect people to (https, or http on loopback for a
//! test IdP), scopes that are OAuth scope tokens with `openid` among them, claim names and
//! session-tag keys that can become condition keys.

use crate::error::{SigninError, invalid};
use gatehouse_store::{NewSigninSource, Secret, SigninClaimNames, SigninSource, Store};
use std::collections::BTreeMap;

/// The scopes asked of the IdP when none are configured.
pub const DEFAULT_SCOPES: &[&str] = &["openid", "email", "profile"];

/// An identity source as an operator describes it (the client secret's value, read from
/// the environment variable the operator named, is passed beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// 1-64 letters, digits, `-`, `_`.
    pub name: String,
    /// The IdP's issuer URL.
    pub issuer: String,
    /// Gatehouse's client id at the IdP.
    pub client_id: String,
    /// The scopes asked for (empty: [`DEFAULT_SCOPES`]).
    pub scopes: Vec<String>,
    /// The claim with the groups (default `groups`).
    pub groups_claim: Option<String>,
    /// The claim with the email (default `email`).
    pub email_claim: Option<String>,
    /// The claim with the authentication methods (default `amr`).
    pub amr_claim: Option<String>,
    /// Session tags: tag key → claim name.
    pub tags: BTreeMap<String, String>,
}

/// The ARN an identity source is authorized as:
/// `arn:gatehouse:gatehouse::ACCOUNT:identity-source/NAME`.
pub fn source_arn(account: &str, name: &str) -> String {
    format!("arn:gatehouse:gatehouse::{account}:identity-source/{name}")
}

/// Checks a source or assignment-scoped name: 1-64 letters, digits, `-`, `_`.
pub fn validate_source_name(name: &str) -> Result<(), SigninError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(format!(
            "identity source name {name:?} must be 1-64 letters, digits, '-' or '_'"
        )));
    }
    Ok(())
}

/// Checks an issuer: an absolute `https` URL without query or fragment, or `http` to a
/// loopback address (an IdP on the same machine, as in tests). People are sent there with
/// a login request, so a plain-text issuer elsewhere would leak codes on the network.
pub fn validate_issuer(issuer: &str) -> Result<(), SigninError> {
    let url = url::Url::parse(issuer)
        .map_err(|e| invalid(format!("issuer {issuer:?} is not a URL: {e}")))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(format!(
            "issuer {issuer:?} must have no query, fragment or user information"
        )));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(invalid(format!(
            "issuer {issuer:?} must be an https URL (http only to a loopback address)"
        ))),
    }
}

/// Checks an OAuth scope token (RFC 6749 §3.3: %x21 / %x23-5B / %x5D-7E).
fn validate_scope(scope: &str) -> Result<(), SigninError> {
    let ok = !scope.is_empty()
        && scope.len() <= 256
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "scope {scope:?} is not an OAuth scope token (RFC 6749 section 3.3)"
        )))
    }
}

/// Checks a claim name: 1-128 printable characters, no spaces.
fn validate_claim(what: &str, claim: &str) -> Result<(), SigninError> {
    if claim.is_empty()
        || claim.chars().count() > 128
        || claim.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(invalid(format!(
            "{what} claim name {claim:?} must be 1-128 printable characters without spaces"
        )));
    }
    Ok(())
}

/// Checks a session-tag key as the store's tag rules and STS do: 1-128 letters, digits,
/// spaces and `_ . : / = + - @`, not starting with `aws:`.
pub fn validate_tag_key(key: &str) -> Result<(), SigninError> {
    let ok = !key.is_empty()
        && key.chars().count() <= 128
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c))
        && !key.to_ascii_lowercase().starts_with("aws:");
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "session tag key {key:?} must be 1-128 letters, digits, spaces or _.:/=+-@, not starting with aws:"
        )))
    }
}

/// Checks a client id: 1-255 printable characters.
fn validate_client_id(id: &str) -> Result<(), SigninError> {
    if id.is_empty() || id.len() > 255 || id.chars().any(char::is_control) {
        return Err(invalid(format!(
            "client id {id:?} must be 1-255 printable characters"
        )));
    }
    Ok(())
}

impl SourceSpec {
    /// The spec checked and turned into what the store keeps.
    pub fn validate(&self, client_secret: Option<Secret>) -> Result<NewSigninSource, SigninError> {
        validate_source_name(&self.name)?;
        validate_issuer(&self.issuer)?;
        validate_client_id(&self.client_id)?;
        let scopes: Vec<String> = if self.scopes.is_empty() {
            DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            self.scopes.clone()
        };
        for s in &scopes {
            validate_scope(s)?;
        }
        if !scopes.iter().any(|s| s == "openid") {
            return Err(invalid("the scopes must include openid"));
        }
        let defaults = SigninClaimNames::default();
        let claims = SigninClaimNames {
            groups: self.groups_claim.clone().unwrap_or(defaults.groups),
            email: self.email_claim.clone().unwrap_or(defaults.email),
            amr: self.amr_claim.clone().unwrap_or(defaults.amr),
            tags: self.tags.clone(),
        };
        validate_claim("groups", &claims.groups)?;
        validate_claim("email", &claims.email)?;
        validate_claim("amr", &claims.amr)?;
        if claims.tags.len() > 50 {
            return Err(invalid("at most 50 session tags may come from claims"));
        }
        let mut folded = std::collections::BTreeSet::new();
        for (key, claim) in &claims.tags {
            validate_tag_key(key)?;
            validate_claim("session tag", claim)?;
            // Tag keys are one key to the engine whatever their case.
            if !folded.insert(key.to_lowercase()) {
                return Err(invalid(format!(
                    "session tag key {key:?} is given twice (tag keys ignore case)"
                )));
            }
        }
        Ok(NewSigninSource {
            name: self.name.clone(),
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret,
            scopes,
            claims,
        })
    }
}

/// Adds an identity source (`replace`: replaces the one of that name; its assignments stay).
pub async fn put_source(
    store: &Store,
    account: &str,
    spec: &SourceSpec,
    client_secret: Option<Secret>,
    replace: bool,
) -> Result<SigninSource, SigninError> {
    let new = spec.validate(client_secret)?;
    Ok(store.put_signin_source(account, &new, !replace).await?)
}

/// Removes an identity source (refused while assignments name it).
pub async fn remove_source(store: &Store, account: &str, name: &str) -> Result<(), SigninError> {
    validate_source_name(name)?;
    Ok(store.delete_signin_source(account, name).await?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec() -> SourceSpec {
        SourceSpec {
            name: "corp".into(),
            issuer: "https://login.example.com/tenant".into(),
            client_id: "gatehouse".into(),
            scopes: Vec::new(),
            groups_claim: None,
            email_claim: None,
            amr_claim: None,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn defaults_fill_scopes_and_claims() {
        let new = spec().validate(None).unwrap();
        assert_eq!(new.scopes, ["openid", "email", "profile"]);
        assert_eq!(new.claims, SigninClaimNames::default());
    }

    #[test]
    fn issuers_must_be_https_or_loopback_http() {
        for ok in [
            "https://idp.example.com",
            "http://127.0.0.1:9000",
            "http://[::1]:80/x",
            "http://localhost:3000/oidc",
        ] {
            assert!(validate_issuer(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example.com",
            "http://10.0.0.1",
            "https://idp.example.com/?x=1",
            "https://idp.example.com/#f",
            "https://user@idp.example.com",
            "ftp://idp.example.com",
            "idp.example.com",
            "",
        ] {
            assert!(validate_issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        type Change = Box<dyn Fn(&mut SourceSpec)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|s| s.name = "a/b".into()), "identity source name"),
            (Box::new(|s| s.name = String::new()), "identity source name"),
            (Box::new(|s| s.client_id = String::new()), "client id"),
            (Box::new(|s| s.scopes = vec!["email".into()]), "openid"),
            (
                Box::new(|s| s.scopes = vec!["openid".into(), "a\"b".into()]),
                "scope token",
            ),
            (
                Box::new(|s| s.groups_claim = Some("a b".into())),
                "groups claim",
            ),
            (
                Box::new(|s| {
                    s.tags.insert("aws:x".into(), "dept".into());
                }),
                "session tag key",
            ),
            (
                Box::new(|s| {
                    s.tags.insert("Team".into(), "team".into());
                    s.tags.insert("team".into(), "team".into());
                }),
                "ignore case",
            ),
        ];
        for (change, expect) in cases {
            let mut s = spec();
            change(&mut s);
            let e = s.validate(None).unwrap_err();
            assert_eq!(e.aws_code(), "ValidationError");
            assert!(e.to_string().contains(expect), "{e} lacks {expect}");
        }
    }
}
