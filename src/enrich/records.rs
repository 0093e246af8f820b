//! What an enrichment is made from: the records IVRE's searches return for the
//! observable, gathered from a snapshot (or from live IVRE, see [`crate::live`]), and where
//! they came from (for the Note that tells analysts how fresh the data is).

use super::EnrichOptions;
use crate::geo::Infos;
use crate::index::{IndexError, Query};
use crate::ivre::{HostSummary, PassiveSummary, RecordKind, Timestamp};
use crate::lookup;
use crate::observable::Observable;
use crate::snapshot::Snapshot;

/// The records of one observable.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// `infos_byip` (addresses).
    pub data: Option<Infos>,
    pub scans: Vec<HostSummary>,
    pub passive: Vec<PassiveSummary>,
    /// `IVRE_MAX_RECORDS` cut some.
    pub truncated: bool,
}

impl Records {
    pub fn is_empty(&self) -> bool {
        self.scans.is_empty() && self.passive.is_empty()
    }

    /// When IVRE saw what these records describe: the earliest `firstseen`/`starttime`
    /// and the latest `lastseen`/`endtime`; `None` without any of them.
    pub fn seen(&self) -> Option<(Timestamp, Timestamp)> {
        let firsts = (self.scans.iter().map(|h| h.starttime))
            .chain(self.passive.iter().map(|p| p.firstseen))
            .flatten();
        let lasts = (self.scans.iter().map(|h| h.endtime.or(h.starttime)))
            .chain(self.passive.iter().map(|p| p.lastseen.or(p.firstseen)))
            .flatten();
        let first = firsts.min();
        let last = lasts.max();
        match (first, last) {
            (Some(f), Some(l)) => Some((f.min(l), l.max(f))),
            (Some(t), None) | (None, Some(t)) => Some((t, t)),
            (None, None) => None,
        }
    }
}

/// Who answered an enrichment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnsweredBy {
    /// A snapshot generation, by its name.
    Snapshot(String),
    /// Live IVRE (the snapshot had no record).
    Live,
    /// Nobody: no snapshot is served yet.
    NoSnapshot,
}

impl AnsweredBy {
    /// The answer's stable name, part of the bundle id: the generation's name, `live` or
    /// `none`.
    pub fn name(&self) -> &str {
        match self {
            AnsweredBy::Snapshot(generation) => generation,
            AnsweredBy::Live => "live",
            AnsweredBy::NoSnapshot => "none",
        }
    }
}

/// The words of the work message (the Note does not say which generation: its content
/// must not change with it).
impl std::fmt::Display for AnsweredBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnsweredBy::Snapshot(generation) => write!(f, "snapshot {generation}"),
            AnsweredBy::Live => f.write_str("live IVRE"),
            AnsweredBy::NoSnapshot => f.write_str("no snapshot yet"),
        }
    }
}

/// Where records came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Who answered; its name is part of the bundle id.
    pub answered_by: AnsweredBy,
    /// The first sentence of the Note: how the answer was obtained, never when (the
    /// Note's id depends on its content).
    pub description: String,
    /// RFC 3339: new objects' `created` (the Note's is the answer's last seen).
    pub at: String,
}

impl Origin {
    /// A snapshot generation. The description names neither the generation nor its build
    /// time: the Note must stay the same while the answer does (see [`super::build`]).
    pub fn snapshot(snapshot: &Snapshot) -> Origin {
        let m = &snapshot.manifest;
        Origin {
            answered_by: AnsweredBy::Snapshot(m.generation.clone()),
            description: "Enriched by IVRE from its local snapshot".into(),
            at: m.built_at.clone(),
        }
    }

    /// No snapshot served yet (the daemon is building or fetching its first one).
    pub fn no_snapshot() -> Origin {
        Origin {
            answered_by: AnsweredBy::NoSnapshot,
            description: "No IVRE snapshot was served yet (the first one is being built)".into(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// Which searches the options allow for this observable: (data, scans, passive).
pub fn searches(observable: &Observable, options: &EnrichOptions) -> (bool, bool, bool) {
    let data = options.use_data && observable.ip().is_some();
    let scans = options.use_scans
        && match observable {
            Observable::Asn(_) => options.use_scans_as,
            Observable::Domain(_) => options.use_scans_domain,
            _ => true,
        };
    let passive = options.use_passive
        && match observable {
            Observable::Asn(_) => options.use_passive_as,
            Observable::Domain(_) => options.use_passive_domain,
            _ => true,
        };
    (data, scans, passive)
}

/// The records of `observable` in `snapshot`, at most `IVRE_MAX_RECORDS` per search.
pub fn from_snapshot(
    snapshot: &Snapshot,
    observable: &Observable,
    options: &EnrichOptions,
) -> Result<Records, IndexError> {
    let (use_data, use_scans, use_passive) = searches(observable, options);
    let (host_queries, passive_queries): (Vec<Query>, Vec<Query>) = lookup::queries(observable);
    let mut records = Records::default();
    if use_data {
        records.data = observable
            .lookup_ip()
            .and_then(|ip| snapshot.geo.load().infos_byip(ip));
    }
    let mut search = |kind: RecordKind, queries: &[Query]| -> Result<Vec<_>, IndexError> {
        let found = snapshot
            .index
            .search(kind, queries, Some(options.max_records))?;
        if found.truncated {
            records.truncated = true;
            tracing::warn!(observable_type = observable.type_name(), kind = %kind, max = options.max_records, "records cut at IVRE_MAX_RECORDS");
        }
        Ok(found.records)
    };
    let scan_hits = if use_scans {
        search(RecordKind::Scan, &host_queries)?
    } else {
        Vec::new()
    };
    let passive_hits = if use_passive {
        search(RecordKind::Passive, &passive_queries)?
    } else {
        Vec::new()
    };
    for hit in &scan_hits {
        records.scans.push(snapshot.index.summary(hit)?);
    }
    for hit in &passive_hits {
        records.passive.push(snapshot.index.summary(hit)?);
    }
    Ok(records)
}
