//! The apps a player can launch.

use gridplay_protocol::{App, Profile};

/// The built-in catalogue: Orbit as a landscape game, and the same game as a
/// portrait phone app (touch first).
pub fn builtin_apps() -> Vec<App> {
    vec![
        App {
            id: "orbit".into(),
            title: "Orbit".into(),
            profile: Profile::Game,
            description:
                "Steer the yellow ship through orbiting debris (arrows/WASD, click to jump, gamepad)."
                    .into(),
        },
        App {
            id: "orbit-phone".into(),
            title: "Orbit (phone)".into(),
            profile: Profile::Phone,
            description: "Orbit in portrait: tap to jump, drag to steer, two-finger tap to grow."
                .into(),
        },
    ]
}
