//! Shared generators and helpers for the policy crate's integration tests.
//!
//! One vocabulary (actions, ARNs, principals, condition keys and values) is used both to
//! build policies and to build requests, so that generated conditions and patterns actually
//! hit generated requests instead of being vacuously false.
//!
//! Every generated [`PolicyDocument`] is valid by construction: it must parse back from its
//! own JSON (that is property (a) in `properties.rs`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_policy::model::{
    ActionBlock, ConditionBlock, ConditionEntry, ConditionValue, Principal, PrincipalBlock,
    PrincipalKind, ResourceBlock,
};
use gatehouse_policy::operator::{BaseOperator, Operator, SetQualifier, ValueKind};
use gatehouse_policy::{
    ContextValue, Effect, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
    Statement, Version,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use std::path::PathBuf;

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

pub const ACCOUNT: &str = "111122223333";
pub const OTHER_ACCOUNT: &str = "444455556666";

/// Action patterns as written in policies: exact, mixed case, prefixes, `?`, service
/// wildcards, `*`, and a non-ASCII name.
pub const ACTION_PATTERNS: &[&str] = &[
    "ai:InvokeModel",
    "ai:invokemodel",
    "AI:INVOKEMODEL",
    "ai:InvokeModel*",
    "ai:Invoke*",
    "ai:Get*",
    "ai:?etModel",
    "ai:*Model",
    "ai:*",
    "AI:*",
    "ai:ListModels",
    "ai:CreateDeployment",
    "iam:CreateUser",
    "iam:*",
    "iam:Get*",
    "sts:AssumeRole",
    "s3:GetObject",
    "s3:*",
    "a*:*",
    "*:GetModel",
    "*",
];

/// Actions as sent in requests.
pub const REQUEST_ACTIONS: &[&str] = &[
    "ai:InvokeModel",
    "ai:InvokeModelWithResponseStream",
    "ai:GetModel",
    "AI:getmodel",
    "ai:ListModels",
    "ai:CreateDeployment",
    "iam:CreateUser",
    "iam:GetUser",
    "sts:AssumeRole",
    "s3:GetObject",
    "s3:PutObject",
];

/// Resource patterns (`Resource`/`NotResource`), including wildcards and variables.
pub const RESOURCE_PATTERNS: &[&str] = &[
    "*",
    "arn:gatehouse:ai:local:111122223333:model/llama-3-8b",
    "arn:gatehouse:ai:local:111122223333:model/search-llama",
    "arn:gatehouse:ai:local:111122223333:model/*",
    "arn:gatehouse:ai:*:*:model/llama-?-8b",
    "arn:gatehouse:ai:local:*:*",
    "arn:gatehouse:ai:local:111122223333:model/${aws:PrincipalTag/team}-*",
    "arn:gatehouse:ai:local:111122223333:model/${aws:PrincipalTag/team, 'none'}",
    "arn:gatehouse:ai:local:111122223333:model/${*}",
    "arn:gatehouse:iam::111122223333:user/${aws:username}",
    "arn:gatehouse:iam::111122223333:user/*",
    "arn:gatehouse:iam::111122223333:user/alice",
    "arn:aws:s3:::bucket/*",
    "arn:aws:s3:::bucket/key",
    "arn:gatehouse:ai:local:444455556666:model/llama-3-8b",
];

/// Resources as sent in requests.
pub const REQUEST_RESOURCES: &[&str] = &[
    "arn:gatehouse:ai:local:111122223333:model/llama-3-8b",
    "arn:gatehouse:ai:local:111122223333:model/search-llama",
    "arn:gatehouse:ai:local:111122223333:model/none",
    "arn:gatehouse:ai:local:111122223333:model/*",
    "arn:gatehouse:ai:local:444455556666:model/llama-3-8b",
    "arn:gatehouse:iam::111122223333:user/alice",
    "arn:gatehouse:iam::111122223333:user/bob",
    "arn:aws:s3:::bucket/key",
    "*",
];

/// Callers.
pub const REQUEST_PRINCIPALS: &[&str] = &[
    "arn:gatehouse:iam::111122223333:user/alice",
    "arn:gatehouse:iam::111122223333:user/team/bob",
    "arn:gatehouse:sts::111122223333:assumed-role/ops/session-1",
    "arn:gatehouse:iam::444455556666:user/eve",
    "arn:gatehouse:iam::111122223333:root",
    "ai.gatehouse.internal",
];

/// `AWS` principals in resource policies.
pub const AWS_PRINCIPALS: &[&str] = &[
    "*",
    "111122223333",
    "444455556666",
    "arn:gatehouse:iam::111122223333:root",
    "arn:gatehouse:iam::111122223333:user/alice",
    "arn:gatehouse:iam::111122223333:user/team/bob",
    "arn:gatehouse:iam::111122223333:role/ops",
    "arn:gatehouse:sts::111122223333:assumed-role/ops/session-1",
    "arn:gatehouse:iam::444455556666:user/*",
];

/// Condition keys and the kind of value they hold in a request.
pub const CONDITION_KEYS: &[(&str, ValueKind)] = &[
    ("aws:PrincipalTag/team", ValueKind::String),
    ("aws:username", ValueKind::String),
    ("ai:ModelId", ValueKind::String),
    ("aws:TagKeys", ValueKind::String),
    ("aws:RequestedRegion", ValueKind::String),
    ("ai:MaxTokens", ValueKind::Numeric),
    ("aws:MultiFactorAuthAge", ValueKind::Numeric),
    ("aws:CurrentTime", ValueKind::Date),
    ("aws:TokenIssueTime", ValueKind::Date),
    ("aws:SecureTransport", ValueKind::Bool),
    ("aws:MultiFactorAuthPresent", ValueKind::Bool),
    ("ai:Blob", ValueKind::Binary),
    ("aws:SourceIp", ValueKind::Ip),
    ("aws:PrincipalArn", ValueKind::Arn),
    ("aws:SourceArn", ValueKind::Arn),
];

fn keys_of(kind: ValueKind) -> Vec<&'static str> {
    let want = match kind {
        // String operators compare any key as text; Null tests any key.
        ValueKind::String | ValueKind::Null => None,
        k => Some(k),
    };
    CONDITION_KEYS
        .iter()
        .filter(|(_, k)| want.is_none_or(|w| w == *k))
        .map(|(n, _)| *n)
        .collect()
}

/// Policy-side values, by kind. Variables appear only where AWS allows them.
fn policy_values(kind: ValueKind) -> BoxedStrategy<ConditionValue> {
    let s = |v: &'static [&'static str]| select(v).prop_map(|s| ConditionValue::String(s.into()));
    match kind {
        ValueKind::String => s(&[
            "search",
            "ml",
            "none",
            "sea*",
            "s?arch",
            "SEARCH",
            "team",
            "env",
            "llama-3-8b",
            "local",
            "alice",
            "true",
            "${aws:username}",
            "${aws:PrincipalTag/team}",
            "${aws:PrincipalTag/team, 'none'}",
            "${*}",
            "*",
        ])
        .boxed(),
        ValueKind::Numeric => prop_oneof![
            (-5i64..5000).prop_map(|n| ConditionValue::Number(n.into())),
            select(&[0.5f64, 1.5, 100.0, 4096.25][..]).prop_map(|f| ConditionValue::Number(
                serde_json::Number::from_f64(f).expect("finite")
            )),
            s(&["100", "4096", "1.5", "-3", "0", "3600"]),
        ]
        .boxed(),
        ValueKind::Date => prop_oneof![
            s(&[
                "2026-01-01T00:00:00Z",
                "2025-06-01",
                "1767225600",
                "2026-03-01T10:00:00.123+02:00",
                "2030-01-01T00:00:00Z",
            ]),
            Just(ConditionValue::Number(1_767_225_600i64.into())),
        ]
        .boxed(),
        ValueKind::Bool => prop_oneof![
            any::<bool>().prop_map(ConditionValue::Bool),
            s(&["true", "false", "True"]),
        ]
        .boxed(),
        ValueKind::Binary => s(&["YWJj", "ZGVm", "QQ=="]).boxed(),
        ValueKind::Ip => s(&[
            "10.0.0.0/8",
            "192.168.1.1",
            "192.168.0.0/16",
            "2001:db8::/32",
            "0.0.0.0/0",
            "10.1.2.3/32",
        ])
        .boxed(),
        ValueKind::Arn => s(&[
            "arn:gatehouse:iam::111122223333:user/*",
            "arn:gatehouse:iam::*:role/ops",
            "arn:gatehouse:iam::111122223333:user/alice",
            "arn:gatehouse:iam::111122223333:user/${aws:username}",
            "arn:aws:s3:::bucket",
            "arn:gatehouse:ai:*",
            "*",
        ])
        .boxed(),
        ValueKind::Null => prop_oneof![
            any::<bool>().prop_map(ConditionValue::Bool),
            s(&["true", "false"]),
        ]
        .boxed(),
    }
}

/// Request-side values for a key of `kind`; `garbage` adds values of the wrong shape.
fn request_values(kind: ValueKind, garbage: bool) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = match kind {
        ValueKind::String | ValueKind::Null => vec![
            "search",
            "ml",
            "none",
            "SEARCH",
            "team",
            "env",
            "alice",
            "llama-3-8b",
            "local",
            "*",
        ],
        ValueKind::Numeric => vec!["100", "4096", "1.5", "-3", "0", "3600", "99999"],
        ValueKind::Date => vec![
            "2026-01-01T00:00:00Z",
            "2025-01-01T00:00:00Z",
            "1767225600",
            "2031-05-05T05:05:05Z",
        ],
        ValueKind::Bool => vec!["true", "false", "TRUE"],
        ValueKind::Binary => vec!["YWJj", "ZGVm"],
        ValueKind::Ip => vec!["10.1.2.3", "192.168.1.1", "2001:db8::1", "8.8.8.8"],
        ValueKind::Arn => vec![
            "arn:gatehouse:iam::111122223333:user/alice",
            "arn:gatehouse:iam::111122223333:role/ops",
            "arn:aws:s3:::bucket",
        ],
    };
    if garbage {
        v.extend(["", "not-a-value", "1e999", "10.0.0.0/33", "yesterday"]);
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Policy models
// ---------------------------------------------------------------------------------------------

fn operator_names(kind: ValueKind) -> Vec<BaseOperator> {
    BaseOperator::all()
        .filter(|b| b.value_kind() == kind)
        .collect()
}

/// A full operator name with optional `ForAllValues:`/`ForAnyValue:` and `IfExists`.
pub fn operator() -> BoxedStrategy<Operator> {
    let bases: Vec<BaseOperator> = BaseOperator::all().collect();
    (
        select(bases),
        prop_oneof![
            6 => Just(None),
            2 => Just(Some(SetQualifier::ForAllValues)),
            2 => Just(Some(SetQualifier::ForAnyValue)),
        ],
        prop::bool::weighted(0.25),
    )
        .prop_map(|(base, qualifier, if_exists)| Operator {
            qualifier,
            base,
            if_exists: if_exists && base != BaseOperator::Null,
        })
        .boxed()
}

fn condition_block() -> BoxedStrategy<ConditionBlock> {
    operator()
        .prop_flat_map(|op| {
            let kind = op.base.value_kind();
            let values = if kind == ValueKind::Null {
                vec(policy_values(kind), 1..=1).boxed()
            } else {
                vec(policy_values(kind), 1..=3).boxed()
            };
            let entry = (select(keys_of(kind)), values).prop_map(|(k, values)| ConditionEntry {
                key: k.into(),
                values,
            });
            (Just(op), vec(entry, 1..=2))
        })
        .prop_map(|(op, mut entries)| {
            dedup_by_key(&mut entries, |e| e.key.clone());
            ConditionBlock {
                operator: op.to_string(),
                entries,
            }
        })
        .boxed()
}

fn dedup_by_key<T, K: PartialEq>(items: &mut Vec<T>, key: impl Fn(&T) -> K) {
    let mut seen: Vec<K> = Vec::new();
    items.retain(|i| {
        let k = key(i);
        if seen.contains(&k) {
            false
        } else {
            seen.push(k);
            true
        }
    });
}

fn conditions() -> BoxedStrategy<Vec<ConditionBlock>> {
    prop_oneof![
        3 => Just(Vec::new()),
        4 => vec(condition_block(), 1..=3).prop_map(|mut blocks| {
            dedup_by_key(&mut blocks, |b| b.operator.clone());
            blocks
        }),
    ]
    .boxed()
}

fn string_list(items: &'static [&'static str], max: usize) -> BoxedStrategy<Vec<String>> {
    vec(select(items).prop_map(String::from), 1..=max).boxed()
}

fn action_block() -> BoxedStrategy<ActionBlock> {
    (prop::bool::weighted(0.15), string_list(ACTION_PATTERNS, 3))
        .prop_map(|(negated, patterns)| ActionBlock { negated, patterns })
        .boxed()
}

fn resource_block() -> BoxedStrategy<ResourceBlock> {
    (
        prop::bool::weighted(0.15),
        string_list(RESOURCE_PATTERNS, 3),
    )
        .prop_map(|(negated, patterns)| ResourceBlock { negated, patterns })
        .boxed()
}

fn principal_block() -> BoxedStrategy<PrincipalBlock> {
    let typed = vec(
        prop_oneof![
            6 => string_list(AWS_PRINCIPALS, 3).prop_map(|l| (PrincipalKind::Aws, l)),
            1 => string_list(&["ai.gatehouse.internal", "*"], 2)
                .prop_map(|l| (PrincipalKind::Service, l)),
            1 => string_list(&["accounts.google.com"], 1).prop_map(|l| (PrincipalKind::Federated, l)),
            1 => string_list(&["79a59df900b949e55d96a1e698fbaced"], 1)
                .prop_map(|l| (PrincipalKind::CanonicalUser, l)),
        ],
        1..=3,
    )
    .prop_map(|mut entries| {
        dedup_by_key(&mut entries, |(k, _)| *k);
        Principal::Typed(entries)
    });
    (
        prop::bool::weighted(0.1),
        prop_oneof![1 => Just(Principal::Any), 4 => typed],
    )
        .prop_map(|(negated, principal)| PrincipalBlock { negated, principal })
        .boxed()
}

/// Statement ids, including text that needs JSON escaping.
fn sid() -> BoxedStrategy<Option<String>> {
    prop::option::weighted(
        0.4,
        prop_oneof![
            select(
                &[
                    "Allow1",
                    "DenyAll",
                    "with space",
                    "quote\"back\\slash",
                    "é✓😀",
                    ""
                ][..]
            )
            .prop_map(String::from),
            "[A-Za-z0-9]{1,8}",
        ],
    )
    .boxed()
}

fn effect() -> BoxedStrategy<Effect> {
    prop_oneof![3 => Just(Effect::Allow), 1 => Just(Effect::Deny)].boxed()
}

/// A statement for a policy of type `kind` with the given effect (or any effect).
pub fn statement_with(kind: PolicyType, effect: Option<Effect>) -> BoxedStrategy<Statement> {
    let effect = match effect {
        Some(e) => Just(e).boxed(),
        None => self::effect(),
    };
    if kind == PolicyType::Resource {
        (
            sid(),
            effect,
            principal_block(),
            action_block(),
            prop::option::weighted(0.6, resource_block()),
            conditions(),
        )
            .prop_map(
                |(sid, effect, principal, action, resource, condition)| Statement {
                    sid,
                    effect,
                    principal: Some(principal),
                    action,
                    resource,
                    condition,
                },
            )
            .boxed()
    } else {
        (
            sid(),
            effect,
            action_block(),
            resource_block(),
            conditions(),
        )
            .prop_map(|(sid, effect, action, resource, condition)| Statement {
                sid,
                effect,
                principal: None,
                action,
                resource: Some(resource),
                condition,
            })
            .boxed()
    }
}

/// A broad `Allow` (`*` on `*`, or a service wildcard), so that guardrails, boundaries and
/// session policies allow often enough for decisions to reach `Allow`.
fn broad_allow(kind: PolicyType) -> BoxedStrategy<Statement> {
    let principal = (kind == PolicyType::Resource).then_some(PrincipalBlock {
        negated: false,
        principal: Principal::Any,
    });
    select(&["*", "ai:*", "iam:*"][..])
        .prop_map(move |a| Statement {
            sid: None,
            effect: Effect::Allow,
            principal: principal.clone(),
            action: ActionBlock {
                negated: false,
                patterns: vec![a.into()],
            },
            resource: Some(ResourceBlock {
                negated: false,
                patterns: vec!["*".into()],
            }),
            condition: Vec::new(),
        })
        .boxed()
}

fn version() -> BoxedStrategy<Option<Version>> {
    prop_oneof![
        8 => Just(Some(Version::V2012_10_17)),
        1 => Just(Some(Version::V2008_10_17)),
        1 => Just(None),
    ]
    .boxed()
}

/// A policy document of type `kind` with `1..=max` statements.
pub fn document(kind: PolicyType, max: usize) -> BoxedStrategy<PolicyDocument> {
    let broad = matches!(
        kind,
        PolicyType::Guardrail | PolicyType::Boundary | PolicyType::Session
    );
    let first = if broad {
        prop::option::weighted(0.7, broad_allow(kind)).boxed()
    } else {
        Just(None).boxed()
    };
    (
        version(),
        prop::option::weighted(0.2, "[a-z0-9-]{1,10}"),
        first,
        vec(statement_with(kind, None), 1..=max),
    )
        .prop_map(|(version, id, first, mut statements)| {
            if let Some(f) = first {
                statements.insert(0, f);
            }
            PolicyDocument {
                version,
                id,
                statements,
            }
        })
        .boxed()
}

/// Any document, of any policy type.
pub fn any_document() -> BoxedStrategy<PolicyDocument> {
    policy_type().prop_flat_map(|k| document(k, 6)).boxed()
}

pub fn policy_type() -> BoxedStrategy<PolicyType> {
    select(
        &[
            PolicyType::Identity,
            PolicyType::Resource,
            PolicyType::Boundary,
            PolicyType::Guardrail,
            PolicyType::Session,
        ][..],
    )
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Scenarios: all the policies of one decision
// ---------------------------------------------------------------------------------------------

/// Every policy that takes part in a decision, as models.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub identity: Vec<PolicyDocument>,
    pub resource: Option<PolicyDocument>,
    pub boundary: Option<PolicyDocument>,
    pub guardrails: Vec<Vec<PolicyDocument>>,
    pub session: Option<PolicyDocument>,
}

/// A scenario with at most about `max_total` statements in all.
pub fn scenario(per_doc: usize) -> BoxedStrategy<Scenario> {
    (
        vec(document(PolicyType::Identity, per_doc), 0..=3),
        prop::option::weighted(0.5, document(PolicyType::Resource, per_doc)),
        prop::option::weighted(0.3, document(PolicyType::Boundary, per_doc)),
        vec(vec(document(PolicyType::Guardrail, per_doc), 1..=2), 0..=2),
        prop::option::weighted(0.3, document(PolicyType::Session, per_doc)),
    )
        .prop_map(
            |(identity, resource, boundary, guardrails, session)| Scenario {
                identity,
                resource,
                boundary,
                guardrails,
                session,
            },
        )
        .boxed()
}

/// The policy sets of a scenario, compiled.
#[derive(Debug)]
pub struct Compiled {
    pub identity: PolicySet,
    pub resource: Option<PolicySet>,
    pub boundary: Option<PolicySet>,
    pub guardrails: Vec<PolicySet>,
    pub session: Option<PolicySet>,
}

impl Compiled {
    pub fn evaluation(&self) -> Evaluation<'_> {
        Evaluation {
            identity: &self.identity,
            resource: self.resource.as_ref(),
            boundary: self.boundary.as_ref(),
            guardrails: &self.guardrails,
            session: self.session.as_ref(),
        }
    }
}

fn compile_set(kind: PolicyType, name: &str, docs: &[PolicyDocument]) -> PolicySet {
    let named = docs
        .iter()
        .enumerate()
        .map(|(i, d)| NamedPolicy::new(format!("{name}{i}"), d.clone()));
    PolicySet::new(kind, named).unwrap_or_else(|e| panic!("{kind:?} does not compile: {e}"))
}

impl Scenario {
    pub fn compile(&self) -> Compiled {
        Compiled {
            identity: compile_set(PolicyType::Identity, "identity", &self.identity),
            resource: self
                .resource
                .as_ref()
                .map(|d| compile_set(PolicyType::Resource, "resource", std::slice::from_ref(d))),
            boundary: self
                .boundary
                .as_ref()
                .map(|d| compile_set(PolicyType::Boundary, "boundary", std::slice::from_ref(d))),
            guardrails: self
                .guardrails
                .iter()
                .enumerate()
                .map(|(l, docs)| {
                    compile_set(PolicyType::Guardrail, &format!("guardrail{l}."), docs)
                })
                .collect(),
            session: self
                .session
                .as_ref()
                .map(|d| compile_set(PolicyType::Session, "session", std::slice::from_ref(d))),
        }
    }

    /// Every document with its policy type, for mutation.
    pub fn documents_mut(&mut self) -> Vec<(PolicyType, &mut PolicyDocument)> {
        let mut out: Vec<(PolicyType, &mut PolicyDocument)> = Vec::new();
        out.extend(self.identity.iter_mut().map(|d| (PolicyType::Identity, d)));
        out.extend(self.resource.iter_mut().map(|d| (PolicyType::Resource, d)));
        out.extend(self.boundary.iter_mut().map(|d| (PolicyType::Boundary, d)));
        for level in &mut self.guardrails {
            out.extend(level.iter_mut().map(|d| (PolicyType::Guardrail, d)));
        }
        out.extend(self.session.iter_mut().map(|d| (PolicyType::Session, d)));
        out
    }

    /// The number of statements in all.
    pub fn statement_count(&self) -> usize {
        let n = |d: &PolicyDocument| d.statements.len();
        self.identity.iter().map(n).sum::<usize>()
            + self.resource.iter().map(n).sum::<usize>()
            + self.boundary.iter().map(n).sum::<usize>()
            + self.guardrails.iter().flatten().map(n).sum::<usize>()
            + self.session.iter().map(n).sum::<usize>()
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// Writes a context key in a different case now and then (keys match case-insensitively).
fn recase(key: &str, how: u8) -> String {
    match how {
        0 => key.to_ascii_lowercase(),
        1 => key.to_ascii_uppercase(),
        _ => key.to_owned(),
    }
}

fn context_entry(garbage: bool) -> BoxedStrategy<(String, ContextValue)> {
    select(CONDITION_KEYS)
        .prop_flat_map(move |(key, kind)| {
            let values = request_values(kind, garbage);
            let value = prop_oneof![
                4 => select(values.clone()).prop_map(ContextValue::from),
                1 => vec(select(values), 0..=3).prop_map(ContextValue::from),
            ];
            (Just(key), prop_oneof![6 => Just(2u8), 1 => 0u8..2], value)
        })
        .prop_map(|(key, how, value)| (recase(key, how), value))
        .boxed()
}

/// A request built from the vocabulary; `garbage` adds context values of the wrong shape.
pub fn request_with(garbage: bool) -> BoxedStrategy<Request> {
    (
        select(REQUEST_PRINCIPALS),
        select(REQUEST_ACTIONS),
        select(REQUEST_RESOURCES),
        vec(context_entry(garbage), 0..=6),
        prop_oneof![
            6 => Just(None),
            1 => Just(Some(OTHER_ACCOUNT)),
            1 => Just(Some(ACCOUNT)),
        ],
    )
        .prop_map(|(p, a, r, ctx, resource_account)| {
            let mut req = Request::new(p, a, r);
            for (k, v) in ctx {
                req = req.with(k, v);
            }
            req.resource_account = resource_account.map(String::from);
            req
        })
        .boxed()
}

pub fn request() -> BoxedStrategy<Request> {
    request_with(false)
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/// `../shared/corpus` next to the workspace, when present.
pub fn shared_corpus() -> Option<PathBuf> {
    gatehouse_testenv::corpus(&gatehouse_testenv::repo_root(env!("CARGO_MANIFEST_DIR")))
}

/// The operators whose values are of `kind`.
pub fn operators_of(kind: ValueKind) -> Vec<BaseOperator> {
    operator_names(kind)
}
