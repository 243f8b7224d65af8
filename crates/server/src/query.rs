//! The AWS Query protocol's request side: form-encoded parameters (body and URL), with
//! AWS's conventions for lists (`Name.member.N`) and maps (`Tags.member.N.Key/Value`).
//!
//! Every accessor that can fail returns an [`ApiError`] in AWS's terms, so a handler reads
//! like the API reference: `p.required("UserName")?`.

use crate::error::ApiError;

/// The parameters of one Query request, in arrival order (body after URL).
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses the URL query string and a form-encoded body.
    pub fn parse(query: &str, body: &[u8]) -> Params {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| !k.starts_with("X-Amz-"))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.extend(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())));
        Params { pairs }
    }

    /// A parameter's value, when present (the last one wins, as AWS does).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `Action` parameter.
    pub fn action(&self) -> Option<&str> {
        self.get("Action")
    }

    /// A required, non-empty parameter.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::validation(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(name)
            ))),
        }
    }

    /// An optional non-negative integer within `min..=max`.
    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::validation(format!(
                "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must have value between {min} and {max}",
                lower_first(name)
            ))),
        }
    }

    /// An optional boolean (`true`/`false`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(ApiError::validation(format!(
                "Value '{v}' at '{}' is not a boolean",
                lower_first(name)
            ))),
        }
    }

    /// A list written as `Name.member.1`, `Name.member.2`, ... in index order.
    pub fn list(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}.member.");
        let mut items: Vec<(u32, &str)> = self
            .pairs
            .iter()
            .filter_map(|(k, v)| {
                let n = k.strip_prefix(&prefix)?.parse::<u32>().ok()?;
                Some((n, v.as_str()))
            })
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v.to_owned()).collect()
    }

    /// A list of structures: `Name.member.N.Field` grouped by N, in index order.
    pub fn structs(&self, name: &str) -> Vec<Vec<(String, String)>> {
        let prefix = format!("{name}.member.");
        let mut by_index: std::collections::BTreeMap<u32, Vec<(String, String)>> =
            std::collections::BTreeMap::new();
        for (k, v) in &self.pairs {
            let Some(rest) = k.strip_prefix(&prefix) else {
                continue;
            };
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(n) = n.parse::<u32>() else {
                continue;
            };
            by_index
                .entry(n)
                .or_default()
                .push((field.to_owned(), v.clone()));
        }
        by_index.into_values().collect()
    }

    /// `Tags.member.N.Key` / `.Value` pairs.
    pub fn tags(&self, name: &str) -> Result<Vec<(String, String)>, ApiError> {
        self.structs(name)
            .into_iter()
            .map(|fields| {
                let get = |f: &str| fields.iter().find(|(k, _)| k == f).map(|(_, v)| v.clone());
                match get("Key") {
                    Some(k) if !k.is_empty() => Ok((k, get("Value").unwrap_or_default())),
                    _ => Err(ApiError::validation("a tag needs a Key")),
                }
            })
            .collect()
    }

    /// `Marker` and `MaxItems` (1..=1000).
    pub fn paging(&self) -> Result<(Option<String>, Option<u32>), ApiError> {
        let max = self.int("MaxItems", 1, 1000)?;
        Ok((
            self.get("Marker").map(str::to_owned),
            max.and_then(|m| u32::try_from(m).ok()),
        ))
    }

    /// Every parameter, for checks that look at names (such as unknown-parameter checks).
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_structs_and_tags() {
        let p = Params::parse(
            "Action=TagUser",
            b"UserName=alice&Tags.member.2.Key=env&Tags.member.2.Value=prod&Tags.member.1.Key=team&Tags.member.1.Value=search&TagKeys.member.2=b&TagKeys.member.1=a",
        );
        assert_eq!(p.action(), Some("TagUser"));
        assert_eq!(p.required("UserName").ok(), Some("alice"));
        assert!(p.required("Path").is_err());
        assert_eq!(p.list("TagKeys"), vec!["a", "b"]);
        assert_eq!(
            p.tags("Tags").ok(),
            Some(vec![
                ("team".to_owned(), "search".to_owned()),
                ("env".to_owned(), "prod".to_owned())
            ])
        );
        let bad = Params::parse("", b"MaxItems=0");
        assert!(bad.paging().is_err());
    }
}
