//! Capacity checks: before players land on a new or changed host, a checker
//! the broker trusts plays sessions on it, as many at once as it offers and
//! then fewer, and tells the broker how many met the service level. The
//! broker places players only on hosts that passed, and on no more slots than
//! passed. The checker signs what it asks and finds with its secp256k1 key
//! (EIP-191), as it signs its reports ([`crate::check`]).

use std::collections::BTreeMap;

use k256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use utoipa::ToSchema;

use crate::check::{sign_text, verify_text};
use crate::probe::Address;
use crate::{Profile, ProtocolError, SlotOffer};

/// Most sessions one capacity trial may ask for.
pub const MAX_TRIAL_SESSIONS: u32 = 64;

/// One trial: `sessions` played at once on the host, and how the worst of them did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, TS, ToSchema)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct CapacityTrial {
    /// Sessions played at once.
    pub sessions: u32,
    /// The lowest frame rate among them, frames per 100 s.
    pub min_fps_centi: u32,
    /// The highest click-to-photon p99 among them, ms (none without samples).
    pub max_click_to_photon_p99_ms: Option<u32>,
    /// Whether every one of them met the service level.
    pub met: bool,
}

/// What a checker found of one profile of a host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, TS, ToSchema)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct ProfileCapacity {
    /// The profile checked.
    pub profile: Profile,
    /// Slots the host offers for it.
    pub claimed: u32,
    /// The most sessions that met the service level at once (0: none did).
    pub admitted: u32,
    /// The stream each session asked for, `WIDTHxHEIGHT@FPS`.
    pub stream: String,
    /// The trials, in the order played.
    pub trials: Vec<CapacityTrial>,
}

/// What a checker asks of, and tells, the broker about a host on probation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CapacityMessage {
    /// `count` sessions of `profile` on the host, for a trial (`POST /v1/capacity/sessions`).
    Sessions {
        /// The checker's address, `0x` and 40 hex digits.
        checker: String,
        /// The host on probation.
        host_id: String,
        /// The offers the checker is checking (the host's, as the broker listed them).
        offers_key: String,
        /// The profile whose slots the sessions take.
        profile: Profile,
        /// How many.
        count: u32,
        /// When asked, Unix milliseconds.
        at_ms: u64,
    },
    /// The finding, per profile (`POST /v1/capacity`).
    Report {
        /// The checker's address.
        checker: String,
        /// The host checked.
        host_id: String,
        /// The offers checked.
        offers_key: String,
        /// Each offered profile's finding.
        profiles: Vec<ProfileCapacity>,
        /// When the check ended, Unix milliseconds.
        at_ms: u64,
    },
}

impl CapacityMessage {
    /// The checker the message names.
    pub fn checker(&self) -> &str {
        match self {
            Self::Sessions { checker, .. } | Self::Report { checker, .. } => checker,
        }
    }

    /// When it was made, Unix milliseconds.
    pub fn at_ms(&self) -> u64 {
        match self {
            Self::Sessions { at_ms, .. } | Self::Report { at_ms, .. } => *at_ms,
        }
    }
}

/// A [`CapacityMessage`]'s exact JSON text and the checker's signature over it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedCapacity {
    /// The message as JSON text.
    pub message: String,
    /// `0x`-hex 65-byte signature over `message` as an Ethereum signed message.
    pub signature: String,
}

impl SignedCapacity {
    /// Signs `message` with the checker's key.
    pub fn sign(message: &CapacityMessage, key: &SigningKey) -> Self {
        let (message, signature) = sign_text(message, key);
        Self { message, signature }
    }

    /// The message and its checker, once the signature is found to be over
    /// this text and made by the checker it names.
    pub fn verify(&self) -> Result<(CapacityMessage, Address), ProtocolError> {
        verify_text(&self.message, &self.signature, "capacity message", CapacityMessage::checker)
    }
}

/// Where a host stands with its capacity check.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, TS, ToSchema)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum CapacityState {
    /// Not checked yet (new, or its offers changed): no player is placed on it.
    Probation,
    /// Checked: players are placed on the slots that passed.
    Admitted,
    /// No slot met the service level: checked again after `retry_at_ms`.
    Failed,
}

/// The broker's verdict on a host's offers, kept with the host and told to it
/// with each heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, TS, ToSchema)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct CapacityVerdict {
    /// The host.
    pub host_id: String,
    /// Which offers the verdict is about ([`offers_key`]).
    pub offers_key: String,
    /// The offers the host made.
    pub claimed: Vec<SlotOffer>,
    /// Where it stands.
    pub state: CapacityState,
    /// Slots admitted per profile (empty until checked).
    pub admitted: BTreeMap<Profile, u32>,
    /// The finding it rests on, with its figures.
    pub profiles: Vec<ProfileCapacity>,
    /// The checker that found it.
    pub checker: Option<String>,
    /// Why, in words.
    pub reason: String,
    /// When a check is due (now or later), Unix milliseconds; none once admitted.
    #[ts(type = "number | null")]
    pub due_ms: Option<u64>,
    /// Checks failed in a row (the back-off doubles with each).
    pub failures: u32,
}

/// The key of a host's offers: what a capacity verdict is about. A host that
/// changes what it offers (slots, stream sizes, apps, GPU) is checked again.
pub fn offers_key(registration: &crate::HostRegistration) -> String {
    let apps: Vec<&str> = registration.apps.iter().map(|a| a.id.as_str()).collect();
    let described = serde_json::to_vec(&(&registration.offers, &apps, &registration.gpu))
        .expect("offers serialise");
    crate::probe::to_hex(&crate::probe::keccak256(&described)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_messages_verify_and_name_their_checker() {
        let key = SigningKey::from_slice(&[7; 32]).unwrap();
        let checker = Address::of(key.verifying_key()).to_string();
        let message = CapacityMessage::Sessions {
            checker: checker.clone(),
            host_id: "h".into(),
            offers_key: "k".into(),
            profile: Profile::Game,
            count: 2,
            at_ms: 5,
        };
        let signed = SignedCapacity::sign(&message, &key);
        assert_eq!(signed.verify().unwrap(), (message.clone(), Address::of(key.verifying_key())));
        // Another key signing a message that names this checker is caught, and so is tampering.
        let other = SigningKey::from_slice(&[8; 32]).unwrap();
        let forged = SignedCapacity::sign(&message, &other);
        assert!(forged.verify().is_err());
        let tampered = SignedCapacity { message: signed.message.replace("2", "3"), ..signed };
        assert!(tampered.verify().is_err());
    }
}
