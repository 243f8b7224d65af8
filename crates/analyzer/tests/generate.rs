//! Templates validate cleanly and grant what their role needs and nothing next to it (checked
//! by the engine and by the analyzer's own rules); generation from the audit log allows
//! exactly what the principal did in the window.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_analyzer::generate::{
    AuditRecord, Scope, Template, from_audit, parse_since, template,
};
use gatehouse_policy::{
    Catalog, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
    validate_bytes,
};
use serde_json::Value;

const ALL: [Template; 5] = [
    Template::Invoker,
    Template::Admin,
    Template::FineTuning,
    Template::Deployer,
    Template::Auditor,
];
const ME: &str = "arn:gatehouse:iam::111122223333:user/alice";

fn scope(listener: Option<&str>) -> Scope {
    Scope {
        models: vec!["llama-3-8b".into(), "mistral-7b".into()],
        listener: listener.map(str::to_owned),
        partition: "gatehouse".into(),
        region: "local".into(),
        account: "111122223333".into(),
    }
}

fn arn(kind: &str, id: &str) -> String {
    format!("arn:gatehouse:ai:local:111122223333:{kind}/{id}")
}

struct Decider(PolicySet);

impl Decider {
    fn new(doc: &Value) -> Decider {
        let d = PolicyDocument::parse(&doc.to_string()).unwrap();
        Decider(PolicySet::new(PolicyType::Identity, [NamedPolicy::new("t", d)]).unwrap())
    }
    fn allows(&self, r: &Request) -> bool {
        Evaluation::identity(&self.0).decide(r).is_allow()
    }
}

#[test]
fn every_template_validates_without_a_diagnostic() {
    for t in ALL {
        for l in [None, Some("office")] {
            let doc = template(t, &scope(l));
            let v = validate_bytes(doc.to_string().as_bytes(), Catalog::builtin());
            assert!(
                v.diagnostics.is_empty(),
                "{t:?} {l:?}: {:?}\n{doc:#}",
                v.diagnostics
            );
            // The analyzer finds nothing too broad in them either.
            let findings = gatehouse_analyzer::scan_bytes("t.json", doc.to_string().as_bytes());
            assert!(findings.is_empty(), "{t:?}: {findings:#?}");
        }
    }
}

#[test]
fn invoker_calls_the_named_models_only() {
    let d = Decider::new(&template(Template::Invoker, &scope(None)));
    assert!(d.allows(&Request::new(
        ME,
        "ai:InvokeModel",
        arn("model", "llama-3-8b")
    )));
    assert!(d.allows(&Request::new(
        ME,
        "ai:InvokeModelWithResponseStream",
        arn("model", "mistral-7b")
    )));
    assert!(!d.allows(&Request::new(ME, "ai:InvokeModel", arn("model", "gpt-4"))));
    assert!(!d.allows(&Request::new(
        ME,
        "ai:UpdateGuardrail",
        arn("guardrail", "g1")
    )));
    assert!(!d.allows(&Request::new(
        ME,
        "ai:ReadInvocationLogs",
        arn("invocation-log", "llama-3-8b")
    )));

    let d = Decider::new(&template(Template::Invoker, &scope(Some("office"))));
    let invoke = Request::new(ME, "ai:InvokeModel", arn("model", "llama-3-8b"));
    assert!(!d.allows(&invoke), "no listener in the context");
    assert!(d.allows(&invoke.clone().with("aws:SourceVpce", "office")));
    assert!(!d.allows(&invoke.with("aws:SourceVpce", "public")));
}

#[test]
fn admin_manages_with_mfa_but_does_not_invoke() {
    let d = Decider::new(&template(Template::Admin, &scope(None)));
    let upd = Request::new(ME, "ai:UpdateGuardrail", arn("guardrail", "g1"));
    assert!(!d.allows(&upd));
    assert!(d.allows(&upd.with("aws:MultiFactorAuthPresent", "true")));
    let deploy = Request::new(ME, "ai:UpdateDeployment", arn("deployment", "prod"))
        .with("aws:MultiFactorAuthPresent", "true");
    assert!(d.allows(&deploy.clone().with("ai:ModelId", "llama-3-8b")));
    assert!(
        !d.allows(&deploy.with("ai:ModelId", "gpt-4")),
        "repointing to another model"
    );
    assert!(
        !d.allows(
            &Request::new(ME, "ai:InvokeModel", arn("model", "llama-3-8b"))
                .with("aws:MultiFactorAuthPresent", "true")
        )
    );
}

#[test]
fn deployer_fine_tuner_and_auditor_stay_in_their_lanes() {
    let d = Decider::new(&template(Template::Deployer, &scope(None)));
    let create = Request::new(ME, "ai:CreateDeployment", arn("deployment", "d1"));
    assert!(!d.allows(&create), "a deployment must name its model");
    assert!(d.allows(&create.clone().with("ai:ModelId", "mistral-7b")));
    assert!(!d.allows(&create.with("ai:ModelId", "gpt-4")));
    assert!(!d.allows(&Request::new(
        ME,
        "ai:InvokeModel",
        arn("model", "mistral-7b")
    )));

    let d = Decider::new(&template(Template::FineTuning, &scope(None)));
    assert!(d.allows(&Request::new(
        ME,
        "ai:CreateFineTuningJob",
        arn("model", "llama-3-8b")
    )));
    assert!(!d.allows(&Request::new(
        ME,
        "ai:CreateFineTuningJob",
        arn("model", "gpt-4")
    )));
    assert!(!d.allows(&Request::new(
        ME,
        "iam:PassRole",
        "arn:gatehouse:iam::111122223333:role/x"
    )));

    let d = Decider::new(&template(Template::Auditor, &scope(None)));
    let logs = Request::new(
        ME,
        "ai:ReadInvocationLogs",
        arn("invocation-log", "llama-3-8b"),
    );
    assert!(!d.allows(&logs));
    assert!(d.allows(&logs.with("aws:MultiFactorAuthPresent", "true")));
    assert!(!d.allows(&Request::new(
        ME,
        "ai:InvokeModel",
        arn("model", "llama-3-8b")
    )));
    assert!(
        !d.allows(
            &Request::new(ME, "ai:UpdateGuardrail", arn("guardrail", "g1"))
                .with("aws:MultiFactorAuthPresent", "true")
        )
    );
}

fn rec(time: &str, principal: &str, action: &str, resource: &str, decision: &str) -> AuditRecord {
    serde_json::from_value(serde_json::json!({
        "time": time, "principal": principal, "action": action, "resource": resource,
        "decision": decision, "request_id": "r", "source_ip": "127.0.0.1"
    }))
    .unwrap()
}

#[test]
fn generated_policy_allows_exactly_what_was_done_in_the_window() {
    let records = vec![
        rec(
            "2026-11-20T10:00:00.000Z",
            ME,
            "ai:InvokeModel",
            &arn("model", "llama-3-8b"),
            "Allow",
        ),
        rec(
            "2026-11-21T10:00:00.000Z",
            ME,
            "ai:InvokeModel",
            &arn("model", "mistral-7b"),
            "Allow",
        ),
        rec(
            "2026-11-21T11:00:00.000Z",
            ME,
            "ai:InvokeModelWithResponseStream",
            &arn("model", "llama-3-8b"),
            "Allow",
        ),
        rec(
            "2026-11-22T10:00:00.000Z",
            ME,
            "ai:ListModels",
            "*",
            "Allow",
        ),
        rec(
            "2026-11-22T11:00:00.000Z",
            ME,
            "ai:UpdateGuardrail",
            &arn("guardrail", "g1"),
            "ImplicitDeny",
        ),
        rec(
            "2026-09-01T10:00:00.000Z",
            ME,
            "iam:CreateUser",
            "arn:gatehouse:iam::111122223333:user/old",
            "Allow",
        ),
        rec(
            "2026-11-22T10:00:00.000Z",
            "arn:gatehouse:iam::111122223333:user/bob",
            "ai:CreateDeployment",
            &arn("deployment", "d"),
            "Allow",
        ),
    ];
    let since = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let g = from_audit(&records, ME, since);
    assert_eq!((g.used, g.refused), (4, 1));
    let policy = g.policy.unwrap();
    let v = validate_bytes(policy.to_string().as_bytes(), Catalog::builtin());
    assert!(v.diagnostics.is_empty(), "{:?}", v.diagnostics);
    let d = Decider::new(&policy);
    for r in records.iter().filter(|r| r.principal == ME) {
        let req = Request::new(ME, r.action.as_str(), r.resource.as_str());
        let expected = r.allowed() && r.time.as_str() >= "2026-11-01";
        assert_eq!(d.allows(&req), expected, "{} {}", r.action, r.resource);
    }
    assert!(!d.allows(&Request::new(
        ME,
        "ai:InvokeModelWithResponseStream",
        arn("model", "mistral-7b")
    )));
    assert!(!d.allows(&Request::new(ME, "ai:InvokeModel", arn("model", "gpt-4"))));
    // Nothing done in the window: no policy.
    let later = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
        .unwrap()
        .to_utc();
    assert!(from_audit(&records, ME, later).policy.is_none());
}

#[test]
fn look_back_parses() {
    assert_eq!(parse_since("30d"), chrono::Duration::try_days(30));
    assert_eq!(parse_since("12h"), chrono::Duration::try_hours(12));
    assert_eq!(parse_since("30"), None);
    assert_eq!(parse_since("-1d"), None);
    assert_eq!(parse_since(""), None);
}
