//! One session's frame loop on its own thread: apply input, advance the game,
//! render (Vulkan), read back, convert to I420 and encode (openh264).
//!
//! The loop is paced by [`FramePacer`]; input acknowledgements name the first
//! frame that reflects each input.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gridplay_protocol::input::{InputApplied, InputEvent};
use gridplay_streaming::rate::{RateConfig, RateController};
use gridplay_streaming::webrtc::SharedRate;
use gridplay_streaming::{ColourConverter, EncoderSettings, OpenH264Encoder, VideoEncoder};
use tokio::sync::mpsc::Sender;

use crate::HostError;
use crate::game::GameState;
use crate::render::Renderer;

/// Size and rate of one session's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Target frame rate.
    pub fps: u32,
}

impl StreamSpec {
    /// How long one frame lasts.
    pub fn frame_duration(&self) -> Duration {
        // Rounded, not truncated: a short period makes the frame grid run fast.
        let fps = u64::from(self.fps.max(1));
        Duration::from_nanos((1_000_000_000 + fps / 2) / fps)
    }
}

/// What the network side tells the frame loop.
pub struct PipelineControl {
    /// Set when the receiver asked for a keyframe; the loop clears it.
    pub keyframe: AtomicBool,
    /// The congestion controller whose target the encoder follows.
    pub rate: SharedRate,
    /// Whether the loop should stop.
    pub stop: AtomicBool,
}

/// The encoder runs this far under the controller's target, leaving the
/// pacer room for keyframes and retransmissions.
const ENCODER_HEADROOM: f64 = 0.9;

impl PipelineControl {
    /// Control for a stream: the rate controller starts at the stream's
    /// default bitrate and may go up to 1.5 times it.
    pub fn new(spec: StreamSpec) -> Self {
        let start =
            u64::from(EncoderSettings::for_stream(spec.width, spec.height, spec.fps).bitrate_bps);
        let config = RateConfig { min_bps: 300_000, max_bps: start * 3 / 2, start_bps: start };
        Self {
            keyframe: AtomicBool::new(false),
            rate: SharedRate::new(RateController::new(config)),
            stop: AtomicBool::new(false),
        }
    }

    /// The bitrate the encoder should aim for now.
    fn encoder_target(&self) -> u32 {
        (self.rate.target_bps() as f64 * ENCODER_HEADROOM) as u32
    }
}

/// One encoded frame ready to send, with the inputs it is the first to reflect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedOutput {
    /// Frame id, counted from 1 per session.
    pub frame_id: u32,
    /// When the frame started: the game state it shows is of this instant
    /// (its RTP timestamp follows it).
    pub captured_at: Instant,
    /// From `captured_at` to the end of the encode: render, read back,
    /// colour conversion and encode.
    pub render_encode: Duration,
    /// Annex-B access unit.
    pub data: Bytes,
    /// Whether it is a keyframe.
    pub keyframe: bool,
    /// Acknowledgements to send for inputs applied in this frame (without
    /// RTP timestamps: the sender adds them).
    pub acks: Vec<InputApplied>,
}

/// Frame deadlines on a fixed grid; a late frame skips the missed slots
/// rather than bursting to catch up. Time is passed in.
#[derive(Debug, Clone)]
pub struct FramePacer {
    period: Duration,
    next: Instant,
}

impl FramePacer {
    /// The earliest a frame may start after one started at `started`: input
    /// may pull a frame forward, by at most half a period.
    pub fn earliest_after(&self, started: Instant) -> Instant {
        started + self.period / 2
    }

    /// A pacer whose first frame is due at `start`.
    pub fn new(period: Duration, start: Instant) -> Self {
        Self { period, next: start }
    }

    /// Called when a frame starts at `now`; returns when the next one is due.
    /// A frame started early (for fresh input) moves the grid to it.
    pub fn frame_started(&mut self, now: Instant) -> Instant {
        if now + self.period / 2 < self.next {
            self.next = now + self.period;
            return self.next;
        }
        self.next += self.period;
        if self.next <= now {
            let behind = now - self.next;
            let skipped = behind.as_nanos() / self.period.as_nanos() + 1;
            self.next += self.period * skipped as u32;
        }
        self.next
    }
}

/// Runs the frame loop until `control.stop` is set or the output channel
/// closes. Blocking: call it on its own thread.
pub fn run_pipeline(
    spec: StreamSpec,
    inputs: Receiver<InputEvent>,
    output: Sender<EncodedOutput>,
    control: Arc<PipelineControl>,
) -> Result<(), HostError> {
    let mut renderer = Renderer::new(spec.width, spec.height)?;
    let mut converter = ColourConverter::new(spec.width, spec.height);
    let settings = EncoderSettings::for_stream(spec.width, spec.height, spec.fps);
    let mut encoder = OpenH264Encoder::new(EncoderSettings {
        bitrate_bps: control.encoder_target(),
        ..settings
    })?;
    let mut game = GameState::new(spec.width, spec.height);
    let mut pacer = FramePacer::new(spec.frame_duration(), Instant::now());
    let mut last = Instant::now();
    let mut frame_id = 0u32;
    let mut early: Vec<InputEvent> = Vec::new();
    while !control.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let mut acks = Vec::new();
        frame_id += 1;
        let mut apply = |event: InputEvent| {
            game.apply(&event);
            acks.push(InputApplied { seq: event.seq, frame_id, rtp_timestamp: None });
        };
        early.drain(..).for_each(&mut apply);
        loop {
            match inputs.try_recv() {
                Ok(event) => apply(event),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Ok(()),
            }
        }
        game.advance(started - last);
        last = started;
        renderer.render(&game.scene())?;
        let frame = converter.convert(renderer.pixels())?;
        let target = control.encoder_target();
        let current = encoder.settings().bitrate_bps;
        if target.abs_diff(current) > current / 20
            && let Err(e) = encoder.set_bitrate(target)
        {
            tracing::warn!("keeping {current} bit/s: {e}");
        }
        let keyframe = frame_id == 1 || control.keyframe.swap(false, Ordering::Relaxed);
        let encoded = encoder.encode(frame, keyframe)?;
        let out = EncodedOutput {
            frame_id,
            captured_at: started,
            render_encode: started.elapsed(),
            data: Bytes::from(encoded.data),
            keyframe: encoded.keyframe,
            acks,
        };
        if output.blocking_send(out).is_err() {
            return Ok(());
        }
        // Wait for the next slot; input arriving meanwhile pulls the frame
        // forward (no sooner than half a period after this one started), so
        // it reaches the screen without waiting out the slot.
        let due = pacer.frame_started(started);
        let earliest = pacer.earliest_after(started);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            match inputs.recv_timeout(wait) {
                Ok(event) => {
                    early.push(event);
                    if let Some(hold) = earliest.checked_duration_since(Instant::now()) {
                        std::thread::sleep(hold);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_keeps_a_fixed_grid_and_skips_missed_slots() {
        let t0 = Instant::now();
        let period = Duration::from_millis(10);
        let mut pacer = FramePacer::new(period, t0);
        assert_eq!(pacer.frame_started(t0), t0 + period);
        // A frame that starts 2 ms late still aims for the grid.
        assert_eq!(pacer.frame_started(t0 + Duration::from_millis(12)), t0 + 2 * period);
        // A frame that overran by 2.5 periods skips to the next slot ahead of now.
        assert_eq!(pacer.frame_started(t0 + Duration::from_millis(45)), t0 + 5 * period);
        // A frame pulled forward by input (at 43 ms, slot due at 50) moves the grid to it.
        let early = t0 + Duration::from_millis(53);
        assert_eq!(
            pacer.earliest_after(t0 + Duration::from_millis(45)),
            t0 + Duration::from_millis(50)
        );
        assert_eq!(pacer.frame_started(t0 + Duration::from_millis(50)), t0 + 6 * period);
        assert_eq!(pacer.frame_started(early), early + period);
    }

    #[test]
    fn frame_duration_is_exact_nanoseconds() {
        let spec = StreamSpec { width: 1280, height: 720, fps: 60 };
        assert_eq!(spec.frame_duration(), Duration::from_nanos(16_666_667));
    }
}
