//! Logs, as pycti writes them (`docs/opencti-protocol.md` §12.2).
//!
//! - `OPENCTI_JSON_LOGGING=true` (the default): one JSON object per line on stderr,
//!   `{"timestamp":"2026-11-28T20:00:00.123456Z","level":"INFO","name":"<CONNECTOR_NAME>","message":"…","attributes":{…}}`.
//!   Levels are Python's: `DEBUG`, `INFO`, `WARNING`, `ERROR` (`TRACE` is written `DEBUG`).
//!   `attributes` holds the event's fields other than `message` and the fields of the spans
//!   the event is in (the event's own win); it is left out when empty.
//! - otherwise: the usual `tracing` text format on stderr.
//!
//! `CONNECTOR_LOG_LEVEL` (`debug`, `info`, `warn`/`warning`, `error`, any case; pycti's default
//! is `error`) sets the level; `IVRE_LOG`, an [`EnvFilter`] directive such as
//! `info,ivre_connector::opencti=debug`, replaces it when set.
//!
//! The other commands of both binaries log text on stderr ([`init_cli`]): `warn` for
//! `ivre-connector`, `info` for `ivre-sync`, one level more per `-v`, `error` only with
//! `--quiet`; `IVRE_LOG` replaces that too, unless `--quiet`. Whatever the level, the libraries we depend on
//! (sled, lapin, hyper, reqwest, h2, rustls, mongodb, object_store, tower…) log at `warn`
//! at most unless `IVRE_LOG` asks otherwise ([`level_filter`]): `-vvv` shows our traces, not
//! sled's. Text logs are coloured on a terminal unless `NO_COLOR` is set, or as `--color`
//! says ([`Color`]).
//!
//! Nothing secret goes into a log line: tokens and message bodies are never logged, and URLs
//! that may carry credentials go through [`redact_url`] first.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// The environment variable whose [`EnvFilter`] directive overrides `CONNECTOR_LOG_LEVEL`.
pub const IVRE_LOG: &str = crate::config::table::IVRE_LOG.env;

/// How to log (pycti's variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// `OPENCTI_JSON_LOGGING` (default `true`): JSON lines instead of text.
    pub json: bool,
    /// `CONNECTOR_LOG_LEVEL`: `debug`, `info`, `warn`, `warning` or `error`, any case
    /// (default `error`).
    pub level: String,
    /// `CONNECTOR_NAME`: the `name` of every JSON line.
    pub name: String,
    /// Text mode: ANSI colours ([`Color::ansi`]).
    pub ansi: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            json: true,
            level: "error".into(),
            name: String::new(),
            ansi: false,
        }
    }
}

/// `--color`: whether text logs are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Color {
    /// On a terminal, unless `NO_COLOR` is set (to anything but the empty string).
    #[default]
    Auto,
    /// Always, `NO_COLOR` or not.
    Always,
    /// Never.
    Never,
}

impl Color {
    /// Whether to write ANSI colours, given the value of `NO_COLOR` and whether stderr is a
    /// terminal.
    pub fn ansi(self, no_color: Option<&str>, terminal: bool) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => terminal && no_color.is_none_or(str::is_empty),
        }
    }
}

/// The crates whose logs the level applies to; every other target is kept at `warn` at
/// most ([`level_filter`]).
pub const OUR_CRATES: [&str; 2] = ["ivre_connector", "ivre_sync"];

/// The filter of a level: our crates ([`OUR_CRATES`]) at `level`, every other target
/// (sled, lapin, hyper, reqwest, h2, rustls, mongodb, object_store, tower…) at `warn`, or
/// at `level` when that is quieter.
pub fn level_filter(level: Level) -> EnvFilter {
    let level = LevelFilter::from_level(level);
    if level <= LevelFilter::WARN {
        return EnvFilter::default().add_directive(level.into());
    }
    OUR_CRATES.iter().fold(
        EnvFilter::default().add_directive(LevelFilter::WARN.into()),
        |filter, krate| match format!("{krate}={level}").parse() {
            Ok(directive) => filter.add_directive(directive),
            Err(_) => filter,
        },
    )
}

/// The level of a command line: `base` raised one step per `-v` (up to `trace`), `error`
/// with `--quiet`.
pub fn cli_level(base: Level, verbose: u8, quiet: bool) -> Level {
    const LEVELS: [Level; 5] = [
        Level::ERROR,
        Level::WARN,
        Level::INFO,
        Level::DEBUG,
        Level::TRACE,
    ];
    if quiet {
        return Level::ERROR;
    }
    let start = LEVELS.iter().position(|l| *l == base).unwrap_or(1);
    LEVELS[(start + usize::from(verbose)).min(LEVELS.len() - 1)]
}

/// The filter of a command line: `ivre_log` (the value of `IVRE_LOG`) when set, not blank
/// and valid, else [`level_filter`] of `level`.
pub fn cli_filter(level: Level, ivre_log: Option<&str>) -> EnvFilter {
    ivre_log
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .and_then(|d| EnvFilter::builder().parse(d).ok())
        .unwrap_or_else(|| level_filter(level))
}

/// Installs the text logs of a command line on stderr (see the module documentation);
/// `ivre_log` is the value of `IVRE_LOG`, if any.
pub fn init_cli(level: Level, ivre_log: Option<&str>, ansi: bool) -> Result<(), LogError> {
    tracing_subscriber::registry()
        .with(cli_filter(level, ivre_log))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(ansi),
        )
        .try_init()
        .map_err(LogError::AlreadyInitialized)
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// `CONNECTOR_LOG_LEVEL` is not one of the accepted names.
    #[error(
        "invalid log level `{0}` (CONNECTOR_LOG_LEVEL): expected one of debug, info, warn, warning, error"
    )]
    InvalidLevel(String),
    /// `IVRE_LOG` is not a valid filter directive.
    #[error("invalid filter `{directive}` ({IVRE_LOG})")]
    InvalidFilter {
        /// The directive as given.
        directive: String,
        /// What the parser said.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed.
    #[error("a global log subscriber is already installed")]
    AlreadyInitialized(#[source] tracing_subscriber::util::TryInitError),
}

/// Parses `CONNECTOR_LOG_LEVEL`: `debug`, `info`, `warn`/`warning`, `error`, in any case,
/// surrounding blanks ignored.
pub fn parse_level(s: &str) -> Result<Level, LogError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "debug" => Ok(Level::DEBUG),
        "info" => Ok(Level::INFO),
        "warn" | "warning" => Ok(Level::WARN),
        "error" => Ok(Level::ERROR),
        _ => Err(LogError::InvalidLevel(s.to_owned())),
    }
}

/// The filter: `ivre_log` (the value of `IVRE_LOG`) when set and not blank, else the level of
/// `settings`.
pub fn filter(settings: &LogSettings, ivre_log: Option<&str>) -> Result<EnvFilter, LogError> {
    // The level is checked even when `IVRE_LOG` replaces it: a bad configuration is reported.
    let level = parse_level(&settings.level)?;
    match ivre_log.map(str::trim).filter(|d| !d.is_empty()) {
        Some(directive) => {
            EnvFilter::builder()
                .parse(directive)
                .map_err(|source| LogError::InvalidFilter {
                    directive: directive.to_owned(),
                    source,
                })
        }
        None => Ok(level_filter(level)),
    }
}

/// Installs the global subscriber, writing to stderr (see the module documentation);
/// `ivre_log` is the value of `IVRE_LOG`, if any.
pub fn init(settings: &LogSettings, ivre_log: Option<&str>) -> Result<(), LogError> {
    let filter = filter(settings, ivre_log)?;
    let registry = tracing_subscriber::registry().with(filter);
    if settings.json {
        registry
            .with(json_layer(&settings.name, std::io::stderr))
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(settings.ansi),
            )
            .try_init()
    }
    .map_err(LogError::AlreadyInitialized)
}

/// The JSON-lines layer, writing to `writer` (stderr in [`init`], a buffer in tests).
pub fn json_layer<S, W>(
    name: &str,
    writer: W,
) -> tracing_subscriber::fmt::Layer<S, JsonFields, PyctiJson, W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(PyctiJson::new(name))
        .with_writer(writer)
}

/// An error and its sources, `: `-separated (as anyhow's `{:#}`), for logs and reports.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// pycti's level names.
pub fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// One JSON log line, without the newline:
/// `{"timestamp":…,"level":…,"name":…,"message":…,"attributes":{…}}`
/// (`attributes` left out when empty).
pub fn json_line(
    timestamp: &chrono::DateTime<chrono::Utc>,
    level: &Level,
    name: &str,
    message: &str,
    attributes: &Map<String, Value>,
) -> String {
    let mut line = Map::new();
    line.insert(
        "timestamp".into(),
        Value::String(timestamp.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
    );
    line.insert("level".into(), Value::String(level_name(level).into()));
    line.insert("name".into(), Value::String(name.into()));
    line.insert("message".into(), Value::String(message.into()));
    if !attributes.is_empty() {
        line.insert("attributes".into(), Value::Object(attributes.clone()));
    }
    Value::Object(line).to_string()
}

/// The [`FormatEvent`] of JSON mode: [`json_line`] for each event. Span fields are read from
/// the JSON the [`JsonFields`] formatter stores (see [`json_layer`]); with another field
/// formatter they are left out.
#[derive(Debug, Clone)]
pub struct PyctiJson {
    name: String,
}

impl PyctiJson {
    /// Lines named `name` (`CONNECTOR_NAME`).
    pub fn new(name: &str) -> PyctiJson {
        PyctiJson {
            name: name.to_owned(),
        }
    }
}

impl<S, N> FormatEvent<S, N> for PyctiJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut attributes = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&fields.fields) {
                    attributes.extend(map);
                }
            }
        }
        let mut visitor = FieldVisitor {
            message: None,
            attributes,
        };
        event.record(&mut visitor);
        let line = json_line(
            &chrono::Utc::now(),
            event.metadata().level(),
            &self.name,
            visitor.message.as_deref().unwrap_or(""),
            &visitor.attributes,
        );
        writeln!(writer, "{line}")
    }
}

/// Collects an event's fields: `message` apart, the others as JSON values.
struct FieldVisitor {
    message: Option<String>,
    attributes: Map<String, Value>,
}

impl FieldVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else if !name.starts_with("log.") {
            self.attributes.insert(name.to_owned(), value);
        }
    }
}

impl Visit for FieldVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_string()));
        self.put(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let value = i64::try_from(value)
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(value.to_string()));
        self.put(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let value = u64::try_from(value)
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(value.to_string()));
        self.put(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(chain(value)));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

/// Writes a warning to stderr whatever the configured level or filter (`-q`,
/// `CONNECTOR_LOG_LEVEL=error`, `IVRE_LOG=off`): for the few things an operator must
/// see, such as TLS verification turned off. The line has the configured shape: a pycti
/// JSON line named `name` when `json`, else text. Attribute values are written as given:
/// redact them first.
pub fn warn_unfiltered(json: bool, name: &str, message: &str, attributes: &[(&str, &str)]) {
    use std::io::Write as _;
    let line = unfiltered_line(json, name, message, attributes, &chrono::Utc::now());
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The line [`warn_unfiltered`] writes.
fn unfiltered_line(
    json: bool,
    name: &str,
    message: &str,
    attributes: &[(&str, &str)],
    now: &chrono::DateTime<chrono::Utc>,
) -> String {
    if json {
        let attributes: Map<String, Value> = attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        json_line(now, &Level::WARN, name, message, &attributes)
    } else {
        let mut line = format!("{}  WARN {message}", now.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
        for (k, v) in attributes {
            line.push_str(&format!(" {k}={v}"));
        }
        line
    }
}

/// Hides the secrets of a URL before it is logged: [`crate::redact::url`], the one
/// redaction of the project (user-info, the values of query parameters whose names look
/// secret, the whole fragment).
pub fn redact_url(url: &str) -> String {
    crate::redact::url(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::sync::{Arc, Mutex};

    use chrono::TimeZone as _;
    use serde_json::json;

    /// A `MakeWriter` into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Buffer {
        fn lines(&self) -> Vec<Value> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            assert!(text.ends_with('\n'), "{text:?}");
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    fn capture(level: &str, f: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        let settings = LogSettings {
            json: true,
            level: level.into(),
            name: "IVRE".into(),
            ansi: false,
        };
        let subscriber = tracing_subscriber::registry()
            .with(filter(&settings, None).unwrap())
            .with(json_layer("IVRE", buffer.clone()));
        tracing::subscriber::with_default(subscriber, f);
        buffer.lines()
    }

    #[test]
    fn json_line_shape() {
        let ts = chrono::Utc
            .with_ymd_and_hms(2026, 11, 28, 20, 0, 0)
            .unwrap()
            + chrono::Duration::microseconds(123_456);
        let mut attributes = Map::new();
        assert_eq!(
            json_line(&ts, &Level::INFO, "IVRE", "hello \"x\"\nnext", &attributes),
            r#"{"timestamp":"2026-11-28T20:00:00.123456Z","level":"INFO","name":"IVRE","message":"hello \"x\"\nnext"}"#
        );
        attributes.insert("work_id".into(), json!("w1"));
        attributes.insert("count".into(), json!(3));
        assert_eq!(
            json_line(&ts, &Level::WARN, "IVRE", "m", &attributes),
            r#"{"timestamp":"2026-11-28T20:00:00.123456Z","level":"WARNING","name":"IVRE","message":"m","attributes":{"work_id":"w1","count":3}}"#
        );
        assert_eq!(level_name(&Level::ERROR), "ERROR");
        assert_eq!(level_name(&Level::DEBUG), "DEBUG");
        assert_eq!(level_name(&Level::TRACE), "DEBUG");
    }

    #[test]
    fn events_as_json_lines() {
        let lines = capture("debug", || {
            let span = tracing::info_span!("job", work_id = "w1", entity_type = "IPv4-Addr");
            let _guard = span.enter();
            tracing::info!(count = 3u64, ok = true, ratio = 0.5, name = %"disp", dbg = ?vec![1], "enriched {}", "1.2.3.4x");
            tracing::warn!(work_id = "override", "careful");
            let err = std::io::Error::other("boom");
            tracing::error!(error = &err as &(dyn std::error::Error + 'static), "failed");
            drop(_guard);
            tracing::debug!("plain");
            tracing::trace!("filtered out");
        });
        assert_eq!(lines.len(), 4, "{lines:?}");
        for line in &lines {
            let obj = line.as_object().unwrap();
            let keys: Vec<_> = obj.keys().map(String::as_str).collect();
            assert_eq!(
                &keys[..4],
                ["timestamp", "level", "name", "message"],
                "{line}"
            );
            assert_eq!(obj["name"], "IVRE");
            let ts = obj["timestamp"].as_str().unwrap();
            assert_eq!(ts.len(), "2026-11-28T20:00:00.123456Z".len(), "{ts}");
            assert!(ts.ends_with('Z'));
            chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.6fZ").unwrap();
        }
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "enriched 1.2.3.4x");
        assert_eq!(
            lines[0]["attributes"],
            json!({"work_id": "w1", "entity_type": "IPv4-Addr", "count": 3, "ok": true, "ratio": 0.5, "name": "disp", "dbg": "[1]"})
        );
        assert_eq!(lines[1]["level"], "WARNING");
        assert_eq!(lines[1]["attributes"]["work_id"], "override");
        assert_eq!(lines[2]["level"], "ERROR");
        assert_eq!(lines[2]["attributes"]["error"], "boom");
        assert_eq!(lines[3]["level"], "DEBUG");
        assert_eq!(lines[3]["message"], "plain");
        assert!(lines[3].get("attributes").is_none(), "{}", lines[3]);
    }

    #[test]
    fn level_filters() {
        let lines = capture("ERROR", || {
            tracing::warn!("no");
            tracing::error!("yes");
        });
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["message"], "yes");
        let lines = capture(" Warning ", || {
            tracing::info!("no");
            tracing::warn!("yes");
        });
        assert_eq!(lines.len(), 1);
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level("debug").unwrap(), Level::DEBUG);
        assert_eq!(parse_level("INFO").unwrap(), Level::INFO);
        assert_eq!(parse_level("Warn").unwrap(), Level::WARN);
        assert_eq!(parse_level("WARNING").unwrap(), Level::WARN);
        assert_eq!(parse_level("error").unwrap(), Level::ERROR);
        for bad in ["", "verbose", "trace", "critical"] {
            let err = parse_level(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
            assert!(err.to_string().contains("CONNECTOR_LOG_LEVEL"), "{err}");
        }
    }

    #[test]
    fn ivre_log_overrides() {
        let settings = LogSettings {
            json: true,
            level: "error".into(),
            name: "x".into(),
            ansi: false,
        };
        assert_eq!(filter(&settings, None).unwrap().to_string(), "error");
        assert_eq!(filter(&settings, Some("  ")).unwrap().to_string(), "error");
        assert_eq!(
            filter(&settings, Some("info,ivre_connector=debug"))
                .unwrap()
                .max_level_hint(),
            Some(LevelFilter::DEBUG)
        );
        let err = filter(&settings, Some("x=notalevel")).unwrap_err();
        assert!(
            err.to_string().contains("x=notalevel") && err.to_string().contains(IVRE_LOG),
            "{err}"
        );
        let bad = LogSettings {
            level: "loud".into(),
            ..settings
        };
        assert!(matches!(
            filter(&bad, Some("info")),
            Err(LogError::InvalidLevel(_))
        ));
    }

    /// The messages `filter` lets through, of one event per (target, level) below.
    fn passed(filter: EnvFilter) -> Vec<String> {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(json_layer("x", buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "ivre_connector::index::reader", "ours trace");
            tracing::warn!(target: "ivre_connector::index::reader", "ours warn");
            tracing::trace!(target: "ivre_sync", "sync trace");
            tracing::error!(target: "ivre_sync", "sync error");
            tracing::trace!(target: "sled::pagecache", "sled trace");
            tracing::info!(target: "sled::pagecache", "sled info");
            tracing::warn!(target: "sled::pagecache", "sled warn");
            tracing::debug!(target: "lapin::channel", "lapin debug");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["message"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    /// The filter of `-v…` keeps the dependencies at `warn`; an explicit `IVRE_LOG` wins.
    #[test]
    fn verbosity_raises_our_crates_only() {
        assert_eq!(cli_level(Level::WARN, 3, false), Level::TRACE);
        assert_eq!(cli_level(Level::INFO, 9, false), Level::TRACE);
        assert_eq!(cli_level(Level::INFO, 2, true), Level::ERROR);
        assert_eq!(
            passed(cli_filter(cli_level(Level::WARN, 3, false), None)),
            [
                "ours trace",
                "ours warn",
                "sync trace",
                "sync error",
                "sled warn"
            ]
        );
        // An explicit IVRE_LOG wins, for the dependencies too.
        assert_eq!(
            passed(cli_filter(
                Level::TRACE,
                Some("sled=trace,ivre_connector=error")
            )),
            ["sled trace", "sled info", "sled warn"]
        );
        // A blank or invalid one is ignored.
        assert_eq!(
            passed(cli_filter(Level::INFO, Some("  "))),
            ["ours warn", "sync error", "sled warn"]
        );
        assert_eq!(
            passed(cli_filter(Level::INFO, Some("x=notalevel"))),
            ["ours warn", "sync error", "sled warn"]
        );
        // --quiet: errors only, ours included.
        assert_eq!(
            passed(cli_filter(cli_level(Level::INFO, 2, true), None)),
            ["sync error"]
        );
        // The daemon's CONNECTOR_LOG_LEVEL=debug keeps sled and lapin at warn as well.
        let settings = LogSettings {
            level: "debug".into(),
            ..LogSettings::default()
        };
        assert_eq!(
            passed(filter(&settings, None).unwrap()),
            ["ours warn", "sync error", "sled warn"]
        );
    }

    #[test]
    fn color_choice() {
        assert!(Color::Auto.ansi(None, true));
        assert!(Color::Auto.ansi(Some(""), true));
        assert!(!Color::Auto.ansi(Some("1"), true));
        assert!(!Color::Auto.ansi(None, false));
        assert!(Color::Always.ansi(Some("1"), false));
        assert!(!Color::Never.ansi(None, true));
    }

    #[test]
    fn unfiltered_lines_have_the_configured_shape() {
        let now = chrono::Utc::now();
        let json: Value = serde_json::from_str(&unfiltered_line(
            true,
            "IVRE",
            "careful",
            &[("url", "https://h")],
            &now,
        ))
        .unwrap();
        assert_eq!(json["level"], "WARNING");
        assert_eq!(json["name"], "IVRE");
        assert_eq!(json["message"], "careful");
        assert_eq!(json["attributes"]["url"], "https://h");
        let text = unfiltered_line(false, "IVRE", "careful", &[("url", "https://h")], &now);
        assert!(text.ends_with(" WARN careful url=https://h"), "{text}");
    }

    #[test]
    fn redaction_is_the_one_of_redact() {
        let redacted = redact_url("amqp://guest:s3cr3t@rabbit/%2f");
        assert_eq!(redacted, "amqp://***:***@rabbit/%2f");
        assert_eq!(
            redact_url("http://h/cgi#X-API-Key=k"),
            crate::redact::url("http://h/cgi#X-API-Key=k")
        );
    }
}
