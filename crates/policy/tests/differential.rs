//! Differential test against an independent AWS IAM simulator,
//! [`@cloud-copilot/iam-simulate`](https://github.com/cloud-copilot/iam-simulate) (npm, pinned in
//! `tests/differential/package.json`).
//!
//! A seeded generator builds a few thousand cases in AWS vocabulary (iam-simulate rejects
//! services and actions it does not know): identity policies, sometimes a permissions boundary,
//! one or two levels of SCPs, a same-account resource policy, a session policy; actions,
//! resources and conditions drawn from small pools so that statements and conditions actually
//! hit. Every case is decided by Gatehouse ([`Evaluation::decide`]) and by iam-simulate (through
//! `tests/differential/simulate.mjs`); every disagreement fails the test, except those in
//! [`KNOWN_DIVERGENCES`], each a place where iam-simulate departs from AWS's documentation.
//!
//! Only `"Version": "2012-10-17"` is generated: iam-simulate substitutes policy variables under
//! 2008-10-17 too, where AWS takes them as literal text.
//!
//! Needs Node.js and `npm ci --prefix crates/policy/tests/differential`; without them the test
//! prints a notice and passes. `GATEHOUSE_DIFF_CASES` and `GATEHOUSE_DIFF_SEED` override the
//! number of cases and the seed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_policy::{
    Decision, DecisionKind, Evaluation, NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request,
};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const DEFAULT_CASES: usize = 6000;
const DEFAULT_SEED: u64 = 0x6761_7465_686f_7573; // "gatehous"
const ACCOUNT: &str = "111122223333";

// ---------------------------------------------------------------------------------------------
// Random numbers: xorshift64*, deterministic for a seed.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    /// Changes the case of some letters.
    fn mangle_case(&mut self, s: &str) -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphabetic() && self.chance(30) {
                    if c.is_ascii_uppercase() {
                        c.to_ascii_lowercase()
                    } else {
                        c.to_ascii_uppercase()
                    }
                } else {
                    c
                }
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The vocabulary.

struct Principal {
    arn: &'static str,
    /// `aws:username` (AWS sets it for IAM users only).
    username: Option<&'static str>,
    /// `aws:PrincipalArn` (the role's ARN for a role session).
    principal_arn: &'static str,
    session: bool,
}

const PRINCIPALS: &[Principal] = &[
    Principal {
        arn: "arn:aws:iam::111122223333:user/alice",
        username: Some("alice"),
        principal_arn: "arn:aws:iam::111122223333:user/alice",
        session: false,
    },
    Principal {
        arn: "arn:aws:iam::111122223333:user/dev/search",
        username: Some("search"),
        principal_arn: "arn:aws:iam::111122223333:user/dev/search",
        session: false,
    },
    Principal {
        arn: "arn:aws:sts::111122223333:assumed-role/ops/build-42",
        username: None,
        principal_arn: "arn:aws:iam::111122223333:role/ops",
        session: true,
    },
];

/// A family of actions sharing resource shapes.
struct Family {
    actions: &'static [&'static str],
    resources: &'static [&'static str],
    /// Resource patterns for policies (besides `*`).
    patterns: &'static [&'static str],
}

const FAMILIES: &[Family] = &[
    Family {
        actions: &[
            "bedrock:InvokeModel",
            "bedrock:InvokeModelWithResponseStream",
            "bedrock:CreateModelCustomizationJob",
        ],
        resources: &[
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2",
            "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-8b",
            "arn:aws:bedrock:eu-west-1::foundation-model/amazon.titan-text",
            "arn:aws:bedrock:us-east-1::foundation-model/search-llama",
            "arn:aws:bedrock:us-east-1::foundation-model/alice-model",
        ],
        patterns: &[
            "arn:aws:bedrock:us-east-1::foundation-model/*",
            "arn:aws:bedrock:*::foundation-model/anthropic.*",
            "arn:aws:bedrock:*::foundation-model/*",
            "arn:aws:bedrock:us-east-1::foundation-model/${aws:PrincipalTag/team}-*",
            "arn:aws:bedrock:us-east-1::foundation-model/${aws:username}-model",
            "arn:aws:bedrock:us-?ast-1::foundation-model/meta.llama3-?b",
            "arn:aws:bedrock:*:*:*",
            "arn:aws:bedrock:us-east-1::foundation-model/Meta.Llama3-8b",
            "arn:aws:bedrock:us-east-1::foundation-model/${aws:PrincipalTag/team, 'alice'}-*",
        ],
    },
    Family {
        actions: &["s3:GetObject", "s3:PutObject"],
        resources: &[
            "arn:aws:s3:::bucket-a/alice/notes.txt",
            "arn:aws:s3:::bucket-a/public/index.html",
            "arn:aws:s3:::search/data.csv",
            "arn:aws:s3:::alice/x",
            "arn:aws:s3:::bucket-b/search/a?c",
        ],
        patterns: &[
            "arn:aws:s3:::bucket-a/*",
            "arn:aws:s3:::${aws:username}/*",
            "arn:aws:s3:::*/${aws:username}/*",
            "arn:aws:s3:::search/*",
            "arn:aws:s3:::bucket-?/public/*",
            "arn:aws:s3:::bucket-b/search/a${?}c",
            "arn:aws:s3:::*",
            "arn:aws:s3:::bucket-a/${aws:PrincipalTag/team}/*",
        ],
    },
    Family {
        actions: &["iam:CreateUser"],
        resources: &[
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:user/search",
            "arn:aws:iam::111122223333:user/bot",
        ],
        patterns: &[
            "arn:aws:iam::111122223333:user/${aws:username}",
            "arn:aws:iam::111122223333:user/*",
            "arn:aws:iam::*:user/b*",
            "arn:aws:iam::111122223333:user/${aws:PrincipalTag/team}",
        ],
    },
    Family {
        actions: &["iam:PassRole"],
        resources: &[
            "arn:aws:iam::111122223333:role/x",
            "arn:aws:iam::111122223333:role/search-runner",
            "arn:aws:iam::111122223333:role/ops",
        ],
        patterns: &[
            "arn:aws:iam::111122223333:role/search-*",
            "arn:aws:iam::*:role/*",
            "arn:aws:iam::111122223333:role/${aws:PrincipalTag/team}-runner",
            "arn:aws:iam::111122223333:role/?",
        ],
    },
];

const ACTION_PATTERNS: &[&str] = &[
    "bedrock:InvokeModel",
    "bedrock:invokemodel",
    "bedrock:InvokeModelWithResponseStream",
    "bedrock:Invoke*",
    "bedrock:*Model*",
    "bedrock:CreateModelCustomizationJob",
    "bedrock:*",
    "s3:GetObject",
    "s3:Get*",
    "s3:?etObject",
    "s3:PutObject",
    "s3:*",
    "iam:CreateUser",
    "iam:PassRole",
    "iam:Create*",
    "iam:*",
    "*",
];

const TAG_KEYS: &[&str] = &["team", "env", "cost-center", "Team"];

// ---------------------------------------------------------------------------------------------
// Cases.

struct Case {
    id: usize,
    principal: &'static Principal,
    request: Request,
    identity: Vec<String>,
    guardrails: Vec<Vec<String>>,
    boundary: Option<String>,
    resource_policy: Option<String>,
    session: Option<String>,
}

impl Case {
    fn to_json(&self) -> Value {
        let context: serde_json::Map<String, Value> = self
            .request
            .context
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    gatehouse_policy::ContextValue::One(s) => json!(s),
                    gatehouse_policy::ContextValue::Many(l) => json!(l),
                };
                (k.to_owned(), v)
            })
            .collect();
        json!({
            "id": self.id,
            "principal": self.request.principal,
            "action": self.request.action,
            "resource": self.request.resource,
            "resourceAccount": ACCOUNT,
            "context": context,
            "identity": self.identity,
            "guardrails": self.guardrails,
            "boundary": self.boundary,
            "resourcePolicy": self.resource_policy,
            "session": self.session,
        })
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        s += &format!(
            "  request: {}\n",
            serde_json::to_string(&self.request).unwrap()
        );
        for (i, p) in self.identity.iter().enumerate() {
            s += &format!("  identity[{i}]: {p}\n");
        }
        for (l, level) in self.guardrails.iter().enumerate() {
            for p in level {
                s += &format!("  scp level {l}: {p}\n");
            }
        }
        if let Some(p) = &self.boundary {
            s += &format!("  boundary: {p}\n");
        }
        if let Some(p) = &self.resource_policy {
            s += &format!("  resource policy: {p}\n");
        }
        if let Some(p) = &self.session {
            s += &format!("  session policy: {p}\n");
        }
        s
    }
}

struct Gen {
    rng: Rng,
}

impl Gen {
    fn case(&mut self, id: usize) -> Case {
        let principal = self.rng.pick(PRINCIPALS);
        let family = self.rng.pick(FAMILIES);
        let mut action = (*self.rng.pick(family.actions)).to_owned();
        if self.rng.chance(15) {
            action = self.rng.mangle_case(&action);
        }
        let resource = *self.rng.pick(family.resources);
        let mut request = Request::new(principal.arn, action, resource);
        // Keys AWS always sets for an authenticated IAM principal (iam-simulate does not derive
        // them, so both sides are told).
        request
            .context
            .insert("aws:PrincipalArn", principal.principal_arn);
        request.context.insert("aws:PrincipalAccount", ACCOUNT);
        if let Some(u) = principal.username {
            request.context.insert("aws:username", u);
        }
        self.context(&mut request);

        let identity = (0..1 + self.rng.below(2))
            .map(|_| self.policy(family, 3, None))
            .collect();
        let guardrails = if self.rng.chance(25) {
            (0..1 + self.rng.below(2))
                .map(|_| self.scp_level(family))
                .collect()
        } else {
            Vec::new()
        };
        let boundary = self.rng.chance(25).then(|| self.policy(family, 2, None));
        let resource_policy = self
            .rng
            .chance(30)
            .then(|| self.policy(family, 2, Some(principal)));
        let session =
            (principal.session && self.rng.chance(40)).then(|| self.policy(family, 2, None));
        Case {
            id,
            principal,
            request,
            identity,
            guardrails,
            boundary,
            resource_policy,
            session,
        }
    }

    fn context(&mut self, r: &mut Request) {
        let rng = &mut self.rng;
        let ctx = &mut r.context;
        if rng.chance(60) {
            let ip = *rng.pick(&[
                "10.0.0.1",
                "10.1.2.3",
                "192.168.1.10",
                "203.0.113.5",
                "2001:db8::1",
            ]);
            ctx.insert("aws:SourceIp", ip);
        }
        if rng.chance(60) {
            let t = *rng.pick(&[
                "2024-01-15T12:00:00Z",
                "2025-06-01T00:00:00Z",
                "2023-12-31T23:59:59Z",
            ]);
            ctx.insert("aws:CurrentTime", t);
        }
        if rng.chance(60) {
            let b = *rng.pick(&["true", "false"]);
            ctx.insert("aws:SecureTransport", b);
        }
        if rng.chance(50) {
            let b = *rng.pick(&["true", "false"]);
            ctx.insert("aws:MultiFactorAuthPresent", b);
        }
        if rng.chance(50) {
            let n = *rng.pick(&["30", "3600", "7200"]);
            ctx.insert("aws:MultiFactorAuthAge", n);
        }
        if rng.chance(60) {
            let t = *rng.pick(&["search", "ads", "Search", "alice"]);
            ctx.insert("aws:PrincipalTag/team", t);
        }
        if rng.chance(50) {
            let t = *rng.pick(&["us-east-1", "eu-west-1"]);
            ctx.insert("aws:RequestedRegion", t);
        }
        if rng.chance(50) {
            let n = rng.below(4);
            let mut keys: Vec<&str> = Vec::new();
            for _ in 0..n {
                let k = *rng.pick(TAG_KEYS);
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            ctx.insert("aws:TagKeys", keys);
        }
    }

    fn action_element(&mut self, family: &Family) -> Value {
        let n = 1 + self.rng.below(2);
        let mut out = Vec::new();
        for _ in 0..n {
            let a = if self.rng.chance(60) {
                (*self.rng.pick(family.actions)).to_owned()
            } else {
                (*self.rng.pick(ACTION_PATTERNS)).to_owned()
            };
            let a = if self.rng.chance(15) {
                self.rng.mangle_case(&a)
            } else {
                a
            };
            out.push(a);
        }
        if out.len() == 1 && self.rng.chance(50) {
            json!(out[0])
        } else {
            json!(out)
        }
    }

    fn resource_element(&mut self, family: &Family) -> Value {
        let n = 1 + self.rng.below(2);
        let mut out = Vec::new();
        for _ in 0..n {
            let r = match self.rng.below(10) {
                0 => "*",
                1..=3 => *self.rng.pick(family.resources),
                _ => *self.rng.pick(family.patterns),
            };
            out.push(r);
        }
        if out.len() == 1 && self.rng.chance(50) {
            json!(out[0])
        } else {
            json!(out)
        }
    }

    fn condition_block(&mut self) -> Option<Value> {
        let n = match self.rng.below(10) {
            0..=3 => 0,
            4..=7 => 1,
            8 => 2,
            _ => 3,
        };
        if n == 0 {
            return None;
        }
        let mut block = serde_json::Map::new();
        for _ in 0..n {
            let (op, key, values) = self.condition();
            let entry = block.entry(op).or_insert_with(|| json!({}));
            let values = if values.len() == 1 && self.rng.chance(50) {
                json!(values[0])
            } else {
                json!(values)
            };
            entry
                .as_object_mut()
                .unwrap()
                .insert(key.to_owned(), values);
        }
        Some(Value::Object(block))
    }

    /// One operator, key and values.
    fn condition(&mut self) -> (String, &'static str, Vec<String>) {
        let rng = &mut self.rng;
        let values = |pool: &[&str], rng: &mut Rng| -> Vec<String> {
            let n = 1 + rng.below(2);
            (0..n).map(|_| (*rng.pick(pool)).to_owned()).collect()
        };
        let (op, key, vals): (&str, &'static str, Vec<String>) = match rng.below(10) {
            0 | 1 => {
                let op = *rng.pick(&[
                    "StringEquals",
                    "StringNotEquals",
                    "StringEqualsIgnoreCase",
                    "StringNotEqualsIgnoreCase",
                    "StringLike",
                    "StringNotLike",
                ]);
                let key = *rng.pick(&[
                    "aws:PrincipalTag/team",
                    "aws:RequestedRegion",
                    "aws:username",
                ]);
                let v = values(
                    &[
                        "search",
                        "ads",
                        "SEARCH",
                        "se*",
                        "${aws:username}",
                        "us-*",
                        "us-east-1",
                        "alice",
                        "?lice",
                    ],
                    rng,
                );
                (op, key, v)
            }
            2 => {
                let op = *rng.pick(&[
                    "NumericEquals",
                    "NumericNotEquals",
                    "NumericLessThan",
                    "NumericLessThanEquals",
                    "NumericGreaterThan",
                    "NumericGreaterThanEquals",
                ]);
                let v = values(&["60", "3600", "7200", "30"], rng);
                (op, "aws:MultiFactorAuthAge", v)
            }
            3 => {
                let op = *rng.pick(&[
                    "DateEquals",
                    "DateNotEquals",
                    "DateLessThan",
                    "DateLessThanEquals",
                    "DateGreaterThan",
                    "DateGreaterThanEquals",
                ]);
                let v = values(
                    &[
                        "2024-06-01T00:00:00Z",
                        "2025-01-01T00:00:00Z",
                        "2024-01-15T12:00:00Z",
                        "1704067200",
                    ],
                    rng,
                );
                (op, "aws:CurrentTime", v)
            }
            4 => {
                let key = *rng.pick(&["aws:SecureTransport", "aws:MultiFactorAuthPresent"]);
                let v = vec![(*rng.pick(&["true", "false"])).to_owned()];
                ("Bool", key, v)
            }
            5 => {
                let op = *rng.pick(&["IpAddress", "NotIpAddress"]);
                let v = values(
                    &[
                        "10.0.0.0/8",
                        "192.168.1.0/24",
                        "203.0.113.5/32",
                        "2001:db8::/32",
                        "10.1.2.3",
                    ],
                    rng,
                );
                (op, "aws:SourceIp", v)
            }
            6 => {
                let op = *rng.pick(&["ArnLike", "ArnNotLike", "ArnEquals", "ArnNotEquals"]);
                let v = values(
                    &[
                        "arn:aws:iam::111122223333:user/*",
                        "arn:aws:iam::111122223333:role/ops",
                        "arn:aws:iam::*:user/dev/*",
                        "arn:aws:iam::111122223333:user/alice",
                        "arn:aws:iam::111122223333:*",
                    ],
                    rng,
                );
                (op, "aws:PrincipalArn", v)
            }
            7 => {
                let key = *rng.pick(&[
                    "aws:PrincipalTag/team",
                    "aws:TagKeys",
                    "aws:SourceIp",
                    "aws:username",
                    "aws:MultiFactorAuthAge",
                ]);
                let v = vec![(*rng.pick(&["true", "false"])).to_owned()];
                ("Null", key, v)
            }
            _ => {
                let set = *rng.pick(&["ForAllValues:", "ForAnyValue:"]);
                let op = *rng.pick(&[
                    "StringEquals",
                    "StringLike",
                    "StringEqualsIgnoreCase",
                    "StringNotEquals",
                    "StringNotLike",
                ]);
                let v = values(&["team", "env", "cost-center", "Team", "t*"], rng);
                let v = if rng.chance(50) {
                    let mut v = v;
                    v.push((*rng.pick(TAG_KEYS)).to_owned());
                    v
                } else {
                    v
                };
                return (format!("{set}{op}"), "aws:TagKeys", v);
            }
        };
        let op = if op != "Null" && self.rng.chance(20) {
            format!("{op}IfExists")
        } else {
            op.to_owned()
        };
        (op, key, vals)
    }

    fn statement(&mut self, family: &Family, principal: Option<&Principal>) -> Value {
        let deny = self.rng.chance(30);
        let mut st = serde_json::Map::new();
        if self.rng.chance(30) {
            st.insert("Sid".into(), json!(format!("S{}", self.rng.below(1000))));
        }
        st.insert("Effect".into(), json!(if deny { "Deny" } else { "Allow" }));
        if let Some(p) = principal {
            let (elem, value) = self.principal_element(p, deny);
            st.insert(elem.into(), value);
        }
        let action = self.action_element(family);
        if self.rng.chance(8) {
            st.insert("NotAction".into(), action);
        } else {
            st.insert("Action".into(), action);
        }
        let resource = self.resource_element(family);
        if self.rng.chance(8) {
            st.insert("NotResource".into(), resource);
        } else {
            st.insert("Resource".into(), resource);
        }
        if let Some(c) = self.condition_block() {
            st.insert("Condition".into(), c);
        }
        Value::Object(st)
    }

    fn principal_element(&mut self, p: &Principal, deny: bool) -> (&'static str, Value) {
        let named = [
            json!("*"),
            json!({"AWS": "*"}),
            json!({"AWS": p.arn}),
            json!({"AWS": "arn:aws:iam::111122223333:user/alice"}),
            json!({"AWS": ACCOUNT}),
            json!({"AWS": "arn:aws:iam::111122223333:root"}),
            json!({"AWS": "arn:aws:iam::111122223333:role/ops"}),
            json!({"AWS": "arn:aws:sts::111122223333:assumed-role/ops/build-42"}),
            json!({"AWS": ["arn:aws:iam::444455556666:root", "arn:aws:iam::111122223333:user/dev/search"]}),
            json!({"Service": "bedrock.amazonaws.com"}),
        ];
        if deny && self.rng.chance(30) {
            let np = [
                json!({"AWS": p.arn}),
                json!({"AWS": "arn:aws:iam::111122223333:user/alice"}),
                json!({"AWS": ["arn:aws:iam::111122223333:role/ops", "arn:aws:sts::111122223333:assumed-role/ops/build-42"]}),
            ];
            return ("NotPrincipal", self.rng.pick(&np).clone());
        }
        ("Principal", self.rng.pick(&named).clone())
    }

    /// A policy of 1 to `max` statements.
    fn policy(&mut self, family: &Family, max: usize, principal: Option<&Principal>) -> String {
        let n = 1 + self.rng.below(max);
        let statements: Vec<Value> = (0..n).map(|_| self.statement(family, principal)).collect();
        let statement = if statements.len() == 1 && self.rng.chance(30) {
            statements[0].clone()
        } else {
            json!(statements)
        };
        serde_json::to_string(&json!({"Version": "2012-10-17", "Statement": statement})).unwrap()
    }

    /// One SCP level: usually `FullAWSAccess` plus something, sometimes only a narrower allow.
    fn scp_level(&mut self, family: &Family) -> Vec<String> {
        let full = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
        match self.rng.below(4) {
            0 => vec![full.to_owned()],
            1 => vec![full.to_owned(), self.policy(family, 1, None)],
            _ => vec![self.policy(family, 2, None)],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Gatehouse's side.

fn compile(kind: PolicyType, texts: &[&String], name: &str) -> Result<PolicySet, String> {
    let mut named = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let doc =
            PolicyDocument::parse(t).map_err(|e| format!("{name}[{i}] does not parse: {e}"))?;
        named.push(NamedPolicy::new(format!("{name}-{i}"), doc));
    }
    PolicySet::new(kind, named).map_err(|e| format!("{name} does not compile: {e}"))
}

fn gatehouse(case: &Case, request: &Request) -> Result<Decision, String> {
    let identity = compile(
        PolicyType::Identity,
        &case.identity.iter().collect::<Vec<_>>(),
        "identity",
    )?;
    let guardrails = case
        .guardrails
        .iter()
        .map(|level| {
            compile(
                PolicyType::Guardrail,
                &level.iter().collect::<Vec<_>>(),
                "scp",
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let boundary = case
        .boundary
        .as_ref()
        .map(|b| compile(PolicyType::Boundary, &[b], "boundary"))
        .transpose()?;
    let resource = case
        .resource_policy
        .as_ref()
        .map(|r| compile(PolicyType::Resource, &[r], "resource"))
        .transpose()?;
    let session = case
        .session
        .as_ref()
        .map(|s| compile(PolicyType::Session, &[s], "session"))
        .transpose()?;
    let eval = Evaluation {
        identity: &identity,
        resource: resource.as_ref(),
        boundary: boundary.as_ref(),
        guardrails: &guardrails,
        session: session.as_ref(),
    };
    Ok(eval.decide(request))
}

// ---------------------------------------------------------------------------------------------
// Known divergences: places where iam-simulate departs from AWS's documentation. Each names
// the documentation and the rule, and *emulates* iam-simulate's behaviour by rewriting the
// case (policies and request) so that Gatehouse, deciding the rewritten case by the documented
// rules, reaches iam-simulate's answer. A disagreement is excused only when such a rewrite
// reproduces iam-simulate's decision exactly; anything else is reported.

struct KnownDivergence {
    name: &'static str,
    url: &'static str,
    rule: &'static str,
    /// Rewrites the case as iam-simulate effectively evaluates it; `None` when the divergence
    /// cannot be involved in this case.
    emulate: fn(&Case, &Request) -> Option<(Case, Request)>,
}

const KNOWN_DIVERGENCES: &[KnownDivergence] = &[
    KnownDivergence {
        name: "notresource-unresolved-variable",
        url: "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value",
        rule: "\"If a variable that has no value in the authorization context is used as part of the \
               Resource or NotResource element of a policy, the resource that includes a policy \
               variable with no value will not match any resource\": such an entry excludes nothing \
               from NotResource, so the statement still applies. iam-simulate instead treats a \
               NotResource holding an unresolvable variable as not matching (its mismatch reason \
               `unresolvablePolicyVariable` is not invertible), so the statement never applies.",
        emulate: emulate_notresource_unresolved,
    },
    KnownDivergence {
        name: "notipaddress-bare-address-other-family",
        url: "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_IPAddress",
        rule: "NotIpAddress is \"negated matching for the specified IP address or range\": an IPv6 \
               source address is not the IPv4 address 10.1.2.3, so NotIpAddress is true for it. \
               iam-simulate evaluates a bare (non-CIDR) address value of the other IP family as \
               not matching (`isValidIpV4(request) && (policy === request) == false` in \
               condition/ipaddress/ip.js), which makes the whole NotIpAddress false.",
        emulate: emulate_notipaddress_bare,
    },
    KnownDivergence {
        name: "session-policy-limits-resource-grant-to-session",
        url: "https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session",
        rule: "\"A resource-based policy can specify the ARN of the session as a principal. In that \
               case, the permissions from the resource-based policy are added after the session is \
               created. The resource-based policy permissions are not limited by the session \
               policy.\" iam-simulate (whose README lists session policies as not yet supported) \
               denies whenever the session policy does not allow, even when the resource policy \
               grants to the session itself (its ARN, or `*`).",
        emulate: emulate_session_limits_resource,
    },
    KnownDivergence {
        name: "date-epoch-seconds-read-as-milliseconds",
        url: "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_Date",
        rule: "Date condition values are \"one of the W3C implementations of the ISO 8601 date \
               formats\" or \"epoch (UNIX) time\", which counts seconds. iam-simulate parses an \
               epoch value as a plain integer but an ISO 8601 date with Date.parse, in \
               milliseconds (condition/date/date.js), so `1704067200` (2024-01-01) compares as \
               1970-01-20 against an ISO request time.",
        emulate: emulate_epoch_as_millis,
    },
    KnownDivergence {
        name: "null-false-on-empty-multivalued-key",
        url: "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition_examples-multi-valued-context-keys.html",
        rule: "\"You can prevent missing context keys or context keys with empty values from \
               evaluating to true by including a Null condition operator in your policy with a \
               value of false to check if the context key in the request exists and its value is \
               not null\": a key whose value set is empty counts as null. iam-simulate treats \
               `aws:TagKeys: []` as present, so `Null: false` holds and `Null: true` does not.",
        emulate: emulate_null_empty_present,
    },
    KnownDivergence {
        name: "negated-operator-unresolved-variable",
        url: "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value",
        rule: "\"Inverted condition operators like StringNotEquals or StringNotLike do match against \
               a null value, as the value of the condition key they are testing against is not \
               equal to or like the effectively null value.\" iam-simulate evaluates a condition \
               value holding an unresolvable variable as not matching, so a negated operator \
               with such a value (the key being present) is false.",
        emulate: emulate_negated_unresolved,
    },
];

/// Applies `f` to every statement of every policy of the case; returns the rewritten case when
/// some statement changed.
fn rewrite_statements(
    case: &Case,
    request: &Request,
    mut f: impl FnMut(&mut serde_json::Map<String, Value>, bool) -> bool,
) -> Option<(Case, Request)> {
    let mut changed = false;
    let mut one = |text: &String, resource: bool| -> String {
        let mut doc: Value = serde_json::from_str(text).unwrap();
        let statements = match doc.get_mut("Statement").unwrap() {
            Value::Array(list) => list.iter_mut().collect::<Vec<_>>(),
            single => vec![single],
        };
        for st in statements {
            changed |= f(st.as_object_mut().unwrap(), resource);
        }
        serde_json::to_string(&doc).unwrap()
    };
    let rewritten = Case {
        id: case.id,
        principal: case.principal,
        request: case.request.clone(),
        identity: case.identity.iter().map(|p| one(p, false)).collect(),
        guardrails: case
            .guardrails
            .iter()
            .map(|level| level.iter().map(|p| one(p, false)).collect())
            .collect(),
        boundary: case.boundary.as_ref().map(|p| one(p, false)),
        resource_policy: case.resource_policy.as_ref().map(|p| one(p, true)),
        session: case.session.as_ref().map(|p| one(p, false)),
    };
    changed.then(|| (rewritten, request.clone()))
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(l) => l.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// True when `text` holds a `${key}` variable (without default) whose key the request lacks.
fn has_unresolved_variable(text: &str, request: &Request) -> bool {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            return false;
        };
        let inner = &rest[start + 2..start + len];
        rest = &rest[start + len + 1..];
        if matches!(inner, "*" | "?" | "$") || inner.contains(',') {
            continue;
        }
        if request.context.get(inner.trim()).is_none() {
            return true;
        }
    }
    false
}

fn emulate_notresource_unresolved(case: &Case, request: &Request) -> Option<(Case, Request)> {
    rewrite_statements(case, request, |st, _| {
        let hit = st.get("NotResource").is_some_and(|nr| {
            strings(nr)
                .iter()
                .any(|r| has_unresolved_variable(r, request))
        });
        if hit {
            // iam-simulate: the statement never applies. `NotResource: "*"` matches nothing.
            st.insert("NotResource".into(), json!("*"));
        }
        hit
    })
}

fn emulate_notipaddress_bare(case: &Case, request: &Request) -> Option<(Case, Request)> {
    let ip = request
        .context
        .get("aws:SourceIp")?
        .as_slice()
        .first()?
        .clone();
    let request_v6 = ip.contains(':');
    rewrite_statements(case, request, |st, _| {
        let mut hit = false;
        let Some(Value::Object(cond)) = st.get_mut("Condition") else {
            return false;
        };
        for (op, keys) in cond.iter_mut() {
            if !op.to_ascii_lowercase().starts_with("notipaddress") {
                continue;
            }
            let Value::Object(keys) = keys else { continue };
            for (key, values) in keys.iter_mut() {
                if !key.eq_ignore_ascii_case("aws:SourceIp") {
                    continue;
                }
                let new: Vec<String> = strings(values)
                    .iter()
                    .map(|v| {
                        let bare_other = !v.contains('/') && v.contains(':') != request_v6;
                        if bare_other {
                            hit = true;
                            // A range holding the request's address: this value now makes
                            // NotIpAddress false, as iam-simulate evaluates it.
                            (if request_v6 { "::/0" } else { "0.0.0.0/0" }).to_owned()
                        } else {
                            (*v).to_owned()
                        }
                    })
                    .collect();
                *values = json!(new);
            }
        }
        hit
    })
}

fn emulate_session_limits_resource(case: &Case, request: &Request) -> Option<(Case, Request)> {
    case.session.as_ref()?;
    let session_arn = case.principal.arn;
    let role_arn = case.principal.principal_arn;
    rewrite_statements(case, request, |st, resource| {
        if !resource {
            return false;
        }
        let Some(p) = st.get("Principal").cloned() else {
            return false;
        };
        // Name the session's role instead: a grant that the session policy (and boundary)
        // still limits, as iam-simulate treats every resource-policy grant to a session.
        let to_role = |s: &str| s == "*" || s == session_arn;
        let new = match &p {
            Value::String(s) if s == "*" => json!({"AWS": role_arn}),
            Value::Object(m) => {
                let mut m = m.clone();
                if let Some(aws) = m.get("AWS") {
                    let list: Vec<String> = strings(aws)
                        .iter()
                        .map(|s| if to_role(s) { role_arn } else { *s }.to_owned())
                        .collect();
                    m.insert("AWS".into(), json!(list));
                }
                Value::Object(m)
            }
            other => other.clone(),
        };
        let hit = new != p;
        st.insert("Principal".into(), new);
        hit
    })
}

// ---------------------------------------------------------------------------------------------
// The oracle.

#[derive(serde::Deserialize)]
struct OracleResult {
    id: usize,
    decision: Option<DecisionKind>,
    error: Option<String>,
    #[serde(rename = "ignoredContextKeys")]
    ignored_context_keys: Vec<String>,
}

fn run_oracle(dir: &Path, cases: &[Case]) -> Vec<OracleResult> {
    let input = Value::Array(cases.iter().map(Case::to_json).collect());
    let mut child = Command::new("node")
        .arg("simulate.mjs")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let mut stdin = child.stdin.take().expect("stdin");
    let text = serde_json::to_vec(&input).unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&text).expect("write cases to node");
    });
    let out = child.wait_with_output().expect("run node");
    writer.join().unwrap();
    assert!(out.status.success(), "simulate.mjs failed: {}", out.status);
    serde_json::from_slice(&out.stdout).expect("simulate.mjs output")
}

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Applies `f` to every (operator, key, values) of every condition of the case.
fn rewrite_conditions(
    case: &Case,
    request: &Request,
    mut f: impl FnMut(&str, &str, &mut Value) -> bool,
) -> Option<(Case, Request)> {
    rewrite_statements(case, request, |st, _| {
        let mut hit = false;
        if let Some(Value::Object(cond)) = st.get_mut("Condition") {
            for (op, keys) in cond.iter_mut() {
                if let Value::Object(keys) = keys {
                    for (key, values) in keys.iter_mut() {
                        hit |= f(op, key, values);
                    }
                }
            }
        }
        hit
    })
}

fn emulate_epoch_as_millis(case: &Case, request: &Request) -> Option<(Case, Request)> {
    rewrite_conditions(case, request, |op, _, values| {
        if !op.to_ascii_lowercase().starts_with("date") {
            return false;
        }
        let mut hit = false;
        let new: Vec<String> = strings(values)
            .iter()
            .map(|v| match v.parse::<i64>() {
                Ok(n) => {
                    hit = true;
                    (n / 1000).to_string()
                }
                Err(_) => (*v).to_owned(),
            })
            .collect();
        *values = json!(new);
        hit
    })
}

fn emulate_null_empty_present(case: &Case, request: &Request) -> Option<(Case, Request)> {
    let empty: Vec<String> = request
        .context
        .iter()
        .filter(|(_, v)| v.as_slice().is_empty())
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    if empty.is_empty() {
        return None;
    }
    rewrite_conditions(case, request, |op, key, values| {
        if op != "Null" || !empty.contains(&key.to_ascii_lowercase()) {
            return false;
        }
        let flipped: Vec<&str> = strings(values)
            .iter()
            .map(|v| {
                if v.eq_ignore_ascii_case("true") {
                    "false"
                } else {
                    "true"
                }
            })
            .collect();
        *values = json!(flipped);
        true
    })
}

fn emulate_negated_unresolved(case: &Case, request: &Request) -> Option<(Case, Request)> {
    rewrite_conditions(case, request, |op, key, values| {
        let lc = op.to_ascii_lowercase();
        if !lc.starts_with("stringnot") {
            return false;
        }
        // With the key present, a value equal to the request's value makes the negated
        // operator false, as iam-simulate evaluates the unresolvable value.
        let Some(actual) = request
            .context
            .get(key)
            .and_then(|v| v.as_slice().first().cloned())
        else {
            return false;
        };
        let mut hit = false;
        let new: Vec<String> = strings(values)
            .iter()
            .map(|v| {
                if has_unresolved_variable(v, request) {
                    hit = true;
                    actual.clone()
                } else {
                    (*v).to_owned()
                }
            })
            .collect();
        *values = json!(new);
        hit
    })
}

/// The known divergences that, emulated together, turn Gatehouse's answer into iam-simulate's.
fn explained(case: &Case, request: &Request, theirs: DecisionKind) -> Option<Vec<usize>> {
    let mut current: Option<(Case, Request)> = None;
    let mut applied = Vec::new();
    for (i, k) in KNOWN_DIVERGENCES.iter().enumerate() {
        let (c, r) = match &current {
            Some((c, r)) => (c, r),
            None => (case, request),
        };
        if let Some(next) = (k.emulate)(c, r) {
            applied.push(i);
            current = Some(next);
            let (c, r) = current.as_ref().unwrap();
            if gatehouse(c, r).is_ok_and(|d| d.decision == theirs) {
                return Some(applied);
            }
        }
    }
    None
}

#[test]
fn gatehouse_agrees_with_iam_simulate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential");
    if !node_available()
        || !dir
            .join("node_modules/@cloud-copilot/iam-simulate")
            .is_dir()
    {
        gatehouse_testenv::missing(
            "Node.js with npm's @cloud-copilot/iam-simulate",
            "run: npm ci --prefix crates/policy/tests/differential",
        );
        return;
    }
    let n: usize = std::env::var("GATEHOUSE_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seed: u64 = std::env::var("GATEHOUSE_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let mut generator = Gen {
        rng: Rng::new(seed),
    };
    let cases: Vec<Case> = (0..n).map(|id| generator.case(id)).collect();
    let results = run_oracle(&dir, &cases);
    assert_eq!(results.len(), cases.len(), "one oracle result per case");

    let mut failures = Vec::new();
    let mut agreed = 0usize;
    let mut known = vec![0usize; KNOWN_DIVERGENCES.len()];
    let mut known_cases = 0usize;
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for (case, result) in cases.iter().zip(&results) {
        assert_eq!(case.id, result.id);
        // Keys iam-simulate filtered out (not valid for the action) are absent on both sides.
        let mut request = case.request.clone();
        for k in &result.ignored_context_keys {
            request.context.remove(k);
        }
        let ours = gatehouse(case, &request);
        let theirs = match (&result.decision, &result.error) {
            (Some(d), _) => Ok(*d),
            (None, e) => Err(e.clone().unwrap_or_default()),
        };
        let verdict = match (&ours, &theirs) {
            (Ok(o), Ok(t)) if o.decision == *t => {
                agreed += 1;
                *tally.entry(t.to_string()).or_default() += 1;
                continue;
            }
            (Ok(o), Ok(t)) => {
                if let Some(which) = explained(case, &request, *t) {
                    for i in which {
                        known[i] += 1;
                    }
                    known_cases += 1;
                    continue;
                }
                format!(
                    "gatehouse {} (by {}), iam-simulate {t}",
                    o.decision,
                    o.statements
                        .iter()
                        .map(|s| format!("{}#{}", s.policy, s.index))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            (Err(e), Ok(t)) => format!("gatehouse refused the policies ({e}), iam-simulate {t}"),
            (Ok(o), Err(e)) => format!("gatehouse {}, iam-simulate error {e}", o.decision),
            (Err(a), Err(b)) => format!("both refused: gatehouse {a}; iam-simulate {b}"),
        };
        failures.push(format!(
            "case {} ({}): {verdict}\n{}",
            case.id,
            case.principal.arn,
            case.describe()
        ));
    }
    println!(
        "differential: {n} cases (seed {seed}), {agreed} agree ({:.2}%), {tally:?}; \
         {known_cases} explained by known iam-simulate divergences; {} unexplained",
        100.0 * agreed as f64 / n as f64,
        failures.len()
    );
    for (k, count) in KNOWN_DIVERGENCES.iter().zip(&known) {
        println!(
            "  known divergence `{}` ({count} cases): {} — {}",
            k.name, k.rule, k.url
        );
    }
    if !failures.is_empty() {
        panic!(
            "{} of {n} cases disagree with iam-simulate:\n\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// Found by this differential test: a resource-based `Deny` with `NotPrincipal` applies to a
/// principal that has a permissions boundary, whatever `NotPrincipal` names. Runs without Node.
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html>
#[test]
fn not_principal_deny_applies_to_principals_with_a_boundary() {
    let parse = |kind, text: &str| {
        PolicySet::new(
            kind,
            [NamedPolicy::new("p", PolicyDocument::parse(text).unwrap())],
        )
        .unwrap()
    };
    let identity = parse(
        PolicyType::Identity,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#,
    );
    let boundary = parse(
        PolicyType::Boundary,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
    );
    let resource = parse(
        PolicyType::Resource,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny",
            "NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/alice"},
            "Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket-a/*"}}"#,
    );
    let request = Request::new(
        "arn:aws:iam::111122223333:user/alice",
        "s3:GetObject",
        "arn:aws:s3:::bucket-a/notes.txt",
    );
    let mut eval = Evaluation {
        identity: &identity,
        resource: Some(&resource),
        boundary: None,
        guardrails: &[],
        session: None,
    };
    assert_eq!(eval.decide(&request).decision, DecisionKind::Allow);
    eval.boundary = Some(&boundary);
    assert_eq!(eval.decide(&request).decision, DecisionKind::ExplicitDeny);
    assert_eq!(
        eval.decide_linear(&request).decision,
        DecisionKind::ExplicitDeny
    );
}
