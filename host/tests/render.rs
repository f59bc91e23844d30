//! Renders Orbit on a real Vulkan device (lavapipe on CI machines) and checks
//! the pixels against the game's rules.

use std::time::Duration;

use gridplay_host::workloads::orbit::game::{GameState, PLAYER_RGB, PLAYER_SIZE, Scene};
use gridplay_host::workloads::orbit::render::Renderer;
use gridplay_protocol::input::{InputEvent, InputKind};

/// Yellow-ish per the browser test: blue < 100 and red >= 150.
fn is_yellowish(px: &[u8]) -> bool {
    px[2] < 100 && px[0] >= 150
}

/// Yellow-ish pixels of a frame.
struct Yellow {
    count: usize,
    centroid: (f64, f64),
    /// Pixels that are yellow-ish but not exactly the player colour.
    off_colour: usize,
    /// Pixels that are yellow-ish but outside the square the scene describes.
    outside: usize,
}

fn yellow(pixels: &[u8], width: u32, height: u32, scene: &Scene) -> Yellow {
    let (w, h) = (f64::from(width), f64::from(height));
    let (cx, cy) = (f64::from(scene.player_x) * w, f64::from(scene.player_y) * h);
    let half = f64::from(scene.player_size) * h / 2.0 + 1.0;
    let (mut count, mut sx, mut sy, mut off_colour, mut outside) = (0, 0.0, 0.0, 0, 0);
    for (i, px) in pixels.chunks_exact(4).enumerate() {
        if !is_yellowish(px) {
            continue;
        }
        let x = (i % width as usize) as f64 + 0.5;
        let y = (i / width as usize) as f64 + 0.5;
        count += 1;
        sx += x;
        sy += y;
        if px != [PLAYER_RGB[0], PLAYER_RGB[1], PLAYER_RGB[2], 255] {
            off_colour += 1;
        }
        if (x - cx).abs() > half || (y - cy).abs() > half {
            outside += 1;
        }
    }
    let n = count.max(1) as f64;
    Yellow { count, centroid: (sx / n, sy / n), off_colour, outside }
}

/// Renders `game` and checks the player square is where and how big the
/// scene says, and that nothing else is yellow-ish.
fn check_frame(renderer: &mut Renderer, game: &GameState) -> Vec<u8> {
    let (w, h) = (renderer.width(), renderer.height());
    let scene = game.scene();
    renderer.render(&scene).expect("render");
    let pixels = renderer.pixels();
    assert_eq!(pixels.len(), w as usize * h as usize * 4);
    let y = yellow(pixels, w, h, &scene);
    let side = f64::from(PLAYER_SIZE) * f64::from(h);
    let area = side * side;
    assert!(
        (y.count as f64 - area).abs() < side * 2.5,
        "{w}x{h}: {} yellow pixels, expected about {area:.0}",
        y.count
    );
    let expected =
        (f64::from(scene.player_x) * f64::from(w), f64::from(scene.player_y) * f64::from(h));
    let err = ((y.centroid.0 - expected.0).powi(2) + (y.centroid.1 - expected.1).powi(2)).sqrt();
    assert!(err < 2.0, "{w}x{h}: centroid {:?}, expected {expected:?}", y.centroid);
    assert_eq!(y.off_colour, 0, "{w}x{h}: yellow-ish pixels not of the player colour");
    assert_eq!(y.outside, 0, "{w}x{h}: yellow-ish pixels outside the player");
    pixels.to_vec()
}

fn key(kind: fn(String) -> InputKind, code: &str) -> InputEvent {
    InputEvent { seq: 1, kind: kind(code.to_owned()) }
}

fn renderer(width: u32, height: u32) -> Renderer {
    Renderer::new(width, height)
        .expect("Vulkan renderer (needs libvulkan1 + mesa-vulkan-drivers for lavapipe)")
}

#[test]
fn player_square_is_where_the_scene_says_at_720p() {
    let mut r = renderer(1280, 720);
    let mut game = GameState::new(1280, 720);
    let first = check_frame(&mut r, &game);

    // The frame is far from uniform.
    let mut colours: Vec<[u8; 4]> =
        first.chunks_exact(4).step_by(97).map(|p| [p[0], p[1], p[2], p[3]]).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 50, "only {} colours", colours.len());
    assert!(first.chunks_exact(4).all(|p| p[3] == 255), "opaque");

    // Time alone changes the picture.
    game.advance(Duration::from_millis(100));
    let second = check_frame(&mut r, &game);
    let changed = first.chunks_exact(4).zip(second.chunks_exact(4)).filter(|(a, b)| a != b).count();
    assert!(changed > 1280 * 720 / 20, "only {changed} pixels changed");
}

#[test]
fn moving_the_player_moves_the_yellow_square() {
    let mut r = renderer(1280, 720);
    let mut game = GameState::new(1280, 720);
    game.apply(&key(|code| InputKind::KeyDown { code }, "ArrowRight"));
    game.apply(&key(|code| InputKind::KeyDown { code }, "ArrowDown"));
    game.advance(Duration::from_millis(400));
    assert!((game.player().0 - 0.7).abs() < 1e-9);
    let pixels = check_frame(&mut r, &game);
    let y = yellow(&pixels, 1280, 720, &game.scene());
    assert!(
        (y.centroid.0 - 896.0).abs() < 2.0 && (y.centroid.1 - 504.0).abs() < 2.0,
        "{:?}",
        y.centroid
    );

    game.apply(&InputEvent {
        seq: 2,
        kind: InputKind::PointerDown { x: 16384, y: 16384, button: 0 },
    });
    check_frame(&mut r, &game);
}

#[test]
fn nothing_but_the_player_is_yellow_over_time() {
    let mut r = renderer(1280, 720);
    let mut game = GameState::new(1280, 720);
    // Sweep the player around and across the frame edges for 12 s at 5 fps.
    let path = ["ArrowLeft", "ArrowUp", "ArrowRight", "ArrowDown"];
    for step in 0..60 {
        let code = path[(step / 15) % 4];
        game.apply(&key(|code| InputKind::KeyDown { code }, code));
        game.advance(Duration::from_millis(200));
        game.apply(&key(|code| InputKind::KeyUp { code }, code));
        let scene = game.scene();
        r.render(&scene).unwrap();
        let y = yellow(r.pixels(), 1280, 720, &scene);
        assert_eq!(y.outside + y.off_colour, 0, "step {step}: stray yellow at t={}", scene.time_s);
        assert!(y.count > 0, "step {step}: player not drawn");
    }
}

#[test]
fn renders_1080p_and_portrait() {
    for (w, h) in [(1920, 1080), (720, 1280)] {
        let mut r = renderer(w, h);
        let mut game = GameState::new(w, h);
        check_frame(&mut r, &game);
        game.apply(&InputEvent {
            seq: 1,
            kind: InputKind::PointerDown { x: 49152, y: 13107, button: 0 },
        });
        game.advance(Duration::from_millis(1500));
        check_frame(&mut r, &game);
    }
}

/// Prints per-frame timings; run with `--release -- --nocapture` to see them.
#[test]
fn frame_timings() {
    for (w, h) in [(1280, 720), (1920, 1080)] {
        let mut r = renderer(w, h);
        let mut game = GameState::new(w, h);
        for _ in 0..5 {
            r.render(&game.scene()).unwrap(); // warm-up
        }
        let frames = 60;
        let mut render = Vec::with_capacity(frames);
        let mut readback = Vec::with_capacity(frames);
        for _ in 0..frames {
            game.advance(Duration::from_nanos(16_666_667));
            let t = r.render(&game.scene()).unwrap();
            render.push(t.render);
            readback.push(t.readback);
        }
        render.sort_unstable();
        readback.sort_unstable();
        let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
        println!(
            "{w}x{h} on {}: render mean {:?} p50 {:?} max {:?}; readback mean {:?} p50 {:?} max {:?}",
            r.gpu().name,
            mean(&render),
            render[frames / 2],
            render[frames - 1],
            mean(&readback),
            readback[frames / 2],
            readback[frames - 1],
        );
    }
}
