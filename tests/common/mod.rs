//! `gridplay up` as the tests run it: on a free port, with a stand-in web directory, and
//! stopped as a user stops it (SIGTERM), so that what it started (anvil, workers) goes with it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long `up` may take to stop after SIGTERM before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(20);

/// A running `gridplay up`.
pub struct Up {
    pub child: Child,
    pub url: String,
    web: std::path::PathBuf,
}

impl Up {
    /// Starts `gridplay up` with `args`, logging at `log` to a piped stderr.
    pub fn start(args: &[&str], log: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let web =
            std::env::temp_dir().join(format!("gridplay-up-web-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&web).unwrap();
        std::fs::write(web.join("index.html"), "<!doctype html>").unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gridplay"))
            .args(["up", "--port", &port.to_string()])
            .arg("--web-dir")
            .arg(&web)
            .args(args)
            .env("RUST_LOG", log)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gridplay binary");
        Self { child, url: format!("http://127.0.0.1:{port}"), web }
    }
}

impl Up {
    /// The processes named `name` that `up` started itself.
    #[allow(dead_code, reason = "not every test looks")]
    pub fn children_named(&self, name: &str) -> Vec<u32> {
        let parent = self.child.id().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let Some((comm, rest)) =
                    stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(')'))
                else {
                    return false;
                };
                comm == name && rest.split_whitespace().nth(1) == Some(parent.as_str())
            })
            .collect()
    }
}

/// Whether process `pid` has ended (gone, or a zombie nobody collected yet).
#[allow(dead_code, reason = "not every test looks")]
pub fn ended(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

impl Drop for Up {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let deadline = Instant::now() + STOP_WAIT;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.web);
    }
}
