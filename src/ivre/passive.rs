//! Passive records (schema_version 3).

use super::{get_date, get_str, get_str_list, get_u64, Certificate, RecordError, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// What the index and the enrichment need of a passive record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassiveSummary {
    /// Absent for DNS answers without an address (CNAME, NS, MX…).
    pub addr: Option<IpAddr>,
    pub sensor: Option<String>,
    pub recontype: String,
    pub source: Option<String>,
    /// The main value; empty for certificates (their DER stays in the JSON).
    pub value: String,
    /// DNS target of CNAME/NS/MX; `None` when empty (PostgreSQL writes `""`, MongoDB omits it).
    pub targetval: Option<String>,
    pub port: Option<u16>,
    pub firstseen: Option<Timestamp>,
    pub lastseen: Option<Timestamp>,
    pub count: u64,
    /// `infos.service_*` (HTTP/SSH servers, scanners).
    pub service_name: Option<String>,
    pub service_product: Option<String>,
    pub service_version: Option<String>,
    /// `infos.domain` (the name and its parents), for DNS answers.
    pub domains: Vec<String>,
    /// The certificate of `SSL_SERVER`/`SSL_CLIENT` records with source `cert`/`cacert`.
    pub cert: Option<Box<Certificate>>,
}

impl PassiveSummary {
    /// True for records IVRE's `searchcert` returns (`SSL_SERVER` with source `cert`).
    pub fn is_server_cert(&self) -> bool {
        self.recontype == "SSL_SERVER" && self.source.as_deref() == Some("cert")
    }

    /// Reads a passive record in export form.
    pub fn from_export(map: &Map<String, Value>) -> Result<PassiveSummary, RecordError> {
        let recontype = match map.get("recontype") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => {
                return Err(RecordError::BadField {
                    field: "recontype",
                    reason: "expected a non-empty string".to_owned(),
                })
            }
            None => return Err(RecordError::MissingField("recontype")),
        };
        let addr = match map.get("addr") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                Some(s.parse::<IpAddr>().map_err(|_| RecordError::BadField {
                    field: "addr",
                    reason: format!("{s:?} is not an IP address"),
                })?)
            }
            Some(other) => {
                return Err(RecordError::BadField {
                    field: "addr",
                    reason: format!("expected a string, found {other}"),
                })
            }
        };
        let source = get_str(map, "source");
        let infos = map.get("infos").and_then(Value::as_object);
        let is_cert = matches!(recontype.as_str(), "SSL_SERVER" | "SSL_CLIENT")
            && matches!(source.as_deref(), Some("cert" | "cacert"));
        let cert = if is_cert {
            infos.map(|i| -> Box<Certificate> {
                let mut c = Certificate::from_json(i);
                c.cacert = source.as_deref() == Some("cacert");
                c.port = get_u64(map, "port").and_then(|p| u16::try_from(p).ok());
                Box::new(c)
            })
        } else {
            None
        };
        let value = if is_cert {
            String::new()
        } else {
            match map.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            }
        };
        let info = |k: &str| infos.and_then(|i| get_str(i, k));
        Ok(PassiveSummary {
            addr,
            sensor: get_str(map, "sensor"),
            source,
            value,
            targetval: get_str(map, "targetval").filter(|t| !t.is_empty()),
            port: get_u64(map, "port").and_then(|p| u16::try_from(p).ok()),
            firstseen: get_date(map, "firstseen"),
            lastseen: get_date(map, "lastseen"),
            count: get_u64(map, "count").unwrap_or(1),
            service_name: info("service_name"),
            service_product: info("service_product"),
            service_version: info("service_version"),
            domains: infos.map(|i| get_str_list(i, "domain")).unwrap_or_default(),
            cert,
            recontype,
        })
    }
}
