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
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod auth;
#[cfg(test)]
mod tests;

use crate::net::ServerLimits;
pub use auth::{authorize, CallbackAuth, Refusal};

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

/// Why a message body was not processed: answered `500`, so the worker requeues it.
#[derive(Debug, thiserror::Error)]
pub enum NotProcessed {
    /// A passing failure (the platform or the broker is down).
    #[error("temporary failure; retry later")]
    Temporary,
    /// The connector is stopping.
    #[error("the connector is stopping")]
    Stopping,
}

/// Processes one message body (already known to be JSON). `Ok` ⇒ `202`, `Err` ⇒ `500`; the
/// error is logged, never sent to the caller.
pub type ProcessBody =
    Arc<dyn Fn(Vec<u8>) -> BoxFuture<'static, Result<(), NotProcessed>> + Send + Sync>;

/// Binds the listening socket (port `0` picks a free one; see `local_addr`).
pub async fn bind(settings: &CallbackSettings) -> std::io::Result<TcpListener> {
    TcpListener::bind(settings.bind).await
}

/// What every request sees.
struct Shared {
    path: String,
    auth: CallbackAuth,
    handler: ProcessBody,
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
    handler: ProcessBody,
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
