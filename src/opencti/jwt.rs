//! The bearer tokens OpenCTI 7.x workers send to the HTTP callback
//! (`CONNECTOR_LISTEN_PROTOCOL=API`, `docs/opencti-protocol.md` §5).
//!
//! The platform signs a JWT (`mutation { connectorJWT }`) with its Ed25519 key; the public
//! half comes in the `jwks` string of the `registerConnector` response. A token is accepted
//! when:
//!
//! - its header `kid` names a key of the set (a token without `kid`, or with an unknown one,
//!   is refused);
//! - its header `alg` is the algorithm of that key (`EdDSA`): `none`, `HS*` and every other
//!   algorithm are refused, so a key cannot be turned into an HMAC secret;
//! - the signature verifies with that key;
//! - `iss == "opencti"`, `sub == "connector"` and `exp` is in the future, with
//!   [`LEEWAY_SECS`] of tolerance for clock skew;
//! - `nbf` and `iat`, when present, are not in the future (beyond the same leeway): a
//!   token made for later, or by a platform whose clock runs ahead, is refused;
//! - `aud`, when present, names this connector (one of the audiences given with
//!   [`Jwks::with_audiences`]: its id, its callback URI). The platform writes no `aud`
//!   (`iss`, `sub`, `iat`, `exp` only), so a token that carries one was made for someone
//!   else, and a token with an `aud` is refused when no audience was given.
//!
//! Only `OKP`/`Ed25519` keys are kept from the set (the platform publishes nothing else);
//! other keys are skipped with a warning.
//!
//! Errors never contain the token, nor any part of its claims.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The issuer the platform writes in its connector tokens.
pub const ISSUER: &str = "opencti";
/// The subject the platform writes in its connector tokens.
pub const SUBJECT: &str = "connector";
/// Tolerance, in seconds, on `exp` for clock skew between the platform and the connector.
pub const LEEWAY_SECS: u64 = 30;
/// The longest `kid` quoted in an error message; longer ones are cut.
const MAX_KID_IN_ERROR: usize = 64;

/// Why a JWKS or a token was refused.
///
/// The messages name the check that failed, never the token.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// The `jwks` string is not a JSON object with a `keys` list.
    #[error("invalid jwks: {0}")]
    InvalidJwks(String),
    /// The `jwks` string has no key this module can verify with (`OKP`/`Ed25519` with a `kid`).
    #[error("jwks has no usable Ed25519 key with a `kid`")]
    NoUsableKey,
    /// The token is not three base64url parts with a JSON header naming a known algorithm
    /// (this includes `alg: none`).
    #[error("malformed token")]
    Malformed,
    /// The token header has no `kid`.
    #[error("token header has no `kid`")]
    MissingKid,
    /// The token header names a key that is not in the set.
    #[error("unknown key id {0:?}")]
    UnknownKid(String),
    /// The token header names an algorithm other than the key's.
    #[error("algorithm `{got:?}` does not match the key's `{expected:?}`")]
    AlgorithmMismatch {
        /// The algorithm of the key.
        expected: Algorithm,
        /// The algorithm in the token header.
        got: Algorithm,
    },
    /// The signature does not verify with the key.
    #[error("invalid signature")]
    InvalidSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `iss` is not `opencti`.
    #[error("invalid issuer")]
    InvalidIssuer,
    /// `sub` is not `connector`.
    #[error("invalid subject")]
    InvalidSubject,
    /// `aud` is present and names no audience of this connector.
    #[error("invalid audience")]
    InvalidAudience,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid (`nbf` in the future)")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("token issued in the future (`iat`)")]
    IssuedInFuture,
    /// A required claim (`exp`, `iss`, `sub`) is missing.
    #[error("missing claim `{0}`")]
    MissingClaim(String),
    /// A claim has the wrong type (e.g. `exp` is a string).
    #[error("claim `{0}` has an invalid format")]
    InvalidClaimFormat(String),
    /// Any other verification failure (the key is not a valid Ed25519 point, …).
    #[error("invalid token ({0})")]
    Invalid(&'static str),
}

/// A verification key and the one algorithm it accepts.
#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    algorithm: Algorithm,
}

/// The platform's token keys, by `kid` (from the `jwks` of `registerConnector`).
#[derive(Clone)]
pub struct Jwks {
    keys: BTreeMap<String, Key>,
    /// What `aud` may name (empty: a token with an `aud` is refused).
    audiences: Vec<String>,
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwks")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .field("audiences", &self.audiences)
            .finish()
    }
}

/// The `jwks` document as the platform sends it.
#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

/// The members of one JWK this module reads.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
}

impl Jwks {
    /// Parses the `jwks` string of the `registerConnector` response, e.g.
    /// `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"…","kid":"…","alg":"EdDSA"}]}`.
    ///
    /// Keys that are not `OKP`/`Ed25519`, have no `kid`, are not for signatures (`use` other
    /// than `sig`), name another algorithm than `EdDSA`, or whose `x` is not 32 bytes of
    /// base64url are skipped with a warning. It is an error if no key is left.
    pub fn parse(jwks_json: &str) -> Result<Jwks, JwtError> {
        let raw: RawJwks = serde_json::from_str(jwks_json)
            .map_err(|e| JwtError::InvalidJwks(format!("not a JSON object with `keys`: {e}")))?;
        let mut keys = BTreeMap::new();
        for (index, value) in raw.keys.into_iter().enumerate() {
            match usable_key(value) {
                Ok((kid, key)) => match keys.entry(kid) {
                    std::collections::btree_map::Entry::Occupied(entry) => {
                        tracing::warn!(index, kid = %entry.key(), "jwks: duplicate `kid`, key skipped");
                    }
                    std::collections::btree_map::Entry::Vacant(entry) => {
                        entry.insert(key);
                    }
                },
                Err(reason) => tracing::warn!(index, reason, "jwks: key skipped"),
            }
        }
        if keys.is_empty() {
            return Err(JwtError::NoUsableKey);
        }
        Ok(Jwks {
            keys,
            audiences: Vec::new(),
        })
    }

    /// Accepts tokens whose `aud` names one of `audiences` (the connector's id, its
    /// callback URI); tokens without `aud` are accepted as before.
    pub fn with_audiences(mut self, audiences: impl IntoIterator<Item = String>) -> Jwks {
        self.audiences = audiences.into_iter().filter(|a| !a.is_empty()).collect();
        self
    }

    /// The key ids of the set, in order.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Verifies a callback bearer token: `kid` → key, the key's algorithm, the signature,
    /// `iss == "opencti"`, `sub == "connector"`, `exp` in the future, `nbf` and `iat` not
    /// in the future (± [`LEEWAY_SECS`]), `aud` if any (see the module documentation).
    pub fn verify(&self, token: &str) -> Result<(), JwtError> {
        self.verify_at(token, now())
    }

    /// [`Jwks::verify`] at `now` (seconds since the epoch) for the checks made here
    /// (`iat`); `exp` and `nbf` are checked by `jsonwebtoken` against the clock.
    fn verify_at(&self, token: &str, now: u64) -> Result<(), JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        let kid = header.kid.ok_or(JwtError::MissingKid)?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| JwtError::UnknownKid(cut(&kid)))?;
        if header.alg != key.algorithm {
            return Err(JwtError::AlgorithmMismatch {
                expected: key.algorithm,
                got: header.alg,
            });
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[ISSUER]);
        validation.sub = Some(SUBJECT.to_owned());
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        if !self.audiences.is_empty() {
            validation.set_audience(&self.audiences);
        }
        let data = jsonwebtoken::decode::<IssuedAt>(token, &key.decoding, &validation)
            .map_err(|e| map_error(e.into_kind()))?;
        match data.claims.iat {
            None => Ok(()),
            Some(serde_json::Value::Number(n)) => match n.as_f64() {
                Some(iat) if iat <= (now.saturating_add(LEEWAY_SECS)) as f64 => Ok(()),
                Some(_) => Err(JwtError::IssuedInFuture),
                None => Err(JwtError::InvalidClaimFormat("iat".into())),
            },
            Some(_) => Err(JwtError::InvalidClaimFormat("iat".into())),
        }
    }
}

/// The claim checked here rather than by `jsonwebtoken` (which leaves `iat` alone).
#[derive(Deserialize)]
struct IssuedAt {
    #[serde(default)]
    iat: Option<serde_json::Value>,
}

/// Seconds since the epoch.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Keeps one JWK if it is a usable Ed25519 signature key; else says why not.
fn usable_key(value: serde_json::Value) -> Result<(String, Key), &'static str> {
    let raw: RawJwk = serde_json::from_value(value).map_err(|_| "not a JWK object")?;
    if raw.kty.as_deref() != Some("OKP") {
        return Err("`kty` is not `OKP`");
    }
    if raw.crv.as_deref() != Some("Ed25519") {
        return Err("`crv` is not `Ed25519`");
    }
    if !matches!(raw.alg.as_deref(), None | Some("EdDSA")) {
        return Err("`alg` is not `EdDSA`");
    }
    if !matches!(raw.use_.as_deref(), None | Some("sig")) {
        return Err("`use` is not `sig`");
    }
    let kid = match raw.kid {
        Some(kid) if !kid.is_empty() => kid,
        _ => return Err("no `kid`"),
    };
    let x = raw.x.ok_or("no `x`")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(x.trim_end_matches('='))
        .map_err(|_| "`x` is not base64url")?;
    if bytes.len() != 32 {
        // Also protects the verifier, which slices the first 32 bytes.
        return Err("`x` is not 32 bytes");
    }
    Ok((
        kid,
        Key {
            decoding: DecodingKey::from_ed_der(&bytes),
            algorithm: Algorithm::EdDSA,
        },
    ))
}

/// Maps a `jsonwebtoken` error to ours, keeping no text that could come from the token.
fn map_error(kind: ErrorKind) -> JwtError {
    match kind {
        ErrorKind::InvalidSignature => JwtError::InvalidSignature,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::InvalidIssuer => JwtError::InvalidIssuer,
        ErrorKind::InvalidSubject => JwtError::InvalidSubject,
        ErrorKind::MissingRequiredClaim(claim) => JwtError::MissingClaim(cut(&claim)),
        ErrorKind::InvalidClaimFormat(claim) => JwtError::InvalidClaimFormat(cut(&claim)),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => JwtError::Malformed,
        ErrorKind::InvalidAlgorithm => JwtError::Invalid("algorithm not allowed"),
        ErrorKind::InvalidEddsaKey | ErrorKind::InvalidKeyFormat => {
            JwtError::Invalid("the key is not a valid Ed25519 public key")
        }
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidAudience => JwtError::InvalidAudience,
        _ => JwtError::Invalid("verification failed"),
    }
}

/// Cuts a header-supplied string for an error message.
fn cut(s: &str) -> String {
    s.chars().take(MAX_KID_IN_ERROR).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
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
}
