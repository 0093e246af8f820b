//! S3 access for `s3://` snapshot locations (`AWS_*`, YAML section `s3`).

use super::table;
use super::{ConfigFile, Problems, SettingsError};
use std::fmt;

/// The credentials and endpoint of an S3 store.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY` (never shown by `Debug`).
    pub secret_access_key: Option<String>,
    /// `AWS_REGION` (default `us-east-1`).
    pub region: String,
    /// `AWS_ENDPOINT_URL`: MinIO and other S3-compatible stores (`None`: AWS).
    pub endpoint_url: Option<String>,
    /// `AWS_ALLOW_HTTP` (default false): a plain `http://` endpoint is accepted.
    pub allow_http: bool,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl Default for S3Settings {
    /// No credentials, the table's region.
    fn default() -> Self {
        Problems::defaults(S3Settings::read)
    }
}

impl S3Settings {
    /// Reads and validates the settings; all problems are reported together.
    pub fn from_config(config: &ConfigFile) -> Result<S3Settings, SettingsError> {
        Problems::collect(|p| S3Settings::read(config, p))
    }

    /// Reads the settings, recording problems in `problems`.
    pub fn read(config: &ConfigFile, problems: &mut Problems) -> S3Settings {
        let access_key_id = config.value(&table::AWS_ACCESS_KEY_ID);
        let secret_access_key = config.value(&table::AWS_SECRET_ACCESS_KEY);
        if access_key_id.is_some() != secret_access_key.is_some() {
            problems.push(format!(
                "{} and {} go together",
                table::AWS_ACCESS_KEY_ID.label(),
                table::AWS_SECRET_ACCESS_KEY.label()
            ));
        }
        let allow_http = problems.or_default(config.flag(&table::AWS_ALLOW_HTTP));
        let endpoint_url = config
            .value(&table::AWS_ENDPOINT_URL)
            .map(|u| u.trim_end_matches('/').to_owned());
        if let Some(url) = &endpoint_url {
            let label = table::AWS_ENDPOINT_URL.label();
            if url.starts_with("http://") {
                if !allow_http {
                    problems.push(format!(
                        "{label}: `{url}` is plain http; set {} to true to allow it",
                        table::AWS_ALLOW_HTTP.env
                    ));
                }
            } else if !url.starts_with("https://") {
                problems.push(format!("{label}: `{url}` is not an http(s) URL"));
            }
        }
        S3Settings {
            access_key_id,
            secret_access_key,
            region: config.string(&table::AWS_REGION).unwrap_or_default(),
            endpoint_url,
            allow_http,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> ConfigFile {
        ConfigFile::from_env(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_secrets_and_checks() {
        let d = S3Settings::from_config(&ConfigFile::default()).unwrap();
        assert_eq!(d, S3Settings::default());
        assert_eq!(d.region, "us-east-1");
        let s = S3Settings::from_config(&env(&[
            ("AWS_ACCESS_KEY_ID", "minio"),
            ("AWS_SECRET_ACCESS_KEY", "hunter2"),
            ("AWS_ENDPOINT_URL", "http://minio:9000/"),
            ("AWS_ALLOW_HTTP", "true"),
        ]))
        .unwrap();
        assert_eq!(s.endpoint_url.as_deref(), Some("http://minio:9000"));
        assert!(!format!("{s:?}").contains("hunter2"));
        let err = S3Settings::from_config(&env(&[
            ("AWS_ACCESS_KEY_ID", "minio"),
            ("AWS_ENDPOINT_URL", "http://minio:9000"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("AWS_SECRET_ACCESS_KEY") && err.contains("AWS_ALLOW_HTTP"),
            "{err}"
        );
    }
}
