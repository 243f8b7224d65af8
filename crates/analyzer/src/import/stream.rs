//! Reading an authorization-details export without holding it: the JSON is read from its
//! file as a stream of list elements (`serde`'s visitor interface), each element becomes
//! model entries and is dropped. An export of hundreds of megabytes is never held as text,
//! nor as a JSON tree, nor whole as a model.
//!
//! Two passes, because AWS writes the lists in the order users, groups, roles, managed
//! policies, while a user needs its groups and every principal its managed policies:
//! 1. [`survey`] keeps the managed policies and the groups, and of each user and role only
//!    what the whole export needs to know up front (its account; its dates, whose latest is
//!    the export's "now");
//! 2. [`principals`] reads the users and roles again and hands them on one at a time.

use super::aws::{self, LISTS};
use crate::finding::Finding;
use crate::model::PrincipalType;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

/// What the first pass learns.
#[derive(Debug, Default)]
pub(crate) struct Survey {
    /// The managed policies and groups (groups as read; they are built once the accounts
    /// are known, since labels depend on them).
    pub tables: aws::Tables,
    pub groups: Vec<Value>,
    /// Users and roles.
    pub principals: usize,
    /// The accounts of users, groups and roles.
    pub accounts: BTreeSet<String>,
    /// Their names, to tell which repeat across accounts.
    pub names: aws::Names,
    /// The latest creation or last-use date of any principal.
    pub latest: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Whether any list of principals was present (the file is an export at all).
    pub is_export: bool,
    pub problems: Vec<Finding>,
}

impl Survey {
    fn note(
        &mut self,
        arn: &str,
        created: Option<chrono::DateTime<chrono::FixedOffset>>,
        last_used: Option<chrono::DateTime<chrono::FixedOffset>>,
    ) {
        if let Some(a) = arn.split(':').nth(4).filter(|a| !a.is_empty()) {
            self.accounts.insert(a.to_owned());
        }
        self.latest = self.latest.max(created).max(last_used);
    }
}

/// Which top-level list a key names (keys compare case-insensitively, as the rest of the
/// importer reads them).
fn list_of(key: &str) -> Option<Option<PrincipalType>> {
    if key.eq_ignore_ascii_case("Policies") {
        return Some(None);
    }
    LISTS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, kind)| Some(*kind))
}

/// The first pass over a whole export.
pub(crate) fn survey<'de, D: Deserializer<'de>>(file: &str, de: D) -> Result<Survey, D::Error> {
    let mut s = Survey::default();
    de.deserialize_any(TopLevel {
        on_list: &mut |list: Option<PrincipalType>, seq: &mut dyn ElementSource<'de>| {
            survey_list(file, &mut s, list, seq)
        },
    })?;
    Ok(s)
}

fn survey_list<'de>(
    file: &str,
    s: &mut Survey,
    list: Option<PrincipalType>,
    seq: &mut dyn ElementSource<'de>,
) -> Result<(), String> {
    match list {
        None => {
            let mut i = 0;
            while let Some(v) = seq.next_value()? {
                if let Some(m) = aws::managed_policy(file, i, &v, &mut s.problems) {
                    s.tables.add_managed(m);
                }
                i += 1;
            }
        }
        Some(PrincipalType::Group) => {
            s.is_export = true;
            while let Some(v) = seq.next_value()? {
                let arn = super::get(&v, "Arn").and_then(Value::as_str).unwrap_or("");
                let name = super::get(&v, aws::name_key(PrincipalType::Group))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                s.names.note(PrincipalType::Group, name, arn);
                s.note(arn, aws::time_of(&v, "CreateDate"), None);
                s.groups.push(v);
            }
        }
        Some(kind) => {
            s.is_export = true;
            while let Some(b) = seq.next_brief()? {
                s.names.note(kind, &b.name, &b.arn);
                s.note(&b.arn, b.created, b.last_used);
                s.principals += 1;
            }
        }
    }
    Ok(())
}

/// The second pass: calls `each(kind, index, element)` on every user and role, in file order.
pub(crate) fn principals<'de, D: Deserializer<'de>>(
    de: D,
    each: &mut dyn FnMut(PrincipalType, usize, Value),
) -> Result<(), D::Error> {
    de.deserialize_any(TopLevel {
        on_list: &mut |list: Option<PrincipalType>, seq: &mut dyn ElementSource<'de>| {
            if let Some(kind @ (PrincipalType::User | PrincipalType::Role)) = list {
                let mut i = 0;
                while let Some(v) = seq.next_value()? {
                    each(kind, i, v);
                    i += 1;
                }
            }
            Ok(())
        },
    })
}

/// What the first pass keeps of a user or role.
#[derive(Debug, Default)]
struct Brief {
    name: String,
    arn: String,
    created: Option<chrono::DateTime<chrono::FixedOffset>>,
    last_used: Option<chrono::DateTime<chrono::FixedOffset>>,
}

/// The elements of one list, as whole values or as briefs.
trait ElementSource<'de> {
    fn next_value(&mut self) -> Result<Option<Value>, String>;
    fn next_brief(&mut self) -> Result<Option<Brief>, String>;
    /// Skips every element left (when the caller did not want this list).
    fn skip_rest(&mut self) -> Result<(), String>;
}

struct Elements<A>(A);

impl<'de, A: SeqAccess<'de>> ElementSource<'de> for Elements<A> {
    fn next_value(&mut self) -> Result<Option<Value>, String> {
        self.0.next_element().map_err(|e| e.to_string())
    }

    fn next_brief(&mut self) -> Result<Option<Brief>, String> {
        self.0
            .next_element_seed(BriefSeed)
            .map_err(|e| e.to_string())
    }

    fn skip_rest(&mut self) -> Result<(), String> {
        while self
            .0
            .next_element::<IgnoredAny>()
            .map_err(|e| e.to_string())?
            .is_some()
        {}
        Ok(())
    }
}

type OnList<'a, 'de> =
    &'a mut dyn FnMut(Option<PrincipalType>, &mut dyn ElementSource<'de>) -> Result<(), String>;

/// The top-level object: lists go to `on_list`, everything else is skipped unread.
struct TopLevel<'a, 'de> {
    on_list: OnList<'a, 'de>,
}

impl<'de> Visitor<'de> for TopLevel<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match list_of(&key) {
                Some(list) => map.next_value_seed(ListSeed {
                    list,
                    on_list: &mut *self.on_list,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ListSeed<'a, 'de> {
    list: Option<PrincipalType>,
    on_list: OnList<'a, 'de>,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let mut elements = Elements(seq);
        (self.on_list)(self.list, &mut elements).map_err(serde::de::Error::custom)?;
        elements.skip_rest().map_err(serde::de::Error::custom)
    }

    // Anything but a list (`null`, a string) holds no elements: skipped like the importer
    // skips a list key that is not a list.
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
}

struct BriefSeed;

impl<'de> DeserializeSeed<'de> for BriefSeed {
    type Value = Brief;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Brief, D::Error> {
        de.deserialize_any(BriefVisitor)
    }
}

struct BriefVisitor;

impl<'de> Visitor<'de> for BriefVisitor {
    type Value = Brief;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a user, group or role")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Brief, M::Error> {
        let mut b = Brief::default();
        while let Some(key) = map.next_key::<String>()? {
            if ["UserName", "RoleName", "GroupName"]
                .iter()
                .any(|k| key.eq_ignore_ascii_case(k))
            {
                b.name = map.next_value::<Option<String>>()?.unwrap_or_default();
            } else if key.eq_ignore_ascii_case("Arn") {
                b.arn = map.next_value::<Option<String>>()?.unwrap_or_default();
            } else if key.eq_ignore_ascii_case("CreateDate") {
                b.created = date(map.next_value::<Value>()?);
            } else if key.eq_ignore_ascii_case("RoleLastUsed") {
                let v = map.next_value::<Value>()?;
                b.last_used = super::get(&v, "LastUsedDate").cloned().and_then(date);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(b)
    }

    // An element that is not an object names nobody (the importer skips it too).
    fn visit_unit<E: serde::de::Error>(self) -> Result<Brief, E> {
        Ok(Brief::default())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Brief, E> {
        Ok(Brief::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Brief, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Brief::default())
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Brief, E> {
        Ok(Brief::default())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Brief, E> {
        Ok(Brief::default())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Brief, E> {
        Ok(Brief::default())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Brief, E> {
        Ok(Brief::default())
    }
}

fn date(v: Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    aws::parse_time(v.as_str()?)
}
