//! Orbit, the built-in game: a yellow square the player steers over an
//! animated background of orbiting shapes, with keyboard, mouse, gamepads or
//! touch. The phone app is the same game at a portrait size.
//!
//! The game is pure and sans-I/O: it never reads a clock. Feed it input with
//! [`GameState::apply`], move time on with [`GameState::advance`], and hand
//! [`GameState::scene`] to the renderer. It knows nothing about Vulkan.
//!
//! Rules (the browser end-to-end tests rely on them):
//! - The player is a solid square of colour [`PLAYER_RGB`], side
//!   [`PLAYER_SIZE`] of the frame height, starting at the centre.
//! - While held, the arrow keys and WASD move it [`PLAYER_SPEED`] frames per
//!   second along each axis (y grows downward); the centre clamps to `[0, 1]`.
//! - A main-button pointer press moves it to the pointer at once, and
//!   dragging with that button held keeps it under the pointer.
//! - Gamepads: the left stick (past a [`STICK_DEAD_ZONE`], full speed at full
//!   tilt) and the d-pad move it like the keys; pressing A (the south button)
//!   puts it back at the centre. Every connected pad steers; all the inputs
//!   together move it at most [`PLAYER_SPEED`] along each axis.
//! - Touch: the first finger down moves it to the finger at once and drags it
//!   while it moves; other fingers do not steer. A two-finger tap (two
//!   fingers down, neither moving more than [`TAP_SLOP`], all up within
//!   [`TAP_TIME`] of the first) toggles a big player, side
//!   [`PLAYER_SIZE_BIG`], and leaves it where it was before the tap. A
//!   cancelled touch puts the player back where the gesture found it.
//! - Space makes the player hop: it rises by up to [`HOP_HEIGHT`] and lands where
//!   it was after [`HOP_TIME`], and the jump is heard (see `sound`).
//! - Nothing else on screen is yellow-ish: every other pixel has blue >= 100
//!   or red < 150.

use std::time::Duration;

use gridplay_protocol::input::{
    InputEvent, InputKind, MAX_GAMEPADS, MAX_TOUCHES, gamepad_button, seq_after,
};

use super::sound::SoundCue;

/// The player's colour, RGB.
pub const PLAYER_RGB: [u8; 3] = [255, 210, 0];
/// The player's side as a fraction of the frame height.
pub const PLAYER_SIZE: f32 = 0.08;
/// The player's side after a two-finger tap, as a fraction of the frame height.
pub const PLAYER_SIZE_BIG: f32 = 0.16;
/// Player speed in frame widths (horizontal) or frame heights (vertical) per second.
pub const PLAYER_SPEED: f64 = 0.5;
/// Number of obstacles orbiting the centre.
pub const OBSTACLES: u32 = 8;
/// Stick tilt (0..1) below which a gamepad stick counts as centred.
pub const STICK_DEAD_ZONE: f64 = 0.2;
/// Longest two-finger tap, from the first finger down to the last one up.
pub const TAP_TIME: Duration = Duration::from_millis(300);
/// Farthest a finger may move (in frame fractions, per axis) and still tap.
pub const TAP_SLOP: f64 = 0.03;
/// How high a hop takes the player, in frame heights.
pub const HOP_HEIGHT: f64 = 0.1;
/// How long a hop lasts.
pub const HOP_TIME: Duration = Duration::from_millis(300);
/// The key that jumps, by DOM `KeyboardEvent.code`.
const JUMP_KEY: &str = "Space";

/// What the renderer draws for one frame: plain data, no behaviour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scene {
    /// Game time in seconds; drives the background and the obstacles.
    pub time_s: f32,
    /// Player centre x, normalised 0..1 across the frame (0 = left).
    pub player_x: f32,
    /// Player centre y, normalised 0..1 down the frame (0 = top).
    pub player_y: f32,
    /// Player side as a fraction of the frame height.
    pub player_size: f32,
    /// Frame width divided by frame height.
    pub aspect: f32,
    /// Number of obstacles to draw.
    pub obstacles: u32,
}

/// Movement keys, by DOM `KeyboardEvent.code`, and the direction each drives.
const KEYS: [(&str, Dir); 8] = [
    ("ArrowLeft", Dir::Left),
    ("ArrowRight", Dir::Right),
    ("ArrowUp", Dir::Up),
    ("ArrowDown", Dir::Down),
    ("KeyA", Dir::Left),
    ("KeyD", Dir::Right),
    ("KeyW", Dir::Up),
    ("KeyS", Dir::Down),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Left,
    Right,
    Up,
    Down,
}

/// Main pointer button (`MouseEvent.button == 0`).
const MAIN_BUTTON: u8 = 0;

/// The latest snapshot of one gamepad.
#[derive(Debug, Clone, Copy)]
struct Pad {
    /// Sequence number of the snapshot, to drop older ones arriving late.
    seq: u32,
    buttons: u32,
    /// Left stick, -1..=1 each axis (y down).
    stick: (f64, f64),
}

impl Pad {
    /// The velocity this pad asks for, -1..=1 along each axis.
    fn velocity(&self) -> (f64, f64) {
        let (x, y) = self.stick;
        let tilt = x.hypot(y);
        let (mut vx, mut vy) = if tilt <= STICK_DEAD_ZONE {
            (0.0, 0.0)
        } else {
            let scale = ((tilt - STICK_DEAD_ZONE) / (1.0 - STICK_DEAD_ZONE)).min(1.0) / tilt;
            (x * scale, y * scale)
        };
        let pressed = |bit: u32| f64::from(u8::from(self.buttons & bit != 0));
        vx += pressed(gamepad_button::DPAD_RIGHT) - pressed(gamepad_button::DPAD_LEFT);
        vy += pressed(gamepad_button::DPAD_DOWN) - pressed(gamepad_button::DPAD_UP);
        (vx, vy)
    }
}

/// One touch gesture: from the first finger down to the last one up.
#[derive(Debug, Clone, Copy)]
struct Gesture {
    /// Game time of the first finger down.
    started: Duration,
    /// Where the player was before the gesture moved it.
    before: (f64, f64),
    /// The finger that steers, until it lifts.
    primary: Option<u8>,
    /// Most fingers down at once.
    most_fingers: usize,
    /// Whether a finger moved beyond [`TAP_SLOP`].
    moved: bool,
    /// Whether a finger was cancelled.
    cancelled: bool,
}

/// One finger on the screen.
#[derive(Debug, Clone, Copy)]
struct Finger {
    start: (f64, f64),
}

/// The whole state of one game of Orbit.
#[derive(Debug, Clone)]
pub struct GameState {
    width: u32,
    height: u32,
    elapsed: Duration,
    x: f64,
    y: f64,
    /// Whether each key of [`KEYS`] is held, by index.
    held: [bool; KEYS.len()],
    dragging: bool,
    pads: [Option<Pad>; MAX_GAMEPADS as usize],
    fingers: [Option<Finger>; MAX_TOUCHES as usize],
    gesture: Option<Gesture>,
    big: bool,
    /// The speed the held keys and sticks ask for, 0..=1 of [`PLAYER_SPEED`].
    speed: f64,
    /// Jumps so far, and when the latest started.
    jumps: u64,
    hop_started: Option<Duration>,
}

impl GameState {
    /// A new game for a `width` x `height` frame, player at the centre, time zero.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width: width.max(1),
            height: height.max(1),
            elapsed: Duration::ZERO,
            x: 0.5,
            y: 0.5,
            held: [false; KEYS.len()],
            dragging: false,
            pads: [None; MAX_GAMEPADS as usize],
            fingers: [None; MAX_TOUCHES as usize],
            gesture: None,
            big: false,
            speed: 0.0,
            jumps: 0,
            hop_started: None,
        }
    }

    /// Applies one input event at the current game time. Key and stick
    /// changes take effect from the next [`advance`](Self::advance); pointer
    /// presses, touches and the A button move the player at once. Unknown
    /// keys, other buttons and the wheel are ignored.
    pub fn apply(&mut self, event: &InputEvent) {
        match &event.kind {
            InputKind::KeyDown { code } if code == JUMP_KEY => {
                self.jumps += 1;
                self.hop_started = Some(self.elapsed);
            }
            InputKind::KeyDown { code } => self.set_key(code, true),
            InputKind::KeyUp { code } => self.set_key(code, false),
            InputKind::PointerDown { x, y, button } if *button == MAIN_BUTTON => {
                self.dragging = true;
                self.move_to(*x, *y);
            }
            InputKind::PointerUp { button, .. } if *button == MAIN_BUTTON => {
                self.dragging = false;
            }
            InputKind::PointerMove { x, y, .. } if self.dragging => self.move_to(*x, *y),
            InputKind::Gamepad { pad, buttons, left_x, left_y, .. } => {
                let axis = |v: i16| (f64::from(v) / 32767.0).clamp(-1.0, 1.0);
                let stick = (axis(*left_x), axis(*left_y));
                self.gamepad(*pad, Pad { seq: event.seq, buttons: *buttons, stick });
            }
            // A pad that is gone is a pad at rest; keeping its `seq` drops
            // snapshots that were sent before it went but arrive after.
            InputKind::GamepadGone { pad } => {
                self.gamepad(*pad, Pad { seq: event.seq, buttons: 0, stick: (0.0, 0.0) });
            }
            InputKind::TouchStart { touches } => {
                for t in touches {
                    self.touch_start(t.id, t.x, t.y);
                }
            }
            InputKind::TouchMove { touches } => {
                for t in touches {
                    self.touch_move(t.id, t.x, t.y);
                }
            }
            InputKind::TouchEnd { touches } => {
                for t in touches {
                    self.touch_lift(t.id, false);
                }
            }
            InputKind::TouchCancel { touches } => {
                for t in touches {
                    self.touch_lift(t.id, true);
                }
            }
            _ => {}
        }
    }

    /// Moves game time on by `dt`, moving the player by the keys, sticks and
    /// d-pads held.
    pub fn advance(&mut self, dt: Duration) {
        self.elapsed += dt;
        let secs = dt.as_secs_f64();
        let axis = |neg: Dir, pos: Dir| -> f64 {
            f64::from(u8::from(self.is_held(pos))) - f64::from(u8::from(self.is_held(neg)))
        };
        let (mut vx, mut vy) = (axis(Dir::Left, Dir::Right), axis(Dir::Up, Dir::Down));
        for pad in self.pads.iter().flatten() {
            let (px, py) = pad.velocity();
            vx += px;
            vy += py;
        }
        let (vx, vy) = (vx.clamp(-1.0, 1.0), vy.clamp(-1.0, 1.0));
        self.speed = vx.abs().max(vy.abs());
        let (vx, vy) = (vx * PLAYER_SPEED, vy * PLAYER_SPEED);
        self.x = (self.x + vx * secs).clamp(0.0, 1.0);
        self.y = (self.y + vy * secs).clamp(0.0, 1.0);
    }

    /// The frame to draw now.
    pub fn scene(&self) -> Scene {
        Scene {
            time_s: self.elapsed.as_secs_f32(),
            player_x: self.x as f32,
            player_y: (self.y - self.hop()).max(0.0) as f32,
            player_size: if self.big { PLAYER_SIZE_BIG } else { PLAYER_SIZE },
            aspect: self.width as f32 / self.height as f32,
            obstacles: OBSTACLES,
        }
    }

    /// The player's centre, normalised 0..1 (x right, y down).
    pub fn player(&self) -> (f64, f64) {
        (self.x, self.y)
    }

    /// Game time so far.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Frame size in pixels, as given to [`new`](Self::new).
    pub fn frame_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// What the game wants heard now.
    pub fn sound_cue(&self) -> SoundCue {
        SoundCue { speed: self.speed, pan: self.x, jumps: self.jumps }
    }

    /// How high the player is off its place now: a parabola over [`HOP_TIME`].
    fn hop(&self) -> f64 {
        let Some(started) = self.hop_started else { return 0.0 };
        let t = (self.elapsed - started).as_secs_f64() / HOP_TIME.as_secs_f64();
        if t >= 1.0 { 0.0 } else { 4.0 * HOP_HEIGHT * t * (1.0 - t) }
    }

    fn set_key(&mut self, code: &str, down: bool) {
        if let Some(i) = KEYS.iter().position(|(k, _)| *k == code) {
            self.held[i] = down;
        }
    }

    fn is_held(&self, dir: Dir) -> bool {
        KEYS.iter().zip(self.held).any(|((_, d), held)| held && *d == dir)
    }

    fn move_to(&mut self, x: u16, y: u16) {
        (self.x, self.y) = normalised(x, y);
    }

    /// Takes a pad's snapshot unless a newer one was applied already (the
    /// input channel is unordered); a fresh press of A re-centres the player.
    fn gamepad(&mut self, pad: u8, snapshot: Pad) {
        let Some(slot) = self.pads.get_mut(usize::from(pad)) else { return };
        let previous = slot.map_or(0, |p| p.buttons);
        if slot.is_some_and(|p| !seq_after(snapshot.seq, p.seq)) {
            return;
        }
        *slot = Some(snapshot);
        if snapshot.buttons & !previous & gamepad_button::SOUTH != 0 {
            (self.x, self.y) = (0.5, 0.5);
        }
    }

    fn touch_start(&mut self, id: u8, x: u16, y: u16) {
        let Some(slot) = self.fingers.get_mut(usize::from(id)) else { return };
        let at = normalised(x, y);
        *slot = Some(Finger { start: at });
        let down = self.fingers.iter().flatten().count();
        match &mut self.gesture {
            Some(g) => g.most_fingers = g.most_fingers.max(down),
            None => {
                self.gesture = Some(Gesture {
                    started: self.elapsed,
                    before: (self.x, self.y),
                    primary: Some(id),
                    most_fingers: down,
                    moved: false,
                    cancelled: false,
                });
                (self.x, self.y) = at;
            }
        }
    }

    fn touch_move(&mut self, id: u8, x: u16, y: u16) {
        let Some(Some(finger)) = self.fingers.get(usize::from(id)) else { return };
        let at = normalised(x, y);
        let Some(g) = &mut self.gesture else { return };
        if (at.0 - finger.start.0).abs() > TAP_SLOP || (at.1 - finger.start.1).abs() > TAP_SLOP {
            g.moved = true;
        }
        if g.primary == Some(id) {
            (self.x, self.y) = at;
        }
    }

    /// A finger lifted (`cancelled`: taken away by the system). The gesture
    /// ends with the last finger: a clean two-finger tap toggles the big
    /// player; a gesture with a cancel in it puts the player back.
    fn touch_lift(&mut self, id: u8, cancelled: bool) {
        let Some(slot) = self.fingers.get_mut(usize::from(id)) else { return };
        if slot.take().is_none() {
            return;
        }
        let Some(g) = &mut self.gesture else { return };
        g.cancelled |= cancelled;
        if g.primary == Some(id) {
            g.primary = None;
        }
        if self.fingers.iter().any(Option::is_some) {
            return;
        }
        let g = *g;
        self.gesture = None;
        let tapped =
            g.most_fingers == 2 && !g.moved && !g.cancelled && self.elapsed - g.started <= TAP_TIME;
        if tapped {
            self.big = !self.big;
        }
        if tapped || g.cancelled {
            (self.x, self.y) = g.before;
        }
    }
}

/// A wire position (0..=65535 each axis) as frame fractions.
fn normalised(x: u16, y: u16) -> (f64, f64) {
    (f64::from(x) / f64::from(u16::MAX), f64::from(y) / f64::from(u16::MAX))
}

#[cfg(test)]
mod tests {
    use gridplay_protocol::input::TouchPoint;

    use super::*;

    const EPS: f64 = 1e-9;

    fn ev(kind: InputKind) -> InputEvent {
        InputEvent { seq: 1, kind }
    }
    fn down(code: &str) -> InputEvent {
        ev(InputKind::KeyDown { code: code.into() })
    }
    fn up(code: &str) -> InputEvent {
        ev(InputKind::KeyUp { code: code.into() })
    }
    /// Advances in 60 fps steps for `secs` seconds.
    fn run(game: &mut GameState, secs: u32) {
        for _ in 0..secs * 60 {
            game.advance(Duration::from_nanos(16_666_667));
        }
    }

    #[test]
    fn starts_centred_and_still() {
        let mut game = GameState::new(1280, 720);
        run(&mut game, 1);
        assert_eq!(game.player(), (0.5, 0.5));
        let scene = game.scene();
        assert!((scene.aspect - 1280.0 / 720.0).abs() < 1e-6);
        assert!((scene.time_s - 1.0).abs() < 1e-3);
    }

    #[test]
    fn space_hops_and_lands_where_it_was_and_is_heard() {
        let mut game = GameState::new(1280, 720);
        game.apply(&down("Space"));
        assert_eq!(game.sound_cue().jumps, 1);
        game.advance(HOP_TIME / 2);
        let top = f64::from(game.scene().player_y);
        assert!((top - (0.5 - HOP_HEIGHT)).abs() < 1e-6, "at the top: {top}");
        assert_eq!(game.player(), (0.5, 0.5), "a hop does not move the player's place");
        game.advance(HOP_TIME / 2);
        assert_eq!(game.scene().player_y, 0.5);
        game.apply(&down("ArrowLeft"));
        game.advance(Duration::from_millis(10));
        let cue = game.sound_cue();
        assert_eq!((cue.speed, cue.jumps), (1.0, 1));
        assert!(cue.pan < 0.5);
    }

    #[test]
    fn held_key_moves_half_a_frame_per_second() {
        let mut game = GameState::new(1280, 720);
        game.apply(&down("ArrowRight"));
        game.advance(Duration::from_millis(600));
        let (x, y) = game.player();
        assert!((x - 0.8).abs() < EPS, "x = {x}");
        assert_eq!(y, 0.5);

        let mut game = GameState::new(1280, 720);
        game.apply(&down("KeyW"));
        game.advance(Duration::from_millis(200));
        assert!((game.player().1 - 0.4).abs() < EPS);

        let mut game = GameState::new(1280, 720);
        game.apply(&down("ArrowDown"));
        game.advance(Duration::from_millis(200));
        assert!((game.player().1 - 0.6).abs() < EPS, "ArrowDown moves down");
    }

    #[test]
    fn position_clamps_to_the_frame() {
        let mut game = GameState::new(1280, 720);
        game.apply(&down("KeyA"));
        game.apply(&down("ArrowUp"));
        run(&mut game, 3);
        assert_eq!(game.player(), (0.0, 0.0));
        game.apply(&up("KeyA"));
        game.apply(&up("ArrowUp"));
        game.apply(&down("KeyD"));
        game.apply(&down("KeyS"));
        run(&mut game, 3);
        assert_eq!(game.player(), (1.0, 1.0));
    }

    #[test]
    fn key_up_stops_motion() {
        let mut game = GameState::new(1280, 720);
        game.apply(&down("ArrowLeft"));
        game.advance(Duration::from_millis(400));
        game.apply(&up("ArrowLeft"));
        game.advance(Duration::from_secs(1));
        assert!((game.player().0 - 0.3).abs() < EPS);
    }

    #[test]
    fn two_keys_combine() {
        let mut game = GameState::new(1280, 720);
        game.apply(&down("ArrowRight"));
        game.apply(&down("ArrowDown"));
        game.advance(Duration::from_millis(400));
        let (x, y) = game.player();
        assert!((x - 0.7).abs() < EPS && (y - 0.7).abs() < EPS, "({x}, {y})");

        // Opposite keys cancel; two keys for one direction do not double speed.
        let mut game = GameState::new(1280, 720);
        game.apply(&down("ArrowLeft"));
        game.apply(&down("ArrowRight"));
        game.apply(&down("KeyS"));
        game.apply(&down("ArrowDown"));
        game.advance(Duration::from_millis(200));
        let (x, y) = game.player();
        assert!((x - 0.5).abs() < EPS && (y - 0.6).abs() < EPS, "({x}, {y})");
        // Releasing one of two keys for a direction keeps moving.
        game.apply(&up("KeyS"));
        game.advance(Duration::from_millis(200));
        assert!((game.player().1 - 0.7).abs() < EPS);
    }

    #[test]
    fn pointer_down_teleports_and_drag_follows() {
        let mut game = GameState::new(1280, 720);
        game.apply(&ev(InputKind::PointerDown { x: 65535, y: 0, button: 0 }));
        assert_eq!(game.player(), (1.0, 0.0));
        game.apply(&ev(InputKind::PointerMove { x: 16384, y: 49152, dx: 0, dy: 0 }));
        let (x, y) = game.player();
        assert!((x - 0.25).abs() < 1e-4 && (y - 0.75).abs() < 1e-4);
        game.apply(&ev(InputKind::PointerUp { x: 16384, y: 49152, button: 0 }));
        game.apply(&ev(InputKind::PointerMove { x: 0, y: 0, dx: 0, dy: 0 }));
        assert_eq!(game.player(), (x, y), "moves without the button do nothing");
        game.apply(&ev(InputKind::PointerDown { x: 0, y: 0, button: 2 }));
        assert_eq!(game.player(), (x, y), "other buttons do nothing");
    }

    #[test]
    fn unknown_input_is_ignored() {
        let mut game = GameState::new(1280, 720);
        game.apply(&down("KeyQ"));
        game.apply(&ev(InputKind::Wheel { dx: 0, dy: 120 }));
        game.advance(Duration::from_secs(1));
        assert_eq!(game.player(), (0.5, 0.5));
    }

    fn seq_ev(seq: u32, kind: InputKind) -> InputEvent {
        InputEvent { seq, kind }
    }
    fn pad(seq: u32, pad: u8, buttons: u32, left: (i16, i16)) -> InputEvent {
        seq_ev(
            seq,
            InputKind::Gamepad {
                pad,
                buttons,
                left_trigger: 0,
                right_trigger: 0,
                left_x: left.0,
                left_y: left.1,
                right_x: 0,
                right_y: 0,
            },
        )
    }
    fn touch(kind: fn(Vec<TouchPoint>) -> InputKind, points: &[(u8, u16, u16)]) -> InputEvent {
        ev(kind(points.iter().map(|&(id, x, y)| TouchPoint { id, x, y }).collect()))
    }
    fn start(points: &[(u8, u16, u16)]) -> InputEvent {
        touch(|touches| InputKind::TouchStart { touches }, points)
    }
    fn moved(points: &[(u8, u16, u16)]) -> InputEvent {
        touch(|touches| InputKind::TouchMove { touches }, points)
    }
    fn end(points: &[(u8, u16, u16)]) -> InputEvent {
        touch(|touches| InputKind::TouchEnd { touches }, points)
    }
    fn cancel(points: &[(u8, u16, u16)]) -> InputEvent {
        touch(|touches| InputKind::TouchCancel { touches }, points)
    }
    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-4 && (a.1 - b.1).abs() < 1e-4
    }

    #[test]
    fn stick_moves_past_the_dead_zone_only() {
        let mut game = GameState::new(1280, 720);
        // 15% tilt: inside the dead zone.
        game.apply(&pad(1, 0, 0, (4915, 0)));
        game.advance(Duration::from_secs(1));
        assert_eq!(game.player(), (0.5, 0.5));
        // Full right: full speed.
        game.apply(&pad(2, 0, 0, (32767, 0)));
        game.advance(Duration::from_millis(400));
        let (x, y) = game.player();
        assert!((x - 0.7).abs() < EPS && y == 0.5, "({x}, {y})");
        // 60% up: half speed ((0.6 - 0.2) / 0.8), y grows downward.
        game.apply(&pad(3, 0, 0, (0, -19660)));
        game.advance(Duration::from_millis(400));
        let (x2, y2) = game.player();
        assert!((x2 - 0.7).abs() < EPS && (y2 - 0.4).abs() < 1e-4, "({x2}, {y2})");
    }

    #[test]
    fn dpad_moves_and_a_recentres() {
        let mut game = GameState::new(1280, 720);
        game.apply(&pad(1, 0, gamepad_button::DPAD_LEFT | gamepad_button::DPAD_DOWN, (0, 0)));
        game.advance(Duration::from_millis(400));
        assert!(close(game.player(), (0.3, 0.7)), "{:?}", game.player());
        // D-pad and full stick the same way do not add up beyond full speed.
        game.apply(&pad(2, 0, gamepad_button::DPAD_LEFT, (-32767, 0)));
        game.advance(Duration::from_millis(200));
        assert!(close(game.player(), (0.2, 0.7)), "{:?}", game.player());
        // A press (a rising edge) re-centres at once; holding A does nothing more.
        game.apply(&pad(3, 0, gamepad_button::SOUTH, (0, 0)));
        assert_eq!(game.player(), (0.5, 0.5));
        game.apply(&pad(4, 0, gamepad_button::SOUTH | gamepad_button::DPAD_UP, (0, 0)));
        game.advance(Duration::from_millis(200));
        assert!(close(game.player(), (0.5, 0.4)), "{:?}", game.player());
        game.apply(&pad(5, 0, gamepad_button::SOUTH, (0, 0)));
        assert!(close(game.player(), (0.5, 0.4)), "held A does not re-centre again");
    }

    #[test]
    fn several_pads_steer_and_late_snapshots_are_dropped() {
        let mut game = GameState::new(1280, 720);
        game.apply(&pad(1, 0, 0, (32767, 0)));
        game.apply(&pad(2, 3, 0, (0, 32767)));
        game.advance(Duration::from_millis(200));
        assert!(close(game.player(), (0.6, 0.6)), "{:?}", game.player());
        // Pad 0's release (seq 4) arrives before its older push (seq 3).
        game.apply(&pad(4, 0, 0, (0, 0)));
        game.apply(&pad(3, 0, 0, (-32767, 0)));
        // Pad 3 goes away; a snapshot sent before that arrives late.
        game.apply(&seq_ev(6, InputKind::GamepadGone { pad: 3 }));
        game.apply(&pad(5, 3, 0, (0, 32767)));
        game.advance(Duration::from_secs(1));
        assert!(close(game.player(), (0.6, 0.6)), "{:?}", game.player());
        // A pad plugged in again at that index steers.
        game.apply(&pad(7, 3, 0, (0, -32767)));
        game.advance(Duration::from_millis(200));
        assert!(close(game.player(), (0.6, 0.5)), "{:?}", game.player());
    }

    #[test]
    fn a_touch_moves_the_player_and_drags_it() {
        let mut game = GameState::new(720, 1280);
        game.apply(&start(&[(0, 16384, 49152)]));
        assert!(close(game.player(), (0.25, 0.75)), "{:?}", game.player());
        game.apply(&moved(&[(0, 49152, 16384)]));
        assert!(close(game.player(), (0.75, 0.25)), "{:?}", game.player());
        game.advance(Duration::from_millis(16));
        game.apply(&end(&[(0, 49152, 16384)]));
        assert!(close(game.player(), (0.75, 0.25)), "stays where the finger lifted");
        // A second finger does not steer.
        game.apply(&start(&[(0, 0, 0)]));
        game.apply(&start(&[(1, 65535, 65535)]));
        game.apply(&moved(&[(1, 32768, 32768)]));
        assert_eq!(game.player(), (0.0, 0.0));
        game.apply(&end(&[(0, 0, 0), (1, 32768, 32768)]));
        assert_eq!(game.scene().player_size, PLAYER_SIZE, "a moved finger is no tap");
    }

    #[test]
    fn two_finger_tap_toggles_the_big_player_in_place() {
        let mut game = GameState::new(720, 1280);
        game.apply(&start(&[(0, 16384, 16384), (1, 49152, 49152)]));
        game.advance(Duration::from_millis(100));
        game.apply(&moved(&[(1, 49500, 49152)])); // within the slop
        game.apply(&end(&[(0, 16384, 16384)]));
        game.advance(Duration::from_millis(100));
        game.apply(&end(&[(1, 49500, 49152)]));
        assert_eq!(game.scene().player_size, PLAYER_SIZE_BIG);
        assert_eq!(game.player(), (0.5, 0.5), "the tap leaves the player where it was");
        // Fingers landing one after the other tap too, and toggle back.
        game.apply(&start(&[(3, 100, 100)]));
        game.apply(&start(&[(7, 200, 200)]));
        game.apply(&end(&[(7, 200, 200), (3, 100, 100)]));
        assert_eq!(game.scene().player_size, PLAYER_SIZE);
    }

    #[test]
    fn slow_three_finger_or_cancelled_taps_do_not_toggle() {
        let mut game = GameState::new(720, 1280);
        let two = [(0, 1000, 1000), (1, 2000, 2000)];
        game.apply(&start(&two));
        game.advance(TAP_TIME + Duration::from_millis(1));
        game.apply(&end(&two));
        assert_eq!(game.scene().player_size, PLAYER_SIZE, "too slow");

        let three = [(0, 1000, 1000), (1, 2000, 2000), (2, 3000, 3000)];
        game.apply(&start(&three));
        game.apply(&end(&three));
        assert_eq!(game.scene().player_size, PLAYER_SIZE, "three fingers");

        // A cancelled gesture does not tap and puts the player back.
        game.apply(&ev(InputKind::PointerDown { x: 32768, y: 16384, button: 0 }));
        let before = game.player();
        game.apply(&start(&two));
        assert_ne!(game.player(), before);
        game.apply(&end(&two[..1]));
        game.apply(&cancel(&two[1..]));
        assert_eq!(game.scene().player_size, PLAYER_SIZE, "cancelled");
        assert_eq!(game.player(), before, "a cancel undoes the gesture's move");
    }

    #[test]
    fn touches_for_unknown_fingers_are_ignored() {
        let mut game = GameState::new(720, 1280);
        game.apply(&moved(&[(4, 0, 0)]));
        game.apply(&end(&[(4, 0, 0)]));
        game.apply(&cancel(&[(5, 0, 0)]));
        assert_eq!(game.player(), (0.5, 0.5));
        game.apply(&start(&[(2, 0, 65535)]));
        game.apply(&end(&[(2, 0, 65535)]));
        game.apply(&end(&[(2, 0, 65535)])); // a duplicate end
        assert_eq!(game.player(), (0.0, 1.0));
    }
}
