//! The apps a player can launch.

use gridplay_protocol::{App, Profile};

/// The built-in catalogue.
pub fn builtin_apps() -> Vec<App> {
    vec![App {
        id: "orbit".into(),
        title: "Orbit".into(),
        profile: Profile::Game,
        description: "Steer the yellow ship through orbiting debris (arrows/WASD, click to jump)."
            .into(),
    }]
}
