//! Stored bytes → record: every decoder of `index::codec` on arbitrary bytes (a corrupt
//! or hostile snapshot) must return an error, never panic, abort or allocate without bound.
#![no_main]

use ivre_connector::index::codec;
use ivre_connector::ivre::Summary;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode_record_json(data);
    let _ = codec::decode_record_summary::<Summary>(data);
    let _ = codec::decode::<Summary>(data);
    let _ = codec::decode::<Vec<String>>(data);
    let _ = codec::decode_location(data);
    // A version byte and a raw payload: the fuzzer need not find the version itself.
    let mut versioned = Vec::with_capacity(data.len() + 1);
    versioned.push(codec::FORMAT_VERSION);
    versioned.extend_from_slice(data);
    let _ = codec::decode_record_json(&versioned);
    let _ = codec::decode_record_summary::<Summary>(&versioned);
    let _ = codec::decode::<Summary>(&versioned);
});
