//! The daemon's HTTP servers (the API-mode callback, `/health` `/ready` `/metrics`),
//! bounded whatever the clients do.
//!
//! - **Connections are capped** ([`ServerLimits::max_connections`] per server, so that
//!   the file descriptors they take stay well below the process's limit and the daemon can
//!   still reach the platform, the broker and IVRE). When the cap is reached, a new
//!   connection evicts the oldest one that has no request in progress (a connection that
//!   never sent a complete request head, or an idle keep-alive one); when every connection
//!   has a request in progress, the new one is closed at once. So idle or half-open
//!   connections, however many, cannot keep a real request (a health probe, a worker's
//!   POST) out: it evicts one of them.
//! - **Request heads have a deadline** ([`ServerLimits::header_timeout`], hyper's
//!   `header_read_timeout`, also between the requests of a keep-alive connection): a client
//!   that connects and sends nothing, or a few bytes a minute, is dropped.
//! - Bodies: the callback reads its body with a deadline ([`ServerLimits::body_timeout`])
//!   and a size limit checked before buffering (`opencti::transport::http_callback`).
//! - Heads are at most [`MAX_HEAD_BYTES`] (hyper's read buffer).
//!
//! On shutdown the server stops accepting, closes the connections without a request in
//! progress (idle, or whose head is still coming), lets the requests in progress finish
//! and returns once every connection is closed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// The largest request head (request line and headers) read, in bytes.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The bounds of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections open at once (`CONNECTOR_HTTP_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Time to receive a whole request head (`CONNECTOR_HTTP_HEADER_TIMEOUT`).
    pub header_timeout: Duration,
    /// Time to receive a whole request body (`CONNECTOR_HTTP_BODY_TIMEOUT`).
    pub body_timeout: Duration,
}

impl Default for ServerLimits {
    /// The table's defaults (`CONNECTOR_HTTP_*`).
    fn default() -> Self {
        crate::config::Problems::defaults(ServerLimits::read)
    }
}

/// One open connection, as the accept loop sees it.
struct Conn {
    /// Requests in progress on it.
    busy: Arc<AtomicUsize>,
    /// Cancelled to close it.
    evict: CancellationToken,
}

/// Counts a request in progress until dropped.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(counter: &Arc<AtomicUsize>) -> Busy {
        counter.fetch_add(1, Ordering::SeqCst);
        Busy(counter.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the accept loop did, for tests and logs.
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// Connections accepted.
    pub accepted: AtomicUsize,
    /// Connections closed to make room for a new one.
    pub evicted: AtomicUsize,
    /// New connections closed at once: every open one had a request in progress.
    pub refused: AtomicUsize,
}

/// Serves `app` on `listener` within `limits` until `shutdown` is cancelled (see the
/// module documentation). `name` names the server in logs.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_counted(
        name,
        listener,
        app,
        limits,
        shutdown,
        Arc::new(ServerCounters::default()),
    )
    .await
}

/// [`serve`], counting what it does in `counters`.
pub async fn serve_counted(
    name: &'static str,
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
    counters: Arc<ServerCounters>,
) -> std::io::Result<()> {
    let max = limits.max_connections.max(1);
    let conns: Arc<Mutex<BTreeMap<u64, Conn>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let tasks = TaskTracker::new();
    let mut next_id: u64 = 0;
    let mut last_warning: Option<Instant> = None;
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was
                    // accepted: wait a little rather than spin.
                    tracing::warn!(server = name, error = %e, "accepting a connection failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                    continue;
                }
            },
        };
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let busy = Arc::new(AtomicUsize::new(0));
        let evict = CancellationToken::new();
        {
            let Ok(mut open) = conns.lock() else { break };
            if open.len() >= max {
                let victim = open
                    .iter()
                    .find(|(_, c)| c.busy.load(Ordering::SeqCst) == 0)
                    .map(|(id, _)| *id);
                match victim.and_then(|id| open.remove(&id)) {
                    Some(conn) => {
                        conn.evict.cancel();
                        counters.evicted.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        counters.refused.fetch_add(1, Ordering::Relaxed);
                        if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                            tracing::warn!(
                                server = name,
                                max_connections = max,
                                "every connection has a request in progress: new connections are closed"
                            );
                            last_warning = Some(Instant::now());
                        }
                        drop(stream);
                        continue;
                    }
                }
            }
            open.insert(
                next_id,
                Conn {
                    busy: busy.clone(),
                    evict: evict.clone(),
                },
            );
        }
        let id = next_id;
        next_id += 1;
        let (app, conns, shutdown) = (app.clone(), conns.clone(), shutdown.clone());
        let in_progress = busy.clone();
        tasks.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let guard = Busy::new(&busy);
                let app = app.clone();
                async move {
                    let response = app.oneshot(request.map(axum::body::Body::new)).await;
                    drop(guard);
                    response
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(MAX_HEAD_BYTES);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            let mut closing = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(server = name, error = %e, "connection closed");
                        }
                        break;
                    }
                    _ = evict.cancelled() => break,
                    _ = shutdown.cancelled(), if !closing => {
                        // No request in progress (idle, or a head still coming): closed
                        // now; else the response is sent first.
                        if in_progress.load(Ordering::SeqCst) == 0 {
                            break;
                        }
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
            if let Ok(mut open) = conns.lock() {
                open.remove(&id);
            }
        });
    }
    drop(listener);
    tasks.close();
    tasks.wait().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn start(
        limits: ServerLimits,
    ) -> (
        std::net::SocketAddr,
        CancellationToken,
        Arc<ServerCounters>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    "slow"
                }),
            );
        let shutdown = CancellationToken::new();
        let counters = Arc::new(ServerCounters::default());
        let task = tokio::spawn(serve_counted(
            "test",
            listener,
            app,
            limits,
            shutdown.clone(),
            counters.clone(),
        ));
        (addr, shutdown, counters, task)
    }

    /// One request on a new connection; the status line.
    async fn get_status(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok(String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned())
    }

    /// Whether the server closed `stream` (EOF or reset) within `within`.
    async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 512];
        loop {
            match tokio::time::timeout(within, stream.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue, // e.g. a 408 before closing
            }
        }
    }

    #[tokio::test]
    async fn idle_connections_are_evicted_for_new_ones() {
        let limits = ServerLimits {
            max_connections: 8,
            header_timeout: Duration::from_secs(30),
            ..Default::default()
        };
        let (addr, shutdown, counters, task) = start(limits).await;
        let mut idle = Vec::new();
        for _ in 0..50 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap(); // never finished
            idle.push(s);
        }
        for _ in 0..5 {
            let started = Instant::now();
            assert_eq!(
                get_status(addr, "/health").await.unwrap(),
                "HTTP/1.1 200 OK"
            );
            assert!(started.elapsed() < Duration::from_secs(1));
        }
        assert!(counters.evicted.load(Ordering::Relaxed) >= 42);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn busy_connections_are_never_evicted() {
        let limits = ServerLimits {
            max_connections: 2,
            ..Default::default()
        };
        let (addr, shutdown, counters, task) = start(limits).await;
        let slow = tokio::spawn(async move {
            tokio::join!(get_status(addr, "/slow"), get_status(addr, "/slow"))
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Both slots have a request in progress: a third connection is closed at once.
        let refused = get_status(addr, "/health").await;
        assert!(
            refused.as_deref().map_or(true, str::is_empty),
            "{refused:?}"
        );
        assert_eq!(counters.refused.load(Ordering::Relaxed), 1);
        let (a, b) = slow.await.unwrap();
        assert_eq!(a.unwrap(), "HTTP/1.1 200 OK");
        assert_eq!(b.unwrap(), "HTTP/1.1 200 OK");
        assert_eq!(
            get_status(addr, "/health").await.unwrap(),
            "HTTP/1.1 200 OK"
        );
        shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn silent_and_idle_keep_alive_connections_time_out() {
        let limits = ServerLimits {
            header_timeout: Duration::from_millis(500),
            ..Default::default()
        };
        let (addr, shutdown, _, task) = start(limits).await;
        // Connected, never a byte.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        // A partial head.
        let mut partial = TcpStream::connect(addr).await.unwrap();
        partial.write_all(b"GET /health HT").await.unwrap();
        // One request, then idle on a keep-alive connection.
        let mut kept = TcpStream::connect(addr).await.unwrap();
        kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = kept.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        for stream in [&mut silent, &mut partial, &mut kept] {
            assert!(closed_within(stream, Duration::from_secs(3)).await);
        }
        shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn shutdown_lets_requests_in_progress_finish() {
        let (addr, shutdown, _, task) = start(ServerLimits::default()).await;
        let slow = tokio::spawn(get_status(addr, "/slow"));
        let mut idle = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        shutdown.cancel();
        assert_eq!(slow.await.unwrap().unwrap(), "HTTP/1.1 200 OK");
        assert!(closed_within(&mut idle, Duration::from_secs(3)).await);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
