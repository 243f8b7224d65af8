//! The entities of the store, as plain data. These are what the server turns into
//! AWS IAM XML and what the policy engine is fed; they know nothing of SQL.
//! Also here: AWS-style id generation, ARNs, and the input validation AWS applies
//! (name and path syntax, limits), so every backend rejects the same input the same way.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

/// The ARN partition of every Gatehouse ARN.
pub const PARTITION: &str = "gatehouse";

/// A point in time (UTC).
pub type Timestamp = DateTime<Utc>;

/// AWS's limits, enforced by the store.
pub mod limits {
    /// Versions a managed policy may have.
    pub const POLICY_VERSIONS: usize = 5;
    /// Access keys a user may have.
    pub const ACCESS_KEYS_PER_USER: usize = 2;
    /// Managed policies attached to one user, group or role.
    pub const ATTACHED_POLICIES: usize = 10;
    /// Groups a user may be in.
    pub const GROUPS_PER_USER: usize = 10;
    /// Tags on one user, role or policy.
    pub const TAGS: usize = 50;
    /// Managed policy document size (characters, whitespace not counted).
    pub const MANAGED_POLICY_SIZE: usize = 6144;
    /// Inline policy size of a user: all its inline documents together (characters,
    /// whitespace not counted), as AWS counts.
    pub const USER_INLINE_SIZE: usize = 2048;
    /// See [`USER_INLINE_SIZE`].
    pub const GROUP_INLINE_SIZE: usize = 5120;
    /// See [`USER_INLINE_SIZE`].
    pub const ROLE_INLINE_SIZE: usize = 10240;
    /// Role trust policy size.
    pub const TRUST_POLICY_SIZE: usize = 2048;
    /// MFA devices enabled for one user.
    pub const MFA_DEVICES_PER_USER: usize = 8;
    /// Guardrail (SCP) size.
    pub const GUARDRAIL_SIZE: usize = 5120;
    /// Largest page a list call returns.
    pub const MAX_ITEMS: u32 = 1000;
    /// Page size when none is asked for.
    pub const DEFAULT_MAX_ITEMS: u32 = 100;
}

/// One page of a list call. `next_marker` is set when more items follow; pass it back
/// as [`ListParams::marker`] to get them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Opaque marker of the next page, when the listing is truncated.
    pub next_marker: Option<String>,
}

impl<T> Page<T> {
    /// AWS's `IsTruncated`.
    pub fn is_truncated(&self) -> bool {
        self.next_marker.is_some()
    }
}

/// Paging and filtering of list calls (AWS's `PathPrefix`, `Marker`, `MaxItems`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Only entities whose path starts with this (ignored by lists without paths).
    pub path_prefix: Option<String>,
    /// Where to continue, from a previous page's `next_marker`.
    pub marker: Option<String>,
    /// At most this many items (1..=1000, default 100).
    pub max_items: Option<u32>,
}

impl ListParams {
    /// The first page of `max_items` items.
    pub fn first(max_items: u32) -> Self {
        ListParams {
            max_items: Some(max_items),
            ..Default::default()
        }
    }

    /// The page after `page` (same filters and size), or `None` when `page` was last.
    pub fn next<T>(&self, page: &Page<T>) -> Option<Self> {
        page.next_marker.as_ref().map(|m| ListParams {
            marker: Some(m.clone()),
            ..self.clone()
        })
    }
}

/// Principal kinds that own inline policies and managed-policy attachments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PrincipalKind {
    /// An IAM user.
    User,
    /// An IAM group.
    Group,
    /// An IAM role.
    Role,
}

impl PrincipalKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Group => "group",
            PrincipalKind::Role => "role",
        }
    }

    pub(crate) fn entity(self) -> crate::EntityKind {
        match self {
            PrincipalKind::User => crate::EntityKind::User,
            PrincipalKind::Group => crate::EntityKind::Group,
            PrincipalKind::Role => crate::EntityKind::Role,
        }
    }
}

/// Resources that carry tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaggedKind {
    /// An IAM user.
    User,
    /// An IAM role.
    Role,
    /// A managed policy (addressed by ARN).
    Policy,
    /// An OpenID Connect provider (addressed by ARN).
    OidcProvider,
}

impl TaggedKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TaggedKind::User => "user",
            TaggedKind::Role => "role",
            TaggedKind::Policy => "policy",
            TaggedKind::OidcProvider => "oidc-provider",
        }
    }
}

/// An account: the unit of ownership and of cross-account trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// 12 digits.
    pub account_id: String,
    /// Human-readable name (unique, case-insensitively).
    pub name: String,
    /// Whether this is the default account.
    pub is_default: bool,
    /// Creation time.
    pub created: Timestamp,
}

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Owning account.
    pub account_id: String,
    /// `AIDA...`.
    pub user_id: String,
    /// Name as created.
    pub name: String,
    /// Path, `/` by default.
    pub path: String,
    /// ARN of the permissions boundary policy.
    pub permissions_boundary: Option<String>,
    /// Creation time.
    pub created: Timestamp,
}

impl User {
    /// `arn:gatehouse:iam::ACCOUNT:user/PATH/NAME`.
    pub fn arn(&self) -> String {
        iam_arn(&self.account_id, "user", &self.path, &self.name)
    }
}

/// Input of [`crate::Store::create_user`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewUser {
    /// The user name.
    pub name: String,
    /// Path; `/` when `None`.
    pub path: Option<String>,
    /// ARN of a managed policy to use as permissions boundary.
    pub permissions_boundary: Option<String>,
    /// Initial tags.
    pub tags: Vec<Tag>,
}

/// An IAM group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Owning account.
    pub account_id: String,
    /// `AGPA...`.
    pub group_id: String,
    /// Name as created.
    pub name: String,
    /// Path, `/` by default.
    pub path: String,
    /// Creation time.
    pub created: Timestamp,
}

impl Group {
    /// `arn:gatehouse:iam::ACCOUNT:group/PATH/NAME`.
    pub fn arn(&self) -> String {
        iam_arn(&self.account_id, "group", &self.path, &self.name)
    }
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Owning account.
    pub account_id: String,
    /// `AROA...`.
    pub role_id: String,
    /// Name as created.
    pub name: String,
    /// Path, `/` by default.
    pub path: String,
    /// The trust (assume-role) policy document.
    pub trust_policy: String,
    /// Free-text description.
    pub description: Option<String>,
    /// Longest session, seconds (3600..=43200, default 3600).
    pub max_session_duration: i64,
    /// ARN of the permissions boundary policy.
    pub permissions_boundary: Option<String>,
    /// Creation time.
    pub created: Timestamp,
}

impl Role {
    /// `arn:gatehouse:iam::ACCOUNT:role/PATH/NAME`.
    pub fn arn(&self) -> String {
        iam_arn(&self.account_id, "role", &self.path, &self.name)
    }
}

/// Input of [`crate::Store::create_role`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRole {
    /// The role name.
    pub name: String,
    /// Path; `/` when `None`.
    pub path: Option<String>,
    /// Trust policy document.
    pub trust_policy: String,
    /// Description.
    pub description: Option<String>,
    /// Seconds; 3600 when `None`.
    pub max_session_duration: Option<i64>,
    /// ARN of a managed policy to use as permissions boundary.
    pub permissions_boundary: Option<String>,
    /// Initial tags.
    pub tags: Vec<Tag>,
}

/// Changes of [`crate::Store::update_role`]; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleUpdate {
    /// New description (`Some("")` clears it).
    pub description: Option<String>,
    /// New maximum session duration.
    pub max_session_duration: Option<i64>,
}

/// A customer-managed policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Owning account.
    pub account_id: String,
    /// `ANPA...`.
    pub policy_id: String,
    /// Name as created.
    pub name: String,
    /// Path, `/` by default.
    pub path: String,
    /// `arn:gatehouse:iam::ACCOUNT:policy/PATH/NAME`.
    pub arn: String,
    /// Description.
    pub description: Option<String>,
    /// `v1`, `v2`, ...
    pub default_version_id: String,
    /// Users, groups and roles it is attached to.
    pub attachment_count: i64,
    /// Users and roles using it as permissions boundary.
    pub permissions_boundary_usage_count: i64,
    /// Creation time.
    pub created: Timestamp,
    /// Last time a version was added or the default changed.
    pub updated: Timestamp,
}

/// Input of [`crate::Store::create_policy`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewPolicy {
    /// Policy name.
    pub name: String,
    /// Path; `/` when `None`.
    pub path: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// The document of version `v1`.
    pub document: String,
    /// Initial tags.
    pub tags: Vec<Tag>,
}

/// A version of a managed policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// `v1`, `v2`, ...
    pub version_id: String,
    /// The document.
    pub document: String,
    /// Whether it is the version in force.
    pub is_default: bool,
    /// Creation time.
    pub created: Timestamp,
}

/// An inline policy of a user, group or role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlinePolicy {
    /// Policy name.
    pub name: String,
    /// The document.
    pub document: String,
}

/// A managed policy attached to a principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedPolicy {
    /// Policy name.
    pub policy_name: String,
    /// Policy ARN.
    pub policy_arn: String,
}

/// Status of an access key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccessKeyStatus {
    /// Usable.
    Active,
    /// Refused at authentication.
    Inactive,
}

impl AccessKeyStatus {
    /// AWS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKeyStatus::Active => "Active",
            AccessKeyStatus::Inactive => "Inactive",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self> {
        match s {
            "Active" => Ok(AccessKeyStatus::Active),
            "Inactive" => Ok(AccessKeyStatus::Inactive),
            other => Err(StoreError::Validation(format!(
                "Invalid access key status {other:?}; must be Active or Inactive"
            ))),
        }
    }
}

/// When and where an access key was last used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastUsed {
    /// Time of use.
    pub time: Timestamp,
    /// Service name (`iam`, `sts`, `ai`).
    pub service: String,
    /// Region of the request.
    pub region: String,
}

/// An access key (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    /// `AKIA...`.
    pub access_key_id: String,
    /// Owning account.
    pub account_id: String,
    /// Owner's id.
    pub user_id: String,
    /// Owner's name.
    pub user_name: String,
    /// Active or Inactive.
    pub status: AccessKeyStatus,
    /// Creation time.
    pub created: Timestamp,
    /// Last use, if ever.
    pub last_used: Option<LastUsed>,
}

/// A tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tag {
    /// Key (unique per resource, ASCII letters compared case-insensitively: see
    /// [`Tag::folded_key`]).
    pub key: String,
    /// Value (may be empty).
    pub value: String,
}

impl Tag {
    /// A tag.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }

    /// The key as the store compares keys: ASCII letters folded, nothing else. The
    /// policy engine compares condition keys (`aws:ResourceTag/K`, `aws:RequestTag/K`) the
    /// same way; a finer or coarser folding here would let a key the policy does not see as
    /// `K` replace or delete the tag `K`.
    pub fn folded_key(&self) -> String {
        fold_tag_key(&self.key)
    }

    /// Checks the tag as AWS does: a key of 1 to 128 and a value of at most 256 letters,
    /// digits, space separators or `_.:/=+-@` (no control character), and no `aws:` key.
    pub fn validate(&self) -> Result<()> {
        validate_tag(self)
    }
}

/// A tag key folded as the store and the policy engine compare keys (ASCII letters only).
pub(crate) fn fold_tag_key(key: &str) -> String {
    key.to_ascii_lowercase()
}

/// An organization guardrail (SCP-like) policy attached to an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guardrail {
    /// Account it applies to.
    pub account_id: String,
    /// Name.
    pub name: String,
    /// The document.
    pub document: String,
    /// Creation time.
    pub created: Timestamp,
    /// Last change.
    pub updated: Timestamp,
}

/// Who [`crate::Store::load_principal_policies`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalRef<'a> {
    /// A user by name.
    User(&'a str),
    /// A role by name.
    Role(&'a str),
}

/// Where a policy document applying to a principal comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicySource {
    /// An inline policy of the principal itself, or (with `via_group`) of one of the
    /// user's groups.
    Inline {
        /// The policy name.
        policy_name: String,
        /// The group it belongs to, for group policies.
        via_group: Option<String>,
    },
    /// The default version of an attached managed policy, attached to the principal or
    /// (with `via_group`) to one of the user's groups.
    Managed {
        /// Policy ARN.
        arn: String,
        /// Default version id.
        version_id: String,
        /// The group it is attached to, for group policies.
        via_group: Option<String>,
    },
    /// The permissions boundary's default version.
    Boundary {
        /// Policy ARN.
        arn: String,
        /// Default version id.
        version_id: String,
    },
    /// A guardrail of the principal's account.
    Guardrail {
        /// Guardrail name.
        name: String,
    },
}

/// A document together with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcedPolicy {
    /// Origin, for explanations and audit.
    pub source: PolicySource,
    /// The JSON text.
    pub document: String,
}

/// Everything the policy engine needs to decide for one principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalPolicies {
    /// Account of the principal.
    pub account_id: String,
    /// The principal's ARN.
    pub principal_arn: String,
    /// `AIDA...` / `AROA...`.
    pub principal_id: String,
    /// The principal's name.
    pub principal_name: String,
    /// The principal's tags (for `aws:PrincipalTag/...`).
    pub tags: Vec<Tag>,
    /// Names of the user's groups (empty for roles).
    pub groups: Vec<String>,
    /// ARNs of the same groups, in the same order (gateway group budgets match them).
    pub group_arns: Vec<String>,
    /// Identity-based policies: inline, attached, and for users those of their groups.
    pub identity_policies: Vec<SourcedPolicy>,
    /// The permissions boundary, if set.
    pub boundary: Option<SourcedPolicy>,
    /// The account's guardrails.
    pub guardrails: Vec<SourcedPolicy>,
    /// Just-in-time grants activated for this principal and not long past their end (the
    /// decision compares each window with its clock; see `gatehouse-access`).
    pub elevations: Vec<crate::access::ActiveElevation>,
    /// The store generation this snapshot was read at.
    pub generation: i64,
}

// ---------------------------------------------------------------------------------
// ids, ARNs, time

/// AWS's unique ids are base32 (`A-Z`, `2-7`).
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn random_id(prefix: &str, len: usize) -> String {
    let mut out = String::with_capacity(len);
    out.push_str(prefix);
    let mut buf = [0u8; 32];
    rand::fill(&mut buf[..]);
    // 32 divides 256: every symbol is equally likely.
    for b in buf {
        if out.len() >= len {
            break;
        }
        out.push(char::from(ID_ALPHABET[usize::from(b % 32)]));
    }
    out
}

/// An AWS-style unique id of a user, group, role or policy: `prefix` + 17 base32
/// characters (21 in all, as AWS's `AIDAJQABLZS4A3QDU576Q`).
pub(crate) fn new_id(prefix: &str) -> String {
    random_id(prefix, 21)
}

/// An AWS-style access key id: `AKIA` + 16 base32 characters (20 in all).
pub(crate) fn new_access_key_id() -> String {
    random_id("AKIA", 20)
}

/// A new access-key secret: 40 characters of the AWS alphabet `[A-Za-z0-9+/]`.
pub(crate) fn new_secret_access_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut buf = [0u8; 40];
    rand::fill(&mut buf[..]);
    buf.iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect()
}

/// A random 12-digit account id.
pub(crate) fn new_account_id() -> String {
    let mut out = String::with_capacity(12);
    while out.len() < 12 {
        let mut buf = [0u8; 16];
        rand::fill(&mut buf[..]);
        for b in buf {
            if b < 250 && out.len() < 12 {
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    out
}

/// `arn:gatehouse:iam::ACCOUNT:KIND/PATH/NAME` (path includes its slashes).
pub fn iam_arn(account_id: &str, kind: &str, path: &str, name: &str) -> String {
    format!("arn:{PARTITION}:iam::{account_id}:{kind}{path}{name}")
}

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub(crate) fn ts(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

pub(crate) fn version_id(n: i64) -> String {
    format!("v{n}")
}

pub(crate) fn parse_version_id(id: &str) -> Result<i64> {
    id.strip_prefix('v')
        .filter(|d| {
            d.len() <= 9
                && d.bytes().all(|b| b.is_ascii_digit())
                && d.bytes().next().is_some_and(|b| b != b'0')
        })
        .and_then(|d| d.parse::<i64>().ok())
        .ok_or_else(|| {
            StoreError::Validation(format!(
                "Invalid version id {id:?}; must match v[1-9][0-9]*"
            ))
        })
}

// ---------------------------------------------------------------------------------
// validation

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

/// Validates an IAM entity name (`[\w+=,.@-]{1,max}`).
pub(crate) fn validate_name(what: &str, name: &str, max: usize) -> Result<()> {
    if name.is_empty() || name.chars().count() > max || !name.chars().all(is_name_char) {
        return Err(StoreError::Validation(format!(
            "Invalid {what} name {name:?}: must be 1 to {max} characters of [A-Za-z0-9+=,.@_-]"
        )));
    }
    Ok(())
}

/// Validates a path (`/` or `/a/b/`, printable ASCII, at most 512).
pub(crate) fn validate_path(path: &str) -> Result<()> {
    let ok = !path.is_empty()
        && path.len() <= 512
        && path.starts_with('/')
        && path.ends_with('/')
        && !path.contains("//")
        && path.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c));
    if !ok {
        return Err(StoreError::Validation(format!(
            "Invalid path {path:?}: must begin and end with / and be at most 512 printable ASCII characters"
        )));
    }
    Ok(())
}

pub(crate) fn validate_path_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 512
        && prefix.starts_with('/')
        && prefix.chars().all(|c| ('\u{21}'..='\u{7f}').contains(&c));
    if !ok {
        return Err(StoreError::Validation(format!(
            "Invalid path prefix {prefix:?}: must begin with / and be at most 512 characters"
        )));
    }
    Ok(())
}

/// Checks a description: at most 1000 characters, no control character but tab, line
/// feed and carriage return (as AWS allows); an escape sequence in a description would
/// reach an operator's terminal through `gatehouse` listings and audit views.
pub(crate) fn validate_description(d: &str) -> Result<()> {
    if d.chars().count() > 1000 {
        return Err(StoreError::Validation(
            "Description must be at most 1000 characters".to_string(),
        ));
    }
    if d.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(StoreError::Validation(
            "Description must not contain control characters other than tab, line feed and carriage return"
                .to_string(),
        ));
    }
    Ok(())
}

pub(crate) fn validate_max_session(seconds: i64) -> Result<()> {
    if !(3600..=43200).contains(&seconds) {
        return Err(StoreError::Validation(format!(
            "MaxSessionDuration {seconds} must be between 3600 and 43200 seconds"
        )));
    }
    Ok(())
}

/// A document's size as AWS counts it: characters, whitespace not counted.
pub(crate) fn policy_size(doc: &str) -> usize {
    doc.chars().filter(|c| !c.is_whitespace()).count()
}

/// Checks a policy document is non-empty and within `max` non-whitespace characters.
pub(crate) fn validate_document(what: &str, doc: &str, max: usize) -> Result<()> {
    if doc.trim().is_empty() {
        return Err(StoreError::Validation(format!(
            "The {what} document must not be empty"
        )));
    }
    if policy_size(doc) > max {
        return Err(StoreError::LimitExceeded(format!(
            "Cannot exceed quota for {what} size: {max}"
        )));
    }
    Ok(())
}

pub(crate) fn validate_tag(tag: &Tag) -> Result<()> {
    // AWS's `[\p{L}\p{Z}\p{N}_.:/=+\-@]`: the space separators (\p{Z}) are exactly the
    // white space that is not a control character (tab and line feed are not allowed).
    let ok_char = |c: char| {
        c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
    };
    let key_len = tag.key.chars().count();
    if key_len == 0 || key_len > 128 || !tag.key.chars().all(ok_char) {
        return Err(StoreError::Validation(format!(
            "Invalid tag key {:?}: 1 to 128 letters, digits, spaces or _.:/=+-@",
            tag.key
        )));
    }
    if tag.key.to_lowercase().starts_with("aws:") {
        return Err(StoreError::Validation(
            "Tag keys starting with aws: are reserved".to_string(),
        ));
    }
    if tag.value.chars().count() > 256 || !tag.value.chars().all(ok_char) {
        return Err(StoreError::Validation(format!(
            "Invalid value for tag {:?}: at most 256 letters, digits, spaces or _.:/=+-@",
            tag.key
        )));
    }
    Ok(())
}

pub(crate) fn validate_account_id(id: &str) -> Result<()> {
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::Validation(format!(
            "Invalid account id {id:?}: must be 12 digits"
        )));
    }
    Ok(())
}

pub(crate) fn validate_account_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.chars().count() > 64
        || !name.chars().all(|c| c.is_ascii_graphic() || c == ' ')
    {
        return Err(StoreError::Validation(format!(
            "Invalid account name {name:?}: 1 to 64 printable ASCII characters"
        )));
    }
    Ok(())
}

pub(crate) fn max_items(p: &ListParams) -> Result<i64> {
    let n = p.max_items.unwrap_or(limits::DEFAULT_MAX_ITEMS);
    if n == 0 || n > limits::MAX_ITEMS {
        return Err(StoreError::Validation(format!(
            "MaxItems {n} must be between 1 and {}",
            limits::MAX_ITEMS
        )));
    }
    Ok(i64::from(n))
}

/// Markers are the sort key of the last item returned, base64url-encoded so that
/// clients treat them as opaque.
pub(crate) fn encode_marker(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

pub(crate) fn decode_marker(marker: &str) -> Result<String> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(marker.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| StoreError::Validation("Invalid Marker".to_string()))
}

/// Splits `arn:gatehouse:iam::ACCOUNT:policy/PATH/NAME` into (account, name).
pub(crate) fn parse_policy_arn(arn: &str) -> Result<(String, String)> {
    let invalid = || StoreError::Validation(format!("Invalid policy ARN {arn:?}"));
    let rest = arn
        .strip_prefix(&format!("arn:{PARTITION}:iam::"))
        .ok_or_else(invalid)?;
    let (account, resource) = rest.split_once(':').ok_or_else(invalid)?;
    let path_and_name = resource.strip_prefix("policy/").ok_or_else(invalid)?;
    let name = path_and_name.rsplit('/').next().ok_or_else(invalid)?;
    if validate_account_id(account).is_err() || name.is_empty() {
        return Err(invalid());
    }
    Ok((account.to_string(), name.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn ids_have_aws_shape() {
        let key = new_access_key_id();
        assert!(key.len() == 20 && key.starts_with("AKIA"));
        for prefix in ["AIDA", "AGPA", "AROA", "ANPA"] {
            let id = new_id(prefix);
            assert_eq!(id.len(), 21);
            assert!(id.starts_with(prefix));
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
            );
        }
        assert_eq!(new_secret_access_key().len(), 40);
        let acct = new_account_id();
        assert_eq!(acct.len(), 12);
        assert!(validate_account_id(&acct).is_ok());
    }

    #[test]
    fn validation() {
        assert!(validate_name("user", "alice+bob@x.y_z-1=,", 64).is_ok());
        assert!(validate_name("user", "", 64).is_err());
        assert!(validate_name("user", "a b", 64).is_err());
        assert!(validate_name("user", &"a".repeat(65), 64).is_err());
        assert!(validate_path("/").is_ok());
        assert!(validate_path("/a/b/").is_ok());
        assert!(validate_path("/a").is_err());
        assert!(validate_path("a/").is_err());
        assert!(parse_version_id("v12").is_ok());
        assert!(parse_version_id("12").is_err());
        assert_eq!(
            parse_policy_arn("arn:gatehouse:iam::111122223333:policy/a/b/P1").unwrap(),
            ("111122223333".to_string(), "P1".to_string())
        );
        assert!(parse_policy_arn("arn:aws:iam::111122223333:policy/P1").is_err());
        let m = encode_marker("bob");
        assert_eq!(decode_marker(&m).unwrap(), "bob");
        assert!(decode_marker("!!!").is_err());
    }
}
