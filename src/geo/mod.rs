//! MaxMind `.mmdb` files and IVRE 0.9.20's `DBData.infos_byip`.
//!
//! [`Geo::open_dir`] loads every `*.mmdb` file of a directory, checks it thoroughly
//! and gives each one a [`Role`] from its metadata `database_type`: `GeoLite2-` or
//! `GeoIP2-` followed by `City`, `Country` or `ASN` (other types are ignored). When
//! several files claim one role, GeoIP2 beats GeoLite2, then the newest `build_epoch`
//! wins, then the smallest file name. [`Geo::infos_byip`] then answers like IVRE's
//! `DBData.infos_byip(addr)`: the IANA [`address_type()`], then the ASN, Country and
//! City records merged in that order as Python's `dict.update` would.
//!
//! # `infos_byip` versus `ivre ipdata --json`
//!
//! IVRE's `ivre ipdata --json` does *not* print `infos_byip`: it prints `addr`, the
//! address type, then `as_byip` and `location_byip` only, without `country_byip`. Both
//! carry the same values whenever the City database covers the address (City fields
//! overwrite Country ones), but the key order differs: `infos_byip` puts `country_code`
//! and `country_name` right after the AS fields. [`Geo::ipdata`] reproduces the CLI
//! output (without `addr`).

pub mod address_type;
mod infos;
mod record;
mod roles;

pub use address_type::address_type;
pub use roles::{GeoFile, Role};

use maxminddb::{MaxMindDbError, PathElement, Reader};
use record::RecordValue;
use serde_json::{Map, Value};
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use tracing::{debug, info};

/// An opened MaxMind database, held in memory.
type Db = Reader<Vec<u8>>;

/// Why a directory of MaxMind databases could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The directory is missing or unreadable.
    #[error("cannot list MaxMind directory {}: {source}", path.display())]
    ReadDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A database file could not be read from disk.
    #[error("cannot read MaxMind database {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A database file is not a MaxMind DB (bad metadata or layout).
    #[error("cannot read MaxMind database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: MaxMindDbError,
    },
    /// A database file opens but its search tree or data section is corrupt.
    #[error("corrupt MaxMind database {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

/// The MaxMind databases serving each [`Role`]; `Geo::default()` serves none (geo
/// information disabled).
///
/// `Geo` is `Send + Sync` and read-only once opened: share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct Geo {
    /// The files serving a role, in [`Role::ALL`] order.
    files: Vec<GeoFile>,
    /// The opened databases, indexed by [`Role::index`].
    dbs: [Option<Db>; 3],
    /// `infos_byip` answers by what they are made of (see [`InfosKey`]): every address
    /// of a network shares its records, so decoding them once per network is enough.
    infos_cache: std::sync::Mutex<std::collections::HashMap<InfosKey, Option<Infos>>>,
}

/// An `infos_byip` answer, shared by the cache and every lookup of its network (a copy
/// of the map per lookup was 5 % of an IPv4 lookup).
pub type Infos = std::sync::Arc<Map<String, Value>>;

/// What an `infos_byip` answer depends on: the address type, and the data record each
/// role's database points the address to (offset in its data section).
type InfosKey = (Option<&'static str>, [Option<usize>; 3]);

/// Most `infos_byip` answers kept: a bounded memory cost (the cache is emptied when it
/// is full, so a scan of a whole database does not grow it).
const INFOS_CACHE_ENTRIES: usize = 16_384;

impl Geo {
    /// No database: every lookup gives only the address type.
    pub fn empty() -> Geo {
        Geo::default()
    }

    /// Opens every `*.mmdb` file (extension compared case-insensitively) directly in
    /// `dir` (not in subdirectories).
    ///
    /// Every such file must be a sound MaxMind database, whatever its type: it is
    /// parsed, probed (lookups of `1.1.1.1` and `::1`, records decoded) and fully
    /// verified (search tree and every data record it points to), so corruption shows
    /// here rather than at query time. A file that fails is an error naming it. Files
    /// of a type without a role are then ignored; a directory without any usable file
    /// gives an empty `Geo`. A missing or unreadable directory is an error.
    pub fn open_dir(dir: &Path) -> Result<Geo, GeoError> {
        let read_dir_error = |source| GeoError::ReadDir {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in fs::read_dir(dir).map_err(read_dir_error)? {
            let path = entry.map_err(read_dir_error)?.path();
            let is_mmdb = path
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("mmdb"));
            if is_mmdb && path.is_file() {
                paths.push(path);
            } else if is_mmdb {
                debug!(path = %path.display(), "skipping .mmdb entry that is not a file");
            }
        }
        paths.sort();

        let mut candidates = Vec::new();
        let mut readers = Vec::new();
        for path in paths {
            let reader = open_file(&path)?;
            let meta = reader.metadata();
            match roles::classify(&meta.database_type) {
                Some((role, _)) => {
                    candidates.push(GeoFile {
                        role,
                        path,
                        database_type: meta.database_type.clone(),
                        build_epoch: meta.build_epoch,
                    });
                    readers.push(Some(reader));
                }
                None => info!(
                    path = %path.display(),
                    database_type = %meta.database_type,
                    "ignoring MaxMind database: its type serves no role"
                ),
            }
        }
        Ok(Geo::from_candidates(dir, candidates, readers))
    }

    /// Keeps the preferred candidate of each role and logs the choices.
    fn from_candidates(dir: &Path, candidates: Vec<GeoFile>, mut readers: Vec<Option<Db>>) -> Geo {
        let chosen = roles::choose(&candidates);
        let mut geo = Geo::default();
        for role in Role::ALL {
            let Some(index) = chosen[role.index()] else {
                continue;
            };
            let file = &candidates[index];
            info!(
                role = %role,
                path = %file.path.display(),
                database_type = %file.database_type,
                build_epoch = file.build_epoch,
                "MaxMind database serves role"
            );
            geo.dbs[role.index()] = readers.get_mut(index).and_then(Option::take);
            geo.files.push(file.clone());
        }
        for (index, file) in candidates.iter().enumerate() {
            if chosen.contains(&Some(index)) {
                continue;
            }
            let winner = chosen[file.role.index()].and_then(|i| candidates.get(i));
            info!(
                role = %file.role,
                path = %file.path.display(),
                database_type = %file.database_type,
                build_epoch = file.build_epoch,
                serving = %winner.map_or_else(String::new, |w| w.path.display().to_string()),
                "MaxMind database passed over: another file serves its role"
            );
        }
        if geo.is_empty() {
            info!(dir = %dir.display(), "no usable MaxMind database: geo information disabled");
        }
        geo
    }

    /// True when no role is served.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The files serving a role, in role order City, Country, Asn.
    pub fn files(&self) -> &[GeoFile] {
        &self.files
    }

    /// IVRE's `DBData.infos_byip(addr)`: `address_type`, then the ASN record
    /// (`as_num`, `as_name`, other keys as they are), then `country_code` /
    /// `country_name` from the Country database, then the City fields (`region_code`,
    /// `region_name`, `continent_*`, `country_*`, `registered_country_*`, `city`,
    /// `postal_code`, `coordinates`, `coordinates_accuracy_radius`). A later source
    /// overwrites the value of a key already present, which keeps its position.
    /// Unknown keys are omitted; `None` when nothing at all is known.
    pub fn infos_byip(&self, ip: IpAddr) -> Option<Infos> {
        let key = self.infos_key(ip);
        if let Some(key) = &key {
            let cache = self.infos_cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(found) = cache.get(key) {
                return found.clone();
            }
        }
        let infos = self.infos_byip_uncached(ip).map(Infos::new);
        if let Some(key) = key {
            let mut cache = self.infos_cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= INFOS_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(key, infos.clone());
        }
        infos
    }

    /// The cache key of `ip`'s `infos_byip` answer; `None` when a lookup fails (the
    /// answer is then computed, and logged, every time).
    fn infos_key(&self, ip: IpAddr) -> Option<InfosKey> {
        let mut offsets = [None; 3];
        for role in [Role::Asn, Role::Country, Role::City] {
            if let Some((db, ip)) = self.db_for(role, ip) {
                offsets[role.index()] = db.lookup(ip).ok()?.offset();
            }
        }
        Some((address_type(ip), offsets))
    }

    fn infos_byip_uncached(&self, ip: IpAddr) -> Option<Map<String, Value>> {
        let mut result = self.address_and_as(ip);
        if let Some(raw) = self.record(Role::Country, ip) {
            infos::update(&mut result, infos::country_byip(&raw));
        }
        self.add_location(&mut result, ip);
        (!result.is_empty()).then_some(result)
    }

    /// What `ivre ipdata --json ADDR` prints, without its leading `addr`: the address
    /// type, then `as_byip` and `location_byip` (IVRE's CLI skips the Country
    /// database). Empty when nothing is known.
    pub fn ipdata(&self, ip: IpAddr) -> Map<String, Value> {
        let mut result = self.address_and_as(ip);
        self.add_location(&mut result, ip);
        result
    }

    /// The AS number from the ASN database alone (fast path: decodes one field).
    pub fn asn(&self, ip: IpAddr) -> Option<u32> {
        let (db, ip) = self.db_for(Role::Asn, ip)?;
        let path = [PathElement::Key("autonomous_system_number")];
        match db
            .lookup(ip)
            .and_then(|found| found.decode_path::<RecordValue>(&path))
        {
            Ok(value) => value
                .and_then(|v| v.0.as_u64())
                .and_then(|n| u32::try_from(n).ok()),
            Err(error) => {
                debug!(%ip, %error, "cannot read AS number from MaxMind database");
                None
            }
        }
    }

    /// `address_type` then `as_byip`, the start of both `infos_byip` and `ipdata`.
    fn address_and_as(&self, ip: IpAddr) -> Map<String, Value> {
        let mut result = Map::new();
        if let Some(kind) = address_type(ip) {
            result.insert("address_type".into(), kind.into());
        }
        if let Some(raw) = self.record(Role::Asn, ip) {
            infos::update(&mut result, infos::as_byip(raw));
        }
        result
    }

    /// Merges `location_byip` into `result`.
    fn add_location(&self, result: &mut Map<String, Value>, ip: IpAddr) {
        if let Some(location) = self
            .record(Role::City, ip)
            .as_ref()
            .and_then(infos::location_byip)
        {
            infos::update(result, location);
        }
    }

    /// The database serving `role` and the address to look up in it, if it can hold
    /// that address (an IPv4-only database is asked for IPv4-mapped IPv6 addresses as
    /// IPv4, and not asked for other IPv6 addresses).
    fn db_for(&self, role: Role, ip: IpAddr) -> Option<(&Db, IpAddr)> {
        let db = self.dbs[role.index()].as_ref()?;
        let ip = match ip {
            IpAddr::V6(v6) if db.metadata().ip_version == 4 => IpAddr::V4(v6.to_ipv4_mapped()?),
            _ => ip,
        };
        Some((db, ip))
    }

    /// The raw record `role`'s database holds for `ip`, as a JSON object in database
    /// key order. Lookup or decoding failures are logged and read as "unknown".
    fn record(&self, role: Role, ip: IpAddr) -> Option<Map<String, Value>> {
        let (db, ip) = self.db_for(role, ip)?;
        match db
            .lookup(ip)
            .and_then(|found| found.decode::<RecordValue>())
        {
            Ok(Some(RecordValue(Value::Object(map)))) => Some(map),
            Ok(Some(_)) => {
                debug!(%ip, %role, "MaxMind record is not a map: ignored");
                None
            }
            Ok(None) => None,
            Err(error) => {
                debug!(%ip, %role, %error, "cannot read MaxMind record: ignored");
                None
            }
        }
    }
}

/// Reads, parses and checks one database file.
fn open_file(path: &Path) -> Result<Db, GeoError> {
    let buf = fs::read(path).map_err(|source| GeoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = Reader::from_source(buf).map_err(|source| GeoError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    check(&reader).map_err(|reason| GeoError::Corrupt {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(reader)
}

/// Probes a freshly opened database (lookups of `1.1.1.1` and, in an IPv6 database,
/// `::1`, with their records decoded) then verifies all of it with
/// [`Reader::verify`]. A panic of the reader counts as corruption.
fn check(reader: &Db) -> Result<(), String> {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| -> Result<(), MaxMindDbError> {
        let mut probes = vec![IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1))];
        if reader.metadata().ip_version == 6 {
            probes.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
        }
        for ip in probes {
            reader.lookup(ip)?.decode::<RecordValue>()?;
        }
        reader.verify()
    }));
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("the MaxMind DB reader panicked while checking the file".into()),
    }
}

#[cfg(test)]
mod tests;
