//! One line of an IVRE export (CLI `--json`, web API, MongoDB Extended JSON) → a record:
//! `ivre::parse_line` (JSON, `normalize::to_export_form`, the typed summary). A record
//! that parses must survive the record codec unchanged, and its export form must parse
//! again to the same record.
//!
//! With `IVRE_FUZZ_CODEC_SEEDS=DIR`, each stored record is also written to `DIR`: the
//! seeds of the `codec` target (`scripts/fuzz --seed`).
#![no_main]

use ivre_connector::index::codec;
use ivre_connector::ivre::{self, RecordKind, Summary};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn codec_seeds() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| std::env::var_os("IVRE_FUZZ_CODEC_SEEDS").map(PathBuf::from))
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, line)) = data.split_first() else {
        return;
    };
    let kind = RecordKind::ALL[usize::from(selector) % RecordKind::ALL.len()];
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    let Ok(record) = ivre::parse_line(kind, line) else {
        return;
    };
    let mut stored = Vec::new();
    codec::encode_record(&record.json, &record.summary, None, &mut stored)
        .expect("encode a record");
    if let Some(dir) = codec_seeds() {
        let name = format!("{:016x}", fxhash(&stored));
        std::fs::write(dir.join(name), &stored).expect("write a codec seed");
    }
    let json = codec::decode_record_json(&stored, None).expect("decode a record's JSON");
    assert_eq!(json, record.json, "record JSON changed by the codec");
    let summary: Summary = codec::decode_record_summary(&stored, None).expect("decode a summary");
    assert_eq!(summary, record.summary, "summary changed by the codec");
    // Compressed against a dictionary (the record's own JSON: a worst case of matches
    // reaching into it), it reads back the same.
    let dictionary = codec::RecordDictionary::from_bytes(record.json.as_bytes().to_vec()).ok();
    codec::encode_record(
        &record.json,
        &record.summary,
        dictionary.as_ref(),
        &mut stored,
    )
    .expect("encode a record against a dictionary");
    let (json, summary): (String, Summary) =
        codec::decode_record(&stored, dictionary.as_ref()).expect("decode with a dictionary");
    assert_eq!(
        json, record.json,
        "record JSON changed by the dictionary codec"
    );
    assert_eq!(
        summary, record.summary,
        "summary changed by the dictionary codec"
    );
    // The export form is a fixed point: it parses again to the same record (serde_json's
    // `float_roundtrip` makes long floats exact; docs/reliability/fuzz.md, finding 4).
    let again = ivre::parse_line(kind, &record.json).expect("the export form parses again");
    assert_eq!(
        again.json, record.json,
        "export form changed by a second pass"
    );
    assert_eq!(
        again.summary, record.summary,
        "summary changed by a second pass"
    );
});

/// FNV-1a, to name seed files.
fn fxhash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
