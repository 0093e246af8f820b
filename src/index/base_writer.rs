//! Writes a new index (a full import): records appended to `<kind>.bin` in import order,
//! their search entries and identities collected ([`KeySorter`], [`IdentityRows`]) and
//! written sorted, with the records' locations, as the immutable base
//! (`<kind>.idx.keys`, `<kind>.ids.sorted`, `<kind>.loc`) when it finishes. sled is
//! created empty (updates fill it later). Memory stays bounded by the sort runs.
//!
//! Each kind's zstd dictionary ([`RecordDictionary`], `<kind>.zdict`) is trained on the
//! kind's first records in input order: they arrive plain ([`Encoding::Plain`]) and wait
//! until [`Training`] has enough of them (or the import ends), the dictionary is trained
//! and published in [`Dictionaries`], the waiting records are compressed against it and
//! appended, and the parser threads compress every later record against it themselves.
//! Every record of the kind is compressed against the same dictionary, which depends on
//! the input only (never on thread timing).

use super::codec::{self, RecordDictionary};
use super::identity_file::IdentityRows;
use super::key_table::KeyTableWriter;
use super::keys;
use super::record_file::RecordAppender;
use super::sorted::{self, KeySorter};
use super::writer::{part_index, prepare, Encoding, IndexStats, KindEnd, Prepared, SledStore};
use super::IndexError;
use super::{
    base_file, base_identities_file, base_locations_file, dictionary_file, records_file, tree_name,
};
use crate::ivre::{ParsedRecord, RecordKind};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// When a kind's dictionary is trained: after this many of its records, or this many
/// bytes of them (plain), whichever comes first; at the end of the import otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Training {
    pub records: usize,
    pub bytes: usize,
}

impl Default for Training {
    /// 4,000 records or 3 MiB. zstd's training time grows with the samples (about 0.1 s
    /// per MB here, on the writer thread while the kind's records wait) and its gains
    /// stop early: on the generated scans, records compressed against a dictionary of
    /// 1,000, 2,000, 5,000 and 10,000 records came out at 274, 268, 268 and 269 bytes
    /// (753 alone); real records vary more, hence a margin.
    fn default() -> Training {
        Training {
            records: 4_000,
            bytes: 3 << 20,
        }
    }
}

/// Each kind's dictionary once the writer has decided it (`None` inside: the kind has
/// too few records for one): shared by the writer, which decides, and the import's
/// parser threads, which compress with it.
#[derive(Debug, Default)]
pub struct Dictionaries {
    kinds: [OnceLock<Option<RecordDictionary>>; 3],
}

impl Dictionaries {
    /// How a record of `kind` is encoded now.
    pub fn encoding(&self, kind: RecordKind) -> Encoding<'_> {
        match self.decided(kind) {
            Some(dictionary) => Encoding::Stored(dictionary),
            None => Encoding::Plain,
        }
    }

    /// `None`: not decided yet.
    fn decided(&self, kind: RecordKind) -> Option<Option<&RecordDictionary>> {
        self.kinds[part_index(kind)].get().map(Option::as_ref)
    }
}

/// One kind of a full import.
struct BaseKind {
    kind: RecordKind,
    records: RecordAppender,
    entries: KeySorter,
    ids: IdentityRows,
    /// Packed locations by record id (ids run from 0).
    locations: Vec<u64>,
    /// Plain records waiting for the kind's dictionary, in input order.
    waiting: Vec<Prepared>,
    waiting_bytes: usize,
}

/// Writes a new index directory: records, then the sorted base.
pub struct BaseWriter {
    store: SledStore,
    parts: Vec<BaseKind>,
    index_entries: u64,
    /// Scratch space for a search key.
    key: Vec<u8>,
    /// Scratch space for a record compressed here.
    stored: Vec<u8>,
    dictionaries: Arc<Dictionaries>,
    training: Training,
}

impl BaseWriter {
    /// Creates the index directory `path`, which must not exist yet.
    pub fn create(path: &Path) -> Result<BaseWriter, IndexError> {
        std::fs::create_dir(path).map_err(|e| IndexError::io(path, e))?;
        let (store, _trees) = SledStore::open(path, true, None)?;
        let mut parts = Vec::new();
        for kind in RecordKind::ALL {
            parts.push(BaseKind {
                kind,
                records: RecordAppender::open(&path.join(records_file(kind)), kind, false)?,
                entries: KeySorter::default(),
                ids: IdentityRows::default(),
                locations: Vec::new(),
                waiting: Vec::new(),
                waiting_bytes: 0,
            });
        }
        Ok(BaseWriter {
            store,
            parts,
            index_entries: 0,
            key: Vec::new(),
            stored: Vec::new(),
            dictionaries: Arc::default(),
            training: Training::default(),
        })
    }

    /// Sets when dictionaries are trained (before the first record).
    pub fn with_training(mut self, training: Training) -> BaseWriter {
        self.training = training;
        self
    }

    /// The dictionaries records are compressed with, as the writer decides them: what
    /// [`prepare`] is given on other threads ([`Dictionaries::encoding`]).
    pub fn dictionaries(&self) -> Arc<Dictionaries> {
        Arc::clone(&self.dictionaries)
    }

    /// Adds a prepared record ([`prepare`], encoded as [`Dictionaries::encoding`] said).
    pub fn add_prepared(&mut self, prepared: Prepared) -> Result<(), IndexError> {
        let kind = prepared.kind;
        // A stored record was compressed against this writer's dictionary (the only one
        // handed out): appended as it is.
        if !prepared.plain {
            return self.append(prepared, None);
        }
        if let Some(dictionary) = self.dictionaries.clone().decided(kind) {
            return self.append(prepared, dictionary);
        }
        let part = &mut self.parts[part_index(kind)];
        part.waiting_bytes += prepared.bytes.len();
        part.waiting.push(prepared);
        if part.waiting.len() >= self.training.records || part.waiting_bytes >= self.training.bytes
        {
            self.decide(kind)?;
        }
        Ok(())
    }

    /// Trains the dictionary of `kind` on its waiting records (none when they are too
    /// few), publishes it and appends them.
    fn decide(&mut self, kind: RecordKind) -> Result<(), IndexError> {
        let part = &mut self.parts[part_index(kind)];
        let waiting = std::mem::take(&mut part.waiting);
        part.waiting_bytes = 0;
        let samples: Vec<&[u8]> = waiting.iter().map(|p| &p.bytes[..]).collect();
        let trained = RecordDictionary::train(&samples);
        tracing::debug!(%kind, samples = samples.len(), dictionary_bytes = trained.as_ref().map(|d| d.bytes().len()), "record dictionary");
        let dictionaries = self.dictionaries.clone();
        let slot = &dictionaries.kinds[part_index(kind)];
        // Only this writer sets it, once.
        let _ = slot.set(trained);
        let dictionary = slot.get().and_then(Option::as_ref);
        for prepared in waiting {
            self.append(prepared, dictionary)?;
        }
        Ok(())
    }

    /// Appends a record (compressing a plain one against `dictionary`) and collects its
    /// entries, identity and location.
    fn append(
        &mut self,
        prepared: Prepared,
        dictionary: Option<&RecordDictionary>,
    ) -> Result<(), IndexError> {
        let kind = prepared.kind;
        let bytes = if prepared.plain {
            codec::compress_record(&prepared.bytes, dictionary, &mut self.stored)
                .map_err(|source| IndexError::Encode { kind, source })?;
            &self.stored
        } else {
            &prepared.bytes
        };
        let part = &mut self.parts[part_index(kind)];
        let id = part.locations.len() as u64;
        let location = part.records.append(id, bytes)?;
        let packed = codec::pack_location(location).ok_or_else(|| IndexError::Codec {
            path: part.records.path().to_owned(),
            kind: part.kind,
            id,
            source: codec::CodecError::Truncated,
        })?;
        let base_err = |e| IndexError::base(part.records.path(), e);
        for (field, term) in &prepared.entries {
            self.key.clear();
            keys::push_index_key(&mut self.key, *field, term, id);
            part.entries.push(&self.key).map_err(base_err)?;
        }
        part.ids.push(&prepared.identity, id);
        part.locations.push(packed);
        self.index_entries += prepared.entries.len() as u64;
        Ok(())
    }

    /// Adds a record (see [`prepare`] for `passive_asn`).
    pub fn add(
        &mut self,
        kind: RecordKind,
        record: &ParsedRecord,
        passive_asn: Option<u32>,
    ) -> Result<(), IndexError> {
        let encoding = self.dictionaries.encoding(kind);
        let prepared = prepare(kind, record, passive_asn, encoding)?;
        self.add_prepared(prepared)
    }

    /// Writes the sorted base, flushes everything to disk and closes the index.
    pub fn finish(mut self) -> Result<IndexStats, IndexError> {
        let path = self.store.path.clone();
        for kind in RecordKind::ALL {
            if self.dictionaries.decided(kind).is_none() {
                self.decide(kind)?;
            }
            if let Some(Some(dictionary)) = self.dictionaries.decided(kind) {
                let file = path.join(dictionary_file(kind));
                write_synced(&file, dictionary.bytes()).map_err(|e| IndexError::io(&file, e))?;
            }
        }
        // Each kind's base files on a thread of their own (the kinds share nothing;
        // merging their runs is the import's last, otherwise serial, step).
        let ends = std::thread::scope(|scope| {
            let handles: Vec<_> = std::mem::take(&mut self.parts)
                .into_iter()
                .map(|part| {
                    let path = &path;
                    std::thread::Builder::new()
                        .name("index-base".into())
                        .spawn_scoped(scope, move || finish_kind(path, part))
                        .map_err(|e| IndexError::io(path, e))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle?.join().map_err(|_| {
                        IndexError::io(
                            &path,
                            std::io::Error::other("a base-writing thread panicked"),
                        )
                    })?
                })
                .collect::<Result<Vec<KindEnd>, IndexError>>()
        })?;
        self.store.finish(ends, self.index_entries)
    }
}

/// Writes one kind's base files: its search keys, identities and record locations.
fn finish_kind(path: &Path, part: BaseKind) -> Result<KindEnd, IndexError> {
    let file = path.join(base_file(tree_name(part.kind)));
    let mut table: Option<KeyTableWriter> = None;
    let locations = &part.locations;
    part.entries
        .finish(|key| {
            let id = keys::id_of(key);
            let location = id
                .and_then(|id| usize::try_from(id).ok())
                .and_then(|id| locations.get(id))
                .ok_or_else(|| {
                    sorted::SortedError::Damaged(format!(
                        "a search key for record {id:?}, which this import did not write"
                    ))
                })?;
            let writer = match &mut table {
                Some(writer) => writer,
                None => table.insert(KeyTableWriter::create(&file)?),
            };
            writer.push(key, *location)
        })
        .map_err(|e| IndexError::base(&file, e))?;
    // No file for a kind without keys, as before: the reader takes its absence.
    if let Some(table) = table {
        table.finish().map_err(|e| IndexError::base(&file, e))?;
    }
    let file = path.join(base_identities_file(part.kind));
    part.ids
        .finish(&file)
        .map_err(|e| IndexError::io(&file, e))?;
    if !part.locations.is_empty() {
        let file = path.join(base_locations_file(part.kind));
        sorted::write_locations(&file, &part.locations).map_err(|e| IndexError::base(&file, e))?;
    }
    let records = part.locations.len() as u64;
    Ok(KindEnd {
        kind: part.kind,
        live: records,
        next_id: records,
        base_end: records,
        records: part.records,
        other_bytes: 0,
    })
}

/// Writes a whole file and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
