//! Which MaxMind database serves which role, from its metadata `database_type`.
//!
//! IVRE (`MaxMindDBData.reload_files`) lower-cases `database_type`, drops a leading
//! `geolite2-` and keeps the last file seen for each name (`asn`, `city`, `country`);
//! commercial `GeoIP2-*` files end up unused. Here both editions are accepted, and when
//! several files claim one role the choice is deterministic: GeoIP2 over GeoLite2, then
//! the newest `build_epoch`, then the smallest file name.

use serde::Serialize;
use std::cmp::Ordering;
use std::fmt;
use std::path::PathBuf;

/// What a MaxMind database is used for in `infos_byip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `*-City`: location (`location_byip`).
    City,
    /// `*-Country`: country (`country_byip`).
    Country,
    /// `*-ASN`: autonomous system (`as_byip`).
    Asn,
}

impl Role {
    /// Every role, in the order [`super::Geo::files`] lists them.
    pub const ALL: [Role; 3] = [Role::City, Role::Country, Role::Asn];

    /// The lowercase name (also the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::City => "city",
            Role::Country => "country",
            Role::Asn => "asn",
        }
    }

    /// Position in [`Role::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Role::City => 0,
            Role::Country => 1,
            Role::Asn => 2,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The MaxMind product line of a database; the commercial one is preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Edition {
    GeoLite2,
    GeoIp2,
}

/// The role and edition of a database from its metadata `database_type`
/// (case-insensitive): `GeoLite2-`/`GeoIP2-` followed by `City`, `Country` or `ASN`.
/// Anything else (GeoIP2-ISP, Anonymous-IP, Enterprise, test databases...) has no role.
pub(crate) fn classify(database_type: &str) -> Option<(Role, Edition)> {
    let lower = database_type.to_ascii_lowercase();
    let (edition, rest) = if let Some(rest) = lower.strip_prefix("geolite2-") {
        (Edition::GeoLite2, rest)
    } else if let Some(rest) = lower.strip_prefix("geoip2-") {
        (Edition::GeoIp2, rest)
    } else {
        return None;
    };
    let role = match rest {
        "city" => Role::City,
        "country" => Role::Country,
        "asn" => Role::Asn,
        _ => return None,
    };
    Some((role, edition))
}

/// A MaxMind database file serving one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeoFile {
    /// The role it serves.
    pub role: Role,
    /// Where it was read from.
    pub path: PathBuf,
    /// Its metadata `database_type`, as written in the file (e.g. `GeoLite2-City`).
    pub database_type: String,
    /// Its metadata `build_epoch` (Unix time of the build).
    pub build_epoch: u64,
}

impl GeoFile {
    fn edition(&self) -> Option<Edition> {
        classify(&self.database_type).map(|(_, edition)| edition)
    }
}

/// Orders two candidates for the same role: the preferred one first.
fn preference(a: &GeoFile, b: &GeoFile) -> Ordering {
    b.edition()
        .cmp(&a.edition())
        .then_with(|| b.build_epoch.cmp(&a.build_epoch))
        .then_with(|| a.path.file_name().cmp(&b.path.file_name()))
        .then_with(|| a.path.cmp(&b.path))
}

/// For each role of [`Role::ALL`], the index in `candidates` of the file that serves
/// it, if any. Every candidate's `role` must be the one [`classify`] gives.
pub(crate) fn choose(candidates: &[GeoFile]) -> [Option<usize>; 3] {
    let mut chosen: [Option<usize>; 3] = [None; 3];
    for (index, file) in candidates.iter().enumerate() {
        let slot = &mut chosen[file.role.index()];
        match *slot {
            Some(best) if preference(&candidates[best], file) != Ordering::Greater => {}
            _ => *slot = Some(index),
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, database_type: &str, build_epoch: u64) -> GeoFile {
        GeoFile {
            role: classify(database_type).unwrap().0,
            path: PathBuf::from("/geo").join(name),
            database_type: database_type.into(),
            build_epoch,
        }
    }

    #[test]
    fn classify_database_types() {
        use Edition::*;
        assert_eq!(classify("GeoLite2-ASN"), Some((Role::Asn, GeoLite2)));
        assert_eq!(classify("GeoLite2-City"), Some((Role::City, GeoLite2)));
        assert_eq!(
            classify("GeoLite2-Country"),
            Some((Role::Country, GeoLite2))
        );
        assert_eq!(classify("GeoIP2-City"), Some((Role::City, GeoIp2)));
        assert_eq!(classify("GeoIP2-Country"), Some((Role::Country, GeoIp2)));
        assert_eq!(classify("GeoIP2-ASN"), Some((Role::Asn, GeoIp2)));
        assert_eq!(classify("geolite2-city"), Some((Role::City, GeoLite2)));
        for other in [
            "GeoIP2-ISP",
            "GeoIP2-Anonymous-IP",
            "GeoIP2-Enterprise",
            "GeoIP2-City-Europe",
            "GeoIP2-Connection-Type",
            "Test",
            "City",
            "",
        ] {
            assert_eq!(classify(other), None, "{other}");
        }
    }

    #[test]
    fn role_names() {
        assert_eq!(Role::Asn.to_string(), "asn");
        assert_eq!(serde_json::to_value(Role::City).unwrap(), "city");
        assert_eq!(serde_json::to_value(Role::Country).unwrap(), "country");
        let f = file("a.mmdb", "GeoLite2-ASN", 3);
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"role": "asn", "path": "/geo/a.mmdb",
                               "database_type": "GeoLite2-ASN", "build_epoch": 3})
        );
    }

    #[test]
    fn geoip2_beats_newer_geolite2() {
        let files = [
            file("lite.mmdb", "GeoLite2-City", 200),
            file("paid.mmdb", "GeoIP2-City", 100),
            file("lite2.mmdb", "GeoLite2-City", 300),
        ];
        assert_eq!(choose(&files), [Some(1), None, None]);
    }

    #[test]
    fn newest_build_wins_then_file_name() {
        let files = [
            file("b.mmdb", "GeoLite2-ASN", 100),
            file("c.mmdb", "GeoLite2-ASN", 200),
            file("a.mmdb", "GeoLite2-Country", 5),
            file("z.mmdb", "GeoLite2-ASN", 200),
        ];
        assert_eq!(choose(&files), [None, Some(2), Some(1)]);
        let tie = [
            file("z.mmdb", "GeoLite2-ASN", 1),
            file("a.mmdb", "GeoLite2-ASN", 1),
        ];
        assert_eq!(choose(&tie), [None, None, Some(1)]);
        assert_eq!(choose(&[]), [None, None, None]);
    }
}
