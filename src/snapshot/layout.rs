//! Where things live in a data directory.
//!
//! ```text
//! DATA_DIR/
//!   CURRENT                     name of the served generation (replaced atomically)
//!   .lock                       held by the one process building a generation
//!   generations/
//!     gen-20261128T221500123456Z/          a published generation (never written again)
//!       manifest.json
//!       index/                  record files, the key-table base, sled (`entries/`)
//!       geoip/*.mmdb            the MaxMind files this generation was built with
//!     gen-….building/           being built; never read; removed if left by a crash
//!   tmp/private-*/              private copies of a locked generation (see `open`)
//!   tmp/pull-<pid>/             the NDJSON files of a pull in progress (`refresh::pull`)
//!   tmp/.tmp*/                  MaxMind files staged for a dropped `.mmdb` (`refresh::watch`)
//!   daemon/inflight/            the daemon's redelivery markers (`opencti::pipeline::redelivery`)
//! ```

use std::path::{Path, PathBuf};

pub const CURRENT: &str = "CURRENT";
pub const LOCK: &str = ".lock";
pub const GENERATIONS: &str = "generations";
pub const TMP: &str = "tmp";
pub const MANIFEST: &str = "manifest.json";
pub const INDEX: &str = "index";
pub const GEOIP: &str = "geoip";
pub const BUILDING_SUFFIX: &str = ".building";

/// A data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn current_file(&self) -> PathBuf {
        self.root.join(CURRENT)
    }

    pub fn lock_file(&self) -> PathBuf {
        self.root.join(LOCK)
    }

    pub fn generations(&self) -> PathBuf {
        self.root.join(GENERATIONS)
    }

    pub fn generation(&self, name: &str) -> PathBuf {
        self.generations().join(name)
    }

    pub fn tmp(&self) -> PathBuf {
        self.root.join(TMP)
    }
}

/// True for names this tool gives to published generations.
pub fn is_generation_name(name: &str) -> bool {
    name.starts_with("gen-")
        && !name.ends_with(BUILDING_SUFFIX)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
