//! The search entries of a record: the `(field, term)` pairs under which IVRE's searches
//! find it (`lookup`'s queries), terms built by [`keys`]. A host: its address, AS, host
//! names, MAC addresses and `ssl-cert` digests; a passive record: its address and AS, a
//! DNS answer's name and target, a MAC address, a server certificate's digests.

use super::keys::{self, CertHash, Field};
use crate::ivre::{Certificate, HostSummary, PassiveSummary, Summary};

/// A record's entries (unsorted, possibly repeated), appended to `entries`. `passive_asn`
/// is the AS of a passive record's address (the snapshot's own MaxMind data).
pub fn record_entries(
    summary: &Summary,
    passive_asn: Option<u32>,
    entries: &mut Vec<(Field, Vec<u8>)>,
) {
    match summary {
        Summary::Host(h) => host_entries(h, entries),
        Summary::Passive(p) => passive_entries(p, passive_asn, entries),
    }
}

fn cert_entries(cert: &Certificate, entries: &mut Vec<(Field, Vec<u8>)>) {
    for hex in [&cert.md5, &cert.sha1, &cert.sha256].into_iter().flatten() {
        let Some(hash) = CertHash::from_hex(hex) else {
            continue;
        };
        let field = match hash {
            CertHash::Md5(_) => Field::Md5,
            CertHash::Sha1(_) => Field::Sha1,
            CertHash::Sha256(_) => Field::Sha256,
        };
        entries.push((field, hash.bytes().to_vec()));
    }
}

pub fn host_entries(h: &HostSummary, entries: &mut Vec<(Field, Vec<u8>)>) {
    entries.push((Field::Host, keys::ip_bytes(h.addr).to_vec()));
    if let Some(n) = h.as_num {
        entries.push((Field::Asn, keys::asn_term(n).to_vec()));
    }
    for hostname in &h.hostnames {
        if let Some(name) = keys::reversed_name(&hostname.name) {
            entries.push((Field::Domain, name));
        }
    }
    for mac in &h.macs {
        if let Some(mac) = keys::parse_mac(mac) {
            entries.push((Field::Mac, mac.to_vec()));
        }
    }
    // IVRE's searchcert looks at `ssl-cert` scripts only (not `ssl-cacert`).
    for cert in h.certs.iter().filter(|c| !c.cacert) {
        cert_entries(cert, entries);
    }
}

pub fn passive_entries(p: &PassiveSummary, asn: Option<u32>, entries: &mut Vec<(Field, Vec<u8>)>) {
    if let Some(addr) = p.addr {
        entries.push((Field::Host, keys::ip_bytes(addr).to_vec()));
        if let Some(n) = asn {
            entries.push((Field::Asn, keys::asn_term(n).to_vec()));
        }
    }
    match p.recontype.as_str() {
        "DNS_ANSWER" => {
            if let Some(name) = keys::reversed_name(&p.value) {
                entries.push((Field::DnsName, name));
            }
            if let Some(name) = p.targetval.as_deref().and_then(keys::reversed_name) {
                entries.push((Field::DnsTarget, name));
            }
        }
        "MAC_ADDRESS" => {
            if let Some(mac) = keys::parse_mac(&p.value) {
                entries.push((Field::Mac, mac.to_vec()));
            }
        }
        _ => {}
    }
    if p.is_server_cert() {
        if let Some(cert) = &p.cert {
            cert_entries(cert, entries);
        }
    }
}
