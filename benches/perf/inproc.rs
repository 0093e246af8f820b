//! The `inproc` suite: everything measured inside this process through the library's
//! public API, on generated data (`<out>/data-<records>-<seed>/`, generated when missing)
//! imported into a fresh data directory (`<out>/snap-<records>-<seed>/`).
//!
//! 1. **import**: full import of the exports (records/s, including the MaxMind files'
//!    verification and the fsyncs of publishing), then the 1 % update applied the way
//!    `ivre-sync` applies a delta (`ImportOptions::update`, a copy of the served index
//!    changed in place; `MergeMode::Accumulate`, the delta-drop mode, which also reads
//!    the stored passive records it sums into), as a fraction of the full import's time;
//! 2. **size**: allocated bytes (`blocks * 512`) of the full import's generation
//!    directory (manifest, record files, search entries) without its `geoip/` copy of
//!    the `.mmdb` files, per record and against the NDJSON input size;
//! 3. **open / swap**: `Snapshot::open` of the published generation, `Serving::reload`
//!    to the generation the update published (hot reload: open the new generation, swap
//!    it in), and the close of the swapped-out generation when its last holder drops it;
//! 4. **lookup**: `lookup::lookup` per observable type (probes from [`data::probes`], 90 %
//!    hits, 10 % misses; records capped at `IVRE_MAX_RECORDS`' default), each operation
//!    timed, with the timer's own overhead;
//! 5. **enrich**: `enrich::enrich` then `serde_json::to_string` of the bundle, timed per
//!    operation, then as many as possible in an untimed loop on one core; then on every
//!    core at once (all types but `asn` interleaved, one histogram per thread, merged);
//! 6. **RSS**: a fresh child process (`serve-rss`) opens the snapshot, runs the probes'
//!    lookups and enrichments (for at most the figure budget per type), and reports
//!    `VmRSS` and `VmHWM`.
//!
//! The latency percentiles (p50, p90, p99, p99.9, max, mean) also go to
//! `<out>/inproc-latency.json`. `generate` only makes the dataset. `serve-rss` is the
//! child of step 6 (not a suite).

use crate::data::{self, Dataset, Probes};
use crate::stats::{Latency, Report, Target};
use crate::Args;
use anyhow::Context as _;
use ivre_connector::enrich::{self, EnrichOptions, EnrichRequest};
use ivre_connector::ivre::MergeMode;
use ivre_connector::lookup;
use ivre_connector::snapshot::serving::Serving;
use ivre_connector::snapshot::{import, DataDir, ImportOptions, OpenOptions, Snapshot};
use serde_json::{json, Value};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const SUITE: &str = "inproc";

/// Loop lengths: short with `--quick`.
struct Budget {
    /// Probes per observable type.
    probes: usize,
    /// Time spent per figure in measured loops (and at most a quarter more warming up).
    per_figure: Duration,
    /// Most operations per timed loop.
    max_ops: usize,
}

impl Budget {
    fn of(args: &Args) -> Budget {
        if args.quick {
            Budget {
                probes: 200,
                per_figure: Duration::from_millis(200),
                max_ops: 20_000,
            }
        } else {
            Budget {
                probes: 2_000,
                per_figure: Duration::from_secs(2),
                max_ops: 200_000,
            }
        }
    }
}

/// Runs `suite` (`inproc`, `serving`, `generate` or the hidden `serve-rss`).
pub fn run(suite: &str, args: &Args, report: &mut Report) -> anyhow::Result<()> {
    match suite {
        "generate" => {
            let dataset = data::ensure(&args.out, args.records, args.seed)?;
            eprintln!("dataset ready in {}", dataset.dir.display());
            Ok(())
        }
        "serve-rss" => serve_rss(args),
        "serving" => serving_only(args, report),
        _ => inproc(args, report),
    }
}

fn snapshot_dir(args: &Args) -> PathBuf {
    args.out
        .join(format!("snap-{}-{}", args.records, args.seed))
}

fn dataset_of(args: &Args) -> Dataset {
    Dataset {
        dir: args
            .out
            .join(format!("data-{}-{}", args.records, args.seed)),
        records: args.records,
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn inproc(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let budget = Budget::of(args);
    let dataset = data::ensure(&args.out, args.records, args.seed)?;
    let probes = data::probes(&dataset, budget.probes)?;
    let snap_dir = snapshot_dir(args);
    let data_dir = DataDir::new(&snap_dir);

    // 1. Full import.
    let load_start = load_average();
    let cpu_start = cpu_time("/proc/self/stat");
    let (full, full_time) = data::import_full(&dataset, &snap_dir)?;
    let cpu = match (cpu_start, cpu_time("/proc/self/stat")) {
        (Some(a), Some(b)) => format!("{:.2} s", (b.saturating_sub(a)).as_secs_f64()),
        _ => "?".into(),
    };
    let records: u64 = full.manifest.counts.values().sum();
    let input = dataset.input_bytes()?;
    report.add(
        SUITE,
        "import, full",
        records as f64 / full_time.as_secs_f64(),
        "records/s",
        Some(Target::AtLeast(100_000.0)),
        format!(
            "{records} records ({} MB NDJSON) in {:.2} s ({cpu} CPU, parser and writer threads), MaxMind verification and publish fsyncs included; {} rejected",
            mb(input) as u64,
            full_time.as_secs_f64(),
            full.manifest.rejected
        ),
    );

    // 2. Size of the full import's generation.
    let (allocated, apparent) = data::disk_usage(&full.generation_dir, &["geoip"])?;
    let parts = data::index_parts(&full.generation_dir.join("index"))?;
    let (geo_allocated, _) = data::disk_usage(&full.generation_dir.join("geoip"), &[])?;
    report.add(
        SUITE,
        "index size per record",
        allocated as f64 / records as f64,
        "B/record",
        None,
        format!(
            "{:.1} MB allocated (apparent {:.1} MB), of which {parts} ({} search entries); generation dir without geoip/ (the .mmdb copies, {:.1} MB)",
            mb(allocated),
            mb(apparent),
            full.manifest.index_entries,
            mb(geo_allocated),
        ),
    );
    report.add(
        SUITE,
        "index size / NDJSON input",
        allocated as f64 / input as f64,
        "x",
        Some(Target::AtMost(1.0)),
        format!("{:.1} MB / {:.1} MB", mb(allocated), mb(input)),
    );

    // 3. Open, then serve it and swap to the generation the update publishes.
    let mut opens = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let snapshot = Snapshot::open(&data_dir)?;
        opens.push(started.elapsed());
        drop(black_box(snapshot));
    }
    opens.sort();
    report.add(
        SUITE,
        "snapshot open",
        opens[2].as_secs_f64() * 1e3,
        "ms",
        None,
        format!(
            "median of 5 (min {:.2} ms): manifest, search entries, record files, .mmdb files opened and fully verified",
            opens[0].as_secs_f64() * 1e3
        ),
    );
    let serving = Serving::open(&data_dir, None, OpenOptions::default())?;

    // 1b. The 1 % update, while the full generation is served.
    let delta_records = count_lines(&dataset.delta_inputs())?;
    let started = Instant::now();
    let update = import(
        &data_dir,
        &ImportOptions {
            inputs: dataset.delta_inputs(),
            update: Some(MergeMode::Accumulate),
            source_mode: Some("delta".into()),
            ..ImportOptions::default()
        },
    )?;
    let update_time = started.elapsed();
    // What the update spends copying the served index and making the copy durable,
    // measured apart.
    let copy_to = args.out.join("copy-probe");
    let started = Instant::now();
    copy_dir(&full.generation_dir.join("index"), &copy_to)?;
    let copy_time = started.elapsed();
    std::fs::remove_dir_all(&copy_to)?;
    report.add(
        SUITE,
        "import, 1 % update / full",
        update_time.as_secs_f64() / full_time.as_secs_f64(),
        "x",
        Some(Target::AtMost(0.10)),
        format!(
            "{delta_records} records (half changed, half new) in {:.3} s vs {:.2} s; MergeMode::Accumulate on a copy of the served index (copying it and syncing the copy alone: {:.3} s); {} records after",
            update_time.as_secs_f64(),
            full_time.as_secs_f64(),
            copy_time.as_secs_f64(),
            update.manifest.counts.values().sum::<u64>()
        ),
    );
    // Held as a request in flight would hold it: the previous generation closes when the
    // last holder lets it go, timed apart.
    let previous = serving.snapshot().context("no snapshot served")?;
    let started = Instant::now();
    let swapped = serving.reload()?;
    let swap_time = started.elapsed();
    anyhow::ensure!(
        swapped,
        "the served snapshot did not change after the update"
    );
    let started = Instant::now();
    drop(previous);
    let close_time = started.elapsed();
    report.add(
        SUITE,
        "swap (hot reload)",
        swap_time.as_secs_f64() * 1e3,
        "ms",
        None,
        "Serving::reload to the new generation: open it (as above) and swap it in",
    );
    report.add(
        SUITE,
        "close of the previous generation",
        close_time.as_secs_f64() * 1e3,
        "ms",
        None,
        "dropping the last Arc of the swapped-out snapshot (sled flush and thread join): paid by whichever request releases it last",
    );

    // 4. Lookups.
    let snapshot = serving.snapshot().context("no snapshot served")?;
    let overhead = timer_overhead();
    report.add(
        SUITE,
        "timer overhead",
        overhead.quantile_us(0.5) * 1e3,
        "ns",
        None,
        format!(
            "empty Instant pair, p99 {:.0} ns; included in every timed operation",
            overhead.quantile_us(0.99) * 1e3
        ),
    );
    let mut histograms = serde_json::Map::new();
    histograms.insert("timer overhead".into(), overhead.to_json());
    // 4-5. Lookup, and enrichment (lookup + bundle + JSON), per observable type.
    for probe in &probes {
        probe_rows(&snapshot, probe, &budget, report, &mut histograms)?;
    }
    let options = EnrichOptions::default();
    // 5b. All cores at once, as the daemon's concurrent enrichments run.
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let mixed = interleaved(&probes);
    let started = Instant::now();
    let per_thread = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (snapshot, options, budget, mixed) = (&snapshot, &options, &budget, &mixed);
                scope.spawn(move || {
                    // Each thread starts at another place in the probes.
                    let mut mine = mixed.clone();
                    mine.rotate_left(t * mixed.len() / threads);
                    timed(&mine, budget, |r| {
                        black_box(enrich_one(snapshot, r, options)?);
                        Ok(())
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("thread panicked")))
            })
            .collect::<Vec<_>>()
    });
    let elapsed = started.elapsed();
    let mut merged = Latency::new();
    for latency in per_thread {
        merged.add(&latency?);
    }
    histograms.insert(format!("enrich mixed, {threads} threads"), merged.to_json());
    report.add(
        SUITE,
        &format!("enrich mixed, {threads} threads"),
        merged.quantile_us(0.99),
        "µs",
        Some(Target::AtMost(150.0)),
        format!(
            "{}; {:.0}/s in all; every type but asn, interleaved, one histogram per thread merged",
            merged.summary(),
            merged.count() as f64 / elapsed.as_secs_f64()
        ),
    );

    // 7. The shapes of real scans: cost per answer and per record.
    shape_rows(&dataset, &snapshot, &budget, report, &mut histograms)?;

    drop(snapshot);
    drop(serving);
    let path = args.out.join("inproc-latency.json");
    std::fs::write(&path, serde_json::to_string_pretty(&histograms)?)?;
    eprintln!(
        "latency histograms (p50, p90, p99, p99.9, max, mean): {}",
        path.display()
    );

    report.add(
        SUITE,
        "load average (1 min)",
        load_average().parse().unwrap_or(f64::NAN),
        "",
        None,
        format!(
            "{load_start} when the suite started, on {} cores; the suite keeps one thread busy, so above 1 other processes competed for the cores",
            std::thread::available_parallelism().map_or(0, usize::from)
        ),
    );

    // 6. RSS of a fresh process serving the snapshot.
    let rss = rss_child(args)?;
    let field = |k: &str| rss.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let detail = format!(
        "fresh process: open, then each probe's lookup and enrichment (at most the figure budget per type; {} operations); VmRSS {:.1} MB, VmHWM {:.1} MB",
        field("operations"),
        field("vmrss_kb") / 1e3,
        field("vmhwm_kb") / 1e3
    );
    report.add(
        SUITE,
        "RSS serving (VmRSS)",
        field("vmrss_kb") / 1e3,
        "MB",
        Some(Target::AtMost(200.0)),
        detail.clone(),
    );
    report.add(
        SUITE,
        "peak RSS serving (VmHWM)",
        field("vmhwm_kb") / 1e3,
        "MB",
        Some(Target::AtMost(200.0)),
        detail,
    );
    Ok(())
}

/// The `serving` suite: import, then only the serving figures (lookups and enrichments
/// of the probes and of the shapes of real scans), for iterating on the read path.
fn serving_only(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let budget = Budget::of(args);
    let dataset = data::ensure(&args.out, args.records, args.seed)?;
    let probes = data::probes(&dataset, budget.probes)?;
    let snap_dir = snapshot_dir(args);
    let (full, full_time) = data::import_full(&dataset, &snap_dir)?;
    report.add(
        SUITE,
        "import, full",
        full.manifest.counts.values().sum::<u64>() as f64 / full_time.as_secs_f64(),
        "records/s",
        None,
        format!(
            "{:.2} s (machine load: see the full suite)",
            full_time.as_secs_f64()
        ),
    );
    let snapshot = Snapshot::open(&DataDir::new(&snap_dir))?;
    let mut histograms = serde_json::Map::new();
    let only: Option<Vec<String>> = std::env::var("IVRE_BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    for probe in &probes {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == probe.name))
        {
            continue;
        }
        probe_rows(&snapshot, probe, &budget, report, &mut histograms)?;
    }
    if only
        .as_ref()
        .is_none_or(|o| o.iter().any(|n| n == "shapes"))
    {
        shape_rows(&dataset, &snapshot, &budget, report, &mut histograms)?;
    }
    Ok(())
}

/// The rows of one observable type's probes (the `inproc` and `serving` suites): lookup
/// p99 (with how many probes found records), enrichment p99 (with the bundle's size) and
/// enrichments per CPU-second of one thread.
fn probe_rows(
    snapshot: &Snapshot,
    probe: &Probes,
    budget: &Budget,
    report: &mut Report,
    histograms: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    let options = EnrichOptions::default();
    let limit = Some(options.max_records);
    let (mut hits, mut checked, started) = (0usize, 0usize, Instant::now());
    for o in &probe.observables {
        let r = lookup::lookup(snapshot, o, limit)?;
        hits += usize::from(!(r.passive.is_empty() && r.scans.is_empty()));
        checked += 1;
        if started.elapsed() > budget.per_figure / 4 {
            break;
        }
    }
    let latency = timed(&probe.observables, budget, |o| {
        black_box(lookup::lookup(snapshot, o, limit)?);
        Ok(())
    })?;
    p99_row(
        report,
        histograms,
        format!("lookup {}", probe.name),
        &latency,
        Target::AtMost(20.0),
        format!("{hits}/{checked} probes found records"),
    );
    let requests = requests(probe);
    let (mut objects, mut bundles, started) = (0usize, 0usize, Instant::now());
    for r in &requests {
        let e = enrich::enrich(snapshot, r, &options)?;
        objects += e.bundle["objects"].as_array().map_or(0, Vec::len);
        bundles += 1;
        if started.elapsed() > budget.per_figure / 4 {
            break;
        }
    }
    let latency = timed(&requests, budget, |r| {
        black_box(enrich_one(snapshot, r, &options)?);
        Ok(())
    })?;
    p99_row(
        report,
        histograms,
        format!("enrich {}", probe.name),
        &latency,
        Target::AtMost(150.0),
        format!("{:.1} objects per bundle", objects as f64 / bundles as f64),
    );
    let (rate, wall_rate) = throughput(&requests, budget.per_figure, |r| {
        black_box(enrich_one(snapshot, r, &options)?);
        Ok(())
    })?;
    report.add(
        SUITE,
        &format!("enrich {} throughput", probe.name),
        rate,
        "/s",
        Some(Target::AtLeast(20_000.0)),
        format!("one thread, untimed loop over the probes: per CPU second of the thread ({wall_rate:.0}/s per wall-clock second)"),
    );
    Ok(())
}

/// A latency figure: its histogram kept for the JSON file, its p99 as a report row whose
/// detail is the percentiles, then `detail`.
fn p99_row(
    report: &mut Report,
    histograms: &mut serde_json::Map<String, Value>,
    name: String,
    latency: &Latency,
    target: Target,
    detail: String,
) {
    report.add(
        SUITE,
        &name,
        latency.quantile_us(0.99),
        "µs",
        Some(target),
        format!("{}; {detail}", latency.summary()),
    );
    histograms.insert(name, latency.to_json());
}

/// Lookup and enrichment of the shapes of real scans (`scale_data::write_shapes`): per
/// answer (p50, p99 of each operation, timed), per record of the answer (p50 divided by
/// the records it holds, capped at `IVRE_MAX_RECORDS`), and operations per CPU-second of
/// one thread (untimed loop). Targets (issue 12): a certificate on 20 hosts enriched in
/// ≤ 300 µs p99 and ≥ 5,000/s; a single-record answer ≤ 150 µs p99; enrichment
/// ≥ 20,000/s for answers of one record.
fn shape_rows(
    dataset: &Dataset,
    snapshot: &Snapshot,
    budget: &Budget,
    report: &mut Report,
    histograms: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    let options = EnrichOptions::default();
    let limit = Some(options.max_records);
    // A quarter of the budget per figure: there are many.
    let budget = Budget {
        probes: budget.probes,
        per_figure: budget.per_figure / 4,
        max_ops: budget.max_ops,
    };
    for (shape, observables) in data::shapes(dataset)? {
        let mut records = 0usize;
        for o in &observables {
            let r = lookup::lookup(snapshot, o, limit)?;
            records += r.passive.len() + r.scans.len() + r.view.len();
        }
        let per_answer = records as f64 / observables.len().max(1) as f64;
        anyhow::ensure!(
            per_answer >= 1.0,
            "the shape {:?} found no record: the dataset and the index disagree",
            shape.name
        );
        let lookup_latency = timed(&observables, &budget, |o| {
            black_box(lookup::lookup(snapshot, o, limit)?);
            Ok(())
        })?;
        let (lookup_rate, _) = throughput(&observables, budget.per_figure, |o| {
            black_box(lookup::lookup(snapshot, o, limit)?);
            Ok(())
        })?;
        let requests: Vec<EnrichRequest> = observables
            .iter()
            .map(|o| EnrichRequest::new(o.clone(), Vec::new()))
            .collect();
        let mut objects = 0usize;
        for r in &requests {
            objects += enrich::enrich(snapshot, r, &options)?.bundle["objects"]
                .as_array()
                .map_or(0, Vec::len);
        }
        let enrich_latency = timed(&requests, &budget, |r| {
            black_box(enrich_one(snapshot, r, &options)?);
            Ok(())
        })?;
        let (enrich_rate, _) = throughput(&requests, budget.per_figure, |r| {
            black_box(enrich_one(snapshot, r, &options)?);
            Ok(())
        })?;
        let per_record = |l: &Latency| l.quantile_us(0.5) / per_answer;
        let (p99_target, rate_target) = if shape.name == "certificate on 20 hosts" {
            (Some(Target::AtMost(300.0)), Some(Target::AtLeast(5_000.0)))
        } else if per_answer <= 1.0 {
            (Some(Target::AtMost(150.0)), Some(Target::AtLeast(20_000.0)))
        } else {
            (None, None)
        };
        let name = format!("{} ({} answers)", shape.name, observables.len());
        histograms.insert(
            format!("shape lookup {}", shape.name),
            lookup_latency.to_json(),
        );
        histograms.insert(
            format!("shape enrich {}", shape.name),
            enrich_latency.to_json(),
        );
        report.add(
            SUITE,
            &format!("shape lookup, {name}"),
            lookup_latency.quantile_us(0.99),
            "µs",
            None,
            format!(
                "{:.0} records per answer; {}; {:.2} µs per record (p50); {lookup_rate:.0}/s per CPU-second ({:.0} records/s)",
                per_answer,
                lookup_latency.summary(),
                per_record(&lookup_latency),
                lookup_rate * per_answer
            ),
        );
        report.add(
            SUITE,
            &format!("shape enrich, {name}"),
            enrich_latency.quantile_us(0.99),
            "µs",
            p99_target,
            format!(
                "{:.0} records and {:.0} objects per answer; {}; {:.2} µs per record (p50)",
                per_answer,
                objects as f64 / requests.len().max(1) as f64,
                enrich_latency.summary(),
                per_record(&enrich_latency),
            ),
        );
        report.add(
            SUITE,
            &format!("shape enrich throughput, {name}"),
            enrich_rate,
            "/s",
            rate_target,
            format!(
                "one thread, per CPU-second; {:.0} records/s",
                enrich_rate * per_answer
            ),
        );
    }
    Ok(())
}

/// Copies a directory tree, file by file, and syncs the copies to disk (as an update
/// copies the served index and publishing makes it durable).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
            std::fs::File::open(&target)?.sync_all()?;
        }
    }
    Ok(())
}

fn count_lines(inputs: &[(ivre_connector::ivre::RecordKind, PathBuf)]) -> anyhow::Result<u64> {
    let mut n = 0;
    for (_, path) in inputs {
        let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        n += bytes.iter().filter(|b| **b == b'\n').count() as u64;
    }
    Ok(n)
}

fn requests(probe: &Probes) -> Vec<EnrichRequest> {
    probe
        .observables
        .iter()
        .map(|o| EnrichRequest::new(o.clone(), Vec::new()))
        .collect()
}

/// The requests of every type but `asn` (whose searches return thousands of records),
/// one of each type in turn.
fn interleaved(probes: &[Probes]) -> Vec<EnrichRequest> {
    let lists: Vec<Vec<EnrichRequest>> = probes
        .iter()
        .filter(|p| p.name != "asn")
        .map(requests)
        .collect();
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| lists.iter().filter_map(move |l| l.get(i).cloned()))
        .collect()
}

/// One offline enrichment as the connector makes it: the bundle, serialized.
fn enrich_one(
    snapshot: &Snapshot,
    request: &EnrichRequest,
    options: &EnrichOptions,
) -> anyhow::Result<String> {
    let enrichment = enrich::enrich(snapshot, request, options)?;
    Ok(serde_json::to_string(&enrichment.bundle)?)
}

/// The cost of timing nothing: an `Instant` pair, recorded.
fn timer_overhead() -> Latency {
    let mut latency = Latency::new();
    for _ in 0..100_000 {
        let started = Instant::now();
        latency.record(black_box(started).elapsed());
    }
    latency
}

/// Runs `op` on `items` in turn, each call timed: a warm-up (at most a quarter of the
/// budget, at most one pass), then until the budget or `max_ops` is spent.
fn timed<T>(
    items: &[T],
    budget: &Budget,
    mut op: impl FnMut(&T) -> anyhow::Result<()>,
) -> anyhow::Result<Latency> {
    let warm_up = Instant::now();
    for item in items {
        op(item)?;
        if warm_up.elapsed() > budget.per_figure / 4 {
            break;
        }
    }
    let mut latency = Latency::new();
    let started = Instant::now();
    for item in items.iter().cycle() {
        let t = Instant::now();
        op(black_box(item))?;
        latency.record(t.elapsed());
        if latency.count() as usize >= budget.max_ops || started.elapsed() >= budget.per_figure {
            break;
        }
    }
    Ok(latency)
}

/// Operations per second of `op` over `items` in a loop timed as a whole: per second of
/// the thread's CPU time (what one core sustains, whatever else runs on the machine)
/// and per wall-clock second.
fn throughput<T>(
    items: &[T],
    budget: Duration,
    mut op: impl FnMut(&T) -> anyhow::Result<()>,
) -> anyhow::Result<(f64, f64)> {
    let cpu_start = cpu_time("/proc/thread-self/stat");
    let started = Instant::now();
    let mut ops = 0u64;
    loop {
        for chunk in items.chunks(16) {
            for item in chunk {
                op(black_box(item))?;
            }
            ops += chunk.len() as u64;
            if started.elapsed() >= budget {
                let wall = ops as f64 / started.elapsed().as_secs_f64();
                let cpu = match (cpu_start, cpu_time("/proc/thread-self/stat")) {
                    (Some(a), Some(b)) if b > a => ops as f64 / (b - a).as_secs_f64(),
                    _ => wall,
                };
                return Ok((cpu, wall));
            }
        }
    }
}

/// Re-runs this binary as `serve-rss` and reads its JSON line.
fn rss_child(args: &Args) -> anyhow::Result<Value> {
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("--records")
        .arg(args.records.to_string())
        .arg("--seed")
        .arg(args.seed.to_string())
        .arg("--out")
        .arg(&args.out);
    if args.quick {
        command.arg("--quick");
    }
    let output = command.arg("serve-rss").output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "serve-rss failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("serve-rss printed no result")?;
    Ok(serde_json::from_str(line)?)
}

/// CPU time (user + system) from a `/proc/.../stat` file (`/proc/self/stat`: the
/// process, `/proc/thread-self/stat`: the calling thread); `None` where unreadable.
fn cpu_time(stat: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(stat).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses; utime and
    // stime are fields 14 and 15, in clock ticks (100 per second on Linux).
    let mut fields = text.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The 1-minute load average, to read the figures with (other processes compete for
/// the cores).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// `VmRSS` and `VmHWM` of this process, in kB.
fn memory() -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in /proc/self/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// The child of step 6: opens the snapshot as the daemon does, answers the probes
/// (lookup and enrichment), prints its memory as one JSON line and exits.
fn serve_rss(args: &Args) -> anyhow::Result<()> {
    let budget = Budget::of(args);
    let (rss_start, _) = memory()?;
    let probes = data::probes(&dataset_of(args), budget.probes)?;
    let serving = Serving::open(
        &DataDir::new(snapshot_dir(args)),
        None,
        OpenOptions::default(),
    )?;
    let snapshot = serving.snapshot().context("no snapshot served")?;
    let options = EnrichOptions::default();
    let mut operations = 0u64;
    for probe in &probes {
        let started = Instant::now();
        for request in requests(probe) {
            let found = lookup::lookup(&snapshot, &request.observable, Some(options.max_records))?;
            black_box(found.to_json_line(false));
            black_box(enrich_one(&snapshot, &request, &options)?);
            operations += 2;
            if started.elapsed() > budget.per_figure {
                break;
            }
        }
    }
    let (rss, hwm) = memory()?;
    println!(
        "{}",
        json!({"vmrss_kb": rss, "vmhwm_kb": hwm, "start_vmrss_kb": rss_start, "operations": operations, "generation": snapshot.name})
    );
    drop(snapshot);
    drop(serving);
    std::process::exit(0)
}
