//! Writes an index: a new one (a full import), or a copy of a published one updated in
//! place (incremental pulls, delta drops), so that an update costs what it changes.
//!
//! Record bodies are appended to the kind's file. A full import collects search entries
//! and identities ([`KeySorter`], [`IdentityRows`]) and writes them, sorted, with the
//! records' locations, as the immutable base
//! (`<kind>.idx.fst`, `<kind>.ids.sorted`) when it finishes. An update leaves the base as
//! it is: new entries and identities go to sled (batched), and a replaced base record
//! is marked dead (`<kind>.dead`). Memory stays bounded by the sort runs and the batch.

use super::codec::{self, Location};
use super::identities::{IdentityRows, IdentityTable};
use super::keys::{self, CertHash, Field};
use super::sorted::{self, KeySorter};
use super::{
    base_file, base_identities_file, base_locations_file, dead_tree_name, delta_records_file,
    identity, identity_tree_name, records_file, tree_name, IndexCheck, IndexError, IndexFiles,
    SLED_DIR,
};
use crate::ivre::{Certificate, HostSummary, ParsedRecord, PassiveSummary, RecordKind, Summary};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Records per sled batch (updates).
pub const BATCH_RECORDS: usize = 8192;

/// What a finished index holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Live records per kind.
    pub records: BTreeMap<RecordKind, u64>,
    pub index_entries: u64,
    pub records_bytes: u64,
    /// `crc32:<record and base files>/<sled trees>` (see [`super::IndexReader::checksum`]).
    pub checksum: String,
    /// Size and CRC of every file outside sled (the manifest's `files`).
    pub files: IndexFiles,
}

impl IndexStats {
    /// What a reader checks the index against (what the manifest holds).
    pub fn check(&self) -> IndexCheck {
        IndexCheck {
            files: self.files.clone(),
            checksum: self.checksum.clone(),
        }
    }
}

/// How an update treats a record whose identity is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// The new record replaces the stored one (IVRE updated it: pulls).
    Replace,
    /// Passive records add up: counts summed, first/last seen widened (delta drops);
    /// hosts are replaced.
    Accumulate,
}

/// A full import's sorted entries, written as the base when it finishes.
#[derive(Default)]
struct Bulk {
    entries: KeySorter,
    ids: IdentityRows,
    /// Packed locations by record id.
    locations: Vec<u64>,
}

struct Part {
    kind: RecordKind,
    /// Search entries and identities added by updates.
    entries: sled::Tree,
    ids: sled::Tree,
    /// Base records an update replaced or removed (key: record id).
    dead_tree: sled::Tree,
    dead: HashSet<u64>,
    entry_batch: sled::Batch,
    id_batch: sled::Batch,
    /// Base records marked dead, waiting to be written to `dead_tree`.
    dead_batch: sled::Batch,
    /// Inserts waiting in the batches (an empty batch is not applied: sled charges for
    /// every `apply_batch`).
    batched: usize,
    /// Identities of the records waiting in the batches: an update that meets one of
    /// them applies the batches first, so that it sees the record.
    pending_ids: HashSet<[u8; 16]>,
    /// `Some` in a full import.
    bulk: Option<Bulk>,
    /// The base's identities (updates).
    base_ids: Option<IdentityTable>,
    /// The base's packed locations by record id (updates).
    base_locations: Vec<u64>,
    /// Records with an id below this one are in the base.
    base_end: u64,
    next_id: u64,
    live: u64,
    /// The record file appended to: the base records file in a full import, the delta
    /// file in an update (the base one may be shared with the served generation).
    path: PathBuf,
    file: BufWriter<File>,
    offset: u64,
    /// Locations of appended records carry [`codec::DELTA_OFFSET`].
    delta: bool,
    /// The base records file and its length, read by updates (`None` in a full import,
    /// or when the kind has no base).
    base_records: Option<(PathBuf, File, u64)>,
}

/// Writes records into an index directory.
pub struct IndexWriter {
    path: PathBuf,
    db: sled::Db,
    parts: Vec<Part>,
    pending: usize,
    index_entries: u64,
    /// Scratch space for a search key.
    key: Vec<u8>,
}

/// A record ready to be written (see [`IndexWriter::prepare`]).
pub struct Prepared {
    kind: RecordKind,
    /// The encoded record.
    bytes: Vec<u8>,
    /// Sorted, without duplicates.
    entries: Vec<(Field, Vec<u8>)>,
    identity: [u8; 16],
}

fn part_index(kind: RecordKind) -> usize {
    match kind {
        RecordKind::Scan => 0,
        RecordKind::View => 1,
        RecordKind::Passive => 2,
    }
}

fn meta_u64(meta: &sled::Tree, key: &str) -> Result<u64, sled::Error> {
    Ok(meta
        .get(key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0))
}

fn id_key(kind: RecordKind, summary: &Summary, id: u64) -> Vec<u8> {
    let mut key = identity::of(kind, summary).to_vec();
    key.extend_from_slice(&keys::record_key(id));
    key
}

impl IndexWriter {
    /// Creates the index directory `path`, which must not exist yet (a full import).
    pub fn create(path: &Path) -> Result<IndexWriter, IndexError> {
        std::fs::create_dir(path).map_err(|e| IndexError::io(path, e))?;
        IndexWriter::open(path, None)
    }

    /// Opens an index directory to update it (a private copy, never a published one),
    /// checking its files against `check` (the manifest of the generation it copies)
    /// first.
    pub fn append(path: &Path, check: &IndexCheck) -> Result<IndexWriter, IndexError> {
        IndexWriter::open(path, Some(check))
    }

    fn open(path: &Path, check: Option<&IndexCheck>) -> Result<IndexWriter, IndexError> {
        let new = check.is_none();
        // The copied files, checked before anything is read or appended.
        let mut checked = Vec::new();
        if let Some(check) = check {
            for kind in RecordKind::ALL {
                let name = records_file(kind);
                let base_path = path.join(name);
                let base_records = check
                    .open_file(&base_path, name)?
                    .map(|(file, len)| (base_path, file, len));
                let name = delta_records_file(kind);
                check.open_file(&path.join(name), name)?;
                let name = base_identities_file(kind);
                let file = path.join(&name);
                let ids = check
                    .read_file(&file, &name)?
                    .map(IdentityTable::from_bytes)
                    .transpose()
                    .map_err(|e| IndexError::io(&file, e))?;
                let name = base_locations_file(kind);
                let file = path.join(name);
                let locations = match check.read_file(&file, name)? {
                    Some(bytes) => sorted::locations_from_bytes(&bytes)
                        .map_err(|e| IndexError::base(&file, e))?,
                    None => Vec::new(),
                };
                let name = base_file(tree_name(kind));
                check.expect(&path.join(&name), &name)?;
                checked.push(Some((base_records, ids, locations)));
            }
        } else {
            checked.extend(RecordKind::ALL.map(|_| None));
        }
        let sled_path = path.join(SLED_DIR);
        let err = |e| IndexError::sled(&sled_path, e);
        let db = sled::Config::new()
            .path(&sled_path)
            .create_new(new)
            .cache_capacity(64 * 1024 * 1024)
            .flush_every_ms(None)
            .open()
            .map_err(err)?;
        if let Some(check) = check {
            check.check_entries(&sled_path, &db)?;
        }
        let meta = db.open_tree("meta").map_err(err)?;
        let mut parts = Vec::new();
        for (kind, checked) in RecordKind::ALL.into_iter().zip(checked) {
            let file_path = path.join(if new {
                records_file(kind)
            } else {
                delta_records_file(kind)
            });
            let file = File::options()
                .create(true)
                .read(true)
                .append(true)
                .open(&file_path)
                .map_err(|e| IndexError::io(&file_path, e))?;
            let offset = file
                .metadata()
                .map_err(|e| IndexError::io(&file_path, e))?
                .len();
            let dead_tree = db.open_tree(dead_tree_name(kind)).map_err(err)?;
            let dead = dead_tree
                .iter()
                .keys()
                .map(|k| k.map(|k| keys::id_of(&k)))
                .filter_map(Result::transpose)
                .collect::<Result<_, _>>()
                .map_err(err)?;
            let (base_records, base_ids, base_locations) =
                checked.unwrap_or((None, None, Vec::new()));
            parts.push(Part {
                kind,
                entries: db.open_tree(tree_name(kind)).map_err(err)?,
                ids: db.open_tree(identity_tree_name(kind)).map_err(err)?,
                dead_tree,
                dead,
                entry_batch: sled::Batch::default(),
                id_batch: sled::Batch::default(),
                dead_batch: sled::Batch::default(),
                batched: 0,
                pending_ids: HashSet::new(),
                bulk: new.then(Bulk::default),
                base_ids,
                base_locations,
                base_end: meta_u64(&meta, &format!("base_end.{}", kind.as_str())).map_err(err)?,
                next_id: meta_u64(&meta, &format!("next_id.{}", kind.as_str())).map_err(err)?,
                live: meta_u64(&meta, &format!("count.{}", kind.as_str())).map_err(err)?,
                path: file_path,
                file: BufWriter::with_capacity(1 << 20, file),
                offset,
                delta: !new,
                base_records,
            });
        }
        Ok(IndexWriter {
            path: path.to_owned(),
            db,
            parts,
            pending: 0,
            index_entries: 0,
            key: Vec::new(),
        })
    }

    /// Encodes a record and computes its search entries and identity, without the
    /// writer: the import does it on the parsing thread, so that both cores work.
    pub fn prepare(
        kind: RecordKind,
        record: &ParsedRecord,
        passive_asn: Option<u32>,
    ) -> Result<Prepared, IndexError> {
        let mut entries = Vec::new();
        let mut bytes = Vec::new();
        let encoded = match &record.summary {
            Summary::Host(h) => {
                host_entries(h, &mut entries);
                codec::encode_record(&record.json, h, &mut bytes)
            }
            Summary::Passive(p) => {
                passive_entries(p, passive_asn, &mut entries);
                codec::encode_record(&record.json, p, &mut bytes)
            }
        };
        encoded.map_err(|source| IndexError::Encode { kind, source })?;
        entries.sort();
        entries.dedup();
        Ok(Prepared {
            kind,
            bytes,
            entries,
            identity: identity::of(kind, &record.summary),
        })
    }

    /// Appends a prepared record and its entries; returns its id and location.
    fn write(&mut self, prepared: &Prepared) -> Result<(u64, Location), IndexError> {
        let kind = prepared.kind;
        let ix = part_index(kind);
        let id = self.parts[ix].next_id;
        let too_large = |source| IndexError::Codec {
            path: self.path.clone(),
            kind,
            id,
            source,
        };
        let len = u32::try_from(prepared.bytes.len())
            .map_err(|_| too_large(codec::CodecError::Truncated))?;
        let part = &mut self.parts[ix];
        let location = Location {
            offset: (part.offset + 4) | if part.delta { codec::DELTA_OFFSET } else { 0 },
            len,
        };
        part.file
            .write_all(&len.to_le_bytes())
            .and_then(|()| part.file.write_all(&prepared.bytes))
            .map_err(|e| IndexError::io(&part.path, e))?;
        part.offset += 4 + u64::from(len);
        part.next_id += 1;
        part.live += 1;
        if let Some(bulk) = &mut part.bulk {
            let packed = codec::pack_location(location)
                .ok_or_else(|| too_large(codec::CodecError::Truncated))?;
            let base_err = |e| IndexError::base(&part.path, e);
            for (field, term) in &prepared.entries {
                self.key.clear();
                keys::push_index_key(&mut self.key, *field, term, id);
                bulk.entries.push(&self.key).map_err(base_err)?;
            }
            bulk.ids.push(&prepared.identity, id);
            // Ids of a full import run from 0 (`clear` restarts them).
            bulk.locations.push(packed);
        } else {
            let value = codec::encode_location(location);
            for (field, term) in &prepared.entries {
                part.entry_batch
                    .insert(keys::index_key(*field, term, id), &value[..]);
            }
            let mut id_key = prepared.identity.to_vec();
            id_key.extend_from_slice(&keys::record_key(id));
            part.id_batch.insert(id_key, &value[..]);
            part.batched += 1;
            part.pending_ids.insert(prepared.identity);
        }
        self.index_entries += prepared.entries.len() as u64;
        Ok((id, location))
    }

    /// Adds a prepared record (a full import).
    pub fn add_prepared(&mut self, prepared: &Prepared) -> Result<(), IndexError> {
        self.write(prepared)?;
        self.pending += 1;
        if self.pending >= BATCH_RECORDS {
            self.apply()?;
        }
        Ok(())
    }

    /// Adds a record (a full import). `passive_asn` is the AS of a passive record's
    /// address, from the snapshot's own MaxMind data (IVRE 0.9.20 answers
    /// `passive.searchasnum` the same way).
    pub fn add(
        &mut self,
        kind: RecordKind,
        record: &ParsedRecord,
        passive_asn: Option<u32>,
    ) -> Result<(), IndexError> {
        self.add_prepared(&IndexWriter::prepare(kind, record, passive_asn)?)
    }

    fn read_stored<T: DeserializeOwned>(
        &mut self,
        kind: RecordKind,
        id: u64,
        location: Location,
    ) -> Result<(String, T), IndexError> {
        let part = &mut self.parts[part_index(kind)];
        let (file, path, len) = if location.offset & codec::DELTA_OFFSET != 0 {
            part.file
                .flush()
                .map_err(|e| IndexError::io(&part.path, e))?;
            (part.file.get_ref(), &part.path, part.offset)
        } else {
            match &part.base_records {
                Some((path, file, len)) => (file, path, *len),
                // A base location without a base file: the index is damaged.
                None => {
                    return Err(IndexError::Codec {
                        path: part.path.clone(),
                        kind,
                        id,
                        source: codec::CodecError::Truncated,
                    })
                }
            }
        };
        let error = |source| IndexError::Codec {
            path: path.clone(),
            kind,
            id,
            source,
        };
        let buf =
            codec::read_record(file, len, codec::without_delta_bit(location)).map_err(error)?;
        codec::decode_record(&buf).map_err(error)
    }

    /// The stored records with the identity of `record`: in the base (unless dead) and
    /// added by updates.
    fn stored(
        &self,
        kind: RecordKind,
        record: &ParsedRecord,
    ) -> Result<Vec<(u64, Location)>, IndexError> {
        let part = &self.parts[part_index(kind)];
        let prefix = identity::of(kind, &record.summary);
        let base = part.base_ids.iter().flat_map(|table| {
            table
                .find(&prefix)
                .into_iter()
                .filter(|id| !part.dead.contains(id))
                .filter_map(|id| {
                    let packed = part.base_locations.get(usize::try_from(id).ok()?)?;
                    Some((id, codec::unpack_location(*packed)))
                })
        });
        let mut found: Vec<(u64, Location)> = base.collect();
        for entry in part.ids.scan_prefix(prefix) {
            let (key, value) = entry.map_err(|e| IndexError::sled(&self.path, e))?;
            let Some(id) = keys::id_of(&key) else {
                continue;
            };
            let location = codec::decode_location(&value).map_err(|source| IndexError::Codec {
                path: self.path.join(SLED_DIR),
                kind,
                id,
                source,
            })?;
            found.push((id, location));
        }
        Ok(found)
    }

    /// Removes a stored record: a base record is marked dead; an added one loses its
    /// search entries and identity.
    fn forget(
        &mut self,
        kind: RecordKind,
        id: u64,
        summary: &Summary,
        passive_asn: Option<u32>,
    ) -> Result<(), IndexError> {
        let part = &mut self.parts[part_index(kind)];
        let err = |e| IndexError::sled(&self.path, e);
        part.live = part.live.saturating_sub(1);
        if id < part.base_end {
            part.dead_batch.insert(&keys::record_key(id), &[]);
            part.batched += 1;
            part.dead.insert(id);
            return Ok(());
        }
        let mut entries = Vec::new();
        match summary {
            Summary::Host(h) => host_entries(h, &mut entries),
            Summary::Passive(p) => passive_entries(p, passive_asn, &mut entries),
        }
        for (field, term) in &entries {
            part.entries
                .remove(keys::index_key(*field, term, id))
                .map_err(err)?;
        }
        part.ids.remove(id_key(kind, summary, id)).map_err(err)?;
        Ok(())
    }

    /// Adds a record, or updates the stored one with the same identity (an incremental
    /// update, on an index opened with [`IndexWriter::append`]). Later records of the same
    /// update see it (the batches are applied before a record whose identity waits in
    /// them).
    pub fn merge(
        &mut self,
        kind: RecordKind,
        record: &ParsedRecord,
        passive_asn: Option<u32>,
        mode: MergeMode,
    ) -> Result<(), IndexError> {
        let identity = identity::of(kind, &record.summary);
        if self.parts[part_index(kind)].pending_ids.contains(&identity) {
            self.apply()?;
        }
        let mut merged = record.clone();
        for (id, location) in self.stored(kind, record)? {
            let summary: Summary = match kind {
                RecordKind::Passive => {
                    let (json, old): (String, PassiveSummary) =
                        self.read_stored(kind, id, location)?;
                    if mode == MergeMode::Accumulate {
                        merged = accumulate(&json, &merged)?;
                    }
                    Summary::Passive(old)
                }
                _ => Summary::Host(self.read_stored::<HostSummary>(kind, id, location)?.1),
            };
            self.forget(kind, id, &summary, passive_asn)?;
        }
        self.write(&IndexWriter::prepare(kind, &merged, passive_asn)?)?;
        self.pending += 1;
        if self.pending >= BATCH_RECORDS {
            self.apply()?;
        }
        Ok(())
    }

    /// Removes every record of `kind` (the kind is then imported again).
    pub fn clear(&mut self, kind: RecordKind) -> Result<(), IndexError> {
        self.apply()?;
        let part = &mut self.parts[part_index(kind)];
        let err = |e| IndexError::sled(&self.path, e);
        part.entries.clear().map_err(err)?;
        part.ids.clear().map_err(err)?;
        part.dead_tree.clear().map_err(err)?;
        part.dead.clear();
        part.base_ids = None;
        part.base_locations = Vec::new();
        part.base_end = 0;
        if let Some(bulk) = &mut part.bulk {
            *bulk = Bulk::default();
            part.next_id = 0;
        }
        for name in [
            base_file(tree_name(kind)),
            base_identities_file(kind),
            base_locations_file(kind).to_owned(),
        ] {
            let file = self.path.join(name);
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(IndexError::io(&file, e))
                }
                _ => {}
            }
        }
        part.file
            .flush()
            .map_err(|e| IndexError::io(&part.path, e))?;
        part.file
            .get_ref()
            .set_len(0)
            .map_err(|e| IndexError::io(&part.path, e))?;
        part.offset = 0;
        part.live = 0;
        if part.delta {
            // The base records file may be shared with the served generation (a hard
            // link): replaced by an empty one, never truncated.
            let base = self.path.join(records_file(kind));
            std::fs::remove_file(&base)
                .and_then(|()| File::create(&base).map(drop))
                .map_err(|e| IndexError::io(&base, e))?;
            part.base_records = None;
        }
        Ok(())
    }

    fn apply(&mut self) -> Result<(), IndexError> {
        for part in self.parts.iter_mut().filter(|p| p.batched > 0) {
            part.batched = 0;
            part.pending_ids.clear();
            part.dead_tree
                .apply_batch(std::mem::take(&mut part.dead_batch))
                .map_err(|e| IndexError::sled(&self.path, e))?;
            let entries = std::mem::take(&mut part.entry_batch);
            let ids = std::mem::take(&mut part.id_batch);
            part.entries
                .apply_batch(entries)
                .map_err(|e| IndexError::sled(&self.path, e))?;
            part.ids
                .apply_batch(ids)
                .map_err(|e| IndexError::sled(&self.path, e))?;
        }
        self.pending = 0;
        Ok(())
    }

    /// Writes what is pending (a full import: the sorted base), flushes everything to
    /// disk and closes the index.
    pub fn finish(mut self) -> Result<IndexStats, IndexError> {
        self.apply()?;
        let err = |e| IndexError::sled(&self.path, e);
        for part in &mut self.parts {
            if let Some(bulk) = part.bulk.take() {
                let file = self.path.join(base_file(tree_name(part.kind)));
                bulk.entries
                    .finish(&file)
                    .map_err(|e| IndexError::base(&file, e))?;
                let file = self.path.join(base_identities_file(part.kind));
                bulk.ids
                    .finish(&file)
                    .map_err(|e| IndexError::io(&file, e))?;
                if !bulk.locations.is_empty() {
                    let file = self.path.join(base_locations_file(part.kind));
                    sorted::write_locations(&file, &bulk.locations)
                        .map_err(|e| IndexError::base(&file, e))?;
                }
                part.base_end = part.next_id;
            }
        }
        let meta = self.db.open_tree("meta").map_err(err)?;
        let mut records = BTreeMap::new();
        for part in &self.parts {
            records.insert(part.kind, part.live);
            for (name, value) in [
                ("count", part.live),
                ("next_id", part.next_id),
                ("base_end", part.base_end),
            ] {
                meta.insert(
                    format!("{name}.{}", part.kind.as_str()),
                    &value.to_be_bytes(),
                )
                .map_err(err)?;
            }
        }
        self.db.flush().map_err(err)?;
        let mut bytes = 0;
        for part in self.parts {
            let file = part
                .file
                .into_inner()
                .map_err(|e| IndexError::io(&part.path, e.into_error()))?;
            file.sync_all().map_err(|e| IndexError::io(&part.path, e))?;
            bytes += part.offset;
            if let Some((path, file, _)) = &part.base_records {
                bytes += file.metadata().map_err(|e| IndexError::io(path, e))?.len();
            }
        }
        let (checksum, files) = super::checksum(&self.path, &self.db)?;
        Ok(IndexStats {
            records,
            index_entries: self.index_entries,
            records_bytes: bytes,
            checksum,
            files,
        })
    }
}

/// A passive record added to a stored one: counts summed, first/last seen widened.
fn accumulate(stored_json: &str, new: &ParsedRecord) -> Result<ParsedRecord, IndexError> {
    use crate::ivre::Timestamp;
    use serde_json::Value;
    let bad = |reason: String| IndexError::BadJson {
        kind: RecordKind::Passive,
        id: 0,
        reason,
    };
    let old: Value = serde_json::from_str(stored_json).map_err(|e| bad(e.to_string()))?;
    let fresh: Value = serde_json::from_str(&new.json).map_err(|e| bad(e.to_string()))?;
    let count = |v: &Value| v.get("count").and_then(Value::as_u64).unwrap_or(1);
    let date = |v: &Value, k: &str| v.get(k).and_then(Timestamp::from_json);
    let first = [date(&old, "firstseen"), date(&fresh, "firstseen")]
        .into_iter()
        .flatten()
        .min();
    let last = [date(&old, "lastseen"), date(&fresh, "lastseen")]
        .into_iter()
        .flatten()
        .max();
    let mut merged = old.clone();
    if let Some(map) = merged.as_object_mut() {
        map.insert("count".into(), (count(&old) + count(&fresh)).into());
        if let Some(t) = first {
            map.insert("firstseen".into(), t.to_ivre_string().into());
        }
        if let Some(t) = last {
            map.insert("lastseen".into(), t.to_ivre_string().into());
        }
    }
    crate::ivre::parse_value(RecordKind::Passive, merged).map_err(|e| bad(e.to_string()))
}

fn cert_entries(cert: &Certificate, entries: &mut Vec<(Field, Vec<u8>)>) {
    for hex in [&cert.md5, &cert.sha1, &cert.sha256].into_iter().flatten() {
        let Some(hash) = CertHash::from_hex(hex) else {
            continue;
        };
        let field = match hash {
            CertHash::Md5(_) => Field::Md5,
            CertHash::Sha1(_) => Field::Sha1,
            CertHash::Sha256(_) => Field::Sha256,
        };
        entries.push((field, hash.bytes().to_vec()));
    }
}

fn host_entries(h: &HostSummary, entries: &mut Vec<(Field, Vec<u8>)>) {
    entries.push((Field::Host, keys::ip_bytes(h.addr).to_vec()));
    if let Some(n) = h.as_num {
        entries.push((Field::Asn, n.to_be_bytes().to_vec()));
    }
    for hostname in &h.hostnames {
        if let Some(name) = keys::reversed_name(&hostname.name) {
            entries.push((Field::Domain, name));
        }
    }
    for mac in &h.macs {
        if let Some(mac) = keys::parse_mac(mac) {
            entries.push((Field::Mac, mac.to_vec()));
        }
    }
    // IVRE's searchcert looks at `ssl-cert` scripts only (not `ssl-cacert`).
    for cert in h.certs.iter().filter(|c| !c.cacert) {
        cert_entries(cert, entries);
    }
}

fn passive_entries(p: &PassiveSummary, asn: Option<u32>, entries: &mut Vec<(Field, Vec<u8>)>) {
    if let Some(addr) = p.addr {
        entries.push((Field::Host, keys::ip_bytes(addr).to_vec()));
        if let Some(n) = asn {
            entries.push((Field::Asn, n.to_be_bytes().to_vec()));
        }
    }
    match p.recontype.as_str() {
        "DNS_ANSWER" => {
            if let Some(name) = keys::reversed_name(&p.value) {
                entries.push((Field::DnsName, name));
            }
            if let Some(name) = p.targetval.as_deref().and_then(keys::reversed_name) {
                entries.push((Field::DnsTarget, name));
            }
        }
        "MAC_ADDRESS" => {
            if let Some(mac) = keys::parse_mac(&p.value) {
                entries.push((Field::Mac, mac.to_vec()));
            }
        }
        _ => {}
    }
    if p.is_server_cert() {
        if let Some(cert) = &p.cert {
            cert_entries(cert, entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{IndexReader, Query};
    use crate::ivre::parse_line;
    use std::net::IpAddr;

    fn dns(value: &str, count: u64) -> ParsedRecord {
        let line = format!(
            r#"{{"addr": "192.0.2.1", "sensor": "S", "recontype": "DNS_ANSWER", "source": "A-192.0.2.53-53", "value": "{value}", "count": {count}, "firstseen": "2026-01-01 00:00:00", "lastseen": "2026-01-02 00:00:00", "infos": {{"domain": ["example.com"]}}, "schema_version": 3}}"#
        );
        parse_line(RecordKind::Passive, &line).unwrap()
    }

    fn merge(writer: &mut IndexWriter, value: &str, count: u64, mode: MergeMode) {
        writer
            .merge(RecordKind::Passive, &dns(value, count), None, mode)
            .unwrap();
    }

    fn counts(path: &Path, stats: &IndexStats) -> Vec<u64> {
        let reader = IndexReader::open(path, &stats.check(), 1 << 20).unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let found = reader
            .search(RecordKind::Passive, &[Query::Host(ip)], None)
            .unwrap();
        found
            .records
            .iter()
            .map(|hit| {
                let json: serde_json::Value =
                    serde_json::from_str(&reader.json(hit).unwrap()).unwrap();
                json["count"].as_u64().unwrap()
            })
            .collect()
    }

    #[test]
    fn updates_layer_over_the_sorted_base() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut writer = IndexWriter::create(&path).unwrap();
        for (value, count) in [
            ("a.example.com", 1),
            ("b.example.com", 2),
            ("c.example.com", 3),
        ] {
            writer
                .add(RecordKind::Passive, &dns(value, count), None)
                .unwrap();
        }
        let stats = writer.finish().unwrap();
        assert_eq!(stats.records[&RecordKind::Passive], 3);
        assert!(path.join("passive.idx.fst").is_file());
        assert_eq!(counts(&path, &stats), vec![1, 2, 3]);

        // A base record accumulated into (it becomes dead, the sum is added) and a new one.
        // Updates leave the base files as they are (a copy shares them by hard links).
        let base_bytes = |p: &Path| {
            [
                "passive.bin",
                "passive.idx.fst",
                "passive.loc",
                "passive.ids.sorted",
            ]
            .map(|f| std::fs::read(p.join(f)).unwrap())
        };
        let before = base_bytes(&path);
        let mut writer = IndexWriter::append(&path, &stats.check()).unwrap();
        let accumulate = MergeMode::Accumulate;
        merge(&mut writer, "b.example.com", 10, accumulate);
        merge(&mut writer, "d.example.com", 4, accumulate);
        // The same identity again in the same update: it sees the record still batched.
        merge(&mut writer, "d.example.com", 5, accumulate);
        let stats = writer.finish().unwrap();
        assert_eq!(stats.records[&RecordKind::Passive], 4);
        assert_eq!(counts(&path, &stats), vec![1, 3, 12, 9]);
        assert!(before == base_bytes(&path));
        assert!(path.join("passive.delta.bin").is_file());

        // An added record replaced in turn (its sled entries go), and the base one again
        // is not found (it stays dead).
        let mut writer = IndexWriter::append(&path, &stats.check()).unwrap();
        merge(&mut writer, "b.example.com", 7, MergeMode::Replace);
        let stats = writer.finish().unwrap();
        assert_eq!(counts(&path, &stats), vec![1, 3, 9, 7]);

        // Clearing a kind drops its base too.
        let mut writer = IndexWriter::append(&path, &stats.check()).unwrap();
        writer.clear(RecordKind::Passive).unwrap();
        let stats = writer.finish().unwrap();
        assert_eq!(stats.records[&RecordKind::Passive], 0);
        assert!(!path.join("passive.idx.fst").exists());
        assert_eq!(counts(&path, &stats), Vec::<u64>::new());
    }

    #[test]
    fn records_too_long_for_a_packed_length_are_read_from_their_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let file_path = dir.path().join("records");
        let mut body = vec![7u8; 100];
        body[0] = 1;
        let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        std::fs::write(&file_path, &bytes).unwrap();
        let file = File::open(&file_path).unwrap();
        let packed = codec::pack_location(Location { offset: 4, len: 0 }).unwrap();
        let len = bytes.len() as u64;
        let read = codec::read_record(&file, len, codec::unpack_location(packed)).unwrap();
        assert_eq!(read, body);
    }
}
