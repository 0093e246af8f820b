//! Who may call the HTTP callback: the bearer of a request is the connector's token
//! (6.5–6.9, compared in constant time) or a platform-signed JWT (7.x, [`super::super::jwt`]),
//! checked before the body is read. The reason of a refusal never contains the token.

use axum::http::{header, HeaderMap};

use super::super::jwt;

/// How the bearer of a callback request is checked.
#[derive(Clone)]
pub enum CallbackAuth {
    /// 6.5–6.9: the bearer is the connector's own `OPENCTI_TOKEN` (compared in constant time).
    Token(String),
    /// 7.x: the bearer is a platform-signed JWT, verified with the registration `jwks`.
    Jwks(jwt::Jwks),
    /// Either of the above (a platform whose version is not known in advance).
    TokenOrJwks(String, jwt::Jwks),
}

impl std::fmt::Debug for CallbackAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallbackAuth::Token(_) => f.write_str("Token(***)"),
            CallbackAuth::Jwks(jwks) => f.debug_tuple("Jwks").field(jwks).finish(),
            CallbackAuth::TokenOrJwks(_, jwks) => f
                .debug_tuple("TokenOrJwks")
                .field(&"***")
                .field(jwks)
                .finish(),
        }
    }
}

/// Why a callback request was refused (`401`); never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("no Authorization header")]
    NoHeader,
    #[error("Authorization header is not visible ASCII")]
    NotAscii,
    #[error("Authorization header is not `Bearer <token>`")]
    NotSchemeAndToken,
    #[error("Authorization scheme is not Bearer")]
    NotBearer,
    #[error("empty bearer token")]
    EmptyToken,
    #[error("bearer is not the connector token")]
    NotTheToken,
    #[error("jwt: {0}")]
    Jwt(#[source] jwt::JwtError),
    #[error("bearer is not the connector token, and jwt: {0}")]
    NeitherTokenNorJwt(#[source] jwt::JwtError),
}

/// Checks `Authorization: Bearer <x>`; the reason of a refusal never contains the token.
/// Pure (no I/O): the fuzz target of the callback's request path calls it.
#[doc(hidden)]
pub fn authorize(auth: &CallbackAuth, headers: &HeaderMap) -> Result<(), Refusal> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(Refusal::NoHeader)?
        .to_str()
        .map_err(|_| Refusal::NotAscii)?;
    let (scheme, credentials) = value.split_once(' ').ok_or(Refusal::NotSchemeAndToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::NotBearer);
    }
    let credentials = credentials.trim();
    if credentials.is_empty() {
        return Err(Refusal::EmptyToken);
    }
    match auth {
        CallbackAuth::Token(token) => {
            if constant_time_eq(credentials.as_bytes(), token.as_bytes()) {
                Ok(())
            } else {
                Err(Refusal::NotTheToken)
            }
        }
        CallbackAuth::Jwks(jwks) => jwks.verify(credentials).map_err(Refusal::Jwt),
        CallbackAuth::TokenOrJwks(token, jwks) => {
            if constant_time_eq(credentials.as_bytes(), token.as_bytes()) {
                return Ok(());
            }
            jwks.verify(credentials)
                .map_err(Refusal::NeitherTokenNorJwt)
        }
    }
}

/// Compares `given` with `expected` in constant time (`subtle`), over the SHA-256 digests
/// of both so that neither the length of the token nor the position of the first
/// difference shows in the time taken. An empty `expected` matches nothing.
pub(super) fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    use sha2::Digest as _;
    use subtle::ConstantTimeEq as _;
    if expected.is_empty() {
        return false;
    }
    let (g, e) = (sha2::Sha256::digest(given), sha2::Sha256::digest(expected));
    bool::from(g.as_slice().ct_eq(e.as_slice()))
}
