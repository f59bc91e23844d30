//! The player's input into a session's display through XTEST: keys by
//! physical key code, the pointer at absolute positions (or moved by relative
//! motion while the player has locked it), buttons, the wheel as buttons 4 to 7,
//! and the first finger of a touch as the main button.

use gridplay_protocol::input::{InputEvent, InputKind, TouchPoint, seq_after};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, KEY_PRESS_EVENT, KEY_RELEASE_EVENT,
    MOTION_NOTIFY_EVENT,
};
use x11rb::protocol::xtest::ConnectionExt as _;

use super::keymap::x_keycode;
use super::screen::Screen;
use crate::HostError;

/// One XTEST fake event: its type, detail (key code or button; for motion, 1 when
/// relative) and, for motion, the position or the distance moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fake {
    kind: u8,
    detail: u8,
    x: i16,
    y: i16,
}

/// Wheel delta (in DOM pixels) one button click of the wheel stands for.
const WHEEL_STEP: i32 = 50;
/// Most wheel clicks one event turns into.
const MAX_WHEEL_CLICKS: i32 = 10;

/// What one session's input translation remembers: the finger acting as the
/// pointer and whether the player has locked the pointer.
#[derive(Debug, Default)]
pub(super) struct Translator {
    /// The finger acting as the pointer, while it is down.
    primary: Option<u8>,
    /// The `seq` of the newest pointer lock change and whether it locked.
    lock: Option<(u32, bool)>,
}

impl Translator {
    /// The fake events for one input on a `width`×`height` screen.
    pub(super) fn translate(&mut self, event: &InputEvent, size: (u32, u32)) -> Vec<Fake> {
        let at = |x: u16, y: u16| {
            let scale = |v: u16, side: u32| {
                (u32::from(v) * side.saturating_sub(1) / 65535).min(i16::MAX as u32) as i16
            };
            (scale(x, size.0), scale(y, size.1))
        };
        let motion = |(x, y): (i16, i16)| Fake { kind: MOTION_NOTIFY_EVENT, detail: 0, x, y };
        let button = |kind, detail| Fake { kind, detail, x: 0, y: 0 };
        // While locked the pointer has no position of the player's: it moves by the
        // relative motion and clicks where it is.
        let locked = self.lock.is_some_and(|(_, locked)| locked);
        let click = |kind, x, y, b| match x_button(b) {
            Some(b) if locked => vec![button(kind, b)],
            Some(b) => vec![motion(at(x, y)), button(kind, b)],
            None => Vec::new(),
        };
        let key =
            |kind, code: &str| x_keycode(code).map(|detail| Fake { kind, detail, x: 0, y: 0 });
        match &event.kind {
            InputKind::KeyDown { code } => key(KEY_PRESS_EVENT, code).into_iter().collect(),
            InputKind::KeyUp { code } => key(KEY_RELEASE_EVENT, code).into_iter().collect(),
            InputKind::PointerMove { dx, dy, .. } if locked => {
                vec![Fake { kind: MOTION_NOTIFY_EVENT, detail: 1, x: *dx, y: *dy }]
            }
            InputKind::PointerMove { x, y, .. } => vec![motion(at(*x, *y))],
            InputKind::PointerDown { x, y, button: b } => click(BUTTON_PRESS_EVENT, *x, *y, *b),
            InputKind::PointerUp { x, y, button: b } => click(BUTTON_RELEASE_EVENT, *x, *y, *b),
            InputKind::PointerLock { locked } => {
                // Only the newest change counts: the input channel is unordered.
                if self.lock.is_none_or(|(seq, _)| seq_after(event.seq, seq)) {
                    self.lock = Some((event.seq, *locked));
                }
                Vec::new()
            }
            InputKind::Wheel { dx, dy } => {
                let clicks = |delta: i16, back: u8, forward: u8| {
                    let n =
                        (i32::from(delta) / WHEEL_STEP).clamp(-MAX_WHEEL_CLICKS, MAX_WHEEL_CLICKS);
                    let n = if n == 0 && delta != 0 { i32::from(delta).signum() } else { n };
                    let b = if n < 0 { back } else { forward };
                    (0..n.abs()).flat_map(move |_| {
                        [button(BUTTON_PRESS_EVENT, b), button(BUTTON_RELEASE_EVENT, b)]
                    })
                };
                clicks(*dy, 4, 5).chain(clicks(*dx, 6, 7)).collect()
            }
            InputKind::TouchStart { touches } => match (self.primary, touches.first()) {
                (None, Some(t)) => {
                    self.primary = Some(t.id);
                    vec![motion(at(t.x, t.y)), button(BUTTON_PRESS_EVENT, 1)]
                }
                _ => Vec::new(),
            },
            InputKind::TouchMove { touches } => {
                self.primary_of(touches).map(|t| motion(at(t.x, t.y))).into_iter().collect()
            }
            InputKind::TouchEnd { touches } | InputKind::TouchCancel { touches } => {
                match self.primary_of(touches) {
                    Some(t) => {
                        self.primary = None;
                        vec![motion(at(t.x, t.y)), button(BUTTON_RELEASE_EVENT, 1)]
                    }
                    None => Vec::new(),
                }
            }
            // Gamepads are the app's own devices (see `gamepads`); the clipboard is the clipboard's.
            InputKind::Gamepad { .. }
            | InputKind::GamepadGone { .. }
            | InputKind::Clipboard { .. } => Vec::new(),
        }
    }

    fn primary_of<'a>(&self, touches: &'a [TouchPoint]) -> Option<&'a TouchPoint> {
        touches.iter().find(|t| Some(t.id) == self.primary)
    }
}

/// The X button of DOM `MouseEvent.button`: main, middle, secondary, back, forward.
fn x_button(dom: u8) -> Option<u8> {
    match dom {
        0 => Some(1),
        1 => Some(2),
        2 => Some(3),
        3 => Some(8),
        4 => Some(9),
        _ => None,
    }
}

impl Screen {
    /// Sends fake events to the display.
    pub(super) fn inject(&self, fakes: &[Fake]) -> Result<(), HostError> {
        let fail = |e: &dyn std::fmt::Display| HostError::App(format!("X11 input: {e}"));
        for fake in fakes {
            self.conn
                .xtest_fake_input(fake.kind, fake.detail, 0, self.root, fake.x, fake.y, 0)
                .map_err(|e| fail(&e))?;
        }
        self.conn.flush().map_err(|e| fail(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: InputKind) -> InputEvent {
        InputEvent { seq: 1, kind }
    }

    fn touch(id: u8, x: u16, y: u16) -> TouchPoint {
        TouchPoint { id, x, y }
    }

    #[test]
    fn keys_buttons_and_wheel_become_xtest_events() {
        let mut t = Translator::default();
        let size = (1280, 720);
        let down = t.translate(&event(InputKind::KeyDown { code: "KeyA".into() }), size);
        assert_eq!(down, [Fake { kind: KEY_PRESS_EVENT, detail: 38, x: 0, y: 0 }]);
        assert!(t.translate(&event(InputKind::KeyDown { code: "Bogus".into() }), size).is_empty());
        let click = t.translate(&event(InputKind::PointerDown { x: 65535, y: 0, button: 2 }), size);
        assert_eq!(click[0], Fake { kind: MOTION_NOTIFY_EVENT, detail: 0, x: 1279, y: 0 });
        assert_eq!(click[1].detail, 3, "the secondary button is X button 3");
        let wheel = t.translate(&event(InputKind::Wheel { dx: 0, dy: -120 }), size);
        assert_eq!(wheel.len(), 4, "two clicks up, each a press and a release");
        assert!(wheel.iter().all(|f| f.detail == 4));
        let nudge = t.translate(&event(InputKind::Wheel { dx: 3, dy: 0 }), size);
        assert_eq!(nudge.iter().map(|f| f.detail).collect::<Vec<_>>(), [7, 7]);
    }

    #[test]
    fn a_locked_pointer_moves_by_its_motion_and_clicks_where_it_is() {
        let mut t = Translator::default();
        let size = (1280, 720);
        let at = |seq, kind| InputEvent { seq, kind };
        let lock = |seq, locked| at(seq, InputKind::PointerLock { locked });
        let moved = |t: &mut Translator, seq| {
            t.translate(&at(seq, InputKind::PointerMove { x: 0, y: 65535, dx: -7, dy: 9 }), size)
        };
        assert_eq!(moved(&mut t, 1), [Fake { kind: MOTION_NOTIFY_EVENT, detail: 0, x: 0, y: 719 }]);
        assert!(t.translate(&lock(2, true), size).is_empty());
        assert_eq!(moved(&mut t, 3), [Fake { kind: MOTION_NOTIFY_EVENT, detail: 1, x: -7, y: 9 }]);
        let click = t.translate(&at(4, InputKind::PointerDown { x: 9, y: 9, button: 0 }), size);
        assert_eq!(click, [Fake { kind: BUTTON_PRESS_EVENT, detail: 1, x: 0, y: 0 }]);
        // A release that arrives after a newer lock is stale, and changes nothing.
        t.translate(&lock(6, false), size);
        t.translate(&lock(5, true), size);
        assert_eq!(moved(&mut t, 7)[0].detail, 0, "absolute again");
    }

    #[test]
    fn the_first_finger_is_the_pointer() {
        let mut t = Translator::default();
        let size = (720, 1280);
        let start =
            t.translate(&event(InputKind::TouchStart { touches: vec![touch(5, 0, 65535)] }), size);
        assert_eq!(start[1], Fake { kind: BUTTON_PRESS_EVENT, detail: 1, x: 0, y: 0 });
        assert_eq!((start[0].x, start[0].y), (0, 1279));
        let second =
            t.translate(&event(InputKind::TouchStart { touches: vec![touch(6, 1, 1)] }), size);
        assert!(second.is_empty(), "a second finger does not press again");
        let moved =
            t.translate(&event(InputKind::TouchMove { touches: vec![touch(6, 9, 9)] }), size);
        assert!(moved.is_empty(), "only the first finger moves the pointer");
        let end =
            t.translate(&event(InputKind::TouchEnd { touches: vec![touch(5, 65535, 0)] }), size);
        assert_eq!(end[1].kind, BUTTON_RELEASE_EVENT);
        assert!(t.primary.is_none());
    }
}
