//! Fetching user-supplied URLs (resume URLs) without reaching internal services
//! (SSRF), including through DNS rebinding.
//!
//! The client's DNS resolver is the check: a host name is resolved exactly once per
//! connection, every address it yields must be public, and the connection goes to
//! those same addresses (reqwest connects to what its resolver returned; nothing
//! resolves the name a second time). IP literals never reach a resolver, so they are
//! checked before the request. Redirects are not followed and no proxy is used (a
//! proxy would resolve the name itself).
//!
//! Refused: loopback, private (RFC 1918), CGNAT (100.64/10, incl. 100.100.100.200),
//! link-local (incl. the 169.254.169.254 metadata address), unspecified, broadcast,
//! multicast, reserved, benchmark and documentation ranges; for IPv6 everything
//! outside 2000::/3 (ULA fc00::/7 incl. AWS' fd00:ec2::254, link-local, multicast,
//! unspecified, loopback) and, inside it, the IETF protocol block (2001::/23 incl.
//! Teredo), documentation, and 6to4/NAT64/IPv4-mapped/compatible addresses whose
//! embedded IPv4 address is not public.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;

const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// The refusal, found in a request error's source chain by [`is_refusal`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

/// Whether `err` (a reqwest error) was this guard refusing the destination.
pub fn is_refusal(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<Refused>() {
            return true;
        }
        current = e.source();
    }
    false
}

pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                   // "this network", 0.0.0.0
        || a == 10                             // private
        || a == 127                            // loopback
        || (a == 100 && (b & 0xc0) == 64)      // CGNAT 100.64/10
        || (a == 169 && b == 254)              // link-local, cloud metadata
        || (a == 172 && (b & 0xf0) == 16)      // private 172.16/12
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // documentation
        || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast
        || (a == 192 && b == 168)              // private
        || (a == 198 && (b & 0xfe) == 18)      // benchmarking 198.18/15
        || (a == 198 && b == 51 && c == 100)   // documentation
        || (a == 203 && b == 0 && c == 113)    // documentation
        || a >= 224) // multicast 224/4, reserved 240/4, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    let embedded_v4 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    // IPv4-mapped ::ffff:a.b.c.d and the deprecated IPv4-compatible ::a.b.c.d.
    if seg[..5] == [0; 5] && (seg[5] == 0xffff || seg[5] == 0) {
        if seg[5] == 0 && seg[6] == 0 {
            return false; // ::, ::1 and the rest of ::/96's low end
        }
        return is_public_v4(embedded_v4(seg[6], seg[7]));
    }
    // NAT64 well-known prefix 64:ff9b::/96 carries an IPv4 address.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4(seg[6], seg[7]));
    }
    // Only global unicast 2000::/3 is public at all.
    if seg[0] & 0xe000 != 0x2000 {
        return false;
    }
    // 6to4 2002:V4ADDR::/48.
    if seg[0] == 0x2002 {
        return is_public_v4(embedded_v4(seg[1], seg[2]));
    }
    // IETF protocol assignments 2001::/23 (incl. Teredo 2001::/32).
    let ietf = seg[0] == 0x2001 && seg[1] < 0x0200;
    // Documentation 2001:db8::/32 and 3fff::/20 (all of 3fff::/16 refused, to be safe).
    let documentation = (seg[0] == 0x2001 && seg[1] == 0x0db8) || seg[0] == 0x3fff;
    !ietf && !documentation
}

/// How a guarded client resolves names.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    /// Let private addresses through (local development and tests only).
    allow_private: bool,
    /// `OUTBOUND_DNS_SERVER` (tests): ask this DNS server instead of the system resolver.
    dns_server: Option<SocketAddr>,
    /// `OUTBOUND_CONNECT_TO` (tests): a checked address is dialled as another one.
    connect_to: Vec<(IpAddr, IpAddr)>,
}

impl GuardedResolver {
    pub fn from_config(config: &Config, allow_private: bool) -> Self {
        GuardedResolver {
            allow_private,
            dns_server: config.security.outbound_dns_server,
            connect_to: config
                .security
                .outbound_connect_to
                .iter()
                .map(|(from, to)| (from.ip(), to.ip()))
                .collect(),
        }
    }

    fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        if self.allow_private || is_public(ip) {
            Ok(())
        } else {
            Err(Refused(format!(
                "{host} resolves to {ip}, a private, local or reserved address"
            )))
        }
    }

    /// Where to dial a checked address.
    fn dial(&self, ip: IpAddr) -> IpAddr {
        self.connect_to
            .iter()
            .find(|(from, _)| *from == ip)
            .map_or(ip, |(_, to)| *to)
    }

    async fn lookup(
        &self,
        host: &str,
    ) -> Result<Vec<IpAddr>, Box<dyn std::error::Error + Send + Sync>> {
        match self.dns_server {
            Some(server) => dns::lookup(server, host).await.map_err(Into::into),
            None => Ok(tokio::net::lookup_host((host, 0))
                .await?
                .map(|addr| addr.ip())
                .collect()),
        }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let ips = this.lookup(&host).await?;
            if ips.is_empty() {
                return Err(Box::new(Refused(format!("{host} has no address"))) as _);
            }
            // All or nothing: one private answer among public ones is an attack.
            for ip in &ips {
                if let Err(refused) = this.check(&host, *ip) {
                    return Err(Box::new(refused) as _);
                }
            }
            let addrs: Vec<SocketAddr> = ips
                .into_iter()
                .map(|ip| SocketAddr::new(this.dial(ip), 0))
                .collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A client for user-supplied URLs: guarded resolver, no redirects, no proxy.
pub fn client(resolver: GuardedResolver, timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(resolver))
        .build()
}

/// Checks what the resolver never sees: the scheme and IP-literal hosts.
pub fn check_url(resolver: &GuardedResolver, url: &reqwest::Url) -> Result<(), Refused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused("only http and https URLs can be fetched".into()));
    }
    match url.host() {
        None => Err(Refused("the URL has no host".into())),
        Some(url::Host::Ipv4(ip)) => resolver.check(&ip.to_string(), IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => resolver.check(&ip.to_string(), IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => Ok(()),
    }
}

/// A minimal DNS client (A and AAAA over UDP) for `OUTBOUND_DNS_SERVER`: what the
/// tests point the guard at (RFC 1035 §4; AAAA from RFC 3596).
mod dns {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    use super::DNS_TIMEOUT;

    const TYPE_A: u16 = 1;
    const TYPE_AAAA: u16 = 28;

    pub async fn lookup(server: SocketAddr, host: &str) -> std::io::Result<Vec<IpAddr>> {
        let mut out = query(server, host, TYPE_A).await?;
        out.extend(query(server, host, TYPE_AAAA).await?);
        Ok(out)
    }

    fn bad(what: &str) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("DNS: {what}"))
    }

    async fn query(server: SocketAddr, host: &str, qtype: u16) -> std::io::Result<Vec<IpAddr>> {
        let id: u16 = rand::random();
        let mut packet = Vec::with_capacity(64);
        packet.extend_from_slice(&id.to_be_bytes());
        packet.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, 1 question
        for label in host.trim_end_matches('.').split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(bad("invalid host name"));
            }
            packet.push(label.len() as u8);
            packet.extend_from_slice(label.as_bytes());
        }
        packet.push(0);
        packet.extend_from_slice(&qtype.to_be_bytes());
        packet.extend_from_slice(&1u16.to_be_bytes()); // IN

        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().map_err(|_| bad("bind"))?
        } else {
            "[::]:0".parse().map_err(|_| bad("bind"))?
        };
        let socket = tokio::net::UdpSocket::bind(bind).await?;
        socket.connect(server).await?;
        socket.send(&packet).await?;
        let mut buf = [0u8; 1500];
        let n = tokio::time::timeout(DNS_TIMEOUT, socket.recv(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "DNS timed out"))??;
        parse_answers(&buf[..n], id, qtype)
    }

    fn skip_name(msg: &[u8], mut at: usize) -> std::io::Result<usize> {
        loop {
            let len = *msg.get(at).ok_or_else(|| bad("truncated name"))?;
            match len {
                0 => return Ok(at + 1),
                l if l & 0xc0 == 0xc0 => return Ok(at + 2), // compression pointer
                l => at += 1 + l as usize,
            }
        }
    }

    fn u16_at(msg: &[u8], at: usize) -> std::io::Result<u16> {
        msg.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| bad("truncated message"))
    }

    pub fn parse_answers(msg: &[u8], id: u16, qtype: u16) -> std::io::Result<Vec<IpAddr>> {
        if u16_at(msg, 0)? != id {
            return Err(bad("answer to another query"));
        }
        let rcode = u16_at(msg, 2)? & 0x000f;
        if rcode == 3 {
            return Ok(Vec::new()); // NXDOMAIN
        }
        if rcode != 0 {
            return Err(bad("server failure"));
        }
        let questions = u16_at(msg, 4)?;
        let answers = u16_at(msg, 6)?;
        let mut at = 12;
        for _ in 0..questions {
            at = skip_name(msg, at)? + 4;
        }
        let mut out = Vec::new();
        for _ in 0..answers {
            at = skip_name(msg, at)?;
            let rtype = u16_at(msg, at)?;
            let len = u16_at(msg, at + 8)? as usize;
            let data = msg
                .get(at + 10..at + 10 + len)
                .ok_or_else(|| bad("truncated record"))?;
            at += 10 + len;
            match (rtype, data.len()) {
                (TYPE_A, 4) if qtype == TYPE_A => out.push(IpAddr::V4(Ipv4Addr::new(
                    data[0], data[1], data[2], data[3],
                ))),
                (TYPE_AAAA, 16) if qtype == TYPE_AAAA => {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(data);
                    out.push(IpAddr::V6(Ipv6Addr::from(b)))
                }
                _ => {} // CNAME and others: the server follows CNAMEs for us
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "192.0.0.192",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "100::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} must be refused");
        }
        for ip in [
            "8.8.8.8",
            "93.184.215.14",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn ip_literals_and_schemes_are_checked_before_any_lookup() {
        let guard = GuardedResolver {
            allow_private: false,
            dns_server: None,
            connect_to: Vec::new(),
        };
        for url in [
            "http://127.0.0.1/x",
            "http://[::1]:8080/",
            "http://[::ffff:7f00:1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "ftp://example.com/",
            "file:///etc/passwd",
        ] {
            let url = reqwest::Url::parse(url).unwrap();
            assert!(check_url(&guard, &url).is_err(), "{url}");
        }
        let ok = reqwest::Url::parse("https://example.com/cv.txt").unwrap();
        assert!(check_url(&guard, &ok).is_ok());
    }

    #[test]
    fn dns_answers_parse_with_compression() {
        // Answer to id 0x1234: example.com A 93.184.215.14 (name as a pointer to offset 12).
        let mut msg = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        msg.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        msg.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 215, 14]);
        assert_eq!(
            dns::parse_answers(&msg, 0x1234, 1).unwrap(),
            vec!["93.184.215.14".parse::<IpAddr>().unwrap()]
        );
        assert!(dns::parse_answers(&msg, 0x9999, 1).is_err());
        assert!(dns::parse_answers(&msg[..msg.len() - 2], 0x1234, 1).is_err());
    }
}
