//! Where a wasm plugin may send HTTP requests: the hosts its admin listed, and never an
//! address inside the host's own networks unless the admin said so.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// One entry of a plugin's allowed hosts: a host name or IP literal, and optionally the
/// one port it may be reached on (`api.example.org`, `api.example.org:8443`, `[::1]:80`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// Lower case, without a trailing dot or IPv6 brackets.
    host: String,
    port: Option<u16>,
}

/// An allowed-hosts entry that is not a host with an optional port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "allowed HTTP host {entry:?} is not valid: {reason} (expected a host name or IP address, optionally with :port)"
)]
pub struct InvalidAllowedHost {
    pub entry: String,
    pub reason: &'static str,
}

impl FromStr for AllowedHost {
    type Err = InvalidAllowedHost;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidAllowedHost { entry: entry.to_owned(), reason };
        if entry.contains(['/', '@', '?', '#']) {
            return Err(invalid("a URL or user name is not a host"));
        }
        let authority = http::uri::Authority::from_str(entry).map_err(|_| invalid("not a host[:port]"))?;
        let host = normalize_host(authority.host());
        let is_name = host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
        if host.parse::<IpAddr>().is_err() && !is_name {
            return Err(invalid("the host has characters a host name cannot have"));
        }
        let port_missing = authority.port_u16().is_none() && !authority.as_str().ends_with(']');
        if authority.port_u16() == Some(0) || (authority.as_str().contains(':') && port_missing) {
            return Err(invalid("the port is not a number from 1 to 65535"));
        }
        Ok(Self { host, port: authority.port_u16() })
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match self.port {
            Some(port) => write!(f, "{host}:{port}"),
            None => f.write_str(&host),
        }
    }
}

/// A request's host as compared with the list: lower case, no trailing dot, no brackets.
pub(super) fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

/// What one wasm plugin may reach over `wasi:http`. The default reaches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpPolicy {
    allowed_hosts: Vec<AllowedHost>,
    internal_addresses: bool,
}

impl HttpPolicy {
    /// Requests to these hosts only, and only where they resolve to public addresses.
    pub fn allow(allowed_hosts: Vec<AllowedHost>) -> Self {
        Self { allowed_hosts, internal_addresses: false }
    }

    /// Also lets the allowed hosts resolve to loopback, private, link-local and other
    /// non-public addresses: for a service on the admin's own network.
    pub fn with_internal_addresses(mut self, allowed: bool) -> Self {
        self.internal_addresses = allowed;
        self
    }

    pub fn allowed_hosts(&self) -> &[AllowedHost] {
        &self.allowed_hosts
    }

    pub fn allows_internal_addresses(&self) -> bool {
        self.internal_addresses
    }

    /// Whether a request to `host` (normalized) on `port` is listed.
    pub fn permits_host(&self, host: &str, port: u16) -> bool {
        self.allowed_hosts.iter().any(|allowed| allowed.host == host && allowed.port.is_none_or(|only| only == port))
    }

    /// Whether a connection to `address`, which a permitted host resolved to, may be made.
    pub fn permits_address(&self, address: IpAddr) -> bool {
        self.internal_addresses || !is_internal(address)
    }
}

/// Whether `address` is not a public internet address: loopback, private, link-local,
/// shared (carrier-grade NAT), unspecified, broadcast, multicast, reserved, or an IPv6 form
/// of one of these (mapped, NAT64).
pub fn is_internal(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(address: Ipv4Addr) -> bool {
    let [first, second, third, _] = address.octets();
    address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || address.is_documentation()
        || first == 0
        || (first == 100 && (64..128).contains(&second))
        || (first == 192 && second == 0 && third == 0)
        || (first == 198 && (18..20).contains(&second))
        || first >= 240
}

fn is_internal_v6(address: Ipv6Addr) -> bool {
    if let Some(v4) = address.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    let segments = address.segments();
    let embedded = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible form (::a.b.c.d) carry an
    // IPv4 address in their last 32 bits; 6to4 (2002::/16) in bits 16 to 48.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..6] == [0, 0, 0, 0, 0, 0] {
        return address.is_loopback() || address.is_unspecified() || is_internal_v4(embedded(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return is_internal_v4(embedded(segments[1], segments[2]));
    }
    // The local-use NAT64 prefix, 64:ff9b:1::/48, translates into the operator's network.
    if segments[..3] == [0x64, 0xff9b, 1] {
        return true;
    }
    address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        || address.is_unique_local()
        || address.is_unicast_link_local()
        || (segments[0] & 0xffc0) == 0xfec0
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> HttpPolicy {
        HttpPolicy::allow(entries.iter().map(|entry| entry.parse().unwrap()).collect())
    }

    #[test]
    fn entries_parse_to_a_host_and_an_optional_port() {
        let entry: AllowedHost = "API.Example.org.:8443".parse().unwrap();
        assert_eq!(entry.to_string(), "api.example.org:8443");
        assert_eq!("[::1]:80".parse::<AllowedHost>().unwrap().to_string(), "[::1]:80");
        assert_eq!("127.0.0.1".parse::<AllowedHost>().unwrap().to_string(), "127.0.0.1");
    }

    #[test]
    fn entries_that_are_not_hosts_are_refused_with_the_reason() {
        for (entry, reason) in [
            ("https://example.org", "a URL"),
            ("user@example.org", "a URL or user name"),
            ("example.org:http", "the port is not a number"),
            ("example.org:0", "the port is not a number"),
            ("exa mple.org", "not a host[:port]"),
            ("exa_mple.org", "characters"),
            ("", "not a host[:port]"),
        ] {
            let error = entry.parse::<AllowedHost>().unwrap_err();
            assert!(error.to_string().contains(reason), "{entry:?}: {error}");
        }
    }

    #[test]
    fn only_listed_hosts_and_ports_are_permitted() {
        let policy = hosts(&["api.example.org", "covers.example.org:8443"]);
        assert!(policy.permits_host("api.example.org", 443));
        assert!(policy.permits_host("api.example.org", 80));
        assert!(policy.permits_host("covers.example.org", 8443));
        assert!(!policy.permits_host("covers.example.org", 443));
        assert!(!policy.permits_host("example.org", 443));
        assert!(!policy.permits_host("evil-api.example.org", 443));
        assert!(!HttpPolicy::default().permits_host("api.example.org", 443));
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let internal = [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "64:ff9b:1::808:808",
            "::127.0.0.1",
            "::10.0.0.1",
            "2002:a00:1::1",
            "2002:7f00:1::",
        ];
        let policy = hosts(&["example.org"]);
        for address in internal {
            let address: IpAddr = address.parse().unwrap();
            assert!(!policy.permits_address(address), "{address} is internal");
            assert!(policy.clone().with_internal_addresses(true).permits_address(address), "{address} when allowed");
        }
        for public in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(policy.permits_address(public.parse().unwrap()), "{public} is public");
        }
    }
}
