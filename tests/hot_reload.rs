//! Serving a snapshot while new ones are published and MaxMind files replaced.

use crate::util::*;
use ivre_connector::ivre::RecordKind;
use ivre_connector::observable::Observable;
use ivre_connector::snapshot::serving::Serving;
use ivre_connector::snapshot::{self, DataDir, ImportOptions, OpenOptions};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

fn import_lab(data: &DataDir, with_passive: bool) {
    let mut inputs = vec![(RecordKind::Scan, lab("scancli.jsonl"))];
    if with_passive {
        inputs.push((RecordKind::Passive, lab("ipinfo.jsonl")));
    }
    snapshot::import(
        data,
        &ImportOptions {
            inputs,
            geoip_dir: Some(geoip_dir()),
            strict: true,
            ..Default::default()
        },
    )
    .unwrap();
}

#[test]
fn a_swap_under_concurrent_lookups_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    import_lab(&data, false);
    let serving = Arc::new(Serving::open(&data, None, OpenOptions::default()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicUsize::new(0));
    let observable = Observable::parse("192.0.2.10").unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (serving, stop, lookups, observable) = (
                serving.clone(),
                stop.clone(),
                lookups.clone(),
                observable.clone(),
            );
            std::thread::spawn(move || {
                let mut passive_seen = std::collections::BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let snap = serving.snapshot().unwrap();
                    let result = ivre_connector::lookup::lookup(&snap, &observable, None)
                        .expect("no lookup fails during a swap");
                    assert_eq!(result.scans.len(), 2);
                    assert!(
                        result.passive.is_empty() || result.passive.len() == 6,
                        "{} passive",
                        result.passive.len()
                    );
                    passive_seen.insert(result.passive.len());
                    lookups.fetch_add(1, Ordering::Relaxed);
                }
                passive_seen
            })
        })
        .collect();
    let mut names = Vec::new();
    for round in 0..6 {
        import_lab(&data, round % 2 == 0);
        assert!(serving.reload().unwrap(), "round {round} swapped");
        names.push(serving.snapshot().unwrap().name.clone());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = std::collections::BTreeSet::new();
    for w in workers {
        seen.extend(w.join().expect("no worker panicked"));
    }
    assert!(
        lookups.load(Ordering::Relaxed) > 20,
        "lookups ran during the swaps"
    );
    assert_eq!(
        seen,
        [0, 6].into_iter().collect(),
        "both snapshots answered"
    );
    assert_eq!(&serving.snapshot().unwrap().name, names.last().unwrap());
    assert!(!serving.reload().unwrap(), "nothing new");
}

#[test]
fn replaced_mmdb_files_are_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    import_lab(&data, false);
    // A live MaxMind directory with only the ASN database at first.
    let live = dir.path().join("geoip");
    std::fs::create_dir(&live).unwrap();
    std::fs::copy(
        geoip_dir().join("GeoLite2-ASN.mmdb"),
        live.join("GeoLite2-ASN.mmdb"),
    )
    .unwrap();
    let serving = Serving::open(&data, Some(live.clone()), OpenOptions::default()).unwrap();
    let ip = "192.0.2.10".parse().unwrap();
    let infos = serving
        .snapshot()
        .unwrap()
        .geo
        .load()
        .infos_byip(ip)
        .unwrap();
    assert_eq!(infos["as_num"], 64496);
    assert!(infos.get("city").is_none());
    // geoipupdate's way: write a temporary file, then rename it into place.
    let tmp = live.join("GeoLite2-City.mmdb.temporary");
    std::fs::copy(geoip_dir().join("GeoLite2-City.mmdb"), &tmp).unwrap();
    std::fs::rename(&tmp, live.join("GeoLite2-City.mmdb")).unwrap();
    serving.reload_geo().unwrap();
    assert_eq!(
        serving
            .snapshot()
            .unwrap()
            .geo
            .load()
            .infos_byip(ip)
            .unwrap()["city"],
        "Paris"
    );
    // A broken replacement is refused and the previous files stay in use.
    std::fs::write(live.join("GeoLite2-Country.mmdb"), b"not a database").unwrap();
    assert!(serving.reload_geo().is_err());
    assert_eq!(
        serving
            .snapshot()
            .unwrap()
            .geo
            .load()
            .infos_byip(ip)
            .unwrap()["city"],
        "Paris"
    );
    // A new generation keeps the live files.
    std::fs::remove_file(live.join("GeoLite2-Country.mmdb")).unwrap();
    import_lab(&data, true);
    assert!(serving.reload().unwrap());
    assert_eq!(
        serving
            .snapshot()
            .unwrap()
            .geo
            .load()
            .infos_byip(ip)
            .unwrap()["city"],
        "Paris"
    );
}
