//! Criterion benchmarks for regression tracking: `lookup::lookup` and the offline
//! enrichment (`enrich::enrich` then the bundle serialized) per observable type, on a
//! generated dataset (the `perf` harness's generator and probes, 90 % hits, 10 % misses).
//!
//! ```text
//! cargo bench --bench lookup            # 20,000 records (target/bench/data-20000-<seed>/)
//! cargo test --bench lookup             # each benchmark once, on 2,000 records
//! ```
//!
//! One iteration answers 10 probes (9 hits, 1 miss), so `Throughput::Elements(10)` makes
//! criterion report operations per second. The snapshot is imported into a temporary
//! directory at each run. Percentiles come from the `perf` harness, not from here.

/// The allocator of both binaries (`src/bin/ivre-connector/main.rs`), so that the figures
/// are theirs: the library sets none.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(dead_code)]
#[path = "perf/data.rs"]
mod data;
#[allow(dead_code)]
#[path = "perf/scale_data.rs"]
mod scale_data;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use ivre_connector::enrich::{self, EnrichOptions, EnrichRequest};
use ivre_connector::lookup;
use ivre_connector::snapshot::{DataDir, Snapshot};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

/// Probes answered per iteration.
const BATCH: usize = 10;

/// The snapshot (kept alive by its temporary directory) and the probes per type.
fn setup() -> anyhow::Result<(tempfile::TempDir, Snapshot, Vec<data::Probes>)> {
    // `cargo bench` passes `--bench`; criterion's test mode (`cargo test`) does not.
    let records = if std::env::args().any(|a| a == "--bench") {
        20_000
    } else {
        2_000
    };
    let out = Path::new("target/bench");
    let dataset = data::ensure(out, records, scale_data::DEFAULT_SEED)?;
    std::fs::create_dir_all(out)?;
    let tmp = tempfile::Builder::new()
        .prefix("criterion-")
        .tempdir_in(out)?;
    let snap_dir = tmp.path().join("data");
    data::import_full(&dataset, &snap_dir)?;
    let snapshot = Snapshot::open(&DataDir::new(&snap_dir))?;
    let probes = data::probes(&dataset, 100)?;
    Ok((tmp, snapshot, probes))
}

/// Sampling for one type: AS searches return thousands of records (eight ASes share the
/// data), so they get few one-iteration samples.
fn configure<M: criterion::measurement::Measurement>(
    group: &mut criterion::BenchmarkGroup<'_, M>,
    name: &str,
) {
    if name == "asn" {
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .measurement_time(Duration::from_secs(6));
    } else {
        group
            .sampling_mode(SamplingMode::Auto)
            .sample_size(20)
            .measurement_time(Duration::from_secs(3));
    }
}

fn benches(c: &mut Criterion) {
    let (_tmp, snapshot, probes) = setup().unwrap_or_else(|e| panic!("benchmark setup: {e:#}"));
    let options = EnrichOptions::default();
    let limit = Some(options.max_records);

    let mut group = c.benchmark_group("lookup");
    group.throughput(Throughput::Elements(BATCH as u64));
    for probe in &probes {
        let batch = &probe.observables[..BATCH.min(probe.observables.len())];
        configure(&mut group, probe.name);
        group.bench_function(probe.name, |b| {
            b.iter(|| {
                for o in batch {
                    black_box(lookup::lookup(&snapshot, black_box(o), limit).ok());
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("enrich");
    group.throughput(Throughput::Elements(BATCH as u64));
    for probe in &probes {
        let requests: Vec<EnrichRequest> = probe.observables[..BATCH.min(probe.observables.len())]
            .iter()
            .map(|o| EnrichRequest::new(o.clone(), Vec::new()))
            .collect();
        configure(&mut group, probe.name);
        group.bench_function(probe.name, |b| {
            b.iter(|| {
                for r in &requests {
                    let bundle = enrich::enrich(&snapshot, black_box(r), &options)
                        .ok()
                        .and_then(|e| serde_json::to_string(&e.bundle).ok());
                    black_box(bundle);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(lookup_benches, benches);
criterion_main!(lookup_benches);
