//! The review by person across clouds (`tests/fixtures/by-person`, in AWS's, Azure's and
//! GCP's export shapes): the same person found through an IAM user named by email and a GCP
//! `user:` member; people behind an IAM Identity Center role and an Azure group only through
//! the groups file; near misses (a Reader assignment, `roles/viewer`, a policy that lists
//! models but invokes none) giving nobody anything; service identities listed as unmatched.
//! IAM Identity Center's own files (`identity-center/`, as the AWS CLI prints them) name the
//! people behind its role without the groups file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_analyzer::review::identity_center::IdentityCenter;
use gatehouse_analyzer::review::people::{ByPerson, Directory, by_person};
use std::path::Path;

fn fixture(name: &str) -> (String, Vec<u8>) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/by-person")
        .join(name);
    (name.to_owned(), std::fs::read(p).unwrap())
}

fn run(groups: bool) -> ByPerson {
    let dir = if groups {
        let (name, bytes) = fixture("groups.json");
        Directory::parse(&name, &bytes).unwrap()
    } else {
        Directory::default()
    };
    run_with(&dir)
}

fn run_with(dir: &Directory) -> ByPerson {
    let (name, bytes) = fixture("aws-authorization-details.json");
    let aws = gatehouse_analyzer::review::review(&name, &bytes).unwrap();
    let others: Vec<_> = ["azure-role-assignments.json", "gcp-project-iam-policy.json"]
        .into_iter()
        .map(|f| {
            let (name, bytes) = fixture(f);
            gatehouse_analyzer::import::import(&name, &bytes).0
        })
        .collect();
    by_person(&[("aws", &aws)], &others.iter().collect::<Vec<_>>(), dir)
}

/// Each person's grants as (cloud, access, via) triples.
fn of(r: &ByPerson, person: &str) -> Vec<(String, String, String)> {
    r.people
        .iter()
        .find(|p| p.person == person)
        .map(|p| {
            p.grants
                .iter()
                .map(|g| (g.cloud.to_owned(), g.access.to_owned(), g.via.join(" → ")))
                .collect()
        })
        .unwrap_or_default()
}

fn t(cloud: &str, access: &str, via: &str) -> (String, String, String) {
    (cloud.into(), access.into(), via.into())
}

#[test]
fn people_are_joined_across_clouds_by_email_and_groups() {
    let r = run(true);
    let people: Vec<&str> = r.people.iter().map(|p| p.person.as_str()).collect();
    assert_eq!(
        people,
        [
            "alice@example.com",
            "bob@example.com",
            "carol@example.com",
            "dave@example.com"
        ],
        "{r:#?}"
    );
    assert_eq!(
        of(&r, "alice@example.com"),
        [t("aws", "invoke", ""), t("gcp", "invoke", "")]
    );
    assert_eq!(of(&r, "bob@example.com"), [t("azure", "invoke", "")]);
    assert_eq!(
        of(&r, "carol@example.com"),
        [t("azure", "invoke", "ml team")]
    );
    assert_eq!(
        of(&r, "dave@example.com"),
        [
            t("aws", "invoke", "ml@example.com"),
            t("azure", "invoke", "ml team → ml@example.com"),
            t("gcp", "invoke", "ml@example.com"),
        ]
    );
    let alice_aws = &r.people[0].grants[0];
    assert_eq!(
        alice_aws.models,
        "arn:aws:bedrock:us-east-1::foundation-model/*"
    );
    assert!(alice_aws.through.contains("invoke"), "{alice_aws:?}");
    let unmatched: Vec<(&str, &str)> = r
        .unmatched
        .iter()
        .map(|g| (g.cloud, g.identity.as_str()))
        .collect();
    assert_eq!(
        unmatched,
        [
            ("aws", "arn:aws:iam::111122223333:user/ci-bot"),
            ("azure", "chat-app"),
            (
                "gcp",
                "serviceAccount:batch@ai-prod.iam.gserviceaccount.com"
            ),
        ]
    );
    let md = r.markdown();
    assert!(md.contains("## dave@example.com"), "{md}");
    let html = r.html();
    assert!(
        html.contains("<td>dave@example.com</td>") && !html.contains("## "),
        "{html}"
    );
}

#[test]
fn without_the_groups_file_group_and_role_holders_are_unmatched() {
    let r = run(false);
    let people: Vec<&str> = r.people.iter().map(|p| p.person.as_str()).collect();
    assert_eq!(people, ["alice@example.com", "bob@example.com"]);
    let unmatched: Vec<&str> = r.unmatched.iter().map(|g| g.identity.as_str()).collect();
    assert!(unmatched.contains(&"ML Team"), "{unmatched:?}");
    assert!(unmatched.contains(&"group:ml@example.com"), "{unmatched:?}");
    assert!(
        unmatched
            .iter()
            .any(|i| i.ends_with("AWSReservedSSO_Invoke_0a1b2c3d4e5f6a7b")),
        "{unmatched:?}"
    );
}

#[test]
fn identity_center_names_the_people_behind_its_roles() {
    let mut ic = IdentityCenter::default();
    let folder =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/by-person/identity-center");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in &files {
        let name = f.display().to_string();
        assert!(
            ic.read(&name, &std::fs::read(f).unwrap()).unwrap(),
            "{name}"
        );
    }
    let mut dir = Directory::default();
    ic.add_to(&mut dir);
    let r = run_with(&dir);
    let people: Vec<&str> = r.people.iter().map(|p| p.person.as_str()).collect();
    // Frank is assigned the Invoke permission set himself, Grace through the ML Engineers
    // group; Henry holds ReadOnly here and Invoke only in an account outside the run.
    assert_eq!(
        people,
        [
            "alice@example.com",
            "bob@example.com",
            "frank@example.com",
            "grace@example.com"
        ],
        "{r:#?}"
    );
    assert_eq!(of(&r, "frank@example.com"), [t("aws", "invoke", "")]);
    assert_eq!(
        of(&r, "grace@example.com"),
        [t("aws", "invoke", "ml engineers")]
    );
    let sso = &r.people[2].grants[0].identity;
    assert!(
        sso.ends_with("AWSReservedSSO_Invoke_0a1b2c3d4e5f6a7b"),
        "{sso}"
    );
    assert!(
        !r.unmatched.iter().any(|g| g.identity == *sso),
        "{:?}",
        r.unmatched
    );
}
