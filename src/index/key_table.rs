//! The base's search keys of one kind, `<tree>.keys` (snapshot format 5): sorted,
//! prefix-compressed in blocks of about [`BLOCK_BYTES`], each key followed by its
//! record's packed location, and read on demand with positioned reads.
//!
//! Only the blocks' first keys and offsets stay in memory (about 36 bytes per block of
//! some 85 keys), so a serving process's memory no longer grows with the keys: the
//! in-memory fst of format 4 held 728 MB for 10M records. The blocks live in the page
//! cache, shared by every process serving the snapshot and given back under memory
//! pressure. Not a memory map: a file truncated or rewritten under a map raises SIGBUS
//! or changes answers silently, where here every block carries its CRC-32 and a changed
//! block is an error naming the file (docs/benchmarks.md, "Scaling curve").
//!
//! Layout (integers little-endian, varints LEB128):
//!
//! ```text
//! block*   entry* | CRC-32 of the entries (u32)
//!          entry: varint shared | varint suffix length | suffix | varint location
//!          (shared: bytes in common with the previous key of the block; 0 for its first)
//! index    per block: u32 block length (CRC included) | u16 first key length | first key
//! footer   u64 index offset | u64 blocks | u64 keys | "IVREKEY1"
//! ```
//!
//! [`KeyTable::open`] checks the whole index and footer (offsets, lengths, first keys in
//! order) before answering anything; a block is checked (CRC, every length) when read.
//! Nothing in a damaged file can make it panic or allocate without bound (fuzzed:
//! `fuzz/fuzz_targets/key_table.rs`).

use super::sorted::SortedError;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::Path;

/// A block is closed once its entries reach this many bytes. 1 KiB: an IPv4 lookup at
/// 1M records took 9.4 µs with 1 KiB blocks and 10.2 µs with 2 KiB ones (each query
/// reads and decodes a block), the fst held in memory 9.4 µs; the blocks' index costs
/// about 36 bytes per block in memory (some 30 MB at 10M records).
pub const BLOCK_BYTES: usize = 1024;

/// The largest block a table may hold: [`BLOCK_BYTES`] plus one key of the largest size
/// and its varints, rounded up. A longer one is damage.
const MAX_BLOCK: u32 = 1 << 17;

const MAGIC: &[u8; 8] = b"IVREKEY1";
const FOOTER_LEN: u64 = 32;
/// Bytes of a block's CRC-32, after its entries.
const CRC_LEN: usize = 4;

/// Positioned reads: a file, or bytes in memory (tests and the fuzz target).
pub trait ReadAt {
    /// Fills `buf` from `offset`, or fails (a short file is an error).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let bytes = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
}

fn damaged(what: impl Into<String>) -> SortedError {
    SortedError::Damaged(what.into())
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The varint at `*pos` of `bytes`, `None` when it runs past the end or overflows.
fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Writes a table from keys given in strictly ascending order.
pub struct KeyTableWriter {
    out: BufWriter<File>,
    block: Vec<u8>,
    /// The last key written, the base of the next one's prefix.
    last: Vec<u8>,
    /// The first key of the block being filled.
    first: Vec<u8>,
    index: Vec<u8>,
    offset: u64,
    blocks: u64,
    keys: u64,
}

impl KeyTableWriter {
    /// Creates (truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<KeyTableWriter, SortedError> {
        Ok(KeyTableWriter {
            out: BufWriter::with_capacity(1 << 20, File::create(path)?),
            block: Vec::with_capacity(BLOCK_BYTES * 2),
            last: Vec::new(),
            first: Vec::new(),
            index: Vec::new(),
            offset: 0,
            blocks: 0,
            keys: 0,
        })
    }

    /// Adds `key`, greater than every key before it, with its record's packed location.
    pub fn push(&mut self, key: &[u8], location: u64) -> Result<(), SortedError> {
        if self.keys > 0 && key <= self.last.as_slice() {
            return Err(damaged("search keys given out of order"));
        }
        if key.len() > usize::from(u16::MAX) {
            return Err(damaged(format!("a search key of {} bytes", key.len())));
        }
        let shared = if self.block.is_empty() {
            self.first.clear();
            self.first.extend_from_slice(key);
            0
        } else {
            self.last
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        };
        push_varint(&mut self.block, shared as u64);
        push_varint(&mut self.block, (key.len() - shared) as u64);
        self.block.extend_from_slice(&key[shared..]);
        push_varint(&mut self.block, location);
        self.last.clear();
        self.last.extend_from_slice(key);
        self.keys += 1;
        if self.block.len() >= BLOCK_BYTES {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), SortedError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let crc = crc32fast::hash(&self.block);
        self.out.write_all(&self.block)?;
        self.out.write_all(&crc.to_le_bytes())?;
        let len = self.block.len() + CRC_LEN;
        // Bounded: a block closes at BLOCK_BYTES, its last key is at most u16::MAX bytes.
        self.index.extend_from_slice(&(len as u32).to_le_bytes());
        self.index
            .extend_from_slice(&(self.first.len() as u16).to_le_bytes());
        self.index.extend_from_slice(&self.first);
        self.offset += len as u64;
        self.blocks += 1;
        self.block.clear();
        Ok(())
    }

    /// Writes the last block, the index and the footer, syncs the file; returns the
    /// number of keys.
    pub fn finish(mut self) -> Result<u64, SortedError> {
        self.flush_block()?;
        self.out.write_all(&self.index)?;
        self.out.write_all(&self.offset.to_le_bytes())?;
        self.out.write_all(&self.blocks.to_le_bytes())?;
        self.out.write_all(&self.keys.to_le_bytes())?;
        self.out.write_all(MAGIC)?;
        self.out
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        Ok(self.keys)
    }
}

/// The first `i` in `lo..hi` whose `key(i)` is not below `prefix` (`hi` when none is),
/// the keys ascending with `i`.
fn count_below<'k>(lo: usize, hi: usize, prefix: &[u8], key: impl Fn(usize) -> &'k [u8]) -> usize {
    let (mut lo, mut hi) = (lo, hi);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if key(mid) < prefix {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// An open table: its blocks' first keys and offsets in memory, the blocks read on
/// demand from `source`.
pub struct KeyTable<S> {
    source: S,
    /// Block `b` is `starts[b]..starts[b + 1]` (its CRC included).
    starts: Vec<u64>,
    /// The blocks' first keys, one after the other; block `b`'s ends at `first_ends[b]`.
    firsts: Vec<u8>,
    first_ends: Vec<usize>,
    /// The first keys of every [`TOP_EVERY`]th block again, packed: the first steps of a
    /// search stay in this small array (about 300 KB at 10M records) instead of
    /// missing the cache at every step across all the blocks' keys (30 MB there).
    top: Vec<u8>,
    top_ends: Vec<usize>,
    keys: u64,
}

/// One block in this many has its first key in [`KeyTable::top`].
const TOP_EVERY: usize = 64;

impl<S: ReadAt> KeyTable<S> {
    /// Opens a table of `len` bytes, reading and checking its index and footer.
    pub fn open(source: S, len: u64) -> Result<KeyTable<S>, SortedError> {
        if len < FOOTER_LEN {
            return Err(damaged(format!(
                "{len} bytes, shorter than a key table's footer"
            )));
        }
        let mut footer = [0u8; FOOTER_LEN as usize];
        source.read_exact_at(&mut footer, len - FOOTER_LEN)?;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&footer[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        let (index_offset, blocks, keys) = (word(0), word(1), word(2));
        if &footer[24..] != MAGIC {
            return Err(damaged("not a key table (no IVREKEY1 footer)"));
        }
        let index_len = (len - FOOTER_LEN)
            .checked_sub(index_offset)
            .ok_or_else(|| damaged(format!("index offset {index_offset} past the end")))?;
        // Every block takes at least 6 bytes of index and 4 of data.
        if blocks > index_len / 6 || blocks > index_offset / CRC_LEN as u64 {
            return Err(damaged(format!(
                "{blocks} blocks cannot fit in {len} bytes"
            )));
        }
        let mut index = Vec::new();
        index
            .try_reserve_exact(index_len as usize)
            .map_err(|e| damaged(format!("cannot allocate {index_len} bytes: {e}")))?;
        index.resize(index_len as usize, 0);
        source.read_exact_at(&mut index, index_offset)?;
        let mut table = KeyTable {
            source,
            starts: Vec::with_capacity(blocks as usize + 1),
            firsts: Vec::new(),
            first_ends: Vec::with_capacity(blocks as usize),
            top: Vec::new(),
            top_ends: Vec::new(),
            keys,
        };
        table.starts.push(0);
        let mut pos = 0usize;
        let mut offset = 0u64;
        for b in 0..blocks {
            let bad = |what: &str| damaged(format!("index entry of block {b}: {what}"));
            let head = index
                .get(pos..pos + 6)
                .ok_or_else(|| bad("past the end of the index"))?;
            let block_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            let key_len = usize::from(u16::from_le_bytes([head[4], head[5]]));
            pos += 6;
            let key = index
                .get(pos..pos + key_len)
                .ok_or_else(|| bad("its first key runs past the end of the index"))?;
            pos += key_len;
            if !(CRC_LEN as u32 + 1..=MAX_BLOCK).contains(&block_len) {
                return Err(bad(&format!("a block of {block_len} bytes")));
            }
            if b > 0 && key <= table.first(b as usize - 1) {
                return Err(bad("first keys out of order"));
            }
            offset += u64::from(block_len);
            table.starts.push(offset);
            table.firsts.extend_from_slice(key);
            table.first_ends.push(table.firsts.len());
            if (b as usize).is_multiple_of(TOP_EVERY) {
                table.top.extend_from_slice(key);
                table.top_ends.push(table.top.len());
            }
        }
        if pos != index.len() || offset != index_offset {
            return Err(damaged(format!(
                "the index describes {offset} bytes of blocks in {pos} bytes; the footer says {index_offset} in {}",
                index.len()
            )));
        }
        Ok(table)
    }

    /// The number of keys (as the footer says).
    pub fn len(&self) -> u64 {
        self.keys
    }

    /// Whether the table holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }

    fn first(&self, b: usize) -> &[u8] {
        let start = if b == 0 { 0 } else { self.first_ends[b - 1] };
        &self.firsts[start..self.first_ends[b]]
    }

    fn blocks(&self) -> usize {
        self.first_ends.len()
    }

    /// The first key of block `j * TOP_EVERY`.
    fn top_first(&self, j: usize) -> &[u8] {
        let start = if j == 0 { 0 } else { self.top_ends[j - 1] };
        &self.top[start..self.top_ends[j]]
    }

    /// The first block whose first key is not below `prefix` (the number of blocks when
    /// there is none): first among every [`TOP_EVERY`]th block, then among the blocks
    /// in between.
    fn first_block_from(&self, prefix: &[u8]) -> usize {
        // Blocks j * TOP_EVERY for j < t start below the prefix, the others do not: the
        // answer is in ((t - 1) * TOP_EVERY, t * TOP_EVERY].
        let t = count_below(0, self.top_ends.len(), prefix, |j| self.top_first(j));
        if t == 0 {
            return 0;
        }
        let hi = (t * TOP_EVERY).min(self.blocks());
        count_below((t - 1) * TOP_EVERY + 1, hi, prefix, |b| self.first(b))
    }

    /// Calls `f` with every key starting with `prefix` and its location, in key order,
    /// until `f` breaks.
    pub fn for_each_prefix(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], u64) -> ControlFlow<()>,
    ) -> Result<(), SortedError> {
        thread_local! {
            static BLOCK: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        // Blocks from `after` on start at or after `prefix`; the keys starting with it
        // may begin in the block before.
        let after = self.first_block_from(prefix);
        let mut key = Vec::new();
        BLOCK.with_borrow_mut(|block| {
            for b in after.saturating_sub(1)..self.blocks() {
                if b >= after && !self.first(b).starts_with(prefix) {
                    break;
                }
                self.read_block(b, block)?;
                let body = &block[..block.len() - CRC_LEN];
                let mut pos = 0;
                key.clear();
                // How many first bytes the current key has in common with `prefix`: keys
                // ascend, so an entry's `shared` count alone tells most of the time
                // whether it is still below the prefix, matches it or is past it,
                // without comparing the keys again (LevelDB's block iterator does the
                // same with its restart points).
                let mut common = 0usize;
                while pos < body.len() {
                    let at = pos;
                    let entry = |what: &str| damaged(format!("block {b}, byte {at}: {what}"));
                    let shared = read_varint(body, &mut pos).ok_or_else(|| entry("bad length"))?;
                    let suffix = read_varint(body, &mut pos).ok_or_else(|| entry("bad length"))?;
                    let end = usize::try_from(suffix)
                        .ok()
                        .and_then(|s| pos.checked_add(s))
                        .filter(|end| *end <= body.len() && shared <= key.len() as u64)
                        .ok_or_else(|| entry("a key past the block"))?;
                    key.truncate(shared as usize);
                    key.extend_from_slice(&body[pos..end]);
                    pos = end;
                    let location =
                        read_varint(body, &mut pos).ok_or_else(|| entry("bad location"))?;
                    let shared = shared as usize;
                    if shared < common {
                        // It differs from the previous key, which matched `prefix` up to
                        // `common`, before that point, and is greater: past the prefix.
                        return Ok(());
                    }
                    if shared == common {
                        common += key[common..]
                            .iter()
                            .zip(&prefix[common..])
                            .take_while(|(a, b)| a == b)
                            .count();
                    }
                    // Past `common`, the key is below the prefix (it ends there, or the
                    // byte is lower), or above it: the scan is over.
                    if common < prefix.len() {
                        match key.get(common) {
                            Some(byte) if *byte > prefix[common] => return Ok(()),
                            _ => continue,
                        }
                    }
                    if f(&key, location).is_break() {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })
    }

    /// Reads block `b` into `block` and checks its CRC.
    fn read_block(&self, b: usize, block: &mut Vec<u8>) -> Result<(), SortedError> {
        let (start, end) = (self.starts[b], self.starts[b + 1]);
        // Checked at open: at most MAX_BLOCK bytes.
        block.resize((end - start) as usize, 0);
        self.source.read_exact_at(block, start)?;
        let (body, crc) = block.split_at(block.len() - CRC_LEN);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32fast::hash(body) != stored {
            return Err(damaged(format!(
                "block {b} (bytes {start}..{end}): CRC-32 mismatch, the file changed after it was checked"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: u64) -> Vec<(Vec<u8>, u64)> {
        let mut keys: Vec<(Vec<u8>, u64)> = (0..n)
            .map(|i| {
                let mut k = format!("term{}", i % 97).into_bytes();
                k.push(0);
                k.extend_from_slice(&i.to_be_bytes());
                (k, i * 1000 + 7)
            })
            .collect();
        keys.sort();
        keys
    }

    fn write(dir: &Path, keys: &[(Vec<u8>, u64)]) -> Vec<u8> {
        let path = dir.join("t.keys");
        let mut writer = KeyTableWriter::create(&path).unwrap();
        for (k, loc) in keys {
            writer.push(k, *loc).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), keys.len() as u64);
        std::fs::read(path).unwrap()
    }

    /// A table of `keys`, written to a file by the writer, opened from its bytes.
    fn table_of(keys: &[(Vec<u8>, u64)]) -> KeyTable<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let bytes = write(dir.path(), keys);
        let len = bytes.len() as u64;
        KeyTable::open(bytes, len).unwrap()
    }

    /// The keys starting with `prefix`, in order: what a scan must give.
    fn expected(keys: &[(Vec<u8>, u64)], prefix: &[u8]) -> Vec<(Vec<u8>, u64)> {
        keys.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    fn scan<S: ReadAt>(table: &KeyTable<S>, prefix: &[u8]) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        table
            .for_each_prefix(prefix, |k, loc| {
                out.push((k.to_vec(), loc));
                ControlFlow::Continue(())
            })
            .unwrap();
        out
    }

    #[test]
    fn every_prefix_finds_exactly_its_keys_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys(20_000);
        let bytes = write(dir.path(), &keys);
        let table = KeyTable::open(bytes.clone(), bytes.len() as u64).unwrap();
        assert!(table.blocks() > 50, "{} blocks", table.blocks());
        assert_eq!(table.len(), 20_000);
        for prefix in [
            &b"term1"[..],
            b"term50\0",
            b"term96\0",
            b"term0\0",
            b"",
            b"zzz",
            b"a",
        ] {
            assert_eq!(
                scan(&table, prefix),
                expected(&keys, prefix),
                "prefix {prefix:?}"
            );
        }
        // The same through a file.
        let file = File::open(dir.path().join("t.keys")).unwrap();
        let table = KeyTable::open(file, bytes.len() as u64).unwrap();
        assert_eq!(scan(&table, b"term7\0"), expected(&keys, b"term7\0"));
    }

    #[test]
    fn short_keys_of_a_small_alphabet_match_every_prefix() {
        // Keys that are prefixes of one another and share long runs: every branch of
        // the scan (below, matching, past the prefix; inside a block and across them).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut set = std::collections::BTreeSet::new();
        while set.len() < 4_000 {
            let len = (next() % 10) as usize;
            set.insert(
                (0..len)
                    .map(|_| b"abc"[(next() % 3) as usize])
                    .collect::<Vec<u8>>(),
            );
        }
        let keys: Vec<(Vec<u8>, u64)> = set.into_iter().zip(0..).collect();
        let table = table_of(&keys);
        let mut prefixes = vec![Vec::new()];
        for len in 1..=4 {
            for n in 0..3usize.pow(len) {
                prefixes.push((0..len).map(|i| b"abcd"[n / 3usize.pow(i) % 3]).collect());
            }
        }
        prefixes.push(b"d".to_vec());
        prefixes.push(b"abd".to_vec());
        for prefix in &prefixes {
            assert_eq!(
                scan(&table, prefix),
                expected(&keys, prefix),
                "prefix {prefix:?}"
            );
        }
    }

    #[test]
    fn the_two_level_block_search_agrees_with_a_plain_one() {
        let keys = keys(60_000);
        let table = table_of(&keys);
        assert!(table.blocks() > 4 * TOP_EVERY, "{} blocks", table.blocks());
        let plain = |prefix: &[u8]| {
            (0..table.blocks())
                .take_while(|&b| table.first(b) < prefix)
                .count()
        };
        let mut probes: Vec<Vec<u8>> = keys.iter().step_by(97).map(|(k, _)| k.clone()).collect();
        probes.extend(
            keys.iter()
                .step_by(101)
                .map(|(k, _)| k[..k.len() - 3].to_vec()),
        );
        probes.extend([b"".to_vec(), b"a".to_vec(), b"zzzz".to_vec()]);
        for b in (0..table.blocks()).step_by(7) {
            probes.push(table.first(b).to_vec());
        }
        for prefix in &probes {
            assert_eq!(
                table.first_block_from(prefix),
                plain(prefix),
                "prefix {prefix:?}"
            );
        }
    }

    #[test]
    fn a_break_stops_the_scan() {
        let table = table_of(&keys(5_000));
        let mut seen = 0;
        table
            .for_each_prefix(b"term3", |_, _| {
                seen += 1;
                if seen == 3 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
        assert_eq!(seen, 3);
    }

    #[test]
    fn keys_out_of_order_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = KeyTableWriter::create(&dir.path().join("t.keys")).unwrap();
        writer.push(b"b", 1).unwrap();
        assert!(writer.push(b"a", 2).is_err());
        assert!(writer.push(b"b", 2).is_err());
    }

    #[test]
    fn a_block_changed_after_open_is_an_error_not_an_answer() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = write(dir.path(), &keys(5_000));
        let len = bytes.len() as u64;
        let table = KeyTable::open(bytes.clone(), len).unwrap();
        let all = scan(&table, b"");
        assert_eq!(all.len(), 5_000);
        bytes[100] ^= 0x20;
        let table = KeyTable::open(bytes, len).unwrap();
        let err = table
            .for_each_prefix(b"", |_, _| ControlFlow::Continue(()))
            .unwrap_err();
        assert!(err.to_string().contains("CRC-32 mismatch"), "{err}");
    }

    #[test]
    fn every_truncation_and_many_flips_are_errors_or_answers_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = write(dir.path(), &keys(3_000));
        for cut in (0..bytes.len()).step_by(97) {
            let short = bytes[..cut].to_vec();
            let len = short.len() as u64;
            if let Ok(table) = KeyTable::open(short, len) {
                let _ = table.for_each_prefix(b"term1", |_, _| ControlFlow::Continue(()));
            }
        }
        // Flips in the index and footer: open refuses them or the scan still works.
        for at in (bytes.len().saturating_sub(4_000)..bytes.len()).step_by(7) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x5a;
            let len = damaged.len() as u64;
            if let Ok(table) = KeyTable::open(damaged, len) {
                let _ = table.for_each_prefix(b"term2", |_, _| ControlFlow::Continue(()));
            }
        }
        assert!(KeyTable::open(Vec::<u8>::new(), 0).is_err());
    }

    #[test]
    fn varints_round_trip_and_refuse_overflow() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            push_varint(&mut out, v);
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
        }
        let mut pos = 0;
        assert_eq!(read_varint(&[0xff; 11], &mut pos), None);
        let mut pos = 0;
        assert_eq!(read_varint(&[0x80], &mut pos), None);
    }
}
