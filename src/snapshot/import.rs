//! `ivre-sync import`: NDJSON exports → a new published generation.
//!
//! Lines are read, parsed and written by the threads of `snapshot::pipeline`: memory
//! stays bounded whatever the input size, and every core works.

use super::layout::{self, DataDir};
use super::manifest::{GeoEntry, Manifest, Source};
use super::ndjson::InputLimits;
use super::open::current_generation;
use super::publish::GenerationBuilder;
use super::SnapshotError;
use crate::geo::Geo;
use crate::index::{codec, BaseWriter, UpdateWriter};
use crate::ivre::MergeMode;
use crate::ivre::{RecordKind, Timestamp};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Input files with the kind of records they hold, imported in this order.
    pub inputs: Vec<(RecordKind, PathBuf)>,
    /// Directory of `.mmdb` files; without it the served generation's files are carried forward.
    pub geoip_dir: Option<PathBuf>,
    /// Abort (publishing nothing) at the first malformed line.
    pub strict: bool,
    /// Update a copy of the served generation instead of building from scratch: records
    /// with a stored identity replace or accumulate into it (`None`: a full import).
    pub update: Option<MergeMode>,
    /// Kinds whose stored records are dropped first (their inputs replace them; with
    /// `update`, the other kinds are kept).
    pub replace_kinds: Vec<RecordKind>,
    /// Where the records come from, for the manifest (default: `ndjson` files).
    pub source_kind: Option<String>,
    pub source_url: Option<String>,
    pub source_mode: Option<String>,
    /// For pulls: record the newest record as the watermark the next incremental pull
    /// starts from.
    pub watermark: bool,
    /// Line length and decompression limits of the inputs.
    pub limits: InputLimits,
    /// Inputs must be regular files, opened without following a symlink (the drop
    /// folder); otherwise a path is opened as given (`ivre-sync import <(zcat …)` works).
    pub regular_files_only: bool,
    /// Where to report the bytes read (`ivre-sync`'s progress bar); none: not reported.
    pub progress: Option<std::sync::Arc<dyn super::progress::Progress>>,
}

/// The outcome of an import.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub manifest: Manifest,
    pub generation_dir: PathBuf,
}

/// Imports the given exports into a new generation and publishes it.
pub fn import(data: &DataDir, options: &ImportOptions) -> Result<ImportReport, SnapshotError> {
    let started = Instant::now();
    if options.inputs.is_empty() && options.update.is_none() {
        return Err(SnapshotError::NothingToImport);
    }
    for (_, path) in &options.inputs {
        let input_err = |source| SnapshotError::Input {
            path: path.clone(),
            source,
        };
        if options.regular_files_only {
            // Opened (no symlink followed) and checked: a regular file.
            super::ndjson::open_input(path, true).map_err(input_err)?;
        } else {
            fs::metadata(path).map_err(input_err)?;
        }
    }
    let builder = GenerationBuilder::start(data)?;
    let (geo, geoip_origin) = resolve_geo(data, options.geoip_dir.as_deref())?;
    let geo_entries = copy_geo_files(&geo, &builder.geoip_path())?;

    let based_on = if options.update.is_some() {
        let (name, dir, manifest) = super::open::current_manifest(data)?;
        // A copy of the served index (never written in place); updated below.
        super::open::copy_dir(&dir.join(layout::INDEX), &builder.index_path())?;
        Some((name, manifest))
    } else {
        None
    };
    let index_path = builder.index_path();
    let (parsed, stats) = match (&based_on, options.update) {
        (Some((_, manifest)), Some(mode)) => {
            let mut writer = UpdateWriter::open(&index_path, &manifest.index_check())?;
            for kind in &options.replace_kinds {
                writer.clear(*kind)?;
            }
            let sink = super::pipeline::Merging { writer, mode };
            super::pipeline::run(options, &geo, sink, &index_path)?
        }
        // A new index: a replaced kind has nothing to clear.
        _ => {
            let writer = BaseWriter::create(&index_path)?;
            super::pipeline::run(options, &geo, writer, &index_path)?
        }
    };

    let newest = newest_of(
        parsed.newest,
        based_on
            .as_ref()
            .and_then(|(_, m)| m.newest_record.as_deref()),
    );
    let manifest = Manifest {
        format_version: codec::FORMAT_VERSION,
        generation: builder.name().to_owned(),
        built_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        build_seconds: started.elapsed().as_secs_f64(),
        tool: format!("ivre-sync {}", env!("CARGO_PKG_VERSION")),
        source: Source {
            kind: options
                .source_kind
                .clone()
                .unwrap_or_else(|| super::manifest::SOURCE_NDJSON.to_owned()),
            url: options.source_url.clone(),
            mode: options.source_mode.clone(),
            based_on: based_on.as_ref().map(|(name, _)| name.clone()),
            files: parsed.files,
        },
        counts: stats
            .records
            .iter()
            .map(|(k, n)| (k.as_str().to_owned(), *n))
            .collect(),
        rejected: parsed.rejected,
        rejected_samples: parsed.samples,
        watermark: options.watermark.then(|| newest.clone()).flatten(),
        newest_record: newest,
        index_entries: stats.index_entries,
        checksum: stats.checksum,
        files: stats.files,
        records_bytes: stats.records_bytes,
        geoip_origin,
        geoip: geo_entries,
    };
    let generation_dir = builder.publish(&manifest)?;
    Ok(ImportReport {
        manifest,
        generation_dir,
    })
}

/// The newer of this import's newest record and the updated generation's.
fn newest_of(new: Option<Timestamp>, old: Option<&str>) -> Option<String> {
    let old = old.and_then(Timestamp::parse_str);
    [new, old]
        .into_iter()
        .flatten()
        .max()
        .map(Timestamp::to_ivre_string)
}

/// The MaxMind data for the new generation: the given directory, else the served
/// generation's files, else none (geo disabled, with a warning).
fn resolve_geo(data: &DataDir, geoip_dir: Option<&Path>) -> Result<(Geo, String), SnapshotError> {
    if let Some(dir) = geoip_dir {
        let geo = Geo::open_dir(dir)?;
        if geo.is_empty() {
            tracing::warn!(dir = %dir.display(), "no usable MaxMind database (City, Country, ASN) found: geo data disabled in this snapshot");
        }
        return Ok((geo, "imported".to_owned()));
    }
    if let Ok((name, dir)) = current_generation(data) {
        let served = dir.join(layout::GEOIP);
        if served.is_dir() {
            let geo = Geo::open_dir(&served)?;
            if !geo.is_empty() {
                tracing::info!(from = %name, "carrying forward the served generation's MaxMind files");
                return Ok((geo, "carried-forward".to_owned()));
            }
        }
    }
    tracing::warn!("no --geoip-dir given and no MaxMind files to carry forward: geo data (and passive AS search) disabled in this snapshot");
    Ok((Geo::empty(), "none".to_owned()))
}

fn copy_geo_files(geo: &Geo, to: &Path) -> Result<Vec<GeoEntry>, SnapshotError> {
    fs::create_dir_all(to).map_err(|e| SnapshotError::io(to, e))?;
    let mut entries = Vec::new();
    for file in geo.files() {
        let name = file.path.file_name().unwrap_or_default();
        let dst = to.join(name);
        if !dst.exists() {
            fs::copy(&file.path, &dst).map_err(|e| SnapshotError::io(&file.path, e))?;
        }
        entries.push(GeoEntry::from_file(file, &dst)?);
    }
    Ok(entries)
}
