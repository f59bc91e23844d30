//! The host's app catalogue: the apps it offers besides the built-in Orbit,
//! read from a TOML file with one `[[app]]` table per app:
//!
//! ```toml
//! [[app]]
//! id = "terminal"                          # [a-z0-9-], unique
//! name = "Terminal"                        # shown in the lobby
//! command = ["xterm", "-fa", "Monospace"]  # argv, no shell
//! profile = "game"                         # game | phone
//! description = "A shell in your browser"  # optional
//! env = { LANG = "C.UTF-8" }               # optional
//! network = "none"                         # optional: none (default) | internet
//! ```
//!
//! A malformed file, an unknown key, a duplicate id or a command that is not
//! on the `PATH` is refused with the file, the line and the reason.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gridplay_protocol::{App, Profile};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::HostError;
use crate::workloads::app::cgroup::Limits;

/// Where a sandboxed app may reach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// No network at all: only its own loopback.
    #[default]
    None,
    /// Outbound access through its own network namespace, never the host's loopback.
    Internet,
}

/// One app a host offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppEntry {
    /// What the broker and the lobby see.
    pub app: App,
    /// The program, resolved on the `PATH`, then its arguments.
    pub command: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Its network.
    pub network: Network,
}

/// The apps a host offers, in file order, and the limits each session runs under.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalogue {
    apps: Vec<Arc<AppEntry>>,
    /// CPU, memory and process limits of every app session.
    pub limits: Limits,
}

/// Variables the sandbox sets itself; a catalogue may not override them.
const RESERVED_ENV: [&str; 6] = ["DISPLAY", "XAUTHORITY", "HOME", "PATH", "PULSE_SERVER", "TMPDIR"];

/// The `PATH` apps are looked up on (and run with) inside the sandbox.
pub const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/games";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    #[serde(default)]
    app: Vec<Spanned<AppTable>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppTable {
    id: Spanned<String>,
    name: String,
    command: Spanned<Vec<String>>,
    profile: Profile,
    #[serde(default)]
    description: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    network: Network,
}

impl Catalogue {
    /// Reads and checks a catalogue file.
    pub fn load(path: &Path) -> Result<Self, HostError> {
        let text = std::fs::read_to_string(path).map_err(|e| HostError::Catalogue {
            file: path.to_owned(),
            line: 0,
            reason: e.to_string(),
        })?;
        Self::parse(path, &text, &|name| find_program(name, SANDBOX_PATH))
    }

    /// Parses catalogue `text` (read from `file`); `which` resolves a
    /// command's program to its path, or `None` when it cannot be run.
    pub fn parse(
        file: &Path,
        text: &str,
        which: &dyn Fn(&str) -> Option<PathBuf>,
    ) -> Result<Self, HostError> {
        let fail = |span: Option<Range<usize>>, reason: String| HostError::Catalogue {
            file: file.to_owned(),
            line: span.map_or(0, |s| line_of(text, s.start)),
            reason,
        };
        let parsed: CatalogueFile =
            toml::from_str(text).map_err(|e| fail(e.span(), e.message().trim().to_owned()))?;
        let mut apps: Vec<Arc<AppEntry>> = Vec::new();
        for table in parsed.app {
            let span = table.span();
            let table = table.into_inner();
            let id_span = table.id.span();
            let id = table.id.into_inner();
            if App::builtin_profile(&id).is_some() || apps.iter().any(|a| a.app.id == id) {
                return Err(fail(Some(id_span), format!("app id `{id}` is used twice")));
            }
            let app = App {
                id,
                title: table.name,
                profile: table.profile,
                description: table.description,
            };
            app.validate().map_err(|e| fail(Some(span.clone()), e.to_string()))?;
            let command_span = table.command.span();
            let mut command = table.command.into_inner();
            let Some(program) = command.first() else {
                return Err(fail(Some(command_span), "command is empty".into()));
            };
            let resolved = which(program).ok_or_else(|| {
                fail(Some(command_span.clone()), format!("`{program}` is not on the PATH"))
            })?;
            command[0] = resolved.to_string_lossy().into_owned();
            if command.iter().any(|arg| arg.contains('\0')) {
                return Err(fail(Some(command_span), "command has a NUL byte".into()));
            }
            for (key, value) in &table.env {
                let well_formed = !key.is_empty()
                    && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !key.as_bytes()[0].is_ascii_digit()
                    && !value.contains('\0');
                if !well_formed || RESERVED_ENV.contains(&key.as_str()) {
                    return Err(fail(Some(span), format!("env `{key}` cannot be set")));
                }
            }
            apps.push(Arc::new(AppEntry { app, command, env: table.env, network: table.network }));
        }
        if apps.len() > gridplay_protocol::MAX_APPS {
            return Err(fail(
                None,
                format!("at most {} apps per host", gridplay_protocol::MAX_APPS),
            ));
        }
        Ok(Self { apps, limits: Limits::default() })
    }

    /// The catalogue's apps as the broker sees them.
    pub fn apps(&self) -> Vec<App> {
        self.apps.iter().map(|a| a.app.clone()).collect()
    }

    /// Whether any app may reach the internet.
    pub fn needs_internet(&self) -> bool {
        self.apps.iter().any(|a| a.network == Network::Internet)
    }

    /// The entry for app `id`.
    pub fn get(&self, id: &str) -> Option<Arc<AppEntry>> {
        self.apps.iter().find(|a| a.app.id == id).cloned()
    }
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Resolves `program` as the sandbox will: a path as it is, a bare name on
/// `path`; only executable files count.
pub fn find_program(program: &str, path: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return (p.is_absolute() && executable(&p)).then_some(p);
    }
    path.split(':').map(|dir| Path::new(dir).join(program)).find(|p| executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn which(name: &str) -> Option<PathBuf> {
        (name != "missing").then(|| PathBuf::from(format!("/usr/bin/{name}")))
    }

    fn parse(text: &str) -> Result<Catalogue, String> {
        Catalogue::parse(Path::new("apps.toml"), text, &which).map_err(|e| e.to_string())
    }

    const TERMINAL: &str = r#"
[[app]]
id = "terminal"
name = "Terminal"
command = ["xterm", "-fa", "Monospace"]
profile = "game"
description = "A shell in your browser"
env = { LANG = "C.UTF-8" }
network = "none"

[[app]]
id = "cube"
name = "Cube"
command = ["vkcube"]
profile = "phone"
network = "internet"
"#;

    #[test]
    fn reads_every_field_and_resolves_commands() {
        let catalogue = parse(TERMINAL).unwrap();
        let terminal = catalogue.get("terminal").unwrap();
        assert_eq!(terminal.app.title, "Terminal");
        assert_eq!(terminal.app.profile, Profile::Game);
        assert_eq!(terminal.app.description, "A shell in your browser");
        assert_eq!(terminal.command, ["/usr/bin/xterm", "-fa", "Monospace"]);
        assert_eq!(terminal.env["LANG"], "C.UTF-8");
        assert_eq!(terminal.network, Network::None);
        let cube = catalogue.get("cube").unwrap();
        assert_eq!((cube.app.profile, cube.network), (Profile::Phone, Network::Internet));
        assert_eq!(cube.app.description, "");
        assert_eq!(catalogue.apps().len(), 2);
        assert!(parse("").unwrap().apps().is_empty());
    }

    #[test]
    fn refuses_bad_files_with_the_line_and_reason() {
        let cases = [
            (
                "[[app]]\nid = \"a\"\nname = \"A\"\ncommand = [\"x\"]\nprofile = \"game\"\ncolour = 1\n",
                6,
                "unknown field `colour`",
            ),
            (
                "[[app]]\nid = \"a\"\nname = \"A\"\ncommand = [\"x\"]\n",
                1,
                "missing field `profile`",
            ),
            ("[[app]]\nid = \"a\nname = 1\n", 2, ""),
            (
                "[[app]]\nid = \"a\"\nname = \"A\"\ncommand = [\"missing\"]\nprofile = \"game\"\n",
                4,
                "`missing` is not on the PATH",
            ),
            (
                "[[app]]\nid = \"a\"\nname = \"A\"\ncommand = []\nprofile = \"game\"\n",
                4,
                "command is empty",
            ),
            (
                "[[app]]\nid = \"a\"\nname = \"A\"\ncommand = [\"x\"]\nprofile = \"tablet\"\n",
                5,
                "unknown variant `tablet`",
            ),
            (
                "[[app]]\nid = \"Bad Id\"\nname = \"A\"\ncommand = [\"x\"]\nprofile = \"game\"\n",
                1,
                "must be 1..=64 of [a-z0-9-]",
            ),
            (
                "[[app]]\nid = \"orbit\"\nname = \"A\"\ncommand = [\"x\"]\nprofile = \"game\"\n",
                2,
                "used twice",
            ),
            (
                "[[app]]\nid = \"a\"\nname = \"A\"\ncommand = [\"x\"]\nprofile = \"game\"\nenv = { DISPLAY = \":9\" }\n",
                1,
                "env `DISPLAY` cannot be set",
            ),
            (
                "[[app]]\nid = \"a\"\nname = \"A\"\ncommand = [\"x\"]\nprofile = \"game\"\nnetwork = \"host\"\n",
                6,
                "unknown variant `host`",
            ),
            ("[[apps]]\nid = \"a\"\n", 1, "unknown field `apps`"),
        ];
        for (text, line, reason) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.starts_with(&format!("apps.toml:{line}: ")), "{error}");
            assert!(error.contains(reason), "{error}");
        }
        let twice = format!(
            "{TERMINAL}\n[[app]]\nid = \"cube\"\nname = \"B\"\ncommand = [\"x\"]\nprofile = \"game\"\n"
        );
        let error = parse(&twice).unwrap_err();
        assert!(error.starts_with("apps.toml:19: app id `cube` is used twice"), "{error}");
    }

    #[test]
    fn programs_are_found_on_the_path_or_by_absolute_path() {
        assert_eq!(find_program("sh", "/nowhere:/bin"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(find_program("/bin/sh", ""), Some(PathBuf::from("/bin/sh")));
        assert_eq!(find_program("definitely-not-a-program", "/bin:/usr/bin"), None);
        assert_eq!(find_program("./sh", "/bin"), None, "relative paths are refused");
        let plain = std::env::temp_dir().join(format!("gridplay-plain-{}", std::process::id()));
        std::fs::write(&plain, "").unwrap();
        let found = find_program(&plain.to_string_lossy(), "");
        std::fs::remove_file(&plain).unwrap();
        assert_eq!(found, None, "not executable");
    }
}
