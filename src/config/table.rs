//! Every setting, declared once: its environment variable, YAML key, kind, default and
//! description. The readers ([`super::ConfigFile`]) take a [`Setting`]; the documentation,
//! `config.yml.sample`, the JSON schema and the compose files are rendered from
//! [`SETTINGS`] (see [`super::generate`]).

/// How a setting's text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Str,
    /// pycti's booleans: `yes`/`true`/`True`, `no`/`false`/`False`.
    Bool,
    /// An unsigned integer within `min..=max`.
    Int { min: u64, max: u64 },
    /// A whole number of seconds, at least `min`.
    Seconds { min: u64 },
    /// A duration with a unit (`30s`, `30m`, `1h`, `1d`) or bare seconds
    /// ([`super::parse_duration`]).
    Duration,
    /// A [`Kind::Duration`] or `off` (the periodic task disabled).
    Period,
    /// One of these values (compared without regard to case).
    Enum(&'static [&'static str]),
    /// A URI (`scheme://…`).
    Uri,
    /// A file or directory.
    Path,
    /// A comma-separated list.
    List,
    /// An IP address (v4 or v6).
    Ip,
}

/// Where a setting is documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    OpenCti,
    Connector,
    Broker,
    IvreSources,
    Enrichment,
    Fallback,
    SnapshotSync,
    Network,
}

impl Group {
    /// Every group, in documentation order.
    pub const ALL: [Group; 8] = [
        Group::OpenCti,
        Group::Connector,
        Group::Broker,
        Group::IvreSources,
        Group::Enrichment,
        Group::Fallback,
        Group::SnapshotSync,
        Group::Network,
    ];

    /// The heading of the group in the documentation.
    pub fn title(self) -> &'static str {
        match self {
            Group::OpenCti => "OpenCTI",
            Group::Connector => "Connector",
            Group::Broker => "Broker (overrides of what the platform returns)",
            Group::IvreSources => "IVRE sources",
            Group::Enrichment => "Enrichment",
            Group::Fallback => "Cache-miss fallback to live IVRE",
            Group::SnapshotSync => "Snapshot and sync",
            Group::Network => "Network",
        }
    }
}

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable (wins over the YAML key when set).
    pub env: &'static str,
    /// `(section, key)` in the YAML file; `None` for variables read from the environment only.
    pub yaml: Option<(&'static str, &'static str)>,
    pub kind: Kind,
    /// The default, as the text an operator would write; `None`: unset (or computed, see
    /// the description).
    pub default: Option<&'static str>,
    /// For operators: one or two sentences.
    pub description: &'static str,
    /// Never shown (logs, `Debug`); `format: password` in the schema.
    pub secret: bool,
    /// `ivre-connector run` refuses to start without it.
    pub required: bool,
    /// Set by OpenCTI's connector manager itself (the schema follows the connectors
    /// repository for these).
    pub manager: bool,
    pub group: Group,
}

impl Setting {
    /// How messages name it: `section.key (ENV)`, or `ENV` alone.
    pub fn label(&self) -> String {
        match self.yaml {
            Some((section, key)) => format!("{section}.{key} ({})", self.env),
            None => self.env.to_owned(),
        }
    }

    /// The YAML `section.key`, if any.
    pub fn yaml_key(&self) -> Option<String> {
        self.yaml.map(|(s, k)| format!("{s}.{k}"))
    }
}

/// The base of every declaration below.
const BASE: Setting = Setting {
    env: "",
    yaml: None,
    kind: Kind::Str,
    default: None,
    description: "",
    secret: false,
    required: false,
    manager: false,
    group: Group::Connector,
};

const PORT: Kind = Kind::Int { min: 0, max: 65535 };
const COUNT: Kind = Kind::Int {
    min: 0,
    max: u64::MAX,
};

/// The TLP names `IVRE_MAX_TLP` accepts (any case).
pub const TLP_NAMES: &[&str] = &[
    "TLP:CLEAR",
    "TLP:WHITE",
    "TLP:GREEN",
    "TLP:AMBER",
    "TLP:AMBER+STRICT",
    "TLP:RED",
];

// --- OpenCTI ---------------------------------------------------------------------------

pub const OPENCTI_URL: Setting = Setting {
    env: "OPENCTI_URL",
    yaml: Some(("opencti", "url")),
    kind: Kind::Uri,
    description: "The base URL of the OpenCTI platform (http or https).",
    required: true,
    manager: true,
    group: Group::OpenCti,
    ..BASE
};
pub const OPENCTI_TOKEN: Setting = Setting {
    env: "OPENCTI_TOKEN",
    yaml: Some(("opencti", "token")),
    description: "The API token of the connector's OpenCTI user; never logged.",
    secret: true,
    required: true,
    manager: true,
    group: Group::OpenCti,
    ..BASE
};
pub const OPENCTI_SSL_VERIFY: Setting = Setting {
    env: "OPENCTI_SSL_VERIFY",
    yaml: Some(("opencti", "ssl_verify")),
    kind: Kind::Bool,
    default: Some("false"),
    description: "Verify the platform's TLS certificate (pycti's default: false; starting with it off against an https:// URL logs a warning whatever the log level).",
    group: Group::OpenCti,
    ..BASE
};
pub const OPENCTI_SSL_CA: Setting = Setting {
    env: "OPENCTI_SSL_CA",
    yaml: Some(("opencti", "ssl_ca")),
    kind: Kind::Path,
    description: "A PEM bundle of CA certificates trusted for the platform's TLS certificate, besides the built-in ones and SSL_CERT_FILE.",
    group: Group::OpenCti,
    ..BASE
};
pub const OPENCTI_JSON_LOGGING: Setting = Setting {
    env: "OPENCTI_JSON_LOGGING",
    yaml: Some(("opencti", "json_logging")),
    kind: Kind::Bool,
    default: Some("true"),
    description: "Log pycti's JSON lines on stderr; false: human-readable text.",
    group: Group::OpenCti,
    ..BASE
};
pub const OPENCTI_CUSTOM_HEADERS: Setting = Setting {
    env: "OPENCTI_CUSTOM_HEADERS",
    yaml: Some(("opencti", "custom_headers")),
    description: "Extra HTTP headers sent to the platform, `name:value` pairs separated by `;`.",
    group: Group::OpenCti,
    ..BASE
};

// --- Connector -------------------------------------------------------------------------

pub const CONNECTOR_ID: Setting = Setting {
    env: "CONNECTOR_ID",
    yaml: Some(("connector", "id")),
    description:
        "The connector's UUID. When unset, a stable UUIDv5 derived from CONNECTOR_NAME is used.",
    manager: true,
    ..BASE
};
pub const CONNECTOR_NAME: Setting = Setting {
    env: "CONNECTOR_NAME",
    yaml: Some(("connector", "name")),
    default: Some("IVRE"),
    description:
        "The connector's name in OpenCTI, also the author Organization of what it creates.",
    ..BASE
};
pub const CONNECTOR_TYPE: Setting = Setting {
    env: "CONNECTOR_TYPE",
    yaml: Some(("connector", "type")),
    kind: Kind::Enum(&["INTERNAL_ENRICHMENT"]),
    default: Some("INTERNAL_ENRICHMENT"),
    description: "The connector type; this connector is an internal enrichment one.",
    ..BASE
};
pub const CONNECTOR_SCOPE: Setting = Setting {
    env: "CONNECTOR_SCOPE",
    yaml: Some(("connector", "scope")),
    kind: Kind::List,
    default: Some("ipv4-addr,ipv6-addr,domain-name,mac-addr,autonomous-system,x509-certificate"),
    description: "The observable types to enrich (comma-separated, among the default ones).",
    ..BASE
};
pub const CONNECTOR_AUTO: Setting = Setting {
    env: "CONNECTOR_AUTO",
    yaml: Some(("connector", "auto")),
    kind: Kind::Bool,
    default: Some("false"),
    description: "Enrich observables automatically when they are created or updated.",
    ..BASE
};
pub const CONNECTOR_AUTO_UPDATE: Setting = Setting {
    env: "CONNECTOR_AUTO_UPDATE",
    yaml: Some(("connector", "auto_update")),
    kind: Kind::Bool,
    default: Some("false"),
    description: "Enrich again when an observable is updated (OpenCTI 6.8+).",
    ..BASE
};
pub const CONNECTOR_ENRICHMENT_RESOLUTION: Setting = Setting {
    env: "CONNECTOR_ENRICHMENT_RESOLUTION",
    yaml: Some(("connector", "enrichment_resolution")),
    default: Some("none"),
    description: "Registered enrichment resolution (OpenCTI 6.8+).",
    ..BASE
};
pub const CONNECTOR_ONLY_CONTEXTUAL: Setting = Setting {
    env: "CONNECTOR_ONLY_CONTEXTUAL",
    yaml: Some(("connector", "only_contextual")),
    kind: Kind::Bool,
    default: Some("false"),
    description: "Only enrich observables within a context (pycti's option).",
    ..BASE
};
pub const CONNECTOR_LOG_LEVEL: Setting = Setting {
    env: "CONNECTOR_LOG_LEVEL",
    yaml: Some(("connector", "log_level")),
    kind: Kind::Enum(&["debug", "info", "warn", "warning", "error"]),
    default: Some("error"),
    description: "The minimum level of logs to display.",
    ..BASE
};
pub const IVRE_LOG: Setting = Setting {
    env: "IVRE_LOG",
    description: "A tracing filter directive (e.g. `info,ivre_connector::opencti=debug`) replacing CONNECTOR_LOG_LEVEL and `-v`.",
    ..BASE
};
pub const CONNECTOR_EXPOSE_METRICS: Setting = Setting {
    env: "CONNECTOR_EXPOSE_METRICS",
    yaml: Some(("connector", "expose_metrics")),
    kind: Kind::Bool,
    default: Some("false"),
    description: "Serve Prometheus metrics on `/metrics` of the health server.",
    ..BASE
};
pub const CONNECTOR_METRICS_PORT: Setting = Setting {
    env: "CONNECTOR_METRICS_PORT",
    yaml: Some(("connector", "metrics_port")),
    kind: PORT,
    default: Some("9095"),
    description: "The port of the health and metrics server.",
    ..BASE
};
pub const CONNECTOR_METRICS_NAMESPACE: Setting = Setting {
    env: "CONNECTOR_METRICS_NAMESPACE",
    yaml: Some(("connector", "metrics_namespace")),
    description: "Prefix of the metric names (`[a-zA-Z_][a-zA-Z0-9_]*`; unset: none).",
    ..BASE
};
pub const CONNECTOR_METRICS_SUBSYSTEM: Setting = Setting {
    env: "CONNECTOR_METRICS_SUBSYSTEM",
    yaml: Some(("connector", "metrics_subsystem")),
    description: "Second prefix of the metric names, after the namespace (unset: none).",
    ..BASE
};
pub const CONNECTOR_HEALTH_BIND: Setting = Setting {
    env: "CONNECTOR_HEALTH_BIND",
    yaml: Some(("connector", "health_bind")),
    kind: Kind::Ip,
    default: Some("0.0.0.0"),
    description: "Address of the health server on CONNECTOR_METRICS_PORT: `/health` and `/ready` always, `/metrics` when CONNECTOR_EXPOSE_METRICS is true.",
    ..BASE
};
pub const CONNECTOR_HTTP_MAX_CONNECTIONS: Setting = Setting {
    env: "CONNECTOR_HTTP_MAX_CONNECTIONS",
    yaml: Some(("connector", "http_max_connections")),
    kind: Kind::Int { min: 2, max: 16384 },
    default: Some("256"),
    description: "Connections open at once on each HTTP server of the daemon (health, API-mode callback); at the cap, a new connection evicts the oldest one without a request in progress.",
    ..BASE
};
pub const CONNECTOR_HTTP_HEADER_TIMEOUT: Setting = Setting {
    env: "CONNECTOR_HTTP_HEADER_TIMEOUT",
    yaml: Some(("connector", "http_header_timeout")),
    kind: Kind::Seconds { min: 1 },
    default: Some("10"),
    description: "Seconds a client of the daemon's HTTP servers has to send a whole request head (also the idle time of a keep-alive connection).",
    ..BASE
};
pub const CONNECTOR_HTTP_BODY_TIMEOUT: Setting = Setting {
    env: "CONNECTOR_HTTP_BODY_TIMEOUT",
    yaml: Some(("connector", "http_body_timeout")),
    kind: Kind::Seconds { min: 1 },
    default: Some("60"),
    description: "Seconds a platform worker has to send the whole body of a callback request (API listen mode).",
    ..BASE
};
pub const CONNECTOR_LISTEN_PROTOCOL: Setting = Setting {
    env: "CONNECTOR_LISTEN_PROTOCOL",
    yaml: Some(("connector", "listen_protocol")),
    kind: Kind::Enum(&["AMQP", "API"]),
    default: Some("AMQP"),
    description: "How requests arrive: AMQP (the RabbitMQ queue) or API (HTTP POSTs from the platform's workers, 6.5+).",
    ..BASE
};
pub const CONNECTOR_LISTEN_PROTOCOL_API_PORT: Setting = Setting {
    env: "CONNECTOR_LISTEN_PROTOCOL_API_PORT",
    yaml: Some(("connector", "listen_protocol_api_port")),
    kind: PORT,
    default: Some("7070"),
    description: "Port of the HTTP listener in API listen mode.",
    ..BASE
};
pub const CONNECTOR_LISTEN_PROTOCOL_API_PATH: Setting = Setting {
    env: "CONNECTOR_LISTEN_PROTOCOL_API_PATH",
    yaml: Some(("connector", "listen_protocol_api_path")),
    default: Some("/api/callback"),
    description: "Path of the HTTP listener in API listen mode (starts with `/`).",
    ..BASE
};
pub const CONNECTOR_LISTEN_PROTOCOL_API_SSL: Setting = Setting {
    env: "CONNECTOR_LISTEN_PROTOCOL_API_SSL",
    yaml: Some(("connector", "listen_protocol_api_ssl")),
    kind: Kind::Bool,
    default: Some("false"),
    description: "Must stay false: HTTPS is not served by the connector; put a TLS-terminating proxy in front.",
    ..BASE
};
pub const CONNECTOR_LISTEN_PROTOCOL_API_URI: Setting = Setting {
    env: "CONNECTOR_LISTEN_PROTOCOL_API_URI",
    yaml: Some(("connector", "listen_protocol_api_uri")),
    kind: Kind::Uri,
    description: "Public base URI the platform's workers call in API listen mode (default: `http://127.0.0.1:<port>`).",
    ..BASE
};
pub const CONNECTOR_LISTEN_PROTOCOL_API_BIND: Setting = Setting {
    env: "CONNECTOR_LISTEN_PROTOCOL_API_BIND",
    yaml: Some(("connector", "listen_protocol_api_bind")),
    kind: Kind::Ip,
    default: Some("0.0.0.0"),
    description: "Address the HTTP listener binds to in API listen mode.",
    ..BASE
};
pub const CONNECTOR_QUEUE_PROTOCOL: Setting = Setting {
    env: "CONNECTOR_QUEUE_PROTOCOL",
    yaml: Some(("connector", "queue_protocol")),
    kind: Kind::Enum(&["amqp", "api"]),
    default: Some("amqp"),
    description:
        "How bundles go back: amqp (split bundles on RabbitMQ) or api (GraphQL stixBundlePush).",
    ..BASE
};
pub const CONNECTOR_PUSH_STRATEGY: Setting = Setting {
    env: "CONNECTOR_PUSH_STRATEGY",
    yaml: Some(("connector", "push_strategy")),
    kind: Kind::Enum(&["auto", "bundle", "pieces"]),
    default: Some("auto"),
    description: "How a bundle goes on RabbitMQ (amqp queue protocol): bundle (one message, the platform's worker splits it), pieces (pycti's one object per message, after addExpectations), auto (bundle from platform 6.4 on, else pieces).",
    ..BASE
};
pub const QUEUE_PROTOCOL: Setting = Setting {
    env: "QUEUE_PROTOCOL",
    kind: Kind::Enum(&["amqp", "api"]),
    description: "pycti's older name of CONNECTOR_QUEUE_PROTOCOL, read when that one is unset.",
    ..BASE
};
pub const CONNECTOR_SEND_TO_QUEUE: Setting = Setting {
    env: "CONNECTOR_SEND_TO_QUEUE",
    yaml: Some(("connector", "send_to_queue")),
    kind: Kind::Bool,
    default: Some("true"),
    description: "Push bundles and report works; false: enrich without sending anything.",
    ..BASE
};
pub const CONNECTOR_CONCURRENCY: Setting = Setting {
    env: "CONNECTOR_CONCURRENCY",
    yaml: Some(("connector", "concurrency")),
    kind: Kind::Int { min: 1, max: 256 },
    default: Some("1"),
    description: "Messages processed at once (1: one at a time, as pycti).",
    ..BASE
};
pub const CONNECTOR_PING_INTERVAL: Setting = Setting {
    env: "CONNECTOR_PING_INTERVAL",
    yaml: Some(("connector", "ping_interval")),
    kind: Kind::Seconds { min: 1 },
    default: Some("40"),
    description: "Seconds between two pings of the platform.",
    ..BASE
};
pub const CONNECTOR_WORK_PING_INTERVAL: Setting = Setting {
    env: "CONNECTOR_WORK_PING_INTERVAL",
    yaml: Some(("connector", "work_ping_interval")),
    kind: Kind::Seconds { min: 1 },
    default: Some("300"),
    description: "Seconds between two pings of a work during a long enrichment.",
    ..BASE
};
pub const CONNECTOR_RECONNECT_DELAY: Setting = Setting {
    env: "CONNECTOR_RECONNECT_DELAY",
    yaml: Some(("connector", "reconnect_delay")),
    kind: Kind::Seconds { min: 1 },
    default: Some("10"),
    description: "Seconds to wait before reconnecting to the broker.",
    ..BASE
};
pub const CONNECTOR_SHUTDOWN_TIMEOUT: Setting = Setting {
    env: "CONNECTOR_SHUTDOWN_TIMEOUT",
    yaml: Some(("connector", "shutdown_timeout")),
    kind: Kind::Seconds { min: 1 },
    default: Some("60"),
    description: "Seconds given to enrichments in progress to finish on SIGTERM.",
    ..BASE
};

// --- Broker ----------------------------------------------------------------------------

pub const MQ_HOST: Setting = Setting {
    env: "MQ_HOST",
    yaml: Some(("mq", "host")),
    description: "RabbitMQ host, instead of the one the platform returns.",
    group: Group::Broker,
    ..BASE
};
pub const MQ_PORT: Setting = Setting {
    env: "MQ_PORT",
    yaml: Some(("mq", "port")),
    kind: PORT,
    description: "RabbitMQ port, instead of the one the platform returns.",
    group: Group::Broker,
    ..BASE
};
pub const MQ_VHOST: Setting = Setting {
    env: "MQ_VHOST",
    yaml: Some(("mq", "vhost")),
    description: "RabbitMQ virtual host, instead of the one the platform returns.",
    group: Group::Broker,
    ..BASE
};
pub const MQ_USE_SSL: Setting = Setting {
    env: "MQ_USE_SSL",
    yaml: Some(("mq", "use_ssl")),
    kind: Kind::Bool,
    description: "Connect to RabbitMQ with TLS, instead of what the platform returns.",
    group: Group::Broker,
    ..BASE
};
pub const MQ_USER: Setting = Setting {
    env: "MQ_USER",
    yaml: Some(("mq", "user")),
    description: "RabbitMQ user, instead of the one the platform returns.",
    group: Group::Broker,
    ..BASE
};
pub const MQ_PASS: Setting = Setting {
    env: "MQ_PASS",
    yaml: Some(("mq", "pass")),
    description: "RabbitMQ password, instead of the one the platform returns.",
    secret: true,
    group: Group::Broker,
    ..BASE
};

// --- IVRE sources ----------------------------------------------------------------------

pub const IVRE_DB_URL: Setting = Setting {
    env: "IVRE_DB_URL",
    yaml: Some(("ivre", "db_url")),
    kind: Kind::Uri,
    description: "Live IVRE for every purpose: `mongodb://host/ivre` or `http(s)://host/cgi#X-API-Key=…` (credentials are never logged).",
    group: Group::IvreSources,
    ..BASE
};
pub const IVRE_DB_URL_SCANS: Setting = Setting {
    env: "IVRE_DB_URL_SCANS",
    yaml: Some(("ivre", "db_url_scans")),
    kind: Kind::Uri,
    description: "Live IVRE for scan records (default: IVRE_DB_URL).",
    group: Group::IvreSources,
    ..BASE
};
pub const IVRE_DB_URL_PASSIVE: Setting = Setting {
    env: "IVRE_DB_URL_PASSIVE",
    yaml: Some(("ivre", "db_url_passive")),
    kind: Kind::Uri,
    description: "Live IVRE for passive records (default: IVRE_DB_URL).",
    group: Group::IvreSources,
    ..BASE
};
pub const IVRE_DB_URL_DATA: Setting = Setting {
    env: "IVRE_DB_URL_DATA",
    yaml: Some(("ivre", "db_url_data")),
    kind: Kind::Uri,
    description:
        "Live IVRE for address data (default: IVRE_DB_URL; `maxmind://DIR` names MaxMind files).",
    group: Group::IvreSources,
    ..BASE
};
pub const IVRE_GEOIP_DIR: Setting = Setting {
    env: "IVRE_GEOIP_DIR",
    yaml: Some(("ivre", "geoip_dir")),
    kind: Kind::Path,
    description: "A directory of live MaxMind `.mmdb` files used instead of the snapshot's, reloaded when replaced.",
    group: Group::IvreSources,
    ..BASE
};

// --- Enrichment ------------------------------------------------------------------------

pub const IVRE_MAX_TLP: Setting = Setting {
    env: "IVRE_MAX_TLP",
    yaml: Some(("ivre", "max_tlp")),
    kind: Kind::Enum(TLP_NAMES),
    description:
        "The highest TLP of observables this connector may enrich; nothing above it is enriched.",
    required: true,
    group: Group::Enrichment,
    ..BASE
};
pub const IVRE_USE_DATA: Setting = Setting {
    env: "IVRE_USE_DATA",
    yaml: Some(("ivre", "use_data")),
    kind: Kind::Bool,
    default: Some("true"),
    description: "Use IVRE's address data (MaxMind: location, AS) for addresses.",
    group: Group::Enrichment,
    ..BASE
};
pub const IVRE_USE_PASSIVE: Setting = Setting {
    env: "IVRE_USE_PASSIVE",
    yaml: Some(("ivre", "use_passive")),
    kind: Kind::Bool,
    default: Some("true"),
    description: "Use passive records.",
    group: Group::Enrichment,
    ..BASE
};
pub const IVRE_USE_PASSIVE_AS: Setting = Setting {
    env: "IVRE_USE_PASSIVE_AS",
    yaml: Some(("ivre", "use_passive_as")),
    kind: Kind::Bool,
    default: Some("true"),
    description: "Use passive records for autonomous systems.",
    group: Group::Enrichment,
    ..BASE
};
pub const IVRE_USE_PASSIVE_DOMAIN: Setting = Setting {
    env: "IVRE_USE_PASSIVE_DOMAIN",
    yaml: Some(("ivre", "use_passive_domain")),
    kind: Kind::Bool,
    default: Some("true"),
    description: "Use passive records for domain names.",
    group: Group::Enrichment,
    ..BASE
};
pub const IVRE_USE_SCANS: Setting = Setting {
    env: "IVRE_USE_SCANS",
    yaml: Some(("ivre", "use_scans")),
    kind: Kind::Bool,
    default: Some("true"),
    description: "Use scan records.",
    group: Group::Enrichment,
    ..BASE
};
pub const IVRE_USE_SCANS_AS: Setting = Setting {
    env: "IVRE_USE_SCANS_AS",
    yaml: Some(("ivre", "use_scans_as")),
    kind: Kind::Bool,
    default: Some("false"),
    description: "Use scan records for autonomous systems.",
    group: Group::Enrichment,
    ..BASE
};
pub const IVRE_USE_SCANS_DOMAIN: Setting = Setting {
    env: "IVRE_USE_SCANS_DOMAIN",
    yaml: Some(("ivre", "use_scans_domain")),
    kind: Kind::Bool,
    default: Some("false"),
    description: "Use scan records for domain names.",
    group: Group::Enrichment,
    ..BASE
};
pub const IVRE_RELATIONSHIP_TIMES: Setting = Setting {
    env: "IVRE_RELATIONSHIP_TIMES",
    yaml: Some(("ivre", "relationship_times")),
    kind: Kind::Bool,
    default: Some("false"),
    description: "Put IVRE's first/last seen in relationships' start_time/stop_time, not only in their description.",
    group: Group::Enrichment,
    ..BASE
};
pub const IVRE_NOTE: Setting = Setting {
    env: "IVRE_NOTE",
    yaml: Some(("ivre", "note")),
    kind: Kind::Bool,
    default: Some("true"),
    description: "Add to each bundle a Note saying how many IVRE records were used and when they were first and last seen; it changes only when IVRE's answer does.",
    group: Group::Enrichment,
    ..BASE
};
pub const IVRE_MAX_RECORDS: Setting = Setting {
    env: "IVRE_MAX_RECORDS",
    yaml: Some(("ivre", "max_records")),
    kind: Kind::Int {
        min: 1,
        max: u64::MAX,
    },
    default: Some("1000"),
    description: "Records used per search and observable.",
    group: Group::Enrichment,
    ..BASE
};

// --- Fallback --------------------------------------------------------------------------

pub const IVRE_FALLBACK: Setting = Setting {
    env: "IVRE_FALLBACK",
    yaml: Some(("ivre", "fallback")),
    kind: Kind::Bool,
    description: "Look observables the snapshot does not know up in live IVRE (default: true when an IVRE URL is set).",
    group: Group::Fallback,
    ..BASE
};
pub const IVRE_FALLBACK_TIMEOUT: Setting = Setting {
    env: "IVRE_FALLBACK_TIMEOUT",
    yaml: Some(("ivre", "fallback_timeout")),
    kind: Kind::Seconds { min: 0 },
    default: Some("10"),
    description: "Seconds a live lookup may take.",
    group: Group::Fallback,
    ..BASE
};
pub const IVRE_FALLBACK_TTL: Setting = Setting {
    env: "IVRE_FALLBACK_TTL",
    yaml: Some(("ivre", "fallback_ttl")),
    kind: Kind::Seconds { min: 0 },
    default: Some("3600"),
    description: "Seconds a live answer is kept.",
    group: Group::Fallback,
    ..BASE
};
pub const IVRE_FALLBACK_NEGATIVE_TTL: Setting = Setting {
    env: "IVRE_FALLBACK_NEGATIVE_TTL",
    yaml: Some(("ivre", "fallback_negative_ttl")),
    kind: Kind::Seconds { min: 0 },
    default: Some("300"),
    description: "Seconds an empty live answer is kept.",
    group: Group::Fallback,
    ..BASE
};
pub const IVRE_FALLBACK_CACHE_ENTRIES: Setting = Setting {
    env: "IVRE_FALLBACK_CACHE_ENTRIES",
    yaml: Some(("ivre", "fallback_cache_entries")),
    kind: Kind::Int {
        min: 1,
        max: 10_000_000,
    },
    default: Some("10000"),
    description: "Most live answers kept in memory (the overlay); the least used go first.",
    group: Group::Fallback,
    ..BASE
};
pub const IVRE_FALLBACK_CACHE_BYTES: Setting = Setting {
    env: "IVRE_FALLBACK_CACHE_BYTES",
    yaml: Some(("ivre", "fallback_cache_bytes")),
    kind: Kind::Int {
        min: 1_048_576,
        max: u64::MAX,
    },
    default: Some("67108864"),
    description: "Most bytes of live answers kept in memory (the overlay; 64 MiB by default).",
    group: Group::Fallback,
    ..BASE
};
pub const IVRE_FALLBACK_BREAKER_FAILURES: Setting = Setting {
    env: "IVRE_FALLBACK_BREAKER_FAILURES",
    yaml: Some(("ivre", "fallback_breaker_failures")),
    kind: COUNT,
    default: Some("5"),
    description: "Consecutive failures after which live IVRE is not queried for a while.",
    group: Group::Fallback,
    ..BASE
};
pub const IVRE_FALLBACK_BREAKER_COOLDOWN: Setting = Setting {
    env: "IVRE_FALLBACK_BREAKER_COOLDOWN",
    yaml: Some(("ivre", "fallback_breaker_cooldown")),
    kind: Kind::Seconds { min: 0 },
    default: Some("60"),
    description: "Seconds live IVRE is left alone after those failures.",
    group: Group::Fallback,
    ..BASE
};

// --- Snapshot and sync -----------------------------------------------------------------

pub const IVRE_DATA_DIR: Setting = Setting {
    env: "IVRE_DATA_DIR",
    yaml: Some(("ivre", "data_dir")),
    kind: Kind::Path,
    default: Some("./ivre-data"),
    description:
        "The data directory holding the snapshots (every command; `--data-dir` overrides it).",
    group: Group::SnapshotSync,
    ..BASE
};
pub const IVRE_RELOAD_POLL: Setting = Setting {
    env: "IVRE_RELOAD_POLL",
    yaml: Some(("ivre", "reload_poll")),
    kind: Kind::Seconds { min: 0 },
    default: Some("30"),
    description:
        "Seconds between two looks for a new snapshot or MaxMind files, besides file events.",
    group: Group::SnapshotSync,
    ..BASE
};
pub const IVRE_SYNC_INTERVAL: Setting = Setting {
    env: "IVRE_SYNC_INTERVAL",
    yaml: Some(("ivre", "sync_interval")),
    kind: Kind::Period,
    default: Some("1h"),
    description: "How often the daemon pulls incrementally from live IVRE when IVRE URLs are set (`30m`, `1h`, `1d` or seconds); `off`: the daemon never pulls (e.g. an `ivre-sync` next to it does).",
    group: Group::SnapshotSync,
    ..BASE
};
pub const IVRE_SYNC_FULL_INTERVAL: Setting = Setting {
    env: "IVRE_SYNC_FULL_INTERVAL",
    yaml: Some(("ivre", "sync_full_interval")),
    kind: Kind::Duration,
    default: Some("1d"),
    description: "How often the daemon pulls everything from live IVRE.",
    group: Group::SnapshotSync,
    ..BASE
};
pub const IVRE_DROP_DIR: Setting = Setting {
    env: "IVRE_DROP_DIR",
    yaml: Some(("ivre", "drop_dir")),
    kind: Kind::Path,
    description:
        "A drop folder the daemon watches for IVRE exports and MaxMind files (air-gapped sites).",
    group: Group::SnapshotSync,
    ..BASE
};
pub const IVRE_DROP_READY_MARKER: Setting = Setting {
    env: "IVRE_DROP_READY_MARKER",
    yaml: Some(("ivre", "drop_ready_marker")),
    kind: Kind::Bool,
    default: Some("false"),
    description: "Import a dropped file only once its `<name>.ready` marker exists, at start-up too (false: a file renamed into the folder, or present at start-up, counts as complete).",
    group: Group::SnapshotSync,
    ..BASE
};
pub const IVRE_SNAPSHOT_PUBLISH: Setting = Setting {
    env: "IVRE_SNAPSHOT_PUBLISH",
    yaml: Some(("ivre", "snapshot_publish")),
    kind: Kind::Uri,
    description: "Where each built generation is published as an archive: `s3://bucket/prefix` or `file:///path`.",
    group: Group::SnapshotSync,
    ..BASE
};
pub const IVRE_SNAPSHOT_SOURCE: Setting = Setting {
    env: "IVRE_SNAPSHOT_SOURCE",
    yaml: Some(("ivre", "snapshot_source")),
    kind: Kind::Uri,
    description:
        "Where a replica fetches generations from: `s3://bucket/prefix` or `file:///path`.",
    group: Group::SnapshotSync,
    ..BASE
};
pub const IVRE_SNAPSHOT_POLL: Setting = Setting {
    env: "IVRE_SNAPSHOT_POLL",
    yaml: Some(("ivre", "snapshot_poll")),
    kind: Kind::Duration,
    default: Some("1m"),
    description: "How often a replica looks for a new generation at IVRE_SNAPSHOT_SOURCE.",
    group: Group::SnapshotSync,
    ..BASE
};
pub const AWS_ACCESS_KEY_ID: Setting = Setting {
    env: "AWS_ACCESS_KEY_ID",
    yaml: Some(("s3", "access_key_id")),
    description: "S3 access key for `s3://` snapshot locations.",
    group: Group::SnapshotSync,
    ..BASE
};
pub const AWS_SECRET_ACCESS_KEY: Setting = Setting {
    env: "AWS_SECRET_ACCESS_KEY",
    yaml: Some(("s3", "secret_access_key")),
    description: "S3 secret key for `s3://` snapshot locations.",
    secret: true,
    group: Group::SnapshotSync,
    ..BASE
};
pub const AWS_REGION: Setting = Setting {
    env: "AWS_REGION",
    yaml: Some(("s3", "region")),
    default: Some("us-east-1"),
    description: "S3 region.",
    group: Group::SnapshotSync,
    ..BASE
};
pub const AWS_ENDPOINT_URL: Setting = Setting {
    env: "AWS_ENDPOINT_URL",
    yaml: Some(("s3", "endpoint_url")),
    kind: Kind::Uri,
    description: "S3 endpoint, for MinIO and other S3-compatible stores (unset: AWS).",
    group: Group::SnapshotSync,
    ..BASE
};
pub const AWS_ALLOW_HTTP: Setting = Setting {
    env: "AWS_ALLOW_HTTP",
    yaml: Some(("s3", "allow_http")),
    kind: Kind::Bool,
    default: Some("false"),
    description: "Allow a plain http:// AWS_ENDPOINT_URL.",
    group: Group::SnapshotSync,
    ..BASE
};

// --- Network ---------------------------------------------------------------------------

pub const SSL_CERT_FILE: Setting = Setting {
    env: "SSL_CERT_FILE",
    kind: Kind::Path,
    description: "A PEM bundle of extra CA certificates trusted besides the built-in ones (OpenCTI, IVRE's web API; MongoDB with TLS when its URL names no CA).",
    group: Group::Network,
    ..BASE
};
pub const HTTP_PROXY: Setting = Setting {
    env: "HTTP_PROXY",
    kind: Kind::Uri,
    description: "Proxy for http:// requests (`http_proxy` is read when unset).",
    group: Group::Network,
    ..BASE
};
pub const HTTPS_PROXY: Setting = Setting {
    env: "HTTPS_PROXY",
    kind: Kind::Uri,
    description: "Proxy for https:// requests (`https_proxy` is read when unset).",
    group: Group::Network,
    ..BASE
};
pub const NO_PROXY: Setting = Setting {
    env: "NO_PROXY",
    kind: Kind::List,
    description: "Hosts, domains and networks reached without proxy, comma-separated (`no_proxy` is read when unset).",
    group: Group::Network,
    ..BASE
};

/// Every setting, in documentation order within each group.
pub static SETTINGS: &[&Setting] = &[
    &OPENCTI_URL,
    &OPENCTI_TOKEN,
    &OPENCTI_SSL_VERIFY,
    &OPENCTI_SSL_CA,
    &OPENCTI_JSON_LOGGING,
    &OPENCTI_CUSTOM_HEADERS,
    &CONNECTOR_ID,
    &CONNECTOR_NAME,
    &CONNECTOR_TYPE,
    &CONNECTOR_SCOPE,
    &CONNECTOR_AUTO,
    &CONNECTOR_AUTO_UPDATE,
    &CONNECTOR_ENRICHMENT_RESOLUTION,
    &CONNECTOR_ONLY_CONTEXTUAL,
    &CONNECTOR_LOG_LEVEL,
    &IVRE_LOG,
    &CONNECTOR_EXPOSE_METRICS,
    &CONNECTOR_METRICS_PORT,
    &CONNECTOR_METRICS_NAMESPACE,
    &CONNECTOR_METRICS_SUBSYSTEM,
    &CONNECTOR_HEALTH_BIND,
    &CONNECTOR_HTTP_MAX_CONNECTIONS,
    &CONNECTOR_HTTP_HEADER_TIMEOUT,
    &CONNECTOR_HTTP_BODY_TIMEOUT,
    &CONNECTOR_LISTEN_PROTOCOL,
    &CONNECTOR_LISTEN_PROTOCOL_API_PORT,
    &CONNECTOR_LISTEN_PROTOCOL_API_PATH,
    &CONNECTOR_LISTEN_PROTOCOL_API_SSL,
    &CONNECTOR_LISTEN_PROTOCOL_API_URI,
    &CONNECTOR_LISTEN_PROTOCOL_API_BIND,
    &CONNECTOR_QUEUE_PROTOCOL,
    &QUEUE_PROTOCOL,
    &CONNECTOR_PUSH_STRATEGY,
    &CONNECTOR_SEND_TO_QUEUE,
    &CONNECTOR_CONCURRENCY,
    &CONNECTOR_PING_INTERVAL,
    &CONNECTOR_WORK_PING_INTERVAL,
    &CONNECTOR_RECONNECT_DELAY,
    &CONNECTOR_SHUTDOWN_TIMEOUT,
    &MQ_HOST,
    &MQ_PORT,
    &MQ_VHOST,
    &MQ_USE_SSL,
    &MQ_USER,
    &MQ_PASS,
    &IVRE_DB_URL,
    &IVRE_DB_URL_SCANS,
    &IVRE_DB_URL_PASSIVE,
    &IVRE_DB_URL_DATA,
    &IVRE_GEOIP_DIR,
    &IVRE_MAX_TLP,
    &IVRE_USE_DATA,
    &IVRE_USE_PASSIVE,
    &IVRE_USE_PASSIVE_AS,
    &IVRE_USE_PASSIVE_DOMAIN,
    &IVRE_USE_SCANS,
    &IVRE_USE_SCANS_AS,
    &IVRE_USE_SCANS_DOMAIN,
    &IVRE_RELATIONSHIP_TIMES,
    &IVRE_NOTE,
    &IVRE_MAX_RECORDS,
    &IVRE_FALLBACK,
    &IVRE_FALLBACK_TIMEOUT,
    &IVRE_FALLBACK_TTL,
    &IVRE_FALLBACK_NEGATIVE_TTL,
    &IVRE_FALLBACK_CACHE_ENTRIES,
    &IVRE_FALLBACK_CACHE_BYTES,
    &IVRE_FALLBACK_BREAKER_FAILURES,
    &IVRE_FALLBACK_BREAKER_COOLDOWN,
    &IVRE_DATA_DIR,
    &IVRE_RELOAD_POLL,
    &IVRE_SYNC_INTERVAL,
    &IVRE_SYNC_FULL_INTERVAL,
    &IVRE_DROP_DIR,
    &IVRE_DROP_READY_MARKER,
    &IVRE_SNAPSHOT_PUBLISH,
    &IVRE_SNAPSHOT_SOURCE,
    &IVRE_SNAPSHOT_POLL,
    &AWS_ACCESS_KEY_ID,
    &AWS_SECRET_ACCESS_KEY,
    &AWS_REGION,
    &AWS_ENDPOINT_URL,
    &AWS_ALLOW_HTTP,
    &SSL_CERT_FILE,
    &HTTP_PROXY,
    &HTTPS_PROXY,
    &NO_PROXY,
];

/// The setting read from environment variable `env`, if any.
pub fn by_env(env: &str) -> Option<&'static Setting> {
    SETTINGS.iter().copied().find(|s| s.env == env)
}
