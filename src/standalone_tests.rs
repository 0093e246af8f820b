//! The repository stands alone: what the code relies on about OpenCTI, IVRE and the
//! storage is in its own `docs/` (`docs/opencti-protocol.md`, `docs/ivre-records.md`,
//! `docs/storage.md`), and nothing cites a document that is not in the repository.

use std::path::{Path, PathBuf};

/// Names of documents that live outside this repository. Spelled in pieces so that this
/// file does not cite them itself.
const OUTSIDE: [&str; 7] = [
    concat!("OPENCTI-", "PROTOCOL.md"),
    concat!("IVRE", ".md"),
    concat!("STORAGE", ".md"),
    concat!("PEERS", ".md"),
    concat!("STYLE", ".md"),
    concat!("CONTAINERS", ".md"),
    concat!("..", "/shared"),
];

/// The repository's own text files: every file at the top, and the trees of code, tests,
/// scripts and documentation (fuzz corpora, build output and binary files left out).
fn own_text_files(root: &Path) -> Vec<PathBuf> {
    let mut stack: Vec<PathBuf> = [
        "src",
        "sync",
        "opencti-double",
        "tests",
        "benches",
        "fuzz/fuzz_targets",
        "scripts",
        "docs",
        ".ci",
        "__metadata__",
    ]
    .iter()
    .map(|dir| root.join(dir))
    .collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            let name = path.file_name().unwrap_or_default();
            if name == "target" || name == ".git" {
                continue;
            }
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Each line of `text` that names an outside document, as `path:line: text`.
fn outside_citations(path: &Path, text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| OUTSIDE.iter().any(|name| line.contains(name)))
        .map(|(n, line)| format!("{}:{}: {}", path.display(), n + 1, line.trim()))
        .collect()
}

#[test]
fn no_file_cites_a_document_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = own_text_files(root);
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("docs/opencti-protocol.md")),
        "the walk must reach docs/"
    );
    let mut offenders = Vec::new();
    for path in &files {
        // Binary files (fixtures, images) are not read as text.
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        offenders.extend(outside_citations(
            path.strip_prefix(root).unwrap_or(path),
            &text,
        ));
    }
    assert!(
        offenders.is_empty(),
        "cite the repository's own docs (docs/opencti-protocol.md, docs/ivre-records.md, \
         docs/storage.md) instead of:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn outside_citations_are_found_with_file_and_line() {
    let text = format!("first line\nsee `{}` §6.3\n", OUTSIDE[0]);
    assert_eq!(
        outside_citations(Path::new("src/x.rs"), &text),
        [format!("src/x.rs:2: see `{}` §6.3", OUTSIDE[0])]
    );
    assert!(outside_citations(Path::new("a"), "see `docs/opencti-protocol.md` §6.3").is_empty());
}
