//! An app from the catalogue, sealed in its own session: a fresh X
//! [`display`] of the session's size and a [`sound`] server of its own, the
//! app in a [`sandbox`], frames captured from the display's [`screen`], sound
//! from the server's sink, the player's [`input`] injected into the display
//! and their [`gamepads`] served as the app's own devices. Dropping it ends the app's whole process tree, the display, the
//! sound server and the session's directory.

pub mod cgroup;
mod clipboard;
mod display;
pub mod gamepads;
mod input;
mod keymap;
mod process;
mod sandbox;
mod screen;
mod sound;

use std::time::Duration;

use gridplay_protocol::input::{InputEvent, InputKind};
use gridplay_streaming::audio::AudioFrame;

use super::{Picture, SoundSource, Workload};
use crate::HostError;
use crate::catalogue::{AppEntry, Catalogue};
use cgroup::Limits;
use clipboard::Clipboard;
use display::Display;
use gamepads::Gamepads;
use input::Translator;
use sandbox::{Sandbox, SessionDir};
use screen::Screen;
use sound::SoundServer;

/// Checks that this host can run the catalogue's app sessions (Xvfb and
/// bubblewrap on the `PATH`, slirp4netns for apps with the internet), says
/// which limits apply to them, and whether they can have sound (PulseAudio).
pub fn preflight(catalogue: &Catalogue) -> Result<(), HostError> {
    let limits = catalogue.limits;
    let path = std::env::var("PATH").unwrap_or_default();
    let mut needed = vec![("Xvfb", "xvfb"), ("bwrap", "bubblewrap")];
    if catalogue.needs_internet() {
        needed.push(("slirp4netns", "slirp4netns"));
    }
    for (program, package) in needed {
        if crate::catalogue::find_program(program, &path).is_none() {
            return Err(HostError::App(format!(
                "`{program}` is not on the PATH: apps need it (apt install {package})"
            )));
        }
    }
    if gamepads::library().is_none() {
        tracing::warn!(
            "apps see no gamepads: {} is not next to this program (cargo build -p gridplay-gamepad-preload)",
            gamepads::LIBRARY
        );
    }
    for (program, package) in [("pulseaudio", "pulseaudio"), ("parec", "pulseaudio-utils")] {
        if crate::catalogue::find_program(program, &path).is_none() {
            tracing::warn!(
                "app sessions have no sound: `{program}` is not on the PATH (apt install {package})"
            );
        }
    }
    match cgroup::Hierarchy::prepare() {
        Ok(hierarchy) => tracing::info!(
            cpus = limits.cpus,
            memory_mib = limits.memory_bytes >> 20,
            processes = limits.pids,
            cgroup = ?hierarchy,
            "each app session is limited"
        ),
        Err(reason) => {
            tracing::warn!("app sessions run without CPU, memory or process limits: {reason}")
        }
    }
    Ok(())
}

/// A fresh name for an app session's directory and control group.
pub fn session_name() -> String {
    let mut id = [0u8; 8];
    // Without the system's randomness, the clock still tells sessions apart.
    if getrandom::getrandom(&mut id).is_err() {
        id = (std::time::UNIX_EPOCH.elapsed().unwrap_or_default().as_nanos() as u64).to_le_bytes();
    }
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!("gridplay-app-{hex}")
}

/// Removes what an app session named `name` may have left when its worker
/// died: its processes (through its control group), the group and its directory.
pub fn sweep(name: &str) {
    if let Ok(hierarchy) = cgroup::Hierarchy::detect() {
        drop(cgroup::Group::existing(hierarchy, name));
    }
    let _ = std::fs::remove_dir_all(SessionDir::path_of(name));
}

/// A running app. Fields drop in order: the host's connections, the app,
/// the sound server, the display, the directory.
pub struct AppWorkload {
    clipboard: Clipboard,
    gamepads: Gamepads,
    screen: Screen,
    sandbox: Sandbox,
    sound: Option<SoundServer>,
    _display: Display,
    _dir: SessionDir,
    input: Translator,
}

impl AppWorkload {
    /// Starts `entry` on a display of `width`×`height`, within `limits`,
    /// its directory and control group named `name`. Blocking.
    pub fn start(
        entry: &AppEntry,
        limits: Limits,
        name: &str,
        width: u32,
        height: u32,
    ) -> Result<Self, HostError> {
        let dir = SessionDir::create(name)?;
        // The app finds its cookie where X clients look: its home's .Xauthority.
        let display = Display::start(width, height, &dir.home().join(".Xauthority"))?;
        let screen = Screen::connect(&display)?;
        let clipboard = Clipboard::connect(&display)?;
        dir.give_to_sandbox()?;
        // Sound is worth having, not worth refusing the app for.
        let sound = SoundServer::start(&dir)
            .inspect_err(|e| tracing::warn!(app = %entry.app.id, "no sound: {e}"))
            .ok();
        let socket = sound.as_ref().map(SoundServer::socket);
        let gamepads = Gamepads::new(&dir.input());
        let sandbox = Sandbox::start(entry, &display, socket, &dir, limits)?;
        let number = display.number();
        tracing::debug!(app = %entry.app.id, display = number, pid = sandbox.pid(), "app started");
        Ok(Self {
            clipboard,
            gamepads,
            screen,
            sandbox,
            sound,
            _display: display,
            _dir: dir,
            input: Translator::default(),
        })
    }
}

impl Workload for AppWorkload {
    fn apply(&mut self, event: &InputEvent) -> Result<(), HostError> {
        match &event.kind {
            InputKind::Clipboard { text } => return self.clipboard.offer(text),
            InputKind::Gamepad { .. } | InputKind::GamepadGone { .. } => {
                return self.gamepads.apply(event);
            }
            _ => {}
        }
        let fakes = self.input.translate(event, self.screen.size());
        self.screen.inject(&fakes)
    }

    fn copied(&mut self) -> Result<Option<String>, HostError> {
        self.clipboard.poll()
    }

    fn frame(&mut self, _since_last: Duration) -> Result<Picture<'_>, HostError> {
        if let Some(status) = self.sandbox.exited() {
            return Err(HostError::AppExited(status.into()));
        }
        self.gamepads.serve();
        Ok(self.screen.capture()?.map_or(Picture::Unchanged, Picture::Bgrx))
    }

    fn resizable(&self) -> bool {
        false
    }

    fn resize(&mut self, width: u32, height: u32) -> Result<(), HostError> {
        Err(HostError::FrameSize { width, height })
    }

    fn sound(&mut self, frame: AudioFrame) -> Option<Box<dyn SoundSource>> {
        let capture = self.sound.as_mut()?.take_capture()?;
        Some(Box::new(capture.paced(frame)))
    }
}
