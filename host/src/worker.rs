//! One worker process per session: the frame loop (workload, colour
//! conversion, encoder) runs in a process of its own, so that a crash in
//! one session's app, encoder or driver never takes the host or another
//! session down. The supervisor keeps the session's network side and talks
//! to its worker over the worker's stdin and stdout.
//!
//! Wire: messages of `kind: u8`, `length: u32` (little-endian), payload.
//! To the worker: [`START`] (JSON [`WorkerStart`]), [`INPUT`] (the binary
//! input codec), [`STEER`] (JSON [`Steer`]), [`STOP`]. From it: [`FRAME`]
//! (`u32` header length, JSON [`FrameHeader`], the access unit), [`SOUND`]
//! (`u32` samples, `u64` microseconds since its capture, the Opus packet) and,
//! last, [`END`] (JSON [`WorkerEnd`]).

use std::io::{BufReader, BufWriter, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gridplay_protocol::input::{InputApplied, InputEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::Sender;

use crate::HostError;
use crate::pipeline::{
    EncodedOutput, Media, SOUND_QUEUE, SoundPacket, Steering, StreamSpec, run_pipeline,
};
use crate::workloads::{AppExit, Launch};

const START: u8 = 1;
const INPUT: u8 = 2;
const STEER: u8 = 3;
const STOP: u8 = 4;
const FRAME: u8 = 1;
const END: u8 = 2;
const SOUND: u8 = 3;

/// Largest message either side accepts.
const MAX_MESSAGE: usize = 64 << 20;
/// How often the supervisor passes the network side's wishes on.
const STEER_EVERY: Duration = Duration::from_millis(2);

/// How to start a worker: a program and its arguments (e.g. `gridplay worker`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    /// The executable.
    pub program: std::path::PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

/// What a worker runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct WorkerStart {
    /// The pictures' size and rate, the sound's frame length.
    pub media: Media,
    /// The workload.
    pub launch: Launch,
    /// The encoder's first bitrate.
    pub bitrate_bps: u32,
}

/// The network side's wishes, as they change.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Steer {
    /// The player is connected.
    pub connected: bool,
    /// The encoder's target bitrate.
    pub target_bps: u32,
    /// A keyframe is wanted.
    pub keyframe: bool,
    /// The quality ladder moved to this size and rate.
    pub quality: Option<StreamSpec>,
    /// The receiver's latest loss, in percent.
    #[serde(default)]
    pub loss_percent: u8,
}

/// An encoded frame's metadata.
#[derive(Debug, Serialize, Deserialize)]
pub struct FrameHeader {
    frame_id: u32,
    /// Microseconds from the frame's start to when it was written out.
    age_us: u64,
    render_encode_us: u64,
    keyframe: bool,
    acks: Vec<InputApplied>,
    #[serde(default)]
    copied: Option<String>,
}

/// How a worker's frame loop ended.
#[derive(Debug, Serialize, Deserialize)]
pub enum WorkerEnd {
    /// It was told to stop, or its output went away.
    Stopped,
    /// The session's app exited.
    AppExited(AppExit),
    /// It failed.
    Failed(String),
}

fn write_message(out: &mut impl Write, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    out.write_all(&[kind])?;
    out.write_all(&(payload.len() as u32).to_le_bytes())?;
    out.write_all(payload)?;
    out.flush()
}

/// Reads one message; `None` at a clean end of the stream (between messages).
fn read_message(input: &mut impl Read) -> Result<Option<(u8, Vec<u8>)>, HostError> {
    let mut head = [0u8; 5];
    loop {
        match input.read(&mut head[..1]) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    input.read_exact(&mut head[1..])?;
    let length = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if length > MAX_MESSAGE {
        return Err(HostError::Worker(format!("message of {length} bytes")));
    }
    let mut payload = vec![0u8; length];
    input.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

fn json<T: for<'a> Deserialize<'a>>(payload: &[u8]) -> Result<T, HostError> {
    serde_json::from_slice(payload).map_err(|e| HostError::Worker(format!("bad message: {e}")))
}

/// Runs a session's frame loop in a worker started with `command`, as
/// [`run_pipeline`] would in this process: inputs in, encoded frames and sound
/// out, steered by `control`. Blocking. When the worker dies, everything it
/// started goes with it.
pub fn run_in_worker(
    command: &WorkerCommand,
    media: Media,
    launch: Launch,
    inputs: Receiver<InputEvent>,
    output: Sender<EncodedOutput>,
    sound: Sender<SoundPacket>,
    control: Arc<dyn Steering>,
) -> Result<(), HostError> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(&command.program)
        .args(&command.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| HostError::Worker(format!("could not start a worker: {e}")))?;
    let mut to_worker = child.stdin.take().expect("stdin is piped");
    let mut from_worker = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut worker = Worker { child, launch: launch.clone(), finished: false };
    let start = WorkerStart { media, launch, bitrate_bps: control.encoder_target() };
    let start = serde_json::to_vec(&start).expect("a start message serialises");
    write_message(&mut to_worker, START, &start)?;
    let done = Arc::new(AtomicBool::new(false));
    let steering = {
        let (control, done) = (Arc::clone(&control), Arc::clone(&done));
        std::thread::spawn(move || steer(&mut to_worker, &inputs, &*control, &done))
    };
    let end = receive(&mut from_worker, &output, &sound);
    // The frame loop is over: stop steering (closing the worker's stdin), let
    // the worker finish tidying up, and reap it.
    done.store(true, Ordering::Relaxed);
    let _ = steering.join();
    let status = worker.finish(EXIT_WAIT);
    match end? {
        Some(WorkerEnd::Stopped) => Ok(()),
        Some(WorkerEnd::AppExited(exit)) => Err(HostError::AppExited(exit)),
        Some(WorkerEnd::Failed(reason)) => Err(HostError::Worker(reason)),
        None => Err(HostError::WorkerDied(describe(status))),
    }
}

/// A running worker and its session; finished (reaped, its process group
/// killed, its session swept) at the latest when dropped.
struct Worker {
    child: Child,
    launch: Launch,
    finished: bool,
}

/// Longest a worker may take to tidy up after its frame loop ended.
const EXIT_WAIT: Duration = Duration::from_secs(5);

impl Worker {
    /// Lets the worker exit by itself (it does once its stdin closes) for up
    /// to `grace`, then kills whatever is left of its process group — while
    /// its pid, unreaped, cannot name another group — reaps it and sweeps
    /// what its session may have left.
    fn finish(&mut self, grace: Duration) -> Option<ExitStatus> {
        use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, kill_process_group, waitid};
        self.finished = true;
        let pid = i32::try_from(self.child.id()).ok().and_then(Pid::from_raw);
        let deadline = Instant::now() + grace;
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        while let Some(pid) = pid {
            let exited = waitid(WaitId::Pid(pid), options).map(|s| s.is_some()).unwrap_or(true);
            if exited || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(group) = pid {
            let _ = kill_process_group(group, Signal::KILL);
        }
        let status = self.child.wait().ok();
        if let Launch::App { name, .. } = &self.launch {
            crate::workloads::app::sweep(name);
        }
        status
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(Duration::ZERO);
        }
    }
}

fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) if s.signal().is_some() => format!("killed by signal {}", s.signal().unwrap_or(0)),
        Some(s) => format!("exited with status {}", s.code().unwrap_or(-1)),
        None => "vanished".into(),
    }
}

/// Passes inputs and the network side's wishes to the worker until the
/// loop stops or the worker goes away.
fn steer(
    to_worker: &mut impl Write,
    inputs: &Receiver<InputEvent>,
    control: &dyn Steering,
    done: &AtomicBool,
) {
    let (mut sent_target, mut sent_connected, mut sent_loss) = (0u32, false, 0u8);
    loop {
        if done.load(Ordering::Relaxed) {
            return;
        }
        if control.stopped() {
            let _ = write_message(to_worker, STOP, &[]);
            return;
        }
        match inputs.recv_timeout(STEER_EVERY) {
            Ok(event) => {
                let Ok(bytes) = event.encode() else { continue };
                if write_message(to_worker, INPUT, &bytes).is_err() {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let _ = write_message(to_worker, STOP, &[]);
                return;
            }
        }
        let target = control.encoder_target();
        let connected = control.connected();
        let steer = Steer {
            connected,
            target_bps: target,
            keyframe: control.take_keyframe(),
            quality: control.take_quality(),
            loss_percent: control.loss_percent(),
        };
        let news = steer.keyframe
            || steer.quality.is_some()
            || connected != sent_connected
            || steer.loss_percent != sent_loss;
        if news || target.abs_diff(sent_target) > sent_target / 50 {
            (sent_target, sent_connected, sent_loss) = (target, connected, steer.loss_percent);
            let message = serde_json::to_vec(&steer).expect("steering serialises");
            if write_message(to_worker, STEER, &message).is_err() {
                return;
            }
        }
    }
}

/// Forwards the worker's frames and sound until its end message (or its death).
fn receive(
    from_worker: &mut impl Read,
    output: &Sender<EncodedOutput>,
    sound: &Sender<SoundPacket>,
) -> Result<Option<WorkerEnd>, HostError> {
    while let Some((kind, payload)) = read_message(from_worker)? {
        match kind {
            FRAME => {
                let frame = decode_frame(&payload)?;
                if output.blocking_send(frame).is_err() {
                    return Ok(Some(WorkerEnd::Stopped));
                }
            }
            // Sound never waits: a packet the session is not ready for is dropped.
            SOUND => {
                let _ = sound.try_send(decode_sound(&payload)?);
            }
            END => return json(&payload).map(Some),
            other => return Err(HostError::Worker(format!("unknown message {other}"))),
        }
    }
    Ok(None)
}

fn encode_frame(frame: &EncodedOutput) -> Vec<u8> {
    let header = FrameHeader {
        frame_id: frame.frame_id,
        age_us: frame.captured_at.elapsed().as_micros() as u64,
        render_encode_us: frame.render_encode.as_micros() as u64,
        keyframe: frame.keyframe,
        acks: frame.acks.clone(),
        copied: frame.copied.clone(),
    };
    let header = serde_json::to_vec(&header).expect("frame headers serialise");
    let mut out = Vec::with_capacity(4 + header.len() + frame.data.len());
    out.extend((header.len() as u32).to_le_bytes());
    out.extend(header);
    out.extend(&frame.data[..]);
    out
}

fn decode_frame(payload: &[u8]) -> Result<EncodedOutput, HostError> {
    let bad = || HostError::Worker("truncated frame".into());
    let length = payload.get(..4).ok_or_else(bad)?;
    let length = u32::from_le_bytes(length.try_into().map_err(|_| bad())?) as usize;
    let header = payload.get(4..4 + length).ok_or_else(bad)?;
    let header: FrameHeader = json(header)?;
    let now = Instant::now();
    Ok(EncodedOutput {
        frame_id: header.frame_id,
        captured_at: now.checked_sub(Duration::from_micros(header.age_us)).unwrap_or(now),
        render_encode: Duration::from_micros(header.render_encode_us),
        data: Bytes::copy_from_slice(&payload[4 + length..]),
        keyframe: header.keyframe,
        acks: header.acks,
        copied: header.copied,
    })
}

/// Length of a sound message's head: samples and age.
const SOUND_HEAD: usize = 12;

fn encode_sound(packet: &SoundPacket) -> Vec<u8> {
    let mut out = Vec::with_capacity(SOUND_HEAD + packet.data.len());
    out.extend(packet.samples.to_le_bytes());
    out.extend((packet.captured_at.elapsed().as_micros() as u64).to_le_bytes());
    out.extend(&packet.data[..]);
    out
}

fn decode_sound(payload: &[u8]) -> Result<SoundPacket, HostError> {
    let bad = || HostError::Worker("truncated sound".into());
    let head = payload.get(..SOUND_HEAD).ok_or_else(bad)?;
    let samples = u32::from_le_bytes(head[..4].try_into().map_err(|_| bad())?);
    let age_us = u64::from_le_bytes(head[4..].try_into().map_err(|_| bad())?);
    let now = Instant::now();
    Ok(SoundPacket {
        data: Bytes::copy_from_slice(&payload[SOUND_HEAD..]),
        samples,
        captured_at: now.checked_sub(Duration::from_micros(age_us)).unwrap_or(now),
    })
}

/// The supervisor's wishes as the worker last heard them.
#[derive(Default)]
struct RemoteSteering {
    connected: AtomicBool,
    stop: AtomicBool,
    target: AtomicU32,
    keyframe: AtomicBool,
    quality: Mutex<Option<StreamSpec>>,
    loss: AtomicU8,
}

impl Steering for RemoteSteering {
    fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn encoder_target(&self) -> u32 {
        self.target.load(Ordering::Relaxed)
    }

    fn take_keyframe(&self) -> bool {
        self.keyframe.swap(false, Ordering::Relaxed)
    }

    fn take_quality(&self) -> Option<StreamSpec> {
        self.quality.lock().expect("quality lock").take()
    }

    fn loss_percent(&self) -> u8 {
        self.loss.load(Ordering::Relaxed)
    }
}

/// The worker process: reads its start message, runs the frame loop and
/// writes frames to stdout until told to stop or its stdin closes.
pub fn worker_main() -> Result<(), HostError> {
    let mut input = BufReader::new(std::io::stdin());
    let Some((START, payload)) = read_message(&mut input)? else {
        return Err(HostError::Worker("expected a start message".into()));
    };
    let start: WorkerStart = json(&payload)?;
    let steering = Arc::new(RemoteSteering::default());
    steering.target.store(start.bitrate_bps, Ordering::Relaxed);
    let (input_tx, input_rx) = std::sync::mpsc::channel();
    let (frames_tx, mut frames_rx) = tokio::sync::mpsc::channel::<EncodedOutput>(2);
    let (sound_tx, mut sound_rx) = tokio::sync::mpsc::channel::<SoundPacket>(SOUND_QUEUE);
    // Frames and sound share stdout, a whole message at a time.
    let out = Arc::new(Mutex::new(BufWriter::new(std::io::stdout())));
    let write = |out: &Mutex<BufWriter<std::io::Stdout>>, kind: u8, payload: &[u8]| {
        write_message(&mut *out.lock().unwrap_or_else(|p| p.into_inner()), kind, payload)
    };
    let writer = {
        let out = Arc::clone(&out);
        std::thread::spawn(move || -> std::io::Result<()> {
            while let Some(frame) = frames_rx.blocking_recv() {
                write(&out, FRAME, &encode_frame(&frame))?;
            }
            Ok(())
        })
    };
    {
        let out = Arc::clone(&out);
        std::thread::spawn(move || {
            while let Some(packet) = sound_rx.blocking_recv() {
                if write(&out, SOUND, &encode_sound(&packet)).is_err() {
                    return;
                }
            }
        });
    }
    {
        let steering = Arc::clone(&steering);
        std::thread::spawn(move || {
            // Any read error or the end of stdin means the supervisor is gone.
            while let Ok(Some((kind, payload))) = read_message(&mut input) {
                match kind {
                    INPUT => match InputEvent::decode(&payload) {
                        Ok(event) => {
                            let _ = input_tx.send(event);
                        }
                        Err(_) => break,
                    },
                    STEER => {
                        let Ok(steer) = json::<Steer>(&payload) else { break };
                        steering.target.store(steer.target_bps, Ordering::Relaxed);
                        steering.connected.store(steer.connected, Ordering::Relaxed);
                        steering.loss.store(steer.loss_percent, Ordering::Relaxed);
                        if steer.keyframe {
                            steering.keyframe.store(true, Ordering::Relaxed);
                        }
                        if let Some(quality) = steer.quality {
                            *steering.quality.lock().expect("quality lock") = Some(quality);
                        }
                    }
                    _ => break,
                }
            }
            steering.stop.store(true, Ordering::Relaxed);
        });
    }
    let result =
        run_pipeline(start.media, &start.launch, input_rx, frames_tx, sound_tx, &*steering);
    let _ = writer.join();
    let end = match result {
        Ok(()) => WorkerEnd::Stopped,
        Err(HostError::AppExited(exit)) => WorkerEnd::AppExited(exit),
        Err(e) => WorkerEnd::Failed(e.to_string()),
    };
    let end = serde_json::to_vec(&end).expect("an end message serialises");
    write(&out, END, &end)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_the_pipe_whole_and_truncated_ones_are_refused() {
        let frame = EncodedOutput {
            frame_id: 7,
            captured_at: Instant::now(),
            render_encode: Duration::from_micros(1234),
            data: Bytes::from_static(b"\x00\x00\x00\x01\x65access unit"),
            keyframe: true,
            acks: vec![InputApplied { seq: 3, frame_id: 7, rtp_timestamp: None }],
            copied: Some("copied ✓".into()),
        };
        let mut wire = Vec::new();
        write_message(&mut wire, FRAME, &encode_frame(&frame)).unwrap();
        let (kind, payload) = read_message(&mut &wire[..]).unwrap().unwrap();
        assert_eq!(kind, FRAME);
        let back = decode_frame(&payload).unwrap();
        assert_eq!(
            (back.frame_id, back.keyframe, &back.data, &back.acks),
            (7, true, &frame.data, &frame.acks)
        );
        assert_eq!(back.render_encode, frame.render_encode);
        assert!(back.captured_at <= Instant::now());
        for cut in [0, 3, 10] {
            assert!(decode_frame(&payload[..cut]).is_err(), "cut at {cut}");
        }
        assert!(read_message(&mut &wire[..4]).is_err(), "a truncated head");
        let mut huge = vec![FRAME];
        huge.extend(u32::MAX.to_le_bytes());
        assert!(read_message(&mut &huge[..]).is_err(), "an oversized length");
        assert!(read_message(&mut &[][..]).unwrap().is_none(), "a clean end");
    }

    #[test]
    fn sound_crosses_the_pipe_whole_and_truncated_sound_is_refused() {
        let packet = SoundPacket {
            data: Bytes::from_static(&[0xfc, 0xff, 0xfe]),
            samples: 480,
            captured_at: Instant::now(),
        };
        let wire = encode_sound(&packet);
        let back = decode_sound(&wire).unwrap();
        assert_eq!((back.samples, &back.data), (480, &packet.data));
        assert!(back.captured_at <= Instant::now());
        assert!(decode_sound(&wire[..SOUND_HEAD - 1]).is_err());
    }
}
