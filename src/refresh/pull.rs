//! Pulls from live IVRE (MongoDB or web API), full or incremental: `ivre-sync pull` and
//! the daemon's own sync (`daemon::keeper`) run this same code.
//!
//! Records are written to NDJSON files under `DATA_DIR/tmp/` as they arrive (memory
//! stays bounded), then imported like exports: a full pull builds a new generation, an
//! incremental one updates a copy of the served generation with the records changed since
//! its watermark (passive records replace the stored ones with the same aggregation key:
//! IVRE updates them in place). Any failure, including a truncated answer, publishes
//! nothing.

use crate::config::SettingsError;
use crate::config::{table, ConfigFile};
use crate::ivre::MergeMode;
use crate::ivre::{RecordKind, Timestamp};
use crate::live::fallback::FallbackSettings;
use crate::live::mongo::MongoError;
use crate::live::mongo::MongoSource;
use crate::live::source::LiveError;
use crate::live::source::LiveSource;
use crate::live::web;
use crate::live::web::WebError;
use crate::net::NetSettings;
use crate::snapshot::manifest::SOURCE_PULL;
use crate::snapshot::progress::{Progress, Unit};
use crate::snapshot::SnapshotError;
use crate::snapshot::{self, DataDir, ImportOptions, ImportReport};
use futures_util::StreamExt;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Timeout of one request to IVRE.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a pull failed; nothing was published.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// No source configured, or an invalid setting.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reach {url}")]
    Connect {
        url: String,
        #[source]
        source: LiveError,
    },
    #[error("pulling {kind} from {url} failed after {records} records")]
    Web {
        kind: RecordKind,
        url: String,
        records: u64,
        #[source]
        source: WebError,
    },
    #[error("pulling {kind} from {url} failed after {records} records")]
    Mongo {
        kind: RecordKind,
        url: String,
        records: u64,
        #[source]
        source: MongoError,
    },
    #[error("the import crashed")]
    Crashed(#[source] tokio::task::JoinError),
    #[error("building the snapshot failed")]
    Import(#[source] SnapshotError),
}

type Result<T, E = PullError> = std::result::Result<T, E>;

/// What to pull from: the Python connector's `IVRE_DB_URL*` (scans and passive; a
/// `maxmind://` data URL names the MaxMind directory to carry into the snapshot).
#[derive(Debug, Clone)]
pub struct Targets {
    list: Vec<(RecordKind, String)>,
    label: String,
    geoip_dir: Option<PathBuf>,
    /// Proxies and CA certificates (`SSL_CERT_FILE`, `HTTP(S)_PROXY`, `NO_PROXY`).
    net: NetSettings,
}

impl Targets {
    /// The targets of a configuration (`IVRE_DB_URL*`, `IVRE_GEOIP_DIR`).
    pub fn from_config(config: &ConfigFile) -> Result<Targets> {
        let settings = FallbackSettings::from_config(config)?;
        let geoip_dir = config.path(&table::IVRE_GEOIP_DIR);
        Targets::new(&settings, geoip_dir)
    }

    /// The targets of the fallback's URLs; `geoip_dir` is used when no `maxmind://`
    /// data URL is set. Fails when no scans or passive URL is set.
    pub fn new(settings: &FallbackSettings, geoip_dir: Option<PathBuf>) -> Result<Targets> {
        targets(settings, geoip_dir)
    }

    /// The sources, credentials removed (`scans=… passive=…`).
    pub fn label(&self) -> &str {
        &self.label
    }
}

fn targets(settings: &FallbackSettings, geoip_dir: Option<PathBuf>) -> Result<Targets> {
    let mut list = Vec::new();
    for (kind, url) in [
        (RecordKind::Scan, &settings.scans_url),
        (RecordKind::Passive, &settings.passive_url),
    ] {
        if let Some(url) = url.as_deref().filter(|u| !u.starts_with("maxmind://")) {
            list.push((kind, url.to_owned()));
        }
    }
    if list.is_empty() {
        return Err(SettingsError(vec!["no IVRE URL configured: set IVRE_DB_URL (or IVRE_DB_URL_SCANS / IVRE_DB_URL_PASSIVE), e.g. mongodb://host/ivre or http://host/cgi#X-API-Key=…".into()]).into());
    }
    let label = list
        .iter()
        .map(|(k, u)| format!("{k}={}", crate::logging::redact_url(u)))
        .collect::<Vec<_>>()
        .join(" ");
    let geoip_dir = settings
        .data_url
        .as_deref()
        .and_then(|u| u.strip_prefix("maxmind://"))
        .map(PathBuf::from)
        .or(geoip_dir);
    Ok(Targets {
        list,
        label,
        geoip_dir,
        net: settings.net.clone(),
    })
}

struct Fetched {
    path: PathBuf,
    records: u64,
}

async fn fetch(
    kind: RecordKind,
    url: &str,
    since: Option<Timestamp>,
    dir: &Path,
    net: &NetSettings,
    progress: Option<&dyn Progress>,
) -> Result<Fetched> {
    let path = dir.join(format!("{}.jsonl", kind.as_str()));
    let io_err = |source| PullError::Io {
        path: path.clone(),
        source,
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io_err)?);
    let mut fetched = Fetched {
        path: path.clone(),
        records: 0,
    };
    let mut keep = |value: &Value, fetched: &mut Fetched| -> Result<()> {
        serde_json::to_writer(&mut out, value).map_err(|e| io_err(e.into()))?;
        out.write_all(b"\n").map_err(io_err)?;
        fetched.records += 1;
        if let Some(progress) = progress {
            progress.set(fetched.records);
        }
        Ok(())
    };
    let shown = crate::logging::redact_url(url);
    if let Some(progress) = progress {
        progress.start(&format!("pulling {kind}"), Unit::Records, None);
    }
    match LiveSource::connect(url, REQUEST_TIMEOUT, net)
        .await
        .map_err(|source| PullError::Connect {
            url: shown.clone(),
            source,
        })? {
        LiveSource::Web(source) => {
            let f = since.and_then(|t| web::since_flt(kind, t.micros / 1_000_000));
            let mut skip = 0;
            loop {
                let page = source
                    .page(kind, f.as_ref(), skip, web::PAGE)
                    .await
                    .map_err(|source| PullError::Web {
                        kind,
                        url: shown.clone(),
                        records: skip as u64,
                        source,
                    })?;
                for value in &page {
                    keep(value, &mut fetched)?;
                }
                skip += page.len();
                if page.len() < web::PAGE {
                    break;
                }
            }
        }
        LiveSource::Mongo(source) => {
            let filter = since
                .and_then(|t| t.to_datetime())
                .map(|t| MongoSource::since_filter(kind, t))
                .unwrap_or_default();
            let mut stream =
                source
                    .stream(kind, filter)
                    .await
                    .map_err(|source| PullError::Mongo {
                        kind,
                        url: shown.clone(),
                        records: 0,
                        source,
                    })?;
            while let Some(value) = stream.next().await {
                let value = value.map_err(|source| PullError::Mongo {
                    kind,
                    url: shown.clone(),
                    records: fetched.records,
                    source,
                })?;
                keep(&value, &mut fetched)?;
            }
        }
    }
    out.flush().map_err(io_err)?;
    Ok(fetched)
}

/// One pull; publishes a generation when everything was fetched. `full` forces a full
/// pull (otherwise incremental when the served snapshot came from the same sources);
/// `progress` receives the records fetched, then the bytes imported.
pub async fn pull_once(
    data: &DataDir,
    targets: &Targets,
    full: bool,
    progress: Option<Arc<dyn Progress>>,
) -> Result<ImportReport> {
    let served = snapshot::open::current_manifest(data)
        .ok()
        .map(|(_, _, m)| m);
    let watermark = served
        .as_ref()
        .filter(|m| {
            m.source.kind == SOURCE_PULL && m.source.url.as_deref() == Some(targets.label.as_str())
        })
        .and_then(|m| m.watermark.as_deref())
        .and_then(Timestamp::parse_str);
    let since = if full { None } else { watermark };
    tracing::info!(sources = %targets.label, mode = if since.is_some() { "incremental" } else { "full" }, "pulling");
    let tmp = data.tmp().join(format!("pull-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|source| PullError::Io {
        path: tmp.clone(),
        source,
    })?;
    let result = async {
        let mut inputs = Vec::new();
        for (kind, url) in &targets.list {
            let fetched = fetch(*kind, url, since, &tmp, &targets.net, progress.as_deref()).await?;
            tracing::info!(kind = %kind, records = fetched.records, "fetched");
            inputs.push((*kind, fetched.path));
        }
        let options = ImportOptions {
            inputs,
            geoip_dir: targets.geoip_dir.clone(),
            strict: false,
            update: since.map(|_| MergeMode::Replace),
            replace_kinds: Vec::new(),
            source_kind: Some(SOURCE_PULL.into()),
            source_url: Some(targets.label.clone()),
            source_mode: Some(
                if since.is_some() {
                    "incremental"
                } else {
                    "full"
                }
                .into(),
            ),
            watermark: true,
            progress: progress.clone(),
            ..Default::default()
        };
        let data = data.clone();
        tokio::task::spawn_blocking(move || snapshot::import(&data, &options))
            .await
            .map_err(PullError::Crashed)?
            .map_err(PullError::Import)
    }
    .await;
    let _ = std::fs::remove_dir_all(&tmp);
    if let Some(progress) = &progress {
        progress.finish();
    }
    result
}
