//! The `scans` (nmap) purpose.

use super::context::Context;
use crate::ivre::HostSummary;
use crate::observable::Observable;
use crate::stix::Seen;

/// Host name types that state a resolution (the Python connector takes A and PTR; AAAA
/// is their IPv6 counterpart in views).
const RESOLVING_TYPES: [&str; 3] = ["A", "AAAA", "PTR"];

fn seen(host: &HostSummary) -> Seen {
    Seen {
        first: host.starttime.or(host.endtime),
        last: host.endtime.or(host.starttime),
        source: if host.source.is_empty() {
            "scans".to_owned()
        } else {
            format!("scans ({})", host.source.join(", "))
        },
    }
}

/// Adds what the scan records show.
pub fn add(ctx: &mut Context<'_>, hosts: &[HostSummary]) {
    for host in hosts {
        ctx.scan_records += 1;
        host_to_stix(ctx, host);
    }
}

fn host_to_stix(ctx: &mut Context<'_>, host: &HostSummary) {
    let seen_at = seen(host);
    let address_id = ctx.add_address(host.addr);
    let observable_id = ctx.observable_id.clone();
    // The Python connector left these addresses unlinked (`docs/opencti-protocol.md` §11.4, item 10).
    match ctx.observable {
        Observable::Mac(_) => ctx.builder.relate(
            "resolves-to",
            &address_id,
            &observable_id,
            Some(seen_at.clone()),
        ),
        Observable::Asn(_) => ctx
            .builder
            .relate("belongs-to", &address_id, &observable_id, None),
        _ => {}
    }
    for hostname in &host.hostnames {
        if !RESOLVING_TYPES.contains(&hostname.kind.as_str()) {
            continue;
        }
        let record = format_args!("scan record of {} (hostname)", host.addr);
        let Some(name_id) = ctx.domain_in_context(&hostname.name, &record) else {
            continue;
        };
        ctx.builder
            .relate("resolves-to", &name_id, &address_id, Some(seen_at.clone()));
    }
    for cert in host.certs.iter().filter(|c| !c.cacert) {
        ctx.add_and_link_certificate(cert, &address_id, seen_at.clone());
    }
}
