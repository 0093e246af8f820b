//! The platform's JWTs for the API listen mode (7.x, §5): the double's Ed25519 key, its
//! JWKS (returned by `registerConnector`), tokens signed by it, and tokens signed by
//! another key that the connector must reject.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::json;

use crate::JWT_KID;

/// The double's signing key: PKCS#8 DER (base64) of an Ed25519 key made once with
/// `openssl genpkey -algorithm ed25519`; test material only.
pub(crate) const SIGNING_KEY_PKCS8: &str =
    "MC4CAQAwBQYDK2VwBCIEIAAIW836V7h6+A2ocP1fD+ydcXh3f0FRh/BIMKvHPLjn";
/// The public half of [`SIGNING_KEY_PKCS8`], base64url without padding (the JWK `x`).
pub(crate) const SIGNING_KEY_X: &str = "Yp4HFVB3bCdX0kLhSZFg3QYuwd-nje_Rd_h0bx_H1Vg";
/// Another Ed25519 key, for tokens the connector must reject.
pub(crate) const FOREIGN_KEY_PKCS8: &str =
    "MC4CAQAwBQYDK2VwBCIEIB2TY5Tno/7qWyP68tE632/3ZWkMxwvRZ4t95G5Psza8";

pub(crate) fn jwks_json() -> String {
    json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": SIGNING_KEY_X, "kid": JWT_KID, "alg": "EdDSA"}]})
        .to_string()
}

pub(crate) fn sign_jwt(pkcs8_base64: &str, expires_in: i64) -> String {
    let der = base64::engine::general_purpose::STANDARD
        .decode(pkcs8_base64)
        .unwrap_or_else(|e| panic!("platform double: bad test key: {e}"));
    let key = jsonwebtoken::EncodingKey::from_ed_der(&der);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(JWT_KID.to_owned());
    let iat = unix_now();
    let claims = json!({"iss": "opencti", "sub": "connector", "iat": iat, "exp": iat + expires_in});
    jsonwebtoken::encode(&header, &claims, &key)
        .unwrap_or_else(|e| panic!("platform double: cannot sign a JWT: {e}"))
}

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    i64::try_from(secs).unwrap_or(i64::MAX)
}
