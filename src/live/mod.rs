//! Live IVRE: the sources a snapshot is pulled from and the cache-miss fallback asks.
//!
//! - [`mongo`]: IVRE's MongoDB (`mongodb://…`), queried with IVRE's own filters;
//! - [`web`]: IVRE's web API (`http(s)://host/cgi#Header=value&…`);
//! - [`source`]: one interface over both; [`fallback`]: the cache-miss fallback.

pub mod fallback;
pub mod mongo;
pub mod source;
pub mod web;

/// `%XX` escapes decoded (`+` kept), as URL parts are written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

use crate::enrich::{self, EnrichOptions, EnrichRequest, Enrichment, Origin};
use crate::index::IndexError;
use crate::metrics::LookupOutcome;
use crate::snapshot::Snapshot;
use std::sync::Arc;

/// Enriches from the snapshot, or from live IVRE when the snapshot has no record of the
/// observable (or no snapshot is served yet) and the fallback is on. Returns how the
/// answer was found.
pub async fn enrich_with_fallback(
    snapshot: Option<Arc<Snapshot>>,
    request: EnrichRequest,
    options: EnrichOptions,
    fallback: Option<Arc<fallback::Fallback>>,
) -> Result<(Enrichment, LookupOutcome), IndexError> {
    let (records, mut origin) = match &snapshot {
        Some(snapshot) => {
            let (snap, obs, opts) = (
                snapshot.clone(),
                request.observable.clone(),
                options.clone(),
            );
            let records = tokio::task::spawn_blocking(move || {
                enrich::records::from_snapshot(&snap, &obs, &opts)
            })
            .await
            .map_err(|e| IndexError::Io {
                path: snapshot.dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })??;
            (records, Origin::snapshot(snapshot))
        }
        None => (enrich::Records::default(), Origin::no_snapshot()),
    };
    if !records.is_empty() {
        return Ok((
            enrich::build(&request, &options, &records, &origin),
            LookupOutcome::Hit,
        ));
    }
    let Some(fallback) = fallback.filter(|f| f.enabled()) else {
        return Ok((
            enrich::build(&request, &options, &records, &origin),
            LookupOutcome::Miss,
        ));
    };
    match fallback.lookup(&request.observable, &options).await {
        Ok(answer) if !answer.records.is_empty() => {
            let mut live = answer.records.clone();
            if live.data.is_none() {
                live.data = records.data.clone();
            }
            let origin = answer.origin();
            Ok((
                enrich::build(&request, &options, &live, &origin),
                LookupOutcome::Fallback,
            ))
        }
        Ok(answer) => {
            if !answer.is_complete() {
                origin.description.push_str(&format!(
                    "; live IVRE answered partially: {}",
                    answer.failures.join("; ")
                ));
            } else {
                origin
                    .description
                    .push_str("; live IVRE has no record either");
            }
            Ok((
                enrich::build(&request, &options, &records, &origin),
                LookupOutcome::Miss,
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "live IVRE fallback failed");
            origin
                .description
                .push_str(&format!("; live IVRE could not be asked: {e}"));
            Ok((
                enrich::build(&request, &options, &records, &origin),
                LookupOutcome::Miss,
            ))
        }
    }
}

/// The length of `value` as compact JSON, counted as it is written, without building the
/// text (answer sizes for the web client's limits and the fallback cache's budget).
pub(crate) fn json_size(value: &impl serde::Serialize) -> u64 {
    /// Counts what is written.
    struct ByteCount(u64);
    impl std::io::Write for ByteCount {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = ByteCount(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}
