//! Where the gateway may send a prompt and a provider key.
//!
//! Whoever may change a deployment chooses where the next caller's prompt goes, and with
//! it the sealed provider key. So deployments may not point at the cloud's instance
//! metadata services and other link-local addresses (`169.254.0.0/16`, `fe80::/10`,
//! AWS's `fd00:ec2::254`, Alibaba's `100.100.100.200`, Azure's `168.63.129.16`, the
//! `metadata.google.internal` family of names), at "this host" addresses (`0.0.0.0/8`,
//! `::`), or at Gatehouse's own listeners — unless `[gateway] upstream_allow` lists the
//! address. Checked at registration (the Query actions, the config file, `gatehouse model
//! add`: names are resolved and every address checked) and again at connect time: the
//! gateway's HTTP client resolves names through [`GuardedResolver`], which drops refused
//! addresses (so a name re-pointed after registration — DNS rebinding — reaches none of
//! them), IP literals are checked before each request, and redirects are never followed.
//!
//! Limit: at connect time a name is checked against the refused ranges only, not against
//! Gatehouse's own listen addresses (a resolver does not see the port); and a listener on
//! `0.0.0.0`/`::` is recognised on loopback addresses only, not on the host's other
//! interface addresses.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

/// Refused unless allowed: link-local (instance metadata), the metadata services that
/// live elsewhere, and "this host".
const REFUSED_NETS: &[&str] = &[
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
    "100.100.100.200/32",
    "168.63.129.16/32",
    "0.0.0.0/8",
    "::/128",
];

/// Names of metadata services, refused whatever they resolve to.
const REFUSED_NAMES: &[&str] = &[
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
];

/// The rules, shared by registration checks and the HTTP client's resolver.
#[derive(Debug, Default)]
pub struct UpstreamRules {
    allowed: RwLock<Vec<IpNet>>,
    own: RwLock<Vec<SocketAddr>>,
}

impl UpstreamRules {
    /// Addresses allowed although refused by default (`[gateway] upstream_allow`).
    pub fn set_allowed(&self, nets: Vec<IpNet>) {
        if let Ok(mut a) = self.allowed.write() {
            *a = nets;
        }
    }

    /// An address Gatehouse listens on.
    pub fn add_own(&self, addr: SocketAddr) {
        if let Ok(mut o) = self.own.write() {
            o.push(addr);
        }
    }

    fn is_allowed(&self, ip: IpAddr) -> bool {
        self.allowed
            .read()
            .is_ok_and(|a| a.iter().any(|n| n.contains(&ip)))
    }

    /// Checks one address; with a port, also against Gatehouse's own listeners.
    pub fn check_ip(&self, ip: IpAddr, port: Option<u16>) -> Result<(), String> {
        let ip = ip.to_canonical();
        if self.is_allowed(ip) {
            return Ok(());
        }
        let refused = REFUSED_NETS
            .iter()
            .filter_map(|n| n.parse::<IpNet>().ok())
            .any(|n| n.contains(&ip));
        if refused {
            return Err(format!(
                "{ip} is a link-local, metadata-service or this-host address; list it in [gateway] upstream_allow to use it"
            ));
        }
        if let Some(port) = port {
            let own = self.own.read().map(|o| o.clone()).unwrap_or_default();
            let is_own = own.iter().any(|l| {
                l.port() == port
                    && (l.ip().to_canonical() == ip
                        || l.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified())
                        || l.ip().is_loopback() && ip.is_loopback())
            });
            if is_own {
                return Err(format!(
                    "{ip}:{port} is one of Gatehouse's own listen addresses"
                ));
            }
        }
        Ok(())
    }

    /// Checks a host name by itself (metadata-service names).
    pub fn check_name(&self, host: &str) -> Result<(), String> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if REFUSED_NAMES.contains(&name.as_str()) {
            return Err(format!("{host} is a metadata-service name"));
        }
        Ok(())
    }

    /// Checks a base URL at registration: its host, and every address its name resolves
    /// to now (a name that does not resolve yet is checked when it is connected to).
    pub async fn check_url(&self, base_url: &str) -> Result<(), String> {
        let url = reqwest::Url::parse(base_url).map_err(|e| format!("{base_url}: {e}"))?;
        let port = url.port_or_known_default();
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip), port),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip), port),
            Some(url::Host::Domain(name)) => {
                self.check_name(name)?;
                if let Ok(addrs) = tokio::net::lookup_host((name, port.unwrap_or(80))).await {
                    for a in addrs {
                        self.check_ip(a.ip(), port)
                            .map_err(|e| format!("{name} resolves to {e}"))?;
                    }
                }
                Ok(())
            }
            None => Err(format!("{base_url} has no host")),
        }
    }

    /// Checks the host of a URL about to be requested, when it is an IP literal (names
    /// go through [`GuardedResolver`]).
    pub fn check_literal(&self, url: &reqwest::Url) -> Result<(), String> {
        let port = url.port_or_known_default();
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip), port),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip), port),
            Some(url::Host::Domain(name)) => self.check_name(name),
            None => Err("no host".into()),
        }
    }
}

/// The gateway client's resolver: refused names fail, refused addresses are dropped.
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Arc<UpstreamRules>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let rules = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            rules.check_name(&host).map_err(std::io::Error::other)?;
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| rules.check_ip(a.ip(), None).is_ok())
                .collect();
            if addrs.is_empty() {
                tracing::warn!(host = %host, "upstream name resolves only to refused addresses");
                return Err(std::io::Error::other(format!(
                    "{host} resolves only to refused addresses"
                ))
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn metadata_link_local_and_own_addresses_are_refused_unless_allowed() {
        let r = UpstreamRules::default();
        r.add_own("127.0.0.1:8470".parse().unwrap());
        r.add_own("0.0.0.0:9000".parse().unwrap());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for bad in [
            "169.254.169.254",
            "169.254.1.1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:169.254.169.254",
            "100.100.100.200",
            "168.63.129.16",
            "0.0.0.0",
            "::",
        ] {
            assert!(r.check_ip(ip(bad), Some(80)).is_err(), "{bad}");
        }
        assert!(r.check_ip(ip("127.0.0.1"), Some(8470)).is_err());
        assert!(r.check_ip(ip("127.0.0.2"), Some(9000)).is_err());
        assert!(r.check_ip(ip("127.0.0.1"), Some(8000)).is_ok());
        assert!(r.check_ip(ip("10.0.0.5"), Some(8000)).is_ok());
        assert!(r.check_name("Metadata.Google.Internal.").is_err());
        r.set_allowed(vec!["169.254.10.0/24".parse().unwrap()]);
        assert!(r.check_ip(ip("169.254.10.7"), Some(80)).is_ok());
        assert!(r.check_ip(ip("169.254.169.254"), Some(80)).is_err());
    }
}
