//! The decision request: who asks to do what to which resource, in what context.
//!
//! [`Request`] is the wire shape (DESIGN.md's decision request, read by the CLI and tests).
//! [`Prepared`] is what the evaluator reads: the action lower-cased once, the principal's
//! account found once, and the keys AWS derives from the principal (`aws:PrincipalArn`,
//! `aws:PrincipalAccount`, `aws:username`) available when the context does not give them.

use crate::template::VariableSource;
use arrayvec::ArrayString;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::{Cell, OnceCell};
use std::fmt;
use std::net::IpAddr;

/// A request to decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The caller's ARN (user, role session, account root) or a service principal name.
    pub principal: String,
    /// `service:Action`, e.g. `ai:InvokeModel`.
    pub action: String,
    /// The resource ARN, or `*`.
    pub resource: String,
    /// Context keys and their values.
    #[serde(default)]
    pub context: Context,
    /// The 12-digit account that owns the resource, when it is not the principal's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_account: Option<String>,
}

impl Request {
    /// A request with an empty context in the principal's own account.
    pub fn new(
        principal: impl Into<String>,
        action: impl Into<String>,
        resource: impl Into<String>,
    ) -> Request {
        Request {
            principal: principal.into(),
            action: action.into(),
            resource: resource.into(),
            context: Context::default(),
            resource_account: None,
        }
    }

    /// Adds a context key (builder style).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<ContextValue>) -> Request {
        self.context.insert(key, value);
        self
    }
}

/// A context value: one string, or a list (a multivalued key such as `aws:TagKeys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    /// A single-valued key.
    One(String),
    /// A multivalued key.
    Many(Vec<String>),
}

impl ContextValue {
    /// The values as a slice.
    pub fn as_slice(&self) -> &[String] {
        match self {
            ContextValue::One(s) => std::slice::from_ref(s),
            ContextValue::Many(v) => v,
        }
    }
}

impl From<&str> for ContextValue {
    fn from(s: &str) -> Self {
        ContextValue::One(s.to_owned())
    }
}
impl From<String> for ContextValue {
    fn from(s: String) -> Self {
        ContextValue::One(s)
    }
}
impl From<Vec<String>> for ContextValue {
    fn from(v: Vec<String>) -> Self {
        ContextValue::Many(v)
    }
}
impl From<Vec<&str>> for ContextValue {
    fn from(v: Vec<&str>) -> Self {
        ContextValue::Many(v.into_iter().map(str::to_owned).collect())
    }
}

/// The request context. Key names are compared case-insensitively, as AWS does; order is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    entries: Vec<(String, ContextValue)>,
}

impl Context {
    /// Sets a key, replacing a key of the same name (in any case).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<ContextValue>) {
        let key = key.into();
        let value = value.into();
        match self
            .entries
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(&key))
        {
            Some(slot) => *slot = (key, value),
            None => self.entries.push((key, value)),
        }
    }

    /// The values of a key, if present.
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        // Keys are nearly always spelled as the policy spells them: the exact comparison
        // (a memcmp) settles most lookups before the byte-wise case-insensitive one.
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
            })
            .map(|(_, v)| v)
    }

    /// Removes a key.
    pub fn remove(&mut self, key: &str) -> Option<ContextValue> {
        let i = self
            .entries
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(key))?;
        Some(self.entries.remove(i).1)
    }

    /// Iterates over the keys and values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Serialize for Context {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            match v {
                ContextValue::One(one) => m.serialize_entry(k, one)?,
                ContextValue::Many(many) => m.serialize_entry(k, many)?,
            }
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Context {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Context;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object whose values are strings or lists of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Context, A::Error> {
                let mut ctx = Context::default();
                while let Some(key) = map.next_key::<String>()? {
                    let value: ContextValue = map.next_value()?;
                    ctx.insert(key, value);
                }
                Ok(ctx)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for ContextValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ContextValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ContextValue, E> {
                Ok(ContextValue::One(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<ContextValue, E> {
                Ok(ContextValue::One(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ContextValue, E> {
                Ok(ContextValue::One(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ContextValue, E> {
                Ok(ContextValue::One(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ContextValue, E> {
                Ok(ContextValue::One(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ContextValue, E> {
                Ok(ContextValue::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ContextValue, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<ContextValue>()? {
                    match item {
                        ContextValue::One(s) => out.push(s),
                        ContextValue::Many(_) => {
                            return Err(de::Error::custom("nested lists are not context values"));
                        }
                    }
                }
                Ok(ContextValue::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The parts of an ARN: `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    /// `aws`, `gatehouse`, ...
    pub partition: &'a str,
    /// `iam`, `sts`, `ai`, ...
    pub service: &'a str,
    /// The region, possibly empty.
    pub region: &'a str,
    /// The 12-digit account, possibly empty.
    pub account: &'a str,
    /// Everything after the fifth colon.
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Splits an ARN; `None` when `s` is not of the ARN shape.
    pub fn parse(s: &'a str) -> Option<Arn<'a>> {
        let [arn, partition, service, region, account, resource] = crate::arn::split_arn(s)?;
        (arn == "arn").then_some(Arn {
            partition,
            service,
            region,
            account,
            resource,
        })
    }
}

/// What the evaluator needs from a request, computed once per decision.
#[derive(Debug)]
pub(crate) struct Prepared<'r> {
    pub(crate) req: &'r Request,
    /// The action in lower case (actions match case-insensitively).
    pub(crate) action_lc: LowerAction,
    /// The principal's account (empty when the principal is not an ARN with one).
    pub(crate) principal_account: &'r str,
    /// The principal's ARN, split (`None` for a service principal name).
    principal_parts: Option<Arn<'r>>,
    /// The resource ARN's six segments, split once when first needed.
    resource_segments: OnceCell<Option<[&'r str; 6]>>,
    /// For an assumed-role session, the role's ARN.
    role_arn: OnceCell<Option<String>>,
    derived_arn: OnceCell<Option<String>>,
    /// The principal has a permissions boundary: a resource-based `Deny` with `NotPrincipal`
    /// then applies to it whatever `NotPrincipal` names (AWS's NotPrincipal docs).
    pub(crate) has_boundary: bool,
    /// Condition keys starting with this prefix (ASCII case ignored) are "open": their
    /// value is not known yet, so a condition on one holds in an `Allow` and not in a
    /// `Deny` — the most the request could be allowed for some value of them
    /// ([`crate::Evaluation::decide_for_some`]).
    pub(crate) open_key_prefix: Option<&'r str>,
    /// The last address parsed for an IP condition, by the position of its text in the
    /// request: the same `aws:SourceIp` is usually tested by several statements.
    ip_memo: Cell<Option<(usize, usize, Option<IpAddr>)>>,
}

/// An action name in lower case, inline when short (every action AWS or Gatehouse defines).
#[derive(Debug)]
pub(crate) enum LowerAction {
    Inline(ArrayString<64>),
    Heap(Box<str>),
}

impl LowerAction {
    fn new(action: &str) -> LowerAction {
        // ASCII letters folded, as policy actions are when compiled, so that an action
        // always matches itself and nothing else (no Unicode case: the Kelvin sign is not
        // `k`).
        match ArrayString::<64>::from(action) {
            Ok(mut buf) => {
                buf.make_ascii_lowercase();
                LowerAction::Inline(buf)
            }
            Err(_) => LowerAction::Heap(action.to_ascii_lowercase().into_boxed_str()),
        }
    }
}

impl std::ops::Deref for LowerAction {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            LowerAction::Inline(s) => s,
            LowerAction::Heap(s) => s,
        }
    }
}

impl<'r> Prepared<'r> {
    pub(crate) fn new(req: &'r Request) -> Prepared<'r> {
        let action_lc = LowerAction::new(&req.action);
        let principal_parts = Arn::parse(&req.principal);
        let principal_account = principal_parts.map_or("", |a| a.account);
        Prepared {
            req,
            action_lc,
            principal_account,
            principal_parts,
            resource_segments: OnceCell::new(),
            role_arn: OnceCell::new(),
            derived_arn: OnceCell::new(),
            has_boundary: false,
            open_key_prefix: None,
            ip_memo: Cell::new(None),
        }
    }

    /// Whether `key` is one whose value is left open (see `open_key_prefix`).
    pub(crate) fn is_open_key(&self, key: &str) -> bool {
        self.open_key_prefix.is_some_and(|p| {
            key.len() >= p.len()
                && key.is_char_boundary(p.len())
                && key[..p.len()].eq_ignore_ascii_case(p)
        })
    }

    /// The six segments of the resource ARN; `None` when it is not ARN-shaped.
    pub(crate) fn resource_segments(&self) -> Option<[&'r str; 6]> {
        *self
            .resource_segments
            .get_or_init(|| crate::arn::split_arn(&self.req.resource))
    }

    /// `v` (a value of this request) read as an IP address; `None` when it is not one.
    pub(crate) fn parsed_ip(&self, v: &str) -> Option<IpAddr> {
        let at = (v.as_ptr() as usize, v.len());
        if let Some((p, l, ip)) = self.ip_memo.get()
            && (p, l) == at
        {
            return ip;
        }
        let ip = crate::condition::parse_ip(v);
        self.ip_memo.set(Some((at.0, at.1, ip)));
        ip
    }

    /// The service prefix of the action (lower case).
    pub(crate) fn service_lc(&self) -> &str {
        self.action_lc
            .split_once(':')
            .map_or(&*self.action_lc, |(s, _)| s)
    }

    /// The values of a context key, including the keys AWS derives from the principal.
    pub(crate) fn values(&self, key: &str) -> Option<&[String]> {
        if let Some(v) = self.req.context.get(key) {
            return Some(v.as_slice());
        }
        if key.eq_ignore_ascii_case("aws:PrincipalArn") {
            return self
                .derived_arn
                .get_or_init(|| {
                    self.principal_parts?;
                    Some(self.role_arn().unwrap_or(&self.req.principal).to_owned())
                })
                .as_ref()
                .map(std::slice::from_ref);
        }
        None
    }

    /// Single-valued derived keys that need no allocation.
    fn derived_str(&self, key: &str) -> Option<&str> {
        if key.eq_ignore_ascii_case("aws:PrincipalAccount") && !self.principal_account.is_empty() {
            return Some(self.principal_account);
        }
        if key.eq_ignore_ascii_case("aws:username") {
            let arn = self.principal_parts?;
            if arn.service == "iam" {
                let path = arn.resource.strip_prefix("user/")?;
                return path.rsplit('/').next();
            }
        }
        None
    }

    /// The first value of a key, for single-valued use; falls back to derived keys.
    pub(crate) fn single(&self, key: &str) -> Option<&str> {
        match self.values(key) {
            Some([one]) => Some(one),
            Some(_) => None,
            None => self.derived_str(key),
        }
    }

    /// All values of a key, including the derived keys.
    pub(crate) fn lookup(&self, key: &str) -> Option<Values<'_>> {
        match self.values(key) {
            Some(v) => Some(Values::List(v)),
            None => self.derived_str(key).map(Values::One),
        }
    }

    /// For an assumed-role session ARN, the ARN of its role.
    pub(crate) fn role_arn(&self) -> Option<&str> {
        self.role_arn
            .get_or_init(|| {
                let arn = self.principal_parts?;
                if arn.service != "sts" {
                    return None;
                }
                let rest = arn.resource.strip_prefix("assumed-role/")?;
                let (role, _session) = rest.rsplit_once('/')?;
                Some(format!(
                    "arn:{}:iam::{}:role/{}",
                    arn.partition, arn.account, role
                ))
            })
            .as_deref()
    }

    /// The account that owns the resource.
    pub(crate) fn resource_account(&self) -> &str {
        match &self.req.resource_account {
            Some(a) => a,
            None => self.principal_account,
        }
    }
}

/// The values of a context key, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Values<'a> {
    List(&'a [String]),
    One(&'a str),
}

impl<'a> Values<'a> {
    pub(crate) fn is_empty(self) -> bool {
        matches!(self, Values::List([]))
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = &'a str> {
        let (list, one): (&'a [String], Option<&'a str>) = match self {
            Values::List(l) => (l, None),
            Values::One(o) => (&[], Some(o)),
        };
        list.iter().map(String::as_str).chain(one)
    }
}

impl VariableSource for Prepared<'_> {
    fn variable(&self, key: &str) -> Option<&str> {
        self.single(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keys_are_case_insensitive() {
        let r = Request::new(
            "arn:gatehouse:iam::111122223333:user/team/alice",
            "AI:InvokeModel",
            "*",
        )
        .with("aws:SourceIp", "10.0.0.1")
        .with("aws:TagKeys", vec!["a", "b"]);
        let p = Prepared::new(&r);
        assert_eq!(p.single("AWS:SOURCEIP"), Some("10.0.0.1"));
        assert_eq!(p.single("aws:TagKeys"), None);
        assert_eq!(p.values("aws:tagkeys").map(<[String]>::len), Some(2));
        assert_eq!(&*p.action_lc, "ai:invokemodel");
        assert_eq!(p.service_lc(), "ai");
        assert_eq!(p.single("aws:username"), Some("alice"));
        assert_eq!(p.single("aws:PrincipalAccount"), Some("111122223333"));
        assert_eq!(
            p.single("aws:PrincipalArn"),
            Some("arn:gatehouse:iam::111122223333:user/team/alice")
        );
    }

    #[test]
    fn session_principals_derive_their_role() {
        let r = Request::new(
            "arn:gatehouse:sts::111122223333:assumed-role/ops/build-42",
            "ai:InvokeModel",
            "*",
        );
        let p = Prepared::new(&r);
        assert_eq!(
            p.role_arn(),
            Some("arn:gatehouse:iam::111122223333:role/ops")
        );
        assert_eq!(
            p.single("aws:PrincipalArn"),
            Some("arn:gatehouse:iam::111122223333:role/ops")
        );
        assert_eq!(p.single("aws:username"), None);
    }

    #[test]
    fn context_json_shapes() {
        let r: Result<Request, _> = serde_json::from_str(
            r#"{"principal":"p","action":"a:b","resource":"*","context":{"k":"v","n":5,"b":true,"l":["x","y"]}}"#,
        );
        let r = r.ok();
        let r = r.as_ref();
        assert_eq!(
            r.and_then(|r| r.context.get("N")),
            Some(&ContextValue::One("5".into()))
        );
        assert_eq!(
            r.and_then(|r| r.context.get("b")),
            Some(&ContextValue::One("true".into()))
        );
        let bad: Result<Request, _> = serde_json::from_str(
            r#"{"principal":"p","action":"a","resource":"*","context":{"k":{"x":1}}}"#,
        );
        assert!(bad.is_err());
        let unknown: Result<Request, _> =
            serde_json::from_str(r#"{"principal":"p","action":"a","resource":"*","bogus":1}"#);
        assert!(unknown.is_err());
    }
}
