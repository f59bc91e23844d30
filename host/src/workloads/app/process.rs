//! Killing and waiting for a sandbox's processes by pid.

use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// Sends SIGKILL to `pid` (ignoring a process that is already gone).
pub fn kill(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, Signal::KILL);
    }
}

/// Whether `pid` is a live process (not gone, not a zombie).
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state follows the parenthesised command name.
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z")
}

/// The processes whose parent is `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
            parent.and_then(|p| p.parse::<u32>().ok()) == Some(pid)
        })
        .collect()
}

/// Waits (up to `limit`) until none of `pids` is alive.
pub fn wait_gone(pids: &[u32], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while pids.iter().any(|&pid| alive(pid)) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_kills_and_waits_for_children() {
        let mut sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let me = std::process::id();
        assert!(children(me).contains(&sleeper.id()));
        assert!(alive(sleeper.id()));
        kill(sleeper.id());
        // Killed but not reaped: a zombie no longer counts as alive.
        assert!(wait_gone(&[sleeper.id()], Duration::from_secs(5)));
        sleeper.wait().unwrap();
        assert!(!alive(sleeper.id()));
    }
}
