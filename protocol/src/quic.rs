//! The native transport's wire contract: QUIC (ALPN [`ALPN`]) between a host
//! and a native player, watcher or checker.
//!
//! # Connection
//!
//! The client pins the host's self-signed certificate by its SHA-256
//! ([`QuicEndpoint::cert_sha256`], published in the host's registration and
//! in the allocation answer), then opens one bidirectional **control
//! stream**. On it both sides send [`ControlMessage`]s, each a `u32`
//! big-endian length (at most [`MAX_CONTROL_LEN`]) and that many bytes of
//! JSON. The first client message is [`ControlMessage::Hello`] with the
//! broker's session token; the host answers [`ControlMessage::Welcome`] or
//! closes the connection with a [`CloseCode`].
//!
//! # Video
//!
//! Each access unit travels either on **one unidirectional stream per
//! frame** (a [`FrameHeader`] then the Annex-B bytes, then FIN) or as
//! **datagrams** (each a [`Fragment`] of at most the path's datagram size),
//! as the client chose in its hello.
//!
//! # Sound
//!
//! A client that asked for sound in its hello gets each Opus packet of the
//! session's sound as one [`DATAGRAM_SOUND`] datagram ([`SoundDatagram`]),
//! stamped on a 48 kHz clock from the same instant as the video's timestamps.
//!
//! # Input
//!
//! Datagrams whose first byte is [`DATAGRAM_INPUT`] carry one message of the
//! binary input codec ([`crate::input`]) after it: input events from the
//! client, acknowledgements ([`crate::input::InputApplied`]) from the host,
//! whose timestamp is the acknowledged frame's [`FrameHeader::timestamp`].
//!
//! # Feedback
//!
//! The client reports when each frame arrived whole, or that it was lost, in
//! [`DATAGRAM_FEEDBACK`] datagrams ([`FrameFeedback`]); the host's
//! congestion controller follows them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ProtocolError;

/// ALPN protocol id of Gridplay's QUIC transport.
pub const ALPN: &[u8] = b"gridplay/1";

/// Largest control message body, in bytes.
pub const MAX_CONTROL_LEN: usize = 64 * 1024;

/// Largest access unit a frame stream may carry, in bytes.
pub const MAX_FRAME_LEN: usize = 8 * 1024 * 1024;

/// First byte of a datagram carrying a video [`Fragment`].
pub const DATAGRAM_VIDEO: u8 = 0x01;

/// First byte of a datagram carrying an input event or acknowledgement.
pub const DATAGRAM_INPUT: u8 = 0x02;

/// First byte of a datagram carrying a [`SoundDatagram`].
pub const DATAGRAM_SOUND: u8 = 0x04;

/// Where a host takes QUIC connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, ts_rs::TS)]
#[ts(export)]
#[serde(deny_unknown_fields)]
pub struct QuicEndpoint {
    /// `host:port` of the UDP socket.
    pub addr: String,
    /// SHA-256 of the host's certificate (DER), lowercase hex: the client
    /// accepts exactly this certificate.
    pub cert_sha256: String,
}

impl QuicEndpoint {
    /// Checks the endpoint: `host:port` of at most 255 bytes, and a SHA-256
    /// of 64 lowercase hex digits.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let port = self.addr.rsplit_once(':').map(|(_, port)| port.parse::<u16>());
        if self.addr.len() > 255 || !matches!(port, Some(Ok(p)) if p > 0) {
            return Err(ProtocolError::Invalid("quic.addr must be host:port".into()));
        }
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if self.cert_sha256.len() != 64 || !self.cert_sha256.chars().all(hex) {
            return Err(ProtocolError::Invalid(
                "quic.cert_sha256 must be 64 lowercase hex digits".into(),
            ));
        }
        Ok(())
    }
}

/// How a client wants its video carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoCarriage {
    /// One unidirectional stream per frame: reliable, never a partial frame.
    #[default]
    Streams,
    /// Unreliable datagrams: a lost fragment loses the frame, nothing waits.
    Datagrams,
}

/// What a client joins a session as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinRole {
    /// The session's player: starts the session, its input drives the game.
    #[default]
    Player,
    /// A watcher of a running session: gets the same encoded frames as the
    /// player (one encode serves both), sends no input.
    Watcher,
}

/// One message on the control stream. Its `Debug` form never shows a hello's token
/// (control messages get logged; tokens must not be).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlMessage {
    /// Client, first: who it is and how it wants video.
    Hello {
        /// The broker's session token.
        token: String,
        /// Player or watcher.
        #[serde(default)]
        role: JoinRole,
        /// Frame streams or datagrams.
        #[serde(default)]
        video: VideoCarriage,
        /// Whether it wants the session's sound.
        #[serde(default)]
        sound: bool,
    },
    /// Host, in answer to a hello it accepts.
    Welcome {
        /// The session joined.
        session_id: String,
        /// Frame width in pixels.
        width: u32,
        /// Frame height in pixels.
        height: u32,
        /// Frame rate.
        fps: u32,
    },
    /// Client: the picture is broken, send a keyframe.
    KeyframeRequest,
    /// Either side: one probe message (the JSON of
    /// [`crate::probe::ClientProbeMessage`] from the client,
    /// [`crate::probe::HostProbeMessage`] from the host).
    Probe {
        /// The probe message's JSON text.
        text: String,
    },
}

impl std::fmt::Debug for ControlMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hello { token: _, role, video, sound } => f
                .debug_struct("Hello")
                .field("token", &"<redacted>")
                .field("role", role)
                .field("video", video)
                .field("sound", sound)
                .finish(),
            Self::Welcome { session_id, width, height, fps } => f
                .debug_struct("Welcome")
                .field("session_id", session_id)
                .field("width", width)
                .field("height", height)
                .field("fps", fps)
                .finish(),
            Self::KeyframeRequest => f.write_str("KeyframeRequest"),
            Self::Probe { text } => f.debug_struct("Probe").field("text", text).finish(),
        }
    }
}

impl ControlMessage {
    /// The message with its length prefix, ready to write.
    pub fn encode(&self) -> Vec<u8> {
        let body = serde_json::to_vec(self).expect("control messages serialise");
        let mut out = Vec::with_capacity(4 + body.len());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Reads a body's length from its 4-byte prefix, refusing oversized ones.
    pub fn body_len(prefix: [u8; 4]) -> Result<usize, ProtocolError> {
        let len = u32::from_be_bytes(prefix) as usize;
        if len > MAX_CONTROL_LEN {
            return Err(ProtocolError::Invalid(format!(
                "control message of {len} bytes exceeds {MAX_CONTROL_LEN}"
            )));
        }
        Ok(len)
    }

    /// Parses a body (without its length prefix).
    pub fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        serde_json::from_slice(body)
            .map_err(|e| ProtocolError::Invalid(format!("control message: {e}")))
    }
}

/// Application close codes of a QUIC connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum CloseCode {
    /// The session ended normally.
    Done = 0,
    /// The token was missing, forged, expired or for another host.
    Unauthorized = 1,
    /// A control message or datagram broke this contract.
    ProtocolViolation = 2,
    /// No free slot for a new session, or (for a watcher) the session
    /// already has as many watchers as the host allows; the reason says which.
    NoCapacity = 3,
    /// The session is already played (a second player) or not running (a watcher).
    Conflict = 4,
    /// The host failed.
    Internal = 5,
}

impl CloseCode {
    /// The code with this number, if any.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => Self::Done,
            1 => Self::Unauthorized,
            2 => Self::ProtocolViolation,
            3 => Self::NoCapacity,
            4 => Self::Conflict,
            5 => Self::Internal,
            _ => return None,
        })
    }
}

/// What precedes an access unit on its frame stream, and every fragment of
/// it as a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Frame id, counted from 1 per session.
    pub frame_id: u32,
    /// Media timestamp, 90 kHz, from the session's start.
    pub timestamp: u32,
    /// Whether the unit is a keyframe (IDR).
    pub keyframe: bool,
}

/// Bytes of an encoded [`FrameHeader`] on a frame stream: `frame_id: u32`,
/// `timestamp: u32`, `flags: u8` (bit 0 keyframe), `len: u32` (bytes that
/// follow), all big-endian.
pub const FRAME_HEADER_LEN: usize = 13;

impl FrameHeader {
    /// The header of a frame stream whose unit is `len` bytes long.
    pub fn encode(&self, len: usize) -> [u8; FRAME_HEADER_LEN] {
        let mut out = [0u8; FRAME_HEADER_LEN];
        out[0..4].copy_from_slice(&self.frame_id.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8] = u8::from(self.keyframe);
        out[9..13].copy_from_slice(&(len as u32).to_be_bytes());
        out
    }

    /// Parses a frame stream's header; returns it and the unit's length.
    pub fn decode(bytes: &[u8; FRAME_HEADER_LEN]) -> Result<(Self, usize), ProtocolError> {
        let flags = bytes[8];
        if flags & !1 != 0 {
            return Err(ProtocolError::Invalid(format!("unknown frame flags 0x{flags:02x}")));
        }
        let len = u32::from_be_bytes([bytes[9], bytes[10], bytes[11], bytes[12]]) as usize;
        if len > MAX_FRAME_LEN {
            return Err(ProtocolError::Invalid(format!(
                "frame of {len} bytes exceeds {MAX_FRAME_LEN}"
            )));
        }
        let header = Self {
            frame_id: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            timestamp: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            keyframe: flags & 1 == 1,
        };
        Ok((header, len))
    }
}

/// One piece of an access unit sent as a datagram: `type: u8`
/// ([`DATAGRAM_VIDEO`]), `frame_id: u32`, `timestamp: u32`, `flags: u8`,
/// `index: u16`, `count: u16` (big-endian), then the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// The frame it belongs to.
    pub header: FrameHeader,
    /// Its place among the frame's fragments, from 0.
    pub index: u16,
    /// How many fragments the frame has (at least 1).
    pub count: u16,
    /// Its bytes of the access unit.
    pub payload: &'a [u8],
}

/// Bytes before a [`Fragment`]'s payload, its type byte included.
pub const FRAGMENT_HEADER_LEN: usize = 14;

impl<'a> Fragment<'a> {
    /// Splits an access unit into fragments whose datagrams are at most
    /// `max_datagram` bytes; `None` if it would take more than `u16::MAX`
    /// fragments or `max_datagram` leaves no room for payload.
    pub fn split(
        header: FrameHeader,
        unit: &'a [u8],
        max_datagram: usize,
    ) -> Option<Vec<Fragment<'a>>> {
        let room = max_datagram.checked_sub(FRAGMENT_HEADER_LEN).filter(|r| *r > 0)?;
        let count = unit.len().div_ceil(room).max(1);
        let count = u16::try_from(count).ok()?;
        let chunks: Vec<&[u8]> =
            if unit.is_empty() { vec![&[][..]] } else { unit.chunks(room).collect() };
        Some(
            chunks
                .into_iter()
                .enumerate()
                .map(|(i, payload)| Fragment { header, index: i as u16, count, payload })
                .collect(),
        )
    }

    /// The datagram carrying this fragment.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FRAGMENT_HEADER_LEN + self.payload.len());
        out.push(DATAGRAM_VIDEO);
        out.extend_from_slice(&self.header.frame_id.to_be_bytes());
        out.extend_from_slice(&self.header.timestamp.to_be_bytes());
        out.push(u8::from(self.header.keyframe));
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(self.payload);
        out
    }

    /// Parses a video datagram (type byte included).
    pub fn decode(datagram: &'a [u8]) -> Result<Self, ProtocolError> {
        if datagram.len() < FRAGMENT_HEADER_LEN {
            return Err(ProtocolError::Truncated);
        }
        if datagram[0] != DATAGRAM_VIDEO {
            return Err(ProtocolError::Invalid(format!(
                "datagram type 0x{:02x} is not video",
                datagram[0]
            )));
        }
        let u32_at = |i: usize| {
            u32::from_be_bytes([datagram[i], datagram[i + 1], datagram[i + 2], datagram[i + 3]])
        };
        let u16_at = |i: usize| u16::from_be_bytes([datagram[i], datagram[i + 1]]);
        let flags = datagram[9];
        if flags & !1 != 0 {
            return Err(ProtocolError::Invalid(format!("unknown frame flags 0x{flags:02x}")));
        }
        let (index, count) = (u16_at(10), u16_at(12));
        if count == 0 || index >= count {
            return Err(ProtocolError::Invalid(format!("fragment {index} of {count}")));
        }
        Ok(Self {
            header: FrameHeader {
                frame_id: u32_at(1),
                timestamp: u32_at(5),
                keyframe: flags & 1 == 1,
            },
            index,
            count,
            payload: &datagram[FRAGMENT_HEADER_LEN..],
        })
    }
}

/// First byte of a datagram carrying [`FrameFeedback`] from the client.
pub const DATAGRAM_FEEDBACK: u8 = 0x03;

/// The client's word on one frame: when it arrived whole, on the client's
/// own monotonic clock, or that it was lost. The host pairs it with the
/// frame's send time to drive congestion control (the clocks' offset
/// cancels: only differences count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameFeedback {
    /// The frame.
    pub frame_id: u32,
    /// Microseconds on the client's clock when its last byte arrived;
    /// `None` if it was lost.
    pub arrival_us: Option<u64>,
}

/// Most [`FrameFeedback`] entries in one datagram.
pub const MAX_FEEDBACK_ENTRIES: usize = 32;

impl FrameFeedback {
    /// The datagram carrying `entries` (at most [`MAX_FEEDBACK_ENTRIES`]):
    /// `type: u8`, `n: u8`, then per entry `frame_id: u32`, `flags: u8`
    /// (bit 0: arrived), `arrival_us: u64` (0 for a lost frame), big-endian.
    pub fn encode(entries: &[FrameFeedback]) -> Vec<u8> {
        let entries = &entries[..entries.len().min(MAX_FEEDBACK_ENTRIES)];
        let mut out = Vec::with_capacity(2 + 13 * entries.len());
        out.push(DATAGRAM_FEEDBACK);
        out.push(entries.len() as u8);
        for entry in entries {
            out.extend_from_slice(&entry.frame_id.to_be_bytes());
            out.push(u8::from(entry.arrival_us.is_some()));
            out.extend_from_slice(&entry.arrival_us.unwrap_or(0).to_be_bytes());
        }
        out
    }

    /// Parses a feedback datagram (type byte included).
    pub fn decode(datagram: &[u8]) -> Result<Vec<FrameFeedback>, ProtocolError> {
        let (&kind, rest) = datagram.split_first().ok_or(ProtocolError::Truncated)?;
        if kind != DATAGRAM_FEEDBACK {
            return Err(ProtocolError::Invalid(format!(
                "datagram type 0x{kind:02x} is not feedback"
            )));
        }
        let (&n, body) = rest.split_first().ok_or(ProtocolError::Truncated)?;
        let n = usize::from(n);
        if n > MAX_FEEDBACK_ENTRIES {
            return Err(ProtocolError::Invalid(format!("{n} feedback entries")));
        }
        if body.len() < 13 * n {
            return Err(ProtocolError::Truncated);
        }
        if body.len() > 13 * n {
            return Err(ProtocolError::TrailingBytes(body.len() - 13 * n));
        }
        body.chunks_exact(13)
            .map(|entry| {
                let frame_id = u32::from_be_bytes(entry[0..4].try_into().expect("4 bytes"));
                let arrival = u64::from_be_bytes(entry[5..13].try_into().expect("8 bytes"));
                match entry[4] {
                    0 if arrival == 0 => Ok(FrameFeedback { frame_id, arrival_us: None }),
                    0 => Err(ProtocolError::Invalid("a lost frame with an arrival time".into())),
                    1 => Ok(FrameFeedback { frame_id, arrival_us: Some(arrival) }),
                    flags => Err(ProtocolError::Invalid(format!("feedback flags 0x{flags:02x}"))),
                }
            })
            .collect()
    }
}

/// One Opus packet of the session's sound as a datagram: `type: u8`
/// ([`DATAGRAM_SOUND`]), `timestamp: u32` (48 kHz), `samples: u16` (per channel,
/// big-endian), then the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoundDatagram<'a> {
    /// When its first sample plays, 48 kHz, from the instant video timestamps count from.
    pub timestamp: u32,
    /// Samples per channel it holds: a whole number of 2.5 ms, at most 120 ms.
    pub samples: u16,
    /// The Opus packet.
    pub packet: &'a [u8],
}

/// Bytes before a [`SoundDatagram`]'s packet, its type byte included.
pub const SOUND_HEADER_LEN: usize = 7;
/// Largest Opus packet a [`SoundDatagram`] carries (Opus's own limit for one frame).
pub const MAX_SOUND_PACKET: usize = 1275;

impl<'a> SoundDatagram<'a> {
    /// The datagram's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SOUND_HEADER_LEN + self.packet.len());
        out.push(DATAGRAM_SOUND);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.samples.to_be_bytes());
        out.extend_from_slice(self.packet);
        out
    }

    /// Parses a sound datagram (type byte included); refuses a sample count that is
    /// no Opus frame and a packet that is empty or longer than [`MAX_SOUND_PACKET`].
    pub fn decode(datagram: &'a [u8]) -> Result<Self, ProtocolError> {
        let header = datagram.get(..SOUND_HEADER_LEN).ok_or(ProtocolError::Truncated)?;
        if header[0] != DATAGRAM_SOUND {
            return Err(ProtocolError::Invalid(format!(
                "datagram type 0x{:02x} is not sound",
                header[0]
            )));
        }
        let samples = u16::from_be_bytes([header[5], header[6]]);
        // 2.5 ms is 120 samples at 48 kHz; Opus frames are 1 to 48 of them.
        if samples == 0 || samples % 120 != 0 || samples > 5760 {
            return Err(ProtocolError::Invalid(format!("{samples} samples is no Opus frame")));
        }
        let packet = &datagram[SOUND_HEADER_LEN..];
        if packet.is_empty() || packet.len() > MAX_SOUND_PACKET {
            return Err(ProtocolError::Invalid(format!(
                "a sound packet of {} bytes",
                packet.len()
            )));
        }
        let timestamp = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        Ok(Self { timestamp, samples, packet })
    }
}

/// The datagram carrying one input-codec message.
pub fn input_datagram(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + message.len());
    out.push(DATAGRAM_INPUT);
    out.extend_from_slice(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: FrameHeader = FrameHeader { frame_id: 7, timestamp: 90_000, keyframe: true };

    #[test]
    fn frame_headers_round_trip_and_refuse_nonsense() {
        let bytes = HEADER.encode(1234);
        assert_eq!(FrameHeader::decode(&bytes), Ok((HEADER, 1234)));
        let mut flags = bytes;
        flags[8] = 0x82;
        assert!(FrameHeader::decode(&flags).is_err());
        let huge = FrameHeader::encode(&HEADER, MAX_FRAME_LEN + 1);
        assert!(FrameHeader::decode(&huge).is_err());
    }

    #[test]
    fn units_split_into_fragments_that_fit_and_reassemble() {
        let unit: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let fragments = Fragment::split(HEADER, &unit, 1200).expect("fits");
        assert_eq!(fragments.len(), 3);
        let mut joined = Vec::new();
        for fragment in &fragments {
            let datagram = fragment.encode();
            assert!(datagram.len() <= 1200);
            let parsed = Fragment::decode(&datagram).expect("decodes");
            assert_eq!(parsed, *fragment);
            joined.extend_from_slice(parsed.payload);
        }
        assert_eq!(joined, unit);
        assert!(Fragment::split(HEADER, &unit, FRAGMENT_HEADER_LEN).is_none());
        assert_eq!(Fragment::split(HEADER, &[], 1200).map(|f| f.len()), Some(1));
    }

    #[test]
    fn bad_fragments_are_refused() {
        let good = Fragment { header: HEADER, index: 0, count: 1, payload: b"x" }.encode();
        assert_eq!(Fragment::decode(&good[..5]), Err(ProtocolError::Truncated));
        let mut wrong_type = good.clone();
        wrong_type[0] = DATAGRAM_INPUT;
        assert!(Fragment::decode(&wrong_type).is_err());
        let mut beyond = good.clone();
        beyond[11] = 1; // index 1 of 1
        assert!(Fragment::decode(&beyond).is_err());
        let mut none = good;
        none[13] = 0; // count 0
        assert!(Fragment::decode(&none).is_err());
    }

    #[test]
    fn control_messages_round_trip_and_refuse_oversized_or_unknown() {
        let hello = ControlMessage::Hello {
            token: "t".into(),
            role: JoinRole::Watcher,
            video: VideoCarriage::Datagrams,
            sound: true,
        };
        let bytes = hello.encode();
        let len = ControlMessage::body_len(bytes[..4].try_into().unwrap()).unwrap();
        assert_eq!(ControlMessage::decode(&bytes[4..4 + len]), Ok(hello));
        assert_eq!(
            ControlMessage::decode(br#"{"type":"hello","token":"t"}"#),
            Ok(ControlMessage::Hello {
                token: "t".into(),
                role: JoinRole::Player,
                video: VideoCarriage::Streams,
                sound: false,
            })
        );
        assert!(ControlMessage::body_len((MAX_CONTROL_LEN as u32 + 1).to_be_bytes()).is_err());
        assert!(ControlMessage::decode(br#"{"type":"launch_missiles"}"#).is_err());
        assert!(ControlMessage::decode(b"\xff\xfe").is_err());
    }

    /// Found by fuzzing (`frame_feedback`): a lost entry's arrival bytes were ignored, so
    /// one report had many wire forms.
    #[test]
    fn a_lost_frame_with_an_arrival_time_is_refused() {
        let mut datagram =
            FrameFeedback::encode(&[FrameFeedback { frame_id: 1, arrival_us: None }]);
        assert!(FrameFeedback::decode(&datagram).is_ok());
        datagram[14] = 1;
        assert!(FrameFeedback::decode(&datagram).is_err());
    }

    #[test]
    fn feedback_round_trips_and_refuses_malformed_datagrams() {
        let entries = [
            FrameFeedback { frame_id: 1, arrival_us: Some(16_000) },
            FrameFeedback { frame_id: 2, arrival_us: None },
        ];
        let bytes = FrameFeedback::encode(&entries);
        assert_eq!(FrameFeedback::decode(&bytes), Ok(entries.to_vec()));
        assert_eq!(FrameFeedback::decode(&bytes[..bytes.len() - 1]), Err(ProtocolError::Truncated));
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(FrameFeedback::decode(&extra), Err(ProtocolError::TrailingBytes(1)));
        let mut flags = bytes.clone();
        flags[6] = 9;
        assert!(FrameFeedback::decode(&flags).is_err());
        assert!(FrameFeedback::decode(&[DATAGRAM_FEEDBACK, 200]).is_err());
        assert_eq!(FrameFeedback::decode(&[]), Err(ProtocolError::Truncated));
    }

    #[test]
    fn endpoints_are_validated() {
        let good = QuicEndpoint { addr: "127.0.0.1:4433".into(), cert_sha256: "ab".repeat(32) };
        assert_eq!(good.validate(), Ok(()));
        for (addr, hash) in [
            ("127.0.0.1", "ab".repeat(32)),
            ("127.0.0.1:0", "ab".repeat(32)),
            ("[::1]:4433", "AB".repeat(32)),
            ("h:1", "ab".repeat(31)),
        ] {
            let bad = QuicEndpoint { addr: addr.into(), cert_sha256: hash };
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sound_datagrams_round_trip_and_refuse_what_is_no_opus_frame() {
        let sound = SoundDatagram { timestamp: u32::MAX, samples: 480, packet: &[0xfc, 1, 2] };
        let bytes = sound.encode();
        assert_eq!(bytes.len(), SOUND_HEADER_LEN + 3);
        assert_eq!(SoundDatagram::decode(&bytes), Ok(sound));
        let accepted = |samples: u16, packet: &[u8]| {
            SoundDatagram::decode(&SoundDatagram { timestamp: 0, samples, packet }.encode()).is_ok()
        };
        assert!(!accepted(0, &[1]));
        assert!(!accepted(100, &[1]), "not a whole 2.5 ms");
        assert!(!accepted(5880, &[1]), "longer than 120 ms");
        assert!(accepted(5760, &[1]));
        assert!(!accepted(480, &[]), "no packet");
        assert!(!accepted(480, &[0; MAX_SOUND_PACKET + 1]));
        assert_eq!(SoundDatagram::decode(&bytes[..6]), Err(ProtocolError::Truncated));
        let mut input = bytes.clone();
        input[0] = DATAGRAM_INPUT;
        assert!(SoundDatagram::decode(&input).is_err());
    }

    #[test]
    fn a_hellos_token_never_shows_in_its_debug_form() {
        let hello = ControlMessage::Hello {
            token: "secret.token".into(),
            role: JoinRole::Watcher,
            video: VideoCarriage::Streams,
            sound: false,
        };
        let shown = format!("{hello:?}");
        assert!(!shown.contains("secret") && shown.contains("Watcher"), "{shown}");
    }

    #[test]
    fn close_codes_round_trip() {
        for code in [
            CloseCode::Done,
            CloseCode::Unauthorized,
            CloseCode::ProtocolViolation,
            CloseCode::NoCapacity,
            CloseCode::Conflict,
            CloseCode::Internal,
        ] {
            assert_eq!(CloseCode::from_code(code as u64), Some(code));
        }
        assert_eq!(CloseCode::from_code(99), None);
    }
}
