//! JSON records of the broker's HTTP API, shared by broker, host and web client.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ProtocolError;

/// Widest or tallest frame a session may ask for, in pixels.
pub const MAX_DIMENSION: u32 = 3840;
/// Smallest frame side, in pixels.
pub const MIN_DIMENSION: u32 = 64;
/// Highest frame rate a session may ask for.
pub const MAX_FPS: u32 = 120;

/// What kind of session an app needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum Profile {
    /// A game: landscape, keyboard/mouse/gamepad.
    Game,
    /// A cloud phone app: portrait, touch.
    Phone,
}

/// An entry of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct App {
    /// Stable id used in allocation requests.
    pub id: String,
    /// Display title.
    pub title: String,
    /// The profile it runs under.
    pub profile: Profile,
    /// One line for the lobby card.
    pub description: String,
}

/// `POST /v1/sessions`: a player asks for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
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
}

impl AllocateRequest {
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
        Ok(())
    }
}

/// The broker's answer to a successful allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
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
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ApiError {
    /// A stable machine-readable code, e.g. `no_capacity`.
    pub error: String,
    /// A sentence for people.
    pub message: String,
}

/// `POST /v1/hosts`: a host offers its slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRegistration {
    /// The host's id.
    pub host_id: String,
    /// Base URL of the host's WHEP endpoint.
    pub whep_url: String,
    /// Concurrent sessions it can run.
    pub slots: u32,
    /// Human-readable GPU description.
    pub gpu: String,
}

/// The broker's answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRegistered {
    /// The broker's ed25519 public key (base64url), for verifying session tokens offline.
    pub broker_public_key: String,
    /// Heartbeat period the host should keep, in milliseconds.
    pub heartbeat_ms: u64,
    /// A host silent this long loses its slots, in milliseconds.
    pub lease_ms: u64,
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SessionRecord {
    /// The session's id.
    pub session_id: String,
    /// The host serving it.
    pub host_id: String,
    /// The app it runs.
    pub app: String,
    /// Current state.
    pub state: SessionState,
}

/// `POST /v1/hosts/{host_id}/sessions/{session_id}`: a host reports a session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionUpdate {
    /// The state the host observed.
    pub state: SessionState,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AllocateRequest {
        AllocateRequest {
            app: "orbit".into(),
            profile: Profile::Game,
            width: 1280,
            height: 720,
            fps: 60,
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
        ];
        for r in absurd {
            assert!(r.validate().is_err(), "{r:?}");
        }
    }

    #[test]
    fn json_uses_lowercase_profiles_and_refuses_unknown_fields() {
        let json = serde_json::to_value(request()).unwrap();
        assert_eq!(json["profile"], "game");
        let extra = r#"{"app":"orbit","profile":"game","width":2,"height":2,"fps":1,"x":1}"#;
        assert!(serde_json::from_str::<AllocateRequest>(extra).is_err());
    }
}
