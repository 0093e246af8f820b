//! The network edges: the daemon's HTTP servers under idle connections, TLS with private
//! CAs (`OPENCTI_SSL_CA`, `SSL_CERT_FILE`), the warning when verification is off.

use crate::daemon::{free_port, manual, processed, started, Daemon};
use crate::util::*;
use opencti_double::{DoubleOptions, PlatformDouble};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// The soft limit of open files of this process (`/proc/self/limits`).
fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// `GET path` on a new connection, within `within`: the status code.
async fn get_within(port: &str, path: &str, within: Duration) -> Result<u16, String> {
    let attempt = async {
        let mut stream = TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&answer);
        text.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status in {text:?}"))
    };
    tokio::time::timeout(within, attempt)
        .await
        .map_err(|_| format!("no answer within {within:?}"))?
}

/// Opens `n` connections to `port` that never send a whole request: half of them send
/// nothing, half a request line without its end.
async fn idle_connections(port: &str, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .expect("connect");
        if i % 2 == 1 {
            let _ = s
                .write_all(b"POST /api/callback HTTP/1.1\r\nHost: x\r\n")
                .await;
        }
        out.push(s);
    }
    out
}

/// Item 5 of the hardening issue: 2,000 idle half-open connections on each of the
/// daemon's HTTP servers (the API-mode callback and the health server) do not stop
/// `/health` answering within a second, the daemon pinging the platform, nor a worker's
/// callback being processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_starve_neither_health_nor_pings() {
    const IDLE: usize = 2_000;
    let limit = open_files_limit();
    assert!(
        limit >= 2 * IDLE as u64 + 500,
        "this test opens {} connections: raise the open files limit (ulimit -n, now {limit})",
        2 * IDLE
    );
    let data = lab_snapshot();
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let port = free_port().to_string();
    let health_port = free_port().to_string();
    let uri = format!("http://127.0.0.1:{port}");
    let _daemon = Daemon::start(
        &double,
        data.path(),
        &[
            ("CONNECTOR_LISTEN_PROTOCOL", "API"),
            ("CONNECTOR_LISTEN_PROTOCOL_API_PORT", &port),
            ("CONNECTOR_LISTEN_PROTOCOL_API_URI", &uri),
            ("CONNECTOR_LISTEN_PROTOCOL_API_BIND", "127.0.0.1"),
            ("CONNECTOR_METRICS_PORT", &health_port),
            ("CONNECTOR_HEALTH_BIND", "127.0.0.1"),
            // Long enough that no idle connection is timed out during the test: only
            // the cap and the eviction keep the servers answering.
            ("CONNECTOR_HTTP_HEADER_TIMEOUT", "120"),
        ],
    );
    started(&double).await;
    // The callback server listens once registered.
    let deadline = Instant::now() + Duration::from_secs(20);
    while get_within(&port, "/health", Duration::from_secs(1)).await != Ok(200) {
        assert!(
            Instant::now() < deadline,
            "the callback server never listened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let started_at = Instant::now();
    let mut held = idle_connections(&port, IDLE).await;
    held.extend(idle_connections(&health_port, IDLE).await);
    let opened_in = started_at.elapsed();
    let pings_before = double.calls_of("pingConnector").len();

    let mut worst = Duration::ZERO;
    for round in 0..10 {
        for (p, path) in [
            (&port, "/health"),
            (&health_port, "/health"),
            (&health_port, "/ready"),
        ] {
            let t = Instant::now();
            let status = get_within(p, path, Duration::from_secs(1)).await;
            assert_eq!(
                status,
                Ok(200),
                "{path} on port {p}, round {round}, with {} idle connections",
                held.len()
            );
            worst = worst.max(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Pings go on (CONNECTOR_PING_INTERVAL=1 in the helper).
    let deadline = Instant::now() + Duration::from_secs(10);
    while double.calls_of("pingConnector").len() < pings_before + 3 {
        assert!(
            Instant::now() < deadline,
            "the daemon stopped pinging with {} idle connections open",
            held.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A worker's callback is still processed.
    let entity = crate::daemon::ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    let body = manual(&entity, "work_idle").to_string();
    let (status, _) = double
        .post_callback(
            &format!("{uri}/api/callback"),
            body.as_bytes(),
            Some(&double.token()),
        )
        .await;
    assert_eq!(status, 202);
    processed(&double, "work_idle").await;
    println!(
        "{} idle connections opened in {opened_in:?}; slowest /health or /ready: {worst:?}",
        held.len()
    );
    drop(held);
}

// ---------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------

fn tls_file(name: &str) -> String {
    fixture(&format!("net/tls/{name}"))
        .to_string_lossy()
        .into_owned()
}

/// An HTTPS server with the certificate of `tests/data/net/tls/server.pem` (for
/// `127.0.0.1` and `localhost`, signed by the test CA `ca.pem`). It answers every
/// request: `/graphql` with `about { version }`, anything else with `[]`; it keeps the
/// request heads it saw.
struct TlsServer {
    port: u16,
    heads: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tls_server() -> TlsServer {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(tls_file("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(tls_file("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to do.
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = vec![0u8; 16 * 1024];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&got).into_owned();
                let body = if head.starts_with("POST /graphql") {
                    r#"{"data":{"about":{"version":"6.8.0"}}}"#
                } else {
                    "[]"
                };
                seen.lock().unwrap().push(head);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    TlsServer { port, heads, task }
}

fn daemon_settings(pairs: &[(&str, &str)]) -> ivre_connector::config::daemon::Settings {
    let mut env: Vec<(String, String)> = [
        ("OPENCTI_TOKEN", "test-token"),
        ("IVRE_MAX_TLP", "TLP:AMBER"),
    ]
    .iter()
    .chain(pairs)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.sort();
    let config = ivre_connector::config::ConfigFile::from_env(env.into_iter().collect());
    ivre_connector::config::daemon::Settings::from_config(&config).unwrap()
}

/// Item 7: a platform behind a private CA is reached with verification on when its CA is
/// given by `OPENCTI_SSL_CA` or `SSL_CERT_FILE`, and refused without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencti_over_tls_with_a_private_ca() {
    let server = tls_server().await;
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}", server.port);
        let ca = tls_file("ca.pem");
        for (case, extra, ok) in [
            ("no CA", vec![], false),
            (
                "OPENCTI_SSL_CA",
                vec![("OPENCTI_SSL_CA", ca.as_str())],
                true,
            ),
            ("SSL_CERT_FILE", vec![("SSL_CERT_FILE", ca.as_str())], true),
        ] {
            let mut pairs = vec![
                ("OPENCTI_URL", url.as_str()),
                ("OPENCTI_SSL_VERIFY", "true"),
            ];
            pairs.extend(extra);
            let settings = daemon_settings(&pairs);
            let api = ivre_connector::opencti::protocol::api::Api::new(&settings).unwrap();
            let version = api.version().await;
            if ok {
                assert_eq!(version.unwrap(), "6.8.0", "{case} {url}");
            } else {
                let err = version.unwrap_err().to_string();
                assert!(
                    err.to_lowercase().contains("certificate")
                        || err.to_lowercase().contains("unknownissuer")
                        || err.contains("unreachable"),
                    "{case} {url}: {err}"
                );
            }
        }
    }
    // pycti's default (verification off) still reaches it without a CA.
    let url = format!("https://127.0.0.1:{}", server.port);
    let settings = daemon_settings(&[("OPENCTI_URL", url.as_str())]);
    let api = ivre_connector::opencti::protocol::api::Api::new(&settings).unwrap();
    assert_eq!(api.version().await.unwrap(), "6.8.0");
}

/// Item 7: IVRE's web API behind a private CA, with `SSL_CERT_FILE`; its fragment
/// headers go over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivre_web_api_over_tls_with_a_private_ca() {
    use ivre_connector::live::web::WebSource;
    use ivre_connector::net::NetSettings;
    let server = tls_server().await;
    let url = format!("https://localhost:{}/cgi#X-API-Key=tls-secret", server.port);
    let without =
        WebSource::with_net(&url, Duration::from_secs(5), &NetSettings::default()).unwrap();
    let err = without
        .page(ivre_connector::ivre::RecordKind::Scan, None, 0, 10)
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains("tls-secret"), "{err}");
    let net = NetSettings {
        ca_file: Some(tls_file("ca.pem").into()),
        ..Default::default()
    };
    let with = WebSource::with_net(&url, Duration::from_secs(5), &net).unwrap();
    let records = with
        .page(ivre_connector::ivre::RecordKind::Scan, None, 0, 10)
        .await
        .unwrap();
    assert!(records.is_empty());
    let heads = server.heads.lock().unwrap().clone();
    assert!(
        heads.iter().any(|h| h.starts_with("GET /cgi/scans")
            && h.to_lowercase().contains("x-api-key: tls-secret")),
        "{heads:?}"
    );
}

/// Item 7: starting with `OPENCTI_SSL_VERIFY=false` against an `https://` URL warns at
/// every log level, also when logs are filtered out entirely; not against `http://`.
#[test]
fn verification_off_against_https_warns_at_every_level() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(tls_server());
    let data = lab_snapshot();
    let https = format!("https://127.0.0.1:{}", server.port);
    let http = format!("http://127.0.0.1:{}", server.port);
    for (url, level, filter, json, warned) in [
        (&https, "error", None, "true", true),
        (&https, "error", Some("off"), "true", true),
        (&https, "debug", None, "false", true),
        (&https, "error", None, "false", true),
        (&http, "debug", None, "true", false),
    ] {
        let mut cmd = connector();
        cmd.arg("--data-dir")
            .arg(data.path())
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("OPENCTI_URL", url)
            .env("OPENCTI_TOKEN", "test-token")
            .env("IVRE_MAX_TLP", "TLP:AMBER")
            .env("CONNECTOR_LOG_LEVEL", level)
            .env("OPENCTI_JSON_LOGGING", json)
            .env("CONNECTOR_METRICS_PORT", free_port().to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some(f) = filter {
            cmd.env("IVRE_LOG", f);
        }
        let mut child = cmd.spawn().unwrap();
        // The warning comes before the platform is asked anything; give it 3 s.
        std::thread::sleep(Duration::from_secs(3));
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr
            .lines()
            .find(|l| l.contains("OPENCTI_SSL_VERIFY is false"));
        assert_eq!(
            line.is_some(),
            warned,
            "{url} {level} {filter:?}:\n{stderr}"
        );
        if let Some(line) = line {
            if json == "true" {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["level"], "WARNING");
            } else {
                assert!(line.contains("WARN"), "{line}");
            }
        }
    }
}
