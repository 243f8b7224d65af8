//! AWS Organizations input (`tests/fixtures/organizations`: three accounts' authorization
//! details and the `aws organizations` outputs over them). Each planted risk is found and
//! each near miss stays quiet only because of the organization: the same exports scanned
//! without it answer differently, so the SCPs and the account tree are what decide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_analyzer::org::{self, OrgError};
use gatehouse_analyzer::{Finding, NoProgress, Settings, scan_paths};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/organizations")
}

fn scan(organization: Option<org::Organization>) -> Vec<Finding> {
    let settings = Settings {
        organization,
        ..Settings::default()
    };
    scan_paths(&[fixture().join("accounts")], &settings, &NoProgress)
        .unwrap()
        .findings
}

/// (rule, account file, entity) of every finding of these rules.
fn hits(findings: &[Finding], rules: &[&str]) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = findings
        .iter()
        .filter(|f| rules.contains(&f.rule))
        .map(|f| {
            let file = Path::new(&f.location.file)
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let entity = f.location.entity.clone().unwrap_or_default();
            (f.rule.to_owned(), file, entity)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn hit(rule: &str, account: &str, entity: &str) -> (String, String, String) {
    (rule.into(), account.into(), entity.into())
}

#[test]
fn the_tree_and_its_scps_are_read() {
    let o = org::load(&fixture().join("organizations")).unwrap();
    assert_eq!(o.id, "o-a1b2c3d4e5");
    assert_eq!(o.management_account, "111111111111");
    assert_eq!(o.accounts.len(), 3);
    assert!(o.contains("333333333333") && !o.contains("444455556666"));
    // root, OU and account levels carry FullAWSAccess; the sandbox OU its allow-list.
    assert_eq!(o.guardrails("222222222222").len(), 3);
    assert_eq!(o.guardrails("333333333333").len(), 3);
    // SCPs never bound the management account, nor an account outside the organization.
    assert!(o.guardrails("111111111111").is_empty());
    assert!(o.guardrails("444455556666").is_empty());
}

#[test]
fn scps_bound_member_accounts_only() {
    let organization = org::load(&fixture().join("organizations")).unwrap();
    let with = hits(&scan(Some(organization)), &["GH-PE-001"]);
    // The sandbox OU's allow-list leaves IAM out: its maintainer's rewrite right is the
    // near miss. The management account is never bound; prod only by FullAWSAccess.
    assert_eq!(
        with,
        vec![
            hit("GH-PE-001", "111111111111", "user org-maintainer"),
            hit("GH-PE-001", "222222222222", "user maintainer"),
        ]
    );
    let without = hits(&scan(None), &["GH-PE-001"]);
    assert!(without.contains(&hit("GH-PE-001", "333333333333", "user maintainer")));
}

#[test]
fn external_means_outside_the_organization() {
    let organization = org::load(&fixture().join("organizations")).unwrap();
    let with = hits(&scan(Some(organization)), &["GH-TR-001"]);
    assert_eq!(
        with,
        vec![hit("GH-TR-001", "222222222222", "role vendor-audit")],
        "prod's deploy role trusts the sandbox account, a member: not external"
    );
    let without = hits(&scan(None), &["GH-TR-001"]);
    assert!(without.contains(&hit("GH-TR-001", "222222222222", "role deploy")));
}

#[test]
fn assumption_paths_cross_the_organizations_accounts() {
    let organization = org::load(&fixture().join("organizations")).unwrap();
    let with = scan(Some(organization));
    let paths: Vec<&Finding> = with.iter().filter(|f| f.rule == "GH-PE-006").collect();
    assert_eq!(paths.len(), 1, "{paths:#?}");
    assert!(
        paths[0].location.file.ends_with("333333333333.json")
            && paths[0].location.entity.as_deref() == Some("user ci")
            && paths[0].message.contains("deploy"),
        "{:#?}",
        paths[0]
    );
    // Each account's export alone holds only half of the path.
    assert!(scan(None).iter().all(|f| f.rule != "GH-PE-006"));
}

#[test]
fn bad_organizations_data_names_the_file_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap().path();
            if e.is_file() {
                std::fs::copy(&e, to.join(e.file_name().unwrap())).unwrap();
            }
        }
    };
    let src = fixture().join("organizations");
    for sub in ["", "ous", "policies"] {
        copy(&src.join(sub), &dir.path().join(sub));
    }
    let scp = dir.path().join("policies/p-sandbox01.json");
    let text = std::fs::read_to_string(&scp).unwrap();
    std::fs::write(&scp, text.replace("\\\"Effect\\\"", "\\\"Efect\\\"")).unwrap();
    let err = org::load(dir.path()).unwrap_err();
    assert!(matches!(err, OrgError::Policy { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("p-sandbox01.json: $.Policy.Content"),
        "{err}"
    );

    std::fs::write(&scp, text).unwrap();
    std::fs::write(
        dir.path().join("ous/ou-a1b2-sand1234.accounts.json"),
        r#"{"Accounts": [{"Name": "sandbox"}]}"#,
    )
    .unwrap();
    let err = org::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("ou-a1b2-sand1234.accounts.json: $.Accounts[0].Id"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("ous/ou-a1b2-sand1234.accounts.json"),
        r#"{"Accounts": []}"#,
    )
    .unwrap();
    let err = org::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("account 333333333333 is not listed"), "{err}");
}
