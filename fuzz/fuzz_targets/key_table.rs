//! A base's key table (`<tree>.keys`, `index::key_table`) from arbitrary bytes (a corrupt
//! or hostile snapshot): opening it and scanning prefixes must return keys or an error,
//! never panic, abort or allocate without bound. The first byte picks the prefix.
#![no_main]

use ivre_connector::index::key_table::KeyTable;
use libfuzzer_sys::fuzz_target;
use std::ops::ControlFlow;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, table)) = data.split_first() else {
        return;
    };
    let Ok(table) = KeyTable::open(table, table.len() as u64) else {
        return;
    };
    let prefixes: [&[u8]; 4] = [b"", b"\x01", b"term1", &[pick]];
    for prefix in prefixes {
        let _ = table.for_each_prefix(prefix, |key, _location| {
            assert!(key.starts_with(prefix), "a key outside its prefix");
            ControlFlow::Continue(())
        });
    }
});
