//! IVRE's MongoDB URLs (`live::mongo::url`): parse, the redacted display, the scrubbing
//! of driver messages. The driver URL of a URL that parses must parse again, to itself
//! and to the same database.
#![no_main]

use ivre_connector::live::mongo::url;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let _ = url::display(input);
    if let Ok(parsed) = url::parse(input) {
        let _ = url::scrub(input, &parsed.secrets);
        let again = url::parse(&parsed.driver_url)
            .unwrap_or_else(|e| panic!("driver URL does not parse again: {e}"));
        assert_eq!(again.driver_url, parsed.driver_url);
        assert_eq!(again.database, parsed.database);
    }
});
