//! Scan (`nmap` purpose) and view host records (schema_version 21).

use super::{get_date, get_str, get_str_list, get_u64, Certificate, RecordError, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// One entry of `hostnames`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hostname {
    pub name: String,
    /// `user`, `PTR`, `A`, `AAAA`, `CNAME`, `cert-subject-cn`, `cert-san-dns`…
    pub kind: String,
}

/// One port of `ports` (`port: -1` holds host scripts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub port: i32,
    pub protocol: Option<String>,
    pub state: Option<String>,
    pub name: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
}

/// What the index and the enrichment need of a scan or view host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    pub addr: IpAddr,
    pub starttime: Option<Timestamp>,
    pub endtime: Option<Timestamp>,
    /// A string for scans, a list for views.
    pub source: Vec<String>,
    pub categories: Vec<String>,
    pub hostnames: Vec<Hostname>,
    /// `addresses.mac`, lower-cased.
    pub macs: Vec<String>,
    pub services: Vec<Service>,
    /// Certificates of `ssl-cert` scripts, then of `ssl-cacert` scripts (`cacert` set).
    pub certs: Vec<Certificate>,
    /// `infos.as_num` / `infos.as_name` (MaxMind data stored with the host).
    pub as_num: Option<u32>,
    pub as_name: Option<String>,
}

impl HostSummary {
    /// Reads a host in export form.
    pub fn from_export(map: &Map<String, Value>) -> Result<HostSummary, RecordError> {
        let addr = match map.get("addr") {
            Some(Value::String(s)) => s.parse::<IpAddr>().map_err(|_| RecordError::BadField {
                field: "addr",
                reason: format!("{s:?} is not an IP address"),
            })?,
            Some(other) => {
                return Err(RecordError::BadField {
                    field: "addr",
                    reason: format!("expected a string, found {other}"),
                })
            }
            None => return Err(RecordError::MissingField("addr")),
        };
        let hostnames = map
            .get("hostnames")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_object)
                    .filter_map(|h| {
                        Some(Hostname {
                            name: get_str(h, "name")?,
                            kind: get_str(h, "type").unwrap_or_default(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let macs = map
            .get("addresses")
            .and_then(Value::as_object)
            .map(|a| get_str_list(a, "mac"))
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.to_ascii_lowercase())
            .collect();
        let mut services = Vec::new();
        let mut certs = Vec::new();
        let mut cacerts = Vec::new();
        for port in map
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
        {
            let number = port.get("port").and_then(Value::as_i64).unwrap_or(-1);
            let number = i32::try_from(number).unwrap_or(-1);
            services.push(Service {
                port: number,
                protocol: get_str(port, "protocol"),
                state: get_str(port, "state_state"),
                name: get_str(port, "service_name"),
                product: get_str(port, "service_product"),
                version: get_str(port, "service_version"),
            });
            for script in port
                .get("scripts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
            {
                let id = script.get("id").and_then(Value::as_str).unwrap_or_default();
                // In views a passive CA certificate has id `ssl-cacert`, its data under `ssl-cert`.
                let (target, cacert) = match id {
                    "ssl-cert" => (&mut certs, false),
                    "ssl-cacert" => (&mut cacerts, true),
                    _ => continue,
                };
                let Some(data) = script.get("ssl-cert") else {
                    continue;
                };
                for mut cert in Certificate::from_script_value(data) {
                    cert.cacert = cacert;
                    cert.port = u16::try_from(number).ok();
                    target.push(cert);
                }
            }
        }
        certs.append(&mut cacerts);
        let infos = map.get("infos").and_then(Value::as_object);
        Ok(HostSummary {
            addr,
            starttime: get_date(map, "starttime"),
            endtime: get_date(map, "endtime"),
            source: get_str_list(map, "source"),
            categories: get_str_list(map, "categories"),
            hostnames,
            macs,
            services,
            certs,
            as_num: infos
                .and_then(|i| get_u64(i, "as_num"))
                .and_then(|n| u32::try_from(n).ok()),
            as_name: infos.and_then(|i| get_str(i, "as_name")),
        })
    }
}
