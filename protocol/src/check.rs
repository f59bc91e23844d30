//! Checker reports: what a synthetic client saw of a host's service,
//! signed with the checker's secp256k1 key as an Ethereum signed message
//! (EIP-191), so a broker can weigh it into the host's reputation and a
//! contract or anyone else can tell which checker vouches for it.

use k256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ProtocolError;
use crate::probe::{Address, Hash, keccak256, recover_signer, sign_digest};

/// What the host's own signed record of the checked session says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostRecord {
    /// Whether the host's record verified: signed (ed25519) by the host, of this session.
    /// When not, the other figures are 0.
    pub signature_verified: bool,
    /// Seconds the host recorded.
    pub seconds: u32,
    /// Frames the host says it sent over those seconds.
    pub frames_sent: u64,
    /// Seconds whose client report counts as evidence by the settler's rule (checked by the
    /// checker against its own session key, not taken from the host).
    pub reports_valid: u32,
}

/// What a checker saw of one host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckReport {
    /// The host checked (its ed25519 id).
    pub host_id: String,
    /// The session the checker played.
    pub session_id: String,
    /// The checker's address, `0x` and 40 hex digits.
    pub checker: String,
    /// When the check ended, Unix milliseconds.
    pub checked_at_ms: u64,
    /// The stream asked for, `WIDTHxHEIGHT@FPS`.
    pub stream: String,
    /// Frames decoded per second.
    pub mean_fps: f64,
    /// Longest gap between decoded frames, ms.
    pub longest_freeze_ms: f64,
    /// Click-to-photon (input to the decoded picture that shows it), median, ms.
    pub click_to_photon_ms_p50: f64,
    /// Its 99th percentile, ms.
    pub click_to_photon_ms_p99: f64,
    /// Its samples.
    pub click_to_photon_samples: u32,
    /// The transport's round-trip estimate at the end, ms.
    pub rtt_ms: Option<f64>,
    /// The host's own record of the session.
    pub host: HostRecord,
    /// Whether the service met the checker's bar.
    pub delivered: bool,
    /// For a session the checker paid for: its summary of each block, signed for disputes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_summaries: Vec<SignedBlockSummary>,
}

/// A checker's summary of one billed block of a session it played and paid for: the
/// settlement contract's `ProbeSummary`, signed (EIP-712, under the contract's domain) with
/// the checker's key, so that a registered checker's summary can back `disputeProbeSummary`.
/// Seconds the checker did not see are counted as met: a summary only ever says less than
/// the host billed when the checker's own measurements show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedBlockSummary {
    /// On-chain session id (the voucher's EIP-712 digest), `0x` and 64 hex digits.
    pub session_id: String,
    /// Index of the 15-minute block within the session.
    pub block_index: u32,
    /// Seconds of the block the session covered.
    pub seconds_covered: u32,
    /// Covered seconds that met the checker's bar.
    pub seconds_met: u32,
    /// Billable wei by the billing rule, decimal.
    pub amount: String,
    /// `0x` and 130 hex digits: `r ‖ s ‖ v` over the summary's EIP-712 digest.
    pub signature: String,
}

/// A report's exact JSON text and the checker's signature over it (the
/// text, not a re-serialisation, is what is signed: numbers survive a JSON
/// round trip only approximately in many parsers).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedCheck {
    /// The [`CheckReport`] as JSON text.
    pub report: String,
    /// `0x`-hex 65-byte signature (`r ‖ s ‖ v`) over `report` as an
    /// Ethereum signed message.
    pub signature: String,
}

/// The broker's answer to an accepted [`SignedCheck`] (`POST /v1/checks`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct CheckAccepted {
    /// The host the report was about.
    pub host_id: String,
    /// Its reputation now, `0..=1`.
    pub reputation: f64,
}

/// EIP-191 digest of `message`: what `personal_sign` signs.
pub(crate) fn signed_message_digest(message: &[u8]) -> Hash {
    let mut bytes = format!("\x19Ethereum Signed Message:\n{}", message.len()).into_bytes();
    bytes.extend_from_slice(message);
    keccak256(&bytes)
}

/// `value` as JSON text and the key's EIP-191 signature over that text.
pub(crate) fn sign_text<T: Serialize>(value: &T, key: &SigningKey) -> (String, String) {
    let text = serde_json::to_string(value).expect("signed messages serialise");
    let signature = sign_digest(key, &signed_message_digest(text.as_bytes()));
    (text, signature)
}

/// The value of `text` (a `what`) and its signer, once `signature` is found to
/// be over this text and made by the checker the value names (`checker`).
pub(crate) fn verify_text<T: serde::de::DeserializeOwned>(
    text: &str,
    signature: &str,
    what: &str,
    checker: impl Fn(&T) -> &str,
) -> Result<(T, Address), ProtocolError> {
    let signer = recover_signer(&signed_message_digest(text.as_bytes()), signature)?;
    let value: T =
        serde_json::from_str(text).map_err(|e| ProtocolError::Invalid(format!("{what}: {e}")))?;
    if signer.to_string() != checker(&value).to_lowercase() {
        return Err(ProtocolError::BadProbeSignature);
    }
    Ok((value, signer))
}

impl SignedCheck {
    /// Signs `report` with the checker's key.
    pub fn sign(report: &CheckReport, key: &SigningKey) -> Self {
        let (report, signature) = sign_text(report, key);
        Self { report, signature }
    }

    /// The report and the checker's address, once the signature is found to
    /// be over this text and made by the checker the report names.
    pub fn verify(&self) -> Result<(CheckReport, Address), ProtocolError> {
        verify_text(&self.report, &self.signature, "check report", |r: &CheckReport| &r.checker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32].into()).unwrap()
    }

    fn report(checker: &SigningKey) -> CheckReport {
        CheckReport {
            host_id: "h".into(),
            session_id: "s".into(),
            checker: Address::of(checker.verifying_key()).to_string(),
            checked_at_ms: 1,
            stream: "1280x720@60".into(),
            mean_fps: 59.5,
            longest_freeze_ms: 40.0,
            click_to_photon_ms_p50: 18.0,
            click_to_photon_ms_p99: 30.0,
            click_to_photon_samples: 70,
            rtt_ms: Some(0.4),
            host: HostRecord {
                signature_verified: true,
                seconds: 15,
                frames_sent: 900,
                reports_valid: 0,
            },
            delivered: true,
            block_summaries: Vec::new(),
        }
    }

    #[test]
    fn eip191_digest_matches_a_known_vector() {
        // personal_sign("hello") digest, as ethers/viem compute it.
        assert_eq!(
            crate::probe::to_hex(&signed_message_digest(b"hello")),
            "50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750"
        );
    }

    #[test]
    fn signed_checks_verify_and_tampering_or_impersonation_is_caught() {
        let checker = key(3);
        let signed = SignedCheck::sign(&report(&checker), &checker);
        assert_eq!(signed.verify(), Ok((report(&checker), Address::of(checker.verifying_key()))));
        // Numbers that do not survive a parse and re-print still verify: the text is signed.
        let awkward =
            CheckReport { click_to_photon_ms_p99: 62.798311999999996, ..report(&checker) };
        assert!(SignedCheck::sign(&awkward, &checker).verify().is_ok());
        let mut tampered = signed.clone();
        tampered.report = tampered.report.replace("59.5", "60.5");
        assert!(tampered.verify().is_err());
        let forged = SignedCheck::sign(&report(&checker), &key(4));
        assert!(forged.verify().is_err(), "signed by someone other than the named checker");
        let garbage = SignedCheck { signature: "0x1234".into(), ..signed };
        assert!(garbage.verify().is_err());
    }
}
