use crate::util::*;
use ivre_connector::exit_code;

#[test]
fn bad_observables_get_an_error_line_and_exit_6_after_the_rest() {
    let data = cli_exports_snapshot();
    let r = run(connector().arg("--data-dir").arg(data.path()).args([
        "lookup",
        "ipv4-addr:2001:db8::1",
        "192.0.2.10",
        "url:http://x",
        "autonomous-system:ASX",
        "AS64496",
    ]));
    assert_eq!(r.code, exit_code::REFUSED_INPUT, "{}", r.stderr);
    let lines = json_lines(&r.stdout);
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["observable"], "ipv4-addr:2001:db8::1");
    assert!(lines[0]["error"].as_str().unwrap().contains("IPv4"));
    assert_eq!(lines[1]["observable"], "ipv4-addr:192.0.2.10");
    assert!(lines[1].get("error").is_none());
    assert!(lines[2]["error"]
        .as_str()
        .unwrap()
        .contains("unknown observable type `url`"));
    assert!(lines[3]["error"].is_string());
    assert_eq!(lines[4]["observable"], "autonomous-system:64496");
}

#[test]
fn a_miss_is_empty_not_an_error() {
    let data = cli_exports_snapshot();
    let got = lookup(
        data.path(),
        &[
            "mac-addr:11:22:33:44:55:66".to_owned(),
            "nothing.example".to_owned(),
        ],
    );
    for g in &got {
        assert_eq!(g["passive"], serde_json::json!([]));
        assert_eq!(g["scans"], serde_json::json!([]));
        assert!(g["data"].is_null());
    }
}

#[test]
fn stdin_and_limit() {
    let data = cli_exports_snapshot();
    let r = run_with_stdin(
        connector()
            .arg("--data-dir")
            .arg(data.path())
            .args(["lookup", "--limit", "1", "-"]),
        Some("192.0.2.10\n\n  example.com  \n"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = json_lines(&r.stdout);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["passive"].as_array().unwrap().len(), 1);
    assert_eq!(lines[0]["truncated"], true);
    assert_eq!(lines[1]["observable"], "domain-name:example.com");
}

#[test]
fn missing_or_empty_snapshots_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let r = run(connector()
        .arg("--data-dir")
        .arg(&missing)
        .args(["lookup", "192.0.2.10"]));
    assert_eq!(r.code, exit_code::NO_SNAPSHOT);
    assert!(
        r.stderr.contains("does not exist") && r.stderr.contains("ivre-sync import"),
        "{}",
        r.stderr
    );
    let r = run(connector()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["index", "info"]));
    assert_eq!(r.code, exit_code::NO_SNAPSHOT);
    assert!(
        r.stderr.contains("no snapshot has been published"),
        "{}",
        r.stderr
    );
    // An empty export publishes an empty snapshot; lookups answer nothing and warn.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    import(dir.path(), &["--passive", &path_str(&empty)], 0);
    let r = run(connector()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["lookup", "192.0.2.10"]));
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("holds no records"), "{}", r.stderr);
    // A generation whose index disappeared.
    let gen = dir.path().join("generations").join(current(dir.path()));
    std::fs::remove_dir_all(gen.join("index")).unwrap();
    let r = run(connector()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["lookup", "192.0.2.10"]));
    assert_eq!(r.code, exit_code::DAMAGED);
    assert!(r.stderr.contains("has no index"), "{}", r.stderr);
}

#[test]
fn data_dir_comes_from_env_then_config_then_default() {
    let data = cli_exports_snapshot();
    let cwd = tempfile::tempdir().unwrap();
    // IVRE_DATA_DIR
    let r = run(connector()
        .current_dir(cwd.path())
        .env("IVRE_DATA_DIR", data.path())
        .args(["index", "info"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // ./config.yml ivre.data_dir
    std::fs::write(
        cwd.path().join("config.yml"),
        format!("ivre:\n  data_dir: {}\n", data.path().display()),
    )
    .unwrap();
    let r = run(connector().current_dir(cwd.path()).args(["index", "info"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // --config FILE that does not exist is an error naming it
    let r =
        run(connector()
            .current_dir(cwd.path())
            .args(["--config", "missing.yml", "index", "info"]));
    assert_eq!(r.code, exit_code::CONFIG);
    assert!(r.stderr.contains("missing.yml"), "{}", r.stderr);
    // default ./ivre-data
    std::fs::remove_file(cwd.path().join("config.yml")).unwrap();
    let r = run(connector().current_dir(cwd.path()).args(["index", "info"]));
    assert_eq!(r.code, exit_code::NO_SNAPSHOT);
    assert!(r.stderr.contains("ivre-data"), "{}", r.stderr);
}

#[test]
fn demo_builds_and_answers() {
    let keep = tempfile::tempdir().unwrap();
    let dir = keep.path().join("demo");
    let r = run(connector().arg("demo").arg("--keep").arg(&dir));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("4 scan hosts, 4 view hosts, 13 passive records"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("ipv4-addr:192.0.2.10"), "{}", r.stdout);
    let got = lookup(&dir, &["www.example.com".to_owned()]);
    assert_eq!(got[0]["passive"].as_array().unwrap().len(), 2);
}

/// One of both binaries, by name.
fn binary(name: &str) -> std::process::Command {
    match name {
        "ivre-connector" => connector(),
        _ => sync(),
    }
}

/// Issue 13 item 10: `completions SHELL` and `man` for both binaries.
#[test]
fn completions_and_man_pages() {
    for name in ["ivre-connector", "ivre-sync"] {
        let command = || binary(name);
        let r = run(command().args(["completions", "bash"]));
        assert_eq!(r.code, exit_code::OK, "{name}: {}", r.stderr);
        assert!(
            r.stdout.contains(&format!("_{}", name.replace('-', "__")))
                && r.stdout.contains("complete -F"),
            "{name}: {}",
            r.stdout
        );
        let r = run(command().args(["completions", "zsh"]));
        assert_eq!(r.code, exit_code::OK, "{name}: {}", r.stderr);
        assert!(r.stdout.starts_with(&format!("#compdef {name}")), "{name}");
        let r = run(command().args(["completions", "tcsh"]));
        assert_eq!(r.code, exit_code::USAGE, "{name}: {}", r.stderr);
        let r = run(command().arg("man"));
        assert_eq!(r.code, exit_code::OK, "{name}: {}", r.stderr);
        assert!(
            r.stdout.starts_with(".ie") || r.stdout.contains(".TH"),
            "{name}"
        );
        assert!(r.stdout.contains(&format!(".TH {name}")), "{name}");
        assert!(r.stdout.contains("completions"), "{name}");
    }
}

/// Issue 13 item 10: every command's `--help` shows examples; the long help of both
/// binaries ends with the one exit-code table.
#[test]
fn help_shows_examples_and_the_exit_codes() {
    let subcommands: [(&str, &[&[&str]]); 2] = [
        (
            "ivre-connector",
            &[
                &["lookup"],
                &["enrich"],
                &["run"],
                &["health"],
                &["index"],
                &["index", "info"],
                &["index", "verify"],
                &["demo"],
                &["completions"],
                &["man"],
            ],
        ),
        (
            "ivre-sync",
            &[
                &["import"],
                &["pull"],
                &["watch"],
                &["publish"],
                &["fetch"],
                &["completions"],
                &["man"],
            ],
        ),
    ];
    for (name, subs) in subcommands {
        let command = || binary(name);
        for sub in subs {
            let r = run(command().args(*sub).arg("--help"));
            assert_eq!(r.code, 0, "{name} {sub:?}: {}", r.stderr);
            let examples = r
                .stdout
                .split_once("Examples:")
                .unwrap_or_else(|| panic!("{name} {sub:?} --help has no examples"))
                .1;
            assert!(
                examples.contains(&format!("{name} ")),
                "{name} {sub:?}: {examples}"
            );
        }
        let r = run(command().arg("--help"));
        assert_eq!(r.code, 0);
        for (code, meaning) in exit_code::TABLE {
            assert!(
                r.stdout.contains(&format!("{code:>3}  {meaning}")),
                "{name} --help lacks exit code {code}: {}",
                r.stdout
            );
        }
    }
}

/// Issue 13 item 10: the exit codes are distinct (usage error, no snapshot, refused
/// input), and `pull --once` is gone: `pull` pulls once unless `--every`.
#[test]
fn exit_codes_tell_usage_from_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(connector().args(["lookup", "--no-such-flag", "192.0.2.10"]));
    assert_eq!(r.code, exit_code::USAGE, "{}", r.stderr);
    let r = run(connector()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["lookup", "192.0.2.10"]));
    assert_eq!(r.code, exit_code::NO_SNAPSHOT, "{}", r.stderr);
    let r = run(sync()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["pull", "--once"]));
    assert_eq!(r.code, exit_code::USAGE, "{}", r.stderr);
    assert!(r.stderr.contains("--once"), "{}", r.stderr);
    let r = run(sync()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["pull", "--every", "5x"]));
    assert_eq!(r.code, exit_code::USAGE, "{}", r.stderr);
    // `-` twice is refused input, for observables and files alike.
    let r = run_with_stdin(
        connector()
            .arg("--data-dir")
            .arg(dir.path())
            .args(["lookup", "-", "-"]),
        Some("192.0.2.10\n"),
    );
    assert_eq!(r.code, exit_code::REFUSED_INPUT, "{}", r.stderr);
    let r = run_with_stdin(
        sync()
            .arg("--data-dir")
            .arg(dir.path())
            .args(["import", "--scans", "-", "--passive", "-"]),
        Some("\n"),
    );
    assert_eq!(r.code, exit_code::REFUSED_INPUT, "{}", r.stderr);
}

/// `ivre-sync import --passive -` reads stdin; `--quiet` prints nothing but errors.
#[test]
fn import_reads_stdin_and_quiet_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let passive = std::fs::read_to_string(lab("ipinfo.jsonl")).unwrap();
    let r = run_with_stdin(
        sync()
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--quiet", "import", "--passive", "-"]),
        Some(&passive),
    );
    assert_eq!(r.code, exit_code::OK, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let got = lookup(dir.path(), &["192.0.2.10".to_owned()]);
    assert!(
        !got[0]["passive"].as_array().unwrap().is_empty(),
        "{}",
        got[0]
    );
    // Without --quiet: the report line, and the import's logs.
    let r = run_with_stdin(
        sync()
            .arg("--data-dir")
            .arg(dir.path())
            .args(["import", "--passive", "-"]),
        Some(&passive),
    );
    assert_eq!(r.code, exit_code::OK, "{}", r.stderr);
    assert!(r.stdout.contains("published gen-"), "{}", r.stdout);
    assert!(!r.stderr.is_empty());
}

/// Runs `args` (shell words, no quoting needed) under a pseudo-terminal (`script`), with
/// `NO_COLOR` set or not: what the terminal shows.
fn on_a_terminal(args: &[String], no_color: bool) -> String {
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &args.join(" "), "/dev/null"])
        .env_remove("IVRE_LOG")
        .env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "script {args:?}: {}{}", r.stdout, r.stderr);
    r.stdout
}

/// Issue 13 item 4: logs are coloured on a terminal, not with `NO_COLOR` or
/// `--color never`; `--color always` colours a pipe too.
#[test]
fn no_color_means_no_ansi_escapes() {
    let data = tempfile::tempdir().unwrap();
    let empty = data.path().join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    import(data.path(), &["--passive", &path_str(&empty)], 0);
    // An empty snapshot: `lookup` warns that it holds no records.
    let lookup = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            env!("CARGO_BIN_EXE_ivre-connector").to_owned(),
            "--data-dir".to_owned(),
            path_str(data.path()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(["lookup".to_owned(), "192.0.2.10".to_owned()]);
        args
    };
    let coloured = on_a_terminal(&lookup(&[]), false);
    assert!(coloured.contains("holds no records"), "{coloured}");
    assert!(
        coloured.contains('\x1b'),
        "a terminal gets colours: {coloured:?}"
    );
    let plain = on_a_terminal(&lookup(&[]), true);
    assert!(plain.contains("holds no records"), "{plain}");
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    let never = on_a_terminal(&lookup(&["--color", "never"]), false);
    assert!(!never.contains('\x1b'), "--color never: {never:?}");
    let r = run(connector()
        .env_remove("IVRE_LOG")
        .arg("--data-dir")
        .arg(data.path())
        .args(["--color", "always", "lookup", "192.0.2.10"]));
    assert!(r.stderr.contains('\x1b'), "--color always: {:?}", r.stderr);
    let r = run(connector()
        .env_remove("IVRE_LOG")
        .arg("--data-dir")
        .arg(data.path())
        .args(["lookup", "192.0.2.10"]));
    assert!(r.stderr.contains("holds no records"), "{}", r.stderr);
    assert!(!r.stderr.contains('\x1b'), "a pipe: {:?}", r.stderr);
}
