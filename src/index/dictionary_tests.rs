//! The record dictionaries end to end: trained by a full import on each kind's first
//! records, used by every record of the kind and by updates, checked when an index opens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::base_writer::Training;
use super::codec::{self, CodecError};
use super::writer::prepare;
use super::{BaseWriter, IndexCheck, IndexError, IndexReader, IndexStats, Query, UpdateWriter};
use crate::ivre::{parse_line, MergeMode, ParsedRecord, PassiveSummary, RecordKind};
use std::collections::VecDeque;
use std::path::Path;

fn record(i: usize, count: u64) -> ParsedRecord {
    let line = format!(
        r#"{{"addr": "192.0.{}.{}", "sensor": "S{}", "recontype": "DNS_ANSWER", "source": "A-192.0.2.53-53", "value": "host{i}.zone{}.example.com", "count": {count}, "firstseen": "2026-01-01 00:00:00", "lastseen": "2026-01-02 00:{:02}:00", "infos": {{"domain": ["zone{}.example.com", "example.com"]}}, "schema_version": 3}}"#,
        i / 250,
        i % 250,
        i % 3,
        i % 40,
        i % 60,
        i % 40
    );
    parse_line(RecordKind::Passive, &line).unwrap()
}

/// A full import of `records`, each prepared `lag` records ahead of being written (as
/// the import's parser threads run ahead of the writer: records prepared before the
/// dictionary is decided arrive plain after it).
fn build(path: &Path, records: &[ParsedRecord], training: Training, lag: usize) -> IndexStats {
    let mut writer = BaseWriter::create(path).unwrap().with_training(training);
    let dictionaries = writer.dictionaries();
    let mut ahead = VecDeque::new();
    for record in records {
        let encoding = dictionaries.encoding(RecordKind::Passive);
        ahead.push_back(prepare(RecordKind::Passive, record, None, encoding).unwrap());
        if ahead.len() > lag {
            writer.add_prepared(ahead.pop_front().unwrap()).unwrap();
        }
    }
    for prepared in ahead {
        writer.add_prepared(prepared).unwrap();
    }
    writer.finish().unwrap()
}

/// Every record's JSON, read back by its name.
fn read_all(reader: &IndexReader, records: &[ParsedRecord]) -> Vec<Result<String, IndexError>> {
    records
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let name = format!("host{i}.zone{}.example.com", i % 40);
            let found = reader
                .search(RecordKind::Passive, &[Query::DnsName(name)], None)
                .unwrap();
            assert_eq!(found.records.len(), 1, "record {i}");
            reader.json(&found.records[0])
        })
        .collect()
}

fn decode(
    kind: RecordKind,
    bytes: &[u8],
    d: Option<&codec::RecordDictionary>,
) -> Result<(), CodecError> {
    assert_eq!(kind, RecordKind::Passive);
    codec::decode_record_summary::<PassiveSummary>(bytes, d).map(drop)
}

const EARLY: Training = Training {
    records: 300,
    bytes: usize::MAX,
};

#[test]
fn a_kind_is_compressed_against_a_dictionary_of_its_first_records() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<ParsedRecord> = (0..1000).map(|i| record(i, 1)).collect();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let stats = build(&a, &records, EARLY, 0);
    build(&b, &records, EARLY, 64);
    // What the writer decides depends on the input only, not on how far the parsers ran
    // ahead.
    for file in ["passive.bin", "passive.zdict"] {
        assert!(
            std::fs::read(a.join(file)).unwrap() == std::fs::read(b.join(file)).unwrap(),
            "{file}"
        );
    }
    assert!(stats.files.contains_key("passive.zdict"));
    assert!(!a.join("scans.zdict").exists() && !a.join("view.zdict").exists());

    let reader = IndexReader::open(&a, &stats.check(), 1 << 20).unwrap();
    let read: Vec<String> = read_all(&reader, &records)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let expected: Vec<&str> = records.iter().map(|r| r.json.as_str()).collect();
    assert_eq!(read, expected);
    let verified = reader.verify(decode).unwrap();
    assert_eq!((verified.records, verified.problems.len()), (1000, 0));
    // Smaller than compressed alone.
    let alone: usize = records
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            codec::encode_record(&r.json, &r.summary, None, &mut out).unwrap();
            out.len()
        })
        .sum();
    let with = std::fs::metadata(a.join("passive.bin")).unwrap().len() as usize;
    assert!(with * 10 < alone * 8, "{with} bytes vs {alone} alone");
    drop(reader);

    // Without its dictionary every record (the first ones too) is an error, never
    // another record.
    std::fs::remove_file(a.join("passive.zdict")).unwrap();
    let mut check = stats.check();
    check.files.remove("passive.zdict");
    let reader = IndexReader::open(&a, &check, 1 << 20).unwrap();
    for (i, read) in read_all(&reader, &records).into_iter().enumerate() {
        assert!(
            matches!(
                read,
                Err(IndexError::Codec {
                    source: CodecError::Decompress(_),
                    ..
                })
            ),
            "record {i}: {read:?}"
        );
    }
}

#[test]
fn a_kind_with_few_records_has_no_dictionary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let records: Vec<ParsedRecord> = (0..codec::RecordDictionary::MIN_SAMPLES - 1)
        .map(|i| record(i, 1))
        .collect();
    let stats = build(&path, &records, Training::default(), 8);
    assert!(!path.join("passive.zdict").exists());
    assert!(!stats.files.contains_key("passive.zdict"));
    let reader = IndexReader::open(&path, &stats.check(), 1 << 20).unwrap();
    assert!(read_all(&reader, &records).iter().all(Result::is_ok));
}

#[test]
fn updates_compress_against_the_base_dictionary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let records: Vec<ParsedRecord> = (0..400).map(|i| record(i, 1)).collect();
    // Trained at the end of the import (fewer records than the default training).
    let stats = build(&path, &records, Training::default(), 0);
    let dictionary = std::fs::read(path.join("passive.zdict")).unwrap();
    let mut writer = UpdateWriter::open(&path, &stats.check()).unwrap();
    // Ten base records accumulated into, fifty new ones.
    for i in (0..10).chain(400..450) {
        writer
            .merge(
                RecordKind::Passive,
                &record(i, 2),
                None,
                MergeMode::Accumulate,
            )
            .unwrap();
    }
    let stats = writer.finish().unwrap();
    assert_eq!(
        std::fs::read(path.join("passive.zdict")).unwrap(),
        dictionary
    );
    let records: Vec<ParsedRecord> = (0..450).map(|i| record(i, 1)).collect();
    let reader = IndexReader::open(&path, &stats.check(), 1 << 20).unwrap();
    for (i, read) in read_all(&reader, &records).into_iter().enumerate() {
        let json: serde_json::Value = serde_json::from_str(&read.unwrap()).unwrap();
        let count = if i < 10 {
            3
        } else if i < 400 {
            1
        } else {
            2
        };
        assert_eq!(json["count"], count, "record {i}");
    }
    let verified = reader.verify(decode).unwrap();
    assert_eq!((verified.records, verified.problems.len()), (450, 0));
    // The added records need the dictionary too.
    let delta = std::fs::metadata(path.join("passive.delta.bin"))
        .unwrap()
        .len();
    assert!(delta > 0);
    drop(reader);
    std::fs::remove_file(path.join("passive.zdict")).unwrap();
    let mut check = stats.check();
    check.files.remove("passive.zdict");
    let reader = IndexReader::open(&path, &check, 1 << 20).unwrap();
    assert!(read_all(&reader, &records)[400..]
        .iter()
        .all(Result::is_err));
}

#[test]
fn a_damaged_dictionary_is_named_when_the_index_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let records: Vec<ParsedRecord> = (0..300).map(|i| record(i, 1)).collect();
    let stats = build(&path, &records, Training::default(), 0);
    let file = path.join("passive.zdict");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    let check: IndexCheck = stats.check();
    let opened = IndexReader::open(&path, &check, 1 << 20).map(drop);
    let message = opened.unwrap_err().to_string();
    assert!(
        message.contains("passive.zdict") && message.contains("CRC-32"),
        "{message}"
    );
    let opened = UpdateWriter::open(&path, &check).map(drop);
    let message = opened.unwrap_err().to_string();
    assert!(message.contains("passive.zdict"), "{message}");
}
