//! IVRE's MongoDB URLs (`ivre.db.mongo.MongoDB.__init__` / `MongoDBConnection`).
//!
//! `mongodb://[user:pass@]host[:port][,host…]/[db][?params]`:
//! - the database is the path, `ivre` when empty (`mongodb:///ivre`, `mongodb://h`);
//! - no host means the local server (pymongo's default, `localhost:27017`);
//! - `colname_hosts`, `colname_views`, `colname_passive` rename the collections; these,
//!   every other `colname_*`, and IVRE's `maxscan`/`maxtime` are IVRE's own parameters and
//!   are removed before the URL reaches the driver, which rejects unknown options;
//!   `maxtime` (milliseconds) becomes the queries' `maxTimeMS`, as in IVRE;
//! - `mongodb+srv://` and `documentdb://` (AWS DocumentDB, same filters) are accepted.
//!
//! With credentials the driver authenticates against the URL's database, as IVRE does
//! (`db.authenticate`), unless `authSource` says otherwise.

use crate::live::percent_decode;
use std::time::Duration;

/// A parsed IVRE MongoDB URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvreUrl {
    /// The URL for the driver. Holds the credentials: never log it.
    pub driver_url: String,
    /// The URL as given, safe to print.
    pub display: String,
    pub database: String,
    pub hosts: String,
    pub views: String,
    pub passive: String,
    /// IVRE's `maxtime`.
    pub max_time: Option<Duration>,
    /// Strings to hide from driver messages (the password, `*password*` options).
    pub secrets: Vec<String>,
}

/// Parses `url`; the error is a reason that quotes nothing of the URL but parameter
/// names and the database name.
pub fn parse(url: &str) -> Result<IvreUrl, String> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("not a URL (expected mongodb://…)")?;
    let driver_scheme = match scheme.to_ascii_lowercase().as_str() {
        "mongodb" | "documentdb" => "mongodb",
        "mongodb+srv" => "mongodb+srv",
        _ => {
            return Err(format!(
                "unsupported scheme `{scheme}` (expected mongodb://)"
            ))
        }
    };
    // IVRE's URLs carry no fragment; drop one rather than give it to the driver (and the
    // blanks before it, as those at the end of a URL without one; found by fuzzing).
    let rest = rest
        .split_once('#')
        .map_or(rest, |(before, _)| before)
        .trim_end();
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(authority_end);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, query),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    if hosts.is_empty() && driver_scheme == "mongodb+srv" {
        return Err("mongodb+srv:// needs a host name".to_owned());
    }
    let hosts = if hosts.is_empty() { "localhost" } else { hosts };
    let database = match path.trim_start_matches('/') {
        "" => "ivre".to_owned(),
        db => check_database(db)?,
    };

    let mut secrets = Vec::new();
    if let Some((_, password)) = userinfo.and_then(|u| u.split_once(':')) {
        add_secret(&mut secrets, password);
    }
    let mut names = [
        ("colname_hosts", "hosts".to_owned()),
        ("colname_views", "views".to_owned()),
        ("colname_passive", "passive".to_owned()),
    ];
    let mut max_time = None;
    let mut driver_params = Vec::new();
    for param in query.split('&').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        if let Some((_, name)) = names.iter_mut().find(|(k, _)| *k == key) {
            *name = check_collection(key, value)?;
        } else if key == "maxtime" {
            let ms: u64 = value
                .parse()
                .map_err(|_| "`maxtime` must be a number of milliseconds".to_owned())?;
            max_time = Some(Duration::from_millis(ms));
        } else if key.starts_with("colname_") || key == "maxscan" {
            // Other IVRE purposes' collections; `maxscan` is gone from MongoDB 4.2.
        } else {
            if key.to_ascii_lowercase().contains("password") {
                add_secret(&mut secrets, value);
            }
            driver_params.push(param);
        }
    }
    let [(_, hosts_col), (_, views_col), (_, passive_col)] = names;

    let mut driver_url = format!("{driver_scheme}://");
    if let Some(userinfo) = userinfo {
        driver_url.push_str(userinfo);
        driver_url.push('@');
    }
    driver_url.push_str(hosts);
    driver_url.push('/');
    driver_url.push_str(&database);
    if !driver_params.is_empty() {
        driver_url.push('?');
        driver_url.push_str(&driver_params.join("&"));
    }
    Ok(IvreUrl {
        driver_url,
        display: display(url),
        database,
        hosts: hosts_col,
        views: views_col,
        passive: passive_col,
        max_time,
        secrets,
    })
}

/// `url` with its secrets hidden: [`crate::redact::url`] (user-info, `*password*`,
/// `auth*` and other secret-looking options).
pub fn display(url: &str) -> String {
    crate::redact::url(url.trim())
}

/// Replaces every secret of `url` in a driver message by `***`.
pub fn scrub(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    // Longest first, so that a secret containing another is hidden whole.
    let mut sorted: Vec<&String> = secrets.iter().collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in sorted {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

/// Records `raw` and its percent-decoded form (the driver decodes passwords) as secrets; very short values are skipped, hiding them would garble the
/// message without protecting anything.
fn add_secret(secrets: &mut Vec<String>, raw: &str) {
    for value in [raw.to_owned(), percent_decode(raw)] {
        if value.len() >= 3 && !secrets.contains(&value) {
            secrets.push(value);
        }
    }
}

/// MongoDB database names: no `/\. "$`, NUL, and at most 63 bytes.
fn check_database(db: &str) -> Result<String, String> {
    // Nor other blanks or control characters (found by fuzzing: a trailing `\r` was kept).
    if db.len() > 63
        || db.contains(['/', '\\', '.', '"', '$'])
        || db.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("invalid database name `{db}` in the URL path"));
    }
    Ok(db.to_owned())
}

/// MongoDB collection names: not empty, no `$` or NUL, not `system.…`.
fn check_collection(param: &str, name: &str) -> Result<String, String> {
    if name.is_empty() || name.contains(['$', '\0']) || name.starts_with("system.") {
        return Err(format!("invalid collection name in `{param}`"));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn ivre_default_url() {
        let u = parse("mongodb:///ivre").unwrap();
        assert_eq!(u.driver_url, "mongodb://localhost/ivre");
        assert_eq!(u.database, "ivre");
        assert_eq!(
            (&*u.hosts, &*u.views, &*u.passive),
            ("hosts", "views", "passive")
        );
        assert_eq!(u.max_time, None);
        assert!(u.secrets.is_empty());
    }

    #[test]
    fn database_defaults_to_ivre() {
        for url in [
            "mongodb://db.example:27017",
            "mongodb://db.example:27017/",
            "mongodb://",
        ] {
            assert_eq!(parse(url).unwrap().database, "ivre", "{url}");
        }
        let u = parse("mongodb://h1:27017,h2:27018/scans2024?replicaSet=rs0").unwrap();
        assert_eq!(u.database, "scans2024");
        assert_eq!(
            u.driver_url,
            "mongodb://h1:27017,h2:27018/scans2024?replicaSet=rs0"
        );
    }

    #[test]
    fn ivre_parameters_are_taken_out() {
        let u = parse(
            "mongodb://h/ivre?colname_hosts=nmap2&maxtime=2500&readPreference=secondary\
             &colname_views=v2&colname_scans=s2&maxscan=10&colname_passive=p2&ssl=false",
        )
        .unwrap();
        assert_eq!((&*u.hosts, &*u.views, &*u.passive), ("nmap2", "v2", "p2"));
        assert_eq!(u.max_time, Some(Duration::from_millis(2500)));
        assert_eq!(
            u.driver_url,
            "mongodb://h/ivre?readPreference=secondary&ssl=false"
        );
    }

    #[test]
    fn schemes() {
        let doc = parse("documentdb://u:p4ss@docdb.example:27017/ivre?tls=true").unwrap();
        assert_eq!(
            doc.driver_url,
            "mongodb://u:p4ss@docdb.example:27017/ivre?tls=true"
        );
        let srv = parse("mongodb+srv://cluster.example/ivre").unwrap();
        assert_eq!(srv.driver_url, "mongodb+srv://cluster.example/ivre");
        assert!(parse("mongodb+srv:///ivre").is_err());
        for bad in ["postgresql://h/ivre", "http://h/cgi", "ivre", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_names_and_values() {
        for bad in [
            "mongodb:///iv.re",
            "mongodb:///a/b",
            "mongodb:///x$y",
            "mongodb:///ivre?colname_hosts=",
            "mongodb:///ivre?colname_passive=a$b",
            "mongodb:///ivre?colname_views=system.users",
            "mongodb:///ivre?maxtime=soon",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_are_secrets_and_hidden_from_display() {
        let url = "mongodb://ivre%40corp:s3cr%3At@db.example/ivre?authSource=admin\
                   &tlsCertificateKeyFilePassword=keypass&colname_hosts=h";
        let u = parse(url).unwrap();
        assert!(u
            .driver_url
            .starts_with("mongodb://ivre%40corp:s3cr%3At@db.example/ivre?"));
        for secret in ["s3cr%3At", "s3cr:t", "keypass"] {
            assert!(u.secrets.iter().any(|s| s == secret), "{secret}");
        }
        for secret in ["ivre%40corp", "ivre@corp", "s3cr%3At", "s3cr:t", "keypass"] {
            assert!(!u.display.contains(secret), "{}", u.display);
        }
        assert_eq!(
            u.display,
            "mongodb://***:***@db.example/ivre?authSource=***\
             &tlsCertificateKeyFilePassword=***&colname_hosts=h"
        );
        let msg = "auth of ivre@corp with s3cr:t failed (keypass)";
        assert_eq!(
            scrub(msg, &u.secrets),
            "auth of ivre@corp with *** failed (***)"
        );
    }

    /// Fuzzing (`fuzz/`, target `mongo_url`): blanks before a fragment or around a
    /// parameter stayed in the driver URL (in a parameter, or in the database name, refused).
    #[test]
    fn blanks_before_a_fragment_are_dropped() {
        let u = parse("mongodb:///ivre?maxtime=5&readPreference=secondary    #note").unwrap();
        assert_eq!(
            u.driver_url,
            "mongodb://localhost/ivre?readPreference=secondary"
        );
        assert_eq!(parse(&u.driver_url).unwrap().driver_url, u.driver_url);
        assert_eq!(parse("mongodb://h/scans \t#x").unwrap().database, "scans");
        assert!(parse("mongodb:///ivre\r\r?w=1").is_err());
        assert!(parse("mongodb:///iv\tre").is_err());
        // Blanks around parameters (the last one ended the driver URL).
        let u = parse("mongodb://h/ivre?w=1 & readPreference=nearest   &  ").unwrap();
        assert_eq!(u.driver_url, "mongodb://h/ivre?w=1&readPreference=nearest");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b%3a%zz%4"), "a@b:%zz%4");
    }
}
