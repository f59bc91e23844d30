//! Orbit, the built-in game: the pure [`game`] drawn by the Vulkan [`render`]er
//! and heard through its [`sound`] synthesiser.

pub mod game;
pub mod render;
pub mod sound;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gridplay_protocol::input::InputEvent;
use gridplay_streaming::audio::AudioFrame;

use super::{Picture, SoundClock, SoundSource, Workload};
use crate::HostError;
use game::GameState;
use render::Renderer;
use sound::{SoundCue, Synth};

/// The game, its renderer, and the cue its sound plays from.
pub struct Orbit {
    game: GameState,
    renderer: Renderer,
    cue: Arc<Mutex<SoundCue>>,
}

impl Orbit {
    /// A new game rendered at `width`×`height`.
    pub fn new(width: u32, height: u32) -> Result<Self, HostError> {
        let game = GameState::new(width, height);
        let cue = Arc::new(Mutex::new(game.sound_cue()));
        Ok(Self { game, renderer: Renderer::new(width, height)?, cue })
    }

    /// Lets the sound hear the game's state now.
    fn cue_sound(&self) {
        *self.cue.lock().unwrap_or_else(|p| p.into_inner()) = self.game.sound_cue();
    }
}

impl Workload for Orbit {
    fn apply(&mut self, event: &InputEvent) -> Result<(), HostError> {
        self.game.apply(event);
        // A jump is heard from the next sound frame, before its picture is drawn.
        self.cue_sound();
        Ok(())
    }

    fn copied(&mut self) -> Result<Option<String>, HostError> {
        // The game has no clipboard.
        Ok(None)
    }

    fn frame(&mut self, since_last: Duration) -> Result<Picture<'_>, HostError> {
        self.game.advance(since_last);
        self.cue_sound();
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

    fn sound(&mut self, frame: AudioFrame) -> Option<Box<dyn SoundSource>> {
        let cue = Arc::clone(&self.cue);
        let clock = SoundClock::new(frame);
        Some(Box::new(OrbitSound { synth: Synth::default(), cue, clock }))
    }
}

/// Orbit's sound as it is due: the synthesiser on the sound's clock.
struct OrbitSound {
    synth: Synth,
    cue: Arc<Mutex<SoundCue>>,
    clock: SoundClock,
}

impl SoundSource for OrbitSound {
    fn next_frame(&mut self, pcm: &mut [i16]) -> Result<Instant, HostError> {
        let due = self.clock.wait();
        let cue = *self.cue.lock().unwrap_or_else(|p| p.into_inner());
        self.synth.render(&cue, pcm);
        Ok(due)
    }
}
