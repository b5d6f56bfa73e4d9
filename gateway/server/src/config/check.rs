//! Checks shared by several sections of the configuration (redirect URIs, loopback hosts, CIDRs,
//! dates, MIE labels, `acr` and `amr` values): they depend on nothing else of the gateway, so a
//! feature's section can use them without reaching into another feature.
use std::net::IpAddr;

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`); in configuration, a string
/// (a bare address is one host).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX` (or a bare address: one host). The address must have no bits set
    /// beyond the prefix, so that what is written is what is matched.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0..={max}"))?,
            None => max,
        };
        let c = Cidr { addr, prefix };
        if !c.contains(addr) || c.masked(addr) != bits(addr) {
            return Err(format!("{s:?} has host bits set beyond /{prefix}"));
        }
        Ok(c)
    }

    fn masked(&self, ip: IpAddr) -> u128 {
        let width = if ip.is_ipv4() { 32 } else { 128 };
        let shift = width - u32::from(self.prefix);
        if shift >= 128 { 0 } else { (bits(ip) >> shift) << shift }
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        ip.is_ipv4() == self.addr.is_ipv4() && self.masked(ip) == self.masked(self.addr)
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(s: String) -> Result<Cidr, String> {
        Cidr::parse(&s)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == host { write!(f, "{}", self.addr) } else { write!(f, "{}/{}", self.addr, self.prefix) }
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// `YYYY-MM-DD` as a date.
pub fn parse_date(s: &str) -> Option<time::Date> {
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

/// The MIE labels `login.amr` may name.
pub const MIE_LABELS: [&str; 7] = ["cps", "cpe", "fido2", "cps_via_psc", "ecps", "password_totp", "sponsorship"];

/// RFC 8176 §2: `amr` values are case-sensitive strings; the registered ones and those PSC's
/// FI-tiers guides use are short tokens of letters, digits, `_`, `-` and `.`.
pub fn is_amr_token(v: &str) -> bool {
    (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Other schemes' `acr` values → the Vigie `acr` (`urn:vigie:loa:…`) that meets each.
pub type AcrValuesMap = std::collections::BTreeMap<String, String>;

/// What is wrong with an `acr_values_map`, as (key under the map, message).
pub fn acr_values_map_problems(map: &AcrValuesMap) -> Vec<(String, String)> {
    let known: Vec<&str> = vigie_core::AssuranceLevel::ALL.iter().map(|l| l.acr()).collect();
    let mut out = Vec::new();
    for (value, acr) in map {
        // OIDC Core §3.1.2.1: acr_values is a space-separated list, so a value has no space.
        if value.is_empty() || value.len() > 256 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            out.push((value.clone(), "expected an acr value: 1 to 256 printable ASCII characters, no space".into()));
        } else if known.contains(&value.as_str()) {
            out.push((value.clone(), "is Vigie's own acr, which needs no mapping".into()));
        }
        if vigie_core::AssuranceLevel::from_acr(acr).is_none() {
            out.push((value.clone(), format!("unknown acr {acr:?}; expected one of {}", known.join(", "))));
        }
    }
    out
}

/// Whether `u` names this machine: a loopback address, or `localhost`.
pub(crate) fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// RFC 6749 §3.1.2: absolute, no fragment; RFC 9700 §2.1: https, or http only on loopback
/// (RFC 8252 §7.3); private-use schemes for native apps (RFC 8252 §7.1).
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let u = url::Url::parse(uri).map_err(|e| format!("{uri:?} is not an absolute URI: {e}"))?;
    if u.fragment().is_some() {
        return Err(format!("{uri:?} must not contain a fragment (RFC 6749 §3.1.2)"));
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&u) => Ok(()),
        "http" => Err(format!("{uri:?}: http is allowed only on loopback (RFC 8252 §7.3); use https")),
        s if s.contains('.') => Ok(()),
        s => Err(format!("{uri:?}: scheme {s:?} is neither https nor a reverse-domain private-use scheme")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redirect_uris_follow_rfc_8252_and_9700() {
        assert!(check_redirect_uri("https://dpi.chu.example/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:8765/cb").is_ok());
        assert!(check_redirect_uri("fr.chu.app:/cb").is_ok());
        assert!(check_redirect_uri("http://dpi.chu.example/cb").is_err());
        assert!(check_redirect_uri("https://dpi.chu.example/cb#x").is_err());
        assert!(check_redirect_uri("/relative").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
    }

    #[test]
    fn an_acr_values_map_names_real_acr_values_and_vigies_levels_only() {
        let map = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let problems = |pairs: &[(&str, &str)]| -> Vec<String> {
            acr_values_map_problems(&map(pairs)).into_iter().map(|(k, _)| k).collect()
        };
        assert!(problems(&[("eidas1", "urn:vigie:loa:2fa-phr"), ("eidas2", "urn:vigie:loa:2fa")]).is_empty());
        assert_eq!(problems(&[("eidas1", "urn:vigie:loa:3fa")]), ["eidas1"]);
        assert_eq!(problems(&[("two words", "urn:vigie:loa:2fa")]), ["two words"]);
        assert_eq!(problems(&[("urn:vigie:loa:2fa", "urn:vigie:loa:2fa-phr")]), ["urn:vigie:loa:2fa"]);
        assert_eq!(problems(&[("", "urn:vigie:loa:2fa")]), [""]);
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.9.9.9".parse().unwrap()), "IPv4-mapped IPv6 counts as IPv4");
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("192.168.1.7").unwrap().contains("192.168.1.7".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.1/8").unwrap_err().contains("host bits"));
        assert!(Cidr::parse("10.0.0.0/33").unwrap_err().contains("0..=32"));
        assert!(Cidr::parse("example.org/8").unwrap_err().contains("not an IP"));
    }

    proptest! {
        #[test]
        fn redirect_uri_check_never_panics(s in "\\PC{0,200}") {
            let _ = check_redirect_uri(&s);
        }

        #[test]
        fn cidr_parsing_never_panics(s in "\\PC{0,60}") {
            let _ = Cidr::parse(&s);
        }

        #[test]
        fn an_address_is_in_its_own_host_network(a in proptest::num::u32::ANY, p in 0u8..=32) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(a));
            let net = if p == 0 { 0 } else { (a >> (32 - u32::from(p))) << (32 - u32::from(p)) };
            let c = Cidr::parse(&format!("{}/{p}", std::net::Ipv4Addr::from(net))).unwrap();
            proptest::prop_assert!(c.contains(ip));
        }
    }
}
