//! Writes an index: a new one (a full import), or a copy of a published one updated in
//! place (incremental pulls, delta drops), so that an update costs what it changes.
//!
//! Record bodies are appended to the kind's file; search entries and identities go to
//! sled in batches (one per tree every [`BATCH_RECORDS`] records). Memory stays bounded by
//! the batch size.

use super::codec::{self, Location};
use super::keys::{self, CertHash, Field};
use super::{identity, identity_tree_name, records_file, tree_name, IndexError, SLED_DIR};
use crate::ivre::{Certificate, HostSummary, ParsedRecord, PassiveSummary, RecordKind, Summary};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Records per sled batch.
pub const BATCH_RECORDS: usize = 8192;

/// What a finished index holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Live records per kind.
    pub records: BTreeMap<RecordKind, u64>,
    pub index_entries: u64,
    pub records_bytes: u64,
    /// `crc32:<record files>/<search entries>` (see [`super::IndexReader::checksum`]).
    pub checksum: String,
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

struct Part {
    kind: RecordKind,
    entries: sled::Tree,
    ids: sled::Tree,
    entry_batch: sled::Batch,
    id_batch: sled::Batch,
    next_id: u64,
    live: u64,
    path: PathBuf,
    file: BufWriter<File>,
    offset: u64,
}

/// Writes records into an index directory.
pub struct IndexWriter {
    path: PathBuf,
    db: sled::Db,
    parts: Vec<Part>,
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

fn meta_u64(meta: &sled::Tree, key: &str) -> Result<u64, sled::Error> {
    Ok(meta
        .get(key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0))
}

impl IndexWriter {
    /// Creates the index directory `path`, which must not exist yet.
    pub fn create(path: &Path) -> Result<IndexWriter, IndexError> {
        std::fs::create_dir(path).map_err(|e| IndexError::io(path, e))?;
        IndexWriter::open(path, true)
    }

    /// Opens an index directory to update it (a private copy, never a published one).
    pub fn append(path: &Path) -> Result<IndexWriter, IndexError> {
        IndexWriter::open(path, false)
    }

    fn open(path: &Path, new: bool) -> Result<IndexWriter, IndexError> {
        let sled_path = path.join(SLED_DIR);
        let err = |e| IndexError::sled(&sled_path, e);
        let db = sled::Config::new()
            .path(&sled_path)
            .create_new(new)
            .cache_capacity(64 * 1024 * 1024)
            .flush_every_ms(None)
            .open()
            .map_err(err)?;
        let meta = db.open_tree("meta").map_err(err)?;
        let mut parts = Vec::new();
        for kind in RecordKind::ALL {
            let file_path = path.join(records_file(kind));
            let file = File::options()
                .create(true)
                .append(true)
                .open(&file_path)
                .map_err(|e| IndexError::io(&file_path, e))?;
            let offset = file
                .metadata()
                .map_err(|e| IndexError::io(&file_path, e))?
                .len();
            parts.push(Part {
                kind,
                entries: db.open_tree(tree_name(kind)).map_err(err)?,
                ids: db.open_tree(identity_tree_name(kind)).map_err(err)?,
                entry_batch: sled::Batch::default(),
                id_batch: sled::Batch::default(),
                next_id: meta_u64(&meta, &format!("next_id.{}", kind.as_str())).map_err(err)?,
                live: meta_u64(&meta, &format!("count.{}", kind.as_str())).map_err(err)?,
                path: file_path,
                file: BufWriter::with_capacity(1 << 20, file),
                offset,
            });
        }
        Ok(IndexWriter {
            path: path.to_owned(),
            db,
            parts,
            pending: 0,
            index_entries: 0,
            buf: Vec::new(),
            entries: Vec::new(),
        })
    }

    fn codec_error(
        &self,
        kind: RecordKind,
        id: u64,
    ) -> impl Fn(codec::CodecError) -> IndexError + '_ {
        move |source| IndexError::Codec {
            path: self.path.clone(),
            kind,
            id,
            source,
        }
    }

    /// Appends a record and its entries; returns its id and location.
    fn write(
        &mut self,
        kind: RecordKind,
        record: &ParsedRecord,
        passive_asn: Option<u32>,
    ) -> Result<(u64, Location), IndexError> {
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
        encoded.map_err(self.codec_error(kind, id))?;
        let len = u32::try_from(self.buf.len()).map_err(|_| IndexError::Codec {
            path: self.path.clone(),
            kind,
            id,
            source: codec::CodecError::Truncated,
        })?;
        let part = &mut self.parts[ix];
        let location = Location {
            offset: part.offset + 4,
            len,
        };
        part.file
            .write_all(&len.to_le_bytes())
            .and_then(|()| part.file.write_all(&self.buf))
            .map_err(|e| IndexError::io(&part.path, e))?;
        part.offset += 4 + u64::from(len);
        part.next_id += 1;
        part.live += 1;
        self.entries.sort();
        self.entries.dedup();
        let value = codec::encode_location(location);
        for (field, term) in &self.entries {
            part.entry_batch
                .insert(keys::index_key(*field, term, id), &value[..]);
        }
        let mut id_key = identity::of(kind, &record.summary).to_vec();
        id_key.extend_from_slice(&keys::record_key(id));
        part.id_batch.insert(id_key, &value[..]);
        self.index_entries += self.entries.len() as u64;
        Ok((id, location))
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
        self.write(kind, record, passive_asn)?;
        self.pending += 1;
        if self.pending >= BATCH_RECORDS {
            self.apply()?;
        }
        Ok(())
    }

    fn read_stored<T: DeserializeOwned>(
        &mut self,
        kind: RecordKind,
        id: u64,
        location: Location,
    ) -> Result<(String, T), IndexError> {
        let part = &mut self.parts[part_index(kind)];
        part.file
            .flush()
            .map_err(|e| IndexError::io(&part.path, e))?;
        let mut buf = vec![0u8; location.len as usize];
        File::open(&part.path)
            .and_then(|f| f.read_exact_at(&mut buf, location.offset))
            .map_err(|e| IndexError::io(&part.path, e))?;
        let json = codec::decode_record_json(&buf).map_err(self.codec_error(kind, id))?;
        let summary = codec::decode_record_summary(&buf).map_err(self.codec_error(kind, id))?;
        Ok((json, summary))
    }

    /// Removes a stored record's search entries and identity.
    fn forget(
        &mut self,
        kind: RecordKind,
        id: u64,
        summary: &Summary,
        passive_asn: Option<u32>,
    ) -> Result<(), IndexError> {
        let mut entries = Vec::new();
        match summary {
            Summary::Host(h) => host_entries(h, &mut entries),
            Summary::Passive(p) => passive_entries(p, passive_asn, &mut entries),
        }
        let part = &mut self.parts[part_index(kind)];
        let err = |e| IndexError::sled(&self.path, e);
        for (field, term) in &entries {
            part.entries
                .remove(keys::index_key(*field, term, id))
                .map_err(err)?;
        }
        let mut id_key = identity::of(kind, summary).to_vec();
        id_key.extend_from_slice(&keys::record_key(id));
        part.ids.remove(id_key).map_err(err)?;
        part.live = part.live.saturating_sub(1);
        Ok(())
    }

    /// Adds a record, or updates the stored one with the same identity (an incremental
    /// update). Applied at once: later records of the same update see it.
    pub fn merge(
        &mut self,
        kind: RecordKind,
        record: &ParsedRecord,
        passive_asn: Option<u32>,
        mode: MergeMode,
    ) -> Result<(), IndexError> {
        self.apply()?;
        let ix = part_index(kind);
        let prefix = identity::of(kind, &record.summary);
        let stored: Vec<(u64, Location)> = self.parts[ix]
            .ids
            .scan_prefix(prefix)
            .filter_map(Result::ok)
            .filter_map(|(k, v)| Some((keys::id_of(&k)?, codec::decode_location(&v).ok()?)))
            .collect();
        let mut merged = record.clone();
        for (id, location) in stored {
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
        self.write(kind, &merged, passive_asn)?;
        self.apply()
    }

    /// Removes every record of `kind` (the kind is then imported again).
    pub fn clear(&mut self, kind: RecordKind) -> Result<(), IndexError> {
        self.apply()?;
        let part = &mut self.parts[part_index(kind)];
        let err = |e| IndexError::sled(&self.path, e);
        part.entries.clear().map_err(err)?;
        part.ids.clear().map_err(err)?;
        part.file
            .flush()
            .map_err(|e| IndexError::io(&part.path, e))?;
        part.file
            .get_ref()
            .set_len(0)
            .map_err(|e| IndexError::io(&part.path, e))?;
        part.offset = 0;
        part.live = 0;
        Ok(())
    }

    fn apply(&mut self) -> Result<(), IndexError> {
        for part in &mut self.parts {
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

    /// Writes what is pending, flushes everything to disk and closes the index.
    pub fn finish(mut self) -> Result<IndexStats, IndexError> {
        self.apply()?;
        let err = |e| IndexError::sled(&self.path, e);
        let meta = self.db.open_tree("meta").map_err(err)?;
        let mut records = BTreeMap::new();
        for part in &self.parts {
            records.insert(part.kind, part.live);
            meta.insert(
                format!("count.{}", part.kind.as_str()),
                &part.live.to_be_bytes(),
            )
            .map_err(err)?;
            meta.insert(
                format!("next_id.{}", part.kind.as_str()),
                &part.next_id.to_be_bytes(),
            )
            .map_err(err)?;
        }
        self.db.flush().map_err(err)?;
        let entries_crc = self.db.checksum().map_err(err)?;
        let mut hasher = crc32fast::Hasher::new();
        let mut bytes = 0;
        for part in self.parts {
            let file = part
                .file
                .into_inner()
                .map_err(|e| IndexError::io(&part.path, e.into_error()))?;
            file.sync_all().map_err(|e| IndexError::io(&part.path, e))?;
            bytes += part.offset;
            crc_file(&part.path, &mut hasher)?;
        }
        Ok(IndexStats {
            records,
            index_entries: self.index_entries,
            records_bytes: bytes,
            checksum: format!("crc32:{:08x}/{:08x}", hasher.finalize(), entries_crc),
        })
    }
}

/// Feeds a whole file to a CRC.
pub(crate) fn crc_file(path: &Path, hasher: &mut crc32fast::Hasher) -> Result<(), IndexError> {
    let mut file = File::open(path).map_err(|e| IndexError::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| IndexError::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
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
