//! What the two index writers share: [`BaseWriter`](super::BaseWriter) (a full import:
//! record files and the immutable sorted base) and [`UpdateWriter`](super::UpdateWriter)
//! (a copy of a published index updated in place, so that an update costs what it
//! changes). Here: [`prepare`] (a record encoded, its search entries and identity), the
//! sled database with its `meta` counts (`SledStore`), and the end of a write
//! ([`IndexStats`]: counts, checksum, files).

use super::codec::{self, RecordDictionary};
use super::entries::record_entries;
use super::keys::{self, Field};
use super::record_file::RecordAppender;
use super::{
    dead_tree_name, identity_tree_name, record_identity, tree_name, IndexCheck, IndexError,
    IndexFiles, SLED_DIR,
};
use crate::ivre::{ParsedRecord, RecordKind, Summary};
use std::collections::BTreeMap;
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

/// A record ready to be written (see [`prepare`]).
pub struct Prepared {
    pub(super) kind: RecordKind,
    /// The encoded record: stored form, or plain ([`Encoding::Plain`]).
    pub(super) bytes: Vec<u8>,
    /// `bytes` is the plain record, which the writer compresses.
    pub(super) plain: bool,
    /// Sorted, without duplicates.
    pub(super) entries: Vec<(Field, Vec<u8>)>,
    pub(super) identity: [u8; 16],
}

/// How [`prepare`] encodes a record.
#[derive(Debug, Clone, Copy)]
pub enum Encoding<'a> {
    /// In its stored form, compressed against the kind's dictionary if it has one.
    Stored(Option<&'a RecordDictionary>),
    /// Plain ([`codec::plain_record`]): the kind's dictionary is not trained yet, the
    /// writer trains it on such records and compresses them.
    Plain,
}

/// Encodes a record and computes its search entries and identity, without a writer: the
/// import does it on the parsing threads, so that every core works. `passive_asn` is the
/// AS of a passive record's address, from the snapshot's own MaxMind data (IVRE 0.9.20
/// answers `passive.searchasnum` the same way).
pub fn prepare(
    kind: RecordKind,
    record: &ParsedRecord,
    passive_asn: Option<u32>,
    encoding: Encoding<'_>,
) -> Result<Prepared, IndexError> {
    let mut entries = Vec::new();
    record_entries(&record.summary, passive_asn, &mut entries);
    let mut bytes = Vec::new();
    let json = &record.json;
    let encoded = match (&record.summary, encoding) {
        (Summary::Host(h), Encoding::Stored(d)) => codec::encode_record(json, h, d, &mut bytes),
        (Summary::Passive(p), Encoding::Stored(d)) => codec::encode_record(json, p, d, &mut bytes),
        (Summary::Host(h), Encoding::Plain) => codec::plain_record(json, h, &mut bytes),
        (Summary::Passive(p), Encoding::Plain) => codec::plain_record(json, p, &mut bytes),
    };
    encoded.map_err(|source| IndexError::Encode { kind, source })?;
    entries.sort();
    entries.dedup();
    Ok(Prepared {
        kind,
        bytes,
        plain: matches!(encoding, Encoding::Plain),
        entries,
        identity: record_identity::of(kind, &record.summary),
    })
}

/// The position of a kind in the writers' per-kind parts.
pub(super) fn part_index(kind: RecordKind) -> usize {
    match kind {
        RecordKind::Scan => 0,
        RecordKind::View => 1,
        RecordKind::Passive => 2,
    }
}

/// A kind's sled trees.
pub(super) struct Trees {
    /// Search entries added by updates.
    pub(super) entries: sled::Tree,
    /// Identities of records added by updates.
    pub(super) ids: sled::Tree,
    /// Base records an update replaced or removed (key: record id).
    pub(super) dead: sled::Tree,
}

/// What the writers know of one kind when they finish.
pub(super) struct KindEnd {
    pub(super) kind: RecordKind,
    pub(super) live: u64,
    pub(super) next_id: u64,
    pub(super) base_end: u64,
    /// The records file appended to.
    pub(super) records: RecordAppender,
    /// Bytes of records in other files (an update's base records file).
    pub(super) other_bytes: u64,
}

/// The sled database of an index being written, and its `meta` tree.
pub(super) struct SledStore {
    pub(super) path: PathBuf,
    pub(super) db: sled::Db,
    meta: sled::Tree,
}

impl SledStore {
    /// Opens (`new`: creates) the sled database of the index at `path`, and every tree,
    /// in the same order whatever the writer (sled's checksum covers its trees).
    pub(super) fn open(
        path: &Path,
        new: bool,
        check: Option<&IndexCheck>,
    ) -> Result<(SledStore, Vec<Trees>), IndexError> {
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
        let mut trees = Vec::new();
        for kind in RecordKind::ALL {
            let dead = db.open_tree(dead_tree_name(kind)).map_err(err)?;
            trees.push(Trees {
                entries: db.open_tree(tree_name(kind)).map_err(err)?,
                ids: db.open_tree(identity_tree_name(kind)).map_err(err)?,
                dead,
            });
        }
        let store = SledStore {
            path: path.to_owned(),
            db,
            meta,
        };
        Ok((store, trees))
    }

    /// A count of the `meta` tree (`0` when absent).
    pub(super) fn count(&self, name: &str, kind: RecordKind) -> Result<u64, IndexError> {
        Ok(self
            .meta
            .get(keys::meta_key(name, kind))
            .map_err(|e| IndexError::sled(&self.path, e))?
            .and_then(|v| codec::decode_count(&v))
            .unwrap_or(0))
    }

    /// Writes the counts, flushes sled, syncs the record files and sums up the index.
    pub(super) fn finish(
        self,
        kinds: Vec<KindEnd>,
        index_entries: u64,
    ) -> Result<IndexStats, IndexError> {
        let err = |e| IndexError::sled(&self.path, e);
        let mut records = BTreeMap::new();
        for end in &kinds {
            records.insert(end.kind, end.live);
            for (name, value) in [
                ("count", end.live),
                ("next_id", end.next_id),
                ("base_end", end.base_end),
            ] {
                self.meta
                    .insert(keys::meta_key(name, end.kind), &codec::encode_count(value))
                    .map_err(err)?;
            }
        }
        self.db.flush().map_err(err)?;
        let mut bytes = 0;
        for end in kinds {
            bytes += end.records.finish()? + end.other_bytes;
        }
        let (checksum, files) = super::checksum(&self.path, &self.db)?;
        Ok(IndexStats {
            records,
            index_entries,
            records_bytes: bytes,
            checksum,
            files,
        })
    }
}
