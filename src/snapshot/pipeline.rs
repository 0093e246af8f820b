//! The import pipeline: NDJSON lines → parsed, encoded records → the index writer.
//!
//! ```text
//! calling thread: read lines ──chunk k──► parser k mod N ──► index-writer (chunk 0, 1, 2, …)
//! ```
//!
//! The calling thread reads lines (and gunzips) in chunks of [`CHUNK`] and deals them to
//! `N` parser threads in turn (`N` = the machine's cores, at most 4); each parser parses,
//! normalizes and, for a full import, encodes its records and computes their search
//! entries; the writer takes the parsers' chunks back in the same turn, so records keep
//! their input order. Channels are bounded ([`CHANNEL_CHUNKS`] chunks each): memory stays
//! bounded whatever the input. A parser that meets a bad line in strict mode, or a writer
//! that fails, stops the others: their channels close.

use super::manifest::{Rejection, SourceFile, MAX_REJECTION_SAMPLES};
use super::ndjson::LineReader;
use super::publish::pause_point;
use super::{ImportOptions, SnapshotError};
use crate::geo::Geo;
use crate::index::writer::{MergeMode, Prepared};
use crate::index::{IndexStats, IndexWriter};
use crate::ivre::{self, ParsedRecord, RecordKind, Summary, Timestamp};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Lines per chunk.
const CHUNK: usize = 1024;
/// Chunks in flight on each channel.
const CHANNEL_CHUNKS: usize = 4;

/// What the inputs held.
pub(super) struct Parsed {
    pub files: Vec<SourceFile>,
    pub rejected: u64,
    pub samples: Vec<Rejection>,
    pub newest: Option<Timestamp>,
}

/// A record on its way to the writer: prepared (encoded, entries computed) by a parser
/// for a full import; as parsed for an update, which must read the stored record first.
enum Item {
    Ready(Prepared),
    Merge(RecordKind, Box<ParsedRecord>, Option<u32>, MergeMode),
}

/// Lines of one input file: `(line number, line or why it is unreadable)`.
struct Lines {
    file: usize,
    lines: Vec<(u64, Result<String, String>)>,
}

/// A parsed chunk.
struct Done {
    file: usize,
    items: Vec<Item>,
    records: u64,
    rejected: Vec<(u64, String)>,
    newest: Option<Timestamp>,
}

/// Runs the pipeline over `options.inputs` into `writer`, then finishes the index.
pub(super) fn run(
    options: &ImportOptions,
    geo: &Geo,
    writer: IndexWriter,
    index_path: &Path,
) -> Result<(Parsed, IndexStats), SnapshotError> {
    let parsers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    std::thread::scope(|scope| {
        let spawn_err = |e| SnapshotError::io(index_path, e);
        let mut to_parsers = Vec::new();
        let mut from_parsers = Vec::new();
        let mut handles = Vec::new();
        for i in 0..parsers {
            let (lines_tx, lines_rx) = sync_channel::<Lines>(CHANNEL_CHUNKS);
            let (done_tx, done_rx) = sync_channel(CHANNEL_CHUNKS);
            to_parsers.push(lines_tx);
            from_parsers.push(done_rx);
            let handle = std::thread::Builder::new()
                .name(format!("import-parse-{i}"))
                .spawn_scoped(scope, move || parse_chunks(options, geo, lines_rx, done_tx))
                .map_err(spawn_err)?;
            handles.push(handle);
        }
        let writer = std::thread::Builder::new()
            .name("index-writer".into())
            .spawn_scoped(scope, move || write_chunks(writer, from_parsers))
            .map_err(spawn_err)?;
        let read = read_lines(options, &to_parsers);
        drop(to_parsers);
        let written = writer.join().map_err(|_| SnapshotError::WriterStopped)?;
        for handle in handles {
            // A parser that panicked may have lost a chunk: never publish then.
            handle.join().map_err(|_| SnapshotError::WriterStopped)?;
        }
        // The first real failure wins: a reader that stopped because the writer did
        // reports the writer's error.
        let (done, stats) = match (read, written) {
            (Err(e), _) if !matches!(e, SnapshotError::WriterStopped) => return Err(e),
            (_, Err(e)) | (Err(e), Ok(_)) => return Err(e),
            (Ok(()), Ok(written)) => written,
        };
        Ok((summarize(options, done), stats))
    })
}

/// Reads every input and deals its lines to the parsers in turn.
fn read_lines(options: &ImportOptions, to: &[SyncSender<Lines>]) -> Result<(), SnapshotError> {
    let mut next = 0;
    let mut send = |chunk: Lines| -> Result<(), SnapshotError> {
        to[next % to.len()]
            .send(chunk)
            .map_err(|_| SnapshotError::WriterStopped)?;
        if next == 0 {
            pause_point("records");
        }
        next += 1;
        Ok(())
    };
    for (file, (_, path)) in options.inputs.iter().enumerate() {
        let mut reader = LineReader::open(path).map_err(|source| SnapshotError::Input {
            path: path.clone(),
            source,
        })?;
        let mut lines = Vec::with_capacity(CHUNK);
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
            if last_line == 0 && matches!(line, Ok("[" | "{")) {
                return Err(SnapshotError::NotNdjson { path: path.clone() });
            }
            last_line = line_no;
            lines.push((line_no, line.map(str::to_owned).map_err(|e| e.to_string())));
            if lines.len() >= CHUNK {
                let full = std::mem::replace(&mut lines, Vec::with_capacity(CHUNK));
                send(Lines { file, lines: full })?;
            }
        }
        if !lines.is_empty() {
            send(Lines { file, lines })?;
        }
    }
    Ok(())
}

/// A parser thread: parses the chunks it is dealt until its channel closes.
fn parse_chunks(
    options: &ImportOptions,
    geo: &Geo,
    lines: Receiver<Lines>,
    done: SyncSender<Result<Done, SnapshotError>>,
) {
    for chunk in lines {
        let result = parse_chunk(options, geo, chunk);
        let failed = result.is_err();
        if done.send(result).is_err() || failed {
            return;
        }
    }
}

fn parse_chunk(options: &ImportOptions, geo: &Geo, chunk: Lines) -> Result<Done, SnapshotError> {
    let (kind, path) = &options.inputs[chunk.file];
    let mut done = Done {
        file: chunk.file,
        items: Vec::with_capacity(chunk.lines.len()),
        records: 0,
        rejected: Vec::new(),
        newest: None,
    };
    for (line_no, line) in chunk.lines {
        let result = line.and_then(|l| ivre::parse_line(*kind, &l).map_err(|e| e.to_string()));
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
                done.rejected.push((line_no, reason));
                continue;
            }
        };
        done.records += 1;
        if let Some(t) = record.summary.newest() {
            done.newest = Some(done.newest.map_or(t, |n| n.max(t)));
        }
        let asn = match &record.summary {
            Summary::Passive(p) => p.addr.and_then(|a| geo.asn(a)),
            Summary::Host(_) => None,
        };
        done.items.push(match options.update {
            Some(mode) => Item::Merge(*kind, Box::new(record), asn, mode),
            None => Item::Ready(IndexWriter::prepare(*kind, &record, asn)?),
        });
    }
    Ok(done)
}

/// The writer thread: takes the parsers' chunks back in turn (input order), writes
/// their records and finishes the index.
fn write_chunks(
    mut writer: IndexWriter,
    from: Vec<Receiver<Result<Done, SnapshotError>>>,
) -> Result<(Vec<Done>, IndexStats), SnapshotError> {
    let mut tallies = Vec::new();
    for next in 0.. {
        // Chunks are dealt in turn: the first parser with nothing more marks the end.
        let Ok(chunk) = from[next % from.len()].recv() else {
            break;
        };
        let mut chunk = chunk?;
        for item in &chunk.items {
            match item {
                Item::Ready(prepared) => writer.add_prepared(prepared)?,
                Item::Merge(kind, record, asn, mode) => writer.merge(*kind, record, *asn, *mode)?,
            }
        }
        chunk.items = Vec::new();
        tallies.push(chunk);
    }
    Ok((tallies, writer.finish()?))
}

/// Counts per file, rejection samples (in input order) and the newest record date.
fn summarize(options: &ImportOptions, chunks: Vec<Done>) -> Parsed {
    let mut out = Parsed {
        files: options
            .inputs
            .iter()
            .map(|(kind, path)| SourceFile {
                path: path.display().to_string(),
                kind: kind.as_str().to_owned(),
                records: 0,
                rejected: 0,
            })
            .collect(),
        rejected: 0,
        samples: Vec::new(),
        newest: None,
    };
    for chunk in chunks {
        let file = &mut out.files[chunk.file];
        file.records += chunk.records;
        file.rejected += chunk.rejected.len() as u64;
        out.rejected += chunk.rejected.len() as u64;
        for (line, reason) in chunk.rejected {
            if out.samples.len() < MAX_REJECTION_SAMPLES {
                out.samples.push(Rejection {
                    file: file.path.clone(),
                    line,
                    reason,
                });
            }
        }
        if let Some(t) = chunk.newest {
            out.newest = Some(out.newest.map_or(t, |n| n.max(t)));
        }
    }
    for file in &out.files {
        tracing::info!(file = %file.path, kind = %file.kind, records = file.records, rejected = file.rejected, "read");
    }
    out
}
