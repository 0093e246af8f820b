//! The labels the Python connector sets (`docs/opencti-protocol.md` §11.3).

use crate::ivre::{Certificate, PassiveSummary};

pub const TOR_NODE: &str = "Possible TOR Node";
pub const TOR_CERTIFICATE: &str = "Possible TOR Certificate";

/// Passive recontypes of honeypots: whoever hits them is scanning.
const HONEYPOT_RECONTYPES: [&str; 4] = [
    "HTTP_HONEYPOT_REQUEST",
    "DNS_HONEYPOT_QUERY",
    "TCP_HONEYPOT_HIT",
    "UDP_HONEYPOT_HIT",
];

/// `^commonName=www\.[a-z2-7]{8,20}\.(net|com)$`: the names TOR relays put in their
/// certificates.
fn tor_like(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("commonName=www.") else {
        return false;
    };
    let Some(label) = rest
        .strip_suffix(".net")
        .or_else(|| rest.strip_suffix(".com"))
    else {
        return false;
    };
    (8..=20).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// A certificate that is not self-signed and whose issuer and subject both look like
/// TOR's. A certificate without `self_signed` (Nmap's raw shape, or missing) counts as
/// self-signed when its issuer and subject are equal.
pub fn is_tor_certificate(cert: &Certificate) -> bool {
    let (Some(issuer), Some(subject)) = (&cert.issuer_text, &cert.subject_text) else {
        return false;
    };
    let self_signed = cert.self_signed.unwrap_or(issuer == subject);
    !self_signed && tor_like(issuer) && tor_like(subject)
}

/// `Scanner <product>` / `Scanner (unknown)` for scanner and honeypot records.
pub fn scanner_label(record: &PassiveSummary) -> Option<String> {
    if record.service_name.as_deref() == Some("scanner") {
        return Some(format!(
            "Scanner {}",
            record.service_product.as_deref().unwrap_or("(unknown)")
        ));
    }
    HONEYPOT_RECONTYPES
        .contains(&record.recontype.as_str())
        .then(|| "Scanner (unknown)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tor_pattern() {
        assert!(tor_like("commonName=www.q4fbhjkz3xw2.net"));
        assert!(tor_like("commonName=www.abcdefgh.com"));
        assert!(!tor_like("commonName=www.abcdefg.com"), "7 letters");
        assert!(!tor_like("commonName=www.abcdefgh1.com"), "1 is not base32");
        assert!(!tor_like("commonName=www.ABCDEFGH.com"));
        assert!(!tor_like("commonName=www.abcdefgh.org"));
        assert!(!tor_like("countryName=FR/commonName=www.abcdefgh.com"));
        assert!(
            !tor_like("commonName=www.abcdefghijklmnopqrstu.com"),
            "21 letters"
        );
    }
}
