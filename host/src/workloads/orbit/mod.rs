//! Orbit, the built-in game: the pure [`game`] drawn by the Vulkan [`render`]er.

pub mod game;
pub mod render;

use std::time::Duration;

use gridplay_protocol::input::InputEvent;

use super::{Picture, Workload};
use crate::HostError;
use game::GameState;
use render::Renderer;

/// The game and its renderer.
pub struct Orbit {
    game: GameState,
    renderer: Renderer,
}

impl Orbit {
    /// A new game rendered at `width`×`height`.
    pub fn new(width: u32, height: u32) -> Result<Self, HostError> {
        Ok(Self { game: GameState::new(width, height), renderer: Renderer::new(width, height)? })
    }
}

impl Workload for Orbit {
    fn apply(&mut self, event: &InputEvent) -> Result<(), HostError> {
        self.game.apply(event);
        Ok(())
    }

    fn copied(&mut self) -> Result<Option<String>, HostError> {
        // The game has no clipboard.
        Ok(None)
    }

    fn frame(&mut self, since_last: Duration) -> Result<Picture<'_>, HostError> {
        self.game.advance(since_last);
        self.renderer.render(&self.game.scene())?;
        Ok(Picture::Rgba(self.renderer.pixels()))
    }

    fn resizable(&self) -> bool {
        true
    }

    fn resize(&mut self, width: u32, height: u32) -> Result<(), HostError> {
        self.renderer = Renderer::new(width, height)?;
        Ok(())
    }
}
