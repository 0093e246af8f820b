//! Object creation shared by the purposes: the enriched observable is reused whenever a
//! record names it, so every relationship lands on the platform's object.

use super::{labels, EnrichOptions};
use crate::index::keys::CertHash;
use crate::ivre::Certificate;
use crate::observable::Observable;
use crate::stix::{objects, BundleBuilder, Seen};
use std::collections::HashMap;
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
    /// Certificate object ids by digest: the same certificate seen in scans (with its
    /// serial number) and in passive data (without) is one object.
    certificates: HashMap<String, String>,
}

/// Lower-case without a trailing dot, as the Python connector compares names.
pub fn normalize_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_lowercase()
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
            certificates: HashMap::new(),
        }
    }

    /// The enriched domain's name, when it is a domain.
    pub fn observable_name(&self) -> Option<&str> {
        match self.observable {
            Observable::Domain(name) => Some(name),
            _ => None,
        }
    }

    pub fn add_address(&mut self, ip: IpAddr) -> String {
        if self.observable.ip() == Some(ip) {
            return self.observable_id.clone();
        }
        self.builder.add(objects::ip_address(ip))
    }

    pub fn add_domain(&mut self, name: &str) -> String {
        let name = normalize_name(name);
        if self.observable_name() == Some(name.as_str()) {
            return self.observable_id.clone();
        }
        self.builder.add(objects::domain_name(&name))
    }

    pub fn add_mac(&mut self, mac: &str) -> String {
        let mac = mac.trim().to_lowercase().replace('-', ":");
        if matches!(self.observable, Observable::Mac(_)) && self.observable.value() == mac {
            return self.observable_id.clone();
        }
        self.builder.add(objects::mac_address(&mac))
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

    /// The certificate's object id (the enriched observable's when it is the same).
    pub fn add_certificate(&mut self, cert: &Certificate) -> Option<String> {
        if self.is_observable_cert(cert) {
            return Some(self.observable_id.clone());
        }
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
    /// The caller checks that `domain` is under `parent`.
    pub fn link_domain_parent(&mut self, domain: &str, parent: &str, parent_id: &str) -> String {
        let domain_id = self.add_domain(domain);
        let mut current_id = domain_id.clone();
        let mut sub = &domain[..domain.len() - parent.len() - 1];
        while let Some((_, rest)) = sub.split_once('.') {
            sub = rest;
            let next_id = self.add_domain(&format!("{sub}.{parent}"));
            self.builder
                .relate("related-to", &current_id, &next_id, None);
            current_id = next_id;
        }
        self.builder
            .relate("related-to", &current_id, parent_id, None);
        domain_id
    }

    /// The id of `name`, linked up to the enriched domain when it is a subdomain of it.
    pub fn domain_in_context(&mut self, name: &str) -> String {
        let name = normalize_name(name);
        if let Some(parent) = self.observable_name().map(str::to_owned) {
            if name == parent {
                return self.observable_id.clone();
            }
            if name.ends_with(&format!(".{parent}")) {
                let parent_id = self.observable_id.clone();
                return self.link_domain_parent(&name, &parent, &parent_id);
            }
        }
        self.add_domain(&name)
    }
}
