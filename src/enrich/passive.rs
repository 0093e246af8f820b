//! The `passive` purpose.

use super::context::Context;
use super::labels;
use crate::ivre::PassiveSummary;
use crate::observable::{normalize_domain, Observable};
use crate::stix::Seen;

fn seen(record: &PassiveSummary) -> Seen {
    Seen {
        first: record.firstseen.or(record.lastseen),
        last: record.lastseen.or(record.firstseen),
        source: format!(
            "passive {}{}",
            record.recontype,
            record
                .sensor
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        ),
    }
}

/// Names a passive record in logs.
fn describe(record: &PassiveSummary) -> String {
    format!(
        "passive {} record{}",
        record.recontype,
        record.addr.map(|a| format!(" of {a}")).unwrap_or_default()
    )
}

/// Adds what the passive records show.
pub fn add(ctx: &mut Context<'_>, records: &[PassiveSummary]) {
    for record in records {
        ctx.passive_records += 1;
        record_to_stix(ctx, record);
    }
}

fn record_to_stix(ctx: &mut Context<'_>, record: &PassiveSummary) {
    let seen_at = seen(record);
    let Some(addr) = record.addr else {
        // Records without an address: DNS answers (CNAME, MX…) for a domain.
        let Some(target) = &record.targetval else {
            return;
        };
        if ctx.observable_name().is_none() || record.recontype != "DNS_ANSWER" {
            return;
        }
        let what = describe(record);
        let Some(value) = ctx.checked_name(&record.value, &what) else {
            return;
        };
        let Some(target) = ctx.checked_name(target, &what) else {
            return;
        };
        let value_id = ctx.checked_domain_in_context(&value);
        let target_id = ctx.checked_domain_in_context(&target);
        ctx.builder
            .relate("resolves-to", &value_id, &target_id, Some(seen_at));
        return;
    };
    let address_id = ctx.add_address(addr);
    if let Some(label) = labels::scanner_label(record) {
        ctx.builder.label(&address_id, &label);
    }
    let observable_id = ctx.observable_id.clone();
    match ctx.observable {
        Observable::Asn(_) => {
            ctx.builder
                .relate("belongs-to", &address_id, &observable_id, None);
        }
        Observable::Cert(_) => {
            if let Some(cert) = &record.cert {
                if labels::is_tor_certificate(cert) {
                    ctx.builder.label(&observable_id, labels::TOR_CERTIFICATE);
                    ctx.builder.label(&address_id, labels::TOR_NODE);
                }
            }
            ctx.builder
                .relate("related-to", &address_id, &observable_id, Some(seen_at));
            return;
        }
        Observable::Mac(_) => {
            ctx.builder
                .relate("resolves-to", &address_id, &observable_id, Some(seen_at));
            return;
        }
        Observable::Domain(name) => {
            let name = name.clone();
            let Some(value) = ctx.checked_name(&record.value, &describe(record)) else {
                return;
            };
            // Only compared, never pushed: an invalid target just does not match.
            let target = record
                .targetval
                .as_deref()
                .and_then(|t| normalize_domain(t).ok());
            if value == name || value.ends_with(&format!(".{name}")) {
                let value_id = ctx.checked_domain_in_context(&value);
                ctx.builder
                    .relate("resolves-to", &value_id, &address_id, Some(seen_at));
            } else if target.as_deref() == Some(name.as_str()) {
                // Found by the reverse search: `value` resolves to the enriched domain.
                let value_id = ctx.checked_domain_in_context(&value);
                ctx.builder
                    .relate("resolves-to", &value_id, &observable_id, Some(seen_at));
            } else {
                tracing::debug!(recontype = %record.recontype, "passive record unrelated to the enriched domain");
            }
            return;
        }
        Observable::Ipv4(_) | Observable::Ipv6(_) => {}
    }
    // The observable is an address, or an AS (a set of addresses).
    match record.recontype.as_str() {
        "DNS_ANSWER" => {
            let Some(name_id) = ctx.add_domain(&record.value, &describe(record)) else {
                return;
            };
            ctx.builder
                .relate("resolves-to", &name_id, &address_id, Some(seen_at));
        }
        "SSL_SERVER" if record.is_server_cert() => {
            if let Some(cert) = &record.cert {
                ctx.add_and_link_certificate(cert, &address_id, seen_at);
            }
        }
        "MAC_ADDRESS" => {
            let Some(mac_id) = ctx.add_mac(&record.value, &describe(record)) else {
                return;
            };
            ctx.builder
                .relate("resolves-to", &address_id, &mac_id, Some(seen_at));
        }
        _ => {}
    }
}
