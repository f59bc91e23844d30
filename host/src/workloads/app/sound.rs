//! A session's own sound server: PulseAudio with one null sink, its socket in the
//! session's directory, run as the sandbox's user in a sandbox of its own (no network,
//! the system read-only, only its runtime directory writable), shared with nothing else.
//! The app reaches it (through the PulseAudio API, or ALSA routed to it) at
//! [`SOCKET_IN_SANDBOX`]; the host captures that sink's monitor and nothing else.

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gridplay_streaming::audio::{AudioFrame, CHANNELS, SAMPLE_RATE};

use super::sandbox::{SANDBOX_UID, SessionDir, sealed_system};
use crate::HostError;
use crate::workloads::{SoundClock, SoundSource};

/// Where the app finds the server's socket inside its sandbox.
pub const SOCKET_IN_SANDBOX: &str = "/run/pulse/native";
/// The session's sink.
const SINK: &str = "gridplay";
/// Longest wait for the server to take connections.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// A session's running sound server and the host's capture of its sink; both
/// killed when dropped.
pub struct SoundServer {
    server: Child,
    socket: PathBuf,
    capture: Option<Capture>,
}

impl SoundServer {
    /// Starts the server for the session in `dir` (already the sandbox user's) and the
    /// capture of its sink, before the app plays anything: a monitor keeps no backlog.
    pub fn start(dir: &SessionDir) -> Result<Self, HostError> {
        let runtime = dir.path().join("pulse");
        std::fs::create_dir_all(&runtime)?;
        let socket = runtime.join("native");
        let mut command = Command::new("bwrap");
        let runtime_arg = runtime.to_string_lossy();
        command
            .args(sealed_system())
            .args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"])
            .args(["--bind", &runtime_arg, &runtime_arg, "--", "pulseaudio"]);
        // No configuration files, no D-Bus, no realtime, never exits when idle; its
        // socket is the one way in (anonymous: the directory is the access control), and
        // the app may neither load modules (a listener, a tunnel) nor stop the server.
        command
            .args(["-n", "--daemonize=no", "--use-pid-file=no", "--exit-idle-time=-1"])
            .args(["--disable-shm=yes", "--realtime=no", "--high-priority=no"])
            .args(["--disallow-module-loading=yes", "--disallow-exit=yes"])
            .arg("-L")
            .arg(format!(
                "module-null-sink sink_name={SINK} rate={SAMPLE_RATE} channels={CHANNELS}"
            ))
            .arg("-L")
            .arg(format!(
                "module-native-protocol-unix socket={} auth-anonymous=1 auth-cookie-enabled=0",
                socket.display()
            ))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &runtime)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("PULSE_RUNTIME_PATH", &runtime)
            .env("PULSE_STATE_PATH", &runtime)
            .env("PULSE_CONFIG", "/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if rustix::process::geteuid().is_root() {
            use std::os::unix::process::CommandExt;
            rustix::fs::chown(
                &runtime,
                Some(rustix::fs::Uid::from_raw(SANDBOX_UID)),
                Some(rustix::fs::Gid::from_raw(SANDBOX_UID)),
            )
            .map_err(|e| HostError::App(format!("chown {}: {e}", runtime.display())))?;
            command.uid(SANDBOX_UID).gid(SANDBOX_UID);
        }
        let server = command.spawn().map_err(|e| {
            HostError::App(format!("could not start PulseAudio (apt install pulseaudio): {e}"))
        })?;
        let mut this = Self { server, socket, capture: None };
        this.wait_ready()?;
        this.capture = Some(Capture::start(&this.socket)?);
        Ok(this)
    }

    /// The server's socket on the host.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The capture of the session's sink, once.
    pub fn take_capture(&mut self) -> Option<Capture> {
        self.capture.take()
    }

    /// Waits until the socket takes connections (PulseAudio has no readiness signal).
    fn wait_ready(&mut self) -> Result<(), HostError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.server.try_wait() {
                return Err(HostError::App(format!("PulseAudio exited at start ({status})")));
            }
            if Instant::now() >= deadline {
                return Err(HostError::App("PulseAudio did not start".into()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for SoundServer {
    fn drop(&mut self) {
        drop(self.capture.take());
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// The host's recording of a session's sink (`parec` on its monitor), handed out on the
/// sound's own clock: what the server has played by each frame's due time, silence
/// where it has not (the server starts its monitor late and keeps no steady pace while
/// idle); killed when dropped.
pub struct Capture {
    child: Child,
    clock: SoundClock,
    /// Samples (interleaved) read from the server and not yet handed out; `None` once
    /// the recording ended.
    heard: Arc<Mutex<Option<VecDeque<i16>>>>,
    /// Whether the cushion is in hand and the recording plays out.
    primed: bool,
}

/// Most sound the capture holds: beyond it the oldest goes (latency stays bounded).
const MOST_HELD: Duration = Duration::from_millis(100);
/// How often the server hands the recording over.
const CAPTURE_LATENCY: Duration = Duration::from_millis(5);
/// Frames of recording the capture keeps in hand against the recording's jitter.
const CUSHION_FRAMES: usize = 2;

impl Capture {
    fn start(socket: &Path) -> Result<Self, HostError> {
        let latency = CAPTURE_LATENCY.as_millis().to_string();
        let mut child = Command::new("parec")
            .arg(format!("--server=unix:{}", socket.display()))
            .arg(format!("--device={SINK}.monitor"))
            .args(["--raw", "--format=s16le", "--channels=2"])
            .arg(format!("--rate={SAMPLE_RATE}"))
            .arg(format!("--latency-msec={latency}"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                HostError::App(format!(
                    "could not capture sound (apt install pulseaudio-utils): {e}"
                ))
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let heard = Arc::new(Mutex::new(Some(VecDeque::new())));
        let most = (SAMPLE_RATE as usize * CHANNELS) * MOST_HELD.as_millis() as usize / 1000;
        std::thread::spawn({
            let heard = Arc::clone(&heard);
            move || record(stdout, &heard, most)
        });
        let clock = SoundClock::new(AudioFrame::default());
        Ok(Self { child, clock, heard, primed: false })
    }

    /// The capture handing out `frame`-long frames.
    pub fn paced(mut self, frame: AudioFrame) -> Self {
        self.clock = SoundClock::new(frame);
        self
    }
}

/// Reads the recording into `heard` until it ends, keeping at most `most` samples
/// (whole stereo frames).
fn record(mut stdout: ChildStdout, heard: &Mutex<Option<VecDeque<i16>>>, most: usize) {
    const FRAME_BYTES: usize = 2 * CHANNELS;
    let mut bytes = Vec::with_capacity(8192);
    let mut chunk = [0u8; 4096];
    while let Ok(n @ 1..) = stdout.read(&mut chunk) {
        // Whole stereo frames only: a part of one waits for the next read.
        bytes.extend_from_slice(&chunk[..n]);
        let whole = bytes.len() - bytes.len() % FRAME_BYTES;
        let mut heard = heard.lock().unwrap_or_else(|p| p.into_inner());
        let Some(samples) = heard.as_mut() else { return };
        samples.extend(bytes[..whole].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])));
        bytes.drain(..whole);
        let excess = samples.len().saturating_sub(most);
        samples.drain(..excess);
    }
    *heard.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

impl SoundSource for Capture {
    fn next_frame(&mut self, pcm: &mut [i16]) -> Result<Instant, HostError> {
        let due = self.clock.wait();
        let mut heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
        let samples = heard.as_mut().ok_or_else(|| HostError::App("sound capture ended".into()))?;
        // The recording plays out a cushion behind the clock, so that its own jitter
        // never leaves a frame short; a frame that finds it short starts it again.
        let cushion = pcm.len() * CUSHION_FRAMES;
        self.primed =
            self.primed && samples.len() >= pcm.len() || samples.len() >= pcm.len() + cushion;
        if self.primed {
            let n = pcm.len();
            for (out, sample) in pcm.iter_mut().zip(samples.drain(..n)) {
                *out = sample;
            }
        } else {
            pcm.fill(0);
        }
        Ok(due)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
