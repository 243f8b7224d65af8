//! Scenarios shared by `benches/engines.rs` and `tests/engines_agree.rs`: the same policies
//! written for Gatehouse (IAM JSON), Cedar and Rego (regorus), the same requests, and one
//! adapter per engine that turns a request into the engine's own input ahead of time and
//! decides it.
//!
//! A scenario of `n` statements holds:
//! - `n - 2` Allow statements, each on one model with a principal-tag condition
//!   (`StringEquals aws:PrincipalTag/team`) and an IP condition (`IpAddress aws:SourceIp`,
//!   one of four /10 blocks of 10.0.0.0/8), over three actions;
//! - one Allow statement whose resource holds a tag variable
//!   (`dataset/${aws:PrincipalTag/team}`: every team may write its own dataset);
//! - one Deny statement: `ai:*` on `*` from the quarantined subnet 10.250.0.0/16.
//!
//! Requests come in three mixes (allow hits, explicit-deny hits, implicit denies), each
//! cycling through the condition flavours (tag, IP, tag-variable resource, no statement).
//! Every request carries the decision it was built to get, and every engine must reach it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::str::FromStr;

pub const ACCOUNT: &str = "111122223333";
pub const MODEL_PREFIX: &str = "arn:gatehouse:ai:local:111122223333:model/";
pub const DATASET_PREFIX: &str = "arn:gatehouse:ai:local:111122223333:dataset/";
/// Actions of the tag+IP statements, by statement index modulo 3.
pub const ACTIONS: [&str; 3] = ["InvokeModel", "InvokeModelWithResponseStream", "GetModel"];
/// Distinct team tags.
pub const TEAMS: usize = 50;
/// Requests per mix.
pub const PER_MIX: usize = 120;

/// The three outcomes every engine reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

/// Which group of requests a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mix {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

impl Mix {
    pub const ALL: [Mix; 3] = [Mix::Allow, Mix::ExplicitDeny, Mix::ImplicitDeny];

    pub fn name(self) -> &'static str {
        match self {
            Mix::Allow => "allow",
            Mix::ExplicitDeny => "explicit_deny",
            Mix::ImplicitDeny => "implicit_deny",
        }
    }

    pub fn expected(self) -> Kind {
        match self {
            Mix::Allow => Kind::Allow,
            Mix::ExplicitDeny => Kind::ExplicitDeny,
            Mix::ImplicitDeny => Kind::ImplicitDeny,
        }
    }
}

/// One request, engine-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// User name (`user/NAME`, Cedar `User::"NAME"`).
    pub user: String,
    /// Action name without the `ai:` prefix.
    pub action: &'static str,
    /// `model/ID` or `dataset/ID`: (is_dataset, ID).
    pub dataset: bool,
    pub resource_id: String,
    pub team: String,
    pub source_ip: String,
    pub mix: Mix,
    pub flavour: &'static str,
}

impl Case {
    pub fn resource_arn(&self) -> String {
        let prefix = if self.dataset {
            DATASET_PREFIX
        } else {
            MODEL_PREFIX
        };
        format!("{prefix}{}", self.resource_id)
    }

    pub fn principal_arn(&self) -> String {
        format!("arn:gatehouse:iam::{ACCOUNT}:user/{}", self.user)
    }
}

/// The tag+IP statement `i`: (action, team, CIDR).
pub fn statement(i: usize) -> (&'static str, String, String) {
    let block = (i % 4) * 64;
    (
        ACTIONS[i % 3],
        format!("team-{}", i % TEAMS),
        format!("10.{block}.0.0/10"),
    )
}

/// A small deterministic generator (SplitMix64): no dependency, same requests every run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A scenario: `n` statements and the requests of every mix.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub n: usize,
    pub cases: Vec<Case>,
}

impl Scenario {
    pub fn new(n: usize) -> Scenario {
        assert!(n >= 6, "a scenario needs at least 6 statements");
        let tag_ip = n - 2;
        let mut rng = Rng::new(0x6a7e_4f05_e000_0000 ^ n as u64);
        let mut cases = Vec::with_capacity(3 * PER_MIX);
        let user = |rng: &mut Rng| format!("u-{}", rng.below(1000));
        // An address in statement i's /10 block, never in the quarantined 10.250.0.0/16.
        let ip_in = |rng: &mut Rng, i: usize| {
            let mut second = (i % 4) * 64 + rng.below(64);
            if second == 250 {
                second = 251;
            }
            format!("10.{second}.{}.{}", rng.below(256), 1 + rng.below(254))
        };
        let quarantined =
            |rng: &mut Rng| format!("10.250.{}.{}", rng.below(256), 1 + rng.below(254));
        for k in 0..PER_MIX {
            // Allow hits: tag+IP statements and the tag-variable resource.
            if k % 2 == 0 {
                let i = rng.below(tag_ip);
                let (action, team, _) = statement(i);
                cases.push(Case {
                    user: user(&mut rng),
                    action,
                    dataset: false,
                    resource_id: format!("m-{i}"),
                    team,
                    source_ip: ip_in(&mut rng, i),
                    mix: Mix::Allow,
                    flavour: "tag+ip",
                });
            } else {
                let team = format!("team-{}", rng.below(TEAMS));
                let block = rng.below(4);
                cases.push(Case {
                    user: user(&mut rng),
                    action: "PutDataset",
                    dataset: true,
                    resource_id: team.clone(),
                    team,
                    source_ip: ip_in(&mut rng, block),
                    mix: Mix::Allow,
                    flavour: "tag-variable",
                });
            }
            // Explicit denies: requests that an Allow statement covers, from the quarantine.
            if k % 2 == 0 {
                // Statements in the 10.192.0.0/10 block (i % 4 == 3) would allow this address.
                let i = 4 * rng.below(tag_ip / 4) + 3;
                let (action, team, _) = statement(i);
                cases.push(Case {
                    user: user(&mut rng),
                    action,
                    dataset: false,
                    resource_id: format!("m-{i}"),
                    team,
                    source_ip: quarantined(&mut rng),
                    mix: Mix::ExplicitDeny,
                    flavour: "tag+ip",
                });
            } else {
                let team = format!("team-{}", rng.below(TEAMS));
                cases.push(Case {
                    user: user(&mut rng),
                    action: "PutDataset",
                    dataset: true,
                    resource_id: team.clone(),
                    team,
                    source_ip: quarantined(&mut rng),
                    mix: Mix::ExplicitDeny,
                    flavour: "tag-variable",
                });
            }
            // Implicit denies: each flavour fails in its own way.
            let case = match k % 4 {
                0 => {
                    // Wrong team tag.
                    let i = rng.below(tag_ip);
                    let (action, _, _) = statement(i);
                    Case {
                        user: user(&mut rng),
                        action,
                        dataset: false,
                        resource_id: format!("m-{i}"),
                        team: format!("team-{}", (i + 1 + rng.below(TEAMS - 1)) % TEAMS),
                        source_ip: ip_in(&mut rng, i),
                        mix: Mix::ImplicitDeny,
                        flavour: "tag",
                    }
                }
                1 => {
                    // Address outside the statement's block.
                    let i = rng.below(tag_ip);
                    let (action, team, _) = statement(i);
                    let other_block = i + 1 + rng.below(3);
                    Case {
                        user: user(&mut rng),
                        action,
                        dataset: false,
                        resource_id: format!("m-{i}"),
                        team,
                        source_ip: ip_in(&mut rng, other_block),
                        mix: Mix::ImplicitDeny,
                        flavour: "ip",
                    }
                }
                2 => {
                    // Another team's dataset.
                    let mine = rng.below(TEAMS);
                    let theirs = (mine + 1 + rng.below(TEAMS - 1)) % TEAMS;
                    let block = rng.below(4);
                    Case {
                        user: user(&mut rng),
                        action: "PutDataset",
                        dataset: true,
                        resource_id: format!("team-{theirs}"),
                        team: format!("team-{mine}"),
                        source_ip: ip_in(&mut rng, block),
                        mix: Mix::ImplicitDeny,
                        flavour: "tag-variable",
                    }
                }
                _ => {
                    // A model no statement names.
                    let i = rng.below(tag_ip);
                    let (action, team, _) = statement(i);
                    Case {
                        user: user(&mut rng),
                        action,
                        dataset: false,
                        resource_id: format!("m-{}", tag_ip + i),
                        team,
                        source_ip: ip_in(&mut rng, i),
                        mix: Mix::ImplicitDeny,
                        flavour: "no-statement",
                    }
                }
            };
            cases.push(case);
        }
        Scenario { n, cases }
    }

    /// The requests of one mix, in generation order.
    pub fn mix(&self, mix: Mix) -> Vec<&Case> {
        self.cases.iter().filter(|c| c.mix == mix).collect()
    }

    /// Gatehouse: IAM JSON policies of at most 10 statements each (like managed policies).
    pub fn iam_policies(&self) -> Vec<(String, String)> {
        let mut statements = Vec::with_capacity(self.n);
        for i in 0..self.n - 2 {
            let (action, team, cidr) = statement(i);
            statements.push(format!(
                r#"{{"Sid":"S{i}","Effect":"Allow","Action":"ai:{action}","Resource":"{MODEL_PREFIX}m-{i}","Condition":{{"StringEquals":{{"aws:PrincipalTag/team":"{team}"}},"IpAddress":{{"aws:SourceIp":"{cidr}"}}}}}}"#
            ));
        }
        statements.push(format!(
            r#"{{"Sid":"OwnDataset","Effect":"Allow","Action":"ai:PutDataset","Resource":"{DATASET_PREFIX}${{aws:PrincipalTag/team}}"}}"#
        ));
        statements.push(
            r#"{"Sid":"Quarantine","Effect":"Deny","Action":"ai:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.250.0.0/16"}}}"#
                .to_owned(),
        );
        statements
            .chunks(10)
            .enumerate()
            .map(|(p, chunk)| {
                (
                    format!("policy-{p}"),
                    format!(
                        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
                        chunk.join(",")
                    ),
                )
            })
            .collect()
    }

    /// Cedar: one `permit` per Allow statement, one `forbid`.
    pub fn cedar_policies(&self) -> String {
        let mut s = String::new();
        for i in 0..self.n - 2 {
            let (action, team, cidr) = statement(i);
            writeln!(
                s,
                r#"permit(principal, action == Action::"{action}", resource == Model::"m-{i}") when {{ context.tags.team == "{team}" && context.source_ip.isInRange(ip("{cidr}")) }};"#
            )
            .unwrap();
        }
        s.push_str(
            "permit(principal, action == Action::\"PutDataset\", resource is Dataset) when { resource.name == context.tags.team };\n",
        );
        s.push_str(
            "forbid(principal, action, resource) when { context.source_ip.isInRange(ip(\"10.250.0.0/16\")) };\n",
        );
        s
    }

    /// Rego: the statements as one data document, keyed by action and exact resource (the
    /// layout OPA's performance guide recommends), and the rules that read it.
    pub fn rego_data(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let mut allow: Map<String, Value> = Map::new();
        for i in 0..self.n - 2 {
            let (action, team, cidr) = statement(i);
            let by_resource = allow
                .entry(format!("ai:{action}"))
                .or_insert_with(|| Value::Object(Map::new()));
            let list = by_resource
                .as_object_mut()
                .unwrap()
                .entry(format!("{MODEL_PREFIX}m-{i}"))
                .or_insert_with(|| Value::Array(Vec::new()));
            list.as_array_mut()
                .unwrap()
                .push(json!({"sid": format!("S{i}"), "team": team, "cidr": cidr}));
        }
        json!({
            "iam": {
                "allow": allow,
                "tag_resource": [
                    {"sid": "OwnDataset", "action": "ai:PutDataset", "prefix": DATASET_PREFIX}
                ],
                "deny": [
                    {"sid": "Quarantine", "action_prefix": "ai:", "cidr": "10.250.0.0/16"}
                ]
            }
        })
    }
}

/// The Rego rules over `data.iam` (see [`Scenario::rego_data`]).
pub const REGO_POLICY: &str = r#"package gatehouse.authz

import rego.v1

team := input.context["aws:PrincipalTag/team"]

source_ip := input.context["aws:SourceIp"]

explicit_deny if {
	some d in data.iam.deny
	startswith(input.action, d.action_prefix)
	net.cidr_contains(d.cidr, source_ip)
}

allow if {
	some s in data.iam.allow[input.action][input.resource]
	s.team == team
	net.cidr_contains(s.cidr, source_ip)
}

allow if {
	some t in data.iam.tag_resource
	t.action == input.action
	input.resource == concat("", [t.prefix, team])
}

default decision := "ImplicitDeny"

decision := "ExplicitDeny" if explicit_deny

decision := "Allow" if {
	not explicit_deny
	allow
}
"#;

/// An engine under comparison: requests are converted ahead of time, then decided.
pub trait Engine {
    type Input;
    fn name(&self) -> &'static str;
    fn prepare(&self, case: &Case) -> Self::Input;
    fn decide(&mut self, input: &Self::Input) -> Kind;
}

/// Gatehouse.
pub struct Gatehouse {
    pub set: gatehouse_policy::PolicySet,
}

impl Gatehouse {
    pub fn new(s: &Scenario) -> Gatehouse {
        let policies = s.iam_policies().into_iter().map(|(name, text)| {
            let doc = gatehouse_policy::PolicyDocument::parse(&text)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            gatehouse_policy::NamedPolicy::new(name, doc)
        });
        let set =
            gatehouse_policy::PolicySet::new(gatehouse_policy::PolicyType::Identity, policies)
                .expect("compile");
        assert_eq!(set.len(), s.n);
        Gatehouse { set }
    }
}

impl Engine for Gatehouse {
    type Input = gatehouse_policy::Request;

    fn name(&self) -> &'static str {
        "gatehouse"
    }

    fn prepare(&self, c: &Case) -> gatehouse_policy::Request {
        gatehouse_policy::Request::new(
            c.principal_arn(),
            format!("ai:{}", c.action),
            c.resource_arn(),
        )
        .with("aws:PrincipalTag/team", c.team.as_str())
        .with("aws:SourceIp", c.source_ip.as_str())
    }

    fn decide(&mut self, r: &gatehouse_policy::Request) -> Kind {
        match gatehouse_policy::Evaluation::identity(&self.set)
            .decide(r)
            .decision
        {
            gatehouse_policy::DecisionKind::Allow => Kind::Allow,
            gatehouse_policy::DecisionKind::ExplicitDeny => Kind::ExplicitDeny,
            gatehouse_policy::DecisionKind::ImplicitDeny => Kind::ImplicitDeny,
        }
    }
}

/// cedar-policy.
pub struct Cedar {
    pub policies: cedar_policy::PolicySet,
    pub authorizer: cedar_policy::Authorizer,
}

impl Cedar {
    pub fn new(s: &Scenario) -> Cedar {
        let policies = cedar_policy::PolicySet::from_str(&s.cedar_policies()).expect("cedar parse");
        assert_eq!(policies.policies().count(), s.n);
        Cedar {
            policies,
            authorizer: cedar_policy::Authorizer::new(),
        }
    }

    /// Decides and fails on any evaluation error (an error would skip a policy silently).
    pub fn decide_checked(&self, input: &(cedar_policy::Request, cedar_policy::Entities)) -> Kind {
        let response = self
            .authorizer
            .is_authorized(&input.0, &self.policies, &input.1);
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        assert!(errors.is_empty(), "cedar errors: {errors:?}");
        cedar_kind(&response)
    }
}

fn cedar_kind(response: &cedar_policy::Response) -> Kind {
    match response.decision() {
        cedar_policy::Decision::Allow => Kind::Allow,
        // A Deny with a reason is a satisfied `forbid`; without one, nothing permitted.
        cedar_policy::Decision::Deny if response.diagnostics().reason().next().is_some() => {
            Kind::ExplicitDeny
        }
        cedar_policy::Decision::Deny => Kind::ImplicitDeny,
    }
}

impl Engine for Cedar {
    type Input = (cedar_policy::Request, cedar_policy::Entities);

    fn name(&self) -> &'static str {
        "cedar"
    }

    fn prepare(&self, c: &Case) -> Self::Input {
        use cedar_policy::{Context, Entities, EntityUid, Request};
        use serde_json::json;
        let principal = EntityUid::from_str(&format!(r#"User::"{}""#, c.user)).unwrap();
        let action = EntityUid::from_str(&format!(r#"Action::"{}""#, c.action)).unwrap();
        let kind = if c.dataset { "Dataset" } else { "Model" };
        let resource = EntityUid::from_str(&format!(r#"{kind}::"{}""#, c.resource_id)).unwrap();
        let context = Context::from_json_value(
            json!({
                "tags": {"team": c.team},
                "source_ip": {"__extn": {"fn": "ip", "arg": c.source_ip}},
            }),
            None,
        )
        .unwrap();
        let entities = if c.dataset {
            Entities::from_json_value(
                json!([{
                    "uid": {"type": "Dataset", "id": c.resource_id},
                    "attrs": {"name": c.resource_id},
                    "parents": []
                }]),
                None,
            )
            .unwrap()
        } else {
            Entities::empty()
        };
        let request = Request::new(principal, action, resource, context, None).unwrap();
        (request, entities)
    }

    fn decide(&mut self, input: &Self::Input) -> Kind {
        cedar_kind(
            &self
                .authorizer
                .is_authorized(&input.0, &self.policies, &input.1),
        )
    }
}

/// regorus (Rego interpreter).
pub struct Rego {
    pub engine: regorus::Engine,
}

impl Rego {
    pub fn new(s: &Scenario) -> Rego {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("gatehouse.rego".into(), REGO_POLICY.into())
            .expect("rego parse");
        let data = regorus::Value::from_json_str(&s.rego_data().to_string()).expect("rego data");
        engine.add_data(data).expect("rego data");
        Rego { engine }
    }
}

impl Engine for Rego {
    type Input = regorus::Value;

    fn name(&self) -> &'static str {
        "regorus"
    }

    fn prepare(&self, c: &Case) -> regorus::Value {
        let input = serde_json::json!({
            "principal": c.principal_arn(),
            "action": format!("ai:{}", c.action),
            "resource": c.resource_arn(),
            "context": {
                "aws:PrincipalTag/team": c.team,
                "aws:SourceIp": c.source_ip,
            }
        });
        regorus::Value::from_json_str(&input.to_string()).unwrap()
    }

    fn decide(&mut self, input: &regorus::Value) -> Kind {
        self.engine.set_input(input.clone());
        let v = self
            .engine
            .eval_rule("data.gatehouse.authz.decision".to_owned())
            .expect("rego eval");
        match v.as_string().map(|s| s.as_ref()) {
            Ok("Allow") => Kind::Allow,
            Ok("ExplicitDeny") => Kind::ExplicitDeny,
            Ok("ImplicitDeny") => Kind::ImplicitDeny,
            other => panic!("unexpected rego decision {other:?}"),
        }
    }
}

/// All three engines for one scenario, with every request prepared for each.
pub struct Engines {
    pub scenario: Scenario,
    pub gatehouse: Gatehouse,
    pub cedar: Cedar,
    pub rego: Rego,
    pub gatehouse_inputs: Vec<gatehouse_policy::Request>,
    pub cedar_inputs: Vec<(cedar_policy::Request, cedar_policy::Entities)>,
    pub rego_inputs: Vec<regorus::Value>,
}

impl Engines {
    pub fn new(n: usize) -> Engines {
        let scenario = Scenario::new(n);
        let gatehouse = Gatehouse::new(&scenario);
        let cedar = Cedar::new(&scenario);
        let rego = Rego::new(&scenario);
        let gatehouse_inputs = scenario
            .cases
            .iter()
            .map(|c| gatehouse.prepare(c))
            .collect();
        let cedar_inputs = scenario.cases.iter().map(|c| cedar.prepare(c)).collect();
        let rego_inputs = scenario.cases.iter().map(|c| rego.prepare(c)).collect();
        Engines {
            scenario,
            gatehouse,
            cedar,
            rego,
            gatehouse_inputs,
            cedar_inputs,
            rego_inputs,
        }
    }

    /// Decides every request with every engine (Gatehouse both through its index and by a
    /// linear scan) and panics on the first disagreement with the expected decision.
    /// Returns the number of requests checked per mix.
    pub fn assert_agreement(&mut self) -> [usize; 3] {
        let mut counts = [0usize; 3];
        for (idx, case) in self.scenario.cases.iter().enumerate() {
            let expected = case.mix.expected();
            let g = self.gatehouse.decide(&self.gatehouse_inputs[idx]);
            let linear = gatehouse_policy::Evaluation::identity(&self.gatehouse.set)
                .decide_linear(&self.gatehouse_inputs[idx])
                .decision;
            let c = self.cedar.decide_checked(&self.cedar_inputs[idx]);
            let r = self.rego.decide(&self.rego_inputs[idx]);
            assert!(
                g == expected && c == expected && r == expected,
                "N={}: request #{idx} ({} / {}) {case:?}: expected {expected:?}, gatehouse {g:?} (linear {linear:?}), cedar {c:?}, regorus {r:?}",
                self.scenario.n,
                case.mix.name(),
                case.flavour,
            );
            assert_eq!(
                format!("{linear:?}"),
                format!("{g:?}"),
                "N={}: request #{idx}: indexed and linear Gatehouse disagree",
                self.scenario.n
            );
            counts[Mix::ALL.iter().position(|m| *m == case.mix).unwrap()] += 1;
        }
        counts
    }

    /// Indexes of the requests of one mix.
    pub fn indexes(&self, mix: Mix) -> Vec<usize> {
        self.scenario
            .cases
            .iter()
            .enumerate()
            .filter(|(_, c)| c.mix == mix)
            .map(|(i, _)| i)
            .collect()
    }
}
