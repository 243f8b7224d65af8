//! `Evaluation::decide_for_some`: allowed for *some* value of the open keys (the MCP
//! gateway's listing question). Table-driven: each case is a policy, a request without the
//! open keys, and the answer, next to what `decide` says for the same request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_policy::{
    DecisionKind, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
};
use serde_json::json;

/// (statements, context, decide_for_some, decide)
type Case = (
    serde_json::Value,
    Vec<(&'static str, &'static str)>,
    DecisionKind,
    DecisionKind,
);

const OPEN: &str = "mcp:Argument/";

fn identity(statements: serde_json::Value) -> PolicySet {
    let doc = json!({"Version": "2012-10-17", "Statement": statements});
    let d = PolicyDocument::parse(&doc.to_string()).unwrap();
    PolicySet::new(PolicyType::Identity, vec![NamedPolicy::new("p", d)]).unwrap()
}

fn request(extra: &[(&str, &str)]) -> Request {
    let mut r = Request::new(
        "arn:gatehouse:iam::111122223333:user/agent",
        "mcp:CallTool",
        "arn:gatehouse:mcp:local:111122223333:tool/fs/write_file",
    );
    for (k, v) in extra {
        r.context.insert(*k, *v);
    }
    r
}

#[test]
fn open_keys_are_met_in_allow_and_unmet_in_deny() {
    use DecisionKind::{Allow, ExplicitDeny, ImplicitDeny};
    let allow_under_public = json!({"Effect": "Allow", "Action": "mcp:CallTool", "Resource": "*",
        "Condition": {"StringLike": {"mcp:Argument/path": "/srv/public/*"}}});
    let deny_secret = json!({"Effect": "Deny", "Action": "mcp:CallTool", "Resource": "*",
        "Condition": {"StringLike": {"mcp:Argument/path": "/srv/secret/*"}}});
    let deny_all = json!({"Effect": "Deny", "Action": "mcp:CallTool", "Resource": "*"});
    let allow_readonly = json!({"Effect": "Allow", "Action": "mcp:CallTool", "Resource": "*",
        "Condition": {"StringEquals": {"mcp:ToolAnnotation/readOnlyHint": "true"},
                      "NumericLessThanEquals": {"MCP:ARGUMENT/amount": "100"}}});
    let deny_unless_mfa_even_with_args = json!({"Effect": "Deny", "Action": "mcp:CallTool",
        "Resource": "*", "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}});
    // (statements, context, decide_for_some, decide)
    let cases: Vec<Case> = vec![
        // An allow whose only unmet condition is on an argument counts for listing.
        (json!([allow_under_public]), vec![], Allow, ImplicitDeny),
        // A deny conditioned on an argument leaves other arguments allowed.
        (
            json!([allow_under_public, deny_secret]),
            vec![],
            Allow,
            ImplicitDeny,
        ),
        // An unconditional deny still denies.
        (
            json!([allow_under_public, deny_all]),
            vec![],
            ExplicitDeny,
            ExplicitDeny,
        ),
        // Conditions on other keys are decided as usual (key names ignore ASCII case).
        (
            json!([allow_readonly]),
            vec![("mcp:ToolAnnotation/readOnlyHint", "false")],
            ImplicitDeny,
            ImplicitDeny,
        ),
        (
            json!([allow_readonly]),
            vec![("mcp:ToolAnnotation/readOnlyHint", "true")],
            Allow,
            ImplicitDeny,
        ),
        // A deny on a non-argument key applies as usual.
        (
            json!([allow_under_public, deny_unless_mfa_even_with_args]),
            vec![],
            ExplicitDeny,
            ExplicitDeny,
        ),
        (
            json!([allow_under_public, deny_unless_mfa_even_with_args]),
            vec![("aws:MultiFactorAuthPresent", "true")],
            Allow,
            ImplicitDeny,
        ),
        // Nothing granted: nothing for some arguments either.
        (json!([deny_secret]), vec![], ImplicitDeny, ImplicitDeny),
    ];
    let mut failures = Vec::new();
    for (i, (statements, ctx, some, plain)) in cases.into_iter().enumerate() {
        let set = identity(statements);
        let eval = Evaluation::identity(&set);
        let req = request(&ctx);
        let got_some = eval.decide_for_some(&req, OPEN).decision;
        let got_plain = eval.decide(&req).decision;
        if got_some != some || got_plain != plain {
            failures.push(format!(
                "case {i}: decide_for_some {got_some:?} (want {some:?}), decide {got_plain:?} (want {plain:?})"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn an_argument_value_given_is_not_consulted_when_open() {
    // decide_for_some ignores a value present for an open key: listing never depends on it.
    let set = identity(
        json!([{"Effect": "Allow", "Action": "mcp:CallTool", "Resource": "*",
        "Condition": {"StringEquals": {"mcp:Argument/path": "/a"}}}]),
    );
    let eval = Evaluation::identity(&set);
    let req = request(&[("mcp:Argument/path", "/b")]);
    assert_eq!(
        eval.decide_for_some(&req, OPEN).decision,
        DecisionKind::Allow
    );
    assert_eq!(eval.decide(&req).decision, DecisionKind::ImplicitDeny);
}
