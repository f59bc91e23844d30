//! The player's gamepads, as the app's own and no one else's: each pad the
//! player connects appears in the session's `/dev/input` as an event node and
//! a joystick node (`gridplay-gamepad`), served here as Unix seqpacket
//! sockets that the library preloaded into the sandbox opens in the app's
//! place. A pad the player disconnects is unplugged: its nodes are removed and
//! its readers see the end of the device.
//!
//! The socket's buffer is the device's queue: an app that stops reading loses
//! the events that do not fit, as it would lose them from a full evdev queue.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use gridplay_gamepad::{Change, Interface, Node, PadState};
use gridplay_protocol::input::{InputEvent, InputKind, seq_after};
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use crate::HostError;

/// The library the sandbox preloads, as cargo builds it next to the host's binaries.
pub const LIBRARY: &str = "libgridplay_gamepad_preload.so";
/// Where the sandbox finds the library.
pub const LIBRARY_IN_SANDBOX: &str = "/run/gridplay/gamepad.so";
/// Where the app finds its pads.
pub const DIRECTORY: &str = gridplay_gamepad::DIRECTORY;

/// The preload library next to this executable, when it is there.
pub fn library() -> Option<PathBuf> {
    let path = std::env::current_exe().ok()?.parent()?.join(LIBRARY);
    path.is_file().then_some(path)
}

/// A session's gamepads, served from its input directory.
pub(super) struct Gamepads {
    directory: PathBuf,
    pads: BTreeMap<u8, Pad>,
    /// Per pad, the `seq` of the newest input about it (the channel is unordered).
    newest: BTreeMap<u8, u32>,
    /// The joystick interface's clock starts with the session.
    started: Instant,
}

/// One connected pad: its state and its two nodes.
struct Pad {
    state: PadState,
    nodes: [Served; 2],
}

/// A node's socket and the app's open descriptors of it.
struct Served {
    node: Node,
    path: PathBuf,
    listener: OwnedFd,
    readers: Vec<OwnedFd>,
}

impl Gamepads {
    /// Pads served in `directory` (the sandbox's `/dev/input`).
    pub(super) fn new(directory: &Path) -> Self {
        Self {
            directory: directory.to_owned(),
            pads: BTreeMap::new(),
            newest: BTreeMap::new(),
            started: Instant::now(),
        }
    }

    /// Takes one input: a pad's new state (connecting the pad the first time)
    /// or its disconnection. Anything else is not a pad's.
    pub(super) fn apply(&mut self, event: &InputEvent) -> Result<(), HostError> {
        let (pad, state) = match &event.kind {
            InputKind::Gamepad {
                pad,
                buttons,
                left_trigger,
                right_trigger,
                left_x,
                left_y,
                right_x,
                right_y,
            } => {
                let state = PadState {
                    buttons: *buttons,
                    left_trigger: *left_trigger,
                    right_trigger: *right_trigger,
                    left_x: *left_x,
                    left_y: *left_y,
                    right_x: *right_x,
                    right_y: *right_y,
                };
                (*pad, Some(state))
            }
            InputKind::GamepadGone { pad } => (*pad, None),
            _ => return Ok(()),
        };
        if self.newest.get(&pad).is_some_and(|&newest| !seq_after(event.seq, newest)) {
            return Ok(());
        }
        self.newest.insert(pad, event.seq);
        let Some(state) = state else {
            if self.pads.remove(&pad).is_some() {
                tracing::debug!(pad, "gamepad unplugged");
            }
            return Ok(());
        };
        let times = self.times();
        let served = match self.pads.entry(pad) {
            Entry::Occupied(plugged) => plugged.into_mut(),
            Entry::Vacant(new) => {
                let node = |interface| Served::bind(&self.directory, Node { interface, pad });
                let nodes = [node(Interface::Evdev)?, node(Interface::Joystick)?];
                tracing::debug!(pad, "gamepad plugged in");
                new.insert(Pad { state: PadState::default(), nodes })
            }
        };
        let changes = gridplay_gamepad::changes(&served.state, &state);
        served.state = state;
        for node in &mut served.nodes {
            node.send_all(&changes, times);
        }
        Ok(())
    }

    /// Takes the app's new openings of the nodes, telling each the pad's state,
    /// and lets go of the ones it closed. Called once a frame.
    pub(super) fn serve(&mut self) {
        let times = self.times();
        for pad in self.pads.values_mut() {
            for node in &mut pad.nodes {
                node.accept(&pad.state, times);
                node.drain();
            }
        }
    }

    /// Now, as evdev stamps events (wall clock) and as the joystick interface does.
    fn times(&self) -> ((i64, i64), u32) {
        let wall = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let evdev = (wall.as_secs() as i64, i64::from(wall.subsec_micros()));
        (evdev, self.started.elapsed().as_millis() as u32)
    }
}

impl Served {
    /// Listens at the node's path in `directory`, appearing there (for the
    /// app's directory watch) only once it takes connections.
    fn bind(directory: &Path, node: Node) -> Result<Self, HostError> {
        let fail = |e: &dyn std::fmt::Display| HostError::App(format!("gamepad node: {e}"));
        let path = directory.join(node.file_name());
        let staging = directory.join(format!(".{}", node.file_name()));
        let _ = std::fs::remove_file(&staging);
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let listener =
            rustix::net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, flags, None)
                .map_err(|e| fail(&e))?;
        let address = rustix::net::SocketAddrUnix::new(&staging).map_err(|e| fail(&e))?;
        rustix::net::bind(&listener, &address).map_err(|e| fail(&e))?;
        rustix::net::listen(&listener, 16).map_err(|e| fail(&e))?;
        // The app may run as another user (the sandbox's, under a root host).
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o666))?;
        std::fs::rename(&staging, &path)?;
        Ok(Self { node, path, listener, readers: Vec::new() })
    }

    fn accept(&mut self, state: &PadState, times: ((i64, i64), u32)) {
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        while let Ok(reader) = rustix::net::accept_with(&self.listener, flags) {
            // An event node's reader asks for the state by ioctl and hears it
            // as at rest; a joystick node says its whole state on open.
            let events = match self.node.interface {
                Interface::Evdev => self.events(
                    &gridplay_gamepad::changes(&PadState::default(), state),
                    times,
                    false,
                ),
                Interface::Joystick => self.events(&gridplay_gamepad::whole(state), times, true),
            };
            if self.deliver(&reader, &events) {
                self.readers.push(reader);
            }
        }
    }

    /// Sends `changes` to every reader; drops readers that are gone.
    fn send_all(&mut self, changes: &[Change], times: ((i64, i64), u32)) {
        let events = self.events(changes, times, false);
        let mut readers = std::mem::take(&mut self.readers);
        readers.retain(|reader| self.deliver(reader, &events));
        self.readers = readers;
    }

    /// `changes` as this node's events (an evdev batch ends with its report);
    /// `initial` marks a joystick node's state on open.
    fn events(
        &self,
        changes: &[Change],
        (wall, millis): ((i64, i64), u32),
        initial: bool,
    ) -> Vec<Vec<u8>> {
        match self.node.interface {
            Interface::Evdev if changes.is_empty() => Vec::new(),
            Interface::Evdev => changes
                .iter()
                .map(|&c| gridplay_gamepad::evdev_event(c, wall).to_vec())
                .chain([gridplay_gamepad::evdev_sync(wall).to_vec()])
                .collect(),
            Interface::Joystick => changes
                .iter()
                .map(|&c| gridplay_gamepad::js_event(c, millis, initial).to_vec())
                .collect(),
        }
    }

    /// Sends `events` to `reader`, one a packet; false when the reader is gone.
    fn deliver(&self, reader: &OwnedFd, events: &[Vec<u8>]) -> bool {
        let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
        for event in events {
            match rustix::net::send(reader, event, flags) {
                Ok(_) => {}
                Err(Errno::AGAIN) => {
                    tracing::debug!(node = %self.node.file_name(), "an app's gamepad queue is full");
                    return true;
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// Reads and forgets what readers write (an app may write effects or LEDs);
    /// drops readers that closed.
    fn drain(&mut self) {
        let mut scratch = [0u8; 256];
        self.readers.retain(|reader| {
            loop {
                match rustix::net::recv(reader, &mut scratch, RecvFlags::DONTWAIT) {
                    Ok((0, _)) => return false,
                    Ok(_) => continue,
                    Err(Errno::AGAIN) => return true,
                    Err(_) => return false,
                }
            }
        });
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pad(seq: u32, pad: u8, buttons: u32, left_x: i16) -> InputEvent {
        let kind = InputKind::Gamepad {
            pad,
            buttons,
            left_trigger: 0,
            right_trigger: 0,
            left_x,
            left_y: 0,
            right_x: 0,
            right_y: 0,
        };
        InputEvent { seq, kind }
    }

    fn open(path: &Path) -> OwnedFd {
        let socket = rustix::net::socket(AddressFamily::UNIX, SocketType::SEQPACKET, None).unwrap();
        let address = rustix::net::SocketAddrUnix::new(path).unwrap();
        rustix::net::connect(&socket, &address).unwrap();
        socket
    }

    /// Every packet waiting on `reader`.
    fn packets(reader: &OwnedFd) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buffer = [0u8; 64];
        while let Ok((n, _)) = rustix::net::recv(reader, &mut buffer, RecvFlags::DONTWAIT) {
            out.push(buffer[..n].to_vec());
        }
        out
    }

    fn key_of(event: &[u8]) -> (u16, u16, i32) {
        let u = |i: usize| u16::from_ne_bytes([event[i], event[i + 1]]);
        (u(16), u(18), i32::from_ne_bytes(event[20..24].try_into().unwrap()))
    }

    #[test]
    fn a_pad_is_plugged_in_by_its_first_state_and_heard_by_every_reader() {
        let dir = std::env::temp_dir().join(format!("gridplay-pads-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut pads = Gamepads::new(&dir);
        assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "no pad, no node");
        pads.apply(&pad(1, 2, 1, 0)).unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&"event2".into()) && names.contains(&"js2".into()));

        // Opened after the press: an event reader hears it as events, a joystick
        // reader as its whole state.
        let evdev = open(&dir.join("event2"));
        let joystick = open(&dir.join("js2"));
        pads.serve();
        let heard = packets(&evdev);
        assert_eq!(heard.len(), 2, "the press and its report");
        assert_eq!(key_of(&heard[0]), (0x01, 0x130, 1));
        assert_eq!(key_of(&heard[1]), (0x00, 0x00, 0));
        assert_eq!(packets(&joystick).len(), 19, "11 buttons and 8 axes");

        // A stale snapshot changes nothing; a newer one is told to both.
        pads.apply(&pad(3, 2, 0, 1000)).unwrap();
        pads.apply(&pad(2, 2, 1, -1000)).unwrap();
        let heard = packets(&evdev);
        assert_eq!(
            heard.iter().map(|e| key_of(e)).collect::<Vec<_>>(),
            [(0x01, 0x130, 0), (0x03, 0x00, 1000), (0x00, 0x00, 0)]
        );
        assert_eq!(packets(&joystick).len(), 2);

        // Unplugged: the nodes go and their readers see the end.
        pads.apply(&InputEvent { seq: 4, kind: InputKind::GamepadGone { pad: 2 } }).unwrap();
        assert!(std::fs::read_dir(&dir).unwrap().next().is_none());
        let mut buffer = [0u8; 24];
        assert_eq!(rustix::net::recv(&evdev, &mut buffer, RecvFlags::DONTWAIT).unwrap().0, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
