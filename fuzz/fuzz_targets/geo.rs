//! MaxMind answers formatted as IVRE does (`geo::Geo::infos_byip`, `ipdata`, `asn`,
//! `address_type`) for arbitrary addresses, over the real test databases of `tests/data`
//! (the small GeoLite2 files of `tests/data/geoip` and MaxMind's test files).
#![no_main]

use ivre_connector::geo::{self, Geo};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::OnceLock;

fn sets() -> &'static [Geo] {
    static SETS: OnceLock<Vec<Geo>> = OnceLock::new();
    SETS.get_or_init(|| {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
        let geoip = Geo::open_dir(&data.join("geoip")).expect("tests/data/geoip opens");
        // MaxMind's test files, without the broken ones (refused at open, tested in src/geo).
        let dir = std::env::temp_dir().join(format!("ivre-fuzz-geo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        for name in [
            "GeoIP2-City-Test.mmdb",
            "GeoLite2-ASN-Test.mmdb",
            "GeoLite2-Country-Test.mmdb",
        ] {
            std::fs::copy(data.join("maxmind").join(name), dir.join(name)).expect("copy");
        }
        let maxmind = Geo::open_dir(&dir).expect("MaxMind test files open");
        let _ = std::fs::remove_dir_all(&dir);
        vec![geoip, maxmind, Geo::empty()]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let ip = match rest.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(rest).expect("4 bytes"))),
        16 => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(rest).expect("16 bytes"),
        )),
        _ => match std::str::from_utf8(rest).ok().and_then(|s| s.parse().ok()) {
            Some(ip) => ip,
            None => return,
        },
    };
    let sets = sets();
    let geo = &sets[usize::from(selector) % sets.len()];
    let _ = geo::address_type(ip);
    if let Some(infos) = geo.infos_byip(ip) {
        serde_json::to_string(&*infos).expect("infos serialize");
    }
    serde_json::to_string(&geo.ipdata(ip)).expect("ipdata serializes");
    let _ = geo.asn(ip);
});
