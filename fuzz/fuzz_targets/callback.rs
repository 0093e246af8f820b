//! The HTTP callback's request path without the server: the `Authorization` header
//! (`http_callback::authorize`: the connector token or a platform JWT, verified by
//! `jwt::Jwks` with a fixed Ed25519 key), then the body (the JSON check, then
//! `Message::parse`), and the `jwks` document of the registration (`Jwks::parse`).
//!
//! Input: `AUTHORIZATION\nBODY`. The corpus holds tokens signed with the fixed key
//! (`fuzz/seeds/make_seeds.py`, `docs/reliability/fuzz.md`), so the fuzzer starts past
//! the signature check.
#![no_main]

use axum::http::{header, HeaderMap, HeaderValue};
use ivre_connector::opencti::protocol::message::Message;
use ivre_connector::opencti::transport::http_callback::{authorize, CallbackAuth};
use ivre_connector::opencti::transport::jwt::Jwks;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The public half of the fixed test key (the key of the tests in `src/opencti/transport/jwt/tests.rs`).
const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"FwH1mLtkWWueaz_gAPvnHhHeK33dkyaDyH5da2Jd1ao","kid":"k1","alg":"EdDSA"}]}"#;
const TOKEN: &str = "connector-token-0123456789";

fn auth() -> &'static CallbackAuth {
    static AUTH: OnceLock<CallbackAuth> = OnceLock::new();
    AUTH.get_or_init(|| {
        CallbackAuth::TokenOrJwks(TOKEN.to_owned(), Jwks::parse(JWKS).expect("fixed jwks"))
    })
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (authorization, body) = data.split_at(split);
    let body = body.get(1..).unwrap_or_default();
    if let Ok(text) = std::str::from_utf8(authorization) {
        let _ = Jwks::parse(text);
    }
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(authorization) {
        headers.insert(header::AUTHORIZATION, value);
    }
    if authorize(auth(), &headers).is_err() {
        return;
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        return;
    }
    if let Ok(message) = Message::parse(body) {
        let _ = message.received_bundle();
    }
});
