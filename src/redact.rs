//! The one redaction of URLs: what is logged, written into a manifest or a report, or put
//! in a Note goes through [`url`] first.
//!
//! Hidden:
//!
//! - the user-info (`user:password@` → `***:***@`, `token@` → `***@`);
//! - the value of every query parameter whose name contains one of [`SECRET_NAMES`]
//!   (`?tlsCertificateKeyFilePassword=x` → `?tlsCertificateKeyFilePassword=***`);
//! - the whole fragment: IVRE puts HTTP headers in the fragment of its web API URLs
//!   (`#X-API-Key=x` → `#***`), and a header's name says too much about its value (the
//!   kind of key, the name of a cookie) to keep even the names.
//!
//! Names are compared without regard to case, and after percent-decoding. When in doubt,
//! more is hidden rather than less: the user-info ends at the last `@` before the first
//! `/`, `?` or `#` after it (so a password with a raw `@` is hidden whole), and a parameter
//! without `=` whose name looks secret is replaced by `***`.

/// Parts of a parameter or header name that make its value secret.
pub const SECRET_NAMES: [&str; 6] = ["pass", "secret", "token", "key", "auth", "session"];

/// What replaces a secret.
pub const HIDDEN: &str = "***";

/// Whether a parameter or header named `name` holds a secret (see [`SECRET_NAMES`]).
///
/// `passive` is not taken for `pass`: IVRE's `colname_passive` names a collection.
pub fn is_secret_name(name: &str) -> bool {
    let name = percent_decode(name)
        .to_ascii_lowercase()
        .replace("passive", "");
    SECRET_NAMES.iter().any(|s| name.contains(s))
}

/// `url` with its secrets hidden (see the module documentation). Never fails: text that
/// is not a URL comes back with whatever looks like user-info or secret parameters hidden.
///
/// `mongodb://u:p@h/ivre?authSource=admin&tlsCertificateKeyFilePassword=x` →
/// `mongodb://***:***@h/ivre?authSource=***&tlsCertificateKeyFilePassword=***`;
/// `http://h/cgi#X-API-Key=secret` → `http://h/cgi#***`.
pub fn url(url: &str) -> String {
    let (prefix, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let mut out = String::with_capacity(url.len() + 8);
    out.push_str(prefix);
    // The authority ends at the first `/` or `?`; a `#` before them may belong to a
    // password (`user:p#ss@host`), so the user-info is looked for up to the last `@`
    // before that end.
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let after = match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            out.push_str(if userinfo.is_empty() {
                "@"
            } else if userinfo.contains(':') {
                "***:***@"
            } else {
                "***@"
            });
            &rest[at + 1..]
        }
        None => rest,
    };
    let (before_fragment, fragment) = match after.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (after, None),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            out.push_str(&pairs(query, '&'));
        }
        None => out.push_str(before_fragment),
    }
    if fragment.is_some() {
        out.push('#');
        out.push_str(HIDDEN);
    }
    out
}

/// `name=value` pairs separated by `sep`, secret values hidden (a piece without `=`
/// whose name looks secret is hidden whole).
fn pairs(text: &str, sep: char) -> String {
    text.split(sep)
        .map(|piece| match piece.split_once('=') {
            Some((name, _)) if is_secret_name(name) => format!("{name}={HIDDEN}"),
            None if is_secret_name(piece) => HIDDEN.to_owned(),
            _ => piece.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(&sep.to_string())
}

/// Replaces, in free text (an error message of a library, say), every occurrence of each
/// of `secrets` by [`HIDDEN`], longest first so that a secret containing another is hidden
/// whole. Secrets shorter than 3 bytes are left: hiding them would garble the text without
/// protecting anything.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| s.len() >= 3).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for secret in sorted {
        out = out.replace(secret.as_str(), HIDDEN);
    }
    out
}

/// The secrets [`url`] hides, as they appear in `url` and percent-decoded: what
/// [`scrub`] needs to clean a message that quotes them (a driver error, say).
pub fn secrets_of(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut add = |raw: &str| {
        for value in [raw.to_owned(), percent_decode(raw)] {
            if !value.is_empty() && !found.contains(&value) {
                found.push(value);
            }
        }
    };
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let mut after = rest;
    if let Some(at) = rest[..authority_end].rfind('@') {
        let userinfo = &rest[..at];
        match userinfo.split_once(':') {
            Some((user, pass)) => {
                add(user);
                add(pass);
            }
            None => add(userinfo),
        }
        after = &rest[at + 1..];
    }
    let (query, fragment) = match after.split_once('#') {
        Some((b, f)) => (b.split_once('?').map(|(_, q)| q), Some(f)),
        None => (after.split_once('?').map(|(_, q)| q), None),
    };
    for piece in query.into_iter().flat_map(|q| q.split('&')) {
        match piece.split_once('=') {
            Some((name, value)) if is_secret_name(name) => add(value),
            None if is_secret_name(piece) => add(piece),
            _ => {}
        }
    }
    for piece in fragment.into_iter().flat_map(|f| f.split('&')) {
        add(piece.split_once('=').map_or(piece, |(_, value)| value));
    }
    found
}

/// `%XX` decoded (invalid escapes kept as they are; not UTF-8: lossy).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn urls() {
        for (given, expected) in [
            (
                "amqp://user:pass@host:5672/%2f",
                "amqp://***:***@host:5672/%2f",
            ),
            ("mongodb://u:p@h/db", "mongodb://***:***@h/db"),
            (
                "mongodb://u:p@h1:27017,h2:27017/db?replicaSet=rs",
                "mongodb://***:***@h1:27017,h2:27017/db?replicaSet=rs",
            ),
            (
                "mongodb://u:p@h/ivre?tls=true&tlsCertificateKeyFilePassword=s3cr3t&authSource=admin",
                "mongodb://***:***@h/ivre?tls=true&tlsCertificateKeyFilePassword=***&authSource=***",
            ),
            (
                "http://u:p@h/cgi#X-API-Key=secret",
                "http://***:***@h/cgi#***",
            ),
            ("http://h/cgi#X-API-Key=secret", "http://h/cgi#***"),
            (
                "http://h/cgi#Referer=x&Authorization=Bearer%20t",
                "http://h/cgi#***",
            ),
            ("http://h/cgi#just-text", "http://h/cgi#***"),
            ("http://h/cgi#", "http://h/cgi#***"),
            (
                "https://h/x?session_id=abc&page=2&api%5Fkey=k",
                "https://h/x?session_id=***&page=2&api%5Fkey=***",
            ),
            ("https://h/x?TOKEN", "https://h/x?***"),
            ("https://h/x?flag", "https://h/x?flag"),
            ("https://token@h/x", "https://***@h/x"),
            ("http://@h/x", "http://@h/x"),
            ("amqp://user:p@ss@host/", "amqp://***:***@host/"),
            ("amqp://user:p#ss@host/", "amqp://***:***@host/"),
            ("http://h/path@x?q=a@b", "http://h/path@x?q=a@b"),
            ("http://h:8080/cgi", "http://h:8080/cgi"),
            ("postgresql:///ivre", "postgresql:///ivre"),
            ("user:pass@host", "***:***@host"),
            ("", ""),
            ("http://ü:ß@hôst/é#ç", "http://***:***@hôst/é#***"),
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            ("%", "%"),
            ("http://h/?a=%", "http://h/?a=%"),
        ] {
            assert_eq!(url(given), expected, "{given}");
        }
    }

    #[test]
    fn secrets_are_listed_for_scrubbing() {
        let given = "mongodb://us%40er:p%40ss@h/ivre?tlsCertificateKeyFilePassword=kfp&x=1#X-API-Key=apikey";
        let secrets = secrets_of(given);
        for s in ["us%40er", "us@er", "p%40ss", "p@ss", "kfp", "apikey"] {
            assert!(secrets.contains(&s.to_owned()), "{s} in {secrets:?}");
        }
        let text = format!("driver said: cannot log in as us@er with p@ss to {given}");
        let clean = scrub(&text, &secrets);
        for s in ["us@er", "p@ss", "kfp", "apikey"] {
            assert!(!clean.contains(s), "{clean}");
        }
        assert_eq!(scrub("ab cd", &["ab".into()]), "ab cd");
        assert_eq!(scrub("abcd abc", &["abc".into(), "abcd".into()]), "*** ***");
    }

    #[test]
    fn names() {
        for name in [
            "password",
            "PASS",
            "X-API-Key",
            "Authorization",
            "sessionid",
            "client_secret",
            "access%5Ftoken",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["replicaSet", "tls", "page", "f", "q", "colname_passive"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}
