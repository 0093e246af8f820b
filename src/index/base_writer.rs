//! Writes a new index (a full import): records appended to `<kind>.bin` in import order,
//! their search entries and identities collected ([`KeySorter`], [`IdentityRows`]) and
//! written sorted, with the records' locations, as the immutable base
//! (`<kind>.idx.fst`, `<kind>.ids.sorted`, `<kind>.loc`) when it finishes. sled is
//! created empty (updates fill it later). Memory stays bounded by the sort runs.

use super::codec;
use super::identity_file::IdentityRows;
use super::keys;
use super::record_file::RecordAppender;
use super::sorted::{self, KeySorter};
use super::writer::{part_index, prepare, IndexStats, KindEnd, Prepared, SledStore};
use super::IndexError;
use super::{base_file, base_identities_file, base_locations_file, records_file, tree_name};
use crate::ivre::{ParsedRecord, RecordKind};
use std::path::Path;

/// One kind of a full import.
struct BaseKind {
    kind: RecordKind,
    records: RecordAppender,
    entries: KeySorter,
    ids: IdentityRows,
    /// Packed locations by record id (ids run from 0).
    locations: Vec<u64>,
}

/// Writes a new index directory: records, then the sorted base.
pub struct BaseWriter {
    store: SledStore,
    parts: Vec<BaseKind>,
    index_entries: u64,
    /// Scratch space for a search key.
    key: Vec<u8>,
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
            });
        }
        Ok(BaseWriter {
            store,
            parts,
            index_entries: 0,
            key: Vec::new(),
        })
    }

    /// Adds a prepared record ([`prepare`]).
    pub fn add_prepared(&mut self, prepared: &Prepared) -> Result<(), IndexError> {
        let part = &mut self.parts[part_index(prepared.kind)];
        let id = part.locations.len() as u64;
        let location = part.records.append(id, &prepared.bytes)?;
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
        self.add_prepared(&prepare(kind, record, passive_asn)?)
    }

    /// Writes the sorted base, flushes everything to disk and closes the index.
    pub fn finish(self) -> Result<IndexStats, IndexError> {
        let path = self.store.path.clone();
        let mut ends = Vec::new();
        for part in self.parts {
            let file = path.join(base_file(tree_name(part.kind)));
            part.entries
                .finish(&file)
                .map_err(|e| IndexError::base(&file, e))?;
            let file = path.join(base_identities_file(part.kind));
            part.ids
                .finish(&file)
                .map_err(|e| IndexError::io(&file, e))?;
            if !part.locations.is_empty() {
                let file = path.join(base_locations_file(part.kind));
                sorted::write_locations(&file, &part.locations)
                    .map_err(|e| IndexError::base(&file, e))?;
            }
            let records = part.locations.len() as u64;
            ends.push(KindEnd {
                kind: part.kind,
                live: records,
                next_id: records,
                base_end: records,
                records: part.records,
                other_bytes: 0,
            });
        }
        self.store.finish(ends, self.index_entries)
    }
}
