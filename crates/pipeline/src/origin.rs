//! Where a request comes from, as policy and audit see it — one rule for every face.
//!
//! The IAM/STS Query API and the AI gateway both call [`Origin::of`], so that
//! `aws:SourceIp`, `aws:SourceVpce` and `aws:SecureTransport`, and the audit record's source
//! address, are decided the same way whichever face a request reaches (the shared request
//! pipeline calls it once per request).
//!
//! **Source address.** The peer's address, unless the peer is a trusted proxy
//! (`[gateway] trusted_proxies`); then the `X-Forwarded-For` header is read. RFC 9110
//! (§5.3) makes several lines of one header a single comma-separated list, so every line
//! is joined, in order, before the list is read from the right: trusted hops are skipped
//! and the first untrusted hop is the client. Hops left of it were written by whoever sent
//! the request to the first trusted proxy and are never believed.
//!
//! `X-Forwarded-For` has no standard grammar; in practice (AWS's load balancers, nginx's
//! `$proxy_add_x_forwarded_for`, HAProxy's `option forwardfor`) a hop is a bare IPv4 or
//! IPv6 address, without port or brackets. Anything else — `unknown`, `1.2.3.4:80`,
//! `[2001:db8::1]:443`, an IPv6 zone id (`fe80::1%eth0`), an empty hop, a header that is not
//! visible ASCII — is unreadable. An unreadable hop reached before the client means the
//! client cannot be known: the source is [`SourceAddress::Unknown`], no `aws:SourceIp` is
//! set (so statements that allow by address do not match, and `NotIpAddress` denials do),
//! and the audit record says the source could not be determined. (RFC 7239's `Forwarded`
//! header, which does carry ports, is a different header and is not read.)
//!
//! IPv4 addresses that reach a dual-stack socket, or a hop, as IPv4-mapped IPv6
//! (`::ffff:10.0.0.1`) are taken as the IPv4 address they are, for trust and for
//! `aws:SourceIp` alike, so `10.0.0.0/8` conditions and proxy lists see them.

use gatehouse_policy::Context;
use http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The client's address as far as it can be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAddress {
    /// The peer, or the rightmost untrusted hop its trusted proxies forwarded.
    Known(IpAddr),
    /// A trusted proxy (`via`) forwarded the request with an `X-Forwarded-For` hop that
    /// cannot be read before the client's: the client is not known.
    Unknown {
        /// The trusted proxy the request came from.
        via: IpAddr,
    },
}

impl SourceAddress {
    /// The address for `aws:SourceIp`, when known.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            SourceAddress::Known(ip) => Some(*ip),
            SourceAddress::Unknown { .. } => None,
        }
    }

    /// The audit record's `source_ip` (`None`: could not be determined).
    pub fn audit_ip(&self) -> Option<String> {
        self.ip().map(|ip| ip.to_string())
    }

    /// The audit record's `source_unknown_via`: the trusted proxy whose forwarded header
    /// could not be read, when that is why the source is unknown.
    pub fn audit_via(&self) -> Option<String> {
        match self {
            SourceAddress::Known(_) => None,
            SourceAddress::Unknown { via } => Some(via.to_string()),
        }
    }
}

/// The source address of a request from `peer` with `headers`, given the trusted proxies.
pub fn source_address(trusted: &[IpNet], peer: IpAddr, headers: &HeaderMap) -> SourceAddress {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return SourceAddress::Known(peer);
    }
    let unknown = SourceAddress::Unknown { via: peer };
    let mut lines = headers.get_all("x-forwarded-for").iter().peekable();
    if lines.peek().is_none() {
        // The proxy's own request (a health check, say): it is the source.
        return SourceAddress::Known(peer);
    }
    // Every line, in order, as one list (RFC 9110 §5.3); a line that is not visible
    // ASCII cannot be read at all.
    let mut joined = String::new();
    for (i, line) in lines.enumerate() {
        let Ok(text) = line.to_str() else {
            return unknown;
        };
        if i > 0 {
            joined.push(',');
        }
        joined.push_str(text);
    }
    let mut leftmost = peer;
    for hop in joined.rsplit(',') {
        match parse_hop(hop) {
            Some(ip) if is_trusted(&ip) => leftmost = ip,
            Some(ip) => return SourceAddress::Known(ip),
            None => return unknown,
        }
    }
    // Every hop is a trusted proxy: the first of them sent the request.
    SourceAddress::Known(leftmost)
}

/// One `X-Forwarded-For` hop: a bare IPv4 or IPv6 address between optional spaces and
/// tabs (RFC 9110's OWS), nothing else.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.trim_matches([' ', '\t'])
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
}

/// A listener's identity as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    /// Name (`aws:SourceVpce`).
    pub name: String,
    /// Whether it speaks TLS (`aws:SecureTransport`).
    pub tls: bool,
}

impl ListenerInfo {
    /// The main `listen` address.
    pub fn main() -> ListenerInfo {
        ListenerInfo {
            name: "default".to_owned(),
            tls: false,
        }
    }
}

/// Everything about where a request came from that policy and audit use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The client's address.
    pub source: SourceAddress,
    /// The listener it came in on (`aws:SourceVpce`, `aws:SecureTransport`).
    pub listener: ListenerInfo,
}

impl Origin {
    /// The origin of a request from `peer` with `headers` on `listener` (`None`: the main
    /// listener), given the trusted proxies.
    pub fn of(
        trusted: &[IpNet],
        peer: SocketAddr,
        headers: &HeaderMap,
        listener: Option<ListenerInfo>,
    ) -> Origin {
        Origin {
            source: source_address(trusted, peer.ip(), headers),
            listener: listener.unwrap_or_else(ListenerInfo::main),
        }
    }

    /// Sets `aws:SourceIp` (only when the source is known), `aws:SourceVpce` and
    /// `aws:SecureTransport`.
    pub fn fill_context(&self, c: &mut Context) {
        if let Some(ip) = self.source.ip() {
            c.insert("aws:SourceIp", ip.to_string());
        }
        c.insert("aws:SourceVpce", self.listener.name.as_str());
        c.insert(
            "aws:SecureTransport",
            if self.listener.tls { "true" } else { "false" },
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(lines: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append("x-forwarded-for", HeaderValue::from_bytes(l).unwrap());
        }
        h
    }

    fn source(trusted: &[&str], peer: &str, lines: &[&[u8]]) -> SourceAddress {
        source_address(&nets(trusted), ip(peer), &headers(lines))
    }

    #[test]
    fn the_header_is_believed_only_from_trusted_proxies() {
        let t = ["10.0.0.0/8"];
        assert_eq!(
            source(&t, "192.0.2.1", &[b"10.9.9.9"]),
            SourceAddress::Known(ip("192.0.2.1"))
        );
        assert_eq!(
            source(&t, "10.0.0.1", &[b"1.1.1.1, 203.0.113.7, 10.0.0.2"]),
            SourceAddress::Known(ip("203.0.113.7"))
        );
        assert_eq!(
            source(&t, "10.0.0.1", &[]),
            SourceAddress::Known(ip("10.0.0.1"))
        );
        // Every hop trusted: the leftmost proxy is the source.
        assert_eq!(
            source(&t, "10.0.0.1", &[b"10.0.0.3, 10.0.0.2"]),
            SourceAddress::Known(ip("10.0.0.3"))
        );
    }

    #[test]
    fn several_lines_are_one_list_read_from_the_right() {
        // A proxy that appends its own line behind the client's forged one.
        let t = ["10.0.0.0/8"];
        assert_eq!(
            source(&t, "10.0.0.1", &[b"203.0.113.7", b"198.51.100.4"]),
            SourceAddress::Known(ip("198.51.100.4"))
        );
        assert_eq!(
            source(
                &t,
                "10.0.0.1",
                &[b"203.0.113.7", b"198.51.100.4, 10.0.0.2", b"10.0.0.3"]
            ),
            SourceAddress::Known(ip("198.51.100.4"))
        );
        // The client's forged lines left of a readable untrusted hop are never read.
        assert_eq!(
            source(&t, "10.0.0.1", &[b"garbage", b"198.51.100.4"]),
            SourceAddress::Known(ip("198.51.100.4"))
        );
    }

    #[test]
    fn unreadable_hops_leave_the_source_unknown() {
        let t = ["10.0.0.0/8"];
        let unknown = SourceAddress::Unknown {
            via: ip("10.0.0.1"),
        };
        for hop in [
            &b"unknown"[..],
            b"1.2.3.4:80",
            b"[2001:db8::1]:443",
            b"[2001:db8::1]",
            b"fe80::1%eth0",
            b"",
            b" ",
            b"_hidden",
            b"010.0.0.1",
            b"1.2.3",
            b"1.2.3.4 5.6.7.8",
        ] {
            assert_eq!(source(&t, "10.0.0.1", &[hop]), unknown, "{hop:?}");
            assert_eq!(
                source(&t, "10.0.0.1", &[b"203.0.113.7", hop]),
                unknown,
                "{hop:?} as its own line"
            );
            let mut list = b"203.0.113.7, ".to_vec();
            list.extend_from_slice(hop);
            list.extend_from_slice(b", 10.0.0.2");
            assert_eq!(
                source(&t, "10.0.0.1", &[&list]),
                unknown,
                "{hop:?} in a list"
            );
        }
        // Not visible ASCII.
        assert_eq!(source(&t, "10.0.0.1", &[b"203.0.113.7\xff"]), unknown);
        // An unreadable hop from an untrusted peer changes nothing.
        assert_eq!(
            source(&t, "192.0.2.1", &[b"unknown"]),
            SourceAddress::Known(ip("192.0.2.1"))
        );
        assert_eq!(unknown.ip(), None);
        assert_eq!(unknown.audit_via().as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        // A trusted IPv6 proxy, IPv6 clients; spaces and tabs around hops are allowed.
        let t = ["2001:db8:ffff::/48"];
        assert_eq!(
            source(
                &t,
                "2001:db8:ffff::1",
                &[b"2001:db8:1::9 ,\t2001:db8:ffff::2"]
            ),
            SourceAddress::Known(ip("2001:db8:1::9"))
        );
        // A peer on a dual-stack socket is its IPv4 address, for trust and for the source.
        let t = ["10.0.0.0/8"];
        assert_eq!(
            source(&t, "::ffff:10.0.0.1", &[b"203.0.113.7"]),
            SourceAddress::Known(ip("203.0.113.7"))
        );
        assert_eq!(
            source(&[], "::ffff:192.0.2.1", &[]),
            SourceAddress::Known(ip("192.0.2.1"))
        );
        // A mapped hop is the IPv4 address: trusted when its IPv4 form is.
        assert_eq!(
            source(&t, "10.0.0.1", &[b"203.0.113.7, ::ffff:10.0.0.2"]),
            SourceAddress::Known(ip("203.0.113.7"))
        );
        assert_eq!(
            source(&t, "10.0.0.1", &[b"::ffff:203.0.113.7"]),
            SourceAddress::Known(ip("203.0.113.7"))
        );
    }

    #[test]
    fn the_context_has_no_source_ip_when_unknown() {
        let origin = Origin {
            source: SourceAddress::Unknown {
                via: ip("10.0.0.1"),
            },
            listener: ListenerInfo {
                name: "private".into(),
                tls: true,
            },
        };
        let mut c = Context::default();
        origin.fill_context(&mut c);
        assert!(c.get("aws:SourceIp").is_none());
        assert_eq!(
            c.get("aws:SecureTransport").map(|v| v.as_slice().to_vec()),
            Some(vec!["true".to_owned()])
        );
        assert_eq!(
            c.get("aws:SourceVpce").map(|v| v.as_slice().to_vec()),
            Some(vec!["private".to_owned()])
        );
    }
}
