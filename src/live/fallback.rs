//! The cache-miss fallback: an observable the snapshot knows nothing about is looked up
//! in live IVRE (the Python connector's searches), within a deadline, behind a circuit
//! breaker. Complete answers are kept in an in-memory overlay for `IVRE_FALLBACK_TTL`
//! (empty ones for `IVRE_FALLBACK_NEGATIVE_TTL`); partial answers (a search failed, an
//! answer was truncated) are used but never kept.

use super::source::{LiveError, Source};
use crate::config::{table, ConfigFile, Problems, SettingsError};
use crate::enrich::records::searches;
use crate::enrich::{EnrichOptions, Origin, Records};
use crate::index::Query;
use crate::ivre::{self, RecordKind, Summary};
use crate::lookup;
use crate::metrics::Metrics;
use crate::net::NetSettings;
use crate::observable::Observable;
use serde_json::Value;
use std::collections::HashMap;
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
    /// Off, with the defaults of the timeouts.
    fn default() -> Self {
        FallbackSettings {
            enabled: false,
            scans_url: None,
            passive_url: None,
            data_url: None,
            timeout: Duration::from_secs(10),
            ttl: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(300),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(60),
            net: NetSettings::default(),
        }
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
        let d = FallbackSettings::default();
        let base = config.value(&table::IVRE_DB_URL);
        let url = |setting: &table::Setting| config.value(setting).or_else(|| base.clone());
        let scans_url = url(&table::IVRE_DB_URL_SCANS);
        let passive_url = url(&table::IVRE_DB_URL_PASSIVE);
        let data_url = url(&table::IVRE_DB_URL_DATA);
        let any = scans_url.is_some() || passive_url.is_some();
        let mut secs = |setting: &table::Setting, default: Duration| {
            problems
                .take(config.seconds(setting), default)
                .max(Duration::from_secs(1))
        };
        let timeout = secs(&table::IVRE_FALLBACK_TIMEOUT, d.timeout);
        let ttl = secs(&table::IVRE_FALLBACK_TTL, d.ttl);
        let negative_ttl = secs(&table::IVRE_FALLBACK_NEGATIVE_TTL, d.negative_ttl);
        let breaker_cooldown = secs(&table::IVRE_FALLBACK_BREAKER_COOLDOWN, d.breaker_cooldown);
        let enabled = problems
            .take(config.optional_flag(&table::IVRE_FALLBACK), None)
            .unwrap_or(any)
            && any;
        let breaker_threshold = u32::try_from(
            problems
                .take(config.integer(&table::IVRE_FALLBACK_BREAKER_FAILURES), 5)
                .max(1),
        )
        .unwrap_or(5);
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

    /// The origin for the bundle's Note.
    pub fn origin(&self, snapshot_name: &str) -> Origin {
        let partial = if self.failures.is_empty() {
            String::new()
        } else {
            format!(" (partial: {})", self.failures.join("; "))
        };
        Origin {
            name: "live".into(),
            description: format!(
                "Answered live by IVRE ({}) at {} because snapshot {snapshot_name} had no record{partial}",
                self.from, self.at
            ),
            at: self.at.clone(),
        }
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
    scans: OnceCell<Option<Source>>,
    passive: OnceCell<Option<Source>>,
    data: OnceCell<Option<Source>>,
    overlay: Mutex<HashMap<String, (Instant, Arc<LiveAnswer>)>>,
    breaker: Mutex<Breaker>,
    metrics: Option<Metrics>,
}

impl Fallback {
    pub fn new(settings: FallbackSettings, metrics: Option<Metrics>) -> Fallback {
        Fallback {
            settings,
            scans: OnceCell::new(),
            passive: OnceCell::new(),
            data: OnceCell::new(),
            overlay: Mutex::new(HashMap::new()),
            breaker: Mutex::new(Breaker {
                failures: 0,
                open_until: None,
            }),
            metrics,
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    async fn source<'a>(
        &self,
        cell: &'a OnceCell<Option<Source>>,
        url: &Option<String>,
    ) -> Result<Option<&'a Source>, LiveError> {
        let Some(url) = url.as_deref().filter(|u| !u.starts_with("maxmind://")) else {
            return Ok(None);
        };
        let source = cell
            .get_or_try_init(|| async {
                Source::connect(url, self.settings.timeout, &self.settings.net)
                    .await
                    .map(Some)
            })
            .await?;
        Ok(source.as_ref())
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
        if let Ok(mut overlay) = self.overlay.lock() {
            match overlay.get(&key) {
                Some((expires, answer)) if *expires > Instant::now() => return Ok(answer.clone()),
                Some(_) => {
                    overlay.remove(&key);
                }
                None => {}
            }
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
            let ttl = if answer.records.is_empty() {
                self.settings.negative_ttl
            } else {
                self.settings.ttl
            };
            if let Ok(mut overlay) = self.overlay.lock() {
                overlay.insert(key, (Instant::now() + ttl, answer.clone()));
            }
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
        source: &Source,
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
                observable.ip(),
                self.source(&self.data, &self.settings.data_url).await,
            ) {
                match source.ipdata(ip).await {
                    Ok(data) => records.data = data,
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
