//! The callback server on a real socket: statuses, authentication (token, JWT), body
//! limits and deadlines, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::auth::constant_time_eq;
use super::*;
use crate::opencti::transport::jwt;
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
    let claims = json!({"iss": "opencti", "sub": "connector", "iat": now, "exp": now + exp_offset});
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&der)).unwrap()
}

struct Server {
    base: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    calls: Arc<AtomicUsize>,
}

/// A handler that sleeps `delay`, counts its calls, and fails on `{"fail":true}`.
fn handler(calls: Arc<AtomicUsize>, delay: Duration) -> ProcessBody {
    Arc::new(move |body: Vec<u8>| {
        let calls = calls.clone();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            let value: serde_json::Value =
                serde_json::from_slice(&body).map_err(|_| NotProcessed::Temporary)?;
            if value.get("panic").is_some() {
                panic!("asked to");
            }
            calls.fetch_add(1, Ordering::SeqCst);
            if value.get("fail") == Some(&json!(true)) {
                return Err(NotProcessed::Temporary);
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
