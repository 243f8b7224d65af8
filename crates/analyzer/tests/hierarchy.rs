//! Inheritance down a cloud's resource hierarchy: a grant on a GCP organization or folder
//! reaches every project below it (`tests/fixtures/gcp-hierarchy`, the output of `gcloud
//! asset search-all-iam-policies --scope=organizations/N --format=json`); an Azure role
//! assignment on a management group reaches every subscription below it
//! (`tests/fixtures/azure-hierarchy`: `az role assignment list --all` and `az account
//! management-group show --name ROOT --expand --recurse`, two files joined in one run). The
//! planted risks name what inherits them; the near misses are the projects and
//! subscriptions beside them (a sibling's), which must not be named, and grants on a
//! resource, which reach nothing below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_analyzer::{Finding, NoProgress, Settings, scan_bytes, scan_paths};
use std::path::Path;

fn gcp() -> Vec<Finding> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gcp-hierarchy/search-all-iam-policies.json");
    scan_bytes(
        "search-all-iam-policies.json",
        &std::fs::read(file).unwrap(),
    )
}

fn only<'a>(findings: &'a [Finding], rule: &str) -> &'a Finding {
    let hits: Vec<&Finding> = findings.iter().filter(|f| f.rule == rule).collect();
    assert_eq!(hits.len(), 1, "{rule}: {hits:#?}");
    hits[0]
}

#[test]
fn a_folder_grant_reaches_the_projects_below_it_only() {
    let findings = gcp();
    let editor = only(&findings, "GH-OP-005");
    assert_eq!(
        editor.message,
        "`roles/editor` is granted to group:contractors@example.com on folders/200, \
         inherited by 2 projects (projects/prod-app, projects/prod-data)"
    );
    assert_eq!(
        editor.location.json_path.as_deref(),
        Some("$[1].policy.bindings[0]")
    );
    // the sandbox project sits under a sibling folder
    assert!(!editor.message.contains("sandbox"));
}

#[test]
fn a_conditional_folder_grant_keeps_its_condition_on_every_project() {
    let findings = gcp();
    let admin = only(&findings, "GH-OP-002");
    assert!(
        admin
            .message
            .contains("on folders/300, inherited by projects/sandbox-app (condition: request.time < timestamp(\"2027-01-01T00:00:00Z\"))"),
        "{}",
        admin.message
    );
}

#[test]
fn a_resource_grant_is_inherited_by_nothing() {
    let findings = gcp();
    let public = only(&findings, "GH-TR-003");
    assert_eq!(
        public.message,
        "`roles/storage.objectViewer` is granted to `allUsers` on //storage.googleapis.com/sandbox-public-assets"
    );
    // Nothing at the organization or on the projects themselves is a finding.
    assert_eq!(findings.len(), 3, "{findings:#?}");
}

fn azure(files: &[&str]) -> Vec<Finding> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/azure-hierarchy");
    let paths: Vec<_> = files.iter().map(|f| dir.join(f)).collect();
    scan_paths(&paths, &Settings::default(), &NoProgress)
        .unwrap()
        .findings
}

#[test]
fn a_management_group_assignment_reaches_the_subscriptions_below_it_only() {
    let findings = azure(&["role-assignments.json", "management-groups.json"]);
    let mut owners: Vec<&str> = findings
        .iter()
        .filter(|f| f.rule == "GH-OP-001")
        .map(|f| f.message.as_str())
        .collect();
    owners.sort_unstable();
    assert_eq!(
        owners,
        [
            "Azure role `Owner` is assigned to alice@contoso.com (User) at \
             /providers/Microsoft.Management/managementGroups/mg-prod, inherited by 2 \
             subscriptions (/subscriptions/1f6b3c2e-0000-4000-8000-00000000000a, \
             /subscriptions/1f6b3c2e-0000-4000-8000-00000000000b)",
            "Azure role `Owner` is assigned to bob@contoso.com (User) at \
             /subscriptions/1f6b3c2e-0000-4000-8000-00000000000c/resourceGroups/rg-lab",
        ]
    );
    // The Reader assignment on the root is no administrator.
    assert!(findings.iter().all(|f| !f.message.contains("everyone")));
    // Without the tree the assignment is still reported, reaching nothing it can name.
    let alone = azure(&["role-assignments.json"]);
    assert!(
        alone
            .iter()
            .any(|f| f.rule == "GH-OP-001" && f.message.ends_with("managementGroups/mg-prod"))
    );
}
