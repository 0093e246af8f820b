//! Plain `cargo test` without the services fails at once with one line naming
//! `bash scripts/test` (tests/util/services.rs).

use crate::util::services::REQUIRED;
use crate::util::*;
use std::process::Command;

/// This very test binary, listing its tests (`--list` runs none), with `env` changes.
fn list_tests(remove: &[&str]) -> Run {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("--list");
    for var in remove {
        cmd.env_remove(var);
    }
    run(&mut cmd)
}

#[test]
fn without_the_services_the_integration_tests_stop_at_once_naming_scripts_test() {
    let with = list_tests(&[]);
    assert_eq!(with.code, 0, "{}", with.stderr);
    assert!(with.stdout.contains("newcomer::"), "{}", with.stdout);

    let without = list_tests(REQUIRED);
    assert_eq!(without.code, 1, "{}", without.stderr);
    assert!(
        without.stdout.is_empty(),
        "no test listed: {}",
        without.stdout
    );
    let lines: Vec<&str> = without.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", without.stderr);
    assert!(lines[0].contains("bash scripts/test"), "{}", lines[0]);
    assert!(lines[0].contains("IVRE_TEST_AMQP_URL"), "{}", lines[0]);

    // One missing service is named alone.
    let one = list_tests(&["IVRE_TEST_S3_ENDPOINT"]);
    assert_eq!(one.code, 1, "{}", one.stderr);
    assert!(
        one.stderr
            .trim_end()
            .ends_with("not set: IVRE_TEST_S3_ENDPOINT"),
        "{}",
        one.stderr
    );
}
