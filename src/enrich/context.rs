//! Object creation shared by the purposes: the enriched observable is reused whenever a
//! record names it, so every relationship lands on the platform's object.

use super::{labels, EnrichOptions};
use crate::index::keys::CertHash;
use crate::ivre::Certificate;
use crate::observable::{normalize_domain, Observable};
use crate::stix::{objects, BundleBuilder, Seen};
use std::collections::HashMap;
use std::fmt::Display;
use std::net::IpAddr;

/// One enrichment in progress.
pub struct Context<'a> {
    pub builder: BundleBuilder,
    pub observable: &'a Observable,
    pub observable_id: String,
    pub options: &'a EnrichOptions,
    pub passive_records: usize,
    pub scan_records: usize,
    pub truncated: bool,
    /// Record values that were not valid names (or certificate fields holding control
    /// characters or hashes that are not hex): skipped, never pushed.
    pub skipped_values: usize,
    /// Certificate object ids by digest: the same certificate seen in scans (with its
    /// serial number) and in passive data (without) is one object.
    certificates: HashMap<String, String, foldhash::fast::RandomState>,
}

impl<'a> Context<'a> {
    pub fn new(
        builder: BundleBuilder,
        observable: &'a Observable,
        observable_id: String,
        options: &'a EnrichOptions,
    ) -> Context<'a> {
        Context {
            builder,
            observable,
            observable_id,
            options,
            passive_records: 0,
            scan_records: 0,
            truncated: false,
            skipped_values: 0,
            certificates: HashMap::default(),
        }
    }

    /// The enriched domain's name, when it is a domain.
    pub fn observable_name(&self) -> Option<&str> {
        match self.observable {
            Observable::Domain(name) => Some(name),
            _ => None,
        }
    }

    /// The id of `ip`: the enriched observable's when it is the same address, or the
    /// IPv4 address an IPv4-mapped IPv6 observable (`::ffff:192.0.2.1`) was looked up as.
    pub fn add_address(&mut self, ip: IpAddr) -> String {
        if self.observable.ip() == Some(ip) || self.observable.lookup_ip() == Some(ip) {
            return self.observable_id.clone();
        }
        self.builder.add(objects::ip_address(ip))
    }

    /// A name from an IVRE record, normalised ([`normalize_domain`]); `None`, counted in
    /// [`Context::skipped_values`] and logged naming `record`, when it is not a valid
    /// domain name.
    pub fn checked_name(&mut self, value: &str, record: &dyn Display) -> Option<String> {
        match normalize_domain(value) {
            Ok(name) => Some(name),
            Err(e) => {
                self.skipped_values += 1;
                tracing::debug!(
                    record = %record,
                    value = %value.escape_debug(),
                    reason = e.reason(),
                    "record value skipped: not a valid domain name"
                );
                None
            }
        }
    }

    /// The id of the name `value` of `record` (checked, see [`Context::checked_name`]).
    pub fn add_domain(&mut self, value: &str, record: &dyn Display) -> Option<String> {
        let name = self.checked_name(value, record)?;
        Some(self.add_checked_domain(&name))
    }

    /// `name` is already normalised.
    fn add_checked_domain(&mut self, name: &str) -> String {
        if self.observable_name() == Some(name) {
            return self.observable_id.clone();
        }
        self.builder.add(objects::domain_name(name))
    }

    /// The id of the MAC address `value` of `record`; `None` (counted, logged) when it
    /// is not six hex bytes.
    pub fn add_mac(&mut self, value: &str, record: &dyn Display) -> Option<String> {
        let Some(bytes) = crate::index::keys::parse_mac(value) else {
            self.skipped_values += 1;
            tracing::debug!(record = %record, value = %value.escape_debug(), "record value skipped: not a MAC address");
            return None;
        };
        let mac = crate::index::keys::format_mac(&bytes);
        Some(self.add_checked_mac(&mac))
    }

    fn add_checked_mac(&mut self, mac: &str) -> String {
        if matches!(self.observable, Observable::Mac(_)) && self.observable.value() == mac {
            return self.observable_id.clone();
        }
        self.builder.add(objects::mac_address(mac))
    }

    pub fn add_asn(&mut self, number: u32, name: Option<&str>) -> String {
        if matches!(self.observable, Observable::Asn(n) if *n == number) {
            return self.observable_id.clone();
        }
        self.builder.add(objects::autonomous_system(number, name))
    }

    /// True when `cert` is the enriched certificate (one of its digests matches).
    fn is_observable_cert(&self, cert: &Certificate) -> bool {
        let Observable::Cert(hash) = self.observable else {
            return false;
        };
        let wanted = hex::encode(hash.bytes());
        let digest = match hash {
            CertHash::Md5(_) => &cert.md5,
            CertHash::Sha1(_) => &cert.sha1,
            CertHash::Sha256(_) => &cert.sha256,
        };
        digest
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(&wanted))
    }

    /// `cert` without the fields that cannot go into a STIX object: subject or issuer
    /// holding control characters (NUL…), digests that are not hex of their length. Each
    /// field dropped is counted in [`Context::skipped_values`].
    fn checked_certificate(&mut self, cert: &Certificate) -> Certificate {
        let mut cert = cert.clone();
        let mut dropped: Vec<&'static str> = Vec::new();
        for (field, value) in [
            ("subject", &mut cert.subject_text),
            ("issuer", &mut cert.issuer_text),
            ("serial_number", &mut cert.serial_number),
        ] {
            if value
                .as_deref()
                .is_some_and(|v| v.chars().any(char::is_control))
            {
                *value = None;
                dropped.push(field);
            }
        }
        for (field, len, value) in [
            ("md5", 32, &mut cert.md5),
            ("sha1", 40, &mut cert.sha1),
            ("sha256", 64, &mut cert.sha256),
        ] {
            if value
                .as_deref()
                .is_some_and(|v| v.len() != len || !v.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                *value = None;
                dropped.push(field);
            }
        }
        if !dropped.is_empty() {
            self.skipped_values += dropped.len();
            tracing::debug!(
                certificate = ?[&cert.sha256, &cert.sha1, &cert.md5],
                fields = ?dropped,
                "certificate fields skipped: control characters or not a hex digest"
            );
        }
        cert
    }

    /// The certificate's object id (the enriched observable's when it is the same).
    pub fn add_certificate(&mut self, cert: &Certificate) -> Option<String> {
        if self.is_observable_cert(cert) {
            return Some(self.observable_id.clone());
        }
        let checked = self.checked_certificate(cert);
        let cert = &checked;
        let digests: Vec<String> = [&cert.md5, &cert.sha1, &cert.sha256]
            .into_iter()
            .flatten()
            .map(|d| d.to_ascii_lowercase())
            .collect();
        if let Some(id) = digests.iter().find_map(|d| self.certificates.get(d)) {
            return Some(id.clone());
        }
        let id = self.builder.add(objects::x509_certificate(cert)?);
        for digest in digests {
            self.certificates.insert(digest, id.clone());
        }
        Some(id)
    }

    /// Adds a certificate seen on an address: `related-to` address → certificate, and
    /// the TOR labels when it looks like a TOR relay's.
    pub fn add_and_link_certificate(&mut self, cert: &Certificate, address_id: &str, seen: Seen) {
        let Some(cert_id) = self.add_certificate(cert) else {
            return;
        };
        if labels::is_tor_certificate(cert) {
            self.builder.label(&cert_id, labels::TOR_CERTIFICATE);
            self.builder.label(address_id, labels::TOR_NODE);
        }
        self.builder
            .relate("related-to", address_id, &cert_id, Some(seen));
    }

    /// Creates `domain` and the chain of its parents up to `parent` (the enriched
    /// domain, id `parent_id`), each `related-to` the next; returns `domain`'s id.
    /// The caller checks that `domain` (normalised) is under `parent`.
    pub fn link_domain_parent(&mut self, domain: &str, parent: &str, parent_id: &str) -> String {
        let domain_id = self.add_checked_domain(domain);
        let mut current_id = domain_id.clone();
        let mut sub = &domain[..domain.len() - parent.len() - 1];
        while let Some((_, rest)) = sub.split_once('.') {
            sub = rest;
            let next_id = self.add_checked_domain(&format!("{sub}.{parent}"));
            self.builder
                .relate("related-to", &current_id, &next_id, None);
            current_id = next_id;
        }
        self.builder
            .relate("related-to", &current_id, parent_id, None);
        domain_id
    }

    /// The id of the name `value` of `record`, linked up to the enriched domain when it
    /// is a subdomain of it; `None` (counted) when it is not a valid domain name.
    pub fn domain_in_context(&mut self, value: &str, record: &dyn Display) -> Option<String> {
        let name = self.checked_name(value, record)?;
        Some(self.checked_domain_in_context(&name))
    }

    /// [`Context::domain_in_context`] of a name already normalised.
    pub fn checked_domain_in_context(&mut self, name: &str) -> String {
        if let Some(parent) = self.observable_name().map(str::to_owned) {
            if name == parent {
                return self.observable_id.clone();
            }
            if name.ends_with(&format!(".{parent}")) {
                let parent_id = self.observable_id.clone();
                return self.link_domain_parent(name, &parent, &parent_id);
            }
        }
        self.add_checked_domain(name)
    }
}
