//! The normalized model every importer produces and every rule reads, so that rules do not
//! care which export format (or cloud) the data came from.

use gatehouse_policy::PolicyDocument;
use std::sync::Arc;

/// Everything imported from one input file.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The file (as given on the command line or found in a directory).
    pub file: String,
    /// The detected format.
    pub format: Format,
    /// AWS policy documents: managed (default version), inline, trust, standalone. Shared
    /// (`Arc`) so that a managed policy read once serves every principal it is attached to.
    pub aws_policies: Vec<Arc<AwsPolicy>>,
    /// How many of `aws_policies`, at the end, belong to another part of the same export (a
    /// batch of an export read as a stream holds the managed and group policies its
    /// principals use, which the statement rules check once, with the part they came in).
    pub shared_policies: usize,
    /// AWS users, groups and roles.
    pub aws_principals: Vec<AwsPrincipal>,
    /// Azure role definitions.
    pub azure_roles: Vec<AzureRole>,
    /// Azure role assignments.
    pub azure_assignments: Vec<AzureAssignment>,
    /// Azure's scope tree: (child scope, parent scope), management groups and
    /// subscriptions, lowercased.
    pub azure_tree: Vec<(String, String)>,
    /// GCP IAM bindings.
    pub gcp_bindings: Vec<GcpBinding>,
    /// GCP custom roles.
    pub gcp_roles: Vec<GcpRole>,
    /// Rows of an AWS credential report.
    pub aws_credentials: Vec<CredentialRow>,
    /// Records of a Gatehouse audit log (`gatehouse audit export`, JSON lines).
    pub audit: Vec<crate::generate::AuditRecord>,
}

impl Inventory {
    /// The policies this inventory reports on (all but the shared ones).
    pub fn own_policies(&self) -> &[Arc<AwsPolicy>] {
        let own = self.aws_policies.len().saturating_sub(self.shared_policies);
        self.aws_policies.get(..own).unwrap_or_default()
    }
}

/// The input formats the importers recognize.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Not recognized (or not JSON).
    #[default]
    Unknown,
    /// `aws iam get-account-authorization-details`.
    AwsAuthorizationDetails,
    /// A single AWS policy document, plain or as `get-policy-version` output.
    AwsPolicy,
    /// Azure role definitions (flat or `Permissions` shape, one or a list).
    AzureRoleDefinitions,
    /// `az role assignment list --all` output.
    AzureRoleAssignments,
    /// `az account management-group show --name ROOT --expand --recurse` output.
    AzureManagementGroups,
    /// GCP `getIamPolicy` output.
    GcpIamPolicy,
    /// `gcloud asset search-all-iam-policies` output: the IAM policies of an organization's
    /// folders, projects and resources, each with its ancestors.
    GcpAssetIamPolicies,
    /// GCP custom roles (`roles.list` output or one role).
    GcpCustomRoles,
    /// `aws iam get-credential-report` content (CSV).
    AwsCredentialReport,
    /// Gatehouse's audit log as JSON lines (`gatehouse audit export`).
    GatehouseAuditLog,
}

/// What a policy document is to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyKind {
    /// A managed policy (its default version).
    Managed,
    /// Inline in a user, group or role.
    Inline,
    /// A role's trust policy.
    Trust,
    /// A standalone document (a file holding one policy).
    Standalone,
}

/// An AWS policy document with where it came from.
#[derive(Debug, Clone)]
pub struct AwsPolicy {
    /// Policy name (file stem for standalone documents).
    pub name: String,
    /// ARN of a managed policy.
    pub arn: Option<String>,
    /// Its kind.
    pub kind: PolicyKind,
    /// Owner of an inline or trust policy (user, group or role name).
    pub owner: Option<String>,
    /// JSON path of the document in the file.
    pub path: String,
    /// True when `Statement` was a single object (paths then omit the index).
    pub single_statement: bool,
    /// The parsed document.
    pub document: PolicyDocument,
    /// Why the engine refuses to compile it (GH-IN-003), when it does.
    pub compile_error: Option<String>,
}

impl AwsPolicy {
    /// The JSON path of statement `index`.
    pub fn statement_path(&self, index: usize) -> String {
        if self.single_statement {
            format!("{}.Statement", self.path)
        } else {
            format!("{}.Statement[{index}]", self.path)
        }
    }

    /// The name decisions cite: the ARN of a managed policy, `OWNER/NAME` for an inline or
    /// trust policy, the name of a standalone one.
    pub fn display_name(&self) -> String {
        match (&self.arn, &self.owner) {
            (Some(arn), _) => arn.clone(),
            (None, Some(owner)) => format!("{owner}/{}", self.name),
            (None, None) => self.name.clone(),
        }
    }

    /// The statement label: its `Sid`, or `#index`.
    pub fn statement_label(&self, index: usize) -> String {
        match self
            .document
            .statements
            .get(index)
            .and_then(|s| s.sid.as_deref())
        {
            Some(sid) if !sid.is_empty() => sid.to_owned(),
            _ => format!("#{index}"),
        }
    }
}

/// Which kind of AWS identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrincipalType {
    /// An IAM user.
    User,
    /// An IAM group (its policies apply to each member).
    Group,
    /// An IAM role.
    Role,
}

impl PrincipalType {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::User => "user",
            PrincipalType::Group => "group",
            PrincipalType::Role => "role",
        }
    }
}

/// An AWS user, group or role, with indices into [`Inventory::aws_policies`].
#[derive(Debug, Clone)]
pub struct AwsPrincipal {
    /// User, group or role.
    pub kind: PrincipalType,
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// JSON path of the entry.
    pub path: String,
    /// Identity policies that apply (inline, attached managed, and those of its groups).
    pub policies: Vec<usize>,
    /// The permissions boundary, when set and found.
    pub boundary: Option<usize>,
    /// A role's trust policy.
    pub trust: Option<usize>,
    /// When it was created (`CreateDate`), when the export says.
    pub created: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// When a role was last used (`RoleLastUsed.LastUsedDate`); `None` when the export has
    /// no date (never used in AWS's tracking period, or not a role).
    pub last_used: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Whether the export tracks this role's use at all (`RoleLastUsed` present, `{}` when
    /// never used, as AWS writes it). Exports without it (Gatehouse's own API) say nothing
    /// about use, so a role's age there is not idleness.
    pub usage_tracked: bool,
    /// Another account of the export has a principal of this kind and name: labels then
    /// name the account too.
    pub account_in_label: bool,
}

impl AwsPrincipal {
    /// The account id from the ARN (empty if none).
    pub fn account(&self) -> &str {
        self.arn.split(':').nth(4).unwrap_or("")
    }

    /// `role name` style label (`role name in 111122223333` when the name repeats in
    /// another account of the export).
    pub fn label(&self) -> String {
        label(self.kind, &self.name, self.account(), self.account_in_label)
    }

    /// `role/name` style label (`111122223333:role/name` across accounts), for paths.
    pub fn slug(&self) -> String {
        if self.account_in_label {
            format!("{}:{}/{}", self.account(), self.kind.as_str(), self.name)
        } else {
            format!("{}/{}", self.kind.as_str(), self.name)
        }
    }
}

/// A principal's label from its parts (see [`AwsPrincipal::label`]); also the owner of its
/// inline policies.
pub fn label(kind: PrincipalType, name: &str, account: &str, with_account: bool) -> String {
    if with_account && !account.is_empty() {
        format!("{} {name} in {account}", kind.as_str())
    } else {
        format!("{} {name}", kind.as_str())
    }
}

/// An action string with its JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The value.
    pub value: String,
    /// JSON path.
    pub path: String,
}

/// An Azure role definition.
#[derive(Debug, Clone, Default)]
pub struct AzureRole {
    /// Role name.
    pub name: String,
    /// True for custom roles (built-in roles are reported too, but less severely).
    pub is_custom: bool,
    /// JSON path of the definition.
    pub path: String,
    /// Control-plane operations.
    pub actions: Vec<Located>,
    /// Excluded control-plane operations.
    pub not_actions: Vec<Located>,
    /// Data-plane operations.
    pub data_actions: Vec<Located>,
    /// Excluded data-plane operations.
    pub not_data_actions: Vec<Located>,
    /// Where it may be assigned.
    pub assignable_scopes: Vec<String>,
}

/// An Azure role assignment.
#[derive(Debug, Clone)]
pub struct AzureAssignment {
    /// `roleDefinitionName`.
    pub role: String,
    /// `principalName` (a user principal name for users), or `principalId`.
    pub principal: String,
    /// `principalType` (`User`, `Group`, `ServicePrincipal`).
    pub principal_type: String,
    /// Where it is assigned (a management group, subscription, resource group or resource).
    pub scope: String,
    /// The assignment's condition, when it has one.
    pub condition: Option<String>,
    /// JSON path.
    pub path: String,
}

/// One GCP binding: a role granted to members, possibly under a condition.
#[derive(Debug, Clone)]
pub struct GcpBinding {
    /// `roles/...` or `projects/P/roles/...`.
    pub role: String,
    /// `user:...`, `serviceAccount:...`, `allUsers`, ...
    pub members: Vec<String>,
    /// The condition's expression (or title), when conditional.
    pub condition: Option<String>,
    /// JSON path.
    pub path: String,
    /// Where it is granted (`organizations/N`, `folders/N`, `projects/N` or a resource's
    /// full name), when the export says.
    pub scope: Option<String>,
    /// The projects that inherit it (those under the organization or folder it is granted
    /// at), from an export that carries the resource hierarchy.
    pub inherited_by: Vec<String>,
}

/// A GCP custom role.
#[derive(Debug, Clone)]
pub struct GcpRole {
    /// Role resource name.
    pub name: String,
    /// Permissions with their JSON paths.
    pub permissions: Vec<Located>,
    /// JSON path.
    pub path: String,
}

/// One user's row of an AWS credential report.
#[derive(Debug, Clone, Default)]
pub struct CredentialRow {
    /// User name (`<root_account>` for the root user).
    pub user: String,
    /// User ARN.
    pub arn: String,
    /// 1-based line in the file.
    pub line: usize,
    /// When the user was created.
    pub created: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// The user can sign in with a password.
    pub password_enabled: bool,
    /// When the password was last used (`None`: never, or no information).
    pub password_last_used: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// The user has an MFA device.
    pub mfa_active: bool,
    /// The user's access keys (1 and 2).
    pub keys: Vec<KeyRow>,
}

/// One access key of a credential-report row.
#[derive(Debug, Clone, Default)]
pub struct KeyRow {
    /// 1 or 2.
    pub slot: u8,
    /// Whether it is active.
    pub active: bool,
    /// When it was created or last rotated.
    pub last_rotated: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// When it was last used (`None`: never, or no information).
    pub last_used: Option<chrono::DateTime<chrono::FixedOffset>>,
}
