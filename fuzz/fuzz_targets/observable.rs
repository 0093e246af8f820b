//! `TYPE:VALUE` and bare observables (`observable::Observable::parse`). An observable that
//! parses must print as `TYPE:VALUE` and parse back to itself.
#![no_main]

use ivre_connector::observable::{Observable, SCOPES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(observable) = Observable::parse(input) {
        let printed = observable.to_string();
        let again = Observable::parse(&printed)
            .unwrap_or_else(|e| panic!("{printed:?} does not parse again: {e}"));
        assert_eq!(
            again, observable,
            "{printed:?} parses to another observable"
        );
        let _ = observable.ip();
    }
    for scope in SCOPES {
        let _ = Observable::parse_typed(scope, input);
    }
});
