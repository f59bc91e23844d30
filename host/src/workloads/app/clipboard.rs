//! The session display's clipboard, both ways, on a connection of the host's own: text the
//! player offers is served to the app as the CLIPBOARD and PRIMARY selections (UTF-8), and
//! text the app copies (it takes CLIPBOARD) is read back as UTF-8 for the player. Driven
//! from the frame loop: pending requests are answered once a frame.

use gridplay_protocol::input::MAX_CLIPBOARD_BYTES;
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xfixes::{ConnectionExt as _, SelectionEventMask};
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode,
    SELECTION_NOTIFY_EVENT, SelectionNotifyEvent, SelectionRequestEvent, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

use super::display::Display;
use super::screen::{connect, x11};
use crate::HostError;

/// The atoms the clipboard speaks.
struct Atoms {
    clipboard: Atom,
    targets: Atom,
    utf8: Atom,
    text: Atom,
    /// Where the app's copied text is delivered to the host's window.
    landing: Atom,
}

/// The host's side of one display's clipboard.
pub struct Clipboard {
    conn: RustConnection,
    window: Window,
    atoms: Atoms,
    /// The player's text, served while the host's window owns the selections.
    offered: Option<Vec<u8>>,
    /// Text the app copied that the player has not been given yet.
    copied: Option<String>,
}

impl Clipboard {
    /// Connects to `display` and watches who owns its CLIPBOARD.
    pub fn connect(display: &Display) -> Result<Self, HostError> {
        let conn = connect(display)?;
        conn.xfixes_query_version(5, 0).map_err(x11)?.reply().map_err(x11)?;
        let root = conn.setup().roots[0].root;
        let window = conn.generate_id().map_err(x11)?;
        conn.create_window(
            0,
            window,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new(),
        )
        .map_err(x11)?;
        let atom = |name: &[u8]| -> Result<Atom, HostError> {
            Ok(conn.intern_atom(false, name).map_err(x11)?.reply().map_err(x11)?.atom)
        };
        let atoms = Atoms {
            clipboard: atom(b"CLIPBOARD")?,
            targets: atom(b"TARGETS")?,
            utf8: atom(b"UTF8_STRING")?,
            text: atom(b"TEXT")?,
            landing: atom(b"GRIDPLAY_CLIPBOARD")?,
        };
        conn.xfixes_select_selection_input(
            window,
            atoms.clipboard,
            SelectionEventMask::SET_SELECTION_OWNER,
        )
        .map_err(x11)?;
        conn.flush().map_err(x11)?;
        Ok(Self { conn, window, atoms, offered: None, copied: None })
    }

    /// Serves `text` to the app as its clipboard (CLIPBOARD and PRIMARY) from now on.
    pub fn offer(&mut self, text: &str) -> Result<(), HostError> {
        for selection in [self.atoms.clipboard, AtomEnum::PRIMARY.into()] {
            self.conn
                .set_selection_owner(self.window, selection, x11rb::CURRENT_TIME)
                .map_err(x11)?;
        }
        self.conn.flush().map_err(x11)?;
        self.offered = Some(text.as_bytes().to_vec());
        Ok(())
    }

    /// Answers the app's pending clipboard requests; returns text it copied since last asked.
    pub fn poll(&mut self) -> Result<Option<String>, HostError> {
        while let Some(event) = self.conn.poll_for_event().map_err(x11)? {
            match event {
                Event::XfixesSelectionNotify(e) if e.owner != self.window && e.owner != 0 => {
                    let (clipboard, utf8, landing) =
                        (self.atoms.clipboard, self.atoms.utf8, self.atoms.landing);
                    self.conn
                        .convert_selection(self.window, clipboard, utf8, landing, e.timestamp)
                        .map_err(x11)?;
                }
                Event::SelectionNotify(e) if e.property == self.atoms.landing => {
                    self.copied = self.read_copied()?.or(self.copied.take());
                }
                Event::SelectionRequest(request) => self.answer(&request)?,
                Event::SelectionClear(e) if e.selection == self.atoms.clipboard => {
                    self.offered = None;
                }
                _ => {}
            }
        }
        self.conn.flush().map_err(x11)?;
        Ok(self.copied.take())
    }

    /// The app's copied text, as delivered to the host's window: UTF-8 of at most
    /// [`MAX_CLIPBOARD_BYTES`], else nothing.
    fn read_copied(&self) -> Result<Option<String>, HostError> {
        let longs = (MAX_CLIPBOARD_BYTES / 4 + 1) as u32;
        let reply = self
            .conn
            .get_property(true, self.window, self.atoms.landing, AtomEnum::ANY, 0, longs)
            .map_err(x11)?
            .reply()
            .map_err(x11)?;
        if reply.bytes_after > 0 || reply.value.len() > MAX_CLIPBOARD_BYTES {
            tracing::debug!("the app copied more than {MAX_CLIPBOARD_BYTES} bytes; not passed on");
            return Ok(None);
        }
        Ok(String::from_utf8(reply.value).ok())
    }

    /// Answers one request for the selections the host's window owns: the targets it
    /// offers, or the player's text as UTF-8; anything else is refused.
    fn answer(&self, request: &SelectionRequestEvent) -> Result<(), HostError> {
        let a = &self.atoms;
        let property = if request.property == 0 { request.target } else { request.property };
        let string: Atom = AtomEnum::STRING.into();
        let served = match &self.offered {
            Some(_) if request.target == a.targets => {
                let targets = [a.targets, a.utf8, a.text, string];
                self.conn
                    .change_property32(
                        PropMode::REPLACE,
                        request.requestor,
                        property,
                        AtomEnum::ATOM,
                        &targets,
                    )
                    .map_err(x11)?;
                true
            }
            Some(text) if [a.utf8, a.text, string].contains(&request.target) => {
                let kind = if request.target == string { string } else { a.utf8 };
                self.conn
                    .change_property8(PropMode::REPLACE, request.requestor, property, kind, text)
                    .map_err(x11)?;
                true
            }
            _ => false,
        };
        let notify = SelectionNotifyEvent {
            response_type: SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: request.time,
            requestor: request.requestor,
            selection: request.selection,
            target: request.target,
            property: if served { property } else { 0 },
        };
        self.conn.send_event(false, request.requestor, EventMask::NO_EVENT, notify).map_err(x11)?;
        Ok(())
    }
}
