//! The base's record identities: `<kind>.ids.sorted`, a sorted array of fixed 24-byte
//! rows `identity (16 bytes) | record id (u64 BE)`.
//!
//! Only updates read it (to find the stored record a new one replaces), by binary search
//! in memory. Identities are random 16-byte digests: an fst would not share prefixes
//! between them, and a flat sorted array is both smaller (24 bytes a record) and built
//! by one fixed-size sort.

use std::io::Write;
use std::path::Path;

/// Bytes per row.
pub const ROW: usize = 24;

/// Rows collected in record order by a full import.
#[derive(Default)]
pub struct IdentityRows {
    rows: Vec<[u8; ROW]>,
}

impl IdentityRows {
    pub fn push(&mut self, identity: &[u8; 16], id: u64) {
        self.rows.push(super::keys::identity_key(identity, id));
    }

    /// Sorts the rows and writes them to `path` (synced); nothing when there are none.
    pub fn finish(mut self, path: &Path) -> std::io::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        self.rows.sort_unstable();
        let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
        for row in &self.rows {
            file.write_all(row)?;
        }
        file.into_inner().map_err(|e| e.into_error())?.sync_all()
    }
}

/// A loaded identity table.
pub struct IdentityTable {
    bytes: Vec<u8>,
}

impl IdentityTable {
    /// Reads `path`; `None` when the index has no such file.
    pub fn load(path: &Path) -> std::io::Result<Option<IdentityTable>> {
        super::if_exists(std::fs::read(path))?
            .map(IdentityTable::from_bytes)
            .transpose()
    }

    /// The table a `.sorted` file holds.
    pub fn from_bytes(bytes: Vec<u8>) -> std::io::Result<IdentityTable> {
        if bytes.len().is_multiple_of(ROW) {
            Ok(IdentityTable { bytes })
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a whole number of {ROW}-byte rows"),
            ))
        }
    }

    fn row(&self, i: usize) -> &[u8] {
        &self.bytes[i * ROW..(i + 1) * ROW]
    }

    /// The record ids with this identity.
    pub fn find(&self, identity: &[u8; 16]) -> Vec<u64> {
        let n = self.bytes.len() / ROW;
        // First row whose identity is not below the one searched.
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if &self.row(mid)[..16] < identity.as_slice() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        for i in lo..n {
            let row = self.row(i);
            if &row[..16] != identity.as_slice() {
                break;
            }
            out.extend(super::keys::id_of(row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_found_by_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.sorted");
        let mut rows = IdentityRows::default();
        for i in 0u64..100 {
            let mut identity = [0u8; 16];
            identity[0] = (i.wrapping_mul(37) % 50) as u8;
            rows.push(&identity, i);
        }
        rows.finish(&path).unwrap();
        let table = IdentityTable::load(&path).unwrap().unwrap();
        let mut identity = [0u8; 16];
        identity[0] = 37; // i = 1 and i = 51
        assert_eq!(table.find(&identity), vec![1, 51]);
        identity[0] = 200;
        assert!(table.find(&identity).is_empty());
        assert!(IdentityTable::load(&dir.path().join("none"))
            .unwrap()
            .is_none());
        std::fs::write(&path, [0u8; 25]).unwrap();
        assert!(IdentityTable::load(&path).is_err());
    }
}
