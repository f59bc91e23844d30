//! What a session shows: the built-in game [`orbit`], or an [`app`] from
//! the host's catalogue in a sandbox of its own. Either takes the player's
//! input and gives one picture per frame to the encoder, and its sound (where
//! it has one) frame by frame to the sound encoder.

pub mod app;
pub mod orbit;

use std::sync::Arc;
use std::time::{Duration, Instant};

use gridplay_protocol::input::InputEvent;
use gridplay_streaming::audio::AudioFrame;

use crate::HostError;
use crate::catalogue::AppEntry;
use app::cgroup::Limits;

/// One frame's pixels, tightly packed, 4 bytes per pixel, or word that they did not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picture<'a> {
    /// Red, green, blue, alpha.
    Rgba(&'a [u8]),
    /// Blue, green, red, unused (X11's 24-bit visual).
    Bgrx(&'a [u8]),
    /// The same picture as the frame before: nothing on screen changed.
    Unchanged,
}

/// A session's workload, driven by the frame loop on its own thread.
pub trait Workload: Send {
    /// Applies one input event.
    fn apply(&mut self, event: &InputEvent) -> Result<(), HostError>;

    /// Text the workload copied to its clipboard since last asked (answering, on the way,
    /// what it asked of the clipboard the player offered).
    fn copied(&mut self) -> Result<Option<String>, HostError>;

    /// The picture for a frame starting `since_last` after the previous one.
    /// An app that has exited gives [`HostError::AppExited`].
    fn frame(&mut self, since_last: Duration) -> Result<Picture<'_>, HostError>;

    /// Whether [`resize`](Self::resize) works (an app's display keeps its size).
    fn resizable(&self) -> bool;

    /// Renders at a new size from the next frame on.
    fn resize(&mut self, width: u32, height: u32) -> Result<(), HostError>;

    /// The workload's sound in `frame`-long frames, if it has any; asked once, as
    /// the stream starts.
    fn sound(&mut self, frame: AudioFrame) -> Option<Box<dyn SoundSource>>;
}

/// A workload's sound, frame by frame, each when it is due.
pub trait SoundSource: Send {
    /// Waits until the next frame is due and fills `pcm` (interleaved stereo, one
    /// frame) with it; returns the instant the frame starts at.
    fn next_frame(&mut self, pcm: &mut [i16]) -> Result<Instant, HostError>;
}

/// The clock a sound source keeps: one frame due every frame length from the first,
/// so that the count of samples sent is the time; a source that fell further behind
/// than [`MOST_BEHIND`] (a stalled thread) starts again from now.
#[derive(Debug)]
pub struct SoundClock {
    frame: AudioFrame,
    due: Option<Instant>,
}

/// How far behind a sound source may fall before it skips ahead.
const MOST_BEHIND: Duration = Duration::from_millis(100);

impl SoundClock {
    /// A clock of `frame`-long frames whose first is due at once.
    pub fn new(frame: AudioFrame) -> Self {
        Self { frame, due: None }
    }

    /// Waits until the next frame is due; returns the instant it starts at.
    pub fn wait(&mut self) -> Instant {
        let now = Instant::now();
        let due = match self.due {
            Some(due) if now.saturating_duration_since(due) < MOST_BEHIND => due,
            _ => now,
        };
        if let Some(wait) = due.checked_duration_since(now) {
            std::thread::sleep(wait);
        }
        self.due = Some(due + self.frame.duration());
        due
    }
}

/// How an app's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AppExit {
    /// It exited with this status.
    Status(i32),
    /// A signal killed it.
    Signal(i32),
}

impl From<std::process::ExitStatus> for AppExit {
    fn from(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Self::Status(code),
            (None, Some(signal)) => Self::Signal(signal),
            (None, None) => Self::Status(-1),
        }
    }
}

impl std::fmt::Display for AppExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // bwrap reports a signal that killed the app as 128 + the signal.
            Self::Status(code) if *code > 128 => {
                write!(f, "exited (killed by signal {})", code - 128)
            }
            Self::Status(code) => write!(f, "exited (status {code})"),
            Self::Signal(signal) => write!(f, "exited (killed by signal {signal})"),
        }
    }
}

/// Which workload a session runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Launch {
    /// The built-in game.
    Orbit,
    /// An app from the catalogue.
    App {
        /// The catalogue's entry.
        entry: Arc<AppEntry>,
        /// What the session may use.
        limits: Limits,
        /// The session's own name for its directory and control group.
        name: String,
    },
}

impl Launch {
    /// Starts the workload at `width`×`height`. Blocking.
    pub fn start(&self, width: u32, height: u32) -> Result<Box<dyn Workload>, HostError> {
        Ok(match self {
            Self::Orbit => Box::new(orbit::Orbit::new(width, height)?),
            Self::App { entry, limits, name } => {
                Box::new(app::AppWorkload::start(entry, *limits, name, width, height)?)
            }
        })
    }

    /// Whether it can change size for the quality ladder.
    pub fn resizable(&self) -> bool {
        matches!(self, Self::Orbit)
    }
}
