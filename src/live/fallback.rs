//! The cache-miss fallback: an observable the snapshot knows nothing about is looked up
//! in live IVRE (the Python connector's searches), within a deadline, behind a circuit
//! breaker. Complete answers are kept in an in-memory overlay for `IVRE_FALLBACK_TTL`
//! (empty ones for `IVRE_FALLBACK_NEGATIVE_TTL`); partial answers (a search failed, an
//! answer was truncated) are used but never kept.
//!
//! The overlay is bounded in entries (`IVRE_FALLBACK_CACHE_ENTRIES`) and in bytes
//! (`IVRE_FALLBACK_CACHE_BYTES`, the size of the answers' records as JSON): a `moka`
//! cache weighing each answer `max(its size, bytes / entries)`, with a capacity of
//! `bytes`, so that neither bound can be passed; the least used answers go first, and an
//! answer larger than the whole budget is not kept.

use super::source::{LiveError, LiveSource};
use crate::config::{table, ConfigFile, Problems, SettingsError};
use crate::enrich::records::searches;
use crate::enrich::{AnsweredBy, EnrichOptions, Origin, Records};
use crate::index::Query;
use crate::ivre::{self, RecordKind, Summary};
use crate::lookup;
use crate::metrics::Metrics;
use crate::net::NetSettings;
use crate::observable::Observable;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Fallback settings (`IVRE_DB_URL*`, `IVRE_FALLBACK*`).
#[derive(Clone, PartialEq, Eq)]
pub struct FallbackSettings {
    pub enabled: bool,
    pub scans_url: Option<String>,
    pub passive_url: Option<String>,
    pub data_url: Option<String>,
    pub timeout: Duration,
    pub ttl: Duration,
    pub negative_ttl: Duration,
    /// Consecutive failures that open the breaker, and how long it stays open.
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    /// Most answers kept in the overlay, and most bytes.
    pub cache_entries: u64,
    pub cache_bytes: u64,
    /// Proxies and CA certificates of the connections to IVRE.
    pub net: NetSettings,
}

impl std::fmt::Debug for FallbackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |u: &Option<String>| u.as_deref().map(crate::logging::redact_url);
        f.debug_struct("FallbackSettings")
            .field("enabled", &self.enabled)
            .field("scans_url", &shown(&self.scans_url))
            .field("passive_url", &shown(&self.passive_url))
            .field("data_url", &shown(&self.data_url))
            .finish_non_exhaustive()
    }
}

impl Default for FallbackSettings {
    /// Off (no IVRE URL), with the table's defaults.
    fn default() -> Self {
        Problems::defaults(|config, p| FallbackSettings::read(config, p, &NetSettings::default()))
    }
}

impl FallbackSettings {
    /// Reads the Python connector's `IVRE_DB_URL*` and our `IVRE_FALLBACK*` (and the network
    /// settings). The fallback is on by default when an IVRE URL is configured, off
    /// otherwise (air-gapped sites). Every problem is reported.
    pub fn from_config(config: &ConfigFile) -> Result<FallbackSettings, SettingsError> {
        Problems::collect(|p| {
            let net = NetSettings::read(config, p);
            FallbackSettings::read(config, p, &net)
        })
    }

    /// Reads the settings, recording problems in `problems`.
    pub fn read(
        config: &ConfigFile,
        problems: &mut Problems,
        net: &NetSettings,
    ) -> FallbackSettings {
        let base = config.value(&table::IVRE_DB_URL);
        let url = |setting: &table::Setting| config.value(setting).or_else(|| base.clone());
        let scans_url = url(&table::IVRE_DB_URL_SCANS);
        let passive_url = url(&table::IVRE_DB_URL_PASSIVE);
        let data_url = url(&table::IVRE_DB_URL_DATA);
        let any = scans_url.is_some() || passive_url.is_some();
        let mut secs = |setting: &table::Setting| {
            problems
                .or_default(config.seconds(setting))
                .max(Duration::from_secs(1))
        };
        let timeout = secs(&table::IVRE_FALLBACK_TIMEOUT);
        let ttl = secs(&table::IVRE_FALLBACK_TTL);
        let negative_ttl = secs(&table::IVRE_FALLBACK_NEGATIVE_TTL);
        let breaker_cooldown = secs(&table::IVRE_FALLBACK_BREAKER_COOLDOWN);
        let enabled = problems
            .or_default(config.optional_flag(&table::IVRE_FALLBACK))
            .unwrap_or(any)
            && any;
        let breaker_threshold = u32::try_from(
            problems
                .or_default(config.integer(&table::IVRE_FALLBACK_BREAKER_FAILURES))
                .max(1),
        )
        .unwrap_or(u32::MAX);
        let cache_entries = problems
            .or_default(config.integer(&table::IVRE_FALLBACK_CACHE_ENTRIES))
            .max(1);
        let cache_bytes = problems
            .or_default(config.integer(&table::IVRE_FALLBACK_CACHE_BYTES))
            .max(1);
        FallbackSettings {
            enabled,
            scans_url,
            passive_url,
            data_url,
            timeout,
            ttl,
            negative_ttl,
            breaker_threshold,
            breaker_cooldown,
            cache_entries,
            cache_bytes,
            net: net.clone(),
        }
    }
}

/// A live answer.
#[derive(Debug, Clone)]
pub struct LiveAnswer {
    pub records: Records,
    /// Searches that failed (the answer is then partial).
    pub failures: Vec<String>,
    /// When IVRE answered (RFC 3339).
    pub at: String,
    /// Where (URLs without credentials).
    pub from: String,
}

impl LiveAnswer {
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }

    /// The origin for the bundle's Note (which names neither the snapshot nor the time of
    /// the answer: the Note stays the same while IVRE's answer does).
    pub fn origin(&self) -> Origin {
        let partial = if self.failures.is_empty() {
            String::new()
        } else {
            format!(" (partial: {})", self.failures.join("; "))
        };
        Origin {
            answered_by: AnsweredBy::Live,
            description: format!(
                "Answered live by IVRE ({}) as the snapshot had no record{partial}",
                self.from
            ),
            at: self.at.clone(),
        }
    }
}

/// The bytes an answer is counted for: its records and texts as JSON, plus a fixed
/// overhead. An estimate of its memory, proportional to it.
pub fn answer_size(answer: &LiveAnswer) -> u64 {
    let records = &answer.records;
    let json = super::json_size(&records.scans)
        + super::json_size(&records.passive)
        + super::json_size(&records.data.as_deref());
    let texts = answer.failures.iter().map(String::len).sum::<usize>()
        + answer.at.len()
        + answer.from.len();
    256 + json + texts as u64
}

/// How long an answer stays: `ttl`, or `negative_ttl` for an empty one.
struct AnswerExpiry {
    ttl: Duration,
    negative_ttl: Duration,
}

impl moka::Expiry<String, Arc<LiveAnswer>> for AnswerExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        answer: &Arc<LiveAnswer>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(if answer.records.is_empty() {
            self.negative_ttl
        } else {
            self.ttl
        })
    }
}

/// The live answers kept, bounded in entries and bytes (see the module documentation).
pub struct Overlay {
    cache: moka::sync::Cache<String, Arc<LiveAnswer>>,
    /// The weight of the smallest entry: `bytes / entries`.
    floor: u64,
    capacity: u64,
}

impl Overlay {
    fn new(settings: &FallbackSettings) -> Overlay {
        let capacity = settings.cache_bytes.max(1);
        let floor = (capacity / settings.cache_entries.max(1)).max(1);
        let cache = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .weigher(move |key: &String, answer: &Arc<LiveAnswer>| {
                let weight = (answer_size(answer) + key.len() as u64).max(floor);
                u32::try_from(weight).unwrap_or(u32::MAX)
            })
            .expire_after(AnswerExpiry {
                ttl: settings.ttl,
                negative_ttl: settings.negative_ttl,
            })
            .build();
        Overlay {
            cache,
            floor,
            capacity,
        }
    }

    fn get(&self, key: &str) -> Option<Arc<LiveAnswer>> {
        self.cache.get(key)
    }

    fn insert(&self, key: String, answer: Arc<LiveAnswer>) {
        let weight = (answer_size(&answer) + key.len() as u64).max(self.floor);
        if weight > self.capacity.min(u64::from(u32::MAX)) {
            tracing::debug!(
                size = weight,
                "live answer larger than IVRE_FALLBACK_CACHE_BYTES: not kept"
            );
            return;
        }
        self.cache.insert(key, answer);
        // Evictions are applied now, so that the bounds hold at every moment.
        self.cache.run_pending_tasks();
    }

    /// Answers kept now.
    pub fn entries(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    /// Bytes counted for the answers kept now ([`answer_size`], at least
    /// `IVRE_FALLBACK_CACHE_BYTES / IVRE_FALLBACK_CACHE_ENTRIES` each).
    pub fn bytes(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }
}

/// Why no live answer could be had.
#[derive(Debug, thiserror::Error)]
pub enum FallbackError {
    #[error(
        "live IVRE is not queried for {0} seconds after repeated failures (circuit breaker open)"
    )]
    BreakerOpen(u64),
    #[error("live IVRE did not answer within {0:?}")]
    Timeout(Duration),
    #[error("every live IVRE search failed: {0}")]
    Failed(String),
}

struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// The fallback (one per process).
pub struct Fallback {
    settings: FallbackSettings,
    scans: OnceCell<Option<LiveSource>>,
    passive: OnceCell<Option<LiveSource>>,
    data: OnceCell<Option<LiveSource>>,
    overlay: Overlay,
    breaker: Mutex<Breaker>,
    metrics: Option<Metrics>,
}

impl Fallback {
    pub fn new(settings: FallbackSettings, metrics: Option<Metrics>) -> Fallback {
        Fallback {
            scans: OnceCell::new(),
            passive: OnceCell::new(),
            data: OnceCell::new(),
            overlay: Overlay::new(&settings),
            breaker: Mutex::new(Breaker {
                failures: 0,
                open_until: None,
            }),
            metrics,
            settings,
        }
    }

    /// The overlay (for tests and metrics).
    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    async fn source<'a>(
        &self,
        cell: &'a OnceCell<Option<LiveSource>>,
        url: &Option<String>,
    ) -> Result<Option<&'a LiveSource>, LiveError> {
        let Some(url) = url.as_deref().filter(|u| !u.starts_with("maxmind://")) else {
            return Ok(None);
        };
        let source = cell
            .get_or_try_init(|| async {
                LiveSource::connect(url, self.settings.timeout, &self.settings.net)
                    .await
                    .map(Some)
            })
            .await?;
        Ok(source.as_ref())
    }

    /// Sets `fallback_breaker_open` to the breaker's state now (a breaker whose cooldown
    /// ended is closed even before the next lookup); for each scrape.
    pub fn update_metrics(&self) {
        if let Some(m) = &self.metrics {
            m.set_breaker_open(self.breaker_open().is_some());
        }
    }

    fn breaker_open(&self) -> Option<u64> {
        let b = self.breaker.lock().ok()?;
        b.open_until
            .filter(|t| *t > Instant::now())
            .map(|t| t.duration_since(Instant::now()).as_secs())
    }

    fn record(&self, ok: bool) {
        let Ok(mut b) = self.breaker.lock() else {
            return;
        };
        if ok {
            b.failures = 0;
            b.open_until = None;
        } else {
            b.failures += 1;
            if b.failures >= self.settings.breaker_threshold {
                tracing::warn!(
                    failures = b.failures,
                    cooldown_s = self.settings.breaker_cooldown.as_secs(),
                    "live IVRE keeps failing: circuit breaker open"
                );
                b.open_until = Some(Instant::now() + self.settings.breaker_cooldown);
                b.failures = 0;
            }
        }
        if let Some(m) = &self.metrics {
            if !ok {
                m.client_error();
            }
            m.set_breaker_open(b.open_until.is_some_and(|t| t > Instant::now()));
        }
    }

    /// Looks `observable` up live (or in the overlay).
    pub async fn lookup(
        &self,
        observable: &Observable,
        options: &EnrichOptions,
    ) -> Result<Arc<LiveAnswer>, FallbackError> {
        let key = observable.to_string();
        if let Some(answer) = self.overlay.get(&key) {
            return Ok(answer);
        }
        if let Some(secs) = self.breaker_open() {
            return Err(FallbackError::BreakerOpen(secs));
        }
        let answer = match tokio::time::timeout(
            self.settings.timeout,
            self.query(observable, options),
        )
        .await
        {
            Err(_) => {
                self.record(false);
                return Err(FallbackError::Timeout(self.settings.timeout));
            }
            Ok(Err(e)) => {
                self.record(false);
                return Err(e);
            }
            Ok(Ok(answer)) => answer,
        };
        self.record(true);
        let answer = Arc::new(answer);
        if answer.is_complete() {
            self.overlay.insert(key, answer.clone());
        }
        Ok(answer)
    }

    /// Whether live IVRE answers: one search per configured source for an address no
    /// scan can hold (`0.0.0.0`), within the deadline, bypassing the overlay (its outcome
    /// feeds the breaker like any lookup). For readiness before a snapshot is served.
    pub async fn probe(&self) -> Result<(), FallbackError> {
        let observable = Observable::Ipv4(std::net::Ipv4Addr::UNSPECIFIED);
        let options = EnrichOptions {
            use_data: false,
            max_records: 1,
            ..EnrichOptions::default()
        };
        let outcome =
            match tokio::time::timeout(self.settings.timeout, self.query(&observable, &options))
                .await
            {
                Err(_) => Err(FallbackError::Timeout(self.settings.timeout)),
                Ok(Err(e)) => Err(e),
                Ok(Ok(answer)) if !answer.is_complete() => {
                    Err(FallbackError::Failed(answer.failures.join("; ")))
                }
                Ok(Ok(_)) => Ok(()),
            };
        self.record(outcome.is_ok());
        outcome
    }

    async fn search(
        &self,
        source: &LiveSource,
        kind: RecordKind,
        query: &Query,
        limit: usize,
    ) -> Result<Vec<Value>, LiveError> {
        match source.search(kind, query, limit).await {
            Err(e) => match e.is_rate_limit() {
                // 429: wait as asked (within the deadline, which bounds the whole lookup), once.
                Some(retry_after) => {
                    tokio::time::sleep(retry_after.unwrap_or(Duration::from_secs(1))).await;
                    source.search(kind, query, limit).await
                }
                None => Err(e),
            },
            ok => ok,
        }
    }

    async fn query(
        &self,
        observable: &Observable,
        options: &EnrichOptions,
    ) -> Result<LiveAnswer, FallbackError> {
        let (use_data, use_scans, use_passive) = searches(observable, options);
        let (host_queries, passive_queries) = lookup::queries(observable);
        let mut records = Records::default();
        let mut failures = Vec::new();
        let mut attempted = 0;
        let mut from = Vec::new();
        let plan = [
            (
                use_scans,
                RecordKind::Scan,
                &host_queries,
                &self.scans,
                &self.settings.scans_url,
            ),
            (
                use_passive,
                RecordKind::Passive,
                &passive_queries,
                &self.passive,
                &self.settings.passive_url,
            ),
        ];
        for (wanted, kind, queries, cell, url) in plan {
            if !wanted {
                continue;
            }
            let source = match self.source(cell, url).await {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => {
                    attempted += 1;
                    failures.push(format!("{kind}: {e}"));
                    continue;
                }
            };
            from.push(source.shown());
            let mut seen = std::collections::HashSet::new();
            for query in queries {
                attempted += 1;
                match self.search(source, kind, query, options.max_records).await {
                    Err(e) => failures.push(format!("{kind} search failed: {e}")),
                    Ok(values) => {
                        if values.len() >= options.max_records {
                            records.truncated = true;
                        }
                        for value in values {
                            if !seen.insert(value.to_string()) {
                                continue;
                            }
                            match ivre::parse_value(kind, value) {
                                Ok(parsed) => match parsed.summary {
                                    Summary::Host(h) => records.scans.push(h),
                                    Summary::Passive(p) => records.passive.push(p),
                                },
                                Err(e) => {
                                    tracing::warn!(kind = %kind, error = %e, "live record skipped")
                                }
                            }
                        }
                    }
                }
            }
        }
        if use_data {
            if let (Some(ip), Ok(Some(source))) = (
                observable.lookup_ip(),
                self.source(&self.data, &self.settings.data_url).await,
            ) {
                match source.ipdata(ip).await {
                    Ok(data) => records.data = data.map(crate::geo::Infos::new),
                    Err(e) => failures.push(format!("data: {e}")),
                }
            }
        }
        if attempted > 0 && failures.len() >= attempted {
            return Err(FallbackError::Failed(failures.join("; ")));
        }
        from.sort();
        from.dedup();
        Ok(LiveAnswer {
            records,
            failures,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            from: from.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn answer(records: usize, bytes_each: usize) -> Arc<LiveAnswer> {
        let mut data = serde_json::Map::new();
        for i in 0..records {
            data.insert(format!("k{i}"), Value::String("x".repeat(bytes_each)));
        }
        Arc::new(LiveAnswer {
            records: Records {
                data: (records > 0).then_some(crate::geo::Infos::new(data)),
                ..Records::default()
            },
            failures: Vec::new(),
            at: "2026-12-06T00:00:00Z".into(),
            from: "http://ivre/cgi".into(),
        })
    }

    fn overlay(entries: u64, bytes: u64) -> Overlay {
        Overlay::new(&FallbackSettings {
            cache_entries: entries,
            cache_bytes: bytes,
            ..FallbackSettings::default()
        })
    }

    /// Each failed query to live IVRE is a client error (pycti's `client_errors_total`);
    /// the breaker's state is `fallback_breaker_open`.
    #[tokio::test]
    async fn failed_queries_are_client_errors_and_open_the_breaker() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/cgi", closed.local_addr().unwrap());
        drop(closed);
        let metrics = Metrics::new("", "").unwrap();
        let fallback = Fallback::new(
            FallbackSettings {
                enabled: true,
                scans_url: Some(url),
                timeout: Duration::from_secs(5),
                breaker_threshold: 2,
                breaker_cooldown: Duration::from_secs(2),
                ..FallbackSettings::default()
            },
            Some(metrics.clone()),
        );
        let line = |text: &str, name: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .map(str::to_owned)
        };
        assert!(fallback.probe().await.is_err());
        let text = metrics.render();
        assert_eq!(
            line(&text, "client_errors_total").as_deref(),
            Some("client_errors_total 1")
        );
        assert_eq!(
            line(&text, "fallback_breaker_open").as_deref(),
            Some("fallback_breaker_open 0")
        );
        assert!(fallback.probe().await.is_err());
        let text = metrics.render();
        assert_eq!(
            line(&text, "client_errors_total").as_deref(),
            Some("client_errors_total 2")
        );
        assert_eq!(
            line(&text, "fallback_breaker_open").as_deref(),
            Some("fallback_breaker_open 1")
        );
        assert_eq!(
            line(&text, "errors_total").as_deref(),
            Some("errors_total 0")
        );
        // Once the cooldown is over, a scrape sees the breaker closed.
        let breaker = |fallback: &Fallback| {
            fallback.update_metrics();
            line(&metrics.render(), "fallback_breaker_open")
        };
        assert_eq!(
            breaker(&fallback).as_deref(),
            Some("fallback_breaker_open 1")
        );
        tokio::time::sleep(Duration::from_millis(2200)).await;
        assert_eq!(
            breaker(&fallback).as_deref(),
            Some("fallback_breaker_open 0")
        );
    }

    #[test]
    fn the_overlay_stays_bounded_in_entries() {
        let o = overlay(100, 64 * 1024 * 1024);
        for i in 0..5_000 {
            o.insert(
                format!("ipv4-addr:10.0.{}.{}", i / 256, i % 256),
                answer(1, 10),
            );
            assert!(o.entries() <= 100, "{} entries after {i}", o.entries());
        }
        assert!(o.entries() >= 50, "the cache still keeps answers");
        assert!(o.bytes() <= 64 * 1024 * 1024);
    }

    #[test]
    fn the_overlay_stays_bounded_in_bytes() {
        let budget = 1024 * 1024;
        let o = overlay(1_000_000, budget);
        let big = answer(10, 10_000); // about 100 kB
        let size = answer_size(&big);
        assert!(size > 100_000 && size < 110_000, "{size}");
        for i in 0..200 {
            o.insert(format!("domain-name:d{i}.example"), big.clone());
            assert!(o.bytes() <= budget, "{} bytes after {i}", o.bytes());
        }
        let kept = o.entries();
        assert!((5..=10).contains(&kept), "{kept}");
        // Larger than the whole budget: not kept.
        o.insert("huge".into(), answer(20, 60_000));
        assert!(o.get("huge").is_none());
        assert!(o.bytes() <= budget);
    }

    #[test]
    fn answers_expire() {
        let o = Overlay::new(&FallbackSettings {
            ttl: Duration::from_millis(300),
            negative_ttl: Duration::from_millis(100),
            ..FallbackSettings::default()
        });
        // No scan or passive record: an empty answer, kept negative_ttl.
        o.insert("empty".into(), answer(1, 10));
        assert!(o.get("empty").is_some());
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            o.get("empty").is_none(),
            "an empty answer lives negative_ttl"
        );
    }
}
