//! A platform message body (`opencti::protocol::message::Message::parse`) and its accessors.
#![no_main]

use ivre_connector::opencti::protocol::message::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::parse(data) {
        let _ = message.is_playbook();
        let _ = message.work_id();
        let _ = message.draft_id();
        let _ = message.received_bundle();
    }
});
