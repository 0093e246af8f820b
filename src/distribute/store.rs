//! Where generations are published: `s3://bucket/prefix` or `file:///path`, the S3
//! settings, and the store's objects (keys relative to the URL's prefix).

use super::DistributeError;
use crate::logging::redact_url;
use futures_util::StreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// The `LATEST` object (relative to the prefix).
pub const LATEST: &str = "LATEST";
/// Where archives and their manifests live (relative to the prefix).
pub const GENERATIONS: &str = "generations";
/// How many generations the store keeps.
pub const KEEP: usize = 3;
/// `LATEST` and a generation's `.json` are small: anything larger is refused.
pub(crate) const MAX_SMALL_OBJECT: u64 = 1024 * 1024;

/// The object key of a generation's archive, relative to the prefix.
pub fn archive_key(generation: &str) -> String {
    format!("{GENERATIONS}/{generation}.tar.zst")
}

/// The object key of a generation's manifest, relative to the prefix.
pub fn manifest_key(generation: &str) -> String {
    format!("{GENERATIONS}/{generation}.json")
}

/// A store target: `s3://bucket/prefix` or `file:///absolute/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An S3 bucket (or an S3-compatible server, see [`S3Options::endpoint`]) and a key
    /// prefix (no leading or trailing `/`, possibly empty).
    S3 { bucket: String, prefix: String },
    /// A directory (local, or a shared file system).
    File { path: PathBuf },
}

impl FromStr for StoreUrl {
    type Err = DistributeError;

    fn from_str(url: &str) -> Result<StoreUrl, DistributeError> {
        let bad = |reason: &str| DistributeError::BadUrl {
            url: redact_url(url),
            reason: reason.to_owned(),
        };
        if url.contains(['?', '#']) {
            return Err(bad("a store URL takes no query or fragment"));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.contains(['@', ':']) {
                return Err(bad(
                    "credentials and ports do not belong in the URL: use AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL",
                ));
            }
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                });
            if !valid_bucket {
                return Err(bad(
                    "not a valid bucket name (3 to 63 lower-case letters, digits, '.' or '-')",
                ));
            }
            let prefix = prefix.trim_matches('/');
            if prefix
                .split('/')
                .any(|part| part == "." || part == ".." || (part.is_empty() && !prefix.is_empty()))
            {
                return Err(bad("the prefix has an empty, '.' or '..' segment"));
            }
            return Ok(StoreUrl::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad(
                    "a file URL takes an absolute path (file:///…; file://HOST/… is not supported)",
                ));
            }
            let path = PathBuf::from(rest);
            if path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(bad("the path has a '..' segment"));
            }
            return Ok(StoreUrl::File { path });
        }
        Err(bad("unsupported store URL"))
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            StoreUrl::File { path } => write!(f, "file://{}", path.display()),
        }
    }
}

impl From<&crate::config::s3::S3Settings> for S3Options {
    /// The settings of the table (`AWS_*`, YAML section `s3`).
    fn from(s: &crate::config::s3::S3Settings) -> S3Options {
        S3Options {
            endpoint: s.endpoint_url.clone(),
            region: s.region.clone(),
            access_key_id: s.access_key_id.clone(),
            secret_access_key: s.secret_access_key.clone(),
            allow_http: s.allow_http,
        }
    }
}

/// How to reach S3 (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`). Without keys, requests are unsigned
/// (public buckets). `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Options {
    /// An S3-compatible server (MinIO, moto, Ceph…): path-style requests to it.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow `http://` endpoints.
    pub allow_http: bool,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            region: "us-east-1".to_owned(),
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
        }
    }
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint.as_deref().map(redact_url))
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// An open store: the URL, the client, the key prefix.
pub struct Store {
    url: StoreUrl,
    /// The URL as shown in messages.
    shown: String,
    inner: Arc<dyn ObjectStore>,
    prefix: String,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("url", &self.shown).finish()
    }
}

impl Store {
    /// Builds the client (S3 from `s3` alone, not from the environment). A `file://`
    /// directory is created when missing.
    pub fn open(url: &StoreUrl, s3: &S3Options) -> Result<Store, DistributeError> {
        let shown = redact_url(&url.to_string());
        let (inner, prefix): (Arc<dyn ObjectStore>, String) = match url {
            StoreUrl::File { path } => {
                std::fs::create_dir_all(path).map_err(|e| DistributeError::io(path, e))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(path).map_err(
                    |source| DistributeError::Store {
                        url: shown.clone(),
                        key: String::new(),
                        action: "open",
                        source: Box::new(source),
                    },
                )?;
                (Arc::new(fs), String::new())
            }
            StoreUrl::S3 { bucket, prefix } => {
                let settings = |reason: &str| DistributeError::Settings {
                    url: shown.clone(),
                    reason: reason.to_owned(),
                };
                let mut builder = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(&s3.region)
                    .with_allow_http(s3.allow_http);
                if let Some(endpoint) = &s3.endpoint {
                    if endpoint.starts_with("http://") && !s3.allow_http {
                        return Err(settings(
                            "the endpoint is http://: set AWS_ALLOW_HTTP=true to allow it",
                        ));
                    }
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_virtual_hosted_style_request(false);
                }
                builder = match (&s3.access_key_id, &s3.secret_access_key) {
                    (Some(id), Some(secret)) => builder
                        .with_access_key_id(id)
                        .with_secret_access_key(secret),
                    (None, None) => builder.with_skip_signature(true),
                    _ => {
                        return Err(settings(
                            "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither",
                        ))
                    }
                };
                let s3 = builder
                    .build()
                    .map_err(|e| settings(&redact_url(&e.to_string())))?;
                (Arc::new(s3), prefix.clone())
            }
        };
        Ok(Store {
            url: url.clone(),
            shown,
            inner,
            prefix,
        })
    }

    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    /// The URL as messages show it (without credentials).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The full key of `rel` (a key relative to the prefix).
    fn key(&self, rel: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rel)
        } else {
            Key::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn error(
        &self,
        rel: &str,
        action: &'static str,
        source: object_store::Error,
    ) -> DistributeError {
        DistributeError::Store {
            url: self.shown.clone(),
            key: rel.to_owned(),
            action,
            source: Box::new(source),
        }
    }

    /// A small object (`LATEST`, a `.json`); `None` when it does not exist.
    pub(crate) async fn get_small(&self, rel: &str) -> Result<Option<Vec<u8>>, DistributeError> {
        let result = match self.inner.get(&self.key(rel)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(rel, "read", e)),
        };
        if result.meta.size > MAX_SMALL_OBJECT {
            return Err(DistributeError::TooLarge {
                url: self.shown.clone(),
                key: rel.to_owned(),
                limit: MAX_SMALL_OBJECT,
            });
        }
        let mut out = Vec::new();
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.error(rel, "read", e))?;
            if out.len() as u64 + chunk.len() as u64 > MAX_SMALL_OBJECT {
                return Err(DistributeError::TooLarge {
                    url: self.shown.clone(),
                    key: rel.to_owned(),
                    limit: MAX_SMALL_OBJECT,
                });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Some(out))
    }

    /// Writes a small object with one put (atomic).
    pub(crate) async fn put_small(&self, rel: &str, bytes: Vec<u8>) -> Result<(), DistributeError> {
        self.inner
            .put(&self.key(rel), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.error(rel, "write", e))
    }

    /// Uploads a local file: one put below `multipart_threshold` bytes, else a multipart
    /// upload in parts of `part_size` (aborted on failure).
    pub(crate) async fn put_file(
        &self,
        rel: &str,
        path: &Path,
        multipart_threshold: u64,
        part_size: usize,
    ) -> Result<(), DistributeError> {
        let mut file = std::fs::File::open(path).map_err(|e| DistributeError::io(path, e))?;
        let size = file
            .metadata()
            .map_err(|e| DistributeError::io(path, e))?
            .len();
        if size < multipart_threshold {
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            file.read_to_end(&mut bytes)
                .map_err(|e| DistributeError::io(path, e))?;
            return self.put_small(rel, bytes).await;
        }
        let upload = self
            .inner
            .put_multipart(&self.key(rel))
            .await
            .map_err(|e| self.error(rel, "start the upload of", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
        let mut buf = vec![0u8; part_size];
        loop {
            // A local file read between uploads: short next to a part's upload.
            let n = match file.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(DistributeError::io(path, e));
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = writer.wait_for_capacity(4).await {
                let _ = writer.abort().await;
                return Err(self.error(rel, "upload", e));
            }
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| self.error(rel, "finish the upload of", e))
    }

    /// Streams an object into `out`, at most `limit` bytes (more is an error); returns
    /// the bytes written. `None` when the object does not exist.
    pub(crate) async fn get_to(
        &self,
        rel: &str,
        limit: u64,
        out: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
        out_path: &Path,
    ) -> Result<Option<u64>, DistributeError> {
        let result = match self.inner.get(&self.key(rel)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(rel, "read", e)),
        };
        let too_large = || DistributeError::TooLarge {
            url: self.shown.clone(),
            key: rel.to_owned(),
            limit,
        };
        if result.meta.size > limit {
            return Err(too_large());
        }
        let mut written = 0u64;
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.error(rel, "read", e))?;
            written += chunk.len() as u64;
            if written > limit {
                return Err(too_large());
            }
            out(&chunk).map_err(|e| DistributeError::io(out_path, e))?;
        }
        Ok(Some(written))
    }

    /// The generation names with an object under `generations/`.
    pub(crate) async fn generations(&self) -> Result<Vec<String>, DistributeError> {
        let dir = self.key(GENERATIONS);
        let mut names = std::collections::BTreeSet::new();
        let mut stream = self.inner.list(Some(&dir));
        while let Some(meta) = stream.next().await {
            let meta = meta.map_err(|e| self.error(GENERATIONS, "list", e))?;
            if let Some(file) = meta.location.filename() {
                let name = file
                    .strip_suffix(".tar.zst")
                    .or_else(|| file.strip_suffix(".json"));
                if let Some(name) = name.filter(|n| crate::snapshot::layout::is_generation_name(n))
                {
                    names.insert(name.to_owned());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// The size of an object; `None` when it does not exist.
    pub(crate) async fn size(&self, rel: &str) -> Result<Option<u64>, DistributeError> {
        match self.inner.head(&self.key(rel)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(rel, "read", e)),
        }
    }

    /// Deletes an object (a missing one is not an error).
    pub(crate) async fn delete(&self, rel: &str) -> Result<(), DistributeError> {
        match self.inner.delete(&self.key(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(rel, "delete", e)),
        }
    }
}

/// The `LATEST` object: the generation to serve, its archive and checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latest {
    pub generation: String,
    /// Key of the archive, relative to the prefix (`generations/<name>.tar.zst`).
    pub archive: String,
    /// Key of the generation's manifest, relative to the prefix.
    pub manifest: String,
    /// SHA-256 of the archive, lower-case hex.
    pub sha256: String,
    /// Size of the archive.
    pub bytes: u64,
    /// RFC 3339, UTC.
    pub published_at: String,
}

impl Latest {
    /// Reads and checks `LATEST`: a generation name, the keys this layout gives it, a
    /// SHA-256. `None`: nothing published yet.
    pub(crate) async fn read(store: &Store) -> Result<Option<Latest>, DistributeError> {
        let Some(bytes) = store.get_small(LATEST).await? else {
            return Ok(None);
        };
        let bad = |reason: String| DistributeError::BadLatest {
            url: store.shown().to_owned(),
            key: LATEST.to_owned(),
            reason,
        };
        let latest: Latest = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("not the expected JSON: {e}")))?;
        if !crate::snapshot::layout::is_generation_name(&latest.generation) {
            return Err(bad(format!(
                "{:?} is not a generation name",
                latest.generation.chars().take(80).collect::<String>()
            )));
        }
        if latest.archive != archive_key(&latest.generation)
            || latest.manifest != manifest_key(&latest.generation)
        {
            return Err(bad(format!(
                "the archive and manifest keys must be {} and {}",
                archive_key(&latest.generation),
                manifest_key(&latest.generation)
            )));
        }
        if latest.sha256.len() != 64
            || !latest
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("sha256 is not 64 lower-case hex digits".to_owned()));
        }
        Ok(Some(latest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_urls() {
        assert_eq!(
            "s3://my-bucket/a/b/".parse::<StoreUrl>().unwrap(),
            StoreUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            "s3://my-bucket".parse::<StoreUrl>().unwrap().to_string(),
            "s3://my-bucket"
        );
        assert_eq!(
            "file:///srv/snapshots".parse::<StoreUrl>().unwrap(),
            StoreUrl::File {
                path: "/srv/snapshots".into()
            }
        );
        for bad in [
            "http://example.com/x",
            "/srv/snapshots",
            "s3://",
            "s3://Bad_Bucket/x",
            "s3://key:secret@bucket/x",
            "s3://bucket/a//b",
            "s3://bucket/../x",
            "s3://bucket/x?versionId=1",
            "file://host/path",
            "file://relative",
            "file:///srv/../etc",
        ] {
            let err = bad.parse::<StoreUrl>().unwrap_err().to_string();
            assert!(err.contains("expected s3://"), "{bad}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let options = S3Options {
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("wJalrXUtnFEMI".into()),
            ..S3Options::default()
        };
        let shown = format!("{options:?}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn one_key_without_the_other_is_refused() {
        let url: StoreUrl = "s3://bucket/x".parse().unwrap();
        let options = S3Options {
            access_key_id: Some("AKIDEXAMPLE".into()),
            ..S3Options::default()
        };
        let err = Store::open(&url, &options).unwrap_err().to_string();
        assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    }
}
