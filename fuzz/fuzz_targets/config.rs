//! The config file (`gatehouse serve --config`): TOML text whose `[gateway]` table is read
//! into the gateway's settings exactly as at start (`GatewaySettings`, unknown fields
//! refused), then checked (`validate`) and used: budgets matched for a caller, and
//! `aws:SourceIp` worked out for peers and the document's own top-level `forwarded_for`
//! string (an `X-Forwarded-For` value). Never a panic; an untrusted peer is always its own
//! source; the source is the peer or one of the header's addresses.
#![no_main]

use gatehouse_server::gateway::GatewaySettings;
use gatehouse_server::gateway::budget::{Subject, applicable};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = toml::from_str::<toml::Table>(text) else {
        return;
    };
    let Some(gateway) = doc.get("gateway").cloned() else {
        return;
    };
    let Ok(settings) = GatewaySettings::deserialize(gateway) else {
        return;
    };
    if settings.validate().is_err() {
        return;
    }
    let groups = vec!["arn:gatehouse:iam::111122223333:group/search".to_owned()];
    for principal in [
        "arn:gatehouse:iam::111122223333:user/ci-bot",
        "arn:gatehouse:sts::111122223333:assumed-role/agent/run-1",
    ] {
        let subject = Subject {
            principal,
            role: principal
                .contains("assumed-role")
                .then_some("arn:gatehouse:iam::111122223333:role/agent"),
            groups: &groups,
            session: None,
        };
        if let Ok(found) = applicable(&settings.budgets, &subject) {
            assert!(found.len() <= settings.budgets.len());
        }
    }
    let xff = doc.get("forwarded_for").and_then(toml::Value::as_str);
    for peer in ["127.0.0.1", "10.0.0.1", "192.0.2.7", "::1", "fd00::1"] {
        let Ok(peer) = peer.parse::<IpAddr>() else {
            continue;
        };
        let source = settings.source_ip(peer, xff);
        let trusted = settings.trusted_proxies.iter().any(|n| n.contains(&peer));
        if !trusted {
            assert_eq!(source, peer, "an untrusted peer chose its own address");
        } else if source != peer {
            let hops: Vec<IpAddr> = xff
                .unwrap_or_default()
                .split(',')
                .filter_map(|h| h.trim().parse().ok())
                .collect();
            assert!(
                hops.contains(&source),
                "{source} is neither the peer nor a hop"
            );
        }
    }
});
