//! JSON records of the broker's HTTP API, shared by broker, host and web client.

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use utoipa::ToSchema;

use crate::ProtocolError;
use crate::probe::ClientKey;
use crate::quic::QuicEndpoint;

/// Widest or tallest frame a session may ask for, in pixels.
pub const MAX_DIMENSION: u32 = 3840;
/// Smallest frame side, in pixels.
pub const MIN_DIMENSION: u32 = 64;
/// Highest frame rate a session may ask for.
pub const MAX_FPS: u32 = 120;

/// What kind of session an app needs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS, ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum Profile {
    /// A game: landscape, keyboard/mouse/gamepad.
    Game,
    /// A cloud phone app: portrait, touch.
    Phone,
}

/// An entry of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct App {
    /// Stable id used in allocation requests: `[a-z0-9-]`, 1..=64 bytes.
    pub id: String,
    /// Display title.
    pub title: String,
    /// The profile it runs under.
    pub profile: Profile,
    /// One line for the lobby card.
    pub description: String,
}

/// Longest app title, in bytes.
pub const MAX_APP_TITLE: usize = 64;
/// Longest app description, in bytes.
pub const MAX_APP_DESCRIPTION: usize = 256;
/// Most apps one host may offer besides the built-in ones.
pub const MAX_APPS: usize = 64;

impl App {
    /// The apps every host runs without a catalogue: Orbit as a landscape
    /// game, and the same game as a portrait phone app (touch first).
    pub fn builtin() -> Vec<App> {
        vec![
            App {
                id: "orbit".into(),
                title: "Orbit".into(),
                profile: Profile::Game,
                description: "Steer the yellow ship through orbiting debris (arrows/WASD, click to jump, gamepad).".into(),
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

    /// The profile of the built-in app `id`; `None` when `id` is not built in.
    pub fn builtin_profile(id: &str) -> Option<Profile> {
        match id {
            "orbit" => Some(Profile::Game),
            "orbit-phone" => Some(Profile::Phone),
            _ => None,
        }
    }

    /// Whether `id` is a well-formed app id: `[a-z0-9-]`, 1..=64 bytes.
    pub fn valid_id(id: &str) -> bool {
        (1..=64).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    /// Checks the entry's values.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if !Self::valid_id(&self.id) {
            return Err(ProtocolError::Invalid(format!(
                "app id `{}` must be 1..=64 of [a-z0-9-]",
                self.id.escape_debug()
            )));
        }
        if self.title.trim().is_empty() || self.title.len() > MAX_APP_TITLE {
            return Err(ProtocolError::Invalid(format!(
                "app `{}`: title must be 1..={MAX_APP_TITLE} bytes",
                self.id
            )));
        }
        if self.description.len() > MAX_APP_DESCRIPTION {
            return Err(ProtocolError::Invalid(format!(
                "app `{}`: description must be at most {MAX_APP_DESCRIPTION} bytes",
                self.id
            )));
        }
        Ok(())
    }
}

/// `POST /v1/sessions`: a player asks for a slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, ToSchema)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct AllocateRequest {
    /// App id from the catalogue.
    pub app: String,
    /// Game or phone.
    pub profile: Profile,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Target frame rate.
    pub fps: u32,
    /// Where the client is, for the distance model when it has no RTT samples.
    #[serde(default)]
    #[ts(optional)]
    pub location: Option<GeoPoint>,
    /// Round-trip times the client measured to candidate hosts.
    #[serde(default)]
    #[ts(optional)]
    pub rtt_samples: Option<Vec<RttSample>>,
    /// Hosts predicted slower than this are never chosen.
    #[serde(default)]
    #[ts(optional)]
    pub max_rtt_ms: Option<u32>,
    /// The player's per-session key, which signs the session's probe reports
    /// (see [`crate::probe`]): a `0x` Ethereum address (20 bytes) or a `0x`
    /// compressed secp256k1 public key (33 bytes), in hex. The broker puts it
    /// in the session token so that the host knows whose signatures count.
    #[serde(default)]
    #[ts(optional)]
    pub client_key: Option<String>,
    /// The most the player pays per 15-minute block, wei, decimal: hosts dearer than this
    /// now (their price at their region's demand) are never chosen.
    #[serde(default)]
    #[ts(optional)]
    pub max_price_per_block: Option<String>,
}

/// `GET /v1/candidates`: a host a client may measure before allocating, with what a
/// block on it costs now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct CandidateHost {
    /// The host's id.
    pub host_id: String,
    /// Its region label.
    pub region: String,
    /// URL to measure RTT against (answers 204).
    pub ping_url: String,
    /// Great-circle distance from the given point, km.
    pub distance_km: f64,
    /// What a 15-minute block on it costs now, wei, decimal: its base price at its
    /// region's demand.
    pub price_per_block: String,
    /// Its region's demand factor, thousandths (1000: the base price).
    pub surge_milli: u32,
}

/// A point on Earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS, ToSchema)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct GeoPoint {
    /// Latitude, -90..=90.
    pub lat: f64,
    /// Longitude, -180..=180.
    pub lon: f64,
}

impl GeoPoint {
    /// Checks the coordinates are on Earth.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if !(-90.0..=90.0).contains(&self.lat) || !(-180.0..=180.0).contains(&self.lon) {
            return Err(ProtocolError::Invalid(
                "lat must be within ±90 and lon within ±180".into(),
            ));
        }
        Ok(())
    }
}

/// One round-trip time a client measured to a host's ping URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, ToSchema)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct RttSample {
    /// The host measured.
    pub host_id: String,
    /// Round-trip time in milliseconds.
    pub rtt_ms: f64,
}

/// Most RTT samples a request may carry.
pub const MAX_RTT_SAMPLES: usize = 32;

impl AllocateRequest {
    /// A request for `app` at `width`×`height`@`fps` and nothing more: the
    /// phone profile when portrait, the game profile otherwise.
    pub fn for_stream(app: &str, width: u32, height: u32, fps: u32) -> Self {
        Self {
            app: app.to_owned(),
            profile: if height > width { Profile::Phone } else { Profile::Game },
            width,
            height,
            fps,
            location: None,
            rtt_samples: None,
            max_rtt_ms: None,
            client_key: None,
            max_price_per_block: None,
        }
    }

    /// The most the player pays per block, wei, if it says (a malformed limit is
    /// refused by [`validate`](Self::validate)).
    pub fn max_price(&self) -> Option<u128> {
        self.max_price_per_block.as_deref().and_then(|p| p.parse().ok())
    }

    /// Checks that the numbers are ones a host can serve.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let dims = MIN_DIMENSION..=MAX_DIMENSION;
        if !dims.contains(&self.width) || !dims.contains(&self.height) {
            return Err(ProtocolError::Invalid(format!(
                "width and height must be within {MIN_DIMENSION}..={MAX_DIMENSION}"
            )));
        }
        if !self.width.is_multiple_of(2) || !self.height.is_multiple_of(2) {
            return Err(ProtocolError::Invalid("width and height must be even".into()));
        }
        if !(1..=MAX_FPS).contains(&self.fps) {
            return Err(ProtocolError::Invalid(format!("fps must be within 1..={MAX_FPS}")));
        }
        if self.app.is_empty() || self.app.len() > 64 {
            return Err(ProtocolError::Invalid("app must be 1..=64 bytes".into()));
        }
        if let Some(location) = &self.location {
            location.validate()?;
        }
        let samples = self.rtt_samples.as_deref().unwrap_or_default();
        if samples.len() > MAX_RTT_SAMPLES {
            return Err(ProtocolError::Invalid(format!("at most {MAX_RTT_SAMPLES} rtt_samples")));
        }
        if samples.iter().any(|s| !(0.0..=10_000.0).contains(&s.rtt_ms) || s.host_id.len() > 128) {
            return Err(ProtocolError::Invalid("rtt_ms must be within 0..=10000".into()));
        }
        if let Some(key) = &self.client_key {
            key.parse::<ClientKey>()?;
        }
        if let Some(price) = &self.max_price_per_block
            && (price.len() > 39
                || !price.bytes().all(|b| b.is_ascii_digit())
                || self.max_price().is_none())
        {
            return Err(ProtocolError::Invalid(
                "max_price_per_block must be a decimal number of wei".into(),
            ));
        }
        Ok(())
    }
}

/// A STUN or TURN server for ICE, as WebRTC's `RTCIceServer` takes it. A TURN server's
/// username and credential are short-lived (the TURN REST scheme: the username names when
/// they expire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct IceServer {
    /// `stun:host:port` or `turn:host:port?transport=udp` URLs.
    pub urls: Vec<String>,
    /// The TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub username: Option<String>,
    /// The TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub credential: Option<String>,
}

/// The broker's answer to a successful allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct AllocateResponse {
    /// The new session's id.
    pub session_id: String,
    /// The host that will serve it.
    pub host_id: String,
    /// The host's WHEP endpoint; POST the SDP offer here.
    pub whep_url: String,
    /// Bearer token for the WHEP request, signed by the broker.
    pub token: String,
    /// When the token stops being accepted (Unix milliseconds).
    #[ts(type = "number")]
    pub expires_at_ms: u64,
    /// The host's QUIC endpoint, for native clients, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub quic: Option<QuicEndpoint>,
    /// The host's payout address (`0x`), which the session's voucher names,
    /// when the host settles on chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub payout_address: Option<String>,
    /// The host's price per 15-minute block, wei, decimal (a string: wei
    /// overflow a JavaScript number's exact range).
    #[serde(default)]
    pub price_per_block: String,
    /// STUN and TURN servers for the player's ICE, with TURN credentials for this session.
    #[serde(default)]
    pub ice_servers: Vec<IceServer>,
}

/// `POST /v1/sessions/{id}/token`: a fresh token for a live session, granting what
/// the one it replaces granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionToken {
    /// Bearer token, signed by the broker.
    pub token: String,
    /// When it stops being accepted (Unix milliseconds).
    pub expires_at_ms: u64,
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct ApiError {
    /// A stable machine-readable code, e.g. `no_capacity`.
    pub error: String,
    /// A sentence for people.
    pub message: String,
}

/// `POST /v1/hosts`: a host offers its slots. The request is signed with the
/// host's key (see [`crate::host_auth`]); the host id is that key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostRegistration {
    /// The host's id: its ed25519 public key, base64url.
    pub host_id: String,
    /// The host's WHEP endpoint; empty (with `ping_url`) when players reach the host
    /// through its signalling link to the broker ([`crate::link`]), whose relay URLs the
    /// broker then records here.
    #[serde(default)]
    pub whep_url: String,
    /// A URL answering quickly, for clients to measure RTT; empty exactly when `whep_url` is.
    #[serde(default)]
    pub ping_url: String,
    /// Human-readable GPU description.
    pub gpu: String,
    /// Region label, e.g. `eu-west`.
    pub region: String,
    /// Where the host is.
    pub location: GeoPoint,
    /// Slots per profile.
    pub offers: Vec<SlotOffer>,
    /// Price per 15-minute block, in the settlement token's smallest unit.
    pub price_per_block: u64,
    /// Where native clients reach the host over QUIC, if they can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quic: Option<QuicEndpoint>,
    /// The address (`0x`) the host is paid at, when it settles on chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_address: Option<String>,
    /// The apps it offers besides the built-in ones ([`App::builtin`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<App>,
    /// The payout key's proof that this host is paid at `payout_address`
    /// ([`prove_payout`]); a broker that admits hosts by their bond
    /// asks for it, since bonds are kept per address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_proof: Option<String>,
    /// Set by the broker, whatever the host sends: its capacity is not checked
    /// yet ([`crate::capacity`]), so no player is placed on it.
    #[serde(default)]
    pub probation: bool,
}

/// What a host's payout key signs to prove the host `host_id` is paid at its address.
pub fn payout_proof_text(host_id: &str) -> String {
    format!("Gridplay host {host_id} is paid at this address")
}

/// The payout key's address and its proof (EIP-191 over [`payout_proof_text`]) that the
/// host `host_id` is paid there: a registration's `payout_address` and `payout_proof`.
pub fn prove_payout(host_id: &str, payout_key: &k256::ecdsa::SigningKey) -> (String, String) {
    let digest = crate::check::signed_message_digest(payout_proof_text(host_id).as_bytes());
    let address = crate::probe::Address::of(payout_key.verifying_key());
    (address.to_string(), crate::probe::sign_digest(payout_key, &digest))
}

/// Most slot offers one registration may carry.
pub const MAX_OFFERS: usize = 8;
/// Most slots one offer may carry.
pub const MAX_SLOTS: u32 = 1024;

impl HostRegistration {
    /// The payout address, once its proof is found to be signed by it for this host.
    pub fn proven_payout_address(&self) -> Result<&str, ProtocolError> {
        let (Some(address), Some(proof)) = (&self.payout_address, &self.payout_proof) else {
            return Err(ProtocolError::Invalid("no payout address with its proof".into()));
        };
        let text = payout_proof_text(&self.host_id);
        let digest = crate::check::signed_message_digest(text.as_bytes());
        let signer = crate::probe::recover_signer(&digest, proof)?;
        if signer.to_string() != address.to_lowercase() {
            return Err(ProtocolError::Invalid(
                "the payout proof is not signed by the payout address".into(),
            ));
        }
        Ok(address)
    }

    /// Whether players reach the host through its signalling link rather than directly.
    pub fn signals_over_link(&self) -> bool {
        self.whep_url.is_empty()
    }

    /// Checks the registration's values.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        crate::token::decode_public_key(&self.host_id)?;
        if self.whep_url.is_empty() != self.ping_url.is_empty() {
            return Err(ProtocolError::Invalid(
                "whep_url and ping_url are both given, or both empty (signalling over the link)"
                    .into(),
            ));
        }
        for url in [&self.whep_url, &self.ping_url].into_iter().filter(|u| !u.is_empty()) {
            let ok = url.starts_with("http://") || url.starts_with("https://");
            if !ok || url.len() > 512 {
                return Err(ProtocolError::Invalid(
                    "URLs must be http(s), at most 512 bytes".into(),
                ));
            }
        }
        if self.gpu.len() > 256 || self.region.is_empty() || self.region.len() > 64 {
            return Err(ProtocolError::Invalid("gpu ≤ 256 bytes, region 1..=64 bytes".into()));
        }
        self.location.validate()?;
        if let Some(quic) = &self.quic {
            quic.validate()?;
        }
        if self.payout_address.as_deref().is_some_and(|a| !crate::settlement::is_hex_of(a, 20)) {
            return Err(ProtocolError::Invalid("payout_address must be a 0x address".into()));
        }
        if self.offers.is_empty() || self.offers.len() > MAX_OFFERS {
            return Err(ProtocolError::Invalid(format!("1..={MAX_OFFERS} offers")));
        }
        for offer in &self.offers {
            let dims = MIN_DIMENSION..=MAX_DIMENSION;
            if !(1..=MAX_SLOTS).contains(&offer.slots)
                || !dims.contains(&offer.max_width)
                || !dims.contains(&offer.max_height)
                || !(1..=MAX_FPS).contains(&offer.max_fps)
            {
                return Err(ProtocolError::Invalid("offer values out of range".into()));
            }
        }
        let mut profiles: Vec<Profile> = self.offers.iter().map(|o| o.profile).collect();
        profiles.sort();
        profiles.dedup();
        if profiles.len() != self.offers.len() {
            return Err(ProtocolError::Invalid("one offer per profile".into()));
        }
        if self.apps.len() > MAX_APPS {
            return Err(ProtocolError::Invalid(format!("at most {MAX_APPS} apps")));
        }
        let mut ids = std::collections::BTreeSet::new();
        for app in &self.apps {
            app.validate()?;
            if App::builtin_profile(&app.id).is_some() || !ids.insert(app.id.as_str()) {
                return Err(ProtocolError::Invalid(format!("app id `{}` offered twice", app.id)));
            }
        }
        Ok(())
    }

    /// The offer for a profile, if any.
    pub fn offer(&self, profile: Profile) -> Option<&SlotOffer> {
        self.offers.iter().find(|o| o.profile == profile)
    }

    /// The profile the host runs the app `id` under: a built-in app's, or
    /// that of one it offers; `None` when it does not run it.
    pub fn app_profile(&self, id: &str) -> Option<Profile> {
        App::builtin_profile(id)
            .or_else(|| self.apps.iter().find(|a| a.id == id).map(|a| a.profile))
    }
}

/// Slots a host offers under one profile, and the largest stream each serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct SlotOffer {
    /// The profile.
    pub profile: Profile,
    /// Concurrent sessions.
    pub slots: u32,
    /// Widest frame served.
    pub max_width: u32,
    /// Tallest frame served.
    pub max_height: u32,
    /// Highest frame rate served.
    pub max_fps: u32,
}

impl SlotOffer {
    /// Whether a request's stream fits this offer (either orientation).
    pub fn fits(&self, request: &AllocateRequest) -> bool {
        let (long, short) =
            (self.max_width.max(self.max_height), self.max_width.min(self.max_height));
        request.profile == self.profile
            && request.width.max(request.height) <= long
            && request.width.min(request.height) <= short
            && request.fps <= self.max_fps
    }
}

/// `POST /v1/hosts/{id}/heartbeat`: load and the sessions the host is running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Busy fraction of the host, 0..=1.
    pub load: f32,
    /// Sessions the host is streaming now.
    pub sessions: Vec<String>,
}

/// The broker's answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatAck {
    /// Of the sessions the host reported, those the broker has ended: stop them.
    pub ended_sessions: Vec<String>,
    /// STUN and TURN servers for the host's ICE, with fresh TURN credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServer>,
    /// Where the host stands with its capacity check, where the broker checks capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::capacity::CapacityVerdict>,
    /// What checkers found of the host, `0..=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reputation: Option<f64>,
}

/// The broker's answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HostRegistered {
    /// The broker's ed25519 public key (base64url), for verifying session tokens offline.
    pub broker_public_key: String,
    /// Heartbeat period the host should keep, in milliseconds.
    pub heartbeat_ms: u64,
    /// A host silent this long loses its slots, in milliseconds.
    pub lease_ms: u64,
    /// STUN and TURN servers for the host's ICE, with TURN credentials (renewed with every
    /// heartbeat's answer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServer>,
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum SessionState {
    /// A slot is reserved; the player has not connected yet.
    Allocated,
    /// The host confirmed the player is connected.
    Running,
    /// Over; the slot is free again.
    Ended,
}

/// `GET /v1/sessions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct SessionRecord {
    /// The session's id.
    pub session_id: String,
    /// The host serving it.
    pub host_id: String,
    /// The app it runs.
    pub app: String,
    /// The profile whose slot it holds.
    pub profile: Profile,
    /// When the slot was reserved (Unix ms).
    #[ts(type = "number")]
    pub allocated_at_ms: u64,
    /// Current state.
    pub state: SessionState,
}

/// `GET` on a WHEP session resource: what the host has sent so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct StreamStats {
    /// Frames sent.
    #[ts(type = "number")]
    pub frames_sent: u64,
    /// Video bytes sent (before packetisation).
    #[ts(type = "number")]
    pub bytes_sent: u64,
    /// Keyframes sent.
    #[ts(type = "number")]
    pub keyframes_sent: u64,
    /// The congestion controller's current target, bits per second.
    #[ts(type = "number")]
    pub target_bps: u64,
}

/// `POST /v1/hosts/{host_id}/sessions/{session_id}`: a host reports a session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionUpdate {
    /// The state the host observed.
    pub state: SessionState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payout_proof_binds_the_payout_address_to_one_host() {
        let key = k256::ecdsa::SigningKey::from_slice(&[4; 32]).unwrap();
        let (address, proof) = prove_payout("host-a", &key);
        let mut registration = HostRegistration {
            host_id: "host-a".into(),
            whep_url: String::new(),
            ping_url: String::new(),
            gpu: String::new(),
            region: String::new(),
            location: GeoPoint { lat: 0.0, lon: 0.0 },
            offers: Vec::new(),
            price_per_block: 0,
            quic: None,
            payout_address: Some(address.to_uppercase().replace("0X", "0x")),
            apps: Vec::new(),
            payout_proof: Some(proof.clone()),
            probation: false,
        };
        assert_eq!(registration.proven_payout_address().unwrap().to_lowercase(), address);
        // Another host cannot borrow the proof, nor another address claim it.
        registration.host_id = "host-b".into();
        assert!(registration.proven_payout_address().is_err());
        registration.host_id = "host-a".into();
        registration.payout_address = Some(format!("0x{}", "11".repeat(20)));
        assert!(registration.proven_payout_address().is_err());
        registration.payout_proof = None;
        assert!(registration.proven_payout_address().is_err());
    }

    fn request() -> AllocateRequest {
        AllocateRequest {
            app: "orbit".into(),
            profile: Profile::Game,
            width: 1280,
            height: 720,
            fps: 60,
            location: None,
            rtt_samples: None,
            max_rtt_ms: None,
            client_key: None,
            max_price_per_block: None,
        }
    }

    #[test]
    fn accepts_sane_requests_and_rejects_absurd_ones() {
        assert!(request().validate().is_ok());
        let absurd = [
            AllocateRequest { width: 100_000, ..request() },
            AllocateRequest { height: 0, ..request() },
            AllocateRequest { width: 1281, ..request() },
            AllocateRequest { fps: 0, ..request() },
            AllocateRequest { fps: 1000, ..request() },
            AllocateRequest { app: String::new(), ..request() },
            AllocateRequest { location: Some(GeoPoint { lat: 200.0, lon: 0.0 }), ..request() },
            AllocateRequest {
                rtt_samples: Some(vec![RttSample { host_id: "h".into(), rtt_ms: -1.0 }]),
                ..request()
            },
            AllocateRequest { client_key: Some("0x1234".into()), ..request() },
            AllocateRequest { client_key: Some(format!("0x04{}", "11".repeat(32))), ..request() },
            AllocateRequest { max_price_per_block: Some("-1".into()), ..request() },
            AllocateRequest { max_price_per_block: Some("1e18".into()), ..request() },
            AllocateRequest { max_price_per_block: Some("".into()), ..request() },
            AllocateRequest { max_price_per_block: Some("9".repeat(40)), ..request() },
        ];
        for r in absurd {
            assert!(r.validate().is_err(), "{r:?}");
        }
        let address = format!("0x{}", "Ab".repeat(20));
        assert!(AllocateRequest { client_key: Some(address), ..request() }.validate().is_ok());
        let priced = AllocateRequest { max_price_per_block: Some("12500".into()), ..request() };
        assert_eq!((priced.validate(), priced.max_price()), (Ok(()), Some(12_500)));
    }

    #[test]
    fn json_uses_lowercase_profiles_and_refuses_unknown_fields() {
        let json = serde_json::to_value(request()).unwrap();
        assert_eq!(json["profile"], "game");
        let extra = r#"{"app":"orbit","profile":"game","width":2,"height":2,"fps":1,"x":1}"#;
        assert!(serde_json::from_str::<AllocateRequest>(extra).is_err());
    }
}
