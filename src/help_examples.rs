//! The check of the "Examples:" blocks both command lines put at the end of every
//! command's help (`after_help`, written next to each command in the binaries' `cli.rs`):
//! [`examples`] reads the command lines out of them, and [`check`], which the binaries'
//! tests run, asks that every command has examples and that every example parses.

/// The command lines of the "Examples:" blocks of `command` and its subcommands: the part
/// after a pipe, before a redirection or `&&`, without leading `VAR=value` words.
pub fn examples(command: &clap::Command) -> Vec<String> {
    let mut out = Vec::new();
    collect(command, &mut out);
    out
}

fn collect(command: &clap::Command, out: &mut Vec<String>) {
    for text in [command.get_after_help(), command.get_after_long_help()]
        .into_iter()
        .flatten()
    {
        let text = text.to_string();
        let Some((_, block)) = text.split_once("Examples:") else {
            continue;
        };
        for line in block.lines().skip(1).map(str::trim) {
            if line.is_empty() {
                break;
            }
            let line = line.rsplit('|').next().unwrap_or(line);
            let line = line.split("&&").next().unwrap_or(line);
            let line = line.split('>').next().unwrap_or(line);
            let words: Vec<&str> = line
                .split_whitespace()
                .skip_while(|w| w.contains('=') && !w.starts_with('-'))
                .collect();
            out.push(words.join(" "));
        }
    }
    for sub in command.get_subcommands() {
        collect(sub, out);
    }
}

/// Every subcommand of `command` shows examples (two a command at least, on average), each
/// starts with the command's name, and `parse` accepts each one's words; the first problem
/// otherwise.
pub fn check(
    command: &clap::Command,
    parse: impl Fn(&[&str]) -> Result<(), clap::Error>,
) -> Result<(), String> {
    for sub in command.get_subcommands() {
        let help = sub
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        if !help.contains("Examples:") {
            return Err(format!("{} has no examples", sub.get_name()));
        }
    }
    let lines = examples(command);
    if lines.len() < 2 * command.get_subcommands().count() {
        return Err(format!("fewer than two examples a command: {lines:?}"));
    }
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&command.get_name()) {
            return Err(format!(
                "example `{line}` does not start with {}",
                command.get_name()
            ));
        }
        parse(&words).map_err(|e| format!("example `{line}` does not parse: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(after_help: &str) -> clap::Command {
        clap::Command::new("tool")
            .subcommand(clap::Command::new("go").after_help(after_help.to_owned()))
            .subcommand(
                clap::Command::new("stop")
                    .arg(
                        clap::Arg::new("now")
                            .long("now")
                            .action(clap::ArgAction::SetTrue),
                    )
                    .after_help("Examples:\n  tool stop\n  tool stop --now\n"),
            )
    }

    fn parse(command: &clap::Command) -> impl Fn(&[&str]) -> Result<(), clap::Error> + '_ {
        |words| command.clone().try_get_matches_from(words).map(drop)
    }

    #[test]
    fn examples_are_read_without_pipes_redirections_and_variables() {
        let c = command("Examples:\n  A=1 tool go > out\n  cat x | tool go && echo\n\nmore");
        assert_eq!(
            examples(&c),
            ["tool go", "tool go", "tool stop", "tool stop --now"]
        );
        assert_eq!(check(&c, parse(&c)), Ok(()));
    }

    #[test]
    fn a_command_without_examples_or_an_example_that_does_not_parse_is_named() {
        let c = command("no examples here");
        assert_eq!(check(&c, parse(&c)), Err("go has no examples".to_owned()));
        let c = command("Examples:\n  tool go --bogus\n  tool go\n");
        let err = check(&c, parse(&c)).unwrap_err();
        assert!(err.contains("`tool go --bogus` does not parse"), "{err}");
    }
}
