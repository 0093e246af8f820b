//! The daemon's configuration: pycti's variables (`OPENCTI-PROTOCOL.md` §12, §2.4, §5),
//! the Python connector's, and ours, validated all at once at start-up.

use crate::config::{ConfigError, ConfigFile};
use crate::enrich::EnrichOptions;
use crate::live::fallback::FallbackSettings;
use crate::observable::SCOPES;
use crate::stix::markings::Tlp;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
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
    pub connector_id: String,
    pub connector_name: String,
    pub scope: Vec<String>,
    pub auto: bool,
    pub auto_update: bool,
    pub enrichment_resolution: String,
    pub only_contextual: bool,
    pub log_level: String,
    pub expose_metrics: bool,
    pub metrics_port: u16,
    pub metrics_namespace: String,
    pub metrics_subsystem: String,
    pub listen: ListenProtocol,
    pub api_listen: ApiListen,
    pub queue_protocol: QueueProtocol,
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
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("opencti_url", &self.opencti_url)
            .field("opencti_token", &"***")
            .field("connector_id", &self.connector_id)
            .field("connector_name", &self.connector_name)
            .field("scope", &self.scope)
            .field("listen", &self.listen)
            .field("queue_protocol", &self.queue_protocol)
            .field("max_tlp", &self.max_tlp)
            .field("concurrency", &self.concurrency)
            .field("mq", &self.mq)
            .finish_non_exhaustive()
    }
}

/// Every problem found in the configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct SettingsError(pub Vec<String>);

struct Reader<'a> {
    config: &'a ConfigFile,
    errors: Vec<String>,
}

impl Reader<'_> {
    fn record<T>(&mut self, r: Result<T, ConfigError>, fallback: T) -> T {
        r.unwrap_or_else(|e| {
            self.errors.push(e.to_string());
            fallback
        })
    }

    fn string(&mut self, env: &str, section: &str, key: &str) -> Option<String> {
        self.config.get(env, section, key)
    }

    fn required(&mut self, env: &str, section: &str, key: &str) -> String {
        match self.config.get(env, section, key) {
            Some(v) => v,
            None => {
                self.errors
                    .push(format!("{section}.{key} ({env}) is required"));
                String::new()
            }
        }
    }

    fn flag(&mut self, env: &str, section: &str, key: &str, default: bool) -> bool {
        let r = self.config.get_bool(env, section, key, default);
        self.record(r, default)
    }

    fn number(&mut self, env: &str, section: &str, key: &str, default: u64) -> u64 {
        let r = self.config.get_u64(env, section, key, default);
        self.record(r, default)
    }

    fn port(&mut self, env: &str, section: &str, key: &str, default: u16) -> u16 {
        let n = self.number(env, section, key, u64::from(default));
        u16::try_from(n).unwrap_or_else(|_| {
            self.errors
                .push(format!("{section}.{key} ({env}): {n} is not a port"));
            default
        })
    }
}

/// `OPENCTI_CUSTOM_HEADERS="h1:v1;h2:v2"`.
fn custom_headers(raw: &str) -> Result<Vec<(String, String)>, String> {
    raw.split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            pair.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| format!("opencti.custom_headers (OPENCTI_CUSTOM_HEADERS): `{pair}` is not `name:value`"))
        })
        .collect()
}

/// A UUID in its textual form (what OpenCTI expects for `CONNECTOR_ID`).
fn looks_like_uuid(s: &str) -> bool {
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

impl Settings {
    /// Reads and validates every setting; all problems are reported together.
    pub fn from_config(config: &ConfigFile) -> Result<Settings, SettingsError> {
        let mut r = Reader {
            config,
            errors: Vec::new(),
        };
        let opencti_url = r
            .required("OPENCTI_URL", "opencti", "url")
            .trim_end_matches('/')
            .to_owned();
        if !opencti_url.is_empty()
            && !opencti_url.starts_with("http://")
            && !opencti_url.starts_with("https://")
        {
            r.errors.push(format!(
                "opencti.url (OPENCTI_URL): `{opencti_url}` is not an http(s) URL"
            ));
        }
        let opencti_token = r.required("OPENCTI_TOKEN", "opencti", "token");
        let ssl_verify = r.flag("OPENCTI_SSL_VERIFY", "opencti", "ssl_verify", false);
        let json_logging = r.flag("OPENCTI_JSON_LOGGING", "opencti", "json_logging", true);
        let custom_headers = match r.string("OPENCTI_CUSTOM_HEADERS", "opencti", "custom_headers") {
            None => Vec::new(),
            Some(raw) => custom_headers(&raw).unwrap_or_else(|e| {
                r.errors.push(e);
                Vec::new()
            }),
        };
        let connector_id = r.required("CONNECTOR_ID", "connector", "id");
        if !connector_id.is_empty() && !looks_like_uuid(&connector_id) {
            r.errors.push(format!(
                "connector.id (CONNECTOR_ID): `{connector_id}` is not a UUID"
            ));
        }
        if let Some(t) = r.string("CONNECTOR_TYPE", "connector", "type") {
            if !t.eq_ignore_ascii_case("INTERNAL_ENRICHMENT") {
                r.errors.push(format!("connector.type (CONNECTOR_TYPE): this connector is INTERNAL_ENRICHMENT, not `{t}`"));
            }
        }
        let connector_name = r
            .string("CONNECTOR_NAME", "connector", "name")
            .unwrap_or_else(|| "IVRE".into());
        if connector_name.trim().len() < 2 {
            r.errors
                .push("connector.name (CONNECTOR_NAME): at least 2 characters".into());
        }
        let scope: Vec<String> = match r.string("CONNECTOR_SCOPE", "connector", "scope") {
            None => SCOPES.iter().map(|s| s.to_string()).collect(),
            Some(raw) => raw
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        };
        for s in &scope {
            if !SCOPES.contains(&s.to_ascii_lowercase().as_str()) {
                r.errors.push(format!(
                    "connector.scope (CONNECTOR_SCOPE): `{s}` is not a type this connector enriches ({})",
                    SCOPES.join(", ")
                ));
            }
        }
        let auto = r.flag("CONNECTOR_AUTO", "connector", "auto", false);
        let auto_update = r.flag("CONNECTOR_AUTO_UPDATE", "connector", "auto_update", false);
        let enrichment_resolution = r
            .string(
                "CONNECTOR_ENRICHMENT_RESOLUTION",
                "connector",
                "enrichment_resolution",
            )
            .unwrap_or_else(|| "none".into());
        let only_contextual = r.flag(
            "CONNECTOR_ONLY_CONTEXTUAL",
            "connector",
            "only_contextual",
            false,
        );
        let log_level = r
            .string("CONNECTOR_LOG_LEVEL", "connector", "log_level")
            .unwrap_or_else(|| "error".into());
        if !["debug", "info", "warn", "warning", "error"]
            .contains(&log_level.to_ascii_lowercase().as_str())
        {
            r.errors.push(format!("connector.log_level (CONNECTOR_LOG_LEVEL): `{log_level}` is not debug, info, warn or error"));
        }
        let expose_metrics = r.flag(
            "CONNECTOR_EXPOSE_METRICS",
            "connector",
            "expose_metrics",
            false,
        );
        let metrics_port = r.port("CONNECTOR_METRICS_PORT", "connector", "metrics_port", 9095);
        let metrics_namespace = r
            .string(
                "CONNECTOR_METRICS_NAMESPACE",
                "connector",
                "metrics_namespace",
            )
            .unwrap_or_default();
        let metrics_subsystem = r
            .string(
                "CONNECTOR_METRICS_SUBSYSTEM",
                "connector",
                "metrics_subsystem",
            )
            .unwrap_or_default();
        let listen_raw = r.string("CONNECTOR_LISTEN_PROTOCOL", "connector", "listen_protocol");
        let listen = match listen_raw
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("AMQP") => ListenProtocol::Amqp,
            Some("API") => ListenProtocol::Api,
            Some(_) => {
                let other = listen_raw.unwrap_or_default();
                r.errors.push(format!("connector.listen_protocol (CONNECTOR_LISTEN_PROTOCOL): `{other}` is not AMQP or API"));
                ListenProtocol::Amqp
            }
        };
        let api_port = r.port(
            "CONNECTOR_LISTEN_PROTOCOL_API_PORT",
            "connector",
            "listen_protocol_api_port",
            7070,
        );
        let api_path = r
            .string(
                "CONNECTOR_LISTEN_PROTOCOL_API_PATH",
                "connector",
                "listen_protocol_api_path",
            )
            .unwrap_or_else(|| "/api/callback".into());
        if !api_path.starts_with('/') {
            r.errors.push("connector.listen_protocol_api_path (CONNECTOR_LISTEN_PROTOCOL_API_PATH): must start with `/`".into());
        }
        if r.flag(
            "CONNECTOR_LISTEN_PROTOCOL_API_SSL",
            "connector",
            "listen_protocol_api_ssl",
            false,
        ) {
            r.errors.push("connector.listen_protocol_api_ssl (CONNECTOR_LISTEN_PROTOCOL_API_SSL): HTTPS is not served by this connector; put a TLS-terminating proxy in front and set CONNECTOR_LISTEN_PROTOCOL_API_URI to its https:// address".into());
        }
        let api_uri = r
            .string(
                "CONNECTOR_LISTEN_PROTOCOL_API_URI",
                "connector",
                "listen_protocol_api_uri",
            )
            .unwrap_or_else(|| format!("http://127.0.0.1:{api_port}"))
            .trim_end_matches('/')
            .to_owned();
        let api_bind = match r.string("CONNECTOR_LISTEN_PROTOCOL_API_BIND", "connector", "listen_protocol_api_bind") {
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(b) => b.parse().unwrap_or_else(|_| {
                r.errors.push(format!("connector.listen_protocol_api_bind (CONNECTOR_LISTEN_PROTOCOL_API_BIND): `{b}` is not an IP address"));
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            }),
        };
        let queue_raw = r
            .string("CONNECTOR_QUEUE_PROTOCOL", "connector", "queue_protocol")
            .or_else(|| r.string("QUEUE_PROTOCOL", "connector", "queue_protocol"));
        let queue_protocol = match queue_raw.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("amqp") => QueueProtocol::Amqp,
            Some("api") => QueueProtocol::Api,
            Some(_) => {
                let other = queue_raw.unwrap_or_default();
                r.errors.push(format!("connector.queue_protocol (CONNECTOR_QUEUE_PROTOCOL): `{other}` is not amqp or api"));
                QueueProtocol::Amqp
            }
        };
        let send_to_queue = r.flag(
            "CONNECTOR_SEND_TO_QUEUE",
            "connector",
            "send_to_queue",
            true,
        );
        let mq_port = r
            .string("MQ_PORT", "mq", "port")
            .map(|_| r.port("MQ_PORT", "mq", "port", 5672));
        let mq_use_ssl = r
            .string("MQ_USE_SSL", "mq", "use_ssl")
            .map(|_| r.flag("MQ_USE_SSL", "mq", "use_ssl", false));
        let mq = MqOverrides {
            host: r.string("MQ_HOST", "mq", "host"),
            port: mq_port,
            vhost: r.string("MQ_VHOST", "mq", "vhost"),
            use_ssl: mq_use_ssl,
            user: r.string("MQ_USER", "mq", "user"),
            pass: r.string("MQ_PASS", "mq", "pass"),
        };
        // IVRE_MAX_TLP is required (the Python connector's README says so; without it the
        // Python connector sent everything).
        let max_tlp = match r.string("IVRE_MAX_TLP", "ivre", "max_tlp") {
            None => {
                r.errors.push("ivre.max_tlp (IVRE_MAX_TLP) is required: the highest TLP of observables this connector may enrich, e.g. TLP:AMBER".into());
                Tlp::Clear
            }
            Some(v) => Tlp::parse(&v).unwrap_or_else(|e| {
                r.errors.push(format!("ivre.max_tlp (IVRE_MAX_TLP): {e}"));
                Tlp::Clear
            }),
        };
        let concurrency = r.number("CONNECTOR_CONCURRENCY", "connector", "concurrency", 1);
        if concurrency == 0 || concurrency > 256 {
            r.errors.push(format!("connector.concurrency (CONNECTOR_CONCURRENCY): {concurrency} is not between 1 and 256"));
        }
        let seconds = |r: &mut Reader, env: &str, key: &str, default: u64| {
            let n = r.number(env, "connector", key, default);
            if n == 0 {
                r.errors
                    .push(format!("connector.{key} ({env}) must be at least 1 second"));
            }
            Duration::from_secs(n.max(1))
        };
        let ping_interval = seconds(&mut r, "CONNECTOR_PING_INTERVAL", "ping_interval", 40);
        let work_ping_interval = seconds(
            &mut r,
            "CONNECTOR_WORK_PING_INTERVAL",
            "work_ping_interval",
            300,
        );
        let reconnect_delay = seconds(&mut r, "CONNECTOR_RECONNECT_DELAY", "reconnect_delay", 10);
        let shutdown_timeout =
            seconds(&mut r, "CONNECTOR_SHUTDOWN_TIMEOUT", "shutdown_timeout", 60);
        let geoip_dir = r
            .string("IVRE_GEOIP_DIR", "ivre", "geoip_dir")
            .map(std::path::PathBuf::from);
        if let Some(dir) = &geoip_dir {
            if !dir.is_dir() {
                r.errors.push(format!(
                    "ivre.geoip_dir (IVRE_GEOIP_DIR): {} is not a directory",
                    dir.display()
                ));
            }
        }
        let reload_poll = {
            let n = r.number("IVRE_RELOAD_POLL", "ivre", "reload_poll", 30);
            Duration::from_secs(n.max(1))
        };
        let enrich = EnrichOptions::from_config(config).unwrap_or_else(|e| {
            r.errors.push(e.to_string());
            EnrichOptions::default()
        });
        let fallback = FallbackSettings::from_config(config).unwrap_or_else(|e| {
            r.errors.push(e.to_string());
            FallbackSettings::default()
        });
        if !r.errors.is_empty() {
            return Err(SettingsError(r.errors));
        }
        Ok(Settings {
            opencti_url,
            opencti_token,
            ssl_verify,
            json_logging,
            custom_headers,
            connector_id,
            connector_name,
            scope,
            auto,
            auto_update,
            enrichment_resolution,
            only_contextual,
            log_level,
            expose_metrics,
            metrics_port,
            metrics_namespace,
            metrics_subsystem,
            listen,
            api_listen: ApiListen {
                bind: api_bind,
                port: api_port,
                path: api_path,
                uri: api_uri,
            },
            queue_protocol,
            send_to_queue,
            mq,
            max_tlp,
            concurrency: concurrency.clamp(1, 256) as usize,
            ping_interval,
            work_ping_interval,
            reconnect_delay,
            shutdown_timeout,
            geoip_dir,
            reload_poll,
            enrich,
            fallback,
        })
    }

    /// True when `entity_type` (an OpenCTI or STIX type name, any case) is in scope.
    pub fn in_scope(&self, entity_type: &str) -> bool {
        self.scope
            .iter()
            .any(|s| s.eq_ignore_ascii_case(entity_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Settings, SettingsError> {
        Settings::from_config(&ConfigFile::parse(yaml, None).unwrap())
    }

    const BASE: &str = "opencti:\n  url: http://opencti:8080/\n  token: secret-token\nconnector:\n  id: 6c3f2a4e-8d2b-4a7e-9a36-1b2c3d4e5f60\nivre:\n  max_tlp: TLP:AMBER\n";

    #[test]
    fn defaults_follow_pycti() {
        let s = parse(BASE).unwrap();
        assert_eq!(s.opencti_url, "http://opencti:8080");
        assert_eq!(s.listen, ListenProtocol::Amqp);
        assert_eq!(s.queue_protocol, QueueProtocol::Amqp);
        assert_eq!(s.max_tlp, Tlp::Amber);
        assert_eq!(s.metrics_port, 9095);
        assert_eq!(s.ping_interval, Duration::from_secs(40));
        assert_eq!(s.concurrency, 1);
        assert!(s.in_scope("IPv4-Addr") && s.in_scope("x509-certificate") && !s.in_scope("Report"));
        assert_eq!(s.api_listen.uri, "http://127.0.0.1:7070");
        assert!(
            !format!("{s:?}").contains("secret-token"),
            "the token never shows"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = parse("connector:\n  id: nope\n  concurrency: 0\n  listen_protocol: carrier-pigeon\nivre:\n  max_tlp: amber\n").unwrap_err();
        let text = err.to_string();
        for needle in [
            "OPENCTI_URL",
            "OPENCTI_TOKEN",
            "CONNECTOR_ID",
            "CONNECTOR_CONCURRENCY",
            "carrier-pigeon",
            "IVRE_MAX_TLP",
            "`amber`",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
        let missing_tlp = parse(&BASE.replace("  max_tlp: TLP:AMBER\n", "  x: y\n")).unwrap_err();
        assert!(missing_tlp
            .to_string()
            .contains("IVRE_MAX_TLP) is required"));
    }

    #[test]
    fn headers_and_scope_parse() {
        assert_eq!(
            custom_headers("a: 1 ;b:2:3").unwrap(),
            vec![("a".into(), "1".into()), ("b".into(), "2:3".into())]
        );
        assert!(custom_headers("nocolon").is_err());
        let s = parse(&format!("{BASE}  x: 1\n")).unwrap();
        assert_eq!(s.scope.len(), 6);
        let bad = parse(&BASE.replace("connector:\n", "connector:\n  scope: ipv4-addr, report\n"))
            .unwrap_err();
        assert!(bad.to_string().contains("`report`"));
    }
}
