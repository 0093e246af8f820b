//! IVRE's web API as a source (`docs/ivre-records.md` §3.3, §3.4): `http(s)://host/cgi#Header=value&…`,
//! as IVRE's own `http://` backend takes it (the fragment holds request headers, e.g. the
//! `X-API-Key` that IVRE's anti-CSRF check wants).
//!
//! Searches go through the `f=` JSON filter, where a user value can only be a JSON
//! string or number argument (never a `q=` token, a regex or a URL fragment). Answers are
//! read as JSON arrays (`format=json`), so that IVRE 0.9.20's truncated `/cgi/passive`
//! answers (HTTP 200, body cut when a certificate record crashes the server) fail to parse
//! and are reported as truncated, never taken as complete.
//!
//! Answers are read with a size limit ([`MAX_ANSWER_BYTES`], checked on `Content-Length`
//! and while the body streams in): a page too large is asked again in smaller pages, down
//! to one record; a search keeps at most [`MAX_SEARCH_BYTES`] of answers.

use crate::index::Query;
use crate::ivre::RecordKind;
use crate::live::percent_decode;
use crate::net::NetSettings;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::time::Duration;

/// Records per page.
pub const PAGE: usize = 200;
/// Largest answer body read (one page, or one `ipdata`).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// Most answer bytes one search ([`WebSource::collect`]) keeps in memory.
pub const MAX_SEARCH_BYTES: usize = 256 * 1024 * 1024;

/// Why the web API did not answer.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("invalid IVRE web API URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("IVRE web API {url} is unreachable: {reason}")]
    Transport { url: String, reason: String },
    #[error("IVRE web API {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("IVRE web API {url} is rate limiting (retry after {retry_after:?})")]
    RateLimited {
        url: String,
        retry_after: Option<Duration>,
    },
    #[error("IVRE web API {url} sent a truncated answer (IVRE 0.9.20 /cgi/passive bug with certificate records): {reason}")]
    Truncated { url: String, reason: String },
    #[error("IVRE web API {url} sent an answer larger than {limit} bytes: not read")]
    TooLarge { url: String, limit: usize },
}

impl WebError {
    /// Worth retrying later.
    pub fn is_transient(&self) -> bool {
        match self {
            WebError::Transport { .. }
            | WebError::RateLimited { .. }
            | WebError::Truncated { .. } => true,
            WebError::Status { status, .. } => *status >= 500,
            WebError::Url { .. } | WebError::TooLarge { .. } => false,
        }
    }
}

/// An IVRE web API.
#[derive(Clone)]
pub struct WebSource {
    client: reqwest::Client,
    base: String,
    /// `base` without credentials, for messages.
    shown: String,
    /// [`MAX_ANSWER_BYTES`] (smaller in tests).
    max_answer: usize,
    /// [`MAX_SEARCH_BYTES`] (smaller in tests).
    max_search: usize,
}

impl std::fmt::Debug for WebSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSource")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

/// `Header=value&…` from the URL fragment.
fn fragment_headers(url: &str, fragment: &str) -> Result<HeaderMap, WebError> {
    let mut headers = HeaderMap::new();
    for pair in fragment.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = |reason: &str| WebError::Url {
            url: crate::logging::redact_url(url),
            reason: format!("header `{name}` in the fragment: {reason}"),
        };
        let name = HeaderName::from_bytes(percent_decode(name).as_bytes())
            .map_err(|_| bad("invalid name"))?;
        let value =
            HeaderValue::from_str(&percent_decode(value)).map_err(|_| bad("invalid value"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// The route of a record kind.
pub fn route(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Scan => "scans",
        RecordKind::View => "view",
        RecordKind::Passive => "passive",
    }
}

/// The `f=` filter of a search, as IVRE's `http://` backend builds it; `None` when the
/// search does not apply to the kind.
pub fn flt(kind: RecordKind, query: &Query) -> Option<Value> {
    let host_kind = matches!(kind, RecordKind::Scan | RecordKind::View);
    Some(match query {
        Query::Host(ip) => json!({"f": "host", "a": [ip.to_string()]}),
        Query::Asn(n) => json!({"f": "asnum", "a": [n]}),
        Query::Domain(name) if host_kind => json!({"f": "domain", "a": [name]}),
        Query::DnsName(name) if !host_kind => json!({"f": "dns", "a": [name]}),
        Query::DnsTarget(name) if !host_kind => {
            json!({"f": "dns", "a": [name], "k": {"reverse": true}})
        }
        Query::Mac(mac) => json!({"f": "mac", "a": [crate::index::keys::format_mac(mac)]}),
        Query::Cert(hash) => {
            let mut k = Map::new();
            k.insert(hash.algorithm().into(), hex::encode(hash.bytes()).into());
            json!({"f": "cert", "k": k})
        }
        _ => return None,
    })
}

/// The `f=` filter of records changed after `epoch` (incremental pulls): passive records
/// last seen after it (`searchnewer(…, new=False)`), scans started after it
/// (`searchtimerange`).
pub fn since_flt(kind: RecordKind, epoch: i64) -> Option<Value> {
    let at = |t: i64| json!({"f": "datetime", "a": [t]});
    match kind {
        RecordKind::Passive => Some(json!({"f": "newer", "a": [at(epoch)], "k": {"new": false}})),
        RecordKind::Scan => {
            Some(json!({"f": "timerange", "a": [at(epoch + 1), at(4_102_444_800)]}))
        }
        RecordKind::View => None,
    }
}

impl WebSource {
    /// From an IVRE `http(s)://…/cgi#Header=value` URL, without proxy or extra CA.
    pub fn new(url: &str, timeout: Duration) -> Result<WebSource, WebError> {
        WebSource::with_net(url, timeout, &NetSettings::default())
    }

    /// From an IVRE `http(s)://…/cgi#Header=value` URL, through the proxies and with the
    /// CA certificates of `net`.
    pub fn with_net(
        url: &str,
        timeout: Duration,
        net: &NetSettings,
    ) -> Result<WebSource, WebError> {
        let (base, fragment) = url.split_once('#').unwrap_or((url, ""));
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(WebError::Url {
                url: crate::logging::redact_url(url),
                reason: "not an http(s) URL".into(),
            });
        }
        let mut headers = fragment_headers(url, fragment)?;
        if !headers.contains_key("x-api-key")
            && !headers.contains_key("referer")
            && !headers.contains_key("authorization")
        {
            // IVRE refuses requests without one of these (anti-CSRF); any value passes.
            headers.insert("x-api-key", HeaderValue::from_static("ivre-connector"));
        }
        let client = crate::net::client_builder(net)
            .map_err(|e| WebError::Url {
                url: crate::logging::redact_url(url),
                reason: e.to_string(),
            })?
            .default_headers(headers)
            .user_agent(concat!("ivre-connector/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .build()
            .map_err(|e| WebError::Url {
                url: crate::logging::redact_url(url),
                reason: e.to_string(),
            })?;
        let base = base.trim_end_matches('/').to_owned();
        Ok(WebSource {
            client,
            shown: crate::logging::redact_url(&base),
            base,
            max_answer: MAX_ANSWER_BYTES,
            max_search: MAX_SEARCH_BYTES,
        })
    }

    /// The same source with other answer limits (bytes of one answer, of one search).
    pub fn with_limits(mut self, max_answer: usize, max_search: usize) -> WebSource {
        self.max_answer = max_answer;
        self.max_search = max_search;
        self
    }

    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<String, WebError> {
        let url = format!("{}/{path}", self.base);
        let shown = format!("{}/{path}", self.shown);
        let response = self
            .client
            .get(&url)
            .query(query)
            .send()
            .await
            .map_err(|e| WebError::Transport {
                url: shown.clone(),
                reason: e.without_url().to_string(),
            })?;
        let status = response.status().as_u16();
        if status == 429 {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(WebError::RateLimited {
                url: shown,
                retry_after,
            });
        }
        if status != 200 {
            return Err(WebError::Status { url: shown, status });
        }
        read_capped(response, &shown, self.max_answer).await
    }

    /// One page of records of `kind` matching `f` (all records when `None`): up to
    /// `limit` records, fewer only at the end. An answer over the size limit is asked
    /// again in pages half as large (down to one record: a single record over the limit
    /// is an error).
    pub async fn page(
        &self,
        kind: RecordKind,
        f: Option<&Value>,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Value>, WebError> {
        let mut out = Vec::new();
        let mut step = limit;
        while out.len() < limit {
            let want = step.min(limit - out.len());
            match self.page_once(kind, f, skip + out.len(), want).await {
                Ok(records) => {
                    let end = records.len() < want;
                    out.extend(records);
                    if end {
                        break;
                    }
                }
                Err(WebError::TooLarge { url, limit }) => {
                    if want <= 1 {
                        return Err(WebError::TooLarge { url, limit });
                    }
                    step = want / 2;
                    tracing::debug!(url = %url, records = step, "answer over the size limit: asking for smaller pages");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn page_once(
        &self,
        kind: RecordKind,
        f: Option<&Value>,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Value>, WebError> {
        let mut query = vec![
            ("q", format!("skip:{skip} limit:{limit}")),
            ("format", "json".to_owned()),
        ];
        if let Some(f) = f {
            query.push(("f", f.to_string()));
        }
        let body = self.get(route(kind), &query).await?;
        let shown = format!("{}/{}", self.shown, route(kind));
        let value: Value = serde_json::from_str(&body).map_err(|e| WebError::Truncated {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        match value {
            Value::Array(records) => Ok(records),
            other => Err(WebError::Truncated {
                url: shown,
                reason: format!(
                    "expected a JSON array, got {}",
                    other.to_string().chars().take(80).collect::<String>()
                ),
            }),
        }
    }

    /// Every record of `kind` matching `query`, at most `limit`.
    pub async fn search(
        &self,
        kind: RecordKind,
        query: &Query,
        limit: Option<usize>,
    ) -> Result<Vec<Value>, WebError> {
        let Some(f) = flt(kind, query) else {
            return Ok(Vec::new());
        };
        self.collect(kind, Some(&f), limit).await
    }

    /// Pages through the records matching `f`.
    pub async fn collect(
        &self,
        kind: RecordKind,
        f: Option<&Value>,
        limit: Option<usize>,
    ) -> Result<Vec<Value>, WebError> {
        let mut out = Vec::new();
        let mut bytes = 0;
        loop {
            let want = limit.map_or(PAGE, |l| PAGE.min(l.saturating_sub(out.len())));
            if want == 0 {
                break;
            }
            let page = self.page(kind, f, out.len(), want).await?;
            let done = page.len() < want;
            // The records' size as JSON text: what the answers held.
            bytes += page.iter().map(json_len).sum::<usize>();
            if bytes > self.max_search {
                return Err(WebError::TooLarge {
                    url: format!("{}/{}", self.shown, route(kind)),
                    limit: self.max_search,
                });
            }
            out.extend(page);
            if done {
                break;
            }
        }
        Ok(out)
    }

    /// `/cgi/ipdata/<addr>`: IVRE's `infos_byip`.
    pub async fn ipdata(&self, ip: IpAddr) -> Result<Option<Map<String, Value>>, WebError> {
        let body = self.get(&format!("ipdata/{ip}"), &[]).await?;
        match serde_json::from_str::<Value>(&body) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(_) => Ok(None),
            Err(e) => Err(WebError::Truncated {
                url: format!("{}/ipdata", self.shown),
                reason: e.to_string(),
            }),
        }
    }
}

/// The length of `value` as compact JSON, without building the text.
fn json_len(value: &Value) -> usize {
    usize::try_from(super::json_size(value)).unwrap_or(usize::MAX)
}

/// Reads an answer body, at most `limit` bytes: refused at once when `Content-Length`
/// says more, and stopped as soon as the streamed body passes it.
async fn read_capped(
    mut response: reqwest::Response,
    shown: &str,
    limit: usize,
) -> Result<String, WebError> {
    let too_large = || WebError::TooLarge {
        url: shown.to_owned(),
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        let chunk = response.chunk().await.map_err(|e| WebError::Truncated {
            url: shown.to_owned(),
            reason: e.without_url().to_string(),
        })?;
        let Some(chunk) = chunk else { break };
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|e| WebError::Truncated {
        url: shown.to_owned(),
        reason: format!("not UTF-8: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_ivres_and_values_stay_values() {
        let q = Query::Domain("a.b$where".into());
        assert_eq!(
            flt(RecordKind::Scan, &q).unwrap(),
            json!({"f": "domain", "a": ["a.b$where"]})
        );
        assert_eq!(flt(RecordKind::Passive, &q), None);
        assert_eq!(
            flt(
                RecordKind::Passive,
                &Query::DnsTarget("www.example.com".into())
            )
            .unwrap(),
            json!({"f": "dns", "a": ["www.example.com"], "k": {"reverse": true}})
        );
        let cert = crate::index::CertHash::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(
            flt(RecordKind::Scan, &Query::Cert(cert)).unwrap(),
            json!({"f": "cert", "k": {"sha256": "ab".repeat(32)}})
        );
    }

    #[test]
    fn urls_give_headers_and_hide_credentials() {
        let s = WebSource::new(
            "http://user:secret@ivre.example/cgi/#X-API-Key=k%20y&Referer=http://x",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(s.base, "http://user:secret@ivre.example/cgi");
        assert!(!s.shown_url().contains("secret"));
        assert!(!format!("{s:?}").contains("secret"));
        assert!(WebSource::new("ftp://x", Duration::from_secs(1)).is_err());
        assert_eq!(percent_decode("k%20y"), "k y");
    }

    /// A real HTTP server paging `total` records of ~1 KB (record `huge` of 100 KB).
    async fn paging_server(total: usize, huge: usize) -> String {
        use axum::routing::get;
        let app = axum::Router::new().route(
            "/cgi/scans",
            get(
                move |uri: axum::http::Uri| async move {
                    let q = uri
                        .query()
                        .unwrap_or_default()
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("q="))
                        .map(|v| percent_decode(&v.replace('+', " ")))
                        .unwrap_or_default();
                    let num = |key: &str| -> usize {
                        q.split(' ')
                            .find_map(|t| t.strip_prefix(key))
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0)
                    };
                    let (skip, limit) = (num("skip:"), num("limit:"));
                    let records: Vec<Value> = (skip..(skip + limit).min(total))
                        .map(|i| {
                            let pad = if i == huge { 100_000 } else { 1_000 };
                            json!({"addr": format!("192.0.2.{}", i % 256), "n": i, "pad": "x".repeat(pad)})
                        })
                        .collect();
                    Value::Array(records).to_string()
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/cgi")
    }

    #[tokio::test]
    async fn answers_are_read_within_a_size_limit() {
        let base = paging_server(300, 250).await;
        let source = WebSource::new(&base, Duration::from_secs(10))
            .unwrap()
            .with_limits(20_000, 1 << 30);
        // 200 records of 1 KB do not fit in 20 KB: asked again in smaller pages, the
        // page is complete and in order.
        let page = source.page(RecordKind::Scan, None, 0, PAGE).await.unwrap();
        assert_eq!(page.len(), PAGE);
        assert!(page.iter().enumerate().all(|(i, r)| r["n"] == i));
        // A single record over the limit is an error, not a buffered answer.
        let err = source
            .page(RecordKind::Scan, None, 200, PAGE)
            .await
            .unwrap_err();
        assert!(
            matches!(err, WebError::TooLarge { limit: 20_000, .. }),
            "{err}"
        );
        assert!(!err.is_transient());
        // A search keeps at most its byte limit.
        let source = WebSource::new(&base, Duration::from_secs(10))
            .unwrap()
            .with_limits(1 << 20, 50_000);
        let err = source
            .collect(RecordKind::Scan, None, Some(100))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("larger than 50000 bytes"), "{err}");
        let few = source
            .collect(RecordKind::Scan, None, Some(20))
            .await
            .unwrap();
        assert_eq!(few.len(), 20);
    }
}
