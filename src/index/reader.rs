//! Reads a published snapshot's index. Cheap to share between threads: the base's key
//! tables keep only their block index in memory and read blocks with positioned reads,
//! sled handles are thread-safe, and record bodies are read with positioned reads too.

use super::codec::{self, Location, RecordDictionary};
use super::key_table::KeyTable;
use super::keys::{self, Query};
use super::record_file::RecordFile;
use super::sorted;
use super::{
    base_file, base_identities_file, base_locations_file, dead_ids, dead_tree_name,
    delta_records_file, dictionary_file, identity_tree_name, records_file, tree_name, IndexCheck,
    IndexError, SLED_DIR,
};
use crate::ivre::RecordKind;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Records matching a query, in import order.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<T> {
    pub records: Vec<T>,
    /// More records matched than the limit allowed.
    pub truncated: bool,
}

/// A record matched by a search: its id (import order) and location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub kind: RecordKind,
    pub id: u64,
    pub location: Location,
}

/// The searchable records of one kind.
struct KindIndex {
    /// Search keys of the full import, with their file (`None`: the index has none of
    /// this kind).
    base: Option<(PathBuf, KeyTable<File>)>,
    /// Base records updates replaced.
    dead: HashSet<u64>,
    /// Search entries added by updates.
    added: Added,
    /// Records of the full import.
    file: RecordFile,
    /// Records added by updates (`None`: none yet).
    delta: Option<RecordFile>,
    /// The dictionary the kind's records are compressed against (`None`: alone).
    dictionary: Option<RecordDictionary>,
}

/// An open index.
pub struct IndexReader {
    path: PathBuf,
    check: IndexCheck,
    db: sled::Db,
    /// By kind: scans, view, passive.
    parts: Vec<KindIndex>,
}

impl IndexReader {
    /// Opens the index directory `path` (sled takes an exclusive lock on its database),
    /// checking its files against `check` (the manifest's list, see [`IndexCheck`]).
    pub fn open(
        path: &Path,
        check: &IndexCheck,
        cache_bytes: u64,
    ) -> Result<IndexReader, IndexError> {
        IndexReader::open_parts(path, &path.join(SLED_DIR), check, cache_bytes)
    }

    /// Opens an index whose sled database is at `sled_path` (for instance a private copy
    /// of a locked one) and whose record file is in `path`. Only sled locks; the record
    /// file is shared read-only.
    pub fn open_parts(
        path: &Path,
        sled_path: &Path,
        check: &IndexCheck,
        cache_bytes: u64,
    ) -> Result<IndexReader, IndexError> {
        let sled_path = sled_path.to_owned();
        if !sled_path.join("db").is_file() {
            return Err(IndexError::NotAnIndex {
                path: path.to_owned(),
                missing: SLED_DIR,
            });
        }
        // Every file first: a damaged one is named before sled reads anything.
        let mut files = Vec::new();
        for kind in RecordKind::ALL {
            let name = records_file(kind);
            let p = path.join(name);
            let (file, len) = check
                .open_file(&p, name)?
                .ok_or_else(|| IndexError::damaged(&p, "not in the manifest"))?;
            let file = RecordFile { path: p, file, len };
            let name = delta_records_file(kind);
            let p = path.join(name);
            let delta =
                check
                    .open_file(&p, name)?
                    .map(|(file, len)| RecordFile { path: p, file, len });
            let name = base_file(tree_name(kind));
            let p = path.join(&name);
            let base = match check.open_checked(&p, &name)? {
                Some((file, len)) => Some((
                    p.clone(),
                    KeyTable::open(file, len).map_err(|e| IndexError::base(&p, e))?,
                )),
                None => None,
            };
            // Only updates read the identities, and `verify` the locations (searches find
            // them in the key table): checked to be there, sized as listed.
            let name = base_identities_file(kind);
            check.open_file(&path.join(&name), &name)?;
            let name = base_locations_file(kind);
            check.open_file(&path.join(name), name)?;
            let dictionary = read_dictionary(path, kind, check)?;
            files.push((file, delta, base, dictionary));
        }
        let err = |e| IndexError::sled(&sled_path, e);
        let db = sled::Config::new()
            .path(&sled_path)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(err)?;
        check.check_entries(&sled_path, &db)?;
        let mut parts = Vec::new();
        for (kind, (file, delta, base, dictionary)) in RecordKind::ALL.into_iter().zip(files) {
            let dead = dead_ids(&db.open_tree(dead_tree_name(kind)).map_err(err)?).map_err(err)?;
            parts.push(KindIndex {
                base,
                dead,
                added: Added::load(
                    db.open_tree(tree_name(kind)).map_err(err)?,
                    kind,
                    &sled_path,
                )?,
                file,
                delta,
                dictionary,
            });
        }
        Ok(IndexReader {
            path: path.to_owned(),
            check: check.clone(),
            db,
            parts,
        })
    }

    /// The same index, its updates' entries read from sled whatever their number (the
    /// path taken above [`Added::IN_MEMORY`]).
    #[cfg(test)]
    pub(crate) fn added_read_from_sled(mut self) -> IndexReader {
        for (kind, part) in RecordKind::ALL.into_iter().zip(&mut self.parts) {
            let tree = self.db.open_tree(tree_name(kind)).expect("a sled tree");
            part.added = Added::load_at_most(tree, kind, &self.path.join(SLED_DIR), 0)
                .expect("sled entries");
        }
        self
    }

    fn part(&self, kind: RecordKind) -> &KindIndex {
        match kind {
            RecordKind::Scan => &self.parts[0],
            RecordKind::View => &self.parts[1],
            RecordKind::Passive => &self.parts[2],
        }
    }

    /// The records of `kind` matching any of `queries`, deduplicated, in import order.
    pub fn search(
        &self,
        kind: RecordKind,
        queries: &[Query],
        limit: Option<usize>,
    ) -> Result<Found<Hit>, IndexError> {
        let part = self.part(kind);
        // The answer is the `limit` lowest ids; one more tells that more matched. Only
        // that many are kept, and a scan whose ids ascend stops at the first id beyond
        // them: an AS of a million records costs what its first thousand do.
        let keep = limit.map(|l| l.saturating_add(1));
        let mut hits = Hits {
            found: BTreeMap::new(),
            keep,
        };
        for query in queries {
            let Some(prefix) = query.prefix() else {
                continue;
            };
            let ascending = query.ids_ascending();
            if let Some((file, base)) = &part.base {
                base.for_each_prefix(&prefix, |key, packed| {
                    let Some(id) = keys::id_of(key) else {
                        return ControlFlow::Continue(());
                    };
                    if part.dead.contains(&id) {
                        return ControlFlow::Continue(());
                    }
                    if hits.beyond(id) {
                        return if ascending {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        };
                    }
                    hits.insert(id, codec::unpack_location(packed));
                    ControlFlow::Continue(())
                })
                .map_err(|e| IndexError::base(file, e))?;
            }
            for entry in part.added.scan_prefix(kind, &prefix) {
                let (id, location) = entry?;
                if hits.beyond(id) {
                    if ascending {
                        break;
                    }
                    continue;
                }
                hits.insert(id, location);
            }
        }
        let hits = hits.found;
        let truncated = limit.is_some_and(|l| hits.len() > l);
        let records = hits
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(|(id, location)| Hit { kind, id, location })
            .collect();
        Ok(Found { records, truncated })
    }

    /// Reads a hit's stored bytes into a reused per-thread buffer and hands them to `f`.
    fn with_raw<R>(
        &self,
        hit: &Hit,
        f: impl FnOnce(&[u8], Option<&RecordDictionary>) -> Result<R, codec::CodecError>,
    ) -> Result<R, IndexError> {
        thread_local! {
            static RAW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let part = self.part(hit.kind);
        let file = if hit.location.offset & codec::DELTA_OFFSET != 0 {
            let Some(delta) = &part.delta else {
                return Err(IndexError::damaged(
                    &self.path.join(delta_records_file(hit.kind)),
                    format!(
                        "{} record {} is located in this file, which the manifest does not list",
                        hit.kind, hit.id
                    ),
                ));
            };
            delta
        } else {
            &part.file
        };
        RAW.with_borrow_mut(|buf| {
            file.read_into(hit.location, buf)?;
            f(buf, part.dictionary.as_ref())
        })
        .map_err(|source| IndexError::Codec {
            path: file.path.clone(),
            kind: hit.kind,
            id: hit.id,
            source,
        })
    }

    /// The export-form JSON of a record (its summary is not decoded).
    pub fn json(&self, hit: &Hit) -> Result<String, IndexError> {
        self.with_raw(hit, codec::decode_record_json)
    }

    /// The typed summary of a record (its JSON is not parsed).
    pub fn summary<T: DeserializeOwned>(&self, hit: &Hit) -> Result<T, IndexError> {
        self.with_raw(hit, codec::decode_record_summary)
    }

    /// The index checksum (`crc32:<record and base files>/<sled trees>`), as recorded
    /// in the manifest at build time.
    pub fn checksum(&self) -> Result<String, IndexError> {
        Ok(super::checksum(&self.path, &self.db)?.0)
    }

    /// Checks everything `index verify` checks, and returns what it found wrong (empty:
    /// the index is whole): the checksum and every file's size and CRC against the
    /// manifest, then every live record (read, CRC, decompressed, decoded) and every
    /// location in sled. `decode` decodes one record's summary (the caller knows the
    /// types), given the kind's dictionary.
    pub fn verify(
        &self,
        decode: impl Fn(RecordKind, &[u8], Option<&RecordDictionary>) -> Result<(), codec::CodecError>,
    ) -> Result<Verified, IndexError> {
        let mut out = Verified::default();
        let (checksum, files) = super::checksum(&self.path, &self.db)?;
        if checksum != self.check.checksum {
            out.problems.push(format!(
                "index checksum {checksum}, the manifest says {}",
                self.check.checksum
            ));
        }
        for (name, sum) in &self.check.files {
            match files.get(name) {
                None => out.problems.push(format!(
                    "{}: listed in the manifest but missing",
                    self.path.join(name).display()
                )),
                Some(found) if found != sum => out.problems.push(format!(
                    "{}: {} bytes, CRC-32 {}; the manifest says {} bytes, CRC-32 {}",
                    self.path.join(name).display(),
                    found.bytes,
                    found.crc32,
                    sum.bytes,
                    sum.crc32
                )),
                Some(_) => {}
            }
        }
        for name in files.keys().filter(|n| !self.check.files.contains_key(*n)) {
            out.problems.push(format!(
                "{}: present but not in the manifest",
                self.path.join(name).display()
            ));
        }
        let mut bad_locations = Vec::new();
        for kind in RecordKind::ALL {
            let part = self.part(kind);
            let name = base_locations_file(kind);
            let file = self.path.join(name);
            let locations = match self.check.read_file(&file, name) {
                Ok(Some(bytes)) => sorted::locations_from_bytes(&bytes)
                    .map_err(|e| IndexError::base(&file, e).to_string()),
                Ok(None) => Ok(Vec::new()),
                Err(e) => Err(format!("{kind} records of the base not checked: {e}")),
            };
            let locations = locations.unwrap_or_else(|problem| {
                out.problems.push(problem);
                Vec::new()
            });
            let mut check = |id: u64, location: Location| {
                let hit = Hit { kind, id, location };
                let result = self.with_raw(&hit, |bytes, dictionary| {
                    codec::decode_record_json(bytes, dictionary)
                        .and_then(|_| decode(kind, bytes, dictionary))
                });
                out.records += 1;
                if let Err(e) = result {
                    out.problems.push(e.to_string());
                }
            };
            for (id, packed) in locations.iter().enumerate() {
                let id = id as u64;
                if !part.dead.contains(&id) {
                    check(id, codec::unpack_location(*packed));
                }
            }
            let ids = self
                .db
                .open_tree(identity_tree_name(kind))
                .map_err(|e| IndexError::sled(&self.path, e))?;
            for entry in ids.iter() {
                let (key, value) = entry.map_err(|e| IndexError::sled(&self.path, e))?;
                let id = keys::id_of(&key).unwrap_or(u64::MAX);
                match codec::decode_location(&value) {
                    Ok(location) => check(id, location),
                    Err(e) => bad_locations.push(format!(
                        "{kind} record {id}: its location in {}: {e}",
                        self.path.join(SLED_DIR).display()
                    )),
                }
            }
        }
        out.problems.extend(bad_locations);
        Ok(out)
    }
}

/// The dictionary of `kind` in the index at `path`, if the manifest lists one (CRC
/// checked).
pub(super) fn read_dictionary(
    path: &Path,
    kind: RecordKind,
    check: &IndexCheck,
) -> Result<Option<RecordDictionary>, IndexError> {
    let name = dictionary_file(kind);
    let file = path.join(name);
    let Some(bytes) = check.read_file(&file, name)? else {
        return Ok(None);
    };
    RecordDictionary::from_bytes(bytes)
        .map(Some)
        .map_err(|e| IndexError::damaged(&file, e.to_string()))
}

/// What [`IndexReader::verify`] found.
#[derive(Debug, Default)]
pub struct Verified {
    /// Records read and decoded.
    pub records: u64,
    /// Each problem, naming the file (and record).
    pub problems: Vec<String>,
}

/// Search entries added by updates, as a search reads them: copied into memory when the
/// index opens if there are at most [`Added::IN_MEMORY`] of them (sled's own prefix scan
/// was 16 % of a lookup's time on a generation with a 1 % update: an iterator, a page
/// lookup and key clones per query and kind), read from sled otherwise.
enum Added {
    Memory(BTreeMap<Box<[u8]>, Location>),
    Sled { tree: sled::Tree, path: PathBuf },
}

impl Added {
    /// Entries copied into memory at most: a few tens of MB.
    const IN_MEMORY: usize = 250_000;

    fn load(tree: sled::Tree, kind: RecordKind, path: &Path) -> Result<Added, IndexError> {
        Added::load_at_most(tree, kind, path, Added::IN_MEMORY)
    }

    fn load_at_most(
        tree: sled::Tree,
        kind: RecordKind,
        path: &Path,
        limit: usize,
    ) -> Result<Added, IndexError> {
        let mut entries = BTreeMap::new();
        for entry in tree.iter() {
            if entries.len() >= limit {
                return Ok(Added::Sled {
                    tree,
                    path: path.to_owned(),
                });
            }
            let (key, value) = entry.map_err(|e| IndexError::sled(path, e))?;
            let location = Added::location(kind, path, &key, &value)?;
            entries.insert(Box::from(&key[..]), location);
        }
        Ok(Added::Memory(entries))
    }

    fn location(
        kind: RecordKind,
        path: &Path,
        key: &[u8],
        value: &[u8],
    ) -> Result<Location, IndexError> {
        codec::decode_location(value).map_err(|source| IndexError::Codec {
            path: path.to_owned(),
            kind,
            id: keys::id_of(key).unwrap_or(u64::MAX),
            source,
        })
    }

    /// `(record id, location)` of each entry starting with `prefix`, in key order
    /// (entries without an id are skipped).
    fn scan_prefix<'a>(
        &'a self,
        kind: RecordKind,
        prefix: &'a [u8],
    ) -> Box<dyn Iterator<Item = Result<(u64, Location), IndexError>> + 'a> {
        match self {
            Added::Memory(entries) => Box::new(
                entries
                    .range::<[u8], _>((
                        std::ops::Bound::Included(prefix),
                        std::ops::Bound::Unbounded,
                    ))
                    .take_while(move |(key, _)| key.starts_with(prefix))
                    .filter_map(|(key, location)| Some(Ok((keys::id_of(key)?, *location)))),
            ),
            Added::Sled { tree, path } => {
                Box::new(tree.scan_prefix(prefix).filter_map(move |entry| {
                    let (key, value) = match entry {
                        Ok(entry) => entry,
                        Err(e) => return Some(Err(IndexError::sled(path, e))),
                    };
                    let id = keys::id_of(&key)?;
                    Some(Added::location(kind, path, &key, &value).map(|location| (id, location)))
                }))
            }
        }
    }
}

/// The lowest ids a search found so far, at most `keep` of them.
struct Hits {
    found: BTreeMap<u64, Location>,
    keep: Option<usize>,
}

impl Hits {
    /// `id` cannot be among the lowest `keep`: that many are kept, all lower than it.
    fn beyond(&self, id: u64) -> bool {
        self.keep.is_some_and(|keep| {
            self.found.len() >= keep
                && self
                    .found
                    .last_key_value()
                    .is_some_and(|(&max, _)| id > max)
        })
    }

    fn insert(&mut self, id: u64, location: Location) {
        self.found.insert(id, location);
        if self.keep.is_some_and(|keep| self.found.len() > keep) {
            self.found.pop_last();
        }
    }
}
