//! Builds the index of a new snapshot generation: record bodies appended to
//! `records.bin`, search entries batched into sled (one batch per tree every
//! [`BATCH_RECORDS`] records). Memory stays bounded by the batch size.

use super::codec::{self, Location};
use super::keys::{self, CertHash, Field};
use super::{tree_name, IndexError, RECORDS_FILE, SLED_DIR};
use crate::ivre::{Certificate, HostSummary, ParsedRecord, PassiveSummary, RecordKind, Summary};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Records per sled batch.
pub const BATCH_RECORDS: usize = 8192;

/// What a finished index holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub records: BTreeMap<RecordKind, u64>,
    pub index_entries: u64,
    pub records_bytes: u64,
    /// `crc32:<records.bin>/<search entries>` (see [`super::IndexReader::checksum`]).
    pub checksum: String,
}

struct Part {
    kind: RecordKind,
    tree: sled::Tree,
    batch: sled::Batch,
    next_id: u64,
}

/// Writes records into a new index directory.
pub struct IndexWriter {
    path: PathBuf,
    db: sled::Db,
    parts: Vec<Part>,
    records: BufWriter<File>,
    offset: u64,
    crc: crc32fast::Hasher,
    pending: usize,
    index_entries: u64,
    buf: Vec<u8>,
    entries: Vec<(Field, Vec<u8>)>,
}

fn part_index(kind: RecordKind) -> usize {
    match kind {
        RecordKind::Scan => 0,
        RecordKind::View => 1,
        RecordKind::Passive => 2,
    }
}

impl IndexWriter {
    /// Creates the index directory `path`, which must not exist yet.
    pub fn create(path: &Path) -> Result<IndexWriter, IndexError> {
        std::fs::create_dir(path).map_err(|e| IndexError::io(path, e))?;
        let sled_path = path.join(SLED_DIR);
        let err = |e| IndexError::sled(&sled_path, e);
        let db = sled::Config::new()
            .path(&sled_path)
            .create_new(true)
            .cache_capacity(64 * 1024 * 1024)
            .flush_every_ms(None)
            .open()
            .map_err(err)?;
        let mut parts = Vec::new();
        for kind in RecordKind::ALL {
            parts.push(Part {
                kind,
                tree: db.open_tree(tree_name(kind)).map_err(err)?,
                batch: sled::Batch::default(),
                next_id: 0,
            });
        }
        let records_path = path.join(RECORDS_FILE);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&records_path)
            .map_err(|e| IndexError::io(&records_path, e))?;
        Ok(IndexWriter {
            path: path.to_owned(),
            db,
            parts,
            records: BufWriter::with_capacity(1 << 20, file),
            offset: 0,
            crc: crc32fast::Hasher::new(),
            pending: 0,
            index_entries: 0,
            buf: Vec::new(),
            entries: Vec::new(),
        })
    }

    /// Adds a record. `passive_asn` is the AS of a passive record's address, from the
    /// snapshot's own MaxMind data (IVRE 0.9.20 answers `passive.searchasnum` the same way).
    pub fn add(
        &mut self,
        kind: RecordKind,
        record: &ParsedRecord,
        passive_asn: Option<u32>,
    ) -> Result<(), IndexError> {
        let ix = part_index(kind);
        let id = self.parts[ix].next_id;
        self.entries.clear();
        let encoded = match &record.summary {
            Summary::Host(h) => {
                host_entries(h, &mut self.entries);
                codec::encode_record(&record.json, h, &mut self.buf)
            }
            Summary::Passive(p) => {
                passive_entries(p, passive_asn, &mut self.entries);
                codec::encode_record(&record.json, p, &mut self.buf)
            }
        };
        encoded.map_err(|source| IndexError::Codec {
            path: self.path.clone(),
            kind,
            id,
            source,
        })?;
        let len = u32::try_from(self.buf.len()).map_err(|_| IndexError::Codec {
            path: self.path.clone(),
            kind,
            id,
            source: codec::CodecError::Truncated,
        })?;
        let location = Location {
            offset: self.offset,
            len,
        };
        self.records
            .write_all(&self.buf)
            .map_err(|e| IndexError::io(&self.path.join(RECORDS_FILE), e))?;
        self.crc.update(&self.buf);
        self.offset += u64::from(len);
        self.parts[ix].next_id += 1;

        self.entries.sort();
        self.entries.dedup();
        let value = codec::encode_location(location);
        let part = &mut self.parts[ix];
        for (field, term) in &self.entries {
            part.batch
                .insert(keys::index_key(*field, term, id), &value[..]);
        }
        self.index_entries += self.entries.len() as u64;
        self.pending += 1;
        if self.pending >= BATCH_RECORDS {
            self.apply()?;
        }
        Ok(())
    }

    fn apply(&mut self) -> Result<(), IndexError> {
        for part in &mut self.parts {
            let batch = std::mem::take(&mut part.batch);
            part.tree
                .apply_batch(batch)
                .map_err(|e| IndexError::sled(&self.path, e))?;
        }
        self.pending = 0;
        Ok(())
    }

    /// Writes what is pending, flushes everything to disk and closes the index.
    pub fn finish(mut self) -> Result<IndexStats, IndexError> {
        self.apply()?;
        let err = |e| IndexError::sled(&self.path, e);
        let meta = self.db.open_tree("meta").map_err(err)?;
        let mut records = BTreeMap::new();
        for part in &self.parts {
            records.insert(part.kind, part.next_id);
            meta.insert(
                format!("count.{}", part.kind.as_str()),
                &part.next_id.to_be_bytes(),
            )
            .map_err(err)?;
        }
        self.db.flush().map_err(err)?;
        let entries_crc = self.db.checksum().map_err(err)?;
        let records_path = self.path.join(RECORDS_FILE);
        let file = self
            .records
            .into_inner()
            .map_err(|e| IndexError::io(&records_path, e.into_error()))?;
        file.sync_all()
            .map_err(|e| IndexError::io(&records_path, e))?;
        Ok(IndexStats {
            records,
            index_entries: self.index_entries,
            records_bytes: self.offset,
            checksum: format!("crc32:{:08x}/{:08x}", self.crc.finalize(), entries_crc),
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
