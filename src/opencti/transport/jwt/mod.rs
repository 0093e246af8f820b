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

mod keys;
#[cfg(test)]
mod tests;

pub use keys::Jwks;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
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

impl Jwks {
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
