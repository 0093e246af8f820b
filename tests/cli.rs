use crate::util::*;

#[test]
fn bad_observables_get_an_error_line_and_exit_1_after_the_rest() {
    let data = cli_exports_snapshot();
    let r = run(connector().arg("--data-dir").arg(data.path()).args([
        "lookup",
        "ipv4-addr:2001:db8::1",
        "192.0.2.10",
        "url:http://x",
        "autonomous-system:ASX",
        "AS64496",
    ]));
    assert_eq!(r.code, 1, "{}", r.stderr);
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
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("does not exist") && r.stderr.contains("ivre-sync import"),
        "{}",
        r.stderr
    );
    let r = run(connector()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["index", "info"]));
    assert_eq!(r.code, 2);
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
    assert_eq!(r.code, 2);
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
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing.yml"), "{}", r.stderr);
    // default ./ivre-data
    std::fs::remove_file(cwd.path().join("config.yml")).unwrap();
    let r = run(connector().current_dir(cwd.path()).args(["index", "info"]));
    assert_eq!(r.code, 2);
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
