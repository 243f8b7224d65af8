//! What the fuzz targets share: how one input is cut into the fields of a request, and the
//! fixed clock every target runs at (so that seeds signed for that instant stay valid).

use chrono::{DateTime, Utc};

/// The instant every target verifies at: 2026-01-15T12:00:00Z. Seeds are signed (SigV4),
/// issued (session tokens) or minted (JWTs) to be valid then.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_768_478_400, 0).unwrap_or_default()
}

/// Cuts `data` at NUL bytes into exactly `N` fields (NUL never appears in the text of an
/// HTTP request line, a header or a form body, so seeds are written `A \0 B \0 C`). Missing
/// fields are empty; the last field keeps any further NULs.
pub fn fields<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out = [&data[..0]; N];
    let mut rest = data;
    for (i, slot) in out.iter_mut().enumerate() {
        if i + 1 == N {
            *slot = rest;
            break;
        }
        match rest.iter().position(|b| *b == 0) {
            Some(p) => {
                *slot = &rest[..p];
                rest = &rest[p + 1..];
            }
            None => {
                *slot = rest;
                rest = &rest[rest.len()..];
            }
        }
    }
    out
}

/// Text as a server would receive it after its HTTP layer accepted the bytes.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `name: value` lines (the form headers take in a seed), in order, repeats kept.
pub fn header_lines(bytes: &[u8]) -> Vec<(String, String)> {
    text(bytes)
        .split('\n')
        .filter_map(|line| {
            let (k, v) = line.split_once(':')?;
            Some((
                k.trim().to_owned(),
                v.trim_start().trim_end_matches('\r').to_owned(),
            ))
        })
        .collect()
}
