//! Which stored record a new one updates.
//!
//! - passive: IVRE's aggregation key `(addr, sensor, recontype, port, source, value,
//!   targetval)` (for certificates the digest stands for the DER `value`);
//! - scans: one scan run of a host: `(addr, source, starttime)` (IVRE keeps every run);
//! - view: the host (`addr`), IVRE keeps one view record per address.

use crate::ivre::{HostSummary, PassiveSummary, RecordKind, Summary};
use serde_json::json;
use uuid::Uuid;

/// Namespace of identities (random, fixed).
const NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_35a2_1c4e_4b7a_9e0b_5a1f_2c3d_4e5f);

/// 16 bytes naming the record's identity.
pub fn of(kind: RecordKind, summary: &Summary) -> [u8; 16] {
    let key = match summary {
        Summary::Passive(p) => passive_key(p),
        Summary::Host(h) => host_key(kind, h),
    };
    *Uuid::new_v5(&NAMESPACE, key.to_string().as_bytes()).as_bytes()
}

fn passive_key(p: &PassiveSummary) -> serde_json::Value {
    let value = match &p.cert {
        Some(c) => c
            .sha256
            .clone()
            .or_else(|| c.sha1.clone())
            .or_else(|| c.md5.clone())
            .unwrap_or_default(),
        None => p.value.clone(),
    };
    json!([
        p.addr.map(|a| a.to_string()),
        p.sensor,
        p.recontype,
        p.port,
        p.source,
        value,
        p.targetval
    ])
}

fn host_key(kind: RecordKind, h: &HostSummary) -> serde_json::Value {
    match kind {
        RecordKind::View => json!(["view", h.addr.to_string()]),
        _ => json!([
            "scan",
            h.addr.to_string(),
            h.source,
            h.starttime.map(|t| t.micros)
        ]),
    }
}
