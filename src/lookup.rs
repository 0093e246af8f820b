//! Answering an observable from a snapshot with the records IVRE's own searches
//! return (the searches of the Python connector, `docs/opencti-protocol.md` §11.3).
//!
//! | observable | `data` | `scans` / `view` | `passive` |
//! |---|---|---|---|
//! | IPv4/IPv6 | `infos_byip` | `searchhost` | `searchhost` |
//! | domain | — | `searchdomain` (the name and its subdomains) | `searchdns(name)` ∪ `searchdns(name, reverse=True)` |
//! | AS | — | `searchasnum` (`infos.as_num`) | addresses in the AS per the snapshot's ASN data |
//! | MAC | — | `searchmac` | `searchmac` |
//! | certificate | — | `searchcert` (`ssl-cert` scripts) | `searchcert` (`SSL_SERVER`, source `cert`) |

use crate::geo::Infos;
use crate::index::{IndexError, Query};
use crate::ivre::RecordKind;
use crate::observable::Observable;
use crate::snapshot::Snapshot;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The records one observable matches.
#[derive(Debug)]
pub struct LookupResult {
    pub observable: String,
    /// `infos_byip` for addresses; `None` otherwise or when nothing is known.
    pub data: Option<Infos>,
    pub passive: Vec<Box<RawValue>>,
    pub scans: Vec<Box<RawValue>>,
    pub view: Vec<Box<RawValue>>,
    /// A limit cut some records.
    pub truncated: bool,
}

/// The index searches for an observable, per record kind.
pub fn queries(observable: &Observable) -> (Vec<Query>, Vec<Query>) {
    match observable {
        Observable::Ipv4(_) | Observable::Ipv6(_) => {
            let ip = observable.lookup_ip().map(Query::Host);
            (ip.clone().into_iter().collect(), ip.into_iter().collect())
        }
        Observable::Domain(name) => (
            vec![Query::Domain(name.clone())],
            vec![Query::DnsName(name.clone()), Query::DnsTarget(name.clone())],
        ),
        Observable::Asn(n) => (vec![Query::Asn(*n)], vec![Query::Asn(*n)]),
        Observable::Mac(m) => (vec![Query::Mac(*m)], vec![Query::Mac(*m)]),
        Observable::Cert(h) => (vec![Query::Cert(h.clone())], vec![Query::Cert(h.clone())]),
    }
}

/// Looks `observable` up; `limit` caps the records per kind.
pub fn lookup(
    snapshot: &Snapshot,
    observable: &Observable,
    limit: Option<usize>,
) -> Result<LookupResult, IndexError> {
    let (host_queries, passive_queries) = queries(observable);
    let mut truncated = false;
    let mut fetch =
        |kind: RecordKind, queries: &[Query]| -> Result<Vec<Box<RawValue>>, IndexError> {
            let found = snapshot.index.search(kind, queries, limit)?;
            truncated |= found.truncated;
            found
                .records
                .iter()
                .map(|hit| {
                    let json = snapshot.index.json(hit)?;
                    RawValue::from_string(json).map_err(|e| IndexError::BadJson {
                        kind,
                        id: hit.id,
                        reason: e.to_string(),
                    })
                })
                .collect()
        };
    let scans = fetch(RecordKind::Scan, &host_queries)?;
    let view = fetch(RecordKind::View, &host_queries)?;
    let passive = fetch(RecordKind::Passive, &passive_queries)?;
    Ok(LookupResult {
        observable: observable.to_string(),
        data: observable
            .lookup_ip()
            .and_then(|ip| snapshot.geo.load().infos_byip(ip)),
        passive,
        scans,
        view,
        truncated,
    })
}

#[derive(serde::Serialize)]
struct Line<'a> {
    observable: &'a str,
    data: Option<&'a Map<String, Value>>,
    passive: &'a [Box<RawValue>],
    scans: &'a [Box<RawValue>],
    #[serde(skip_serializing_if = "Option::is_none")]
    view: Option<&'a [Box<RawValue>]>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

impl LookupResult {
    /// The JSON line `lookup` prints (records verbatim, not re-encoded). `view` appears
    /// when the snapshot holds view records; `truncated` when a limit cut records.
    pub fn to_json_line(&self, with_view: bool) -> String {
        let line = Line {
            observable: &self.observable,
            data: self.data.as_deref(),
            passive: &self.passive,
            scans: &self.scans,
            view: with_view.then_some(self.view.as_slice()),
            truncated: self.truncated,
        };
        serde_json::to_string(&line).unwrap_or_default()
    }
}

/// The line `lookup` prints for an input that is not an observable.
pub fn error_json(input: &str, error: &str) -> Value {
    let mut out = Map::new();
    out.insert("observable".into(), Value::String(input.to_owned()));
    out.insert("error".into(), Value::String(error.to_owned()));
    Value::Object(out)
}
