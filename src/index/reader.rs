//! Reads a published snapshot's index. Cheap to share between threads.

use super::keys::{self, Query};
use super::{codec, tree_names, IndexError, Stored};
use crate::ivre::{HostSummary, PassiveSummary, RecordKind};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Records matching a query, in import order.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<T> {
    pub records: Vec<T>,
    /// More records matched than the limit allowed.
    pub truncated: bool,
}

/// Only the JSON of a stored record (it comes first in the encoding).
#[derive(Deserialize)]
struct JsonOnly {
    json: String,
}

/// An open index.
pub struct IndexReader {
    path: PathBuf,
    db: sled::Db,
    trees: Vec<(sled::Tree, sled::Tree)>,
}

impl IndexReader {
    /// Opens the database at `path` (sled takes an exclusive lock on it).
    pub fn open(path: &Path, cache_bytes: u64) -> Result<IndexReader, IndexError> {
        let err = |e| IndexError::sled(path, e);
        if !path.join("db").is_file() && !path.join("conf").is_file() {
            return Err(IndexError::Sled {
                path: path.to_owned(),
                source: sled::Error::Unsupported("not a sled database".to_owned()),
            });
        }
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(err)?;
        let mut trees = Vec::new();
        for kind in RecordKind::ALL {
            let (records, index) = tree_names(kind);
            trees.push((
                db.open_tree(records).map_err(err)?,
                db.open_tree(index).map_err(err)?,
            ));
        }
        Ok(IndexReader {
            path: path.to_owned(),
            db,
            trees,
        })
    }

    fn trees(&self, kind: RecordKind) -> &(sled::Tree, sled::Tree) {
        match kind {
            RecordKind::Scan => &self.trees[0],
            RecordKind::View => &self.trees[1],
            RecordKind::Passive => &self.trees[2],
        }
    }

    /// Ids of the records matching `query`, deduplicated, in import order.
    pub fn ids(
        &self,
        kind: RecordKind,
        query: &Query,
        limit: Option<usize>,
    ) -> Result<Found<u64>, IndexError> {
        let Some(prefix) = query.prefix() else {
            return Ok(Found {
                records: Vec::new(),
                truncated: false,
            });
        };
        let (_, index) = self.trees(kind);
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        for entry in index.scan_prefix(&prefix) {
            let (key, _) = entry.map_err(|e| IndexError::sled(&self.path, e))?;
            if let Some(id) = keys::id_of(&key) {
                if seen.insert(id) {
                    ids.push(id);
                }
            }
        }
        ids.sort_unstable();
        let truncated = limit.is_some_and(|l| ids.len() > l);
        if let Some(l) = limit {
            ids.truncate(l);
        }
        Ok(Found {
            records: ids,
            truncated,
        })
    }

    fn raw(&self, kind: RecordKind, id: u64) -> Result<sled::IVec, IndexError> {
        let (records, _) = self.trees(kind);
        records
            .get(keys::record_key(id))
            .map_err(|e| IndexError::sled(&self.path, e))?
            .ok_or_else(|| IndexError::Dangling {
                path: self.path.clone(),
                kind,
                id,
            })
    }

    fn decode<T: DeserializeOwned>(&self, kind: RecordKind, id: u64) -> Result<T, IndexError> {
        let raw = self.raw(kind, id)?;
        codec::decode(&raw).map_err(|source| IndexError::Codec {
            path: self.path.clone(),
            kind,
            id,
            source,
        })
    }

    fn find<T: DeserializeOwned>(
        &self,
        kind: RecordKind,
        query: &Query,
        limit: Option<usize>,
    ) -> Result<Found<T>, IndexError> {
        let ids = self.ids(kind, query, limit)?;
        let records = ids
            .records
            .iter()
            .map(|&id| self.decode(kind, id))
            .collect::<Result<_, _>>()?;
        Ok(Found {
            records,
            truncated: ids.truncated,
        })
    }

    /// Scan or view hosts matching `query`.
    pub fn hosts(
        &self,
        kind: RecordKind,
        query: &Query,
        limit: Option<usize>,
    ) -> Result<Found<Stored<HostSummary>>, IndexError> {
        self.find(kind, query, limit)
    }

    /// Passive records matching `query`.
    pub fn passive(
        &self,
        query: &Query,
        limit: Option<usize>,
    ) -> Result<Found<Stored<PassiveSummary>>, IndexError> {
        self.find(RecordKind::Passive, query, limit)
    }

    /// The export-form JSON of the records matching `query` (no summary decoding).
    pub fn json(
        &self,
        kind: RecordKind,
        query: &Query,
        limit: Option<usize>,
    ) -> Result<Found<String>, IndexError> {
        let found: Found<JsonOnly> = self.find(kind, query, limit)?;
        Ok(Found {
            records: found.records.into_iter().map(|j| j.json).collect(),
            truncated: found.truncated,
        })
    }

    /// The export-form JSON of one record.
    pub fn json_of(&self, kind: RecordKind, id: u64) -> Result<String, IndexError> {
        self.decode::<JsonOnly>(kind, id).map(|j| j.json)
    }

    /// Number of records of a kind.
    pub fn len(&self, kind: RecordKind) -> usize {
        self.trees(kind).0.len()
    }

    /// CRC32 of every key and value, as recorded in the manifest at build time.
    pub fn checksum(&self) -> Result<u32, IndexError> {
        self.db
            .checksum()
            .map_err(|e| IndexError::sled(&self.path, e))
    }
}
