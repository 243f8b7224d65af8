//! The AWS Query request side as the control plane reads it: `QUERY \0 BODY` into
//! `Params::parse` and every accessor a handler uses, and the access key id the pipeline
//! claims from the URL before verifying anything. Never a panic; `get` is the last value;
//! lists come back in index order; a tag always has a key; no `X-Amz-*` parameter of the
//! URL (the presigned signature's own) reaches the handlers.
#![no_main]

use gatehouse_fuzz::{fields, text};
use gatehouse_server::identity::claimed_access_key;
use gatehouse_server::query::Params;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [query, body] = fields::<2>(data);
    let query = text(query);
    let p = Params::parse(&query, body);
    let names: Vec<String> = p.pairs().iter().map(|(k, _)| k.clone()).collect();
    let url_pairs = form_pairs(query.as_bytes());
    for (k, _) in &url_pairs {
        if k.starts_with("X-Amz-") {
            // Such a name may still come from the body, never from the URL alone.
            let from_body = form_pairs(body).iter().filter(|(b, _)| b == k).count();
            let seen = p.pairs().iter().filter(|(n, _)| n == k).count();
            assert_eq!(seen, from_body, "URL parameter {k:?} reached the handlers");
        }
    }
    for name in names.iter().take(64) {
        let last = p
            .pairs()
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        assert_eq!(p.get(name), last);
        let _ = p.required(name);
        let _ = p.int(name, 1, 1000);
        let _ = p.bool(name);
        // `Name.member.N` lists: ask for every prefix the input offers.
        if let Some((list, _)) = name.split_once(".member.") {
            let items = p.list(list);
            assert!(items.len() <= p.pairs().len());
            let structs = p.structs(list);
            assert!(structs.len() <= p.pairs().len());
            if let Ok(tags) = p.tags(list) {
                assert!(tags.iter().all(|(k, _)| !k.is_empty()));
            }
        }
    }
    let _ = p.action();
    let _ = p.paging();
    // The key id claimed by a presigned URL or an Authorization header is what the pipeline
    // fetches a secret for: any bytes, never a panic.
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_bytes(body) {
        headers.insert(http::header::AUTHORIZATION, v);
    }
    let _ = claimed_access_key(&headers, &query);
});

fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
