//! A session's sandbox (bubblewrap): the app in its own user, PID, mount,
//! IPC, UTS and (unless it asked for the internet) network namespaces, as an
//! unprivileged user, with the system read-only, a private `/tmp` and home,
//! only its own display's socket, and nothing of the host's home, keys or
//! other sessions. When the app's main process exits, every process in its
//! PID namespace goes with it; killing the sandbox kills them all.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::cgroup::{Group, Hierarchy, Limits};
use super::display::Display;
use super::gamepads;
use super::process;
use super::sound::SOCKET_IN_SANDBOX;
use crate::HostError;
use crate::catalogue::{AppEntry, Network, SANDBOX_PATH};

/// Longest wait for a killed sandbox's processes to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// The user a sandbox runs as when the host runs as root (`nobody`).
pub(super) const SANDBOX_UID: u32 = 65534;
/// Where the app's home is inside the sandbox.
const HOME: &str = "/home/player";

/// A session's private directory on the host: the display's cookie, the
/// app's home and its input devices. Removed with everything in it when dropped.
pub struct SessionDir {
    path: PathBuf,
}

impl SessionDir {
    /// Creates a fresh, private directory named `name` under the system's temp directory.
    pub fn create(name: &str) -> Result<Self, HostError> {
        let path = Self::path_of(name);
        std::fs::create_dir(&path)?;
        let dir = Self { path };
        std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o700))?;
        std::fs::create_dir(dir.home())?;
        std::fs::create_dir(dir.input())?;
        Ok(dir)
    }

    /// Where the directory of session `name` is.
    pub fn path_of(name: &str) -> PathBuf {
        std::env::temp_dir().join(name)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The app's home.
    pub fn home(&self) -> PathBuf {
        self.path.join("home")
    }

    /// The app's `/dev/input`: its gamepads' nodes.
    pub fn input(&self) -> PathBuf {
        self.path.join("input")
    }

    /// Hands the directory to the sandbox's user (a no-op unless running as root).
    pub(super) fn give_to_sandbox(&self) -> Result<(), HostError> {
        if !rustix::process::geteuid().is_root() {
            return Ok(());
        }
        let owner = Some(rustix::fs::Uid::from_raw(SANDBOX_UID));
        let group = Some(rustix::fs::Gid::from_raw(SANDBOX_UID));
        for entry in walk(&self.path)? {
            rustix::fs::chown(&entry, owner, group)
                .map_err(|e| HostError::App(format!("chown {}: {e}", entry.display())))?;
        }
        Ok(())
    }
}

impl Drop for SessionDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `dir` and everything below it, not following links.
fn walk(dir: &Path) -> Result<Vec<PathBuf>, HostError> {
    let mut out = vec![dir.to_owned()];
    let mut i = 0;
    while i < out.len() {
        let path = out[i].clone();
        if std::fs::symlink_metadata(&path)?.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                out.push(entry?.path());
            }
        }
        i += 1;
    }
    Ok(out)
}

/// A running sandbox; killed, with every process in it, when dropped.
pub struct Sandbox {
    child: Child,
    /// Its control group, where the host can make one.
    group: Option<Group>,
    /// The user-mode network stack of an app that may reach the internet.
    network: Option<Child>,
}

impl Sandbox {
    /// Starts `entry`'s command on `display`, with `dir` (already
    /// [given to the sandbox](SessionDir::give_to_sandbox)) as its home and the
    /// sound server at `sound` if it has one, in a control group with `limits`
    /// where the host has one.
    pub fn start(
        entry: &AppEntry,
        display: &Display,
        sound: Option<&Path>,
        dir: &SessionDir,
        limits: Limits,
    ) -> Result<Self, HostError> {
        if entry.network == Network::Internet {
            std::fs::write(dir.path().join("resolv.conf"), "nameserver 10.0.2.3\n")?;
        }
        let group = match Hierarchy::prepare() {
            Ok(hierarchy) => {
                let name = dir.path().file_name().map(|n| n.to_string_lossy().into_owned());
                Some(Group::create(hierarchy, &name.unwrap_or_default(), limits)?)
            }
            Err(_) => None,
        };
        // A shell holds still until the host has put it in the group, then
        // becomes bwrap: nothing the app starts can escape the group.
        let mut command = Command::new("/bin/sh");
        command.args(["-c", "read -r _ && exec \"$@\"", "sh", "bwrap"]);
        command.args(arguments(entry, display, sound, dir));
        command.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
        if rustix::process::geteuid().is_root() {
            use std::os::unix::process::CommandExt;
            command.uid(SANDBOX_UID).gid(SANDBOX_UID);
        }
        let child = command.spawn().map_err(|e| HostError::App(format!("sandbox: {e}")))?;
        let mut sandbox = Self { child, group, network: None };
        if let Some(group) = &sandbox.group {
            group.add(sandbox.child.id())?;
        }
        let mut go = sandbox.child.stdin.take().expect("stdin is piped");
        go.write_all(b"\n")?;
        if entry.network == Network::Internet {
            // bwrap holds the app (--block-fd 0) until its namespace has a network.
            sandbox.network = Some(connect_to_internet(sandbox.child.id())?);
            go.write_all(b"g")?;
        }
        Ok(sandbox)
    }

    /// The sandbox's outer process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the app ended, once it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// Gives the network namespace of the sandbox whose outer process is
/// `outer` a user-mode stack (slirp4netns) with outbound access only: the
/// host's loopback is not reachable through it.
fn connect_to_internet(outer: u32) -> Result<Child, HostError> {
    let deadline = std::time::Instant::now() + KILL_WAIT;
    let inner = loop {
        if let Some(&pid) = process::children(outer).first() {
            break pid;
        }
        if std::time::Instant::now() >= deadline {
            return Err(HostError::App("the sandbox did not start".into()));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut slirp = Command::new("slirp4netns")
        .args(["--configure", "--mtu=65520", "--disable-host-loopback", "--ready-fd", "1"])
        // By path: joining the sandbox's (nested) user namespace would take
        // away the right to enter its network namespace.
        .args(["--netns-type=path", &format!("/proc/{inner}/ns/net"), "tap0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            HostError::App(format!(
                "network = \"internet\" needs slirp4netns (apt install slirp4netns): {e}"
            ))
        })?;
    let mut ready = [0u8; 1];
    let stdout = slirp.stdout.as_mut().expect("stdout is piped");
    if std::io::Read::read(stdout, &mut ready).ok() != Some(1) {
        let _ = slirp.kill();
        let _ = slirp.wait();
        return Err(HostError::App("slirp4netns could not configure the sandbox's network".into()));
    }
    Ok(slirp)
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // The namespace's init (the inner bwrap) takes every process of the
        // namespace with it; wait until it is gone. The group, when there
        // is one, then sweeps anything left and is removed.
        let inner = process::children(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
        inner.iter().for_each(|&pid| process::kill(pid));
        if !process::wait_gone(&inner, KILL_WAIT) {
            tracing::warn!(pid = self.child.id(), "a sandbox outlived its session");
        }
        drop(self.group.take());
        if let Some(mut network) = self.network.take() {
            let _ = network.kill();
            let _ = network.wait();
        }
    }
}

/// bwrap's arguments that seal a process from the host: its own user, PID, IPC, UTS,
/// cgroup and network namespaces, gone with its parent, the system read-only.
pub(super) fn sealed_system() -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let mut add = |items: &[&str]| args.extend(items.iter().map(|s| (*s).to_owned()));
    add(&["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]);
    add(&["--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", "gridplay"]);
    add(&["--unshare-net"]);
    add(&[
        "--ro-bind",
        "/usr",
        "/usr",
        "--ro-bind",
        "/etc",
        "/etc",
        "--ro-bind-try",
        "/opt",
        "/opt",
    ]);
    for top in ["bin", "sbin", "lib", "lib32", "lib64"] {
        let host = Path::new("/").join(top);
        match std::fs::read_link(&host) {
            Ok(target) => add(&["--symlink", &target.to_string_lossy(), &host.to_string_lossy()]),
            Err(_) if host.is_dir() => {
                add(&["--ro-bind", &host.to_string_lossy(), &host.to_string_lossy()])
            }
            Err(_) => {}
        }
    }
    args
}

/// bwrap's arguments for one app.
fn arguments(
    entry: &AppEntry,
    display: &Display,
    sound: Option<&Path>,
    dir: &SessionDir,
) -> Vec<String> {
    let mut args = sealed_system();
    let mut add = |items: &[&str]| args.extend(items.iter().map(|s| (*s).to_owned()));
    if entry.network == Network::Internet {
        // Held until the host has given the namespace its network, with a
        // resolver that works through it (the host's may be on its loopback).
        let resolv = dir.path().join("resolv.conf");
        add(&["--block-fd", "0", "--ro-bind", &resolv.to_string_lossy(), "/etc/resolv.conf"]);
    }
    add(&["--proc", "/proc", "--dev", "/dev", "--dev-bind-try", "/dev/dri", "/dev/dri"]);
    for device in gpu_devices() {
        add(&["--dev-bind", &device, &device]);
    }
    add(&["--tmpfs", "/tmp", "--dir", "/var", "--tmpfs", "/var/tmp", "--tmpfs", "/run"]);
    let preload = gamepads::library();
    if let Some(library) = &preload {
        // The session's own pads where Linux puts pads, found by scanning
        // (there is no udev in here), opened through the preloaded library.
        add(&["--bind", &dir.input().to_string_lossy(), gamepads::DIRECTORY]);
        add(&["--ro-bind", &library.to_string_lossy(), gamepads::LIBRARY_IN_SANDBOX]);
    }
    let socket = display.socket().to_string_lossy().into_owned();
    add(&["--dir", "/tmp/.X11-unix", "--ro-bind", &socket, &socket]);
    if let Some(socket) = sound {
        add(&["--bind", &socket.to_string_lossy(), SOCKET_IN_SANDBOX]);
    }
    add(&["--bind", &dir.home().to_string_lossy(), HOME, "--chdir", HOME, "--clearenv"]);
    let display_name = format!(":{}", display.number());
    let xauthority = format!("{HOME}/.Xauthority");
    let fixed = [
        ("HOME", HOME),
        ("DISPLAY", &display_name),
        ("XAUTHORITY", &xauthority),
        ("PATH", SANDBOX_PATH),
        ("TMPDIR", "/tmp"),
        ("LANG", "C.UTF-8"),
    ];
    for (key, value) in fixed {
        add(&["--setenv", key, value]);
    }
    if sound.is_some() {
        add(&["--setenv", "PULSE_SERVER", &format!("unix:{SOCKET_IN_SANDBOX}")]);
    }
    if preload.is_some() {
        let environment = [
            ("LD_PRELOAD", gamepads::LIBRARY_IN_SANDBOX),
            ("SDL_JOYSTICK_DISABLE_UDEV", "1"),
            ("SDL_JOYSTICK_HIDAPI", "0"),
        ];
        for (key, value) in environment {
            add(&["--setenv", key, value]);
        }
    }
    for (key, value) in &entry.env {
        add(&["--setenv", key, value]);
    }
    add(&["--"]);
    args.extend(entry.command.iter().cloned());
    args
}

/// The NVIDIA device nodes a GPU app needs, where the host has them.
fn gpu_devices() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/dev") else { return Vec::new() };
    let mut devices: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("nvidia"))
        .map(|name| format!("/dev/{name}"))
        .filter(|path| !Path::new(path).is_dir())
        .collect();
    devices.sort();
    devices
}
