//! `gatehouse access eligible|request|list|approve|deny|activate|revoke`: just-in-time
//! access directly on the store, for the operator (the same steps as the Query actions
//! `gatehouse:CreateAccessRequest`, ...). The operator names who acts with `--as ARN`; each
//! step is audited in the transaction of its write (a refused step gets its own record).
//! Activation of an eligibility that needs MFA is refused here: the store cannot know the
//! operator's MFA; it goes through the API with an MFA session.

use crate::Format;
use crate::admin::{StoreArgs, runtime};
use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use gatehouse_access::{AccessError, AccessEvent, Caller, RequestView};
use gatehouse_audit::{AuditRecord, Decision, FaceDetail};
use gatehouse_store::{PendingAudit, Store};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub(crate) enum AccessCommand {
    /// Make SUBJECT eligible to request TARGET (with neither, list eligibilities; with
    /// `--delete ID`, delete one).
    Eligible(EligibleArgs),
    /// Ask for a role or managed policy for a while.
    Request(RequestArgs),
    /// List access requests with their state now.
    List(ListArgs),
    /// Approve a pending request (as one of its approvers; never one's own).
    Approve(DecideArgs),
    /// Deny a pending request (as one of its approvers; never one's own).
    Deny(DecideArgs),
    /// Start an approved grant (as its requester): it applies from now for its duration.
    Activate(ActArgs),
    /// End a request or an active grant now (its requester, an approver, or the operator).
    Revoke(ActArgs),
}

#[derive(Debug, Args)]
pub(crate) struct EligibleArgs {
    /// Delete this eligibility (`ELIG...`): nobody can ask under it any more (refused while
    /// a request under it is pending, approved or active).
    #[arg(long, value_name = "ELIGIBILITY_ID", conflicts_with_all = ["subject", "target"])]
    delete: Option<String>,
    /// A user, role or group ARN, or `federated-group:NAME`.
    #[arg(long, requires = "target")]
    subject: Option<String>,
    /// A role or managed-policy ARN of the same account.
    #[arg(long, requires = "subject")]
    target: Option<String>,
    /// The longest grant, in seconds (60..43200).
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    max_duration: i64,
    /// Who may approve: user, role or group ARNs (repeat the flag).
    #[arg(long = "approver", value_name = "ARN")]
    approvers: Vec<String>,
    /// Requests need no approval (they start approved).
    #[arg(long)]
    no_approval: bool,
    /// Activation needs an MFA-authenticated session.
    #[arg(long)]
    mfa: bool,
    /// Requests must carry a ticket reference.
    #[arg(long)]
    ticket_required: bool,
    /// The account (the default account when omitted).
    #[arg(long)]
    account: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    /// Who asks: a user or role ARN.
    #[arg(long = "as", value_name = "ARN")]
    caller: String,
    /// The role or managed-policy ARN asked for.
    #[arg(long)]
    target: String,
    /// How long the grant lasts once activated, in seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: i64,
    /// Why.
    #[arg(long)]
    justification: String,
    /// A ticket reference.
    #[arg(long)]
    ticket: Option<String>,
    /// The earliest start (RFC 3339).
    #[arg(long, value_name = "TIME")]
    start: Option<DateTime<Utc>>,
    #[command(flatten)]
    store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only this requester's (a user or role ARN).
    #[arg(long, value_name = "ARN")]
    requester: Option<String>,
    /// The account (the default account when omitted).
    #[arg(long)]
    account: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct DecideArgs {
    /// The request id (`REQ...`).
    request_id: String,
    /// Who decides: a user or role ARN.
    #[arg(long = "as", value_name = "ARN")]
    caller: String,
    /// A comment kept with the decision.
    #[arg(long)]
    comment: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct ActArgs {
    /// The request id (`REQ...`).
    request_id: String,
    /// Who acts: a user or role ARN (`revoke` without it acts as the operator, root).
    #[arg(long = "as", value_name = "ARN")]
    caller: Option<String>,
    /// The account, when acting as root (the default account when omitted).
    #[arg(long)]
    account: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// The Query action each step is audited (and, over HTTP, authorized) as.
fn action_of(event: &str) -> &'static str {
    match event {
        "eligible" => "gatehouse:CreateEligibility",
        "delete-eligibility" => "gatehouse:DeleteEligibility",
        "request" => "gatehouse:CreateAccessRequest",
        "approve" => "gatehouse:ApproveAccessRequest",
        "deny" => "gatehouse:DenyAccessRequest",
        "activate" => "gatehouse:ActivateAccessRequest",
        _ => "gatehouse:RevokeAccessRequest",
    }
}

fn record(principal: &str, step: &str, resource: &str, error: Option<&AccessError>) -> AuditRecord {
    AuditRecord {
        time: Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        request_id: format!("cli-{}", std::process::id()),
        principal: principal.to_owned(),
        action: action_of(step).to_owned(),
        resource: resource.to_owned(),
        decision: match error {
            None => Decision::Allow,
            Some(_) => Decision::Error,
        },
        statement: None,
        source_ip: None,
        source_unknown_via: None,
        error_code: error.map(|e| e.aws_code().to_owned()),
        // A step on one request (not `*`, not an eligibility) carries its id, as the API's do.
        elevation_id: resource
            .split_once(":access-request/")
            .map(|(_, id)| id)
            .filter(|id| *id != "*")
            .map(str::to_owned),
        face: FaceDetail::default(),
    }
}

/// Runs one step with its audit record staged on the store handle it writes through; a
/// refused step appends its own record with the error code.
async fn audited<T, F, Fut>(
    store: &Store,
    principal: &str,
    step: &str,
    resource: &str,
    run: F,
) -> Result<T>
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = Result<T, AccessError>>,
{
    let pending = Arc::new(PendingAudit::default());
    pending.stage(record(principal, step, resource, None).to_json()?);
    let outcome = run(store.with_audit(Arc::clone(&pending))).await;
    if pending.appended().is_none() {
        let r = record(principal, step, resource, outcome.as_ref().err());
        store.append_audit(&r.to_json()?).await?;
    }
    Ok(outcome?)
}

async fn account_or_default(store: &Store, account: Option<String>) -> Result<String> {
    Ok(match account {
        Some(a) => a,
        None => store.default_account().await?.account_id,
    })
}

fn print_event(ev: &AccessEvent, format: Format) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(ev)?),
        Format::Text => println!("{} {}", ev.event, line(&ev.request)),
    }
    Ok(())
}

fn line(v: &RequestView) -> String {
    let r = &v.record;
    let window = match (r.active_from, r.active_until) {
        (Some(f), Some(u)) => format!(" {}..{}", f.to_rfc3339(), u.to_rfc3339()),
        _ => String::new(),
    };
    format!(
        "{}  {}  {} -> {}  {} s{window}  {:?}",
        r.request_id, v.state, r.requester_arn, r.target_arn, r.duration_secs, r.justification
    )
}

pub(crate) fn run(cmd: AccessCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            AccessCommand::Eligible(a) => eligible(a).await,
            AccessCommand::Request(a) => {
                let s = a.store.open().await?;
                let caller = gatehouse_access::caller_from_arn(&s, &a.caller).await?;
                let spec = gatehouse_access::RequestSpec {
                    target: a.target,
                    duration_secs: a.duration,
                    justification: a.justification,
                    ticket: a.ticket,
                    start: a.start,
                };
                let resource = gatehouse_access::request_arn(&caller.account_id, "*");
                let ev = audited(
                    &s,
                    &caller.principal_arn.clone(),
                    "request",
                    &resource,
                    |s| async move {
                        gatehouse_access::request(
                            &s,
                            &caller,
                            &spec,
                            Utc::now(),
                            gatehouse_access::DEFAULT_PENDING_TTL,
                        )
                        .await
                    },
                )
                .await?;
                print_event(&ev, a.format)?;
                Ok(ExitCode::SUCCESS)
            }
            AccessCommand::List(a) => {
                let s = a.store.open().await?;
                let (account, requester) = match &a.requester {
                    Some(arn) => {
                        let c = gatehouse_access::caller_from_arn(&s, arn).await?;
                        (c.account_id, Some(c.principal_id))
                    }
                    None => (account_or_default(&s, a.account).await?, None),
                };
                let list =
                    gatehouse_access::list(&s, &account, requester.as_deref(), Utc::now()).await?;
                match a.format {
                    Format::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                    Format::Text => list.iter().for_each(|v| println!("{}", line(v))),
                }
                Ok(ExitCode::SUCCESS)
            }
            AccessCommand::Approve(a) => decide(a, true).await,
            AccessCommand::Deny(a) => decide(a, false).await,
            AccessCommand::Activate(a) => act(a, "activate").await,
            AccessCommand::Revoke(a) => act(a, "revoke").await,
        }
    })
}

async fn eligible(a: EligibleArgs) -> Result<ExitCode> {
    let s = a.store.open().await?;
    let account = account_or_default(&s, a.account).await?;
    if let Some(id) = a.delete {
        let root = gatehouse_access::root_caller(&account);
        let resource = gatehouse_access::eligibility_arn(&account, &id);
        let acct = account.clone();
        let deleted = id.clone();
        audited(
            &s,
            &root.principal_arn,
            "delete-eligibility",
            &resource,
            |s| async move {
                gatehouse_access::delete_eligibility(&s, &acct, &deleted, Utc::now()).await
            },
        )
        .await?;
        match a.format {
            Format::Json => println!("{}", serde_json::json!({"deleted": id})),
            Format::Text => println!("deleted {id}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(subject), Some(target)) = (a.subject, a.target) else {
        let list = s.list_eligibilities(&account).await?;
        match a.format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&list)?),
            Format::Text => {
                for e in list {
                    let approvers: Vec<&str> = e.approvers.iter().map(|x| x.arn.as_str()).collect();
                    println!(
                        "{}  {} -> {}  max {} s  approval: {}  approvers: {}  mfa: {}  ticket: {}",
                        e.eligibility_id,
                        e.subject_arn,
                        e.target_arn,
                        e.max_duration_secs,
                        e.approval_required,
                        approvers.join(","),
                        e.mfa_required,
                        e.ticket_required
                    );
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    };
    if !a.no_approval && a.approvers.is_empty() {
        bail!("name at least one --approver, or pass --no-approval");
    }
    let spec = gatehouse_access::EligibilitySpec {
        account_id: account.clone(),
        subject,
        target,
        max_duration_secs: a.max_duration,
        approval_required: !a.no_approval,
        approvers: a.approvers,
        mfa_required: a.mfa,
        ticket_required: a.ticket_required,
    };
    let root = gatehouse_access::root_caller(&account);
    let resource = gatehouse_access::eligibility_arn(&account, "*");
    let e = audited(
        &s,
        &root.principal_arn,
        "eligible",
        &resource,
        |s| async move { gatehouse_access::create_eligibility(&s, &spec).await },
    )
    .await?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&e)?),
        Format::Text => println!("{}", e.eligibility_id),
    }
    Ok(ExitCode::SUCCESS)
}

async fn decide(a: DecideArgs, approve: bool) -> Result<ExitCode> {
    let s = a.store.open().await?;
    let caller = gatehouse_access::caller_from_arn(&s, &a.caller).await?;
    let resource = gatehouse_access::request_arn(&caller.account_id, &a.request_id);
    let step = if approve { "approve" } else { "deny" };
    let (id, comment) = (a.request_id, a.comment);
    let ev = audited(
        &s,
        &caller.principal_arn.clone(),
        step,
        &resource,
        |s| async move {
            if approve {
                gatehouse_access::approve(&s, &caller, &id, comment.as_deref(), Utc::now()).await
            } else {
                gatehouse_access::deny(&s, &caller, &id, comment.as_deref(), Utc::now()).await
            }
        },
    )
    .await?;
    print_event(&ev, a.format)?;
    Ok(ExitCode::SUCCESS)
}

async fn act(a: ActArgs, step: &'static str) -> Result<ExitCode> {
    let s = a.store.open().await?;
    let caller: Caller = match (&a.caller, step) {
        (Some(arn), _) => gatehouse_access::caller_from_arn(&s, arn).await?,
        (None, "revoke") => {
            gatehouse_access::root_caller(&account_or_default(&s, a.account).await?)
        }
        (None, _) => bail!("name the requester with --as ARN"),
    };
    let resource = gatehouse_access::request_arn(&caller.account_id, &a.request_id);
    let id = a.request_id;
    let ev = audited(
        &s,
        &caller.principal_arn.clone(),
        step,
        &resource,
        |s| async move {
            if step == "activate" {
                gatehouse_access::activate(&s, &caller, &id, Utc::now()).await
            } else {
                gatehouse_access::revoke(&s, &caller, &id, Utc::now()).await
            }
        },
    )
    .await?;
    print_event(&ev, a.format)?;
    Ok(ExitCode::SUCCESS)
}
