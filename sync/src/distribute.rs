//! `ivre-sync publish` and `ivre-sync fetch`, and the `--publish URL` hook of `import`,
//! `pull` and `watch`: the command-line side of `ivre_connector::distribute`.

use anyhow::{Context, Result};
use ivre_connector::config::s3::S3Settings;
use ivre_connector::config::{table, ConfigFile};
use ivre_connector::distribute::{self, S3Options, Store, StoreUrl};
use ivre_connector::snapshot::DataDir;
use std::sync::OnceLock;
use std::time::Duration;

/// The S3 settings of the table (`AWS_*`, YAML section `s3`).
pub fn s3_options(config: &ConfigFile) -> Result<S3Options> {
    let settings = S3Settings::from_config(config)?;
    Ok(S3Options::from(&settings))
}

/// Opens the store at `url` with the configured S3 settings.
pub fn open_store(url: &str, config: &ConfigFile) -> Result<Store> {
    let url: StoreUrl = url.parse()?;
    Ok(Store::open(&url, &s3_options(config)?)?)
}

/// The store each published generation is pushed to: `--publish URL`, else
/// `IVRE_SNAPSHOT_PUBLISH` / `ivre.snapshot_publish`.
pub fn publish_target(flag: Option<String>, config: &ConfigFile) -> Result<Option<Store>> {
    let Some(url) = flag.or_else(|| config.value(&table::IVRE_SNAPSHOT_PUBLISH)) else {
        return Ok(None);
    };
    open_store(&url, config)
        .map(Some)
        .context("--publish / IVRE_SNAPSHOT_PUBLISH")
}

/// The push target of this process and the runtime of blocking callers (`import`,
/// `watch`), set once at start-up.
struct Target {
    store: Store,
    runtime: OnceLock<Option<tokio::runtime::Runtime>>,
}

static TARGET: OnceLock<Target> = OnceLock::new();

/// Sets where [`after_publish`] pushes generations.
pub fn set_publish_target(store: Store) {
    let _ = TARGET.set(Target {
        store,
        runtime: OnceLock::new(),
    });
}

/// Pushes the served generation to the store and prints the outcome; false when the
/// upload failed (the local generation stays published).
pub async fn push(data: &DataDir, store: &Store) -> bool {
    match distribute::publish(data, store).await {
        Ok(p) if p.uploaded => {
            crate::cli::say(format_args!(
                "uploaded {} to {} ({} bytes, sha256 {})",
                p.generation,
                store.shown(),
                p.bytes,
                p.sha256
            ));
            true
        }
        Ok(p) => {
            crate::cli::say(format_args!(
                "{} is already the latest in {}",
                p.generation,
                store.shown()
            ));
            true
        }
        Err(e) => {
            tracing::error!(store = %store.shown(), error = %e, "upload to the store failed; the generation stays published here");
            false
        }
    }
}

/// After a generation was published here (async callers: `pull`): pushes it when a
/// target is set. False when the upload failed.
pub async fn after_publish_async(data: &DataDir) -> bool {
    match TARGET.get() {
        Some(target) => push(data, &target.store).await,
        None => true,
    }
}

/// After a generation was published here (blocking callers: `import`, `watch`; not
/// from inside an async runtime): pushes it when a target is set. False when the upload
/// failed.
pub fn after_publish(data: &DataDir) -> bool {
    let Some(target) = TARGET.get() else {
        return true;
    };
    let runtime = target.runtime.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| tracing::error!(error = %e, "cannot start the async runtime"))
            .ok()
    });
    match runtime {
        Some(runtime) => runtime.block_on(push(data, &target.store)),
        None => false,
    }
}

/// `ivre-sync publish --to URL`.
pub fn publish_command(data: &DataDir, config: &ConfigFile, to: &str) -> Result<i32> {
    let store = open_store(to, config)?;
    let runtime = runtime()?;
    let published = runtime
        .block_on(distribute::publish(data, &store))
        .with_context(|| {
            format!(
                "cannot publish {} to {}",
                data.root().display(),
                store.shown()
            )
        })?;
    if published.uploaded {
        crate::cli::say(format_args!(
            "uploaded {} to {} ({} bytes, sha256 {})",
            published.generation,
            store.shown(),
            published.bytes,
            published.sha256
        ));
    } else {
        crate::cli::say(format_args!(
            "{} is already the latest in {}",
            published.generation,
            store.shown()
        ));
    }
    Ok(0)
}

/// `ivre-sync fetch --from URL [--every DURATION]`.
pub fn fetch_command(
    data: &DataDir,
    config: &ConfigFile,
    from: &str,
    every: Option<Duration>,
) -> Result<i32> {
    let store = open_store(from, config)?;
    runtime()?.block_on(async {
        loop {
            match distribute::fetch(data, &store).await {
                Ok(Some(name)) => crate::cli::say(format_args!(
                    "installed {name} from {} in {}",
                    store.shown(),
                    data.root().display()
                )),
                Ok(None) => crate::cli::say(format_args!(
                    "{} is up to date with {}",
                    data.root().display(),
                    store.shown()
                )),
                Err(e) if every.is_some() => {
                    tracing::error!(error = %e, "fetch failed; the served generation stays")
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot fetch into {}", data.root().display())))
                }
            }
            let Some(period) = every else { return Ok(0) };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(0),
                _ = tokio::time::sleep(period) => {}
            }
        }
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
