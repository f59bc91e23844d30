//! One session's frame loop on its own thread: apply input, take the
//! workload's next picture (Orbit rendered with Vulkan, or an app captured
//! from its display), convert to I420 and encode (NVENC when built with the
//! `nvenc` feature and the driver has it, else openh264).
//!
//! The loop is paced by [`FramePacer`]; input acknowledgements name the first
//! frame that reflects each input. A picture that did not change is not
//! encoded again: a repeat frame of a few bytes shows it for that frame. The
//! workload's sound, if it has one, is encoded (Opus) on a thread of its own,
//! paced by the sound itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gridplay_protocol::input::{InputApplied, InputEvent};
use gridplay_streaming::audio::{AudioEncoder, AudioFrame, CHANNELS, DEFAULT_AUDIO_BPS};
use gridplay_streaming::rate::{
    DegradationPolicy, LADDER_720P60, QualityLevel, RateConfig, RateController,
};
use gridplay_streaming::webrtc::SharedRate;
use gridplay_streaming::{
    ColourConverter, EncodedFrame, EncoderKind, EncoderSettings, FrameRepeater, VideoEncoder,
    open_encoder,
};
use tokio::sync::mpsc::Sender;

use crate::HostError;
use crate::workloads::{Launch, Picture, SoundSource};

/// Size and rate of one session's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// What a session's frame loop makes: pictures of a size and rate, and sound in frames
/// of a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Media {
    /// The pictures.
    pub spec: StreamSpec,
    /// How long each frame of sound lasts.
    pub sound_frame: AudioFrame,
}

/// What steers a running frame loop: the network side's wishes.
pub trait Steering: Send + Sync {
    /// Whether the player is connected: the loop prepares its workload and
    /// encoder at once, and starts its frames only then.
    fn connected(&self) -> bool;
    /// Whether the loop should stop.
    fn stopped(&self) -> bool;
    /// The bitrate the encoder should aim for now.
    fn encoder_target(&self) -> u32;
    /// Whether a keyframe was asked for since the last call.
    fn take_keyframe(&self) -> bool;
    /// The size and rate to step to, if the quality ladder moved since the last call.
    fn take_quality(&self) -> Option<StreamSpec>;
    /// The share of packets the receiver lost lately, in percent (the sound's FEC follows it).
    fn loss_percent(&self) -> u8;
}

/// What the network side tells the frame loop.
pub struct PipelineControl {
    /// Set when the receiver asked for a keyframe; the loop clears it.
    pub keyframe: AtomicBool,
    /// The congestion controller whose target the encoder follows.
    pub rate: SharedRate,
    /// Whether the loop should stop.
    pub stop: AtomicBool,
    /// Set once the player is connected.
    pub connected: AtomicBool,
}

/// How often a prepared frame loop looks whether its player has connected.
const CONNECT_POLL: Duration = Duration::from_millis(1);

/// The encoder runs this far under the controller's target, leaving the
/// pacer room for keyframes and retransmissions.
const ENCODER_HEADROOM: f64 = 0.9;

impl PipelineControl {
    /// Control for a stream: the rate controller starts at the stream's
    /// default bitrate and may go up to 1.5 times it; under sustained
    /// pressure it steps down the stream's quality ladder ([`ladder_for`]),
    /// only through its frame rates when the size is fixed (`resizable` false).
    pub fn new(spec: StreamSpec, resizable: bool) -> Self {
        let start =
            u64::from(EncoderSettings::for_stream(spec.width, spec.height, spec.fps).bitrate_bps);
        let config = RateConfig { min_bps: 300_000, max_bps: start * 3 / 2, start_bps: start };
        let mut ladder = ladder_for(spec);
        if !resizable {
            ladder.retain(|l| (l.width, l.height) == (spec.width, spec.height));
        }
        let controller =
            RateController::new(config).with_degradation(DegradationPolicy::new(ladder));
        Self {
            keyframe: AtomicBool::new(false),
            rate: SharedRate::new(controller),
            stop: AtomicBool::new(false),
            connected: AtomicBool::new(false),
        }
    }
}

impl Steering for PipelineControl {
    fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn encoder_target(&self) -> u32 {
        (self.rate.target_bps() as f64 * ENCODER_HEADROOM) as u32
    }

    fn take_keyframe(&self) -> bool {
        self.keyframe.swap(false, Ordering::Relaxed)
    }

    fn take_quality(&self) -> Option<StreamSpec> {
        let q = self.rate.poll_quality_change()?.quality;
        Some(StreamSpec { width: q.width, height: q.height, fps: q.fps })
    }

    fn loss_percent(&self) -> u8 {
        self.rate.loss_percent()
    }
}

/// The quality ladder of a stream: [`LADDER_720P60`]'s rungs scaled to the
/// stream's size (its height against 720, both sides alike, so portrait
/// streams scale too), never above its frame rate, their minimum bitrates
/// scaled by the pixel count; repeated rungs dropped.
pub fn ladder_for(spec: StreamSpec) -> Vec<QualityLevel> {
    let pixels = f64::from(spec.width) * f64::from(spec.height) / (1280.0 * 720.0);
    let even = |x: f64| ((x / 2.0).round() as u32 * 2).max(2);
    let mut ladder: Vec<QualityLevel> = Vec::new();
    for rung in LADDER_720P60 {
        let scale = f64::from(rung.height) / 720.0;
        let level = QualityLevel {
            width: even(f64::from(spec.width) * scale),
            height: even(f64::from(spec.height) * scale),
            fps: rung.fps.min(spec.fps),
            min_bps: (rung.min_bps as f64 * pixels) as u64,
        };
        if ladder
            .last()
            .is_none_or(|l| (l.width, l.height, l.fps) != (level.width, level.height, level.fps))
        {
            ladder.push(level);
        }
    }
    ladder
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
    /// Text the workload copied to its clipboard since the frame before.
    pub copied: Option<String>,
}

/// One encoded frame of sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoundPacket {
    /// The Opus packet.
    pub data: Bytes,
    /// Samples per channel it holds (48 kHz).
    pub samples: u32,
    /// The instant its first sample stands for.
    pub captured_at: Instant,
}

/// Frames of sound that may wait on their way out (half a second of them); sound that
/// finds the queue full is dropped rather than delayed.
pub const SOUND_QUEUE: usize = 50;

/// The sound's share of a session's budget of `target_bps`: a tenth of it, between 24 and
/// 96 kbit/s, taken before video.
pub fn sound_share(target_bps: u32) -> u32 {
    (target_bps / 10).clamp(24_000, DEFAULT_AUDIO_BPS)
}

/// What the frame loop tells the sound thread, as the network side tells it.
#[derive(Debug, Default)]
struct SoundSteer {
    stop: AtomicBool,
    /// The receiver's latest loss, in percent.
    loss: AtomicU8,
    /// The sound's share of the budget, bits per second.
    bitrate: AtomicU32,
}

/// Encodes a workload's sound until told to stop or its output closes, at the bitrate
/// and with the FEC (against the receiver's loss) `steer` says; a packet the session is
/// not ready for is dropped rather than held (sound never waits).
fn run_sound(
    mut source: Box<dyn SoundSource>,
    frame: AudioFrame,
    output: &Sender<SoundPacket>,
    steer: &SoundSteer,
) -> Result<(), HostError> {
    let mut bitrate = steer.bitrate.load(Ordering::Relaxed);
    let mut encoder = AudioEncoder::new(frame, bitrate)?;
    let mut pcm = vec![0i16; frame.samples() * CHANNELS];
    let mut expected = 0;
    while !steer.stop.load(Ordering::Relaxed) && !output.is_closed() {
        let lost = steer.loss.load(Ordering::Relaxed);
        if lost != expected {
            encoder.expect_loss(lost)?;
            expected = lost;
        }
        let wanted = steer.bitrate.load(Ordering::Relaxed);
        if wanted.abs_diff(bitrate) > bitrate / 20 {
            encoder.set_bitrate(wanted)?;
            bitrate = wanted;
        }
        let captured_at = source.next_frame(&mut pcm)?;
        let data = encoder.encode(&pcm)?;
        let _ = output.try_send(SoundPacket { data, samples: frame.samples() as u32, captured_at });
    }
    Ok(())
}

/// The sound thread of a frame loop, stopped and joined when dropped.
struct SoundThread {
    steer: Arc<SoundSteer>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SoundThread {
    fn start(
        source: Box<dyn SoundSource>,
        frame: AudioFrame,
        bitrate: u32,
        output: Sender<SoundPacket>,
    ) -> Self {
        let steer =
            Arc::new(SoundSteer { bitrate: AtomicU32::new(bitrate), ..SoundSteer::default() });
        let thread = {
            let steer = Arc::clone(&steer);
            std::thread::spawn(move || {
                if let Err(e) = run_sound(source, frame, &output, &steer) {
                    tracing::warn!("sound stopped: {e}");
                }
            })
        };
        Self { steer, thread: Some(thread) }
    }

    /// Passes the network side's latest budget and loss on.
    fn steer(&self, control: &dyn Steering) {
        let steer = &self.steer;
        steer.bitrate.store(sound_share(control.encoder_target()), Ordering::Relaxed);
        steer.loss.store(control.loss_percent(), Ordering::Relaxed);
    }
}

impl Drop for SoundThread {
    fn drop(&mut self) {
        self.steer.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
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

/// What turns pictures into H.264 at one size: colour converter, encoder
/// and repeater, rebuilt when the quality ladder changes the size.
struct Stages {
    converter: ColourConverter,
    /// NVENC when built with the `nvenc` feature and the GPU has one, openh264 otherwise.
    encoder: Box<dyn VideoEncoder + Send>,
    /// Which of the two it is.
    kind: EncoderKind,
    /// Shows an unchanged picture again without encoding it.
    repeater: FrameRepeater,
    /// The bitrate the encoder was last set to.
    bitrate_bps: u32,
    /// Frames between keyframes, repeats counted.
    keyframe_interval: u32,
    /// Frames since the last keyframe.
    since_keyframe: u32,
}

impl Stages {
    fn new(spec: StreamSpec, bitrate_bps: u32) -> Result<Self, HostError> {
        let settings = EncoderSettings::for_stream(spec.width, spec.height, spec.fps);
        let (encoder, kind) = open_encoder(EncoderSettings { bitrate_bps, ..settings })?;
        tracing::info!(encoder = %kind, width = spec.width, height = spec.height, "encoder opened");
        Ok(Self {
            converter: ColourConverter::new(spec.width, spec.height),
            encoder,
            kind,
            repeater: FrameRepeater::new(),
            bitrate_bps,
            keyframe_interval: settings.keyframe_interval,
            since_keyframe: 0,
        })
    }

    /// Turns one picture into a frame: encoded, or — when nothing changed and no
    /// keyframe is due — a repeat of the last one that costs no encode. Repeats count
    /// towards the keyframe cadence, so a still screen gets its keyframes as a moving one does.
    fn frame(&mut self, picture: Picture<'_>, keyframe: bool) -> Result<EncodedFrame, HostError> {
        let keyframe = keyframe || self.since_keyframe + 1 >= self.keyframe_interval;
        let repeat = match picture {
            Picture::Unchanged if !keyframe => self.repeater.repeat(),
            _ => None,
        };
        let frame = match repeat {
            Some(data) => EncodedFrame { data, keyframe: false },
            None => {
                let frame = match picture {
                    Picture::Rgba(pixels) => self.converter.convert(pixels)?,
                    Picture::Bgrx(pixels) => self.converter.convert_bgra(pixels)?,
                    Picture::Unchanged => self.converter.last(),
                };
                let encoded = self.encoder.encode(frame, keyframe)?;
                EncodedFrame { data: self.repeater.pass(&encoded.data)?, ..encoded }
            }
        };
        self.since_keyframe = if frame.keyframe { 0 } else { self.since_keyframe + 1 };
        Ok(frame)
    }
}

/// What one frame of Orbit costs this machine at `spec`'s size, from picture to encoded
/// frame (render, read-back, conversion, encode), and the encoder that made it: the median
/// of `frames` frames after a few to warm up. Blocking.
pub fn frame_cost(spec: StreamSpec, frames: usize) -> Result<(Duration, EncoderKind), HostError> {
    let mut workload = Launch::Orbit.start(spec.width, spec.height)?;
    let settings = EncoderSettings::for_stream(spec.width, spec.height, spec.fps);
    let mut stages = Stages::new(spec, settings.bitrate_bps)?;
    let mut costs = Vec::with_capacity(frames);
    for i in 0..frames + 5 {
        let started = Instant::now();
        let picture = workload.frame(spec.frame_duration())?;
        stages.frame(picture, i == 0)?;
        if i >= 5 {
            costs.push(started.elapsed());
        }
    }
    costs.sort();
    let median = costs.get(costs.len() / 2).copied().unwrap_or_default();
    Ok((median, stages.kind))
}

/// Runs the frame loop until `control.stop` is set or the output channel
/// closes; the workload's sound goes to `sound`. Blocking: call it on its own
/// thread.
pub fn run_pipeline(
    media: Media,
    launch: &Launch,
    inputs: Receiver<InputEvent>,
    output: Sender<EncodedOutput>,
    sound: Sender<SoundPacket>,
    control: &dyn Steering,
) -> Result<(), HostError> {
    let Media { spec, sound_frame } = media;
    let mut workload = launch.start(spec.width, spec.height)?;
    let source = workload.sound(sound_frame);
    // Sound takes its share of the budget before video.
    let has_sound = source.is_some();
    let video_target = || {
        let target = control.encoder_target();
        target.saturating_sub(if has_sound { sound_share(target) } else { 0 })
    };
    let mut stages = Stages::new(spec, video_target())?;
    // Ready while the player's connection is still being set up; frames start once it is up.
    while !control.connected() {
        if control.stopped() {
            return Ok(());
        }
        std::thread::sleep(CONNECT_POLL);
    }
    let share = sound_share(control.encoder_target());
    let sound = source.map(|source| SoundThread::start(source, sound_frame, share, sound));
    let mut pacer = FramePacer::new(spec.frame_duration(), Instant::now());
    let mut size = (spec.width, spec.height);
    let mut quality_changed = false;
    let mut last = Instant::now();
    let mut frame_id = 0u32;
    let mut early: Vec<InputEvent> = Vec::new();
    while !control.stopped() {
        // Under sustained pressure the controller steps down its ladder (and
        // back up once the path recovers): same scene, fewer pixels or frames.
        if let Some(now_spec) = control.take_quality() {
            let (width, height, fps) = (now_spec.width, now_spec.height, now_spec.fps);
            tracing::info!(width, height, fps, "quality changed");
            if (width, height) != size {
                workload.resize(width, height)?;
                stages = Stages::new(now_spec, video_target())?;
                size = (width, height);
            }
            pacer = FramePacer::new(now_spec.frame_duration(), Instant::now());
            quality_changed = true;
        }
        if let Some(sound) = &sound {
            sound.steer(control);
        }
        let started = Instant::now();
        let mut acks = Vec::new();
        frame_id += 1;
        let mut apply = |event: InputEvent| -> Result<(), HostError> {
            workload.apply(&event)?;
            acks.push(InputApplied { seq: event.seq, frame_id, rtp_timestamp: None });
            Ok(())
        };
        for event in early.drain(..) {
            apply(event)?;
        }
        loop {
            match inputs.try_recv() {
                Ok(event) => apply(event)?,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Ok(()),
            }
        }
        let copied = workload.copied()?;
        let picture = workload.frame(started - last)?;
        last = started;
        let target = video_target();
        let current = stages.bitrate_bps;
        if target.abs_diff(current) > current / 20 {
            match stages.encoder.set_bitrate(target) {
                Ok(()) => stages.bitrate_bps = target,
                Err(e) => tracing::warn!("keeping {current} bit/s: {e}"),
            }
        }
        let keyframe =
            frame_id == 1 || std::mem::take(&mut quality_changed) || control.take_keyframe();
        let encoded = stages.frame(picture, keyframe)?;
        let out = EncodedOutput {
            frame_id,
            captured_at: started,
            render_encode: started.elapsed(),
            data: Bytes::from(encoded.data),
            keyframe: encoded.keyframe,
            acks,
            copied,
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
    fn ladders_scale_to_the_stream_and_drop_repeated_rungs() {
        let ladder = ladder_for(StreamSpec { width: 1280, height: 720, fps: 60 });
        assert_eq!(ladder, LADDER_720P60.to_vec());
        // A portrait phone stream scales both sides by the same factor.
        let phone = ladder_for(StreamSpec { width: 720, height: 1280, fps: 60 });
        let sizes: Vec<_> = phone.iter().map(|l| (l.width, l.height, l.fps)).collect();
        assert_eq!(sizes, vec![(720, 1280, 60), (720, 1280, 30), (480, 854, 30), (360, 640, 30)]);
        // At 30 fps the 60 and 30 fps rungs are one; 1080p needs more bits per rung.
        let full_hd = ladder_for(StreamSpec { width: 1920, height: 1080, fps: 30 });
        assert_eq!(full_hd.len(), 3);
        assert_eq!((full_hd[0].width, full_hd[0].height, full_hd[0].fps), (1920, 1080, 30));
        assert_eq!(full_hd[0].min_bps, 4_500_000);
        assert!(full_hd.iter().all(|l| l.width % 2 == 0 && l.height % 2 == 0));
    }

    #[test]
    fn sound_takes_a_tenth_of_the_budget_between_24_and_96_kbits() {
        assert_eq!(sound_share(5_000_000), 96_000);
        assert_eq!(sound_share(600_000), 60_000);
        assert_eq!(sound_share(100_000), 24_000);
        assert_eq!(sound_share(0), 24_000);
    }

    #[test]
    fn frame_duration_is_exact_nanoseconds() {
        let spec = StreamSpec { width: 1280, height: 720, fps: 60 };
        assert_eq!(spec.frame_duration(), Duration::from_nanos(16_666_667));
    }
}
