//! `gridplay host --config FILE`: every flag of `gridplay host` may live in a TOML file,
//! one key per flag under its long name (`broker-url = "https://broker.example"`,
//! `game-slots = 4`, `no-quic = true`). The file's flags go before the command line's,
//! so a flag given on the command line wins; both win over environment variables. An
//! unknown key, a value of the wrong kind or a malformed file is refused with the file,
//! the line and the reason.

use std::ffi::OsString;
use std::path::Path;

use clap::ArgAction;
use gridplay_host::catalogue::line_of;
use toml::de::{DeTable, DeValue};

/// The command-line flags the file at `path` stands for, checked against `command` (the
/// `gridplay host` command, whose flags it may set).
pub fn flags_from_file(path: &Path, command: &clap::Command) -> anyhow::Result<Vec<OsString>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    flags_from_text(&text, command).map_err(|(line, reason)| match line {
        Some(line) => anyhow::anyhow!("{}:{line}: {reason}", path.display()),
        None => anyhow::anyhow!("{}: {reason}", path.display()),
    })
}

/// Where a problem is (a 1-based line, when known) and what it is.
type Problem = (Option<usize>, String);

/// [`flags_from_file`] on the file's text.
fn flags_from_text(text: &str, command: &clap::Command) -> Result<Vec<OsString>, Problem> {
    let line = |offset: usize| Some(line_of(text, offset));
    let table = DeTable::parse(text)
        .map_err(|e| (e.span().map(|s| s.start).and_then(line), e.message().trim().to_owned()))?;
    let mut flags = Vec::new();
    for (key, value) in table.get_ref() {
        let at = line(key.span().start);
        let name = key.get_ref().as_ref();
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name) && !matches!(name, "config" | "help" | "version"))
            .ok_or_else(|| {
                (at, format!("unknown key `{name}` (keys are `gridplay host` flags)"))
            })?;
        let flag = format!("--{name}");
        let takes_no_value = matches!(arg.get_action(), ArgAction::SetTrue);
        let values = match value.get_ref() {
            DeValue::Array(items) => items.iter().map(|i| scalar(i.get_ref())).collect(),
            other => vec![scalar(other)],
        };
        for v in values {
            let v = v.ok_or_else(|| (at, format!("`{name}` takes a string, number or boolean")))?;
            // `--flag=value` in one argument: a value that starts with `-` stays a value.
            match (takes_no_value, v.as_str()) {
                (true, "true") => flags.push(OsString::from(&flag)),
                (true, "false") => {}
                (true, _) => return Err((at, format!("`{name}` is true or false"))),
                (false, _) => flags.push(OsString::from(format!("{flag}={v}"))),
            }
        }
    }
    Ok(flags)
}

/// A scalar TOML value as command-line text; `None` for tables, dates and nested arrays.
fn scalar(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Boolean(b) => Some(b.to_string()),
        DeValue::Integer(i) => {
            i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n.to_string())
        }
        DeValue::Float(f) => Some(f.as_str().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        clap::Command::new("host")
            .arg(clap::Arg::new("broker_url").long("broker-url"))
            .arg(clap::Arg::new("game_slots").long("game-slots"))
            .arg(clap::Arg::new("lat").long("lat").allow_negative_numbers(true))
            .arg(clap::Arg::new("no_quic").long("no-quic").action(ArgAction::SetTrue))
            .arg(clap::Arg::new("config").long("config"))
    }

    fn flags(text: &str) -> Result<Vec<String>, String> {
        flags_from_text(text, &command())
            .map(|f| f.into_iter().map(|s| s.into_string().unwrap()).collect())
            .map_err(|(line, reason)| format!("{line:?}: {reason}"))
    }

    #[test]
    fn keys_become_the_flags_of_the_same_names() {
        let text = "# a host\nbroker-url = \"https://b.example\"\ngame-slots = 0x4\nlat = -33.9\nno-quic = true\n";
        let expected =
            ["--broker-url=https://b.example", "--game-slots=4", "--lat=-33.9", "--no-quic"];
        assert_eq!(flags(text).unwrap(), expected);
        assert_eq!(flags("no-quic = false").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn unknown_keys_wrong_kinds_and_bad_files_are_refused_with_their_line() {
        let cases = [
            ("game-slots = 4\nslots = 3\n", "Some(2): unknown key `slots`"),
            ("config = \"other.toml\"\n", "Some(1): unknown key `config`"),
            ("\n\nbroker-url = { a = 1 }\n", "Some(3): `broker-url` takes a string"),
            ("no-quic = \"yes\"\n", "Some(1): `no-quic` is true or false"),
            ("game-slots = \n", "Some(1): "),
        ];
        for (text, expected) in cases {
            let error = flags(text).unwrap_err();
            assert!(error.starts_with(expected), "{text:?}: {error}");
        }
    }
}
