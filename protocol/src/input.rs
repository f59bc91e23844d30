//! Input events from the player: a compact binary codec carried on the WebRTC
//! "input" data channel.
//!
//! Every client message starts with a type byte and a little-endian `u32`
//! sequence number; the host answers each with [`InputApplied`], naming the
//! first frame that reflects it (the basis of the click-to-photon probe).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ProtocolError;

/// Longest `KeyboardEvent.code` accepted, in bytes.
pub const MAX_KEY_CODE_LEN: usize = 32;

const KEY_DOWN: u8 = 0x01;
const KEY_UP: u8 = 0x02;
const POINTER_MOVE: u8 = 0x03;
const POINTER_DOWN: u8 = 0x04;
const POINTER_UP: u8 = 0x05;
const WHEEL: u8 = 0x06;
const INPUT_APPLIED: u8 = 0x80;

/// One input event with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct InputEvent {
    /// Sequence number, counted per session from 1.
    pub seq: u32,
    /// What happened.
    pub kind: InputKind,
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
}

/// The host's acknowledgement: input `seq` is first visible in frame `frame_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct InputApplied {
    /// Sequence number of the input.
    pub seq: u32,
    /// Id of the first frame that reflects it.
    pub frame_id: u32,
}

impl InputEvent {
    /// Encodes the event into its wire form; refuses key codes the decoder
    /// would reject.
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut out = Vec::with_capacity(16);
        let (ty, payload): (u8, Vec<u8>) = match &self.kind {
            InputKind::KeyDown { code } => (KEY_DOWN, key_payload(code)?),
            InputKind::KeyUp { code } => (KEY_UP, key_payload(code)?),
            InputKind::PointerMove { x, y, dx, dy } => (
                POINTER_MOVE,
                [x.to_le_bytes(), y.to_le_bytes(), dx.to_le_bytes(), dy.to_le_bytes()].concat(),
            ),
            InputKind::PointerDown { x, y, button } => {
                (POINTER_DOWN, button_payload(*x, *y, *button))
            }
            InputKind::PointerUp { x, y, button } => (POINTER_UP, button_payload(*x, *y, *button)),
            InputKind::Wheel { dx, dy } => (WHEEL, [dx.to_le_bytes(), dy.to_le_bytes()].concat()),
        };
        out.push(ty);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// Decodes one message; rejects unknown types, truncated or trailing bytes
    /// and key codes that are empty, too long or not ASCII.
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
            other => return Err(ProtocolError::UnknownInputType(other)),
        };
        r.finish()?;
        Ok(Self { seq, kind })
    }
}

impl InputApplied {
    /// Encodes the acknowledgement into its wire form.
    pub fn encode(&self) -> [u8; 9] {
        let mut out = [0u8; 9];
        out[0] = INPUT_APPLIED;
        out[1..5].copy_from_slice(&self.seq.to_le_bytes());
        out[5..9].copy_from_slice(&self.frame_id.to_le_bytes());
        out
    }

    /// Decodes an acknowledgement.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader(bytes);
        match r.u8()? {
            INPUT_APPLIED => {}
            other => return Err(ProtocolError::UnknownInputType(other)),
        }
        let applied = Self { seq: r.u32()?, frame_id: r.u32()? };
        r.finish()?;
        Ok(applied)
    }
}

fn valid_key_code(bytes: &[u8]) -> bool {
    (1..=MAX_KEY_CODE_LEN).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic())
}

fn key_payload(code: &str) -> Result<Vec<u8>, ProtocolError> {
    let bytes = code.as_bytes();
    if !valid_key_code(bytes) {
        return Err(ProtocolError::BadKeyCode);
    }
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
    Ok(out)
}

fn button_payload(x: u16, y: u16, button: u8) -> Vec<u8> {
    let mut out = [x.to_le_bytes(), y.to_le_bytes()].concat();
    out.push(button);
    out
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
    fn finish(self) -> Result<(), ProtocolError> {
        if self.0.is_empty() { Ok(()) } else { Err(ProtocolError::TrailingBytes(self.0.len())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        let kinds = [
            InputKind::KeyDown { code: "KeyW".into() },
            InputKind::KeyUp { code: "ArrowRight".into() },
            InputKind::PointerMove { x: 65535, y: 0, dx: -32768, dy: 32767 },
            InputKind::PointerDown { x: 1, y: 2, button: 0 },
            InputKind::PointerUp { x: 3, y: 4, button: 2 },
            InputKind::Wheel { dx: -1, dy: 120 },
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            let event = InputEvent { seq: i as u32 + 1, kind };
            assert_eq!(InputEvent::decode(&event.encode().unwrap()).unwrap(), event);
        }
    }

    #[test]
    fn applied_round_trips_and_rejects_other_types() {
        let applied = InputApplied { seq: 7, frame_id: 99 };
        assert_eq!(InputApplied::decode(&applied.encode()).unwrap(), applied);
        assert!(InputApplied::decode(&[0x01, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert_eq!(InputApplied::decode(&applied.encode()[..8]), Err(ProtocolError::Truncated));
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
