//! The daemon's settings (`ivre-connector run`): pycti's variables
//! (`docs/opencti-protocol.md` §12, §2.4, §5), the Python connector's, and ours, read from
//! the table ([`super::table`]) and validated all at once at start-up, with every
//! sub-configuration ([`EnrichOptions`], [`NetSettings`], [`FallbackSettings`],
//! [`SyncSettings`], [`S3Settings`]) recording its problems into the same [`Problems`].

use super::s3::S3Settings;
use super::sync::SyncSettings;
use super::table::{self, Setting};
use super::{ConfigError, ConfigFile, Problems, SettingsError};
use crate::enrich::EnrichOptions;
use crate::live::fallback::FallbackSettings;
use crate::net::NetSettings;
use crate::observable::SCOPES;
use crate::stix::markings::Tlp;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

/// How enrichment requests arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenProtocol {
    /// Consume the listen queue (pycti's default).
    Amqp,
    /// Receive them as HTTP POSTs from the platform's workers.
    Api,
}

/// How bundles go back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueProtocol {
    /// One-object bundles published to the push queue (pycti's split).
    Amqp,
    /// The whole bundle through GraphQL `stixBundlePush`.
    Api,
}

/// How a bundle goes on RabbitMQ (`CONNECTOR_PUSH_STRATEGY`, AMQP queue protocol only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushStrategy {
    /// Per platform version: [`PushStrategy::Bundle`] from 6.4 on, else
    /// [`PushStrategy::Pieces`] (see `opencti::protocol::push_plan::PushMode::for_platform`).
    Auto,
    /// The whole bundle as one message; the platform's worker splits it and adds the
    /// expectations itself (the connector calls no `addExpectations`).
    Bundle,
    /// pycti's: one object per message, after `addExpectations(<messages>)`.
    Pieces,
}

/// `MQ_*`: local overrides of the broker connection returned at registration.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MqOverrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub vhost: Option<String>,
    pub use_ssl: Option<bool>,
    pub user: Option<String>,
    pub pass: Option<String>,
}

impl fmt::Debug for MqOverrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqOverrides")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("vhost", &self.vhost)
            .field("use_ssl", &self.use_ssl)
            .field("user", &self.user)
            .field("pass", &self.pass.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The HTTP listen mode (`CONNECTOR_LISTEN_PROTOCOL_API_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiListen {
    pub bind: IpAddr,
    pub port: u16,
    pub path: String,
    /// Public base URI the platform's workers call (registered as `listen_callback_uri`).
    pub uri: String,
}

/// Everything the daemon needs, validated.
#[derive(Clone)]
pub struct Settings {
    pub opencti_url: String,
    pub opencti_token: String,
    pub ssl_verify: bool,
    pub json_logging: bool,
    pub custom_headers: Vec<(String, String)>,
    /// `CONNECTOR_ID`, else [`derived_connector_id`] of the name.
    pub connector_id: String,
    /// True when `connector_id` was derived (`CONNECTOR_ID` unset).
    pub connector_id_derived: bool,
    pub connector_name: String,
    pub scope: Vec<String>,
    pub auto: bool,
    pub auto_update: bool,
    pub enrichment_resolution: String,
    pub only_contextual: bool,
    pub log_level: String,
    /// `IVRE_LOG`: a tracing filter replacing `log_level`.
    pub log_filter: Option<String>,
    pub expose_metrics: bool,
    pub metrics_port: u16,
    pub metrics_namespace: String,
    pub metrics_subsystem: String,
    /// Address of the health/metrics server (`CONNECTOR_HEALTH_BIND`), on `metrics_port`.
    pub health_bind: IpAddr,
    pub listen: ListenProtocol,
    pub api_listen: ApiListen,
    pub queue_protocol: QueueProtocol,
    pub push_strategy: PushStrategy,
    pub send_to_queue: bool,
    pub mq: MqOverrides,
    pub max_tlp: Tlp,
    /// Messages processed at once (`CONNECTOR_CONCURRENCY`, 1 = pycti's one at a time).
    pub concurrency: usize,
    pub ping_interval: Duration,
    pub work_ping_interval: Duration,
    pub reconnect_delay: Duration,
    pub shutdown_timeout: Duration,
    /// A live MaxMind directory used instead of the snapshot's files (`IVRE_GEOIP_DIR`).
    pub geoip_dir: Option<std::path::PathBuf>,
    /// How often to look for a new snapshot or MaxMind files besides file events.
    pub reload_poll: Duration,
    pub enrich: EnrichOptions,
    /// The cache-miss fallback to live IVRE (`IVRE_DB_URL*`, `IVRE_FALLBACK*`).
    pub fallback: FallbackSettings,
    /// Pulls from live IVRE, drop folder, published generations.
    pub sync: SyncSettings,
    /// S3 access for `s3://` snapshot locations.
    pub s3: S3Settings,
    /// Proxies and extra CA certificates of every outgoing connection.
    pub net: NetSettings,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("opencti_url", &crate::redact::url(&self.opencti_url))
            .field("opencti_token", &"***")
            .field("connector_id", &self.connector_id)
            .field("connector_name", &self.connector_name)
            .field("scope", &self.scope)
            .field("listen", &self.listen)
            .field("queue_protocol", &self.queue_protocol)
            .field("push_strategy", &self.push_strategy)
            .field("max_tlp", &self.max_tlp)
            .field("concurrency", &self.concurrency)
            .field("mq", &self.mq)
            .field("s3", &self.s3)
            .field("net", &self.net)
            .finish_non_exhaustive()
    }
}

/// The namespace of derived connector ids: `CONNECTOR_ID` defaults to the UUIDv5 of
/// `CONNECTOR_NAME` in it (`99c99d81-908b-4c9f-81ad-cb1d4c06c255`, ours, fixed forever).
pub const CONNECTOR_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x99c9_9d81_908b_4c9f_81ad_cb1d_4c06_c255);

/// The connector id used when `CONNECTOR_ID` is unset: stable for a given name.
pub fn derived_connector_id(connector_name: &str) -> String {
    uuid::Uuid::new_v5(&CONNECTOR_ID_NAMESPACE, connector_name.as_bytes()).to_string()
}

/// `OPENCTI_CUSTOM_HEADERS="h1:v1;h2:v2"`.
pub(super) fn custom_headers(raw: &str) -> Result<Vec<(String, String)>, ConfigError> {
    raw.split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            pair.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| ConfigError::Invalid {
                    setting: table::OPENCTI_CUSTOM_HEADERS.label(),
                    expected: "`name:value` pairs separated by `;`",
                    found: pair.to_owned(),
                })
        })
        .collect()
}

/// A UUID in its textual form (what OpenCTI expects for `CONNECTOR_ID`).
pub(super) fn looks_like_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n)
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A required setting's value, or the problem recorded and an empty string.
fn required(config: &ConfigFile, p: &mut Problems, setting: &Setting) -> String {
    config.value(setting).unwrap_or_else(|| {
        p.push(format!("{} is required", setting.label()));
        String::new()
    })
}

/// An IP address setting (value or default); when invalid, the problem is recorded and a
/// placeholder returned (the settings are then not used).
fn ip(config: &ConfigFile, p: &mut Problems, setting: &Setting) -> IpAddr {
    p.ok(config.ip(setting))
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
}

impl Settings {
    /// Reads and validates every setting; all problems are reported together.
    pub fn from_config(config: &ConfigFile) -> Result<Settings, SettingsError> {
        Problems::collect(|p| Settings::read(config, p))
    }

    /// Reads every setting, recording problems in `p` (the result is only meaningful when
    /// none was recorded).
    fn read(config: &ConfigFile, p: &mut Problems) -> Settings {
        let opencti_url = required(config, p, &table::OPENCTI_URL)
            .trim_end_matches('/')
            .to_owned();
        if !opencti_url.is_empty()
            && !opencti_url.starts_with("http://")
            && !opencti_url.starts_with("https://")
        {
            p.push(format!(
                "{}: `{}` is not an http(s) URL",
                table::OPENCTI_URL.label(),
                crate::redact::url(&opencti_url)
            ));
        }
        let opencti_token = required(config, p, &table::OPENCTI_TOKEN);
        let ssl_verify = p.or_default(config.flag(&table::OPENCTI_SSL_VERIFY));
        let json_logging = p.or_default(config.flag(&table::OPENCTI_JSON_LOGGING));
        let custom_headers = match config.value(&table::OPENCTI_CUSTOM_HEADERS) {
            None => Vec::new(),
            Some(raw) => custom_headers(&raw).unwrap_or_else(|e| {
                p.push(e);
                Vec::new()
            }),
        };
        if let Some(t) = config.value(&table::CONNECTOR_TYPE) {
            if !t.eq_ignore_ascii_case("INTERNAL_ENRICHMENT") {
                p.push(format!(
                    "{}: this connector is INTERNAL_ENRICHMENT, not `{t}`",
                    table::CONNECTOR_TYPE.label()
                ));
            }
        }
        let connector_name = config.string(&table::CONNECTOR_NAME).unwrap_or_default();
        if connector_name.trim().len() < 2 {
            p.push(format!(
                "{}: at least 2 characters",
                table::CONNECTOR_NAME.label()
            ));
        }
        let (connector_id, connector_id_derived) = match config.value(&table::CONNECTOR_ID) {
            Some(id) => {
                if !looks_like_uuid(&id) {
                    p.push(format!(
                        "{}: `{id}` is not a UUID",
                        table::CONNECTOR_ID.label()
                    ));
                }
                (id, false)
            }
            None => (derived_connector_id(&connector_name), true),
        };
        let scope = config.list(&table::CONNECTOR_SCOPE);
        for s in &scope {
            if !SCOPES.contains(&s.to_ascii_lowercase().as_str()) {
                p.push(format!(
                    "{}: `{s}` is not a type this connector enriches ({})",
                    table::CONNECTOR_SCOPE.label(),
                    SCOPES.join(", ")
                ));
            }
        }
        let auto = p.or_default(config.flag(&table::CONNECTOR_AUTO));
        let auto_update = p.or_default(config.flag(&table::CONNECTOR_AUTO_UPDATE));
        let enrichment_resolution = config
            .string(&table::CONNECTOR_ENRICHMENT_RESOLUTION)
            .unwrap_or_default();
        let only_contextual = p.or_default(config.flag(&table::CONNECTOR_ONLY_CONTEXTUAL));
        let log_level = config
            .string(&table::CONNECTOR_LOG_LEVEL)
            .unwrap_or_default();
        p.ok(config.choice(&table::CONNECTOR_LOG_LEVEL));
        let expose_metrics = p.or_default(config.flag(&table::CONNECTOR_EXPOSE_METRICS));
        let metrics_port = p.or_default(config.port(&table::CONNECTOR_METRICS_PORT));
        let metrics_namespace = config
            .value(&table::CONNECTOR_METRICS_NAMESPACE)
            .unwrap_or_default();
        let metrics_subsystem = config
            .value(&table::CONNECTOR_METRICS_SUBSYSTEM)
            .unwrap_or_default();
        let health_bind = ip(config, p, &table::CONNECTOR_HEALTH_BIND);
        let listen = match p.or_default(config.choice(&table::CONNECTOR_LISTEN_PROTOCOL)) {
            Some("API") => ListenProtocol::Api,
            _ => ListenProtocol::Amqp,
        };
        let api_port = p.or_default(config.port(&table::CONNECTOR_LISTEN_PROTOCOL_API_PORT));
        let api_path = config
            .string(&table::CONNECTOR_LISTEN_PROTOCOL_API_PATH)
            .unwrap_or_default();
        if !api_path.starts_with('/') {
            p.push(format!(
                "{}: must start with `/`",
                table::CONNECTOR_LISTEN_PROTOCOL_API_PATH.label()
            ));
        }
        if p.or_default(config.flag(&table::CONNECTOR_LISTEN_PROTOCOL_API_SSL)) {
            p.push(format!("{}: HTTPS is not served by this connector; put a TLS-terminating proxy in front and set {} to its https:// address", table::CONNECTOR_LISTEN_PROTOCOL_API_SSL.label(), table::CONNECTOR_LISTEN_PROTOCOL_API_URI.env));
        }
        let api_uri = config
            .value(&table::CONNECTOR_LISTEN_PROTOCOL_API_URI)
            .unwrap_or_else(|| format!("http://127.0.0.1:{api_port}"))
            .trim_end_matches('/')
            .to_owned();
        let api_bind = ip(config, p, &table::CONNECTOR_LISTEN_PROTOCOL_API_BIND);
        let queue_setting = if config.value(&table::CONNECTOR_QUEUE_PROTOCOL).is_none()
            && config.value(&table::QUEUE_PROTOCOL).is_some()
        {
            &table::QUEUE_PROTOCOL
        } else {
            &table::CONNECTOR_QUEUE_PROTOCOL
        };
        let queue_protocol = match p.or_default(config.choice(queue_setting)) {
            Some("api") => QueueProtocol::Api,
            _ => QueueProtocol::Amqp,
        };
        let push_strategy = match p.or_default(config.choice(&table::CONNECTOR_PUSH_STRATEGY)) {
            Some("bundle") => PushStrategy::Bundle,
            Some("pieces") => PushStrategy::Pieces,
            _ => PushStrategy::Auto,
        };
        let send_to_queue = p.or_default(config.flag(&table::CONNECTOR_SEND_TO_QUEUE));
        let mq = MqOverrides {
            host: config.value(&table::MQ_HOST),
            port: p
                .or_default(config.optional_integer(&table::MQ_PORT))
                .and_then(|n| u16::try_from(n).ok()),
            vhost: config.value(&table::MQ_VHOST),
            use_ssl: p.or_default(config.optional_flag(&table::MQ_USE_SSL)),
            user: config.value(&table::MQ_USER),
            pass: config.value(&table::MQ_PASS),
        };
        // IVRE_MAX_TLP is required (the Python connector's README says so; without it the
        // Python connector sent everything).
        let max_tlp = match config.value(&table::IVRE_MAX_TLP) {
            None if config.set_but_empty(&table::IVRE_MAX_TLP) => {
                p.push(format!("{} is set but empty: give the highest TLP of observables this connector may enrich, e.g. TLP:AMBER (an empty value never means \"no limit\")", table::IVRE_MAX_TLP.label()));
                Tlp::Clear
            }
            None => {
                p.push(format!("{} is required: the highest TLP of observables this connector may enrich, e.g. TLP:AMBER", table::IVRE_MAX_TLP.label()));
                Tlp::Clear
            }
            Some(v) => Tlp::parse(&v).unwrap_or_else(|e| {
                p.push(format!("{}: {e}", table::IVRE_MAX_TLP.label()));
                Tlp::Clear
            }),
        };
        let concurrency = p.or_default(config.integer(&table::CONNECTOR_CONCURRENCY));
        let ping_interval = p.or_default(config.seconds(&table::CONNECTOR_PING_INTERVAL));
        let work_ping_interval = p.or_default(config.seconds(&table::CONNECTOR_WORK_PING_INTERVAL));
        let reconnect_delay = p.or_default(config.seconds(&table::CONNECTOR_RECONNECT_DELAY));
        let shutdown_timeout = p.or_default(config.seconds(&table::CONNECTOR_SHUTDOWN_TIMEOUT));
        let geoip_dir = config.path(&table::IVRE_GEOIP_DIR);
        if let Some(dir) = &geoip_dir {
            if !dir.is_dir() {
                p.push(format!(
                    "{}: {} is not a directory",
                    table::IVRE_GEOIP_DIR.label(),
                    dir.display()
                ));
            }
        }
        let reload_poll = p
            .or_default(config.seconds(&table::IVRE_RELOAD_POLL))
            .max(Duration::from_secs(1));
        let enrich = EnrichOptions::read(config, p);
        let net = NetSettings::read(config, p);
        let fallback = FallbackSettings::read(config, p, &net);
        let sync = SyncSettings::read(config, p);
        let s3 = S3Settings::read(config, p);
        Settings {
            opencti_url,
            opencti_token,
            ssl_verify,
            json_logging,
            custom_headers,
            connector_id,
            connector_id_derived,
            connector_name,
            scope,
            auto,
            auto_update,
            enrichment_resolution,
            only_contextual,
            log_level,
            log_filter: config.value(&table::IVRE_LOG),
            expose_metrics,
            metrics_port,
            metrics_namespace,
            metrics_subsystem,
            health_bind,
            listen,
            api_listen: ApiListen {
                bind: api_bind,
                port: api_port,
                path: api_path,
                uri: api_uri,
            },
            queue_protocol,
            push_strategy,
            send_to_queue,
            mq,
            max_tlp,
            concurrency: usize::try_from(concurrency.clamp(1, 256)).unwrap_or(usize::MAX),
            ping_interval,
            work_ping_interval,
            reconnect_delay,
            shutdown_timeout,
            geoip_dir,
            reload_poll,
            enrich,
            fallback,
            sync,
            s3,
            net,
        }
    }

    /// True when `entity_type` (an OpenCTI or STIX type name, any case) is in scope.
    pub fn in_scope(&self, entity_type: &str) -> bool {
        self.scope
            .iter()
            .any(|s| s.eq_ignore_ascii_case(entity_type))
    }
}
