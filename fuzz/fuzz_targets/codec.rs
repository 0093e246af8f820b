//! Stored bytes → record: every decoder of `index::codec` on arbitrary bytes (a corrupt
//! or hostile snapshot) must return an error, never panic, abort or allocate without bound.
#![no_main]

use ivre_connector::index::codec;
use ivre_connector::ivre::Summary;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// A dictionary for the decoders' dictionary path (a raw-content one: any bytes are a
/// dictionary to zstd).
static DICTIONARY: LazyLock<codec::RecordDictionary> = LazyLock::new(|| {
    let text = br#"{"addr": "192.0.2.1", "recontype": "DNS_ANSWER", "value": "example.com"}"#;
    codec::RecordDictionary::from_bytes(text.to_vec()).expect("a dictionary")
});

fuzz_target!(|data: &[u8]| {
    let dictionary = Some(&*DICTIONARY);
    let _ = codec::decode_record_json(data, None);
    let _ = codec::decode_record_summary::<Summary>(data, None);
    let _ = codec::decode_record::<Summary>(data, dictionary);
    let _ = codec::decode::<Summary>(data);
    let _ = codec::decode::<Vec<String>>(data);
    let _ = codec::decode_location(data);
    // A version byte and a raw payload: the fuzzer need not find the version itself.
    let mut versioned = Vec::with_capacity(data.len() + 1);
    versioned.push(codec::FORMAT_VERSION);
    versioned.extend_from_slice(data);
    let _ = codec::decode_record_json(&versioned, None);
    let _ = codec::decode_record_summary::<Summary>(&versioned, None);
    let _ = codec::decode_record::<Summary>(&versioned, dictionary);
    let _ = codec::decode::<Summary>(&versioned);
});
