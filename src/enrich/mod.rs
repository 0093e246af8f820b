//! Enrichment: an observable and a snapshot in, one STIX 2.1 bundle out. Pure: no I/O
//! beyond reading the snapshot.
//!
//! It reproduces what the Python IVRE connector creates for the same IVRE data
//! (`docs/opencti-protocol.md` §11.3), as one bundle instead of one GraphQL call per object,
//! with its bugs fixed (§11.4): every new object carries the author and the observable's
//! markings (and organizations), certificates use STIX hash keys and carry their serial
//! number, a certificate without `self_signed` (or in Nmap's raw shape) is handled,
//! addresses found by a MAC, AS or certificate search are linked back to it, and
//! relationship ids do not depend on IVRE's first/last seen.
//!
//! - [`options`]: the `IVRE_USE_*` switches and the other settings;
//! - [`context`]: object creation shared by the purposes (ids reused for the enriched
//!   observable, domain parent chains, certificates and their TOR labels);
//! - [`data`], [`passive`], [`scans`]: one module per IVRE purpose;
//! - [`records`]: the records an enrichment is made from, and where they came from (for
//!   the freshness Note); [`labels`]: the labels the Python connector sets.

pub mod context;
pub mod data;
pub mod labels;
pub mod options;
pub mod passive;
pub mod records;
pub mod scans;

pub use options::EnrichOptions;
pub use records::{AnsweredBy, Origin, Records};

use crate::index::IndexError;
use crate::ivre::Timestamp;
use crate::observable::Observable;
use crate::snapshot::Snapshot;
use crate::stix::{ids, objects, BundleBuilder, Provenance};
use context::Context;
use serde_json::{Map, Value};

/// What to enrich.
#[derive(Debug, Clone)]
pub struct EnrichRequest {
    pub observable: Observable,
    /// The observable as the platform sent it (kept as is, id included); `None` builds
    /// it from `observable` with its deterministic id.
    pub stix_object: Option<Map<String, Value>>,
    /// Marking-definition ids of the observable.
    pub markings: Vec<String>,
    /// Organization ids the observable is shared with.
    pub granted_refs: Vec<String>,
}

impl EnrichRequest {
    /// A request for a bare observable, as the CLI makes it.
    pub fn new(observable: Observable, markings: Vec<String>) -> EnrichRequest {
        EnrichRequest {
            observable,
            stix_object: None,
            markings,
            granted_refs: Vec::new(),
        }
    }
}

/// One enrichment's result.
#[derive(Debug, Clone)]
pub struct Enrichment {
    pub bundle: Value,
    /// Who answered: a snapshot generation, live IVRE, or nobody yet.
    pub answered_by: AnsweredBy,
    /// Records used, per purpose.
    pub passive_records: usize,
    pub scan_records: usize,
    /// `IVRE_MAX_RECORDS` cut some records.
    pub truncated: bool,
    /// Record values skipped because they could not be STIX values: names that are not
    /// valid domain names, MAC addresses that are not, certificate fields with control
    /// characters (see [`context::Context::checked_name`]).
    pub skipped_values: usize,
}

/// The STIX object of a bare observable (deterministic id, no author: it is the
/// platform's object, not ours).
pub fn observable_object(observable: &Observable) -> Map<String, Value> {
    match observable {
        Observable::Ipv4(_) | Observable::Ipv6(_) => match observable.ip() {
            Some(ip) => objects::ip_address(ip),
            None => Map::new(),
        },
        Observable::Domain(name) => objects::domain_name(name),
        Observable::Mac(_) => objects::mac_address(&observable.value()),
        Observable::Asn(n) => {
            let mut object = objects::autonomous_system(*n, None);
            object.remove("name");
            object
        }
        Observable::Cert(hash) => {
            let key = match hash.algorithm() {
                "md5" => "MD5",
                "sha1" => "SHA-1",
                _ => "SHA-256",
            };
            let mut hashes = Map::new();
            hashes.insert(key.into(), hex::encode(hash.bytes()).into());
            objects::x509_from_hashes(hashes)
        }
    }
}

/// Enriches one observable from `snapshot`.
pub fn enrich(
    snapshot: &Snapshot,
    request: &EnrichRequest,
    options: &EnrichOptions,
) -> Result<Enrichment, IndexError> {
    let records = records::from_snapshot(snapshot, &request.observable, options)?;
    Ok(build(
        request,
        options,
        &records,
        &Origin::snapshot(snapshot),
    ))
}

/// Builds the bundle of one observable from its records.
pub fn build(
    request: &EnrichRequest,
    options: &EnrichOptions,
    records: &Records,
    origin: &Origin,
) -> Enrichment {
    let at = Timestamp::parse_str(&origin.at).unwrap_or(Timestamp { micros: 0 });
    let timestamp = objects::stix_timestamp(at);
    let provenance = Provenance {
        author_name: options.author_name.clone(),
        markings: request.markings.clone(),
        granted_refs: request.granted_refs.clone(),
        timestamp: timestamp.clone(),
    };
    let mut builder = BundleBuilder::new(provenance, options.relationship_times);
    let enriched = request
        .stix_object
        .clone()
        .unwrap_or_else(|| observable_object(&request.observable));
    let observable_id = builder.add_enriched(enriched);
    let mut ctx = Context::new(builder, &request.observable, observable_id.clone(), options);
    if let Some(infos) = &records.data {
        data::add(&mut ctx, infos);
    }
    // Scans before passive: a certificate seen in both is created from the scan record,
    // which carries its serial number (part of its STIX id), and reused for the passive one.
    scans::add(&mut ctx, &records.scans);
    passive::add(&mut ctx, &records.passive);
    let Context {
        mut builder,
        passive_records,
        scan_records,
        skipped_values,
        ..
    } = ctx;
    if options.note {
        builder.add(freshness_note(
            origin,
            records,
            passive_records,
            scan_records,
            skipped_values,
            options.max_records,
            &observable_id,
        ));
    }
    let bundle_id = ids::generate_from(
        "bundle",
        &[
            ("observable", ids::IdValue::Str(&observable_id)),
            ("snapshot", ids::IdValue::Str(origin.answered_by.name())),
        ],
    );
    Enrichment {
        bundle: builder.finish(bundle_id),
        answered_by: origin.answered_by.clone(),
        passive_records,
        scan_records,
        truncated: records.truncated,
        skipped_values,
    }
}

/// The Note telling analysts what IVRE's answer was made of and how fresh it is: records
/// used, first and last seen, values skipped, records cut. Its content and id (pycti's
/// `Note.generate_id(created, content)`, `created` being the answer's last seen) depend on
/// the answer only, never on the generation that served it or its build time: re-enriching
/// an observable whose records did not change updates the same Note instead of adding one.
fn freshness_note(
    origin: &Origin,
    records: &Records,
    passive_records: usize,
    scan_records: usize,
    skipped_values: usize,
    max_records: usize,
    observable_id: &str,
) -> Map<String, Value> {
    let seen = records.seen();
    let mut content = format!(
        "{}: {passive_records} passive and {scan_records} scan record(s) used",
        origin.description
    );
    if let Some((first, last)) = seen {
        content.push_str(&format!(
            ", first seen {}, last seen {}",
            objects::stix_timestamp(first),
            objects::stix_timestamp(last)
        ));
    }
    if skipped_values > 0 {
        content.push_str(&format!(
            "; {skipped_values} record value(s) skipped as not valid names or fields"
        ));
    }
    if records.truncated {
        content.push_str(&format!(
            "; more records matched, cut at IVRE_MAX_RECORDS={max_records} per search"
        ));
    }
    content.push('.');
    // Without a dated record, the Unix epoch: a constant, so that the Note still does not
    // change while the answer does not.
    let created = objects::stix_timestamp(seen.map_or(Timestamp { micros: 0 }, |(_, last)| last));
    objects::note("IVRE", &content, &created, &[observable_id.to_owned()])
}

#[cfg(test)]
mod note_tests;
