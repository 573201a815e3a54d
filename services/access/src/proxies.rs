//! Which client address a page request came from, when the pages sit behind
//! a reverse proxy: `Forwarded` and `X-Forwarded-For` are believed only from
//! proxies the operator names (`--trusted-proxies`), and then only as far
//! back as the chain stays within them, so a client cannot pick its own
//! address by sending the header itself.

use axum::http::HeaderMap;
use std::net::IpAddr;

/// A block of addresses: `10.0.0.0/8`, `2001:db8::/32` or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address[/prefix]`.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR block"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix must be 0 to {max}"))?,
        };
        Ok(Cidr { network, prefix })
    }

    /// Whether `ip` is inside the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The proxies whose forwarding headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<Cidr>);

/// The address a client counts under in limits: IPv6 per /64 (one
/// subscriber's block, inside which changing address is free), an
/// IPv4-mapped address as IPv4.
pub fn counted(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        },
        v4 => v4,
    }
}

/// Parses a comma-separated list of blocks (empty: none).
pub fn parse_list(text: &str) -> Result<TrustedProxies, String> {
    text.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(Cidr::parse)
        .collect::<Result<_, _>>()
        .map(TrustedProxies)
}

/// The addresses a request passed through, nearest last, from `Forwarded`
/// (RFC 7239) or else `X-Forwarded-For`; unparseable entries end the chain.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(k, _)| k.eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| parse_node(v))
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(parse_node)
        .collect()
}

/// An address as proxies write it: bare, quoted, `[v6]`, with or without a port.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    text.rsplit_once(':')
        .and_then(|(host, _port)| host.parse().ok())
}

/// The client's address: the peer, unless the peer is a trusted proxy; then
/// the nearest address in the forwarding chain that is not one.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_chain(headers).into_iter().rev() {
        match hop {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            // An entry no one can check: stop at the last one that can be.
            None => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_parse_and_contain() {
        let lan = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(lan.contains(ip("10.9.8.7")));
        assert!(lan.contains(ip("::ffff:10.1.1.1")));
        assert!(!lan.contains(ip("11.0.0.1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense").is_err());
        assert_eq!(parse_list(" 127.0.0.1, ::1 ").unwrap().0.len(), 2);
        assert!(parse_list("").unwrap().0.is_empty());
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let proxy = [Cidr::parse("10.0.0.0/8").unwrap()];
        let h = headers(&[("x-forwarded-for", "203.0.113.5, 10.0.0.2")]);
        // Straight from a client: its header is ignored.
        assert_eq!(
            client_address(ip("198.51.100.1"), &h, &proxy),
            ip("198.51.100.1")
        );
        // Through the proxy: the nearest untrusted hop.
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &proxy),
            ip("203.0.113.5")
        );
        // A client that prepends a fake address does not move its own.
        let spoof = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.5")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &spoof, &proxy),
            ip("203.0.113.5")
        );
        // RFC 7239 with quoting, ports and IPv6.
        let f = headers(&[(
            "forwarded",
            r#"for="[2001:db8::7]:4711";proto=https, for=10.0.0.3"#,
        )]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &f, &proxy),
            ip("2001:db8::7")
        );
        // No proxies configured: never believed.
        assert_eq!(client_address(ip("10.0.0.1"), &h, &[]), ip("10.0.0.1"));
        // Garbage stops the walk at the proxy itself.
        let junk = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &junk, &proxy),
            ip("10.0.0.1")
        );
    }
}
