//! Token verification and key loading against tokens signed here with fixed test keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

/// `openssl genpkey -algorithm ed25519` (test only).
const KEY_A_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHvvrI6EgAJxZN+3d7X4FzQlVV+EjbCMbu8Elw70cRvO
-----END PRIVATE KEY-----";
/// `openssl pkey -in a.pem -pubout -outform DER | tail -c 32 | base64url`.
const KEY_A_X: &str = "FwH1mLtkWWueaz_gAPvnHhHeK33dkyaDyH5da2Jd1ao";
/// A second key, not in the set.
const KEY_B_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOdtwYamm2D2Z+FLi8Li9ujtEd4o72B5w0VziGBdPS81
-----END PRIVATE KEY-----";
const KEY_B_X: &str = "Xw5jr7NZJlmkX3muG1_hpU-OmgnXsFCOhiOVLUNCaU8";

fn pkcs8_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn jwks_json() -> String {
    json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": KEY_A_X, "kid": "k1", "alg": "EdDSA"}]})
        .to_string()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sign(pem: &str, kid: Option<&str>, claims: serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&pkcs8_der(pem))).unwrap()
}

fn good_claims() -> serde_json::Value {
    json!({"iss": "opencti", "sub": "connector", "iat": now(), "exp": now() + 3600})
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn valid_token() {
    let jwks = Jwks::parse(&jwks_json()).unwrap();
    assert_eq!(jwks.key_ids().collect::<Vec<_>>(), ["k1"]);
    jwks.verify(&sign(KEY_A_PEM, Some("k1"), good_claims()))
        .unwrap();
}

#[test]
fn expiry_with_leeway() {
    let jwks = Jwks::parse(&jwks_json()).unwrap();
    let claims =
        |exp| json!({"iss": "opencti", "sub": "connector", "iat": now() - 7200, "exp": exp});
    let err = jwks
        .verify(&sign(KEY_A_PEM, Some("k1"), claims(now() - 3600)))
        .unwrap_err();
    assert!(matches!(err, JwtError::Expired), "{err:?}");
    let err = jwks
        .verify(&sign(KEY_A_PEM, Some("k1"), claims(now() - 60)))
        .unwrap_err();
    assert!(matches!(err, JwtError::Expired), "{err:?}");
    // Within the leeway.
    jwks.verify(&sign(KEY_A_PEM, Some("k1"), claims(now() - 5)))
        .unwrap();
}

#[test]
fn wrong_or_missing_claims() {
    let jwks = Jwks::parse(&jwks_json()).unwrap();
    let exp = now() + 3600;
    let err = jwks
        .verify(&sign(
            KEY_A_PEM,
            Some("k1"),
            json!({"iss": "other", "sub": "connector", "exp": exp}),
        ))
        .unwrap_err();
    assert!(matches!(err, JwtError::InvalidIssuer), "{err:?}");
    let err = jwks
        .verify(&sign(
            KEY_A_PEM,
            Some("k1"),
            json!({"iss": "opencti", "sub": "user", "exp": exp}),
        ))
        .unwrap_err();
    assert!(matches!(err, JwtError::InvalidSubject), "{err:?}");
    let err = jwks
        .verify(&sign(
            KEY_A_PEM,
            Some("k1"),
            json!({"sub": "connector", "exp": exp}),
        ))
        .unwrap_err();
    assert!(
        matches!(err, JwtError::MissingClaim(ref c) if c == "iss"),
        "{err:?}"
    );
    let err = jwks
        .verify(&sign(
            KEY_A_PEM,
            Some("k1"),
            json!({"iss": "opencti", "exp": exp}),
        ))
        .unwrap_err();
    assert!(
        matches!(err, JwtError::MissingClaim(ref c) if c == "sub"),
        "{err:?}"
    );
    let err = jwks
        .verify(&sign(
            KEY_A_PEM,
            Some("k1"),
            json!({"iss": "opencti", "sub": "connector"}),
        ))
        .unwrap_err();
    assert!(
        matches!(err, JwtError::MissingClaim(ref c) if c == "exp"),
        "{err:?}"
    );
}

#[test]
fn future_nbf_and_iat_are_refused_beyond_the_leeway() {
    let jwks = Jwks::parse(&jwks_json()).unwrap();
    let with = |extra: serde_json::Value| {
        let mut claims = good_claims();
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        jwks.verify(&sign(KEY_A_PEM, Some("k1"), claims))
    };
    let err = with(json!({"nbf": now() + 600})).unwrap_err();
    assert!(matches!(err, JwtError::NotYetValid), "{err:?}");
    let err = with(json!({"iat": now() + 600})).unwrap_err();
    assert!(matches!(err, JwtError::IssuedInFuture), "{err:?}");
    let err = with(json!({"iat": now() + 60})).unwrap_err();
    assert!(matches!(err, JwtError::IssuedInFuture), "{err:?}");
    let err = with(json!({"iat": "yesterday"})).unwrap_err();
    assert!(
        matches!(err, JwtError::InvalidClaimFormat(ref c) if c == "iat"),
        "{err:?}"
    );
    // Within the leeway, in the past, or absent: accepted.
    with(json!({"nbf": now() + 5, "iat": now() + 5})).unwrap();
    with(json!({"nbf": now() - 600, "iat": now() - 600})).unwrap();
    jwks.verify(&sign(
        KEY_A_PEM,
        Some("k1"),
        json!({"iss": "opencti", "sub": "connector", "exp": now() + 60}),
    ))
    .unwrap();
    // The boundary of `iat`, at a fixed time.
    let at = 2_000_000_000u64;
    let token = |iat: u64| {
        sign(
            KEY_A_PEM,
            Some("k1"),
            json!({"iss": "opencti", "sub": "connector", "iat": iat, "exp": now() + 60}),
        )
    };
    jwks.verify_at(&token(at + LEEWAY_SECS), at).unwrap();
    assert!(matches!(
        jwks.verify_at(&token(at + LEEWAY_SECS + 1), at),
        Err(JwtError::IssuedInFuture)
    ));
}

#[test]
fn audience() {
    let plain = Jwks::parse(&jwks_json()).unwrap();
    let ours = plain
        .clone()
        .with_audiences(["connector-1".to_owned(), "http://c:7070/cb".to_owned()]);
    let with_aud = |aud: serde_json::Value| {
        let mut claims = good_claims();
        claims["aud"] = aud;
        sign(KEY_A_PEM, Some("k1"), claims)
    };
    // The platform's tokens carry no `aud`: accepted by both.
    plain
        .verify(&sign(KEY_A_PEM, Some("k1"), good_claims()))
        .unwrap();
    ours.verify(&sign(KEY_A_PEM, Some("k1"), good_claims()))
        .unwrap();
    // A token for someone else.
    for jwks in [&plain, &ours] {
        let err = jwks.verify(&with_aud(json!("other"))).unwrap_err();
        assert!(matches!(err, JwtError::InvalidAudience), "{err:?}");
        let err = jwks
            .verify(&with_aud(json!(["other", "another"])))
            .unwrap_err();
        assert!(matches!(err, JwtError::InvalidAudience), "{err:?}");
    }
    let err = plain.verify(&with_aud(json!("connector-1"))).unwrap_err();
    assert!(matches!(err, JwtError::InvalidAudience), "{err:?}");
    ours.verify(&with_aud(json!("connector-1"))).unwrap();
    ours.verify(&with_aud(json!(["x", "http://c:7070/cb"])))
        .unwrap();
    let err = ours.verify(&with_aud(json!(42))).unwrap_err();
    assert!(
        matches!(err, JwtError::InvalidClaimFormat(ref c) if c == "aud"),
        "{err:?}"
    );
}

#[test]
fn unknown_or_missing_kid() {
    let jwks = Jwks::parse(&jwks_json()).unwrap();
    let err = jwks
        .verify(&sign(KEY_A_PEM, Some("k2"), good_claims()))
        .unwrap_err();
    assert!(
        matches!(err, JwtError::UnknownKid(ref k) if k == "k2"),
        "{err:?}"
    );
    let err = jwks
        .verify(&sign(KEY_A_PEM, None, good_claims()))
        .unwrap_err();
    assert!(matches!(err, JwtError::MissingKid), "{err:?}");
}

#[test]
fn other_key() {
    let jwks = Jwks::parse(&jwks_json()).unwrap();
    let err = jwks
        .verify(&sign(KEY_B_PEM, Some("k1"), good_claims()))
        .unwrap_err();
    assert!(matches!(err, JwtError::InvalidSignature), "{err:?}");
}

#[test]
fn two_keys() {
    let jwks = Jwks::parse(
        &json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": KEY_A_X, "kid": "k1"},
            {"kty": "OKP", "crv": "Ed25519", "x": KEY_B_X, "kid": "k2", "use": "sig"},
        ]})
        .to_string(),
    )
    .unwrap();
    jwks.verify(&sign(KEY_A_PEM, Some("k1"), good_claims()))
        .unwrap();
    jwks.verify(&sign(KEY_B_PEM, Some("k2"), good_claims()))
        .unwrap();
    assert!(jwks
        .verify(&sign(KEY_B_PEM, Some("k1"), good_claims()))
        .is_err());
}

#[test]
fn alg_none_and_hmac_refused() {
    let jwks = Jwks::parse(&jwks_json()).unwrap();
    let payload = b64(&good_claims().to_string());
    let none = format!(
        "{}.{payload}.",
        b64(r#"{"alg":"none","kid":"k1","typ":"JWT"}"#)
    );
    let err = jwks.verify(&none).unwrap_err();
    assert!(matches!(err, JwtError::Malformed), "{err:?}");
    // HS256 keyed with the public key bytes (the classic key-confusion attack).
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(KEY_A_X)
        .unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(
        &header,
        &good_claims(),
        &EncodingKey::from_secret(&x).unwrap(),
    )
    .unwrap();
    let err = jwks.verify(&hs).unwrap_err();
    assert!(
        matches!(
            err,
            JwtError::AlgorithmMismatch {
                got: Algorithm::HS256,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn garbage_refused_without_echoing_it() {
    let jwks = Jwks::parse(&jwks_json()).unwrap();
    for token in [
        "",
        "garbage",
        "a.b.c",
        "a.b",
        "....",
        "eyJhbGciOiJFZERTQSJ9.e30.",
        "é.é.é",
    ] {
        let err = jwks.verify(token).unwrap_err();
        if !token.is_empty() {
            assert!(!err.to_string().contains(token), "{err}");
        }
    }
    // Tampered payload: signature no longer matches.
    let token = sign(KEY_A_PEM, Some("k1"), good_claims());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] =
        b64(&json!({"iss": "opencti", "sub": "connector", "exp": now() + 99_999}).to_string());
    let err = jwks.verify(&parts.join(".")).unwrap_err();
    assert!(matches!(err, JwtError::InvalidSignature), "{err:?}");
    // A valid token's text never appears in an error.
    let token = sign(KEY_B_PEM, Some("k1"), good_claims());
    let err = jwks.verify(&token).unwrap_err();
    assert!(!err.to_string().contains(&token));
}

#[test]
fn parse_errors_and_skipped_keys() {
    assert!(matches!(
        Jwks::parse("not json"),
        Err(JwtError::InvalidJwks(_))
    ));
    assert!(matches!(Jwks::parse("{}"), Err(JwtError::InvalidJwks(_))));
    assert!(matches!(
        Jwks::parse(r#"{"keys":[]}"#),
        Err(JwtError::NoUsableKey)
    ));
    for key in [
        json!({"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}),
        json!({"kty": "OKP", "crv": "Ed448", "x": KEY_A_X, "kid": "k1"}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": KEY_A_X}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": "c2hvcnQ", "kid": "k1"}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": "!!!", "kid": "k1"}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": KEY_A_X, "kid": "k1", "alg": "HS256"}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": KEY_A_X, "kid": "k1", "use": "enc"}),
        json!("not an object"),
    ] {
        let doc = json!({ "keys": [key] }).to_string();
        assert!(
            matches!(Jwks::parse(&doc), Err(JwtError::NoUsableKey)),
            "{doc}"
        );
    }
    // A bad key next to a good one is skipped.
    let doc = json!({"keys": [
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "r1"},
        {"kty": "OKP", "crv": "Ed25519", "x": KEY_A_X, "kid": "k1", "alg": "EdDSA"},
    ]})
    .to_string();
    assert_eq!(
        Jwks::parse(&doc).unwrap().key_ids().collect::<Vec<_>>(),
        ["k1"]
    );
}
