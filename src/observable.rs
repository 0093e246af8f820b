//! Observables as the CLI takes them: `TYPE:VALUE`, TYPE being one of the connector's
//! scopes, or a bare value whose type is detected.

use crate::index::keys::{self, CertHash};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The connector's scopes, as OpenCTI names the observable types.
pub const SCOPES: [&str; 6] = [
    "ipv4-addr",
    "ipv6-addr",
    "domain-name",
    "mac-addr",
    "autonomous-system",
    "x509-certificate",
];

/// A parsed observable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observable {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// Lower-case, without a trailing dot.
    Domain(String),
    Mac([u8; 6]),
    Asn(u32),
    Cert(CertHash),
}

/// Why a value is not an observable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObservableError {
    #[error("unknown observable type `{0}` (expected one of: {scopes})", scopes = SCOPES.join(", "))]
    UnknownType(String),
    #[error("`{value}` is not a valid {kind}: {reason}")]
    Invalid {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("cannot tell the type of `{0}`: write it as TYPE:VALUE")]
    Undetected(String),
}

fn invalid(kind: &'static str, value: &str, reason: &'static str) -> ObservableError {
    ObservableError::Invalid {
        kind,
        value: value.to_owned(),
        reason,
    }
}

impl Observable {
    /// Parses `TYPE:VALUE`, or detects the type of a bare value.
    pub fn parse(input: &str) -> Result<Observable, ObservableError> {
        let input = input.trim();
        let typed = input.split_once(':');
        if let Some((ty, value)) = typed {
            if SCOPES.contains(&ty) {
                return Observable::parse_typed(ty, value);
            }
        }
        Observable::detect(input).map_err(|e| match typed {
            Some((ty, _))
                if !ty.is_empty() && ty.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') =>
            {
                ObservableError::UnknownType(ty.to_owned())
            }
            _ => e,
        })
    }

    /// Parses a value of a known type (an OpenCTI scope name).
    pub fn parse_typed(ty: &str, value: &str) -> Result<Observable, ObservableError> {
        let value = value.trim();
        match ty {
            "ipv4-addr" => value
                .parse::<Ipv4Addr>()
                .map(Observable::Ipv4)
                .map_err(|_| invalid(ty_name(ty), value, "expected an IPv4 address such as 192.0.2.10")),
            "ipv6-addr" => match value.parse::<Ipv6Addr>() {
                Ok(v6) => Ok(Observable::Ipv6(v6)),
                Err(_) => Err(invalid(ty_name(ty), value, "expected an IPv6 address such as 2001:db8::53")),
            },
            "domain-name" => parse_domain(value).map(Observable::Domain),
            "mac-addr" => keys::parse_mac(value)
                .map(Observable::Mac)
                .ok_or_else(|| invalid("mac-addr", value, "expected six hex bytes separated by `:` or `-`")),
            "autonomous-system" => parse_asn(value)
                .map(Observable::Asn)
                .ok_or_else(|| invalid("autonomous-system", value, "expected an AS number such as 64497 or AS64497")),
            "x509-certificate" => parse_cert(value)
                .map(Observable::Cert)
                .ok_or_else(|| invalid("x509-certificate", value, "expected sha256:HEX, sha1:HEX, md5:HEX or a bare hex digest of 32, 40 or 64 digits")),
            other => Err(ObservableError::UnknownType(other.to_owned())),
        }
    }

    fn detect(value: &str) -> Result<Observable, ObservableError> {
        if let Ok(ip) = value.parse::<IpAddr>() {
            return Ok(match ip {
                IpAddr::V4(v4) => Observable::Ipv4(v4),
                IpAddr::V6(v6) => Observable::Ipv6(v6),
            });
        }
        if let Some(mac) = keys::parse_mac(value) {
            return Ok(Observable::Mac(mac));
        }
        if let Some(asn) = parse_asn(value) {
            return Ok(Observable::Asn(asn));
        }
        if let Some(hash) = parse_cert(value) {
            return Ok(Observable::Cert(hash));
        }
        if value.contains('.') {
            return parse_domain(value).map(Observable::Domain);
        }
        Err(ObservableError::Undetected(value.to_owned()))
    }

    /// The scope name of this observable's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Observable::Ipv4(_) => "ipv4-addr",
            Observable::Ipv6(_) => "ipv6-addr",
            Observable::Domain(_) => "domain-name",
            Observable::Mac(_) => "mac-addr",
            Observable::Asn(_) => "autonomous-system",
            Observable::Cert(_) => "x509-certificate",
        }
    }

    /// The normalized value (`sha256:HEX` for certificates).
    pub fn value(&self) -> String {
        match self {
            Observable::Ipv4(ip) => ip.to_string(),
            Observable::Ipv6(ip) => ip.to_string(),
            Observable::Domain(d) => d.clone(),
            Observable::Mac(m) => keys::format_mac(m),
            Observable::Asn(n) => n.to_string(),
            Observable::Cert(h) => format!("{}:{}", h.algorithm(), hex::encode(h.bytes())),
        }
    }

    /// The address, for IP observables.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Observable::Ipv4(ip) => Some(IpAddr::V4(*ip)),
            Observable::Ipv6(ip) => Some(IpAddr::V6(*ip)),
            _ => None,
        }
    }
}

impl fmt::Display for Observable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.type_name(), self.value())
    }
}

fn ty_name(ty: &str) -> &'static str {
    SCOPES
        .iter()
        .find(|s| **s == ty)
        .copied()
        .unwrap_or("observable")
}

/// `64497` or `AS64497` (any case).
fn parse_asn(value: &str) -> Option<u32> {
    let digits = value
        .strip_prefix("AS")
        .or_else(|| value.strip_prefix("as"))
        .or_else(|| value.strip_prefix("As"))
        .or_else(|| value.strip_prefix("aS"))
        .unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok()
}

/// `sha256:HEX`, `sha1:HEX`, `md5:HEX` or bare hex of a matching length.
fn parse_cert(value: &str) -> Option<CertHash> {
    let (algo, hex_str) = match value.split_once(':') {
        Some((algo, hex_str)) => (Some(algo.to_ascii_lowercase().replace('-', "")), hex_str),
        None => (None, value),
    };
    let hash = CertHash::from_hex(hex_str)?;
    match algo.as_deref() {
        None => Some(hash),
        Some(a) if a == hash.algorithm() => Some(hash),
        Some(_) => None,
    }
}

/// Lower-cases and drops a trailing dot, as the Python connector does; rejects what
/// cannot be a DNS name.
fn parse_domain(value: &str) -> Result<String, ObservableError> {
    let name = value.trim().trim_end_matches('.').to_lowercase();
    if name.is_empty() {
        return Err(invalid("domain-name", value, "empty name"));
    }
    if name.len() > 253 {
        return Err(invalid("domain-name", value, "longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(invalid("domain-name", value, "empty label"));
        }
        if label.len() > 63 {
            return Err(invalid(
                "domain-name",
                value,
                "label longer than 63 characters",
            ));
        }
        let ok = label
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '*');
        if !ok {
            return Err(invalid(
                "domain-name",
                value,
                "only letters, digits, `-` and `_` are allowed in labels",
            ));
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(input: &str) -> String {
        Observable::parse(input).unwrap().to_string()
    }

    #[test]
    fn typed_and_detected_forms() {
        assert_eq!(s("ipv4-addr:192.0.2.10"), "ipv4-addr:192.0.2.10");
        assert_eq!(s("192.0.2.10"), "ipv4-addr:192.0.2.10");
        assert_eq!(s("2001:db8::53"), "ipv6-addr:2001:db8::53");
        assert_eq!(s("ipv6-addr:2001:DB8::53"), "ipv6-addr:2001:db8::53");
        assert_eq!(
            s("domain-name:WWW.Example.COM."),
            "domain-name:www.example.com"
        );
        assert_eq!(s("www.example.com"), "domain-name:www.example.com");
        assert_eq!(
            s("mac-addr:00-1B-21-3A-4F-5C"),
            "mac-addr:00:1b:21:3a:4f:5c"
        );
        assert_eq!(s("00:1B:21:3A:4F:5C"), "mac-addr:00:1b:21:3a:4f:5c");
        assert_eq!(s("autonomous-system:AS64497"), "autonomous-system:64497");
        assert_eq!(s("AS64497"), "autonomous-system:64497");
        assert_eq!(s("64497"), "autonomous-system:64497");
        let sha256 = "fcf2200c62f5e3ff8dcf0c7581f41ececa21ced836cf0e2930e4662c66f59277";
        assert_eq!(
            s(&format!("x509-certificate:{sha256}")),
            format!("x509-certificate:sha256:{sha256}")
        );
        assert_eq!(
            s(&format!("sha256:{}", sha256.to_uppercase())),
            format!("x509-certificate:sha256:{sha256}")
        );
        assert_eq!(
            s("md5:7f91d7ef022276698aa7d233c1ad820f"),
            "x509-certificate:md5:7f91d7ef022276698aa7d233c1ad820f"
        );
    }

    #[test]
    fn bad_values_say_why() {
        for bad in [
            "ipv4-addr:2001:db8::1",
            "ipv4-addr:192.0.2.0/24",
            "mac-addr:00:1b",
            "autonomous-system:ASX",
            "autonomous-system:99999999999",
            "x509-certificate:sha1:abcd",
            "x509-certificate:md5:fcf2200c62f5e3ff8dcf0c7581f41ececa21ced836cf0e2930e4662c66f59277",
            "domain-name:a..b",
            "domain-name:{\"$ne\": 1}",
            "url:http://x",
            "nothing",
        ] {
            let err = Observable::parse(bad).unwrap_err().to_string();
            assert!(!err.is_empty(), "{bad}");
        }
        assert_eq!(
            Observable::parse("url:http://x").unwrap_err(),
            ObservableError::UnknownType("url".into())
        );
    }
}
