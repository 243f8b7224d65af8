//! `policy diff` of resource-based and trust policies on AWS's documented principal
//! semantics: each case cites the rule it checks, and names requests the diff must call
//! newly allowed, no longer allowed, or unchanged. Every expectation is also checked against
//! the engine, so a case cannot pass on the diff alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_analyzer::diff::{DiffError, diff, diff_documents};
use gatehouse_policy::{NamedPolicy, PolicyDocument, PolicySet, PolicyType, Request};

const PRINCIPAL_DOC: &str =
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html";
const NOT_PRINCIPAL_DOC: &str = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html";
const KEYS_DOC: &str =
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html";

const ROLE: &str = "arn:aws:iam::111122223333:role/target";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Newly,
    NoLonger,
    Same,
}
use Expect::{Newly, NoLonger, Same};

/// (caller, action, context, expectation)
type Probe = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    Expect,
);

struct Case {
    rule: &'static str,
    source: &'static str,
    old: &'static str,
    new: &'static str,
    requests: &'static [Probe],
    /// Text the answer must contain.
    says: &'static [&'static str],
}

fn doc(statements: &str) -> PolicyDocument {
    PolicyDocument::parse(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#
    ))
    .unwrap()
}

/// A user of the account and one of another account, both decided alike by OLD and NEW.
const BOB_HERE_AND_THERE_UNCHANGED: &[Probe] = &[
    (
        "arn:aws:iam::111122223333:user/bob",
        "sts:AssumeRole",
        &[],
        Same,
    ),
    (
        "arn:aws:iam::444455556666:user/bob",
        "sts:AssumeRole",
        &[],
        Same,
    ),
];

const CASES: &[Case] = &[
    Case {
        rule: "An account principal (arn:aws:iam::ACCOUNT:root) stands for the account: every \
               principal in it, not only the root user; widening a role to its account newly \
               allows the account's other users and sessions",
        source: PRINCIPAL_DOC,
        old: r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/deployer"},"Action":"sts:AssumeRole"}"#,
        new: r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}"#,
        requests: &[
            (
                "arn:aws:iam::111122223333:user/bob",
                "sts:AssumeRole",
                &[],
                Newly,
            ),
            (
                "arn:aws:sts::111122223333:assumed-role/other/s",
                "sts:AssumeRole",
                &[],
                Newly,
            ),
            (
                "arn:aws:iam::111122223333:root",
                "sts:AssumeRole",
                &[],
                Newly,
            ),
            (
                "arn:aws:sts::111122223333:assumed-role/deployer/s",
                "sts:AssumeRole",
                &[],
                Same,
            ),
            (
                "arn:aws:iam::444455556666:user/bob",
                "sts:AssumeRole",
                &[],
                Same,
            ),
        ],
        says: &["newly allows sts:AssumeRole for principal AWS:arn:aws:iam::111122223333:root"],
    },
    Case {
        rule: "An account may be named by its 12-digit id or by arn:aws:iam::ID:root: the two \
               are the same principal",
        source: PRINCIPAL_DOC,
        old: r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}"#,
        new: r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}"#,
        requests: BOB_HERE_AND_THERE_UNCHANGED,
        says: &["no difference in what is allowed"],
    },
    Case {
        rule: "\"Principal\": \"*\" and \"Principal\": {\"AWS\": \"*\"} are equivalent: everyone, \
               including anonymous callers",
        source: PRINCIPAL_DOC,
        old: r#"{"Effect":"Allow","Principal":"*","Action":"ai:InvokeModel","Resource":"*"}"#,
        new: r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ai:InvokeModel","Resource":"*"}"#,
        requests: &[
            (
                "arn:aws:iam::444455556666:user/bob",
                "ai:InvokeModel",
                &[],
                Same,
            ),
            ("ai.gatehouse.internal", "ai:InvokeModel", &[], Same),
        ],
        says: &["no difference in what is allowed"],
    },
    Case {
        rule: "Changing a trust policy's account to \"*\" allows everyone to assume the role \
               (AWS: \"Do not leave your role accessible to everyone!\")",
        source: PRINCIPAL_DOC,
        old: r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}"#,
        new: r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}"#,
        requests: &[
            (
                "arn:aws:iam::444455556666:user/bob",
                "sts:AssumeRole",
                &[],
                Newly,
            ),
            (
                "arn:aws:iam::210987654321:root",
                "sts:AssumeRole",
                &[],
                Newly,
            ),
            (
                "arn:aws:iam::111122223333:user/bob",
                "sts:AssumeRole",
                &[],
                Same,
            ),
            (
                "arn:aws:iam::444455556666:user/bob",
                "sts:TagSession",
                &[],
                Same,
            ),
        ],
        says: &[
            "newly allows sts:AssumeRole for principal AWS:* except AWS:arn:aws:iam::111122223333:root",
        ],
    },
    Case {
        rule: "A role principal matches the role's sessions; a role session principal is that \
               session only",
        source: PRINCIPAL_DOC,
        old: r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::444455556666:assumed-role/ci/build"},"Action":"ai:InvokeModel","Resource":"*"}"#,
        new: r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:role/ci"},"Action":"ai:InvokeModel","Resource":"*"}"#,
        requests: &[
            (
                "arn:aws:sts::444455556666:assumed-role/ci/other",
                "ai:InvokeModel",
                &[],
                Newly,
            ),
            (
                "arn:aws:sts::444455556666:assumed-role/ci/build",
                "ai:InvokeModel",
                &[],
                Same,
            ),
            (
                "arn:aws:iam::444455556666:user/alice",
                "ai:InvokeModel",
                &[],
                Same,
            ),
        ],
        says: &["for principal AWS:arn:aws:iam::444455556666:role/ci"],
    },
    Case {
        rule: "Service and Federated principals are matched by name: adding an OIDC provider \
               newly allows web identities from it, the service keeps its access",
        source: PRINCIPAL_DOC,
        old: r#"{"Effect":"Allow","Principal":{"Service":"ai.gatehouse.internal"},"Action":"sts:AssumeRole"}"#,
        new: r#"{"Effect":"Allow","Principal":{"Service":"ai.gatehouse.internal"},"Action":"sts:AssumeRole"},
                {"Effect":"Allow","Principal":{"Federated":"token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity",
                 "Condition":{"StringLike":{"token.actions.githubusercontent.com:sub":"repo:acme/*"}}}"#,
        requests: &[
            (
                "token.actions.githubusercontent.com",
                "sts:AssumeRoleWithWebIdentity",
                &[(
                    "token.actions.githubusercontent.com:sub",
                    "repo:acme/app:ref:refs/heads/main",
                )],
                Newly,
            ),
            (
                "token.actions.githubusercontent.com",
                "sts:AssumeRoleWithWebIdentity",
                &[(
                    "token.actions.githubusercontent.com:sub",
                    "repo:evil/app:ref:refs/heads/main",
                )],
                Same,
            ),
            (
                "accounts.google.com",
                "sts:AssumeRoleWithWebIdentity",
                &[],
                Same,
            ),
            ("ai.gatehouse.internal", "sts:AssumeRole", &[], Same),
        ],
        says: &[
            "newly allows sts:AssumeRoleWithWebIdentity for principal Federated:token.actions.githubusercontent.com",
            "token.actions.githubusercontent.com:sub matches repo:acme/*",
        ],
    },
    Case {
        rule: "Dropping the sub condition of a GitHub OIDC trust newly allows every repository",
        source: PRINCIPAL_DOC,
        old: r#"{"Effect":"Allow","Principal":{"Federated":"token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity",
                 "Condition":{"StringLike":{"token.actions.githubusercontent.com:sub":"repo:acme/*"}}}"#,
        new: r#"{"Effect":"Allow","Principal":{"Federated":"token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity"}"#,
        requests: &[
            (
                "token.actions.githubusercontent.com",
                "sts:AssumeRoleWithWebIdentity",
                &[(
                    "token.actions.githubusercontent.com:sub",
                    "repo:evil/app:ref:refs/heads/main",
                )],
                Newly,
            ),
            (
                "token.actions.githubusercontent.com",
                "sts:AssumeRoleWithWebIdentity",
                &[],
                Newly,
            ),
            (
                "token.actions.githubusercontent.com",
                "sts:AssumeRoleWithWebIdentity",
                &[(
                    "token.actions.githubusercontent.com:sub",
                    "repo:acme/app:ref:refs/heads/main",
                )],
                Same,
            ),
        ],
        says: &[
            "token.actions.githubusercontent.com:sub does not match repo:acme/* (or is absent)",
        ],
    },
    Case {
        rule: "NotPrincipal with Deny denies everyone except the principals it names; naming a \
               user together with its account exempts that user, not the account's others",
        source: NOT_PRINCIPAL_DOC,
        old: r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ai:InvokeModel","Resource":"*"}"#,
        new: r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ai:InvokeModel","Resource":"*"},
                {"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/bob","arn:aws:iam::111122223333:root"]},"Action":"*","Resource":"*"}"#,
        requests: &[
            (
                "arn:aws:iam::111122223333:user/bob",
                "ai:InvokeModel",
                &[],
                Same,
            ),
            (
                "arn:aws:iam::111122223333:user/carol",
                "ai:InvokeModel",
                &[],
                NoLonger,
            ),
            (
                "arn:aws:iam::444455556666:user/bob",
                "ai:InvokeModel",
                &[],
                NoLonger,
            ),
        ],
        says: &["no longer allows ai:InvokeModel"],
    },
    Case {
        rule: "NotPrincipal identifies an assumed-role user by its session: naming the session, \
               its role and its account exempts that session, not the role's other sessions",
        source: NOT_PRINCIPAL_DOC,
        old: r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ai:InvokeModel","Resource":"*"}"#,
        new: r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ai:InvokeModel","Resource":"*"},
                {"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:sts::444455556666:assumed-role/ci/build","arn:aws:iam::444455556666:role/ci","arn:aws:iam::444455556666:root"]},"Action":"*","Resource":"*"}"#,
        requests: &[
            (
                "arn:aws:sts::444455556666:assumed-role/ci/build",
                "ai:InvokeModel",
                &[],
                Same,
            ),
            (
                "arn:aws:sts::444455556666:assumed-role/ci/other",
                "ai:InvokeModel",
                &[],
                NoLonger,
            ),
            (
                "arn:aws:iam::444455556666:user/alice",
                "ai:InvokeModel",
                &[],
                NoLonger,
            ),
        ],
        says: &["no longer allows ai:InvokeModel"],
    },
    Case {
        rule: "aws:PrincipalAccount is the account of the principal making the request: `*` \
               limited to one account by that key is the account principal",
        source: KEYS_DOC,
        old: r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalAccount":"111122223333"}}}"#,
        new: r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}"#,
        requests: BOB_HERE_AND_THERE_UNCHANGED,
        says: &["no difference in what is allowed"],
    },
];

fn grants(doc: &PolicyDocument, req: &Request) -> bool {
    PolicySet::new(PolicyType::Resource, [NamedPolicy::new("p", doc.clone())])
        .unwrap()
        .allows(req)
}

#[test]
fn documented_principal_semantics() {
    for case in CASES {
        let old = doc(case.old);
        let new = doc(case.new);
        let d = diff_documents(&old, &new).unwrap();
        let text = d.text();
        let label = format!("{} ({})\n{text}", case.rule, case.source);
        for (caller, action, context, expect) in case.requests {
            let mut req = Request::new(*caller, *action, ROLE);
            for (k, v) in *context {
                req = req.with(*k, *v);
            }
            let engine = match (grants(&old, &req), grants(&new, &req)) {
                (false, true) => Newly,
                (true, false) => NoLonger,
                _ => Same,
            };
            assert_eq!(
                engine, *expect,
                "the engine disagrees with the case on {req:?}: {label}"
            );
            assert_eq!(d.newly_allows(&req), *expect == Newly, "{req:?}: {label}");
            assert_eq!(
                d.no_longer_allows(&req),
                *expect == NoLonger,
                "{req:?}: {label}"
            );
        }
        for s in case.says {
            assert!(text.contains(s), "missing `{s}`: {label}");
        }
        assert_eq!(
            d.grants_new_access(),
            case.requests.iter().any(|r| r.3 == Newly),
            "{label}"
        );
    }
}

#[test]
fn mixed_kinds_are_refused_with_the_place() {
    let identity = NamedPolicy::new(
        "old.json",
        doc(r#"{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}"#),
    );
    let trust = NamedPolicy::new(
        "new.json",
        doc(r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}"#),
    );
    let e = diff(
        std::slice::from_ref(&identity),
        std::slice::from_ref(&trust),
    )
    .unwrap_err();
    let DiffError::Kind { policy, path, .. } = &e else {
        panic!("{e}");
    };
    assert_eq!(policy, "new.json");
    assert_eq!(path, "$.Statement[0].Principal");
    assert!(
        e.to_string()
            .starts_with("new.json: $.Statement[0].Principal: "),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("old.json is an identity-based policy"),
        "{e}"
    );

    // One document mixing the two is refused at the statement that breaks the pattern.
    let mixed = NamedPolicy::new(
        "mixed.json",
        doc(
            r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"},
               {"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}"#,
        ),
    );
    let e = diff(std::slice::from_ref(&trust), std::slice::from_ref(&mixed)).unwrap_err();
    assert!(
        e.to_string().starts_with("mixed.json: $.Statement[1]: "),
        "{e}"
    );
}
