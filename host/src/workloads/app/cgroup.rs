//! Per-session resource limits in a control group of its own: CPU time,
//! memory and process count, on cgroup v2 where the host has its
//! controllers, else on the v1 hierarchies. The group also names every
//! process of the session, so ending it kills them all and waits until
//! none is left.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::HostError;

/// What each app session may use.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// CPU time, in cores.
    pub cpus: f64,
    /// Memory, in bytes.
    pub memory_bytes: u64,
    /// Processes and threads.
    pub pids: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self { cpus: 1.0, memory_bytes: 2 << 30, pids: 512 }
    }
}

const ROOT: &str = "/sys/fs/cgroup";
/// The group under which every session's group lives.
const PARENT: &str = "gridplay";

/// Which cgroup interface the host offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hierarchy {
    /// The unified hierarchy with cpu, memory and pids.
    V2,
    /// Separate cpu, memory and pids hierarchies.
    V1,
}

impl Hierarchy {
    /// The hierarchy this host can limit sessions with, or why none.
    pub fn detect() -> Result<Self, String> {
        let root = Path::new(ROOT);
        let controllers = std::fs::read_to_string(root.join("cgroup.controllers"));
        let needed = ["cpu", "memory", "pids"];
        if let Ok(list) = controllers
            && needed.iter().all(|c| list.split_whitespace().any(|x| x == *c))
        {
            return Ok(Self::V2);
        }
        if needed.iter().all(|c| root.join(c).join("cgroup.procs").exists()) {
            return Ok(Self::V1);
        }
        Err("no cgroup v2 controllers and no v1 cpu, memory and pids hierarchies".into())
    }

    /// The hierarchy, once the host has made its `gridplay` group in it
    /// (which needs root, or a delegated group), or why it cannot.
    pub fn prepare() -> Result<Self, String> {
        let hierarchy = Self::detect()?;
        let root = Path::new(ROOT);
        let parents: Vec<PathBuf> = match hierarchy {
            Self::V2 => vec![root.join(PARENT)],
            Self::V1 => {
                ["cpu", "memory", "pids"].iter().map(|c| root.join(c).join(PARENT)).collect()
            }
        };
        for parent in parents {
            std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        Ok(hierarchy)
    }
}

/// One session's control group(s); removed when dropped, after killing
/// whatever is still in them.
pub struct Group {
    /// One directory on v2, one per controller on v1.
    dirs: Vec<PathBuf>,
}

impl Group {
    /// The directories of the group named `name`.
    fn dirs(hierarchy: Hierarchy, name: &str) -> Vec<PathBuf> {
        let root = Path::new(ROOT);
        match hierarchy {
            Hierarchy::V2 => vec![root.join(PARENT).join(name)],
            Hierarchy::V1 => ["cpu", "memory", "pids"]
                .iter()
                .map(|c| root.join(c).join(PARENT).join(name))
                .collect(),
        }
    }

    /// The group named `name` if it exists (to sweep it by dropping it).
    pub fn existing(hierarchy: Hierarchy, name: &str) -> Option<Self> {
        let dirs = Self::dirs(hierarchy, name);
        dirs.iter().all(|d| d.is_dir()).then_some(Self { dirs })
    }

    /// Creates the session's group named `name` with `limits`.
    pub fn create(hierarchy: Hierarchy, name: &str, limits: Limits) -> Result<Self, HostError> {
        let fail = |what: &Path, e: std::io::Error| {
            HostError::App(format!("cgroup {}: {e}", what.display()))
        };
        let write =
            |path: PathBuf, value: String| std::fs::write(&path, value).map_err(|e| fail(&path, e));
        let root = Path::new(ROOT);
        let dirs = Self::dirs(hierarchy, name);
        if hierarchy == Hierarchy::V2 {
            let parent = root.join(PARENT);
            std::fs::create_dir_all(&parent).map_err(|e| fail(&parent, e))?;
            write(parent.join("cgroup.subtree_control"), "+cpu +memory +pids".into())?;
        }
        let group = Self { dirs };
        for dir in &group.dirs {
            std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
        }
        let period = 100_000u64;
        let quota = ((limits.cpus.max(0.01) * period as f64) as u64).max(1000);
        match hierarchy {
            Hierarchy::V2 => {
                let dir = &group.dirs[0];
                write(dir.join("cpu.max"), format!("{quota} {period}"))?;
                write(dir.join("memory.max"), limits.memory_bytes.to_string())?;
                write(dir.join("pids.max"), limits.pids.to_string())?;
            }
            Hierarchy::V1 => {
                write(group.dirs[0].join("cpu.cfs_period_us"), period.to_string())?;
                write(group.dirs[0].join("cpu.cfs_quota_us"), quota.to_string())?;
                write(
                    group.dirs[1].join("memory.limit_in_bytes"),
                    limits.memory_bytes.to_string(),
                )?;
                write(group.dirs[2].join("pids.max"), limits.pids.to_string())?;
            }
        }
        Ok(group)
    }

    /// Moves process `pid` (and so everything it starts) into the group.
    pub fn add(&self, pid: u32) -> Result<(), HostError> {
        for dir in &self.dirs {
            let procs = dir.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string())
                .map_err(|e| HostError::App(format!("cgroup {}: {e}", procs.display())))?;
        }
        Ok(())
    }

    /// The processes in the group now.
    pub fn processes(&self) -> Vec<u32> {
        // On v1 every process is in all three; the pids hierarchy is the last.
        let dir = self.dirs.last().expect("a group has a directory");
        let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// Kills every process in the group and waits (up to `limit`) until none is left.
    pub fn kill_all(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let pids = self.processes();
            if pids.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            for pid in pids {
                super::process::kill(pid);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.kill_all(Duration::from_secs(5)) {
            tracing::warn!(group = %self.dirs[0].display(), "processes outlived their session's group");
        }
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}
