//! A proxy in front of the real IVRE web API that injects faults on demand: down (HTTP 503),
//! slow, rate-limited (429) or truncated answers.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does with the next requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebFault {
    /// Forward to IVRE unchanged.
    Pass,
    /// Answer 503 without asking IVRE.
    Down,
    /// Wait this long, then forward.
    Slow(Duration),
    /// Answer 429 with `Retry-After: 1`.
    RateLimited,
    /// Forward, but send only the first half of IVRE's answer.
    Truncated,
}

struct Shared {
    upstream: String,
    fault: Mutex<WebFault>,
    faults: AtomicU64,
    client: reqwest::Client,
}

/// The running proxy.
pub struct WebFaultProxy {
    shared: Arc<Shared>,
    url: String,
    server: tokio::task::JoinHandle<()>,
}

impl WebFaultProxy {
    /// A proxy for `upstream` (`http://HOST:PORT/cgi`); its URL keeps the same path.
    pub async fn start(upstream: &str) -> WebFaultProxy {
        let base = upstream.trim_end_matches('/');
        let (origin, path) = match base
            .find("://")
            .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        {
            Some(k) => (&base[..k], &base[k..]),
            None => (base, ""),
        };
        let shared = Arc::new(Shared {
            upstream: origin.to_owned(),
            fault: Mutex::new(WebFault::Pass),
            faults: AtomicU64::new(0),
            client: reqwest::Client::new(),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WebFaultProxy {
            shared,
            url: format!("http://{addr}{path}"),
            server,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn set(&self, fault: WebFault) {
        *self.shared.fault.lock().unwrap() = fault;
    }

    /// Requests that met a fault.
    pub fn faults(&self) -> u64 {
        self.shared.faults.load(Ordering::SeqCst)
    }
}

impl Drop for WebFaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn forward(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = *shared.fault.lock().unwrap();
    if fault != WebFault::Pass {
        shared.faults.fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        WebFault::Down => {
            return (StatusCode::SERVICE_UNAVAILABLE, "proxy: IVRE is down").into_response()
        }
        WebFault::RateLimited => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "proxy: slow down",
            )
                .into_response()
        }
        WebFault::Slow(delay) => tokio::time::sleep(delay).await,
        WebFault::Pass | WebFault::Truncated => {}
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = shared
        .client
        .request(method, format!("{}{path}", shared.upstream))
        .body(body);
    for (name, value) in &headers {
        if name != "host" {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = answer.status();
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let mut bytes = answer.bytes().await.unwrap_or_default().to_vec();
    if fault == WebFault::Truncated {
        bytes.truncate(bytes.len() / 2);
    }
    (status, [("content-type", content_type)], bytes).into_response()
}
