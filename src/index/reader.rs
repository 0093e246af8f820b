//! Reads a published snapshot's index. Cheap to share between threads: the base is in
//! memory, sled handles are thread-safe and record bodies are read with positioned
//! reads.

use super::codec::{self, Location};
use super::keys::{self, Query};
use super::sorted;
use super::{
    base_file, base_locations_file, dead_tree_name, delta_records_file, records_file, tree_name,
    IndexError, SLED_DIR,
};
use crate::ivre::RecordKind;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
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
struct Part {
    /// Search keys of the full import (`None`: the index has none of this kind).
    base: Option<fst::Set<Vec<u8>>>,
    /// The base's packed record locations, by record id.
    locations: Vec<u64>,
    /// Base records updates replaced.
    dead: HashSet<u64>,
    /// Search entries added by updates.
    added: sled::Tree,
    /// Records of the full import.
    file: File,
    /// Records added by updates (`None`: none yet).
    delta: Option<File>,
}

/// An open index.
pub struct IndexReader {
    path: PathBuf,
    db: sled::Db,
    /// By kind: scans, view, passive.
    parts: Vec<Part>,
}

impl IndexReader {
    /// Opens the index directory `path` (sled takes an exclusive lock on its database).
    pub fn open(path: &Path, cache_bytes: u64) -> Result<IndexReader, IndexError> {
        IndexReader::open_parts(path, &path.join(SLED_DIR), cache_bytes)
    }

    /// Opens an index whose sled database is at `sled_path` (for instance a private copy
    /// of a locked one) and whose record file is in `path`. Only sled locks; the record
    /// file is shared read-only.
    pub fn open_parts(
        path: &Path,
        sled_path: &Path,
        cache_bytes: u64,
    ) -> Result<IndexReader, IndexError> {
        let sled_path = sled_path.to_owned();
        if !sled_path.join("db").is_file() {
            return Err(IndexError::NotAnIndex {
                path: path.to_owned(),
                missing: SLED_DIR,
            });
        }
        let err = |e| IndexError::sled(&sled_path, e);
        let db = sled::Config::new()
            .path(&sled_path)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(err)?;
        let mut parts = Vec::new();
        for kind in RecordKind::ALL {
            let p = path.join(records_file(kind));
            let file = File::open(&p).map_err(|e| IndexError::io(&p, e))?;
            let p = path.join(delta_records_file(kind));
            let delta = super::if_exists(File::open(&p)).map_err(|e| IndexError::io(&p, e))?;
            let base_path = path.join(base_file(tree_name(kind)));
            let base = sorted::load(&base_path).map_err(|e| IndexError::base(&base_path, e))?;
            let loc_path = path.join(base_locations_file(kind));
            let locations =
                sorted::load_locations(&loc_path).map_err(|e| IndexError::base(&loc_path, e))?;
            let dead = db
                .open_tree(dead_tree_name(kind))
                .map_err(err)?
                .iter()
                .keys()
                .map(|k| k.map(|k| keys::id_of(&k)))
                .filter_map(Result::transpose)
                .collect::<Result<_, _>>()
                .map_err(err)?;
            parts.push(Part {
                base,
                locations,
                dead,
                added: db.open_tree(tree_name(kind)).map_err(err)?,
                file,
                delta,
            });
        }
        Ok(IndexReader {
            path: path.to_owned(),
            db,
            parts,
        })
    }

    fn part(&self, kind: RecordKind) -> &Part {
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
        let mut hits: BTreeMap<u64, Location> = BTreeMap::new();
        for query in queries {
            let Some(prefix) = query.prefix() else {
                continue;
            };
            if let Some(base) = &part.base {
                for id in sorted::scan_prefix(base, &prefix, keys::id_of) {
                    let Some(id) = id else {
                        continue;
                    };
                    if part.dead.contains(&id) {
                        continue;
                    }
                    let packed = usize::try_from(id)
                        .ok()
                        .and_then(|i| part.locations.get(i))
                        .ok_or_else(|| IndexError::Codec {
                            path: self.path.clone(),
                            kind,
                            id,
                            source: codec::CodecError::Truncated,
                        })?;
                    hits.insert(id, codec::unpack_location(*packed));
                }
            }
            for entry in part.added.scan_prefix(&prefix) {
                let (key, value) = entry.map_err(|e| IndexError::sled(&self.path, e))?;
                let Some(id) = keys::id_of(&key) else {
                    continue;
                };
                let location =
                    codec::decode_location(&value).map_err(|source| IndexError::Codec {
                        path: self.path.clone(),
                        kind,
                        id,
                        source,
                    })?;
                hits.insert(id, location);
            }
        }
        let truncated = limit.is_some_and(|l| hits.len() > l);
        let records = hits
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(|(id, location)| Hit { kind, id, location })
            .collect();
        Ok(Found { records, truncated })
    }

    fn raw(&self, hit: &Hit) -> Result<Vec<u8>, IndexError> {
        let part = self.part(hit.kind);
        let (file, name) = if hit.location.offset & codec::DELTA_OFFSET != 0 {
            (part.delta.as_ref(), delta_records_file(hit.kind))
        } else {
            (Some(&part.file), records_file(hit.kind))
        };
        let missing = || std::io::Error::from(std::io::ErrorKind::NotFound);
        file.ok_or_else(missing)
            .and_then(|f| codec::read_record(f, codec::without_delta_bit(hit.location)))
            .map_err(|e| IndexError::io(&self.path.join(name), e))
    }

    fn codec_error(&self, hit: &Hit) -> impl Fn(codec::CodecError) -> IndexError + '_ {
        let (kind, id) = (hit.kind, hit.id);
        move |source| IndexError::Codec {
            path: self.path.clone(),
            kind,
            id,
            source,
        }
    }

    /// The export-form JSON of a record (its summary is not decoded).
    pub fn json(&self, hit: &Hit) -> Result<String, IndexError> {
        codec::decode_record_json(&self.raw(hit)?).map_err(self.codec_error(hit))
    }

    /// The typed summary of a record (its JSON is not decompressed).
    pub fn summary<T: DeserializeOwned>(&self, hit: &Hit) -> Result<T, IndexError> {
        codec::decode_record_summary(&self.raw(hit)?).map_err(self.codec_error(hit))
    }

    /// The index checksum (`crc32:<record and base files>/<sled trees>`), as recorded
    /// in the manifest at build time.
    pub fn checksum(&self) -> Result<String, IndexError> {
        super::checksum(&self.path, &self.db)
    }
}
