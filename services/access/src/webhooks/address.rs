//! Where a webhook may post. A tenant's admin chooses the URL, and the
//! service posts from inside the operator's network: unless the operator
//! lets webhooks reach this machine and private networks
//! (`--webhook-private-addresses`), only public addresses are posted to.
//! A name is resolved by the client's own resolver, which hands it only
//! the public addresses, so the check and the connection see the same
//! address (a name that resolves anew between them cannot slip through).

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a refused name's error says, to be recognised in a failed post.
pub const NO_PUBLIC_ADDRESS: &str = "its name resolves to no public address";

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(a),
        },
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [o0, o1, o2, _] = a.octets();
    !(a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || o0 == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (o0 == 100 && (64..128).contains(&o1))
        // IETF protocol assignments, 192.0.0.0/24.
        || (o0 == 192 && o1 == 0 && o2 == 0)
        // Benchmarking, 198.18.0.0/15.
        || (o0 == 198 && (18..20).contains(&o1))
        // Reserved, 240.0.0.0/4.
        || o0 >= 240)
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let first = a.segments()[0];
    !(a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && a.segments()[1] == 0x0db8)
        // NAT64 and the old IPv4-compatible forms carry an IPv4 address.
        || (first == 0x0064 && a.segments()[1] == 0xff9b)
        || a.segments()[..6].iter().all(|s| *s == 0))
}

/// Why `url` may not be posted to when only public addresses are allowed,
/// judged from the URL alone: a host written as an address that is not
/// public, or `localhost`. A name is judged when it is resolved.
pub fn literal_problem(url: &str) -> Option<&'static str> {
    let parsed = url::Url::parse(url).ok()?;
    let refused = match parsed.host()? {
        url::Host::Ipv4(ip) => !is_public(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => !is_public(IpAddr::V6(ip)),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    refused.then_some(
        "a loopback or private address; the operator allows these with --webhook-private-addresses",
    )
}

/// Resolves names to their public addresses only.
#[derive(Debug)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let public: Vec<_> = found.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(NO_PUBLIC_ADDRESS.into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "127.0.0.1",
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
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }

    #[test]
    fn literal_private_hosts_and_localhost_are_refused_and_names_left_to_resolution() {
        for refused in [
            "http://127.0.0.1:9000/h",
            "https://[::1]/h",
            "https://169.254.169.254/latest",
            "https://10.0.0.5/h",
            "http://localhost:8080/h",
            "https://a.localhost/h",
        ] {
            assert!(literal_problem(refused).is_some(), "{refused}");
        }
        for allowed in ["https://erp.acme.example/h", "https://93.184.216.34/h"] {
            assert_eq!(literal_problem(allowed), None, "{allowed}");
        }
    }

    #[tokio::test]
    async fn the_resolver_hands_out_no_private_address() {
        let refused = PublicOnly
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .map(|e| e.to_string());
        assert_eq!(refused.as_deref(), Some(NO_PUBLIC_ADDRESS));
    }
}
