//! The base of an index: search entries and identities sorted once, at a full import,
//! into immutable [`fst::Map`] files (`scans.idx.fst`, `scans.ids.fst`, …).
//!
//! Keys are those of the sled trees (`field | term | id`, `identity | id`); values are
//! packed record locations ([`super::codec::pack_location`]). A full import appends
//! entries in record order; [`EntrySorter`] sorts them in runs of at most
//! [`RUN_ENTRIES`] entries, keeps each sorted run as an in-memory fst (a few bytes per
//! entry) and merges the runs into the file at the end. Building costs a sort, not a
//! B-tree insert per entry: this is what makes a full import fast (sled took 6–8 s and
//! 3.7 GB of memory per million small entries, measured here).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Entries sorted in memory before they become a run.
pub const RUN_ENTRIES: usize = 1 << 21;

/// Why the base could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum SortedError {
    #[error("{0}")]
    Fst(#[from] fst::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One entry: the first 16 key bytes (compared first, without touching the arena), the
/// key's place in the arena, the value.
#[derive(Clone, Copy)]
struct Item {
    head: u128,
    start: u32,
    len: u32,
    value: u64,
}

/// Collects `(key, value)` entries in any order; writes them sorted.
#[derive(Default)]
pub struct EntrySorter {
    arena: Vec<u8>,
    items: Vec<Item>,
    runs: Vec<fst::Map<Vec<u8>>>,
}

impl EntrySorter {
    /// Adds an entry. Keys are unique (they end with the record id); a repeated key
    /// keeps one of its values.
    pub fn push(&mut self, key: &[u8], value: u64) -> Result<(), SortedError> {
        if self.items.len() >= RUN_ENTRIES || self.arena.len() + key.len() >= u32::MAX as usize {
            self.spill()?;
        }
        let mut head = [0u8; 16];
        let n = key.len().min(16);
        head[..n].copy_from_slice(&key[..n]);
        self.items.push(Item {
            head: u128::from_be_bytes(head),
            // Bounded by the check above.
            start: self.arena.len() as u32,
            len: key.len() as u32,
            value,
        });
        self.arena.extend_from_slice(key);
        Ok(())
    }

    /// Sorts what is collected into an in-memory run.
    fn spill(&mut self) -> Result<(), SortedError> {
        if self.items.is_empty() {
            return Ok(());
        }
        let arena = &self.arena;
        let key = |it: &Item| &arena[it.start as usize..(it.start + it.len) as usize];
        self.items
            .sort_unstable_by(|a, b| a.head.cmp(&b.head).then_with(|| key(a).cmp(key(b))));
        let mut builder = fst::MapBuilder::memory();
        let mut last: Option<&[u8]> = None;
        for item in &self.items {
            let k = key(item);
            if last != Some(k) {
                builder.insert(k, item.value)?;
                last = Some(k);
            }
        }
        self.runs.push(builder.into_map());
        self.items.clear();
        self.arena.clear();
        Ok(())
    }

    /// Writes every entry, sorted, to `path` (and syncs it); returns how many were
    /// written. Writes nothing when there are none.
    pub fn finish(mut self, path: &Path) -> Result<u64, SortedError> {
        self.spill()?;
        let count = match self.runs.len() {
            0 => return Ok(0),
            1 => {
                let run = self.runs.remove(0);
                let count = run.len() as u64;
                let mut file = File::create(path)?;
                file.write_all(run.as_fst().as_bytes())?;
                file.sync_all()?;
                count
            }
            _ => {
                use fst::{IntoStreamer, Streamer};
                let mut builder = fst::MapBuilder::new(BufWriter::new(File::create(path)?))?;
                let mut union = self
                    .runs
                    .iter()
                    .collect::<fst::map::OpBuilder>()
                    .union()
                    .into_stream();
                let mut count = 0;
                while let Some((key, values)) = union.next() {
                    if let Some(v) = values.first() {
                        builder.insert(key, v.value)?;
                        count += 1;
                    }
                }
                let file = builder
                    .into_inner()?
                    .into_inner()
                    .map_err(|e| e.into_error())?;
                file.sync_all()?;
                count
            }
        };
        Ok(count)
    }
}

/// Reads a base file into memory; `None` when the index has no such file.
pub fn load(path: &Path) -> Result<Option<fst::Map<Vec<u8>>>, SortedError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(fst::Map::new(bytes)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The entries of `map` whose key starts with `prefix`, in key order.
pub fn scan_prefix<'m>(
    map: &'m fst::Map<Vec<u8>>,
    prefix: &[u8],
) -> impl Iterator<Item = (Vec<u8>, u64)> + 'm {
    use fst::{IntoStreamer, Streamer};
    let prefix = prefix.to_vec();
    let mut stream = map.range().ge(&prefix).into_stream();
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match stream.next() {
            Some((key, value)) if key.starts_with(&prefix) => Some((key.to_vec(), value)),
            _ => {
                done = true;
                None
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_into_one_sorted_map() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.fst");
        let mut sorter = EntrySorter::default();
        // More than one run: force spills by pushing, then spilling by hand.
        let keys: Vec<Vec<u8>> = (0u64..1000)
            .map(|i| {
                let mut k = b"h".to_vec();
                k.extend_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_be_bytes());
                k.extend_from_slice(&i.to_be_bytes());
                k
            })
            .collect();
        for (i, k) in keys.iter().enumerate() {
            sorter.push(k, i as u64).unwrap();
            if i % 300 == 299 {
                sorter.spill().unwrap();
            }
        }
        assert_eq!(sorter.runs.len(), 3);
        assert_eq!(sorter.finish(&path).unwrap(), 1000);
        let map = load(&path).unwrap().unwrap();
        assert_eq!(map.len(), 1000);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(map.get(k), Some(i as u64));
        }
        let all: Vec<_> = scan_prefix(&map, b"h").collect();
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(scan_prefix(&map, &keys[7][..9]).count(), 1);
        assert_eq!(scan_prefix(&map, b"x").count(), 0);
        assert!(load(&dir.path().join("missing.fst")).unwrap().is_none());
    }

    #[test]
    fn long_keys_sort_past_their_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.fst");
        let mut sorter = EntrySorter::default();
        let base = b"dcom.example.www.".to_vec();
        for (i, tail) in [b"z", b"a", b"m"].iter().enumerate() {
            let mut k = base.clone();
            k.extend_from_slice(*tail);
            sorter.push(&k, i as u64).unwrap();
        }
        assert_eq!(sorter.finish(&path).unwrap(), 3);
        let map = load(&path).unwrap().unwrap();
        let values: Vec<u64> = scan_prefix(&map, &base).map(|(_, v)| v).collect();
        assert_eq!(values, vec![1, 2, 0]);
    }
}
