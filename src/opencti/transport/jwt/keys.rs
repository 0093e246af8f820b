//! Loading the platform's token keys: the `jwks` string of the `registerConnector`
//! response, of which only usable `OKP`/`Ed25519` signature keys with a `kid` are kept
//! (the others are skipped with a warning). Verification is in [`super`].

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::JwtError;

/// A verification key and the one algorithm it accepts.
#[derive(Clone)]
pub(super) struct Key {
    pub(super) decoding: DecodingKey,
    pub(super) algorithm: Algorithm,
}

/// The platform's token keys, by `kid` (from the `jwks` of `registerConnector`).
#[derive(Clone)]
pub struct Jwks {
    pub(super) keys: BTreeMap<String, Key>,
    /// What `aud` may name (empty: a token with an `aud` is refused).
    pub(super) audiences: Vec<String>,
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
}

/// Keeps one JWK if it is a usable Ed25519 signature key; else says why not.
pub(super) fn usable_key(value: serde_json::Value) -> Result<(String, Key), &'static str> {
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
