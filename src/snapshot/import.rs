//! `ivre-sync import`: NDJSON exports → a new published generation.
//!
//! Lines are read and parsed on the calling thread and written by a writer thread in
//! batches, through a bounded channel: memory stays bounded whatever the input size,
//! and parsing and writing use both cores.

use super::layout::{self, DataDir};
use super::manifest::{GeoEntry, Manifest, Rejection, Source, SourceFile, MAX_REJECTION_SAMPLES};
use super::ndjson::LineReader;
use super::open::current_generation;
use super::publish::{pause_point, GenerationBuilder};
use super::SnapshotError;
use crate::geo::Geo;
use crate::index::writer::{MergeMode, Prepared};
use crate::index::{codec, IndexStats, IndexWriter};
use crate::ivre::{self, ParsedRecord, RecordKind, Summary, Timestamp};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

/// Records per message to the writer thread.
const CHUNK: usize = 1024;
/// Chunks in flight between the parser and the writer.
const CHANNEL_CHUNKS: usize = 8;

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
}

/// The outcome of an import.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub manifest: Manifest,
    pub generation_dir: PathBuf,
}

/// A record on its way to the writer thread: prepared (encoded, entries computed) on the
/// parsing thread for a full import; as parsed for an update, which must see the stored
/// record first.
enum Item {
    Ready(Prepared),
    Merge(RecordKind, ParsedRecord, Option<u32>),
}

type Chunk = Vec<Item>;

/// Imports the given exports into a new generation and publishes it.
pub fn import(data: &DataDir, options: &ImportOptions) -> Result<ImportReport, SnapshotError> {
    let started = Instant::now();
    if options.inputs.is_empty() && options.update.is_none() {
        return Err(SnapshotError::NothingToImport);
    }
    for (_, path) in &options.inputs {
        fs::metadata(path).map_err(|source| SnapshotError::Input {
            path: path.clone(),
            source,
        })?;
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
    let mut writer = if based_on.is_some() {
        IndexWriter::append(&builder.index_path())?
    } else {
        IndexWriter::create(&builder.index_path())?
    };
    for kind in &options.replace_kinds {
        writer.clear(*kind)?;
    }
    let mode = options.update;
    let (tx, rx) = mpsc::sync_channel::<Chunk>(CHANNEL_CHUNKS);
    let writer_thread = std::thread::Builder::new()
        .name("index-writer".into())
        .spawn(move || write_chunks(writer, rx, mode))
        .map_err(|e| SnapshotError::io(&builder.index_path(), e))?;

    let parsed = parse_inputs(options, &geo, &tx);
    drop(tx);
    let written = writer_thread
        .join()
        .map_err(|_| SnapshotError::WriterStopped)?;
    let parsed = parsed?;
    let stats = written?;

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
                .unwrap_or_else(|| "ndjson".to_owned()),
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

fn write_chunks(
    mut writer: IndexWriter,
    rx: mpsc::Receiver<Chunk>,
    mode: Option<MergeMode>,
) -> Result<IndexStats, SnapshotError> {
    for chunk in rx {
        for item in &chunk {
            match (item, mode) {
                (Item::Ready(prepared), _) => writer.add_prepared(prepared)?,
                (Item::Merge(kind, record, asn), Some(mode)) => {
                    writer.merge(*kind, record, *asn, mode)?
                }
                (Item::Merge(kind, record, asn), None) => writer.add(*kind, record, *asn)?,
            }
        }
    }
    Ok(writer.finish()?)
}

struct Parsed {
    files: Vec<SourceFile>,
    rejected: u64,
    samples: Vec<Rejection>,
    newest: Option<Timestamp>,
}

fn parse_inputs(
    options: &ImportOptions,
    geo: &Geo,
    tx: &mpsc::SyncSender<Chunk>,
) -> Result<Parsed, SnapshotError> {
    let mut out = Parsed {
        files: Vec::new(),
        rejected: 0,
        samples: Vec::new(),
        newest: None,
    };
    let mut chunk: Chunk = Vec::with_capacity(CHUNK);
    let mut sent_any = false;
    for (kind, path) in &options.inputs {
        let mut reader = LineReader::open(path).map_err(|source| SnapshotError::Input {
            path: path.clone(),
            source,
        })?;
        let mut file = SourceFile {
            path: path.display().to_string(),
            kind: kind.as_str().to_owned(),
            records: 0,
            rejected: 0,
        };
        let mut last_line = 0;
        loop {
            let next = reader
                .next_line()
                .map_err(|source| SnapshotError::ReadFailed {
                    path: path.clone(),
                    line: last_line,
                    source,
                })?;
            let Some((line_no, line)) = next else { break };
            last_line = line_no;
            if file.records == 0 && file.rejected == 0 && matches!(line, Ok("[" | "{")) {
                return Err(SnapshotError::NotNdjson { path: path.clone() });
            }
            let result = line
                .map_err(|e| e.to_string())
                .and_then(|l| ivre::parse_line(*kind, l).map_err(|e| e.to_string()));
            let record = match result {
                Ok(r) => r,
                Err(reason) => {
                    tracing::warn!(file = %path.display(), line = line_no, %reason, "rejected line");
                    if options.strict {
                        return Err(SnapshotError::Strict {
                            path: path.clone(),
                            line: line_no,
                            reason,
                        });
                    }
                    file.rejected += 1;
                    out.rejected += 1;
                    if out.samples.len() < MAX_REJECTION_SAMPLES {
                        out.samples.push(Rejection {
                            file: path.display().to_string(),
                            line: line_no,
                            reason,
                        });
                    }
                    continue;
                }
            };
            file.records += 1;
            if let Some(t) = record.summary.newest() {
                out.newest = Some(out.newest.map_or(t, |n| n.max(t)));
            }
            let asn = match &record.summary {
                Summary::Passive(p) => p.addr.and_then(|a| geo.asn(a)),
                Summary::Host(_) => None,
            };
            chunk.push(if options.update.is_some() {
                Item::Merge(*kind, record, asn)
            } else {
                Item::Ready(IndexWriter::prepare(*kind, &record, asn)?)
            });
            if chunk.len() >= CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                tx.send(full).map_err(|_| SnapshotError::WriterStopped)?;
                if !sent_any {
                    sent_any = true;
                    pause_point("records");
                }
            }
        }
        tracing::info!(file = %path.display(), kind = %kind, records = file.records, rejected = file.rejected, "read");
        out.files.push(file);
    }
    if !chunk.is_empty() {
        tx.send(chunk).map_err(|_| SnapshotError::WriterStopped)?;
        if !sent_any {
            pause_point("records");
        }
    }
    Ok(out)
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
        entries.push(GeoEntry::from_file(file));
    }
    Ok(entries)
}
