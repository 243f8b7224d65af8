//! `--endpoint-url`: reads a running Gatehouse through its IAM Query API
//! (`GetAccountAuthorizationDetails`, page after page, signed with SigV4) instead of its data
//! directory, so the analyzer can run from a machine that holds only credentials. The XML
//! answer becomes the same JSON document `aws iam get-account-authorization-details`
//! prints, which the AWS importer already reads: one model, one analysis.
//!
//! Over the API there is no audit log, no MFA device list and no deployment list, so the
//! findings built on them need `--data-dir`/`--database-url`; [`NOTICE`] says so.

use anyhow::{Context as _, Result, bail};
use clap::Args;
use gatehouse_auth::Secret;
use gatehouse_auth::sigv4::{self, Request};
use quick_xml::events::Event;
use serde_json::{Map, Value, json};

/// Said whenever the analysis came over the API.
pub(crate) const NOTICE: &str = "read over the IAM API: usage-based findings (unused permissions, from the audit log), users without MFA and deprecated deployments need --data-dir or --database-url";

/// The lists of the merged document, in AWS's order.
const LISTS: [&str; 4] = [
    "UserDetailList",
    "GroupDetailList",
    "RoleDetailList",
    "Policies",
];

#[derive(Debug, Args)]
pub(crate) struct RemoteArgs {
    /// Read a running Gatehouse through its IAM API at this URL (credentials from
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; the caller needs
    /// iam:GetAccountAuthorizationDetails; only the caller's account is read).
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
    /// Entities per GetAccountAuthorizationDetails page (its MaxItems).
    #[arg(long, value_name = "N", default_value_t = 100, requires = "endpoint_url",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) page_size: u32,
}

struct Credentials {
    key_id: String,
    secret: Secret,
    token: Option<String>,
    region: String,
}

impl Credentials {
    fn from_env() -> Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (Some(key_id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            bail!(
                "--endpoint-url needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            );
        };
        Ok(Self {
            key_id,
            secret: Secret::from_string(secret),
            token: var("AWS_SESSION_TOKEN"),
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
        })
    }
}

/// The caller's account as an authorization-details JSON document.
pub(crate) fn authorization_details(args: &RemoteArgs) -> Result<Vec<u8>> {
    let Some(endpoint) = &args.endpoint_url else {
        bail!("no --endpoint-url");
    };
    let creds = Credentials::from_env()?;
    let url = reqwest::Url::parse(endpoint)
        .with_context(|| format!("--endpoint-url {endpoint}: not a URL"))?;
    let doc = crate::admin::runtime()?.block_on(fetch(&url, endpoint, &creds, args.page_size))?;
    Ok(serde_json::to_vec(&doc)?)
}

async fn fetch(
    url: &reqwest::Url,
    endpoint: &str,
    creds: &Credentials,
    page: u32,
) -> Result<Value> {
    let client = reqwest::Client::new();
    let mut merged: Map<String, Value> = LISTS.iter().map(|l| (l.to_string(), json!([]))).collect();
    let mut marker: Option<String> = None;
    loop {
        let mut body =
            format!("Action=GetAccountAuthorizationDetails&Version=2010-05-08&MaxItems={page}");
        if let Some(m) = &marker {
            body.push_str("&Marker=");
            body.push_str(&sigv4::uri_encode(m.as_bytes()));
        }
        let text = call(&client, url, endpoint, creds, body).await?;
        let result = parse_page(&text).with_context(|| format!("{endpoint}: unreadable answer"))?;
        for l in LISTS {
            if let (Some(Value::Array(into)), Some(Value::Array(from))) =
                (merged.get_mut(l), result.get(l))
            {
                into.extend(from.iter().cloned());
            }
        }
        let truncated = result.get("IsTruncated") == Some(&Value::Bool(true));
        match result.get("Marker").and_then(Value::as_str) {
            Some(m) if truncated => marker = Some(m.to_owned()),
            _ if truncated => bail!("{endpoint}: IsTruncated without a Marker"),
            _ => return Ok(Value::Object(merged)),
        }
    }
}

/// One signed POST; an AWS error answer becomes an error naming the endpoint and the code.
async fn call(
    client: &reqwest::Client,
    url: &reqwest::Url,
    endpoint: &str,
    creds: &Credentials,
    body: String,
) -> Result<String> {
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => bail!("--endpoint-url {endpoint}: no host"),
    };
    let amz_date = sigv4::format_amz_date(chrono::Utc::now());
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let mut headers = vec![
        ("host", host.as_str()),
        ("x-amz-date", amz_date.as_str()),
        ("content-type", content_type),
    ];
    if let Some(t) = &creds.token {
        headers.push(("x-amz-security-token", t.as_str()));
    }
    let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    let unsigned = Request {
        method: "POST",
        path: url.path(),
        query: url.query().unwrap_or_default(),
        headers: &headers,
        body: body.as_bytes(),
    };
    let authz = sigv4::authorization_header(
        &unsigned,
        &creds.key_id,
        &creds.secret,
        &creds.region,
        "iam",
        &names,
    )?;
    let mut req = client.post(url.clone()).header("authorization", authz);
    for (n, v) in &headers {
        if *n != "host" {
            req = req.header(*n, *v);
        }
    }
    let resp =
        req.body(body).send().await.map_err(|e| {
            anyhow::anyhow!("{endpoint}: cannot reach Gatehouse: {}", root_cause(&e))
        })?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .with_context(|| format!("{endpoint}: reading the answer"))?;
    if !status.is_success() {
        let e = parse(&text).ok();
        let field = |k: &str| {
            e.as_ref()
                .and_then(|v| v.pointer(&format!("/ErrorResponse/Error/{k}")))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match field("Code") {
            Some(code) => bail!(
                "{endpoint}: GetAccountAuthorizationDetails failed: {code}: {}",
                field("Message").unwrap_or_default()
            ),
            None => bail!("{endpoint}: GetAccountAuthorizationDetails failed: HTTP {status}"),
        }
    }
    Ok(text)
}

/// reqwest's own message is "error sending request"; the cause (connection refused) is
/// what a user can act on.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

/// A `GetAccountAuthorizationDetailsResponse` page as its `...Result` object.
pub(crate) fn parse_page(xml: &str) -> Result<Value> {
    let v = parse(xml)?;
    v.pointer("/GetAccountAuthorizationDetailsResponse/GetAccountAuthorizationDetailsResult")
        .cloned()
        .context("no GetAccountAuthorizationDetailsResult")
}

struct Node {
    name: String,
    children: Vec<Node>,
    text: String,
}

/// XML into JSON, the way the AWS CLI shapes a Query answer: `member` children make an
/// array, lists stay arrays when empty, flags are booleans and policy documents (URL-encoded
/// JSON on the wire) are decoded.
fn parse(xml: &str) -> Result<Value> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack = vec![Node {
        name: String::new(),
        children: Vec::new(),
        text: String::new(),
    }];
    loop {
        match reader.read_event()? {
            Event::Start(e) => stack.push(Node {
                name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                children: Vec::new(),
                text: String::new(),
            }),
            Event::Empty(e) => {
                let n = Node {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    children: Vec::new(),
                    text: String::new(),
                };
                if let Some(top) = stack.last_mut() {
                    top.children.push(n);
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.decode()?);
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode()?;
                let s = quick_xml::escape::unescape(&format!("&{name};"))?.into_owned();
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(_) => {
                let n = stack.pop().context("unbalanced XML")?;
                stack.last_mut().context("unbalanced XML")?.children.push(n);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let root = stack.pop().context("empty XML")?;
    let mut out = Map::new();
    for c in root.children {
        out.insert(c.name.clone(), value(c));
    }
    Ok(Value::Object(out))
}

fn is_list(name: &str) -> bool {
    name.ends_with("List") || matches!(name, "AttachedManagedPolicies" | "Policies" | "Tags")
}

fn value(n: Node) -> Value {
    if n.children.is_empty() {
        if is_list(&n.name) {
            return json!([]);
        }
        return match n.name.as_str() {
            "IsTruncated" | "IsDefaultVersion" | "IsAttachable" => Value::Bool(n.text == "true"),
            "PolicyDocument" | "AssumeRolePolicyDocument" | "Document" => {
                let decoded = percent_encoding::percent_decode_str(&n.text).decode_utf8_lossy();
                serde_json::from_str(&decoded).unwrap_or(Value::String(n.text))
            }
            _ => Value::String(n.text),
        };
    }
    if is_list(&n.name) || n.children.iter().all(|c| c.name == "member") {
        return Value::Array(n.children.into_iter().map(value).collect());
    }
    let mut m = Map::new();
    for c in n.children {
        m.insert(c.name.clone(), value(c));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A page captured from `gatehouse serve` (boto3 set up user bob in group ops with an
    /// inline policy, role app with an open trust policy and managed policy p attached).
    const PAGE: &str = include_str!("testdata/get-account-authorization-details.xml");

    #[test]
    fn a_captured_page_becomes_the_aws_cli_document() {
        let v = parse_page(PAGE).unwrap();
        assert_eq!(v["IsTruncated"], json!(false));
        let bob = &v["UserDetailList"][0];
        assert_eq!(bob["UserName"], "bob");
        assert_eq!(bob["GroupList"], json!(["ops"]));
        assert_eq!(bob["AttachedManagedPolicies"], json!([]));
        assert_eq!(
            bob["UserPolicyList"][0]["PolicyDocument"]["Statement"][0]["Resource"],
            "arn:gatehouse:ai:*:*:model/llama-*"
        );
        assert_eq!(v["GroupDetailList"][0]["GroupPolicyList"], json!([]));
        let app = &v["RoleDetailList"][0];
        assert_eq!(
            app["AssumeRolePolicyDocument"]["Statement"][0]["Principal"],
            json!({"AWS": "*"})
        );
        assert_eq!(app["RolePolicyList"], json!([]));
        assert_eq!(app["InstanceProfileList"], json!([]));
        let version = &v["Policies"][0]["PolicyVersionList"][0];
        assert_eq!(version["Document"]["Statement"][0]["Action"], "ai:*");
        assert_eq!(version["IsDefaultVersion"], json!(true));
        // The analyzer reads it as it reads an AWS export: bob by his inline policy, app by
        // its attached managed one.
        let dir = gatehouse_analyzer::access::Directory::from_bytes(
            "api",
            &serde_json::to_vec(&v).unwrap(),
        )
        .unwrap();
        let model = "arn:gatehouse:ai:local:345321966270:model/llama-3-8b";
        let who: Vec<String> = dir
            .who_can(
                "ai:InvokeModel",
                model,
                &Default::default(),
                &gatehouse_analyzer::NoProgress,
            )
            .unwrap()
            .into_iter()
            .map(|g| g.arn)
            .collect();
        assert_eq!(
            who,
            [
                "arn:gatehouse:iam::345321966270:user/bob",
                "arn:gatehouse:iam::345321966270:role/app"
            ]
        );
    }

    #[test]
    fn a_truncated_page_carries_its_marker() {
        let v = parse_page("<GetAccountAuthorizationDetailsResponse><GetAccountAuthorizationDetailsResult><UserDetailList/><IsTruncated>true</IsTruncated><Marker>gaad-3</Marker></GetAccountAuthorizationDetailsResult></GetAccountAuthorizationDetailsResponse>").unwrap();
        assert_eq!(v["IsTruncated"], json!(true));
        assert_eq!(v["Marker"], "gaad-3");
        assert_eq!(v["UserDetailList"], json!([]));
    }

    #[test]
    fn an_error_answer_is_read() {
        let v = parse("<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no &amp; no</Message></Error></ErrorResponse>").unwrap();
        assert_eq!(
            v.pointer("/ErrorResponse/Error/Code").unwrap(),
            "AccessDenied"
        );
        assert_eq!(
            v.pointer("/ErrorResponse/Error/Message").unwrap(),
            "no & no"
        );
    }
}
