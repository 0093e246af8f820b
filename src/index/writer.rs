//! Builds the index of a new snapshot generation. Writes are batched (one sled batch per
//! tree every [`BATCH_RECORDS`] records); memory stays bounded by the batch size.

use super::keys::{self, CertHash, Field};
use super::{codec, tree_names, IndexError, StoredRef};
use crate::ivre::{Certificate, HostSummary, ParsedRecord, PassiveSummary, RecordKind, Summary};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Records per write batch.
pub const BATCH_RECORDS: usize = 4096;

/// What a finished index holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub records: BTreeMap<RecordKind, u64>,
    pub index_entries: u64,
    /// CRC32 of every key and value (sled's `Db::checksum`).
    pub checksum: u32,
}

struct Part {
    records: sled::Tree,
    index: sled::Tree,
    record_batch: sled::Batch,
    index_batch: sled::Batch,
    next_id: u64,
}

/// Writes records into a new, empty sled database.
pub struct IndexWriter {
    path: PathBuf,
    db: sled::Db,
    parts: Vec<Part>,
    pending: usize,
    index_entries: u64,
    buf: Vec<u8>,
}

impl IndexWriter {
    /// Creates the database at `path`, which must not exist yet.
    pub fn create(path: &Path) -> Result<IndexWriter, IndexError> {
        let err = |e| IndexError::sled(path, e);
        let db = sled::Config::new()
            .path(path)
            .create_new(true)
            .cache_capacity(128 * 1024 * 1024)
            .flush_every_ms(None)
            .open()
            .map_err(err)?;
        let mut parts = Vec::new();
        for kind in RecordKind::ALL {
            let (records, index) = tree_names(kind);
            parts.push(Part {
                records: db.open_tree(records).map_err(err)?,
                index: db.open_tree(index).map_err(err)?,
                record_batch: sled::Batch::default(),
                index_batch: sled::Batch::default(),
                next_id: 0,
            });
        }
        Ok(IndexWriter {
            path: path.to_owned(),
            db,
            parts,
            pending: 0,
            index_entries: 0,
            buf: Vec::new(),
        })
    }

    fn part_index(kind: RecordKind) -> usize {
        match kind {
            RecordKind::Scan => 0,
            RecordKind::View => 1,
            RecordKind::Passive => 2,
        }
    }

    /// Adds a record. `passive_asn` is the AS of a passive record's address, from the
    /// snapshot's own MaxMind data (IVRE 0.9.20 answers `passive.searchasnum` the same way).
    pub fn add(
        &mut self,
        kind: RecordKind,
        record: &ParsedRecord,
        passive_asn: Option<u32>,
    ) -> Result<(), IndexError> {
        let part_ix = Self::part_index(kind);
        let id = self.parts[part_ix].next_id;
        self.parts[part_ix].next_id += 1;
        let mut entries: Vec<(Field, Vec<u8>)> = Vec::new();
        let encoded = match &record.summary {
            Summary::Host(h) => {
                host_entries(h, &mut entries);
                codec::encode_into(
                    &StoredRef {
                        json: &record.json,
                        summary: h,
                    },
                    &mut self.buf,
                )
            }
            Summary::Passive(p) => {
                passive_entries(p, passive_asn, &mut entries);
                codec::encode_into(
                    &StoredRef {
                        json: &record.json,
                        summary: p,
                    },
                    &mut self.buf,
                )
            }
        };
        encoded.map_err(|source| IndexError::Codec {
            path: self.path.clone(),
            kind,
            id,
            source,
        })?;
        entries.sort();
        entries.dedup();
        let part = &mut self.parts[part_ix];
        part.record_batch
            .insert(&keys::record_key(id), self.buf.as_slice());
        for (field, term) in &entries {
            part.index_batch
                .insert(keys::index_key(*field, term, id), &[] as &[u8]);
        }
        self.index_entries += entries.len() as u64;
        self.pending += 1;
        if self.pending >= BATCH_RECORDS {
            self.apply()?;
        }
        Ok(())
    }

    fn apply(&mut self) -> Result<(), IndexError> {
        for part in &mut self.parts {
            let records = std::mem::take(&mut part.record_batch);
            let index = std::mem::take(&mut part.index_batch);
            part.records
                .apply_batch(records)
                .map_err(|e| IndexError::sled(&self.path, e))?;
            part.index
                .apply_batch(index)
                .map_err(|e| IndexError::sled(&self.path, e))?;
        }
        self.pending = 0;
        Ok(())
    }

    /// Writes what is pending, flushes to disk and closes the database.
    pub fn finish(mut self) -> Result<IndexStats, IndexError> {
        self.apply()?;
        let err = |e| IndexError::sled(&self.path, e);
        self.db.flush().map_err(err)?;
        let checksum = self.db.checksum().map_err(err)?;
        let mut records = BTreeMap::new();
        for kind in RecordKind::ALL {
            records.insert(kind, self.parts[Self::part_index(kind)].next_id);
        }
        Ok(IndexStats {
            records,
            index_entries: self.index_entries,
            checksum,
        })
    }
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
