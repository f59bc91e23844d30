//! Per-frame cost of the host pipeline by stage: render, readback, colour
//! conversion and encode, on the real Vulkan device and openh264.

use std::time::{Duration, Instant};

use gridplay_host::workloads::orbit::game::GameState;
use gridplay_host::workloads::orbit::render::Renderer;
use gridplay_protocol::input::{InputEvent, InputKind};
use gridplay_streaming::{ColourConverter, EncoderSettings, OpenH264Encoder, VideoEncoder};
use serde::Serialize;

use crate::stats::Summary;

/// Stage costs at one resolution.
#[derive(Debug, Serialize)]
pub struct StageReport {
    /// "WIDTHxHEIGHT".
    pub resolution: String,
    /// Frames measured.
    pub frames: usize,
    /// Vulkan draw, submit and wait.
    pub render: Summary,
    /// Image-to-buffer copy and wait.
    pub readback: Summary,
    /// RGBA to I420.
    pub convert: Summary,
    /// openh264.
    pub encode: Summary,
    /// The whole frame.
    pub total: Summary,
    /// Mean encoded size, kilobits per frame.
    pub mean_frame_kbit: f64,
}

/// Runs `frames` frames (after a warm-up) at one resolution.
pub fn measure(width: u32, height: u32, frames: usize) -> anyhow::Result<StageReport> {
    let fps = 60;
    let mut renderer = Renderer::new(width, height)?;
    let mut converter = ColourConverter::new(width, height);
    let mut encoder = OpenH264Encoder::new(EncoderSettings::for_stream(width, height, fps))?;
    let mut game = GameState::new(width, height);
    game.apply(&InputEvent { seq: 1, kind: InputKind::KeyDown { code: "ArrowRight".into() } });
    let dt = Duration::from_nanos(16_666_667);
    let (mut render, mut readback, mut convert, mut encode, mut total) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut bits = 0usize;
    for i in 0..frames + 30 {
        game.advance(dt);
        let start = Instant::now();
        let timings = renderer.render(&game.scene())?;
        let t_convert = Instant::now();
        let frame = converter.convert(renderer.pixels())?;
        let t_encode = Instant::now();
        let encoded = encoder.encode(frame, i == 0)?;
        let end = Instant::now();
        if i >= 30 {
            render.push(timings.render);
            readback.push(timings.readback);
            convert.push(t_encode - t_convert);
            encode.push(end - t_encode);
            total.push(end - start);
            bits += encoded.data.len() * 8;
        }
    }
    Ok(StageReport {
        resolution: format!("{width}x{height}"),
        frames,
        render: Summary::of(&render),
        readback: Summary::of(&readback),
        convert: Summary::of(&convert),
        encode: Summary::of(&encode),
        total: Summary::of(&total),
        mean_frame_kbit: bits as f64 / frames as f64 / 1000.0,
    })
}
