//! The HTTP listen mode (`CONNECTOR_LISTEN_PROTOCOL=API`, `docs/opencti-protocol.md` §5): an OpenCTI worker
//! consumes the connector's listen queue and POSTs each raw message body to
//! `CONNECTOR_LISTEN_PROTOCOL_API_URI + CONNECTOR_LISTEN_PROTOCOL_API_PATH`.
//!
//! Answers, as pycti's FastAPI server gives them:
//!
//! | request | answer |
//! |---|---|
//! | `POST <path>` without `Authorization: Bearer <x>`, or with a bad token/JWT | `401 {"error":"Invalid credentials"}` |
//! | `POST <path>`, body not JSON | `400 {"error":"Invalid JSON payload"}` |
//! | `POST <path>`, handler returned `Ok` | `202 {"message":"Message successfully received"}` |
//! | `POST <path>`, handler returned `Err` (or panicked) | `500 {"error":"Error processing message"}` |
//! | `POST <path>`, `Content-Length` over [`MAX_BODY_BYTES`] | `413 {"error":"Payload too large"}` |
//! | `GET /health` (no authentication) | `200 {"status":"ok"}` |
//! | another method on `<path>` or `/health` | `405 {"detail":"Method Not Allowed"}` |
//! | any other path | `404 {"detail":"Not Found"}` |
//!
//! The response is sent only once the handler is done: the worker acks the message on `202`
//! and requeues it on anything else (or on its 300 s timeout), so the handler must report
//! business errors to the work itself and return `Ok`, keeping `Err` for failures worth a
//! redelivery.
//!
//! The handler runs in its own task: if the worker hangs up (timeout), the processing is
//! not cut in the middle, and [`serve`] waits for it before returning. Requests are handled
//! concurrently; a handler that must run one message at a time (pycti's single-flight
//! executor) serialises itself.
//!
//! The token and the body are never logged; each refusal is logged with its status and
//! reason.
//!
//! Bounds (`crate::net::server`): connections are capped (idle ones are evicted for new
//! ones), request heads must arrive within `CONNECTOR_HTTP_HEADER_TIMEOUT`; the bearer is
//! checked before the body is read, the declared `Content-Length` before buffering, the
//! body is read with [`MAX_BODY_BYTES`] as a hard limit (a chunked body is cut there) and
//! within `CONNECTOR_HTTP_BODY_TIMEOUT` (else `408 {"error":"Request body timeout"}`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::jwt;
use crate::net::ServerLimits;

/// The largest body accepted: RabbitMQ's default maximum message size (128 MiB).
pub const MAX_BODY_BYTES: usize = 128 * 1024 * 1024;

/// The health route (OpenCTI 7.261026.0+), served without authentication.
pub const HEALTH_PATH: &str = "/health";

/// Where the callback server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackSettings {
    /// Bind address, e.g. `0.0.0.0:7070` (`CONNECTOR_LISTEN_PROTOCOL_API_PORT`).
    pub bind: SocketAddr,
    /// The POST route, e.g. `/api/callback` (`CONNECTOR_LISTEN_PROTOCOL_API_PATH`).
    pub path: String,
}

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

/// Processes one message body (already known to be JSON). `Ok` ⇒ `202`, `Err` ⇒ `500`; the
/// error text is logged, never sent to the caller.
pub type Handler = Arc<dyn Fn(Vec<u8>) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Binds the listening socket (port `0` picks a free one; see `local_addr`).
pub async fn bind(settings: &CallbackSettings) -> std::io::Result<TcpListener> {
    TcpListener::bind(settings.bind).await
}

/// What every request sees.
struct Shared {
    path: String,
    auth: CallbackAuth,
    handler: Handler,
    tasks: TaskTracker,
    body_timeout: std::time::Duration,
}

/// Serves the callback on `listener` until `shutdown` is cancelled.
///
/// On shutdown it stops accepting connections, lets the requests in flight finish (their
/// handlers included, also those whose caller went away) and returns. Bound the wait with a
/// timeout if the handler can be slow. `path` must start with `/`.
pub async fn serve(
    listener: TcpListener,
    path: String,
    auth: CallbackAuth,
    handler: Handler,
    limits: ServerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if !path.starts_with('/') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("callback path `{path}` does not start with `/`"),
        ));
    }
    let tasks = TaskTracker::new();
    let shared = Arc::new(Shared {
        path,
        auth,
        handler,
        tasks: tasks.clone(),
        body_timeout: limits.body_timeout,
    });
    let addr = listener.local_addr()?;
    tracing::info!(%addr, path = %shared.path, "callback server listening");
    let app = Router::new().fallback(dispatch).with_state(shared);
    let result = crate::net::server::serve("callback", listener, app, limits, shutdown).await;
    tasks.close();
    tasks.wait().await;
    tracing::info!(%addr, "callback server stopped");
    result
}

/// Routes by exact path, so that no configured path can make the router panic.
async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path();
    let method = request.method();
    if path == shared.path && method == Method::POST {
        return callback(&shared, request).await;
    }
    if path == HEALTH_PATH && method == Method::GET {
        return (StatusCode::OK, Json(json!({"status": "ok"}))).into_response();
    }
    if path == shared.path || path == HEALTH_PATH {
        tracing::debug!(status = 405, %method, "callback server: method not allowed");
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            Json(json!({"detail": "Method Not Allowed"})),
        )
            .into_response();
    }
    tracing::debug!(status = 404, %method, "callback server: no such route");
    (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))).into_response()
}

/// `POST <path>`: authenticate, read and check the body, run the handler.
async fn callback(shared: &Shared, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(reason) = authorize(&shared.auth, &parts.headers) {
        tracing::warn!(status = 401, reason = %reason, "callback refused");
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "Invalid credentials"})),
        )
            .into_response();
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        tracing::warn!(
            status = 413,
            limit = MAX_BODY_BYTES,
            "callback refused: body too large"
        );
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"error": "Payload too large"})),
        )
            .into_response();
    }
    let read = tokio::time::timeout(
        shared.body_timeout,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    );
    let bytes = match read.await {
        Ok(Ok(bytes)) => bytes,
        Err(_) => {
            tracing::warn!(
                status = 408,
                timeout_s = shared.body_timeout.as_secs_f64(),
                "callback refused: body not received in time"
            );
            return (
                StatusCode::REQUEST_TIMEOUT,
                Json(json!({"error": "Request body timeout"})),
            )
                .into_response();
        }
        Ok(Err(_)) => {
            tracing::warn!(
                status = 400,
                limit = MAX_BODY_BYTES,
                "callback refused: body unreadable or too large"
            );
            return invalid_json();
        }
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
        tracing::warn!(
            status = 400,
            category = ?e.classify(),
            line = e.line(),
            column = e.column(),
            "callback refused: body is not JSON"
        );
        return invalid_json();
    }
    let size = bytes.len();
    let processing = shared.tasks.spawn((shared.handler)(bytes.to_vec()));
    match processing.await {
        Ok(Ok(())) => {
            tracing::debug!(status = 202, size, "callback message processed");
            (
                StatusCode::ACCEPTED,
                Json(json!({"message": "Message successfully received"})),
            )
                .into_response()
        }
        Ok(Err(error)) => {
            tracing::error!(status = 500, size, %error, "callback message processing failed");
            processing_error()
        }
        Err(join) => {
            let reason = if join.is_panic() {
                "handler panicked"
            } else {
                "handler cancelled"
            };
            tracing::error!(
                status = 500,
                size,
                reason,
                "callback message processing failed"
            );
            processing_error()
        }
    }
}

fn invalid_json() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "Invalid JSON payload"})),
    )
        .into_response()
}

fn processing_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": "Error processing message"})),
    )
        .into_response()
}

/// Checks `Authorization: Bearer <x>`; the reason of a refusal never contains the token.
/// Pure (no I/O): the fuzz target of the callback's request path calls it.
#[doc(hidden)]
pub fn authorize(auth: &CallbackAuth, headers: &HeaderMap) -> Result<(), String> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("no Authorization header")?
        .to_str()
        .map_err(|_| "Authorization header is not visible ASCII")?;
    let (scheme, credentials) = value
        .split_once(' ')
        .ok_or("Authorization header is not `Bearer <token>`")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("Authorization scheme is not Bearer".into());
    }
    let credentials = credentials.trim();
    if credentials.is_empty() {
        return Err("empty bearer token".into());
    }
    match auth {
        CallbackAuth::Token(token) => {
            if constant_time_eq(credentials.as_bytes(), token.as_bytes()) {
                Ok(())
            } else {
                Err("bearer is not the connector token".into())
            }
        }
        CallbackAuth::Jwks(jwks) => jwks.verify(credentials).map_err(|e| format!("jwt: {e}")),
        CallbackAuth::TokenOrJwks(token, jwks) => {
            if constant_time_eq(credentials.as_bytes(), token.as_bytes()) {
                return Ok(());
            }
            jwks.verify(credentials)
                .map_err(|e| format!("bearer is not the connector token, and jwt: {e}"))
        }
    }
}

/// Compares `given` with `expected` in constant time (`subtle`), over the SHA-256 digests
/// of both so that neither the length of the token nor the position of the first
/// difference shows in the time taken. An empty `expected` matches nothing.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    use sha2::Digest as _;
    use subtle::ConstantTimeEq as _;
    if expected.is_empty() {
        return false;
    }
    let (g, e) = (sha2::Sha256::digest(given), sha2::Sha256::digest(expected));
    bool::from(g.as_slice().ct_eq(e.as_slice()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use base64::Engine as _;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    const TOKEN: &str = "d4d2c3f0-0000-4000-8000-000000000001";
    const KEY_PEM_BODY: &str = "MC4CAQAwBQYDK2VwBCIEIHvvrI6EgAJxZN+3d7X4FzQlVV+EjbCMbu8Elw70cRvO";
    const KEY_X: &str = "FwH1mLtkWWueaz_gAPvnHhHeK33dkyaDyH5da2Jd1ao";

    fn jwks() -> jwt::Jwks {
        jwt::Jwks::parse(
            &json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": KEY_X, "kid": "k1", "alg": "EdDSA"}]})
                .to_string(),
        )
        .unwrap()
    }

    fn jwt(exp_offset: i64) -> String {
        let der = base64::engine::general_purpose::STANDARD
            .decode(KEY_PEM_BODY)
            .unwrap();
        let now = chrono::Utc::now().timestamp();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k1".into());
        let claims =
            json!({"iss": "opencti", "sub": "connector", "iat": now, "exp": now + exp_offset});
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&der)).unwrap()
    }

    struct Server {
        base: String,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
        calls: Arc<AtomicUsize>,
    }

    /// A handler that sleeps `delay`, counts its calls, and fails on `{"fail":true}`.
    fn handler(calls: Arc<AtomicUsize>, delay: Duration) -> Handler {
        Arc::new(move |body: Vec<u8>| {
            let calls = calls.clone();
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                let value: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                if value.get("panic").is_some() {
                    panic!("asked to");
                }
                calls.fetch_add(1, Ordering::SeqCst);
                if value.get("fail") == Some(&json!(true)) {
                    return Err("asked to fail".into());
                }
                Ok(())
            })
        })
    }

    async fn start(auth: CallbackAuth, delay: Duration) -> Server {
        let settings = CallbackSettings {
            bind: "127.0.0.1:0".parse().unwrap(),
            path: "/api/callback".into(),
        };
        let listener = bind(&settings).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(serve(
            listener,
            settings.path,
            auth,
            handler(calls.clone(), delay),
            ServerLimits {
                body_timeout: Duration::from_millis(800),
                ..ServerLimits::default()
            },
            shutdown.clone(),
        ));
        Server {
            base,
            shutdown,
            task,
            calls,
        }
    }

    async fn post(
        server: &Server,
        authorization: Option<&str>,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/api/callback", server.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(a) = authorization {
            request = request.header("authorization", a);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    const MESSAGE: &str = r#"{"internal":{"work_id":null},"event":{"entity_id":"x"}}"#;

    #[tokio::test]
    async fn statuses_with_token() {
        let server = start(CallbackAuth::Token(TOKEN.into()), Duration::ZERO).await;
        let bearer = format!("Bearer {TOKEN}");
        let invalid = json!({"error": "Invalid credentials"});
        assert_eq!(post(&server, None, MESSAGE).await, (401, invalid.clone()));
        assert_eq!(
            post(&server, Some(TOKEN), MESSAGE).await,
            (401, invalid.clone())
        );
        assert_eq!(
            post(&server, Some(&format!("Basic {TOKEN}")), MESSAGE).await,
            (401, invalid.clone())
        );
        assert_eq!(
            post(&server, Some("Bearer "), MESSAGE).await,
            (401, invalid.clone())
        );
        assert_eq!(
            post(&server, Some("Bearer wrong"), MESSAGE).await,
            (401, invalid.clone())
        );
        assert_eq!(
            post(&server, Some(&format!("{bearer}x")), MESSAGE).await,
            (401, invalid.clone())
        );
        assert_eq!(post(&server, Some(&jwt(3600)), MESSAGE).await.0, 401);
        // Unauthenticated bad JSON is still 401 (the body is not read).
        assert_eq!(post(&server, None, "{").await, (401, invalid));
        assert_eq!(server.calls.load(Ordering::SeqCst), 0);

        let bad = json!({"error": "Invalid JSON payload"});
        assert_eq!(post(&server, Some(&bearer), "{").await, (400, bad.clone()));
        assert_eq!(post(&server, Some(&bearer), "").await, (400, bad));
        assert_eq!(server.calls.load(Ordering::SeqCst), 0);

        let ok = json!({"message": "Message successfully received"});
        assert_eq!(
            post(&server, Some(&bearer), MESSAGE).await,
            (202, ok.clone())
        );
        assert_eq!(
            post(&server, Some(&format!("bearer {TOKEN}")), MESSAGE).await,
            (202, ok)
        );
        assert_eq!(server.calls.load(Ordering::SeqCst), 2);

        let failed = json!({"error": "Error processing message"});
        assert_eq!(
            post(&server, Some(&bearer), r#"{"fail":true}"#).await,
            (500, failed.clone())
        );
        assert_eq!(
            post(&server, Some(&bearer), r#"{"panic":true}"#).await,
            (500, failed)
        );

        // Health, other routes, other methods.
        let client = reqwest::Client::new();
        let health = client
            .get(format!("{}/health", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status().as_u16(), 200);
        assert_eq!(
            health.json::<serde_json::Value>().await.unwrap(),
            json!({"status": "ok"})
        );
        let other = client
            .get(format!("{}/api/other", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status().as_u16(), 404);
        let get = client
            .get(format!("{}/api/callback", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(get.status().as_u16(), 405);

        server.shutdown.cancel();
        server.task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn statuses_with_jwks() {
        let server = start(CallbackAuth::Jwks(jwks()), Duration::ZERO).await;
        assert_eq!(
            post(&server, Some(&format!("Bearer {}", jwt(3600))), MESSAGE)
                .await
                .0,
            202
        );
        assert_eq!(
            post(&server, Some(&format!("Bearer {}", jwt(-3600))), MESSAGE)
                .await
                .0,
            401
        );
        assert_eq!(
            post(&server, Some(&format!("Bearer {TOKEN}")), MESSAGE)
                .await
                .0,
            401
        );
        server.shutdown.cancel();
        server.task.await.unwrap().unwrap();

        let server = start(
            CallbackAuth::TokenOrJwks(TOKEN.into(), jwks()),
            Duration::ZERO,
        )
        .await;
        assert_eq!(
            post(&server, Some(&format!("Bearer {}", jwt(3600))), MESSAGE)
                .await
                .0,
            202
        );
        assert_eq!(
            post(&server, Some(&format!("Bearer {TOKEN}")), MESSAGE)
                .await
                .0,
            202
        );
        assert_eq!(post(&server, Some("Bearer nope"), MESSAGE).await.0, 401);
        assert_eq!(
            post(&server, Some(&format!("Bearer {}", jwt(-3600))), MESSAGE)
                .await
                .0,
            401
        );
        server.shutdown.cancel();
        server.task.await.unwrap().unwrap();
    }

    /// Sends `head` then `body` on a raw connection; the status line of the answer.
    async fn raw(server: &Server, head: String, body: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = server.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut answer = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
            .await
            .expect("an answer in time")
            .unwrap();
        String::from_utf8_lossy(&answer[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn body_limit_before_buffering_and_body_deadline() {
        let server = start(CallbackAuth::Token(TOKEN.into()), Duration::ZERO).await;
        let head = |length: u64| {
            format!(
                "POST /api/callback HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
            )
        };
        // Declared too large: refused before a byte of the body is read.
        let started = std::time::Instant::now();
        let status = raw(&server, head(MAX_BODY_BYTES as u64 + 1), b"").await;
        assert!(status.starts_with("HTTP/1.1 413"), "{status}");
        assert!(started.elapsed() < Duration::from_millis(500));
        // Declared 100 bytes, 10 sent: cut at the body deadline (0.8 s here).
        let started = std::time::Instant::now();
        let status = raw(&server, head(100), b"{\"a\":12345").await;
        assert!(status.starts_with("HTTP/1.1 408"), "{status}");
        assert!(started.elapsed() >= Duration::from_millis(700));
        // Unauthenticated: 401 without reading the (never sent) body.
        let status = raw(
            &server,
            "POST /api/callback HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".into(),
            b"",
        )
        .await;
        assert!(status.starts_with("HTTP/1.1 401"), "{status}");
        assert_eq!(server.calls.load(Ordering::SeqCst), 0);
        server.shutdown.cancel();
        server.task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn slow_handler_answers_after_processing() {
        let server = start(
            CallbackAuth::Token(TOKEN.into()),
            Duration::from_millis(400),
        )
        .await;
        let started = std::time::Instant::now();
        let (status, _) = post(&server, Some(&format!("Bearer {TOKEN}")), MESSAGE).await;
        assert_eq!(status, 202);
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!(server.calls.load(Ordering::SeqCst), 1);
        server.shutdown.cancel();
        server.task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn shutdown_lets_in_flight_finish_then_stops() {
        let server = start(
            CallbackAuth::Token(TOKEN.into()),
            Duration::from_millis(500),
        )
        .await;
        let url = format!("{}/api/callback", server.base);
        let in_flight = tokio::spawn(
            reqwest::Client::new()
                .post(url.clone())
                .bearer_auth(TOKEN)
                .body(MESSAGE)
                .send(),
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        server.shutdown.cancel();
        let response = in_flight.await.unwrap().unwrap();
        assert_eq!(response.status().as_u16(), 202);
        tokio::time::timeout(Duration::from_secs(5), server.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(server.calls.load(Ordering::SeqCst), 1);
        // No longer listening.
        let after = reqwest::Client::new()
            .post(url)
            .bearer_auth(TOKEN)
            .body(MESSAGE)
            .send()
            .await;
        assert!(after.is_err());
    }

    #[tokio::test]
    async fn path_must_be_absolute() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let err = serve(
            listener,
            "api/callback".into(),
            CallbackAuth::Token(TOKEN.into()),
            handler(calls, Duration::ZERO),
            ServerLimits::default(),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"x", b""));
    }

    #[test]
    fn debug_hides_the_token() {
        let text = format!("{:?}", CallbackAuth::TokenOrJwks(TOKEN.into(), jwks()));
        assert!(!text.contains(TOKEN), "{text}");
        assert!(text.contains("k1"));
    }
}
