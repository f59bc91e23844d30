//! Probe reports: once a second the client tells the host what it saw (frame
//! rate, decode time, jitter, loss, RTT, click-to-photon, and the sound's lost
//! packets and concealed samples), signed with its
//! per-session secp256k1 key so that anyone — the host, a checker, the
//! settlement contract with `ecrecover` — can check who said it.
//!
//! # Messages
//!
//! They travel as JSON text on the reliable, ordered WebRTC data channel
//! [`PROBES_CHANNEL`]: the client sends [`ClientProbeMessage`]s (a signed
//! report once a second, pings for RTT) and the host answers with
//! [`HostProbeMessage`]s (pongs, and a note when it refuses a report). A
//! message is at most [`MAX_PROBE_MESSAGE_LEN`] bytes.
//!
//! # What is signed
//!
//! A report is EIP-712 typed data (the scheme of Ethereum's `eth_signTypedData_v4`):
//!
//! ```text
//! digest      = keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(report))
//! domainSeparator = keccak256(abi.encode(
//!                   keccak256("EIP712Domain(string name,string version)"),
//!                   keccak256("Gridplay"), keccak256("1")))
//! hashStruct  = keccak256(abi.encode(keccak256(PROBE_REPORT_TYPE),
//!                   keccak256(utf8(session_id)), seq, interval_ms, ...))
//! ```
//!
//! with the fields in [`PROBE_REPORT_TYPE`]'s order, each a 32-byte word. The
//! domain names no chain and no contract: a report is bound to its session by
//! `sessionId` (the keccak-256 of the broker's session id) and to its second
//! by `seq`, not to a deployment, and its domain type differs from the
//! settlement contract's (`name, version, chainId, verifyingContract`), so a
//! report signature can never pass for a signed `ProbeSummary` or voucher. A
//! contract checks one with
//! `ecrecover(digest, v, r, s) == sessionKey` after computing the same digest.
//! A metric the client could not measure (`null` in JSON) is encoded as
//! [`NONE`] (`type(uint32).max`), which is therefore not a valid value.
//!
//! The signature is 65 bytes `r ‖ s ‖ v` (`v` 27 or 28, `s` in the lower half
//! of the curve order, as OpenZeppelin's `ECDSA.recover` demands), written as
//! `0x`-prefixed hex. The key that must have signed is the one the player
//! named at allocation ([`crate::AllocateRequest::client_key`]), carried to
//! the host in the session token ([`crate::SessionClaims::client_key`]).
//!
//! Shared test vectors: `protocol/tests/vectors/probe_report.json` (a fixed key,
//! a report, its hashes and its signature), run by both the Rust and the
//! TypeScript tests.

use std::fmt;
use std::str::FromStr;

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use ts_rs::TS;

use crate::ProtocolError;

/// Label of the reliable data channel that carries probe messages.
pub const PROBES_CHANNEL: &str = "probes";

/// Longest probe message accepted, in bytes.
pub const MAX_PROBE_MESSAGE_LEN: usize = 4096;

/// Longest session id a report may name, in bytes.
pub const MAX_SESSION_ID_LEN: usize = 128;

/// The digest's encoding of a metric that was not measured (`null`).
pub const NONE: u32 = u32::MAX;

/// The EIP-712 domain type of probe reports.
pub const PROBE_DOMAIN_TYPE: &str = "EIP712Domain(string name,string version)";
/// The domain's `name`.
pub const PROBE_DOMAIN_NAME: &str = "Gridplay";
/// The domain's `version`.
pub const PROBE_DOMAIN_VERSION: &str = "1";

/// The EIP-712 type of [`ProbeReport`]: field names in camelCase, in digest order.
pub const PROBE_REPORT_TYPE: &str = concat!(
    "ProbeReport(bytes32 sessionId,uint32 seq,uint32 intervalMs,uint32 framesPresented,",
    "uint32 framesDecoded,uint32 fpsCenti,uint32 decodeUs,uint32 jitterUs,uint32 lossPpm,",
    "uint32 rttUs,uint32 clickToPhotonP50Us,uint32 clickToPhotonP95Us,",
    "uint32 clickToPhotonSamples,uint32 audioPacketsLost,uint32 audioConcealedSamples)"
);

/// A 32-byte hash.
pub type Hash = [u8; 32];

/// One second of the session as the client saw it. Integers only, so that
/// the JSON and the signed digest cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct ProbeReport {
    /// The broker's session id (its keccak-256 is the digest's `sessionId`).
    pub session_id: String,
    /// Report number, from 1, one more for each report of the session.
    pub seq: u32,
    /// Length of the interval the report covers, in milliseconds (about 1000).
    pub interval_ms: u32,
    /// Frames presented in the interval (`requestVideoFrameCallback` calls).
    pub frames_presented: u32,
    /// Frames decoded in the interval (WebRTC `inbound-rtp.framesDecoded`).
    pub frames_decoded: u32,
    /// Presented frames per second over the interval, times 100.
    pub fps_centi: u32,
    /// Mean decode time per frame in the interval, microseconds.
    pub decode_us: Option<u32>,
    /// Inter-arrival jitter of the video (RFC 3550, as `inbound-rtp.jitter`), microseconds.
    pub jitter_us: Option<u32>,
    /// Packets lost in the interval per million expected (0..=1 000 000).
    pub loss_ppm: Option<u32>,
    /// Round-trip time to the host (data-channel ping), microseconds.
    pub rtt_us: Option<u32>,
    /// Median click-to-photon of the inputs whose frame was presented in the
    /// interval, microseconds; `null` when there were none.
    pub click_to_photon_p50_us: Option<u32>,
    /// 95th percentile (nearest rank) of the same, microseconds.
    pub click_to_photon_p95_us: Option<u32>,
    /// How many click-to-photon samples the interval had.
    pub click_to_photon_samples: u32,
    /// Packets of sound lost in the interval (`inbound-rtp.packetsLost` of the audio);
    /// `null` without sound.
    pub audio_packets_lost: Option<u32>,
    /// Samples of sound the receiver made up in the interval for lost or late packets
    /// (`inbound-rtp.concealedSamples` of the audio, per channel); `null` without sound.
    pub audio_concealed_samples: Option<u32>,
}

/// A report and the client's signature over its [`digest`](ProbeReport::digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct SignedProbeReport {
    /// What the client saw.
    pub report: ProbeReport,
    /// `0x` and 130 hex digits: `r ‖ s ‖ v`, `v` 27 or 28.
    pub signature: String,
}

/// What the client sends on the probes channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum ClientProbeMessage {
    /// The signed report of the second that just ended.
    Report {
        /// What the client saw.
        report: ProbeReport,
        /// The signature over the report's digest (see [`SignedProbeReport`]).
        signature: String,
    },
    /// Asks for a [`HostProbeMessage::Pong`] at once, to measure the round trip.
    Ping {
        /// Echoed in the pong.
        id: u32,
    },
}

/// What the host sends on the probes channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum HostProbeMessage {
    /// The answer to a ping.
    Pong {
        /// The ping's id.
        id: u32,
    },
    /// A report was refused and will not count.
    Rejected {
        /// The refused report's `seq`.
        seq: u32,
        /// Why, for people.
        reason: String,
    },
    /// The session is over (the host closes the connection next).
    Ended {
        /// Why, for people: e.g. "app exited (status 0)".
        reason: String,
    },
    /// The app put text on its clipboard (copied it): the player's clipboard may take it.
    Clipboard {
        /// The text, at most [`MAX_CLIPBOARD_BYTES`](crate::input::MAX_CLIPBOARD_BYTES).
        text: String,
    },
}

/// What the host itself did in one second of a session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct HostFigures {
    /// Frames the game rendered.
    pub frames_rendered: u32,
    /// Frames the encoder produced output for.
    pub frames_encoded: u32,
    /// Frames handed to RTP.
    pub frames_sent: u32,
    /// Video bits sent in the second (the bitrate, before packetisation).
    #[ts(type = "number")]
    pub bitrate_bps: u64,
    /// Median time from the start of a frame to the end of its encode
    /// (render, read back, colour conversion, encode), microseconds.
    pub render_encode_p50_us: Option<u32>,
}

/// One second of a session: the host's own figures and, when a valid one
/// arrived, the client's signed report (re-verifiable by anyone who knows
/// the session's client key). For billing (`gridplay_chain::ProbeRecord`) a
/// second with a client report reads `fps = fps_centi / 100`,
/// `rtt_ms = rtt_us / 1000`, `loss = loss_ppm / 1e6` and
/// `click_to_photon_p95_ms = click_to_photon_p95_us / 1000`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SecondRecord {
    /// Index of the second from the start of the session (the host's clock).
    pub second: u32,
    /// When the second began, Unix milliseconds.
    #[ts(type = "number")]
    pub start_ms: u64,
    /// What the host did.
    pub host: HostFigures,
    /// What the client reported, with its signature.
    pub client: Option<SignedProbeReport>,
}

/// A summary of one 15-minute block of a session (seconds `900 × block ..`).
/// Means are over the seconds that have the value; `null` when none has.
/// Whether the block is billable is for the billing rule to say
/// (`gridplay_chain::bill_block`), not this summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BlockSummary {
    /// Index of the block within the session, from 0.
    pub block: u32,
    /// When the block began, Unix milliseconds.
    #[ts(type = "number")]
    pub start_ms: u64,
    /// Whether the block is over: its seconds all ended and no report can
    /// still arrive for them. A block that is not complete may still change.
    pub complete: bool,
    /// Seconds of the block the session covered so far (900 for a full block).
    pub seconds_covered: u32,
    /// Covered seconds with a valid client report.
    pub seconds_with_client_report: u32,
    /// Mean presented frame rate the client reported.
    pub fps_mean: Option<f64>,
    /// Lowest per-second frame rate the client reported.
    pub fps_min: Option<f64>,
    /// Mean round-trip time the client reported, milliseconds.
    pub rtt_ms_mean: Option<f64>,
    /// Mean packet loss fraction the client reported (0..=1).
    pub loss_mean: Option<f64>,
    /// Mean jitter the client reported, milliseconds.
    pub jitter_ms_mean: Option<f64>,
    /// Mean decode time the client reported, milliseconds.
    pub decode_ms_mean: Option<f64>,
    /// Median of the per-second click-to-photon medians, milliseconds.
    pub click_to_photon_p50_ms: Option<f64>,
    /// 95th percentile (nearest rank) of the per-second click-to-photon
    /// 95th percentiles, milliseconds.
    pub click_to_photon_p95_ms: Option<f64>,
    /// Click-to-photon samples in the block.
    pub click_to_photon_samples: u32,
    /// Frames the host sent in the block.
    #[ts(type = "number")]
    pub frames_sent: u64,
    /// Mean bitrate the host sent, bits per second.
    pub bitrate_bps_mean: Option<f64>,
    /// Median of the per-second render-to-encoded medians, milliseconds.
    pub render_encode_p50_ms: Option<f64>,
}

/// Reports the host refused, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RejectedReports {
    /// The session has no client key to check them against.
    pub no_client_key: u32,
    /// Malformed JSON or impossible values.
    pub invalid: u32,
    /// The signature was malformed or not the session key's.
    pub bad_signature: u32,
    /// The report names another session.
    pub wrong_session: u32,
    /// `seq` not above the last accepted one (a replay or a reordering).
    pub replayed: u32,
    /// No recent second was left without a report (more than one a second).
    pub too_frequent: u32,
}

/// `GET /whep/sessions/{id}/probes`: a session's probe records, as the host
/// keeps them — the last 15 minutes of per-second records and a summary of
/// every block. The host signs the exact body bytes with its ed25519 key
/// (the host id) and sends the signature, base64url, in the
/// [`PROBES_SIGNATURE_HEADER`] header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SessionProbes {
    /// The broker's session id.
    pub session_id: String,
    /// The host (its ed25519 public key, base64url), which signed this body.
    pub host_id: String,
    /// The key client reports must be signed with, if the player named one.
    pub client_key: Option<String>,
    /// When the session's first second began, Unix milliseconds.
    #[ts(type = "number")]
    pub started_at_ms: u64,
    /// When this body was made, Unix milliseconds.
    #[ts(type = "number")]
    pub now_ms: u64,
    /// Whether the session is over (nothing will change any more).
    pub ended: bool,
    /// Client reports accepted.
    pub reports_valid: u32,
    /// Client reports refused.
    pub reports_rejected: RejectedReports,
    /// The last 15 minutes of ended seconds, oldest first, consecutive.
    pub records: Vec<SecondRecord>,
    /// Every block of the session so far, in order; the last may be incomplete.
    pub blocks: Vec<BlockSummary>,
}

/// The response header carrying the host's signature over a [`SessionProbes`] body.
pub const PROBES_SIGNATURE_HEADER: &str = "gridplay-signature";

impl SessionProbes {
    /// Reads a host's record: `body` as fetched and `signature`, the
    /// [`PROBES_SIGNATURE_HEADER`] value (base64url ed25519 over the exact body), which must
    /// verify against `host_id` (the host's key) before the body is even parsed; the body
    /// must then name `host_id` too. Which client reports in it count is for the reader to
    /// check (`gridplay_chain::evidence`).
    pub fn from_signed(
        body: &[u8],
        signature: Option<&str>,
        host_id: &str,
    ) -> Result<Self, ProtocolError> {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        use ed25519_dalek::Verifier;
        let signature = signature
            .and_then(|s| B64.decode(s).ok())
            .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
            .ok_or(ProtocolError::BadHostSignature)?;
        crate::token::decode_public_key(host_id)?
            .verify(body, &signature)
            .map_err(|_| ProtocolError::BadHostSignature)?;
        let probes: Self = serde_json::from_slice(body)
            .map_err(|e| ProtocolError::Invalid(format!("host record: {e}")))?;
        if probes.host_id != host_id {
            return Err(ProtocolError::Invalid("the record names another host".into()));
        }
        Ok(probes)
    }
}

impl ClientProbeMessage {
    /// Parses one message, refusing anything longer than [`MAX_PROBE_MESSAGE_LEN`].
    pub fn parse(bytes: &[u8]) -> Result<Self, ProtocolError> {
        if bytes.len() > MAX_PROBE_MESSAGE_LEN {
            return Err(ProtocolError::InvalidProbe(format!(
                "message longer than {MAX_PROBE_MESSAGE_LEN} bytes"
            )));
        }
        serde_json::from_slice(bytes).map_err(|e| ProtocolError::InvalidProbe(e.to_string()))
    }
}

impl From<SignedProbeReport> for ClientProbeMessage {
    fn from(signed: SignedProbeReport) -> Self {
        Self::Report { report: signed.report, signature: signed.signature }
    }
}

impl ProbeReport {
    /// Checks the values are ones a real client can report: a session id of
    /// 1..=128 bytes, `seq` and `interval_ms` from 1 (an interval of at most a
    /// minute), loss at most 1 000 000 ppm, no measured value equal to
    /// [`NONE`], and click-to-photon percentiles present (p50 ≤ p95) exactly
    /// when there are samples.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let bad = |m: &str| Err(ProtocolError::InvalidProbe(m.into()));
        if self.session_id.is_empty() || self.session_id.len() > MAX_SESSION_ID_LEN {
            return bad("session_id must be 1..=128 bytes");
        }
        if self.seq == 0 || !(1..=60_000).contains(&self.interval_ms) {
            return bad("seq must be at least 1 and interval_ms within 1..=60000");
        }
        let measured = [
            self.decode_us,
            self.jitter_us,
            self.loss_ppm,
            self.rtt_us,
            self.click_to_photon_p50_us,
            self.click_to_photon_p95_us,
            self.audio_packets_lost,
            self.audio_concealed_samples,
        ];
        if measured.contains(&Some(NONE)) {
            return bad("a measured value may not be 4294967295");
        }
        if self.loss_ppm.is_some_and(|l| l > 1_000_000) {
            return bad("loss_ppm must be at most 1000000");
        }
        match (self.click_to_photon_p50_us, self.click_to_photon_p95_us) {
            (None, None) if self.click_to_photon_samples == 0 => Ok(()),
            (Some(p50), Some(p95)) if self.click_to_photon_samples > 0 && p50 <= p95 => Ok(()),
            _ => bad("click-to-photon p50 <= p95 must be given exactly when there are samples"),
        }
    }

    /// EIP-712 `hashStruct` of the report.
    pub fn struct_hash(&self) -> Hash {
        let opt = |v: Option<u32>| v.unwrap_or(NONE);
        let fields = [
            self.seq,
            self.interval_ms,
            self.frames_presented,
            self.frames_decoded,
            self.fps_centi,
            opt(self.decode_us),
            opt(self.jitter_us),
            opt(self.loss_ppm),
            opt(self.rtt_us),
            opt(self.click_to_photon_p50_us),
            opt(self.click_to_photon_p95_us),
            self.click_to_photon_samples,
            opt(self.audio_packets_lost),
            opt(self.audio_concealed_samples),
        ];
        let mut encoded = Vec::with_capacity(32 * (2 + fields.len()));
        encoded.extend_from_slice(&keccak256(PROBE_REPORT_TYPE.as_bytes()));
        encoded.extend_from_slice(&keccak256(self.session_id.as_bytes()));
        for field in fields {
            encoded.extend_from_slice(&word(field));
        }
        keccak256(&encoded)
    }

    /// The digest the client signs: `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct)`.
    pub fn digest(&self) -> Hash {
        let mut bytes = Vec::with_capacity(66);
        bytes.extend_from_slice(&[0x19, 0x01]);
        bytes.extend_from_slice(&domain_separator());
        bytes.extend_from_slice(&self.struct_hash());
        keccak256(&bytes)
    }

    /// Signs the report with a session key (RFC 6979 deterministic, low `s`).
    pub fn sign(self, key: &SigningKey) -> SignedProbeReport {
        let signature = sign_digest(key, &self.digest());
        SignedProbeReport { report: self, signature }
    }
}

/// Signs a 32-byte digest as Ethereum does: `0x`-hex `r ‖ s ‖ v`, `v` 27 or
/// 28 (RFC 6979 deterministic, low `s`).
pub(crate) fn sign_digest(key: &SigningKey, digest: &Hash) -> String {
    let (signature, recovery) =
        key.sign_prehash_recoverable(digest).expect("a 32-byte prehash signs");
    let mut bytes = signature.to_bytes().to_vec();
    bytes.push(27 + recovery.to_byte());
    format!("0x{}", to_hex(&bytes))
}

/// The Ethereum address that signed `digest` (what `ecrecover` returns).
/// Refuses malformed signatures, `v` other than 27/28 and high `s`.
pub(crate) fn recover_signer(digest: &Hash, signature: &str) -> Result<Address, ProtocolError> {
    let bytes: [u8; 65] = signature
        .strip_prefix("0x")
        .and_then(from_hex)
        .and_then(|b| b.try_into().ok())
        .ok_or(ProtocolError::BadProbeSignature)?;
    let parsed =
        Signature::from_slice(&bytes[..64]).map_err(|_| ProtocolError::BadProbeSignature)?;
    if parsed.normalize_s().is_some() {
        return Err(ProtocolError::BadProbeSignature); // high s: malleable
    }
    let recovery = bytes[64]
        .checked_sub(27)
        .and_then(RecoveryId::from_byte)
        .filter(|id| !id.is_x_reduced())
        .ok_or(ProtocolError::BadProbeSignature)?;
    let key = VerifyingKey::recover_from_prehash(digest, &parsed, recovery)
        .map_err(|_| ProtocolError::BadProbeSignature)?;
    Ok(Address::of(&key))
}

/// The EIP-712 domain separator of probe reports.
pub fn domain_separator() -> Hash {
    let mut encoded = Vec::with_capacity(96);
    encoded.extend_from_slice(&keccak256(PROBE_DOMAIN_TYPE.as_bytes()));
    encoded.extend_from_slice(&keccak256(PROBE_DOMAIN_NAME.as_bytes()));
    encoded.extend_from_slice(&keccak256(PROBE_DOMAIN_VERSION.as_bytes()));
    keccak256(&encoded)
}

impl SignedProbeReport {
    /// The Ethereum address that signed the report (what `ecrecover` returns).
    /// Refuses malformed signatures, `v` other than 27/28 and high `s`.
    pub fn signer(&self) -> Result<Address, ProtocolError> {
        recover_signer(&self.report.digest(), &self.signature)
    }

    /// Checks the report's values and that `key` signed it.
    pub fn verify(&self, key: &ClientKey) -> Result<(), ProtocolError> {
        self.report.validate()?;
        if self.signer()? == key.address() { Ok(()) } else { Err(ProtocolError::BadProbeSignature) }
    }
}

/// A 20-byte Ethereum address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The address of a public key: the last 20 bytes of the keccak-256 of
    /// its uncompressed coordinates.
    pub fn of(key: &VerifyingKey) -> Self {
        let point = key.to_encoded_point(false);
        let hash = keccak256(&point.as_bytes()[1..]);
        Self(hash[12..].try_into().expect("20 bytes"))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", to_hex(&self.0))
    }
}

/// The key a session's reports must be signed with, as the player named it
/// at allocation: an Ethereum address (`0x` and 40 hex digits) or a
/// compressed secp256k1 public key (`0x` and 66 hex digits, starting `02` or
/// `03`, on the curve). Hex digits may be of either case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKey {
    /// An address: reports are checked by recovering their signer.
    Address(Address),
    /// A public key; its address is what reports are checked against.
    PublicKey(VerifyingKey),
}

impl ClientKey {
    /// The address signatures must recover to.
    pub fn address(&self) -> Address {
        match self {
            Self::Address(address) => *address,
            Self::PublicKey(key) => Address::of(key),
        }
    }
}

impl FromStr for ClientKey {
    type Err = ProtocolError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes =
            text.strip_prefix("0x").and_then(from_hex).ok_or(ProtocolError::BadClientKey)?;
        match bytes.len() {
            20 => Ok(Self::Address(Address(bytes.try_into().expect("20 bytes")))),
            33 if matches!(bytes[0], 2 | 3) => VerifyingKey::from_sec1_bytes(&bytes)
                .map(Self::PublicKey)
                .map_err(|_| ProtocolError::BadClientKey),
            _ => Err(ProtocolError::BadClientKey),
        }
    }
}

impl fmt::Display for ClientKey {
    /// Lowercase hex with `0x`: the canonical form carried in session tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(address) => address.fmt(f),
            Self::PublicKey(key) => {
                write!(f, "0x{}", to_hex(key.to_encoded_point(true).as_bytes()))
            }
        }
    }
}

/// Keccak-256 (Ethereum's, not NIST SHA3-256).
pub fn keccak256(bytes: &[u8]) -> Hash {
    Keccak256::digest(bytes).into()
}

/// A `uint32` as one 32-byte ABI word.
fn word(value: u32) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[28..].copy_from_slice(&value.to_be_bytes());
    w
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex of either case (no prefix) to bytes; `None` for odd lengths or other characters.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    // Digits only: `from_str_radix` alone would also take a sign (`+a` as 0x0a).
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (`probe_message`): a `+` passed for a hex digit, so a client key
    /// or signature had more than one text.
    #[test]
    fn hex_takes_digits_only() {
        assert_eq!(from_hex("0a"), Some(vec![10]));
        assert_eq!(from_hex("+a"), None);
        assert!("0x19e7e376e7c213b7e7e7e46cc70a5dd086+aff2a".parse::<ClientKey>().is_err());
    }

    fn key() -> SigningKey {
        SigningKey::from_slice(&[0x11; 32]).unwrap()
    }

    fn report() -> ProbeReport {
        ProbeReport {
            session_id: "s1".into(),
            seq: 3,
            interval_ms: 1000,
            frames_presented: 60,
            frames_decoded: 60,
            fps_centi: 6000,
            decode_us: Some(2100),
            jitter_us: Some(800),
            loss_ppm: Some(0),
            rtt_us: Some(900),
            click_to_photon_p50_us: Some(15_000),
            click_to_photon_p95_us: Some(21_000),
            click_to_photon_samples: 4,
            audio_packets_lost: None,
            audio_concealed_samples: None,
        }
    }

    #[test]
    fn a_signed_report_verifies_against_its_address_and_public_key() {
        let signed = report().sign(&key());
        let address = Address::of(key().verifying_key());
        assert_eq!(signed.signer(), Ok(address));
        assert_eq!(signed.verify(&ClientKey::Address(address)), Ok(()));
        assert_eq!(signed.verify(&ClientKey::PublicKey(*key().verifying_key())), Ok(()));
        let other = SigningKey::from_slice(&[0x22; 32]).unwrap();
        let wrong = ClientKey::Address(Address::of(other.verifying_key()));
        assert_eq!(signed.verify(&wrong), Err(ProtocolError::BadProbeSignature));
    }

    #[test]
    fn any_change_to_the_report_breaks_the_signature() {
        let signed = report().sign(&key());
        let address = ClientKey::Address(Address::of(key().verifying_key()));
        let mut tampered = signed.clone();
        tampered.report.fps_centi += 1;
        assert_eq!(tampered.verify(&address), Err(ProtocolError::BadProbeSignature));
        tampered = signed.clone();
        tampered.report.session_id = "s2".into();
        assert_eq!(tampered.verify(&address), Err(ProtocolError::BadProbeSignature));
        tampered = signed.clone();
        tampered.report.rtt_us = None;
        assert_eq!(tampered.verify(&address), Err(ProtocolError::BadProbeSignature));
    }

    #[test]
    fn malformed_and_malleable_signatures_are_refused() {
        let signed = report().sign(&key());
        let with = |signature: String| SignedProbeReport { signature, ..signed.clone() };
        for bad in ["", "0x", "0x1234", &signed.signature[2..], &format!("{}00", signed.signature)]
        {
            assert_eq!(with(bad.into()).signer(), Err(ProtocolError::BadProbeSignature), "{bad}");
        }
        let mut bytes = from_hex(&signed.signature[2..]).unwrap();
        bytes[64] = 29;
        assert!(with(format!("0x{}", to_hex(&bytes))).signer().is_err());
        // (r, n - s, v ^ 1) recovers the same key, but high s is refused.
        let sig = Signature::from_slice(&bytes[..64]).unwrap();
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r, -*s).unwrap();
        let mut flipped = high.to_bytes().to_vec();
        flipped.push(if signed.signature.ends_with("1b") { 28 } else { 27 });
        assert_eq!(
            with(format!("0x{}", to_hex(&flipped))).signer(),
            Err(ProtocolError::BadProbeSignature)
        );
    }

    #[test]
    fn reports_with_impossible_values_are_invalid() {
        let bad = [
            ProbeReport { session_id: String::new(), ..report() },
            ProbeReport { seq: 0, ..report() },
            ProbeReport { interval_ms: 0, ..report() },
            ProbeReport { loss_ppm: Some(1_000_001), ..report() },
            ProbeReport { rtt_us: Some(NONE), ..report() },
            ProbeReport { audio_concealed_samples: Some(NONE), ..report() },
            ProbeReport { click_to_photon_samples: 0, ..report() },
            ProbeReport { click_to_photon_p95_us: None, ..report() },
            ProbeReport { click_to_photon_p50_us: Some(30_000), ..report() },
        ];
        for r in bad {
            assert!(r.validate().is_err(), "{r:?}");
        }
        let quiet = ProbeReport {
            click_to_photon_p50_us: None,
            click_to_photon_p95_us: None,
            click_to_photon_samples: 0,
            ..report()
        };
        assert_eq!(quiet.validate(), Ok(()));
    }

    #[test]
    fn client_keys_parse_in_both_forms_and_print_canonically() {
        let vk = *key().verifying_key();
        let compressed = format!("0x{}", to_hex(vk.to_encoded_point(true).as_bytes()));
        let parsed: ClientKey = compressed.to_uppercase().replace("0X", "0x").parse().unwrap();
        assert_eq!(parsed, ClientKey::PublicKey(vk));
        assert_eq!(parsed.to_string(), compressed);
        let address = Address::of(&vk).to_string();
        assert_eq!(address.parse::<ClientKey>().unwrap().address(), Address::of(&vk));
        let not_on_curve = format!("0x02{}", "ff".repeat(32));
        for bad in ["", "0x", "abcd", &address[2..], &format!("{address}00"), &not_on_curve] {
            assert_eq!(bad.parse::<ClientKey>(), Err(ProtocolError::BadClientKey), "{bad}");
        }
        let uncompressed = format!("0x{}", to_hex(vk.to_encoded_point(false).as_bytes()));
        assert_eq!(uncompressed.parse::<ClientKey>(), Err(ProtocolError::BadClientKey));
    }

    #[test]
    fn the_known_ethereum_address_of_a_key() {
        // The example key of the web3.js documentation.
        let key = SigningKey::from_slice(
            &from_hex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318").unwrap(),
        )
        .unwrap();
        assert_eq!(
            Address::of(key.verifying_key()).to_string(),
            "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23"
        );
    }

    #[test]
    fn messages_parse_from_their_json_and_refuse_oversized_ones() {
        let ping = ClientProbeMessage::parse(br#"{"type":"ping","id":7}"#).unwrap();
        assert_eq!(ping, ClientProbeMessage::Ping { id: 7 });
        let signed = report().sign(&key());
        let json = serde_json::to_vec(&ClientProbeMessage::from(signed.clone())).unwrap();
        assert_eq!(
            ClientProbeMessage::parse(&json).unwrap(),
            ClientProbeMessage::Report { report: signed.report, signature: signed.signature }
        );
        assert!(ClientProbeMessage::parse(br#"{"type":"pong","id":7}"#).is_err());
        assert!(ClientProbeMessage::parse(&vec![b' '; MAX_PROBE_MESSAGE_LEN + 1]).is_err());
        let pong = serde_json::to_string(&HostProbeMessage::Pong { id: 7 }).unwrap();
        assert_eq!(pong, r#"{"type":"pong","id":7}"#);
    }
}
