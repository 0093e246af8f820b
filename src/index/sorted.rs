//! The base of an index: search keys sorted once, at a full import, into an immutable
//! key table per kind (`scans.idx.keys`, …: [`super::key_table`]), and the record
//! locations of the base (`scans.loc`: one packed location, u64 LE, per record id).
//!
//! Keys are those of the sled trees (`field | term | id`). A full import appends keys in
//! record order; [`KeySorter`] sorts them in runs of at most [`RUN_KEYS`] keys, keeps
//! each sorted run as an in-memory fst (a few bytes per key) and merges the runs, in
//! order, into the caller's sink (the key table's writer) at the end. Building costs a sort, not a B-tree insert per key: this is what makes a full
//! import fast (sled took 6–8 s and 3.7 GB of memory per million small entries,
//! measured here).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Keys sorted in memory before they become a run.
pub const RUN_KEYS: usize = 1 << 21;

/// Why the base could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum SortedError {
    #[error("{0}")]
    Fst(#[from] fst::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a whole number of 8-byte locations")]
    BadLocations,
    #[error("{0}")]
    Damaged(String),
}

/// One key: its first 16 bytes (compared first, without touching the arena) and its
/// place in the arena.
#[derive(Clone, Copy)]
struct SortKey {
    head: u128,
    start: u32,
    len: u32,
}

/// A run built on its own thread, with the buffers it was built from (emptied, to be
/// filled again).
type Built = Result<(fst::Set<Vec<u8>>, Vec<SortKey>, Vec<u8>), SortedError>;

/// Collects keys in any order; writes them sorted.
#[derive(Default)]
pub struct KeySorter {
    arena: Vec<u8>,
    items: Vec<SortKey>,
    runs: Vec<fst::Set<Vec<u8>>>,
    /// The run being sorted and built on its own thread while keys keep coming (at most
    /// one: memory stays bounded by two runs' keys). Building runs was half of the
    /// import's writer thread, its critical path (docs/benchmarks.md).
    building: Option<std::thread::JoinHandle<Built>>,
}

impl KeySorter {
    /// Adds a key (a repeated key is stored once).
    pub fn push(&mut self, key: &[u8]) -> Result<(), SortedError> {
        if self.items.len() >= RUN_KEYS || self.arena.len() + key.len() >= u32::MAX as usize {
            self.spill()?;
        }
        let mut head = [0u8; 16];
        let n = key.len().min(16);
        head[..n].copy_from_slice(&key[..n]);
        self.items.push(SortKey {
            head: u128::from_be_bytes(head),
            // Bounded by the check above.
            start: self.arena.len() as u32,
            len: key.len() as u32,
        });
        self.arena.extend_from_slice(key);
        Ok(())
    }

    /// Hands what is collected to a thread that sorts it into an in-memory run (after
    /// the previous run is done).
    fn spill(&mut self) -> Result<(), SortedError> {
        if self.items.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut self.items);
        let arena = std::mem::take(&mut self.arena);
        self.join_building()?;
        let handle = std::thread::Builder::new()
            .name("index-sort".into())
            .spawn(move || build_run(items, arena))?;
        self.building = Some(handle);
        Ok(())
    }

    /// Waits for the run being built, keeps it, and takes its buffers back.
    fn join_building(&mut self) -> Result<(), SortedError> {
        let Some(handle) = self.building.take() else {
            return Ok(());
        };
        let (run, items, arena) = handle
            .join()
            .map_err(|_| std::io::Error::other("the thread sorting search keys panicked"))??;
        self.runs.push(run);
        if self.items.is_empty() && self.items.capacity() < items.capacity() {
            self.items = items;
            self.arena = arena;
        }
        Ok(())
    }

    /// Hands every key, sorted and once, to `sink`; returns how many there were.
    pub fn finish(
        mut self,
        mut sink: impl FnMut(&[u8]) -> Result<(), SortedError>,
    ) -> Result<u64, SortedError> {
        use fst::{IntoStreamer, Streamer};
        self.spill()?;
        self.join_building()?;
        let mut union = self
            .runs
            .iter()
            .collect::<fst::set::OpBuilder>()
            .union()
            .into_stream();
        let mut count = 0;
        while let Some(key) = union.next() {
            sink(key)?;
            count += 1;
        }
        Ok(count)
    }
}

/// Sorts `items` (keys in `arena`) into an in-memory fst, without duplicates; gives the
/// buffers back emptied.
fn build_run(mut items: Vec<SortKey>, mut arena: Vec<u8>) -> Built {
    let set = {
        let key = |it: &SortKey| &arena[it.start as usize..(it.start + it.len) as usize];
        items.sort_unstable_by(|a, b| a.head.cmp(&b.head).then_with(|| key(a).cmp(key(b))));
        let mut builder = fst::SetBuilder::memory();
        let mut last: Option<&[u8]> = None;
        for item in &items {
            let k = key(item);
            if last != Some(k) {
                builder.insert(k)?;
                last = Some(k);
            }
        }
        builder.into_set()
    };
    items.clear();
    arena.clear();
    Ok((set, items, arena))
}

/// Writes the base's packed locations, indexed by record id (synced).
pub fn write_locations(path: &Path, locations: &[u64]) -> Result<(), SortedError> {
    let mut file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    for loc in locations {
        file.write_all(&super::codec::encode_packed_location(*loc))?;
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Reads the base's packed locations (empty when the index has none).
pub fn load_locations(path: &Path) -> Result<Vec<u64>, SortedError> {
    let Some(bytes) = super::if_exists(std::fs::read(path))? else {
        return Ok(Vec::new());
    };
    locations_from_bytes(&bytes)
}

/// The packed locations a `.loc` file holds.
pub fn locations_from_bytes(bytes: &[u8]) -> Result<Vec<u64>, SortedError> {
    super::codec::decode_packed_locations(bytes).ok_or(SortedError::BadLocations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(sorter: KeySorter) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let count = sorter
            .finish(|k| {
                out.push(k.to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!(count, out.len() as u64);
        out
    }

    #[test]
    fn runs_merge_into_one_sorted_sequence() {
        let mut sorter = KeySorter::default();
        let keys: Vec<Vec<u8>> = (0u64..1000)
            .map(|i| {
                let mut k = b"h".to_vec();
                k.extend_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_be_bytes());
                k.extend_from_slice(&i.to_be_bytes());
                k
            })
            .collect();
        for (i, k) in keys.iter().enumerate() {
            sorter.push(k).unwrap();
            // More than one run.
            if i % 300 == 299 {
                sorter.spill().unwrap();
            }
        }
        sorter.push(&keys[3]).unwrap();
        sorter.join_building().unwrap();
        assert_eq!(sorter.runs.len(), 3);
        let all = collect(sorter);
        let mut expected = keys.clone();
        expected.sort();
        assert_eq!(all, expected);
        assert!(collect(KeySorter::default()).is_empty());
    }

    #[test]
    fn long_keys_sort_past_their_head() {
        let mut sorter = KeySorter::default();
        let base = b"dcom.example.www.".to_vec();
        for tail in [b"z", b"a", b"m"] {
            let mut k = base.clone();
            k.extend_from_slice(tail);
            sorter.push(&k).unwrap();
        }
        let tails: Vec<u8> = collect(sorter).iter().map(|k| k[base.len()]).collect();
        assert_eq!(tails, b"amz".to_vec());
    }

    #[test]
    fn locations_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.loc");
        write_locations(&path, &[1, 1 << 40, 7]).unwrap();
        assert_eq!(load_locations(&path).unwrap(), vec![1, 1 << 40, 7]);
        assert!(load_locations(&dir.path().join("none")).unwrap().is_empty());
        std::fs::write(&path, [0u8; 9]).unwrap();
        assert!(load_locations(&path).is_err());
    }
}
