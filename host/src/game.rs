//! Orbit, the built-in game: a yellow square the player steers over an
//! animated background of orbiting shapes.
//!
//! The game is pure and sans-I/O: it never reads a clock. Feed it input with
//! [`GameState::apply`], move time on with [`GameState::advance`], and hand
//! [`GameState::scene`] to the renderer. It knows nothing about Vulkan.
//!
//! Rules (the browser end-to-end test relies on them):
//! - The player is a solid square of colour [`PLAYER_RGB`], side
//!   [`PLAYER_SIZE`] of the frame height, starting at the centre.
//! - While held, the arrow keys and WASD move it [`PLAYER_SPEED`] frames per
//!   second along each axis (y grows downward); the centre clamps to `[0, 1]`.
//! - A main-button pointer press moves it to the pointer at once, and
//!   dragging with that button held keeps it under the pointer.
//! - Nothing else on screen is yellow-ish: every other pixel has blue >= 100
//!   or red < 150.

use std::time::Duration;

use gridplay_protocol::input::{InputEvent, InputKind};

/// The player's colour, RGB.
pub const PLAYER_RGB: [u8; 3] = [255, 210, 0];
/// The player's side as a fraction of the frame height.
pub const PLAYER_SIZE: f32 = 0.08;
/// Player speed in frame widths (horizontal) or frame heights (vertical) per second.
pub const PLAYER_SPEED: f64 = 0.5;
/// Number of obstacles orbiting the centre.
pub const OBSTACLES: u32 = 8;

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
        }
    }

    /// Applies one input event. Key changes take effect from the next
    /// [`advance`](Self::advance); pointer presses move the player at once.
    /// Unknown keys, other buttons and the wheel are ignored.
    pub fn apply(&mut self, event: &InputEvent) {
        match &event.kind {
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
            _ => {}
        }
    }

    /// Moves game time on by `dt`, moving the player by the keys held.
    pub fn advance(&mut self, dt: Duration) {
        self.elapsed += dt;
        let secs = dt.as_secs_f64();
        let axis = |neg: Dir, pos: Dir| -> f64 {
            f64::from(u8::from(self.is_held(pos))) - f64::from(u8::from(self.is_held(neg)))
        };
        let vx = axis(Dir::Left, Dir::Right) * PLAYER_SPEED;
        let vy = axis(Dir::Up, Dir::Down) * PLAYER_SPEED;
        self.x = (self.x + vx * secs).clamp(0.0, 1.0);
        self.y = (self.y + vy * secs).clamp(0.0, 1.0);
    }

    /// The frame to draw now.
    pub fn scene(&self) -> Scene {
        Scene {
            time_s: self.elapsed.as_secs_f32(),
            player_x: self.x as f32,
            player_y: self.y as f32,
            player_size: PLAYER_SIZE,
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

    fn set_key(&mut self, code: &str, down: bool) {
        if let Some(i) = KEYS.iter().position(|(k, _)| *k == code) {
            self.held[i] = down;
        }
    }

    fn is_held(&self, dir: Dir) -> bool {
        KEYS.iter().zip(self.held).any(|((_, d), held)| held && *d == dir)
    }

    fn move_to(&mut self, x: u16, y: u16) {
        self.x = f64::from(x) / f64::from(u16::MAX);
        self.y = f64::from(y) / f64::from(u16::MAX);
    }
}

#[cfg(test)]
mod tests {
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
}
