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
//! their input order. Channels are bounded ([`CHANNEL_CHUNKS`] chunks each), a chunk ends
//! at [`CHUNK`] lines or [`CHUNK_BYTES`] bytes, and the text of all chunks between the
//! reader and the writer is capped at [`IN_FLIGHT_BYTES`] (a chunk waits for room; one
//! chunk always passes, so a line up to the line limit still goes through): memory stays
//! bounded in bytes whatever the input. A parser that meets a bad line in strict mode, or a writer
//! that fails, stops the others: their channels close.

use super::manifest::{Rejection, SourceFile, MAX_REJECTION_SAMPLES};
use super::ndjson::{self, LineReader};
use super::progress::Unit;
use super::publish::pause_point;
use super::{ImportOptions, SnapshotError};
use crate::geo::Geo;
use crate::index::base_writer::Dictionaries;
use crate::index::writer::{prepare, Prepared};
use crate::index::{BaseWriter, IndexError, IndexStats, UpdateWriter};
use crate::ivre::{self, MergeMode, ParsedRecord, RecordKind, Summary, Timestamp};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Lines per chunk.
const CHUNK: usize = 1024;
/// Bytes of line text per chunk (a chunk ends at whichever limit comes first).
const CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// Chunks in flight on each channel.
const CHANNEL_CHUNKS: usize = 4;
/// Bytes of line text read but not yet written, all chunks together.
const IN_FLIGHT_BYTES: usize = 256 * 1024 * 1024;

/// The bytes of line text between the reader and the writer: the reader takes room
/// for a chunk before sending it, the writer gives it back once the chunk is written.
struct Budget {
    state: Mutex<(usize, bool)>,
    changed: Condvar,
    max: usize,
}

impl Budget {
    fn new(max: usize) -> Budget {
        Budget {
            state: Mutex::new((0, false)),
            changed: Condvar::new(),
            max,
        }
    }

    /// Waits for room for `n` bytes (always granted when nothing is in flight);
    /// `false` once the writer stopped.
    fn take(&self, n: usize) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !state.1 && state.0 > 0 && state.0 + n > self.max {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.1 {
            return false;
        }
        state.0 += n;
        true
    }

    fn give_back(&self, n: usize) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 = state.0.saturating_sub(n);
        self.changed.notify_all();
    }

    /// The writer stopped: nobody gives room back any more.
    fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.1 = true;
        self.changed.notify_all();
    }
}

/// Closes the budget when the writer thread ends, however it ends (a panic included).
struct CloseOnDrop<'a>(&'a Budget);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// What the inputs held.
pub(super) struct Parsed {
    pub files: Vec<SourceFile>,
    pub rejected: u64,
    pub samples: Vec<Rejection>,
    pub newest: Option<Timestamp>,
}

/// Where the pipeline writes, and what a parser hands the writer thread for each record.
pub(super) trait Sink: Send {
    /// A record on its way to the writer.
    type Item: Send;
    /// What the writer shares with the parsers while it writes.
    type Shared: Send + Sync;
    fn shared(&self) -> Arc<Self::Shared>;
    /// Made on a parser thread.
    fn item(
        shared: &Self::Shared,
        kind: RecordKind,
        record: ParsedRecord,
        passive_asn: Option<u32>,
    ) -> Result<Self::Item, IndexError>;
    /// Written on the writer thread, in input order.
    fn write(&mut self, item: Self::Item) -> Result<(), IndexError>;
    fn finish(self) -> Result<IndexStats, IndexError>;
}

/// A full import: records are prepared (encoded, entries computed) by the parsers, with
/// the dictionaries the writer trains on the first ones.
impl Sink for BaseWriter {
    type Item = Prepared;
    type Shared = Dictionaries;

    fn shared(&self) -> Arc<Dictionaries> {
        self.dictionaries()
    }

    fn item(
        dictionaries: &Dictionaries,
        kind: RecordKind,
        record: ParsedRecord,
        passive_asn: Option<u32>,
    ) -> Result<Prepared, IndexError> {
        prepare(kind, &record, passive_asn, dictionaries.encoding(kind))
    }

    fn write(&mut self, item: Prepared) -> Result<(), IndexError> {
        self.add_prepared(item)
    }

    fn finish(self) -> Result<IndexStats, IndexError> {
        BaseWriter::finish(self)
    }
}

/// An update: records go as parsed, since the writer must read the stored one first.
pub(super) struct Merging {
    pub(super) writer: UpdateWriter,
    pub(super) mode: MergeMode,
}

impl Sink for Merging {
    type Item = (RecordKind, Box<ParsedRecord>, Option<u32>);
    type Shared = ();

    fn shared(&self) -> Arc<()> {
        Arc::new(())
    }

    fn item(
        _: &(),
        kind: RecordKind,
        record: ParsedRecord,
        passive_asn: Option<u32>,
    ) -> Result<Self::Item, IndexError> {
        Ok((kind, Box::new(record), passive_asn))
    }

    fn write(&mut self, (kind, record, asn): Self::Item) -> Result<(), IndexError> {
        self.writer.merge(kind, &record, asn, self.mode)
    }

    fn finish(self) -> Result<IndexStats, IndexError> {
        self.writer.finish()
    }
}

/// Lines of one input file: `(line number, line or why it is unreadable)`.
struct Lines {
    file: usize,
    lines: Vec<(u64, Result<String, String>)>,
    /// Bytes of line text, taken from the [`Budget`].
    bytes: usize,
}

/// What a parser sends the writer thread for one chunk.
type Parsing<S> = Result<Done<<S as Sink>::Item>, SnapshotError>;

/// The writer thread's result: the chunks' tallies (their items written), the index.
type SinkOutput<S> = (Vec<Done<<S as Sink>::Item>>, IndexStats);

/// A parsed chunk.
struct Done<I> {
    file: usize,
    /// The chunk's [`Lines::bytes`], given back once written.
    bytes: usize,
    items: Vec<I>,
    records: u64,
    rejected: Vec<(u64, String)>,
    newest: Option<Timestamp>,
}

/// Runs the pipeline over `options.inputs` into `writer`, then finishes the index.
pub(super) fn run<S: Sink>(
    options: &ImportOptions,
    geo: &Geo,
    writer: S,
    index_path: &Path,
) -> Result<(Parsed, IndexStats), SnapshotError> {
    let parsers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let budget = Budget::new(IN_FLIGHT_BYTES);
    let budget = &budget;
    let shared = writer.shared();
    let shared = &*shared;
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
                .spawn_scoped(scope, move || {
                    parse_chunks::<S>(options, geo, shared, lines_rx, done_tx)
                })
                .map_err(spawn_err)?;
            handles.push(handle);
        }
        let writer = std::thread::Builder::new()
            .name("index-writer".into())
            .spawn_scoped(scope, move || {
                let _close = CloseOnDrop(budget);
                write_chunks(writer, from_parsers, budget)
            })
            .map_err(spawn_err)?;
        let read = read_lines(options, &to_parsers, budget);
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
fn read_lines(
    options: &ImportOptions,
    to: &[SyncSender<Lines>],
    budget: &Budget,
) -> Result<(), SnapshotError> {
    let mut next = 0;
    let mut send = |chunk: Lines| -> Result<(), SnapshotError> {
        if !budget.take(chunk.bytes) {
            return Err(SnapshotError::WriterStopped);
        }
        to[next % to.len()]
            .send(chunk)
            .map_err(|_| SnapshotError::WriterStopped)?;
        if next == 0 {
            pause_point("records");
        }
        next += 1;
        Ok(())
    };
    // Progress: bytes read over the total size of the inputs (unknown when one is not a
    // regular file, e.g. a pipe).
    let progress = options.progress.as_deref();
    if let Some(progress) = progress {
        let sizes: Option<u64> = options
            .inputs
            .iter()
            .map(|(_, p)| {
                std::fs::metadata(p)
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
            })
            .sum();
        let what = match options.inputs.len() {
            1 => "importing 1 file".to_owned(),
            n => format!("importing {n} files"),
        };
        progress.start(&what, Unit::Bytes, sizes);
    }
    let mut done_before = 0;
    for (file, (_, path)) in options.inputs.iter().enumerate() {
        let input_err = |source| SnapshotError::Input {
            path: path.clone(),
            source,
        };
        let opened = ndjson::open_input(path, options.regular_files_only).map_err(input_err)?;
        let mut reader = LineReader::from_file(path, opened, options.limits).map_err(input_err)?;
        let report = |reader: &LineReader| {
            if let Some(progress) = progress {
                progress.set(done_before + reader.bytes_read());
            }
        };
        let mut lines = Vec::with_capacity(CHUNK);
        let mut bytes = 0;
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
            bytes += line.as_ref().map_or(0, |l| l.len());
            lines.push((line_no, line.map(str::to_owned).map_err(|e| e.to_string())));
            if lines.len() >= CHUNK || bytes >= CHUNK_BYTES {
                let full = std::mem::replace(&mut lines, Vec::with_capacity(CHUNK));
                send(Lines {
                    file,
                    lines: full,
                    bytes: std::mem::take(&mut bytes),
                })?;
                report(&reader);
            }
        }
        if !lines.is_empty() {
            send(Lines { file, lines, bytes })?;
        }
        report(&reader);
        done_before += reader.bytes_read();
    }
    Ok(())
}

/// A parser thread: parses the chunks it is dealt until its channel closes.
fn parse_chunks<S: Sink>(
    options: &ImportOptions,
    geo: &Geo,
    shared: &S::Shared,
    lines: Receiver<Lines>,
    done: SyncSender<Parsing<S>>,
) {
    for chunk in lines {
        let result = parse_chunk::<S>(options, geo, shared, chunk);
        let failed = result.is_err();
        if done.send(result).is_err() || failed {
            return;
        }
    }
}

fn parse_chunk<S: Sink>(
    options: &ImportOptions,
    geo: &Geo,
    shared: &S::Shared,
    chunk: Lines,
) -> Result<Done<S::Item>, SnapshotError> {
    let (kind, path) = &options.inputs[chunk.file];
    let mut done = Done {
        file: chunk.file,
        bytes: chunk.bytes,
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
        done.items.push(S::item(shared, *kind, record, asn)?);
    }
    Ok(done)
}

/// The writer thread: takes the parsers' chunks back in turn (input order), writes
/// their records and finishes the index.
fn write_chunks<S: Sink>(
    mut writer: S,
    from: Vec<Receiver<Parsing<S>>>,
    budget: &Budget,
) -> Result<SinkOutput<S>, SnapshotError> {
    let mut tallies = Vec::new();
    for next in 0.. {
        // Chunks are dealt in turn: the first parser with nothing more marks the end.
        let Ok(chunk) = from[next % from.len()].recv() else {
            break;
        };
        let mut chunk = chunk?;
        for item in std::mem::take(&mut chunk.items) {
            writer.write(item)?;
        }
        budget.give_back(chunk.bytes);
        tallies.push(chunk);
    }
    Ok((tallies, writer.finish()?))
}

/// Counts per file, rejection samples (in input order) and the newest record date.
fn summarize<I>(options: &ImportOptions, chunks: Vec<Done<I>>) -> Parsed {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::ndjson::InputLimits;
    use crate::snapshot::DataDir;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn the_budget_holds_chunks_back_until_room_is_given() {
        let budget = Arc::new(Budget::new(100));
        assert!(budget.take(60));
        // One chunk larger than the whole budget passes when nothing else is in flight.
        let b = budget.clone();
        let waiting = std::thread::spawn(move || b.take(60));
        std::thread::sleep(Duration::from_millis(100));
        assert!(!waiting.is_finished(), "took room that was not there");
        budget.give_back(60);
        assert!(waiting.join().unwrap());
        budget.give_back(60);
        assert!(budget.take(500));
        // A writer that stopped releases a waiting reader, which then stops.
        let b = budget.clone();
        let waiting = std::thread::spawn(move || b.take(10));
        std::thread::sleep(Duration::from_millis(50));
        budget.close();
        assert!(!waiting.join().unwrap());
    }

    /// Lines of a fixture, one over the line limit: that one is a rejected line named by
    /// file and line, the others are imported.
    #[test]
    fn a_line_over_the_limit_is_a_rejected_line() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = format!(
            "{}/tests/data/ivre-0.9.20/ipinfo.jsonl",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(fixture).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let total = lines.len();
        let mut long: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        long["infos"] = serde_json::json!({"padding": "x".repeat(200_000)});
        lines[1] = long.to_string();
        let input = dir.path().join("passive.jsonl");
        std::fs::write(&input, lines.join("\n")).unwrap();
        let data = DataDir::new(dir.path().join("data"));
        let report = crate::snapshot::import(
            &data,
            &ImportOptions {
                inputs: vec![(RecordKind::Passive, input.clone())],
                limits: InputLimits {
                    max_line_bytes: 100_000,
                    ..InputLimits::default()
                },
                ..Default::default()
            },
        )
        .unwrap();
        let m = &report.manifest;
        assert_eq!(m.rejected, 1);
        assert_eq!(m.rejected_samples[0].line, 2);
        assert_eq!(m.rejected_samples[0].file, input.display().to_string());
        assert!(m.rejected_samples[0]
            .reason
            .contains("longer than 100000 bytes"));
        assert_eq!(m.counts["passive"], total as u64 - 1);
    }
}
