//! Outgoing connections: extra CA certificates (`SSL_CERT_FILE`) and proxies
//! (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`), applied to every HTTP client through
//! [`client_builder`] and, for the CA file, to MongoDB with TLS; the platform's own CA
//! (`OPENCTI_SSL_CA`), added for the OpenCTI client by [`opencti_client_builder`]. And the
//! bounds of the daemon's HTTP servers ([`server`], `CONNECTOR_HTTP_*`).
//!
//! reqwest would read the proxy variables of the process itself; [`client_builder`] turns
//! that off (`ClientBuilder::no_proxy`) and applies the values of the configuration, so
//! what the connector uses is what its configuration (and `--config` tests) say.

use crate::config::{table, ConfigFile, Problems, SettingsError};

pub mod server;
pub use server::ServerLimits;

use std::fmt;
use std::path::{Path, PathBuf};

/// The network settings (group "Network" of the table).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NetSettings {
    /// `SSL_CERT_FILE`: a PEM bundle added to the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// `OPENCTI_SSL_CA`: a PEM bundle added to the roots of the OpenCTI client.
    pub opencti_ca_file: Option<PathBuf>,
    /// `HTTP_PROXY` (or `http_proxy`): proxy of `http://` requests.
    pub http_proxy: Option<String>,
    /// `HTTPS_PROXY` (or `https_proxy`): proxy of `https://` requests.
    pub https_proxy: Option<String>,
    /// `NO_PROXY` (or `no_proxy`): hosts, domains and networks reached directly.
    pub no_proxy: Option<String>,
    /// `CONNECTOR_HTTP_*`: the bounds of the daemon's HTTP servers.
    pub servers: ServerLimits,
}

impl fmt::Debug for NetSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |u: &Option<String>| u.as_deref().map(crate::logging::redact_url);
        f.debug_struct("NetSettings")
            .field("ca_file", &self.ca_file)
            .field("opencti_ca_file", &self.opencti_ca_file)
            .field("http_proxy", &shown(&self.http_proxy))
            .field("https_proxy", &shown(&self.https_proxy))
            .field("no_proxy", &self.no_proxy)
            .field("servers", &self.servers)
            .finish()
    }
}

impl ServerLimits {
    /// Reads `CONNECTOR_HTTP_*`, recording problems in `problems`.
    pub fn read(config: &ConfigFile, problems: &mut Problems) -> ServerLimits {
        let max_connections =
            problems.or_default(config.integer(&table::CONNECTOR_HTTP_MAX_CONNECTIONS));
        ServerLimits {
            max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
            header_timeout: problems
                .or_default(config.seconds(&table::CONNECTOR_HTTP_HEADER_TIMEOUT)),
            body_timeout: problems.or_default(config.seconds(&table::CONNECTOR_HTTP_BODY_TIMEOUT)),
        }
    }
}

/// Why a client could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{setting}: cannot use CA file {path}: {reason}")]
    CaFile {
        setting: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{setting}: invalid proxy `{url}`: {reason}")]
    Proxy {
        setting: &'static str,
        url: String,
        reason: String,
    },
}

impl NetSettings {
    /// Reads and checks the settings (the CA file is read, the proxies parsed).
    pub fn from_config(config: &ConfigFile) -> Result<NetSettings, SettingsError> {
        Problems::collect(|p| NetSettings::read(config, p))
    }

    /// Reads and checks the settings, recording problems in `problems`.
    pub fn read(config: &ConfigFile, problems: &mut Problems) -> NetSettings {
        let servers = ServerLimits::read(config, problems);
        let settings = NetSettings {
            ca_file: config.path(&table::SSL_CERT_FILE),
            opencti_ca_file: config.path(&table::OPENCTI_SSL_CA),
            http_proxy: config.value(&table::HTTP_PROXY),
            https_proxy: config.value(&table::HTTPS_PROXY),
            no_proxy: config.value(&table::NO_PROXY),
            servers,
        };
        match opencti_client_builder(&settings) {
            Ok(_) => settings,
            Err(e) => {
                problems.push(e);
                NetSettings {
                    servers,
                    ..NetSettings::default()
                }
            }
        }
    }

    /// The extra CA certificates (none without `SSL_CERT_FILE`).
    pub fn ca_certificates(&self) -> Result<Vec<reqwest::Certificate>, NetError> {
        read_certificates(&table::SSL_CERT_FILE, self.ca_file.as_deref())
    }

    /// The platform's CA certificates (none without `OPENCTI_SSL_CA`).
    pub fn opencti_ca_certificates(&self) -> Result<Vec<reqwest::Certificate>, NetError> {
        read_certificates(&table::OPENCTI_SSL_CA, self.opencti_ca_file.as_deref())
    }

    /// The CA file to give MongoDB's driver for a TLS URL that names none.
    pub fn mongo_ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }
}

/// The certificates of the PEM bundle at `path` (`setting` names it in errors).
fn read_certificates(
    setting: &table::Setting,
    path: Option<&Path>,
) -> Result<Vec<reqwest::Certificate>, NetError> {
    {
        let Some(path) = path else {
            return Ok(Vec::new());
        };
        let error = |reason: String| NetError::CaFile {
            setting: setting.env,
            path: path.to_owned(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| error(format!("not a PEM bundle ({e})")))?;
        if certs.is_empty() {
            return Err(error("it holds no PEM certificate".into()));
        }
        Ok(certs)
    }
}

/// A `reqwest::ClientBuilder` with the proxies and CA certificates of `settings` (and no
/// proxy read from the process environment by reqwest itself).
pub fn client_builder(settings: &NetSettings) -> Result<reqwest::ClientBuilder, NetError> {
    let mut builder = reqwest::Client::builder().no_proxy();
    let no_proxy = settings
        .no_proxy
        .as_deref()
        .and_then(reqwest::NoProxy::from_string);
    for (setting, url, https) in [
        (table::HTTP_PROXY.env, &settings.http_proxy, false),
        (table::HTTPS_PROXY.env, &settings.https_proxy, true),
    ] {
        let Some(url) = url.as_deref() else { continue };
        let made = if https {
            reqwest::Proxy::https(url)
        } else {
            reqwest::Proxy::http(url)
        };
        let proxy = made.map_err(|e| NetError::Proxy {
            setting,
            url: crate::logging::redact_url(url),
            reason: e.to_string(),
        })?;
        builder = builder.proxy(proxy.no_proxy(no_proxy.clone()));
    }
    for cert in settings.ca_certificates()? {
        builder = builder.add_root_certificate(cert);
    }
    Ok(builder)
}

/// [`client_builder`] plus the platform's CA certificates (`OPENCTI_SSL_CA`): the builder
/// of the OpenCTI client.
pub fn opencti_client_builder(settings: &NetSettings) -> Result<reqwest::ClientBuilder, NetError> {
    let mut builder = client_builder(settings)?;
    for cert in settings.opencti_ca_certificates()? {
        builder = builder.add_root_certificate(cert);
    }
    Ok(builder)
}

#[cfg(test)]
mod tests;
