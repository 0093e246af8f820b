//! Updates a copy of a published index in place (incremental pulls, delta drops, a
//! replaced kind), so that an update costs what it changes. The base stays as it is (a
//! copy shares its files by hard links): new records go to `<kind>.delta.bin`, their
//! search entries and identities to sled (batched), and a stored record an update
//! replaces is marked dead (a base record: `<kind>.dead`) or loses its sled entries
//! (one added earlier). What the new record becomes is IVRE's merge rule
//! ([`crate::ivre::merge`]).

use super::codec::{self, Location, RecordDictionary};
use super::entries::record_entries;
use super::identity_file::IdentityTable;
use super::keys;
use super::reader::read_dictionary;
use super::record_file::{RecordAppender, RecordFile};
use super::sorted;
use super::writer::{
    part_index, prepare, Encoding, IndexStats, KindEnd, Prepared, SledStore, Trees, BATCH_RECORDS,
};
use super::{
    base_file, base_identities_file, base_locations_file, delta_records_file, record_identity,
    records_file, tree_name, IndexCheck, IndexError, SLED_DIR,
};
use crate::ivre::merge::{accumulate_passive, MergeMode};
use crate::ivre::{HostSummary, ParsedRecord, PassiveSummary, RecordKind, Summary};
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::fs::File;
use std::path::Path;

/// One kind of an update.
struct UpdateKind {
    kind: RecordKind,
    trees: Trees,
    /// Base records marked dead.
    dead: HashSet<u64>,
    entry_batch: sled::Batch,
    id_batch: sled::Batch,
    /// Base records marked dead, waiting to be written to the dead tree.
    dead_batch: sled::Batch,
    /// Inserts waiting in the batches (an empty batch is not applied: sled charges for
    /// every `apply_batch`).
    batched: usize,
    /// Identities of the records waiting in the batches: an update that meets one of
    /// them applies the batches first, so that it sees the record.
    pending_ids: HashSet<[u8; 16]>,
    /// The base's identities.
    base_ids: Option<IdentityTable>,
    /// The base's packed locations by record id.
    base_locations: Vec<u64>,
    /// Records with an id below this one are in the base.
    base_end: u64,
    next_id: u64,
    live: u64,
    /// The delta records file, appended to (the base one may be shared with the served
    /// generation).
    records: RecordAppender,
    /// The base records file (`None` when the kind has no base).
    base_records: Option<RecordFile>,
    /// The full import's dictionary of the kind: records are read and added with it.
    dictionary: Option<RecordDictionary>,
}

/// Updates an index directory: a private copy, never a published one.
pub struct UpdateWriter {
    store: SledStore,
    parts: Vec<UpdateKind>,
    pending: usize,
    index_entries: u64,
}

impl UpdateWriter {
    /// Opens the index directory `path` to update it, checking its files against `check`
    /// (the manifest of the generation it copies) before anything is read or appended.
    pub fn open(path: &Path, check: &IndexCheck) -> Result<UpdateWriter, IndexError> {
        let mut checked = Vec::new();
        for kind in RecordKind::ALL {
            let name = records_file(kind);
            let base_path = path.join(name);
            let base_records = check
                .open_file(&base_path, name)?
                .map(|(file, len)| RecordFile {
                    path: base_path,
                    file,
                    len,
                });
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
                Some(bytes) => {
                    sorted::locations_from_bytes(&bytes).map_err(|e| IndexError::base(&file, e))?
                }
                None => Vec::new(),
            };
            let name = base_file(tree_name(kind));
            check.expect(&path.join(&name), &name)?;
            let dictionary = read_dictionary(path, kind, check)?;
            checked.push((base_records, ids, locations, dictionary));
        }
        let (store, trees) = SledStore::open(path, false, Some(check))?;
        let err = |e| IndexError::sled(&store.path.join(SLED_DIR), e);
        let mut parts = Vec::new();
        for ((kind, trees), (base_records, base_ids, base_locations, dictionary)) in
            RecordKind::ALL.into_iter().zip(trees).zip(checked)
        {
            let dead = super::dead_ids(&trees.dead).map_err(err)?;
            parts.push(UpdateKind {
                kind,
                dead,
                entry_batch: sled::Batch::default(),
                id_batch: sled::Batch::default(),
                dead_batch: sled::Batch::default(),
                batched: 0,
                pending_ids: HashSet::new(),
                base_ids,
                base_locations,
                base_end: store.count("base_end", kind)?,
                next_id: store.count("next_id", kind)?,
                live: store.count("count", kind)?,
                records: RecordAppender::open(&path.join(delta_records_file(kind)), kind, true)?,
                base_records,
                trees,
                dictionary,
            });
        }
        Ok(UpdateWriter {
            store,
            parts,
            pending: 0,
            index_entries: 0,
        })
    }

    /// Appends a prepared record to the delta file and batches its entries.
    fn write(&mut self, prepared: &Prepared) -> Result<(), IndexError> {
        let part = &mut self.parts[part_index(prepared.kind)];
        let id = part.next_id;
        let location = part.records.append(id, &prepared.bytes)?;
        part.next_id += 1;
        part.live += 1;
        let value = codec::encode_location(location);
        for (field, term) in &prepared.entries {
            part.entry_batch
                .insert(keys::index_key(*field, term, id), &value[..]);
        }
        part.id_batch
            .insert(&keys::identity_key(&prepared.identity, id)[..], &value[..]);
        part.batched += 1;
        part.pending_ids.insert(prepared.identity);
        self.index_entries += prepared.entries.len() as u64;
        Ok(())
    }

    /// Reads stored record `id` back: its JSON and summary.
    fn read_stored<T: DeserializeOwned>(
        &mut self,
        kind: RecordKind,
        id: u64,
        location: Location,
    ) -> Result<(String, T), IndexError> {
        let part = &mut self.parts[part_index(kind)];
        let (bytes, path) = if location.offset & codec::DELTA_OFFSET != 0 {
            (
                part.records.read(id, location)?,
                part.records.path().to_owned(),
            )
        } else {
            // A base location without a base file: the index is damaged.
            let Some(base) = &part.base_records else {
                return Err(IndexError::Codec {
                    path: part.records.path().to_owned(),
                    kind,
                    id,
                    source: codec::CodecError::Truncated,
                });
            };
            let mut buf = Vec::new();
            base.read_into(location, &mut buf)
                .map_err(|source| IndexError::Codec {
                    path: base.path.clone(),
                    kind,
                    id,
                    source,
                })?;
            (buf, base.path.clone())
        };
        let dictionary = self.parts[part_index(kind)].dictionary.as_ref();
        codec::decode_record(&bytes, dictionary).map_err(|source| IndexError::Codec {
            path,
            kind,
            id,
            source,
        })
    }

    /// The stored records with the identity of `record`: in the base (unless dead) and
    /// added by updates.
    fn stored(
        &self,
        kind: RecordKind,
        record: &ParsedRecord,
    ) -> Result<Vec<(u64, Location)>, IndexError> {
        let part = &self.parts[part_index(kind)];
        let prefix = record_identity::of(kind, &record.summary);
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
        for entry in part.trees.ids.scan_prefix(prefix) {
            let (key, value) = entry.map_err(|e| IndexError::sled(&self.store.path, e))?;
            let Some(id) = keys::id_of(&key) else {
                continue;
            };
            let location = codec::decode_location(&value).map_err(|source| IndexError::Codec {
                path: self.store.path.join(SLED_DIR),
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
        let err = |e| IndexError::sled(&self.store.path, e);
        part.live = part.live.saturating_sub(1);
        if id < part.base_end {
            part.dead_batch.insert(&keys::record_key(id), &[]);
            part.batched += 1;
            part.dead.insert(id);
            return Ok(());
        }
        let mut entries = Vec::new();
        record_entries(summary, passive_asn, &mut entries);
        for (field, term) in &entries {
            part.trees
                .entries
                .remove(keys::index_key(*field, term, id))
                .map_err(err)?;
        }
        let identity = record_identity::of(kind, summary);
        part.trees
            .ids
            .remove(&keys::identity_key(&identity, id)[..])
            .map_err(err)?;
        Ok(())
    }

    /// Adds a record, or merges it with the stored one of the same identity by `mode`
    /// (IVRE's rules: [`crate::ivre::merge`]). Later records of the same update see it
    /// (the batches are applied before a record whose identity waits in them).
    pub fn merge(
        &mut self,
        kind: RecordKind,
        record: &ParsedRecord,
        passive_asn: Option<u32>,
        mode: MergeMode,
    ) -> Result<(), IndexError> {
        let identity = record_identity::of(kind, &record.summary);
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
                        merged = accumulate_passive(&json, &merged).map_err(|e| {
                            IndexError::BadJson {
                                kind,
                                id,
                                reason: e.to_string(),
                            }
                        })?;
                    }
                    Summary::Passive(old)
                }
                _ => Summary::Host(self.read_stored::<HostSummary>(kind, id, location)?.1),
            };
            self.forget(kind, id, &summary, passive_asn)?;
        }
        let dictionary = self.parts[part_index(kind)].dictionary.as_ref();
        let prepared = prepare(kind, &merged, passive_asn, Encoding::Stored(dictionary))?;
        self.write(&prepared)?;
        self.pending += 1;
        if self.pending >= BATCH_RECORDS {
            self.apply()?;
        }
        Ok(())
    }

    /// Removes every record of `kind` (the kind is then imported again).
    pub fn clear(&mut self, kind: RecordKind) -> Result<(), IndexError> {
        self.apply()?;
        let path = self.store.path.clone();
        let part = &mut self.parts[part_index(kind)];
        let err = |e| IndexError::sled(&path, e);
        part.trees.entries.clear().map_err(err)?;
        part.trees.ids.clear().map_err(err)?;
        part.trees.dead.clear().map_err(err)?;
        part.dead.clear();
        part.base_ids = None;
        part.base_locations = Vec::new();
        part.base_end = 0;
        for name in [
            base_file(tree_name(kind)),
            base_identities_file(kind),
            base_locations_file(kind).to_owned(),
        ] {
            let file = path.join(name);
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(IndexError::io(&file, e))
                }
                _ => {}
            }
        }
        part.records.truncate()?;
        part.live = 0;
        // The base records file may be shared with the served generation (a hard link):
        // replaced by an empty one, never truncated.
        let base = path.join(records_file(kind));
        std::fs::remove_file(&base)
            .and_then(|()| File::create(&base).map(drop))
            .map_err(|e| IndexError::io(&base, e))?;
        part.base_records = None;
        Ok(())
    }

    /// Applies the batches to sled.
    fn apply(&mut self) -> Result<(), IndexError> {
        let err = |e| IndexError::sled(&self.store.path, e);
        for part in self.parts.iter_mut().filter(|p| p.batched > 0) {
            part.batched = 0;
            part.pending_ids.clear();
            part.trees
                .dead
                .apply_batch(std::mem::take(&mut part.dead_batch))
                .map_err(err)?;
            part.trees
                .entries
                .apply_batch(std::mem::take(&mut part.entry_batch))
                .map_err(err)?;
            part.trees
                .ids
                .apply_batch(std::mem::take(&mut part.id_batch))
                .map_err(err)?;
        }
        self.pending = 0;
        Ok(())
    }

    /// Applies what is pending, flushes everything to disk and closes the index.
    pub fn finish(mut self) -> Result<IndexStats, IndexError> {
        self.apply()?;
        let mut ends = Vec::new();
        for part in self.parts {
            let other_bytes = match &part.base_records {
                Some(base) => base
                    .file
                    .metadata()
                    .map_err(|e| IndexError::io(&base.path, e))?
                    .len(),
                None => 0,
            };
            ends.push(KindEnd {
                kind: part.kind,
                live: part.live,
                next_id: part.next_id,
                base_end: part.base_end,
                records: part.records,
                other_bytes,
            });
        }
        self.store.finish(ends, self.index_entries)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::index::{BaseWriter, IndexReader, Query};
    use crate::ivre::parse_line;
    use std::net::IpAddr;

    fn dns(value: &str, count: u64) -> ParsedRecord {
        let line = format!(
            r#"{{"addr": "192.0.2.1", "sensor": "S", "recontype": "DNS_ANSWER", "source": "A-192.0.2.53-53", "value": "{value}", "count": {count}, "firstseen": "2026-01-01 00:00:00", "lastseen": "2026-01-02 00:00:00", "infos": {{"domain": ["example.com"]}}, "schema_version": 3}}"#
        );
        parse_line(RecordKind::Passive, &line).unwrap()
    }

    fn merge(writer: &mut UpdateWriter, value: &str, count: u64, mode: MergeMode) {
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
        let mut writer = BaseWriter::create(&path).unwrap();
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
        assert!(path.join("passive.idx.keys").is_file());
        assert_eq!(counts(&path, &stats), vec![1, 2, 3]);

        // A base record accumulated into (it becomes dead, the sum is added) and a new one.
        // Updates leave the base files as they are (a copy shares them by hard links).
        let base_bytes = |p: &Path| {
            [
                "passive.bin",
                "passive.idx.keys",
                "passive.loc",
                "passive.ids.sorted",
            ]
            .map(|f| std::fs::read(p.join(f)).unwrap())
        };
        let before = base_bytes(&path);
        let mut writer = UpdateWriter::open(&path, &stats.check()).unwrap();
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
        let mut writer = UpdateWriter::open(&path, &stats.check()).unwrap();
        merge(&mut writer, "b.example.com", 7, MergeMode::Replace);
        let stats = writer.finish().unwrap();
        assert_eq!(counts(&path, &stats), vec![1, 3, 9, 7]);

        // Clearing a kind drops its base too.
        let mut writer = UpdateWriter::open(&path, &stats.check()).unwrap();
        writer.clear(RecordKind::Passive).unwrap();
        let stats = writer.finish().unwrap();
        assert_eq!(stats.records[&RecordKind::Passive], 0);
        assert!(!path.join("passive.idx.keys").exists());
        assert_eq!(counts(&path, &stats), Vec::<u64>::new());
    }

    /// A search with a limit answers the lowest ids (base and updates together, dead
    /// records left out) and says whether more matched, exactly as cutting the whole
    /// answer would, whether its scans stop early (ids ascending) or not.
    #[test]
    fn a_limited_search_is_the_start_of_the_whole_answer() {
        let record = |addr: &str, value: &str, count: u64| {
            let line = format!(
                r#"{{"addr": "{addr}", "sensor": "S", "recontype": "DNS_ANSWER", "source": "A-192.0.2.53-53", "value": "{value}", "count": {count}, "firstseen": "2026-01-01 00:00:00", "lastseen": "2026-01-02 00:00:00", "schema_version": 3}}"#
            );
            parse_line(RecordKind::Passive, &line).unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut writer = BaseWriter::create(&path).unwrap();
        for i in 0..30 {
            let addr = if i % 3 == 0 { "192.0.2.2" } else { "192.0.2.1" };
            writer
                .add(
                    RecordKind::Passive,
                    &record(addr, &format!("n{i}.example.com"), 1),
                    None,
                )
                .unwrap();
        }
        let stats = writer.finish().unwrap();
        // Updates: two base records replaced (dead in the base, added again in sled) and
        // new ones, so that answers mix both layers.
        let mut writer = UpdateWriter::open(&path, &stats.check()).unwrap();
        for (addr, value) in [
            ("192.0.2.1", "n1.example.com"),
            ("192.0.2.2", "n3.example.com"),
            ("192.0.2.1", "new1.example.com"),
            ("192.0.2.2", "new2.example.com"),
        ] {
            writer
                .merge(
                    RecordKind::Passive,
                    &record(addr, value, 5),
                    None,
                    MergeMode::Accumulate,
                )
                .unwrap();
        }
        let stats = writer.finish().unwrap();
        // The updates' entries in memory (few of them), then read from sled.
        let memory = IndexReader::open(&path, &stats.check(), 1 << 20).unwrap();
        let mut answers = Vec::new();
        let ip = |s: &str| Query::Host(s.parse().unwrap());
        let query_sets = [
            vec![ip("192.0.2.1")],
            vec![ip("192.0.2.2"), ip("192.0.2.1")],
            vec![Query::DnsName("n4.example.com".into()), ip("192.0.2.2")],
            vec![ip("198.51.100.1")],
        ];
        let mut check = |reader: &IndexReader| {
            for queries in &query_sets {
                let whole: Vec<u64> = reader
                    .search(RecordKind::Passive, queries, None)
                    .unwrap()
                    .records
                    .iter()
                    .map(|h| h.id)
                    .collect();
                answers.push(whole.clone());
                for limit in [
                    0,
                    1,
                    2,
                    5,
                    whole.len().saturating_sub(1),
                    whole.len(),
                    whole.len() + 1,
                    100,
                ] {
                    let found = reader
                        .search(RecordKind::Passive, queries, Some(limit))
                        .unwrap();
                    let ids: Vec<u64> = found.records.iter().map(|h| h.id).collect();
                    assert_eq!(
                        ids,
                        whole[..limit.min(whole.len())],
                        "{queries:?} limit {limit}"
                    );
                    assert_eq!(
                        found.truncated,
                        whole.len() > limit,
                        "{queries:?} limit {limit}"
                    );
                }
            }
        };
        check(&memory);
        let from_sled = memory.added_read_from_sled();
        check(&from_sled);
        let half = answers.len() / 2;
        assert_eq!(answers[..half], answers[half..]);
        assert!(answers[0].len() > 10, "{answers:?}");
        assert!(
            answers[0].iter().any(|&id| id >= 30),
            "updates' records found"
        );
    }
}
