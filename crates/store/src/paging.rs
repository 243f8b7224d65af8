//! Name-ordered paging, shared by every `List*` call of the store: AWS's `PathPrefix`,
//! `Marker` and `MaxItems`, turned into SQL arguments and back into a [`Page`].

use crate::db::Row;
use crate::error::Result;
use crate::model::{
    ListParams, Page, decode_marker, encode_marker, max_items, validate_path_prefix,
};

/// The arguments and `WHERE` tail shared by the name-ordered list calls:
/// `$2` path prefix ('' for none), `$3` marker key ('' for none), `$4` limit + 1.
pub(crate) fn list_args(p: &ListParams) -> Result<(String, String, i64)> {
    let prefix = match &p.path_prefix {
        Some(prefix) => {
            validate_path_prefix(prefix)?;
            prefix.clone()
        }
        None => String::new(),
    };
    let marker = match &p.marker {
        Some(m) => decode_marker(m)?,
        None => String::new(),
    };
    Ok((prefix, marker, max_items(p)?))
}

pub(crate) const PAGE_FILTER: &str = "($2 = '' OR substr(path, 1, length($2)) = $2) \
     AND name_lower > $3 ORDER BY name_lower LIMIT $4";

/// Turns `limit + 1` fetched rows into a page; the marker is the sort key (column
/// `key_col`) of the last returned row.
pub(crate) fn paginate<T>(
    rows: Vec<Row>,
    limit: i64,
    key_col: usize,
    map: impl Fn(&Row) -> Result<T>,
) -> Result<Page<T>> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let truncated = rows.len() > limit;
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut last_key = None;
    for r in rows.iter().take(limit) {
        items.push(map(r)?);
        last_key = Some(r.text(key_col)?);
    }
    let next_marker = match (truncated, last_key) {
        (true, Some(k)) => Some(encode_marker(&k)),
        _ => None,
    };
    Ok(Page { items, next_marker })
}
