//! Tests of the outgoing connections' settings: the CA file read and checked, proxies
//! checked and their credentials hidden from `Debug`, lower-case proxy variables (used
//! when the upper-case one is unset), and requests going through the proxy unless
//! `NO_PROXY` excludes them.
use super::*;
use crate::config::Env;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/net/ca.pem");

fn config(pairs: &[(&str, &str)]) -> ConfigFile {
    ConfigFile::from_env(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// A server answering `ok` to one request and giving back its request line.
async fn one_shot() -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed early");
            head.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&head).into_owned();
        text.lines().next().unwrap_or_default().to_owned()
    });
    (addr, task)
}

#[test]
fn ca_file_is_read_and_checked() {
    let ok = NetSettings::from_config(&config(&[("SSL_CERT_FILE", CA)])).unwrap();
    assert_eq!(ok.ca_certificates().unwrap().len(), 1);
    assert_eq!(ok.mongo_ca_file(), Some(Path::new(CA)));
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let missing = dir.path().join("missing.pem");
    for path in [&empty, &missing] {
        let err = NetSettings::from_config(&config(&[("SSL_CERT_FILE", path.to_str().unwrap())]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SSL_CERT_FILE") && err.contains(path.to_str().unwrap()),
            "{err}"
        );
    }
}

#[test]
fn proxies_are_checked_and_hidden() {
    let s = NetSettings::from_config(&config(&[
        ("HTTPS_PROXY", "http://user:hunter2@proxy:3128"),
        ("NO_PROXY", "localhost,.internal,10.0.0.0/8"),
    ]))
    .unwrap();
    assert_eq!(
        s.no_proxy.as_deref(),
        Some("localhost,.internal,10.0.0.0/8")
    );
    assert!(!format!("{s:?}").contains("hunter2"));
    let err = NetSettings::from_config(&config(&[("HTTP_PROXY", "http://[::1")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("HTTP_PROXY"), "{err}");
    assert_eq!(
        NetSettings::from_config(&ConfigFile::default()).unwrap(),
        NetSettings::default()
    );
}

#[test]
fn lower_case_proxies_stand_in_at_the_edge() {
    let env: Env = [
        ("http_proxy", "http://lower:1"),
        ("HTTPS_PROXY", "http://upper:2"),
        ("https_proxy", "http://lower:2"),
        ("no_proxy", "localhost"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let s = NetSettings::from_config(&ConfigFile::from_env(
        crate::config::with_lower_case_proxies(env),
    ))
    .unwrap();
    assert_eq!(s.http_proxy.as_deref(), Some("http://lower:1"));
    assert_eq!(s.https_proxy.as_deref(), Some("http://upper:2"));
    assert_eq!(s.no_proxy.as_deref(), Some("localhost"));
}

#[tokio::test]
async fn requests_go_through_the_proxy_unless_excluded() {
    let (proxy, proxied) = one_shot().await;
    let (direct, reached) = one_shot().await;
    let settings = NetSettings {
        http_proxy: Some(format!("http://{proxy}")),
        no_proxy: Some("127.0.0.1".into()),
        ..Default::default()
    };
    let client = client_builder(&settings).unwrap().build().unwrap();
    let body = client
        .get("http://origin.invalid/x")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok");
    assert_eq!(
        proxied.await.unwrap(),
        "GET http://origin.invalid/x HTTP/1.1"
    );
    client
        .get(format!("http://{direct}/y"))
        .send()
        .await
        .unwrap();
    assert_eq!(reached.await.unwrap(), "GET /y HTTP/1.1");
}
