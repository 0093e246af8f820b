//! Reads a published snapshot's index. Cheap to share between threads: sled handles
//! are thread-safe and record bodies are read with positioned reads.

use super::codec::{self, Location};
use super::keys::{self, Query};
use super::{records_file, tree_name, IndexError, SLED_DIR};
use crate::ivre::RecordKind;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
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

/// An open index.
pub struct IndexReader {
    path: PathBuf,
    db: sled::Db,
    trees: Vec<sled::Tree>,
    /// Record files by kind (scans, view, passive).
    files: Vec<File>,
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
        let mut files = Vec::new();
        for kind in RecordKind::ALL {
            let p = path.join(records_file(kind));
            files.push(File::open(&p).map_err(|e| IndexError::io(&p, e))?);
        }
        let err = |e| IndexError::sled(&sled_path, e);
        let db = sled::Config::new()
            .path(&sled_path)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(err)?;
        let trees = RecordKind::ALL
            .iter()
            .map(|kind| db.open_tree(tree_name(*kind)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        Ok(IndexReader {
            path: path.to_owned(),
            db,
            trees,
            files,
        })
    }

    fn tree(&self, kind: RecordKind) -> &sled::Tree {
        match kind {
            RecordKind::Scan => &self.trees[0],
            RecordKind::View => &self.trees[1],
            RecordKind::Passive => &self.trees[2],
        }
    }

    /// The records of `kind` matching any of `queries`, deduplicated, in import order.
    pub fn search(
        &self,
        kind: RecordKind,
        queries: &[Query],
        limit: Option<usize>,
    ) -> Result<Found<Hit>, IndexError> {
        let mut hits: BTreeMap<u64, Location> = BTreeMap::new();
        for query in queries {
            let Some(prefix) = query.prefix() else {
                continue;
            };
            for entry in self.tree(kind).scan_prefix(&prefix) {
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

    fn file(&self, kind: RecordKind) -> &File {
        match kind {
            RecordKind::Scan => &self.files[0],
            RecordKind::View => &self.files[1],
            RecordKind::Passive => &self.files[2],
        }
    }

    fn raw(&self, hit: &Hit) -> Result<Vec<u8>, IndexError> {
        let mut buf = vec![0u8; hit.location.len as usize];
        self.file(hit.kind)
            .read_exact_at(&mut buf, hit.location.offset)
            .map_err(|e| IndexError::io(&self.path.join(records_file(hit.kind)), e))?;
        Ok(buf)
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

    /// `crc32:<record files>/<search entries>`, as recorded in the manifest at build time.
    pub fn checksum(&self) -> Result<String, IndexError> {
        let mut hasher = crc32fast::Hasher::new();
        for kind in RecordKind::ALL {
            super::writer::crc_file(&self.path.join(records_file(kind)), &mut hasher)?;
        }
        let entries = self
            .db
            .checksum()
            .map_err(|e| IndexError::sled(&self.path, e))?;
        Ok(format!("crc32:{:08x}/{:08x}", hasher.finalize(), entries))
    }
}
