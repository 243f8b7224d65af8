//! IAM actions behind the token service: virtual MFA devices and OpenID Connect
//! providers. They speak the IAM Query API like `iam/`, but live beside the STS code that
//! uses what they manage (MFA checks for `GetSessionToken`/`AssumeRole`, providers for
//! `AssumeRoleWithWebIdentity`).

use crate::error::ApiError;
use crate::iam::Target;
use crate::iam::conditions::request_keys;
use crate::iam::entity::{Record, authorize_oidc_provider, authorize_principal};
use crate::identity::Caller;
use crate::query::Params;
use crate::xml::Xml;
use crate::{CallContext, authorize, authorize_with};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use data_encoding::BASE64;
use gatehouse_auth::totp::{self, TotpSeed};
use gatehouse_store::PARTITION;

/// The IAM actions this module answers.
pub(crate) const ACTIONS: &[&str] = &[
    "CreateVirtualMFADevice",
    "EnableMFADevice",
    "DeactivateMFADevice",
    "ListMFADevices",
    "ListVirtualMFADevices",
    "DeleteVirtualMFADevice",
    "CreateOpenIDConnectProvider",
    "GetOpenIDConnectProvider",
    "ListOpenIDConnectProviders",
    "DeleteOpenIDConnectProvider",
    "AddClientIDToOpenIDConnectProvider",
    "RemoveClientIDFromOpenIDConnectProvider",
    "TagOpenIDConnectProvider",
    "UntagOpenIDConnectProvider",
    "ListOpenIDConnectProviderTags",
];

/// How many 30-second steps either side of now `EnableMFADevice` searches (authenticator
/// clocks drift).
const ENABLE_WINDOW_STEPS: u64 = 4;

/// True for an IAM action this module answers.
pub(crate) fn is_action(action: &str) -> bool {
    ACTIONS.contains(&action)
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn invalid_code() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "InvalidAuthenticationCode",
        "Authentication code for the MFA device is not valid.",
    )
}

/// Runs one of this module's actions; returns the inside of `<ActionResult>`.
pub(crate) async fn dispatch(
    ctx: &CallContext<'_>,
    action: &str,
    p: &Params,
) -> Result<Option<String>, ApiError> {
    let store = &ctx.store;
    let account = ctx.account();
    match action {
        "CreateVirtualMFADevice" => {
            let name = p.required("VirtualMFADeviceName")?;
            let path = p.get("Path").unwrap_or("/");
            let serial = format!("arn:{PARTITION}:iam::{account}:mfa{path}{name}");
            let keys = request_keys("iam:CreateVirtualMFADevice", p, None)?;
            authorize_with(ctx, "iam:CreateVirtualMFADevice", &serial, &keys)?;
            let seed = TotpSeed::generate();
            let b32 = seed.to_base32();
            let d = store
                .create_virtual_mfa_device(
                    account,
                    Some(path),
                    name,
                    &gatehouse_store::Secret::new(b32.clone()),
                )
                .await?;
            let uri = seed.otpauth_uri("Gatehouse", &d.serial_number);
            let mut x = Xml::new();
            x.wrap("VirtualMFADevice", |x| {
                x.elem("SerialNumber", &d.serial_number)
                    // A blob in AWS's model: base64 of the base32 text.
                    .elem("Base32StringSeed", &BASE64.encode(b32.as_bytes()))
                    .elem("QRCodePNG", &BASE64.encode(uri.as_bytes()));
            });
            Ok(Some(x.finish()))
        }
        "EnableMFADevice" => {
            let user = p.required("UserName")?.to_owned();
            let serial = p.required("SerialNumber")?;
            let c1 = p.required("AuthenticationCode1")?;
            let c2 = p.required("AuthenticationCode2")?;
            let user = authorize_principal(ctx, "iam:EnableMFADevice", Target::User, &user, p)
                .await?
                .name;
            let seed = store.mfa_seed_unassigned(account, serial).await?;
            let seed = TotpSeed::from_base32(seed.expose_str().ok_or_else(ApiError::internal)?)
                .map_err(|_| ApiError::internal())?;
            let now = u64::try_from(ctx.state.clock.timestamp()).unwrap_or_default();
            let counter = totp::verify_consecutive(&seed, c1, c2, now, ENABLE_WINDOW_STEPS)
                .map_err(|_| invalid_code())?;
            let counter = i64::try_from(counter).map_err(|_| invalid_code())?;
            store
                .enable_mfa_device(account, &user, serial, counter)
                .await?;
            Ok(None)
        }
        "DeactivateMFADevice" => {
            let user = p.required("UserName")?.to_owned();
            let serial = p.required("SerialNumber")?;
            let user = authorize_principal(ctx, "iam:DeactivateMFADevice", Target::User, &user, p)
                .await?
                .name;
            store.deactivate_mfa_device(account, &user, serial).await?;
            Ok(None)
        }
        "ListMFADevices" => {
            let user = crate::iam::keys::user_name(ctx, p)?;
            let user = authorize_principal(ctx, "iam:ListMFADevices", Target::User, &user, p)
                .await?
                .name;
            let devices = store.list_mfa_devices(account, Some(&user)).await?;
            let mut x = Xml::new();
            x.wrap("MFADevices", |x| {
                for d in &devices {
                    x.wrap("member", |x| {
                        x.opt("UserName", d.user_name.as_deref())
                            .elem("SerialNumber", &d.serial_number)
                            .opt("EnableDate", d.enabled.as_ref().map(time).as_deref());
                    });
                }
            });
            x.elem("IsTruncated", "false");
            Ok(Some(x.finish()))
        }
        "ListVirtualMFADevices" => {
            authorize(
                ctx,
                "iam:ListVirtualMFADevices",
                &format!("arn:{PARTITION}:iam::{account}:mfa/*"),
            )?;
            let devices = store.list_mfa_devices(account, None).await?;
            let mut x = Xml::new();
            x.wrap("VirtualMFADevices", |x| {
                for d in &devices {
                    x.wrap("member", |x| {
                        x.elem("SerialNumber", &d.serial_number)
                            .opt("EnableDate", d.enabled.as_ref().map(time).as_deref());
                        if let Some(u) = &d.user_name {
                            x.wrap("User", |x| {
                                x.elem("UserName", u);
                            });
                        }
                    });
                }
            });
            x.elem("IsTruncated", "false");
            Ok(Some(x.finish()))
        }
        "DeleteVirtualMFADevice" => {
            let serial = p.required("SerialNumber")?;
            authorize(ctx, "iam:DeleteVirtualMFADevice", serial)?;
            store.delete_virtual_mfa_device(account, serial).await?;
            Ok(None)
        }
        _ => oidc(ctx, action, p).await,
    }
}

/// Whether an issuer URL is acceptable: `https://` with a host, or `http://` only when the
/// host is a loopback address (127.0.0.0/8, `::1`) or exactly `localhost` — the URL is
/// parsed, so `http://127.0.0.1.nip.io`, `http://localhost.attacker.example` and
/// `http://127.0.0.1@attacker.example` are refused. No user info, query or fragment, and
/// not a host that would make its condition keys look like Gatehouse's own (`aws:`,
/// `sts:`, ...). No control character or white space.
fn valid_issuer(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    // The parsed host: `[::1]` for IPv6, IPv4 in dotted decimal whatever form was written.
    let plain_ok = u.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    let scheme_ok = match u.scheme() {
        "https" => u.host_str().is_some_and(|h| !h.is_empty()),
        "http" => plain_ok,
        _ => false,
    };
    const RESERVED: &[&str] = &["aws", "sts", "iam", "ai", "gatehouse", "mcp"];
    let issuer_key = url.split_once("://").map_or(url, |(_, rest)| rest);
    scheme_ok
        && url.len() <= 255
        && u.username().is_empty()
        && u.password().is_none()
        && u.query().is_none()
        && u.fragment().is_none()
        && !url.contains(['?', '#', '@'])
        // The URL parser drops tabs and line feeds; the URL as given names the provider.
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
        && !RESERVED.iter().any(|r| issuer_key.eq_ignore_ascii_case(r))
}

/// Reads the `gatehouse:claims` tag's claim names: each 1 to 64 characters of letters,
/// digits and `_.:/-`.
fn check_claims_tag(tags: &[gatehouse_store::Tag]) -> Result<(), ApiError> {
    for t in tags
        .iter()
        .filter(|t| t.key.eq_ignore_ascii_case(crate::oidc::CLAIMS_TAG))
    {
        let ok = |n: &str| {
            (1..=64).contains(&n.len())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.:/-".contains(c))
        };
        if !t.value.split_whitespace().all(ok) {
            return Err(ApiError::validation(format!(
                "{}: claim names are 1 to 64 letters, digits or _.:/- separated by spaces",
                crate::oidc::CLAIMS_TAG
            )));
        }
    }
    Ok(())
}

async fn oidc(ctx: &CallContext<'_>, action: &str, p: &Params) -> Result<Option<String>, ApiError> {
    let store = &ctx.store;
    let account = ctx.account();
    match action {
        "CreateOpenIDConnectProvider" => {
            let url = p.required("Url")?.trim_end_matches('/').to_owned();
            if !valid_issuer(&url) {
                return Err(ApiError::validation(
                    "Url must be an https URL (http only on loopback) without query or fragment",
                ));
            }
            let client_ids = p.list("ClientIDList");
            let thumbprints = p.list("ThumbprintList");
            if client_ids.iter().any(|c| c.is_empty() || c.len() > 255) {
                return Err(ApiError::validation("a client id is 1 to 255 characters"));
            }
            // Gatehouse extension: an inline JWKS for issuers that cannot be reached.
            let jwks = p.get("Jwks");
            if let Some(j) = jwks
                && serde_json::from_str::<serde_json::Value>(j)
                    .ok()
                    .and_then(|v| v.get("keys").cloned())
                    .is_none()
            {
                return Err(ApiError::validation("Jwks must be a JSON Web Key Set"));
            }
            let tags: Vec<gatehouse_store::Tag> = p
                .tags("Tags")?
                .into_iter()
                .map(|(k, v)| gatehouse_store::Tag::new(k, v))
                .collect();
            check_claims_tag(&tags)?;
            let arn = gatehouse_store::oidc_provider_arn(account, &url);
            let keys = request_keys("iam:CreateOpenIDConnectProvider", p, None)?;
            authorize_with(ctx, "iam:CreateOpenIDConnectProvider", &arn, &keys)?;
            let pr = store
                .create_oidc_provider(account, &url, &client_ids, &thumbprints, jwks, &tags)
                .await?;
            let mut x = Xml::new();
            x.elem("OpenIDConnectProviderArn", &pr.arn);
            x.wrap("Tags", |x| crate::iam::render::tag_members(x, &pr.tags));
            Ok(Some(x.finish()))
        }
        "GetOpenIDConnectProvider" => {
            let arn = p.required("OpenIDConnectProviderArn")?;
            let e = authorize_oidc_provider(ctx, "iam:GetOpenIDConnectProvider", arn, p).await?;
            let Some(Record::OidcProvider(pr)) = e.record else {
                return Err(ApiError::internal());
            };
            let host = pr
                .url
                .split_once("://")
                .map_or(pr.url.as_str(), |(_, rest)| rest);
            let mut x = Xml::new();
            x.elem("Url", host);
            x.wrap("ClientIDList", |x| {
                for c in &pr.client_ids {
                    x.elem("member", c);
                }
            });
            x.wrap("ThumbprintList", |x| {
                for t in &pr.thumbprints {
                    x.elem("member", t);
                }
            });
            x.elem("CreateDate", &time(&pr.created));
            x.wrap("Tags", |x| crate::iam::render::tag_members(x, &pr.tags));
            Ok(Some(x.finish()))
        }
        "ListOpenIDConnectProviders" => {
            authorize(
                ctx,
                "iam:ListOpenIDConnectProviders",
                &format!("arn:{PARTITION}:iam::{account}:oidc-provider/*"),
            )?;
            let list = store.list_oidc_providers(account).await?;
            let mut x = Xml::new();
            x.wrap("OpenIDConnectProviderList", |x| {
                for pr in &list {
                    x.wrap("member", |x| {
                        x.elem("Arn", &pr.arn);
                    });
                }
            });
            Ok(Some(x.finish()))
        }
        "DeleteOpenIDConnectProvider" => {
            let arn = p.required("OpenIDConnectProviderArn")?;
            let e = authorize_oidc_provider(ctx, "iam:DeleteOpenIDConnectProvider", arn, p).await?;
            store.delete_oidc_provider(account, &e.arn).await?;
            Ok(None)
        }
        "AddClientIDToOpenIDConnectProvider" | "RemoveClientIDFromOpenIDConnectProvider" => {
            let arn = p.required("OpenIDConnectProviderArn")?;
            let client = p.required("ClientID")?;
            if client.len() > 255 {
                return Err(ApiError::validation("a client id is 1 to 255 characters"));
            }
            let e = authorize_oidc_provider(ctx, &format!("iam:{action}"), arn, p).await?;
            store
                .update_oidc_client_id(
                    account,
                    &e.arn,
                    client,
                    action == "AddClientIDToOpenIDConnectProvider",
                )
                .await?;
            Ok(None)
        }
        "TagOpenIDConnectProvider" | "UntagOpenIDConnectProvider" => {
            let arn = p.required("OpenIDConnectProviderArn")?;
            let arn = &authorize_oidc_provider(ctx, &format!("iam:{action}"), arn, p)
                .await?
                .arn;
            let kind = gatehouse_store::TaggedKind::OidcProvider;
            if action == "TagOpenIDConnectProvider" {
                let tags: Vec<gatehouse_store::Tag> = p
                    .tags("Tags")?
                    .into_iter()
                    .map(|(k, v)| gatehouse_store::Tag::new(k, v))
                    .collect();
                check_claims_tag(&tags)?;
                store.tag_resource(account, kind, arn, &tags).await?;
            } else {
                store
                    .untag_resource(account, kind, arn, &p.list("TagKeys"))
                    .await?;
            }
            Ok(None)
        }
        "ListOpenIDConnectProviderTags" => {
            let arn = p.required("OpenIDConnectProviderArn")?;
            let e =
                authorize_oidc_provider(ctx, "iam:ListOpenIDConnectProviderTags", arn, p).await?;
            let Some(Record::OidcProvider(pr)) = e.record else {
                return Err(ApiError::internal());
            };
            let mut x = Xml::new();
            x.wrap("Tags", |x| crate::iam::render::tag_members(x, &pr.tags));
            x.elem("IsTruncated", "false");
            Ok(Some(x.finish()))
        }
        other => Err(ApiError::invalid_action(other)),
    }
}

/// Checks an MFA code for the calling user's device and consumes it (a code is good once,
/// on any node). Returns when MFA authenticated.
pub(crate) async fn check_mfa(
    ctx: &CallContext<'_>,
    serial: &str,
    code: &str,
) -> Result<DateTime<Utc>, ApiError> {
    let failed = || {
        ApiError::access_denied(
            "MultiFactorAuthentication failed with invalid MFA one time pass code.",
        )
    };
    let Caller::User {
        account_id,
        user_name,
        ..
    } = ctx.caller()
    else {
        return Err(failed());
    };
    let (seed, last) = match ctx
        .store
        .mfa_seed_for_user(account_id, user_name, serial)
        .await
    {
        Ok(v) => v,
        Err(gatehouse_store::StoreError::NoSuchEntity { .. }) => return Err(failed()),
        Err(e) => return Err(e.into()),
    };
    let seed = TotpSeed::from_base32(seed.expose_str().ok_or_else(ApiError::internal)?)
        .map_err(|_| ApiError::internal())?;
    let now = ctx.state.clock.now();
    let last = last.and_then(|l| u64::try_from(l).ok());
    let secs = u64::try_from(now.timestamp()).unwrap_or_default();
    let counter = totp::verify(&seed, code, secs, last).map_err(|_| failed())?;
    let counter = i64::try_from(counter).map_err(|_| failed())?;
    if !ctx.store.advance_mfa_counter(serial, counter).await? {
        // Another request (maybe on another node) used this code first.
        return Err(failed());
    }
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_issuers_only_on_real_loopback() {
        for ok in [
            "https://token.actions.githubusercontent.com",
            "https://idp.example/realms/x",
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://localhost:1/a",
            "http://LOCALHOST",
            "http://[::1]:9000",
        ] {
            assert!(valid_issuer(ok), "{ok}");
        }
        for bad in [
            "http://example.com",
            "http://127.0.0.1.nip.io",
            "http://localhost.attacker.example",
            "http://127.0.0.1@attacker.example",
            "https://user:pw@idp.example",
            "http://[::1].attacker.example",
            "http://10.0.0.1",
            "https://aws",
            "https://STS",
            "https://idp.example/?a=b",
            "https://idp.example/#f",
            "ftp://127.0.0.1",
            "not a url",
        ] {
            assert!(!valid_issuer(bad), "{bad}");
        }
    }
}
