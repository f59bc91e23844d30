//! Input events from the player: a compact binary codec carried on the WebRTC
//! "input" data channel (reliable but unordered).
//!
//! Keyboard, mouse (absolute position and pointer-lock relative motion,
//! buttons, wheel), gamepads (several, as whole-pad snapshots) and multi-touch
//! and the player's clipboard travel as one typed stream of [`InputEvent`]s. The host answers each with
//! [`InputApplied`], naming the first frame that reflects it (the basis of the
//! click-to-photon probe).
//!
//! # Wire format
//!
//! Integers are little-endian. A client message is `type: u8`, `seq: u32`,
//! then the payload of its type; nothing may follow the payload.
//!
//! | type   | kind                                     | payload after `type`, `seq`                                                    | bytes    |
//! |--------|------------------------------------------|--------------------------------------------------------------------------------|----------|
//! | `0x01` | [`KeyDown`](InputKind::KeyDown)          | `len: u8` (1..=32), then `len` printable-ASCII bytes (`KeyboardEvent.code`)   | 7..=38   |
//! | `0x02` | [`KeyUp`](InputKind::KeyUp)              | as `KeyDown`                                                                   | 7..=38   |
//! | `0x03` | [`PointerMove`](InputKind::PointerMove)  | `x: u16`, `y: u16`, `dx: i16`, `dy: i16`                                       | 13       |
//! | `0x04` | [`PointerDown`](InputKind::PointerDown)  | `x: u16`, `y: u16`, `button: u8`                                               | 10       |
//! | `0x05` | [`PointerUp`](InputKind::PointerUp)      | `x: u16`, `y: u16`, `button: u8`                                               | 10       |
//! | `0x06` | [`Wheel`](InputKind::Wheel)              | `dx: i16`, `dy: i16`                                                           | 9        |
//! | `0x07` | [`Gamepad`](InputKind::Gamepad)          | `pad: u8` (0..=15), `buttons: u32`, `left_trigger: u8`, `right_trigger: u8`, `left_x: i16`, `left_y: i16`, `right_x: i16`, `right_y: i16` | 20 |
//! | `0x08` | [`GamepadGone`](InputKind::GamepadGone)  | `pad: u8` (0..=15)                                                             | 6        |
//! | `0x09` | [`TouchStart`](InputKind::TouchStart)    | `n: u8` (1..=10), then `n` times `id: u8` (0..=9), `x: u16`, `y: u16`; ids distinct | 11..=56 |
//! | `0x0a` | [`TouchMove`](InputKind::TouchMove)      | as `TouchStart`                                                                | 11..=56  |
//! | `0x0b` | [`TouchEnd`](InputKind::TouchEnd)        | as `TouchStart`                                                                | 11..=56  |
//! | `0x0c` | [`TouchCancel`](InputKind::TouchCancel)  | as `TouchStart`                                                                | 11..=56  |
//! | `0x0d` | [`Clipboard`](InputKind::Clipboard)      | `len: u32` (0..=65536), then `len` bytes of UTF-8 text                         | 9..=65545 |
//! | `0x0e` | [`PointerLock`](InputKind::PointerLock)  | `locked: u8` (0 or 1)                                                          | 6        |
//!
//! The host answers each input with an [`InputApplied`] in one of two forms:
//!
//! | type   | payload after `type`                                  | bytes |
//! |--------|-------------------------------------------------------|-------|
//! | `0x80` | `seq: u32`, `frame_id: u32`                           | 9     |
//! | `0x81` | `seq: u32`, `frame_id: u32`, `rtp_timestamp: u32`     | 13    |
//!
//! `0x81` adds the RTP timestamp (90 kHz) of that frame on the video track,
//! which the receiver sees again on the frame it presents
//! (`requestVideoFrameCallback`'s `rtpTimestamp`): that is how a client
//! finds the presented frame of an input, for click-to-photon. The host
//! sends `0x81` whenever the frame went out on RTP; both forms decode.
//!
//! # Meaning
//!
//! - **Positions** (`x`, `y` of pointers and touches) are absolute, 0..=65535
//!   across the visible picture: 0 is the left (top) edge, 65535 the right
//!   (bottom) edge.
//! - **Keys** are DOM `KeyboardEvent.code`s, so the physical key, whatever the
//!   layout. Modifiers are keys of their own (`ShiftLeft`, `ControlRight`, ...):
//!   a chord is the sequence of its downs. The client sends no auto-repeat and
//!   releases every held key when it loses focus.
//! - **Mouse**: every move carries both the absolute position and the raw
//!   relative motion `dx`, `dy` in CSS pixels (what a game wants under pointer
//!   lock, where the absolute position stops at the picture's edge). `button`
//!   is the DOM `MouseEvent.button` (0 main, 1 middle, 2 secondary, 3 back,
//!   4 forward). Wheel deltas are in pixels. `PointerLock` says the player locked the
//!   pointer to the picture (or let it go): while locked, an app's pointer moves by `dx`,
//!   `dy` and clicks where it is, as a game that grabs the mouse expects. Only the newest
//!   `PointerLock` (by `seq`) counts.
//! - **Gamepads** are sent as a snapshot of one pad's whole state whenever any
//!   part of it changes; since the channel is unordered the receiver keeps,
//!   per pad, the snapshot with the newest `seq`. `pad` is the Gamepad API
//!   index. Bit `i` of `buttons` is button `i` of the W3C "standard" mapping
//!   (see [`gamepad_button`]). Triggers are analog, 0 released to 255 fully
//!   pressed. Axes map -1.0..=1.0 to -32767..=32767 (-32768 is accepted and
//!   means -1.0); y grows downward, as in the Gamepad API. `GamepadGone` says
//!   the pad was disconnected: forget its state.
//! - **Touches**: one message carries the touches that changed in one DOM
//!   touch event (`changedTouches`), at most [`MAX_TOUCHES`]. `id` is a small
//!   slot the client gives each finger for as long as it touches (the lowest
//!   free one), free again after its end or cancel. A cancel means the
//!   gesture was taken away (e.g. by the system): undo, do not act.
//! - **Clipboard**: the player's clipboard text, sent before the keys that paste it (the
//!   app's clipboard then holds it); at most [`MAX_CLIPBOARD_BYTES`] of UTF-8. Text the app
//!   copies comes back on the probes channel
//!   ([`HostProbeMessage::Clipboard`](crate::probe::HostProbeMessage::Clipboard)).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ProtocolError;

/// Longest `KeyboardEvent.code` accepted, in bytes.
pub const MAX_KEY_CODE_LEN: usize = 32;
/// Whether input `seq` came after `than`, on the input channel's wrapping
/// sequence (after `u32::MAX` it starts again): the channel is unordered, so an
/// input older than the newest one of its kind seen is stale.
pub fn seq_after(seq: u32, than: u32) -> bool {
    (seq.wrapping_sub(than) as i32) > 0
}

/// Gamepads are numbered `0..MAX_GAMEPADS`.
pub const MAX_GAMEPADS: u8 = 16;
/// Most touches in one message; touch ids are `0..MAX_TOUCHES`.
pub const MAX_TOUCHES: u8 = 10;
/// Longest clipboard text carried, in bytes.
pub const MAX_CLIPBOARD_BYTES: usize = 65_536;

const KEY_DOWN: u8 = 0x01;
const KEY_UP: u8 = 0x02;
const POINTER_MOVE: u8 = 0x03;
const POINTER_DOWN: u8 = 0x04;
const POINTER_UP: u8 = 0x05;
const WHEEL: u8 = 0x06;
const GAMEPAD: u8 = 0x07;
const GAMEPAD_GONE: u8 = 0x08;
const TOUCH_START: u8 = 0x09;
const TOUCH_MOVE: u8 = 0x0a;
const TOUCH_END: u8 = 0x0b;
const TOUCH_CANCEL: u8 = 0x0c;
const CLIPBOARD: u8 = 0x0d;
const POINTER_LOCK: u8 = 0x0e;
const INPUT_APPLIED: u8 = 0x80;
const INPUT_APPLIED_AT: u8 = 0x81;

/// Bits of [`InputKind::Gamepad`]'s `buttons`: the W3C Gamepad "standard"
/// mapping, bit `i` for `Gamepad.buttons[i]`.
pub mod gamepad_button {
    /// Bottom face button (A on Xbox, cross on PlayStation).
    pub const SOUTH: u32 = 1 << 0;
    /// Right face button (B, circle).
    pub const EAST: u32 = 1 << 1;
    /// Left face button (X, square).
    pub const WEST: u32 = 1 << 2;
    /// Top face button (Y, triangle).
    pub const NORTH: u32 = 1 << 3;
    /// Left bumper.
    pub const LEFT_BUMPER: u32 = 1 << 4;
    /// Right bumper.
    pub const RIGHT_BUMPER: u32 = 1 << 5;
    /// Left trigger pressed past the browser's threshold (its analog value is `left_trigger`).
    pub const LEFT_TRIGGER: u32 = 1 << 6;
    /// Right trigger pressed past the browser's threshold (its analog value is `right_trigger`).
    pub const RIGHT_TRIGGER: u32 = 1 << 7;
    /// Back / select / share.
    pub const BACK: u32 = 1 << 8;
    /// Start / options.
    pub const START: u32 = 1 << 9;
    /// Left stick pressed.
    pub const LEFT_STICK: u32 = 1 << 10;
    /// Right stick pressed.
    pub const RIGHT_STICK: u32 = 1 << 11;
    /// D-pad up.
    pub const DPAD_UP: u32 = 1 << 12;
    /// D-pad down.
    pub const DPAD_DOWN: u32 = 1 << 13;
    /// D-pad left.
    pub const DPAD_LEFT: u32 = 1 << 14;
    /// D-pad right.
    pub const DPAD_RIGHT: u32 = 1 << 15;
    /// Home / guide.
    pub const HOME: u32 = 1 << 16;
}

/// One input event with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct InputEvent {
    /// Sequence number, counted per session from 1.
    pub seq: u32,
    /// What happened.
    pub kind: InputKind,
}

/// One finger in a touch message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TouchPoint {
    /// The finger's slot, `0..MAX_TOUCHES`, stable while it touches.
    pub id: u8,
    /// Absolute x, 0..=65535 across the picture.
    pub x: u16,
    /// Absolute y, 0..=65535 down the picture.
    pub y: u16,
}

/// The kinds of input a player sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub enum InputKind {
    /// A key went down; `code` is the DOM `KeyboardEvent.code` (e.g. "ArrowRight").
    KeyDown {
        /// DOM key code.
        code: String,
    },
    /// A key went up.
    KeyUp {
        /// DOM key code.
        code: String,
    },
    /// The pointer moved; `x`/`y` are absolute, normalised to 0..=65535 across the frame.
    PointerMove {
        /// Absolute x, 0..=65535.
        x: u16,
        /// Absolute y, 0..=65535.
        y: u16,
        /// Relative motion in CSS pixels (pointer lock).
        dx: i16,
        /// Relative motion in CSS pixels (pointer lock).
        dy: i16,
    },
    /// A pointer button went down.
    PointerDown {
        /// Absolute x, 0..=65535.
        x: u16,
        /// Absolute y, 0..=65535.
        y: u16,
        /// DOM `MouseEvent.button` (0 = main).
        button: u8,
    },
    /// A pointer button went up.
    PointerUp {
        /// Absolute x, 0..=65535.
        x: u16,
        /// Absolute y, 0..=65535.
        y: u16,
        /// DOM `MouseEvent.button` (0 = main).
        button: u8,
    },
    /// The wheel turned.
    Wheel {
        /// Horizontal delta.
        dx: i16,
        /// Vertical delta.
        dy: i16,
    },
    /// The whole state of one gamepad, sent whenever any of it changes.
    Gamepad {
        /// Gamepad API index, `0..MAX_GAMEPADS`.
        pad: u8,
        /// Pressed buttons, bit `i` = standard-mapping button `i` (see [`gamepad_button`]).
        buttons: u32,
        /// Left trigger, 0 (released) ..= 255 (fully pressed).
        left_trigger: u8,
        /// Right trigger, 0 (released) ..= 255 (fully pressed).
        right_trigger: u8,
        /// Left stick x, -32767 (left) ..= 32767 (right).
        left_x: i16,
        /// Left stick y, -32767 (up) ..= 32767 (down).
        left_y: i16,
        /// Right stick x, -32767 (left) ..= 32767 (right).
        right_x: i16,
        /// Right stick y, -32767 (up) ..= 32767 (down).
        right_y: i16,
    },
    /// A gamepad was disconnected; forget its state.
    GamepadGone {
        /// Gamepad API index, `0..MAX_GAMEPADS`.
        pad: u8,
    },
    /// Fingers touched down.
    TouchStart {
        /// The new touches (1..=10, distinct ids).
        touches: Vec<TouchPoint>,
    },
    /// Touching fingers moved.
    TouchMove {
        /// The moved touches (1..=10, distinct ids).
        touches: Vec<TouchPoint>,
    },
    /// Fingers lifted.
    TouchEnd {
        /// The lifted touches, at their last position (1..=10, distinct ids).
        touches: Vec<TouchPoint>,
    },
    /// Touches were taken away (e.g. by a system gesture); undo rather than act.
    TouchCancel {
        /// The cancelled touches (1..=10, distinct ids).
        touches: Vec<TouchPoint>,
    },
    /// The player's clipboard text, for the app to paste.
    Clipboard {
        /// UTF-8, at most [`MAX_CLIPBOARD_BYTES`].
        text: String,
    },
    /// The player locked the pointer to the picture, or let it go.
    PointerLock {
        /// True while locked: moves are relative.
        locked: bool,
    },
}

/// The host's acknowledgement: input `seq` is first visible in frame `frame_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct InputApplied {
    /// Sequence number of the input.
    pub seq: u32,
    /// Id of the first frame that reflects it.
    pub frame_id: u32,
    /// RTP timestamp (90 kHz) that frame was sent with, when it went out on RTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub rtp_timestamp: Option<u32>,
}

impl InputEvent {
    /// Encodes the event into its wire form; refuses values the decoder would
    /// reject (bad key codes, gamepad indices or touch lists).
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut w = Writer(Vec::with_capacity(24));
        let ty = match &self.kind {
            InputKind::KeyDown { .. } => KEY_DOWN,
            InputKind::KeyUp { .. } => KEY_UP,
            InputKind::PointerMove { .. } => POINTER_MOVE,
            InputKind::PointerDown { .. } => POINTER_DOWN,
            InputKind::PointerUp { .. } => POINTER_UP,
            InputKind::Wheel { .. } => WHEEL,
            InputKind::Gamepad { .. } => GAMEPAD,
            InputKind::GamepadGone { .. } => GAMEPAD_GONE,
            InputKind::TouchStart { .. } => TOUCH_START,
            InputKind::TouchMove { .. } => TOUCH_MOVE,
            InputKind::TouchEnd { .. } => TOUCH_END,
            InputKind::TouchCancel { .. } => TOUCH_CANCEL,
            InputKind::Clipboard { .. } => CLIPBOARD,
            InputKind::PointerLock { .. } => POINTER_LOCK,
        };
        w.u8(ty);
        w.u32(self.seq);
        match &self.kind {
            InputKind::KeyDown { code } | InputKind::KeyUp { code } => w.key_code(code)?,
            InputKind::PointerMove { x, y, dx, dy } => {
                w.u16(*x);
                w.u16(*y);
                w.i16(*dx);
                w.i16(*dy);
            }
            InputKind::PointerDown { x, y, button } | InputKind::PointerUp { x, y, button } => {
                w.u16(*x);
                w.u16(*y);
                w.u8(*button);
            }
            InputKind::Wheel { dx, dy } => {
                w.i16(*dx);
                w.i16(*dy);
            }
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
                w.u8(check_pad(*pad)?);
                w.u32(*buttons);
                w.u8(*left_trigger);
                w.u8(*right_trigger);
                for axis in [left_x, left_y, right_x, right_y] {
                    w.i16(*axis);
                }
            }
            InputKind::GamepadGone { pad } => w.u8(check_pad(*pad)?),
            InputKind::TouchStart { touches }
            | InputKind::TouchMove { touches }
            | InputKind::TouchEnd { touches }
            | InputKind::TouchCancel { touches } => w.touches(touches)?,
            InputKind::Clipboard { text } => w.text(text)?,
            InputKind::PointerLock { locked } => w.u8(u8::from(*locked)),
        }
        Ok(w.0)
    }

    /// Decodes one message; rejects unknown types, truncated or trailing
    /// bytes, key codes that are empty, too long or not printable ASCII,
    /// gamepad indices from [`MAX_GAMEPADS`] on, and touch lists that are
    /// empty, longer than [`MAX_TOUCHES`], or name an id twice or one from
    /// `MAX_TOUCHES` on, clipboard text longer than [`MAX_CLIPBOARD_BYTES`] or not
    /// UTF-8, and a pointer lock flag other than 0 or 1. Whatever it accepts, [`encode`](Self::encode) turns
    /// back into the same bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader(bytes);
        let ty = r.u8()?;
        let seq = r.u32()?;
        let kind = match ty {
            KEY_DOWN => InputKind::KeyDown { code: r.key_code()? },
            KEY_UP => InputKind::KeyUp { code: r.key_code()? },
            POINTER_MOVE => {
                InputKind::PointerMove { x: r.u16()?, y: r.u16()?, dx: r.i16()?, dy: r.i16()? }
            }
            POINTER_DOWN => InputKind::PointerDown { x: r.u16()?, y: r.u16()?, button: r.u8()? },
            POINTER_UP => InputKind::PointerUp { x: r.u16()?, y: r.u16()?, button: r.u8()? },
            WHEEL => InputKind::Wheel { dx: r.i16()?, dy: r.i16()? },
            GAMEPAD => InputKind::Gamepad {
                pad: check_pad(r.u8()?)?,
                buttons: r.u32()?,
                left_trigger: r.u8()?,
                right_trigger: r.u8()?,
                left_x: r.i16()?,
                left_y: r.i16()?,
                right_x: r.i16()?,
                right_y: r.i16()?,
            },
            GAMEPAD_GONE => InputKind::GamepadGone { pad: check_pad(r.u8()?)? },
            TOUCH_START => InputKind::TouchStart { touches: r.touches()? },
            TOUCH_MOVE => InputKind::TouchMove { touches: r.touches()? },
            TOUCH_END => InputKind::TouchEnd { touches: r.touches()? },
            TOUCH_CANCEL => InputKind::TouchCancel { touches: r.touches()? },
            CLIPBOARD => InputKind::Clipboard { text: r.text()? },
            POINTER_LOCK => InputKind::PointerLock {
                locked: match r.u8()? {
                    0 => false,
                    1 => true,
                    other => return Err(ProtocolError::BadPointerLock(other)),
                },
            },
            other => return Err(ProtocolError::UnknownInputType(other)),
        };
        r.finish()?;
        Ok(Self { seq, kind })
    }
}

impl InputApplied {
    /// Encodes the acknowledgement: `0x81` with an RTP timestamp, `0x80` without.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(13));
        w.u8(if self.rtp_timestamp.is_some() { INPUT_APPLIED_AT } else { INPUT_APPLIED });
        w.u32(self.seq);
        w.u32(self.frame_id);
        if let Some(rtp_timestamp) = self.rtp_timestamp {
            w.u32(rtp_timestamp);
        }
        w.0
    }

    /// Decodes an acknowledgement of either form.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader(bytes);
        let ty = r.u8()?;
        if ty != INPUT_APPLIED && ty != INPUT_APPLIED_AT {
            return Err(ProtocolError::UnknownInputType(ty));
        }
        let (seq, frame_id) = (r.u32()?, r.u32()?);
        let rtp_timestamp = if ty == INPUT_APPLIED_AT { Some(r.u32()?) } else { None };
        r.finish()?;
        Ok(Self { seq, frame_id, rtp_timestamp })
    }
}

fn valid_key_code(bytes: &[u8]) -> bool {
    (1..=MAX_KEY_CODE_LEN).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic())
}

fn check_pad(pad: u8) -> Result<u8, ProtocolError> {
    if pad < MAX_GAMEPADS { Ok(pad) } else { Err(ProtocolError::BadGamepadIndex(pad)) }
}

/// Checks a touch list: 1..=MAX_TOUCHES entries with distinct ids below MAX_TOUCHES.
fn check_touches(touches: &[TouchPoint]) -> Result<(), ProtocolError> {
    if touches.is_empty() || touches.len() > usize::from(MAX_TOUCHES) {
        return Err(ProtocolError::BadTouchList);
    }
    let mut seen = 0u16;
    for t in touches {
        if t.id >= MAX_TOUCHES || seen & (1 << t.id) != 0 {
            return Err(ProtocolError::BadTouchList);
        }
        seen |= 1 << t.id;
    }
    Ok(())
}

/// A little-endian writer of one message.
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn key_code(&mut self, code: &str) -> Result<(), ProtocolError> {
        let bytes = code.as_bytes();
        if !valid_key_code(bytes) {
            return Err(ProtocolError::BadKeyCode);
        }
        self.u8(bytes.len() as u8);
        self.0.extend_from_slice(bytes);
        Ok(())
    }
    fn text(&mut self, text: &str) -> Result<(), ProtocolError> {
        if text.len() > MAX_CLIPBOARD_BYTES {
            return Err(ProtocolError::BadClipboard);
        }
        self.u32(text.len() as u32);
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }
    fn touches(&mut self, touches: &[TouchPoint]) -> Result<(), ProtocolError> {
        check_touches(touches)?;
        self.u8(touches.len() as u8);
        for t in touches {
            self.u8(t.id);
            self.u16(t.x);
            self.u16(t.y);
        }
        Ok(())
    }
}

/// A bounds-checked little-endian reader over one message.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.0.len() < n {
            return Err(ProtocolError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ProtocolError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn i16(&mut self) -> Result<i16, ProtocolError> {
        Ok(i16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn key_code(&mut self) -> Result<String, ProtocolError> {
        let len = usize::from(self.u8()?);
        if len == 0 || len > MAX_KEY_CODE_LEN {
            return Err(ProtocolError::BadKeyCode);
        }
        let bytes = self.take(len)?;
        if !valid_key_code(bytes) {
            return Err(ProtocolError::BadKeyCode);
        }
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
    fn text(&mut self) -> Result<String, ProtocolError> {
        let len = self.u32()? as usize;
        if len > MAX_CLIPBOARD_BYTES {
            return Err(ProtocolError::BadClipboard);
        }
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError::BadClipboard)
    }
    fn touches(&mut self) -> Result<Vec<TouchPoint>, ProtocolError> {
        let n = self.u8()?;
        if n == 0 || n > MAX_TOUCHES {
            return Err(ProtocolError::BadTouchList);
        }
        let touches = (0..n)
            .map(|_| Ok(TouchPoint { id: self.u8()?, x: self.u16()?, y: self.u16()? }))
            .collect::<Result<Vec<_>, ProtocolError>>()?;
        check_touches(&touches)?;
        Ok(touches)
    }
    fn finish(self) -> Result<(), ProtocolError> {
        if self.0.is_empty() { Ok(()) } else { Err(ProtocolError::TrailingBytes(self.0.len())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_across_the_wrap() {
        assert!(seq_after(2, 1) && !seq_after(1, 2) && !seq_after(5, 5));
        assert!(seq_after(3, u32::MAX - 2), "after the wrap");
        assert!(!seq_after(u32::MAX - 2, 3));
    }

    fn touches(points: &[(u8, u16, u16)]) -> Vec<TouchPoint> {
        points.iter().map(|&(id, x, y)| TouchPoint { id, x, y }).collect()
    }

    fn every_kind() -> Vec<InputKind> {
        vec![
            InputKind::KeyDown { code: "KeyW".into() },
            InputKind::KeyUp { code: "ArrowRight".into() },
            InputKind::PointerMove { x: 65535, y: 0, dx: -32768, dy: 32767 },
            InputKind::PointerDown { x: 1, y: 2, button: 0 },
            InputKind::PointerUp { x: 3, y: 4, button: 2 },
            InputKind::Wheel { dx: -1, dy: 120 },
            InputKind::Gamepad {
                pad: 15,
                buttons: u32::MAX,
                left_trigger: 255,
                right_trigger: 1,
                left_x: -32768,
                left_y: 32767,
                right_x: 0,
                right_y: -1,
            },
            InputKind::GamepadGone { pad: 0 },
            InputKind::TouchStart { touches: touches(&[(0, 0, 65535)]) },
            InputKind::TouchMove { touches: touches(&[(9, 1, 2), (0, 3, 4), (5, 6, 7)]) },
            InputKind::TouchEnd { touches: touches(&[(1, 10, 20), (2, 30, 40)]) },
            InputKind::TouchCancel {
                touches: (0..MAX_TOUCHES).map(|id| TouchPoint { id, x: 7, y: 8 }).collect(),
            },
            InputKind::Clipboard { text: "héllo ✓".into() },
            InputKind::Clipboard { text: "x".repeat(MAX_CLIPBOARD_BYTES) },
            InputKind::PointerLock { locked: true },
            InputKind::PointerLock { locked: false },
        ]
    }

    #[test]
    fn round_trips_every_kind() {
        for (i, kind) in every_kind().into_iter().enumerate() {
            let event = InputEvent { seq: i as u32 + 1, kind };
            assert_eq!(InputEvent::decode(&event.encode().unwrap()).unwrap(), event);
        }
    }

    #[test]
    fn message_sizes_match_the_documented_table() {
        let size = |kind: InputKind| InputEvent { seq: 1, kind }.encode().unwrap().len();
        let kinds = every_kind();
        assert_eq!(size(kinds[2].clone()), 13, "PointerMove");
        assert_eq!(size(kinds[3].clone()), 10, "PointerDown");
        assert_eq!(size(kinds[5].clone()), 9, "Wheel");
        assert_eq!(size(kinds[6].clone()), 20, "Gamepad");
        assert_eq!(size(kinds[7].clone()), 6, "GamepadGone");
        assert_eq!(size(kinds[8].clone()), 11, "one touch");
        assert_eq!(size(kinds[11].clone()), 56, "ten touches");
        assert_eq!(size(kinds[13].clone()), 9 + MAX_CLIPBOARD_BYTES, "the longest clipboard");
        assert_eq!(size(kinds[14].clone()), 6, "PointerLock");
    }

    #[test]
    fn a_pointer_lock_flag_is_0_or_1() {
        let lock = |flag: u8| InputEvent::decode(&[POINTER_LOCK, 1, 0, 0, 0, flag]);
        assert_eq!(lock(1).unwrap().kind, InputKind::PointerLock { locked: true });
        assert_eq!(lock(2), Err(ProtocolError::BadPointerLock(2)));
        assert_eq!(InputEvent::decode(&[POINTER_LOCK, 1, 0, 0, 0]), Err(ProtocolError::Truncated));
    }

    #[test]
    fn rejects_clipboard_text_too_long_or_not_utf8() {
        let long = InputKind::Clipboard { text: "x".repeat(MAX_CLIPBOARD_BYTES + 1) };
        assert_eq!(InputEvent { seq: 1, kind: long }.encode(), Err(ProtocolError::BadClipboard));
        let message = |len: u32, text: &[u8]| {
            let mut bytes = vec![CLIPBOARD, 1, 0, 0, 0];
            bytes.extend(len.to_le_bytes());
            bytes.extend(text);
            bytes
        };
        let cases = [
            (message(65_537, &[b'x'; 65_537]), ProtocolError::BadClipboard),
            (message(u32::MAX, b""), ProtocolError::BadClipboard),
            (message(2, &[0xc3, 0x28]), ProtocolError::BadClipboard),
            (message(3, b"ab"), ProtocolError::Truncated),
            (message(1, b"ab"), ProtocolError::TrailingBytes(1)),
        ];
        for (bytes, error) in cases {
            assert_eq!(InputEvent::decode(&bytes), Err(error));
        }
        assert!(InputEvent::decode(&message(0, b"")).is_ok(), "an empty clipboard");
    }

    #[test]
    fn rejects_bad_gamepad_indices() {
        let gone = InputEvent { seq: 1, kind: InputKind::GamepadGone { pad: MAX_GAMEPADS } };
        assert_eq!(gone.encode(), Err(ProtocolError::BadGamepadIndex(16)));
        assert_eq!(
            InputEvent::decode(&[GAMEPAD_GONE, 1, 0, 0, 0, 16]),
            Err(ProtocolError::BadGamepadIndex(16))
        );
        let mut state = vec![GAMEPAD, 1, 0, 0, 0, 0xff];
        state.extend([0; 14]);
        assert_eq!(InputEvent::decode(&state), Err(ProtocolError::BadGamepadIndex(0xff)));
        state[5] = 3;
        assert!(InputEvent::decode(&state).is_ok());
    }

    #[test]
    fn rejects_bad_touch_lists() {
        let bad = [
            vec![],
            touches(&[(10, 0, 0)]),
            touches(&[(1, 0, 0), (1, 5, 5)]),
            (0..=MAX_TOUCHES).map(|id| TouchPoint { id: id % 10, x: 0, y: 0 }).collect(),
        ];
        for touches in bad {
            let event = InputEvent { seq: 1, kind: InputKind::TouchMove { touches } };
            assert_eq!(event.encode(), Err(ProtocolError::BadTouchList), "{event:?}");
        }
        let head = [TOUCH_START, 1, 0, 0, 0];
        let decode = |rest: &[u8]| InputEvent::decode(&[&head[..], rest].concat());
        assert_eq!(decode(&[0]), Err(ProtocolError::BadTouchList), "count 0");
        assert_eq!(decode(&[11]), Err(ProtocolError::BadTouchList), "count 11");
        assert_eq!(decode(&[1, 10, 0, 0, 0, 0]), Err(ProtocolError::BadTouchList), "id 10");
        assert_eq!(
            decode(&[2, 3, 0, 0, 0, 0, 3, 1, 1, 1, 1]),
            Err(ProtocolError::BadTouchList),
            "duplicate id"
        );
        assert_eq!(decode(&[2, 3, 0, 0, 0, 0]), Err(ProtocolError::Truncated), "one of two");
        assert_eq!(decode(&[1, 3, 0, 0, 0, 0, 0]), Err(ProtocolError::TrailingBytes(1)));
    }

    /// splitmix64: a deterministic byte source, so a failure names its case.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }
    }

    /// Decodes thousands of pseudo-random messages (random types and lengths
    /// near the real ones, plus mutations of valid messages) without a
    /// panic; whatever decodes must re-encode to the very same bytes.
    #[test]
    fn pseudo_random_bytes_never_panic_and_accepted_ones_round_trip() {
        let valid: Vec<Vec<u8>> = every_kind()
            .into_iter()
            .map(|kind| InputEvent { seq: 9, kind }.encode().unwrap())
            .collect();
        let mut rng = Rng(0x6772_6964_706c_6179);
        let mut accepted = 0;
        for case in 0..20_000 {
            let bytes: Vec<u8> = if case % 2 == 0 {
                let len = rng.below(64);
                let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if let Some(first) = b.first_mut() {
                    *first %= 0x0e; // mostly real types
                }
                b
            } else {
                let mut b = valid[rng.below(valid.len() as u64)].clone();
                match rng.below(4) {
                    0 => b.truncate(rng.below(b.len() as u64 + 1)),
                    1 => b.push(rng.next() as u8),
                    _ => {
                        let at = rng.below(b.len() as u64);
                        b[at] ^= 1 << rng.below(8);
                    }
                }
                b
            };
            if let Ok(event) = InputEvent::decode(&bytes) {
                accepted += 1;
                assert_eq!(event.encode().as_deref(), Ok(&bytes[..]), "case {case}: {bytes:02x?}");
            }
            let _ = InputApplied::decode(&bytes);
        }
        assert!(accepted > 1_000, "only {accepted} cases decoded: the generator is too random");
    }

    #[test]
    fn applied_round_trips_in_both_forms_and_rejects_other_types() {
        let applied = InputApplied { seq: 7, frame_id: 99, rtp_timestamp: None };
        assert_eq!(applied.encode().len(), 9);
        assert_eq!(InputApplied::decode(&applied.encode()).unwrap(), applied);
        let at = InputApplied { rtp_timestamp: Some(0xdead_beef), ..applied };
        assert_eq!(at.encode().len(), 13);
        assert_eq!(InputApplied::decode(&at.encode()).unwrap(), at);
        assert!(InputApplied::decode(&[0x01, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert_eq!(InputApplied::decode(&applied.encode()[..8]), Err(ProtocolError::Truncated));
        assert_eq!(InputApplied::decode(&at.encode()[..12]), Err(ProtocolError::Truncated));
        let mut long = applied.encode();
        long.push(0);
        assert_eq!(InputApplied::decode(&long), Err(ProtocolError::TrailingBytes(1)));
    }

    #[test]
    fn rejects_bad_key_codes() {
        assert_eq!(InputEvent::decode(&[1, 1, 0, 0, 0, 0]), Err(ProtocolError::BadKeyCode));
        assert_eq!(InputEvent::decode(&[1, 1, 0, 0, 0, 1, 0xff]), Err(ProtocolError::BadKeyCode));
        let mut long = vec![1, 1, 0, 0, 0, 33];
        long.extend(std::iter::repeat_n(b'a', 33));
        assert_eq!(InputEvent::decode(&long), Err(ProtocolError::BadKeyCode));
        let too_long = InputEvent { seq: 1, kind: InputKind::KeyDown { code: "a".repeat(33) } };
        assert_eq!(too_long.encode(), Err(ProtocolError::BadKeyCode));
    }
}
