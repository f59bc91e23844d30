//! The host's link to its broker: registration, heartbeats and session
//! state reports over the broker's HTTP API, each request signed with the
//! host's key.
//!
//! The broker's answer to a registration names the key its session tokens are
//! signed with. A host takes it only if it is the key it trusts: the one it was
//! configured with, or the one pinned at its first registration ([`BrokerKey`]).
//! Any other key is refused, so that nobody between host and broker can mint
//! tokens the host would accept.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{SigningKey, VerifyingKey};
use gridplay_protocol::capacity::{CapacityState, CapacityVerdict};
use gridplay_protocol::host_auth::{HOST_AUTH_HEADER, SigningClock, sign_request};
use gridplay_protocol::token::{decode_public_key, encode_public_key};
use gridplay_protocol::{
    Heartbeat, HeartbeatAck, HostRegistered, HostRegistration, IceServer, SessionState,
    SessionUpdate,
};
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::HostError;

/// Which broker key a host trusts to sign its session tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerKey {
    /// Only this key (`gridplay host --broker-key`; `gridplay up` passes the key it made).
    Configured(VerifyingKey),
    /// The key the broker presents at the first registration, required from then
    /// on: kept in this file (base64url) across restarts when a file is named,
    /// else for this process's life.
    PinnedOnFirstUse(Option<PathBuf>),
}

/// The broker key trusted now and how it came to be trusted.
#[derive(Debug)]
struct Trust {
    policy: BrokerKey,
    /// The configured or pinned key; `None` until the first registration pins one.
    key: Option<VerifyingKey>,
}

impl Trust {
    /// The trust `policy` starts with: its configured key, or the key pinned in its file.
    fn load(policy: BrokerKey) -> Result<Self, HostError> {
        let key = match &policy {
            BrokerKey::Configured(key) => Some(*key),
            BrokerKey::PinnedOnFirstUse(None) => None,
            BrokerKey::PinnedOnFirstUse(Some(path)) => read_pin(path)?,
        };
        Ok(Self { policy, key })
    }

    /// Accepts `presented` if it is the trusted key, pinning it (file first) when
    /// none is trusted yet; refuses any other.
    fn check(&mut self, presented: VerifyingKey) -> Result<(), HostError> {
        match self.key {
            Some(trusted) if trusted == presented => Ok(()),
            Some(trusted) => Err(HostError::UntrustedBroker {
                presented: encode_public_key(&presented),
                trusted: encode_public_key(&trusted),
                origin: match &self.policy {
                    BrokerKey::Configured(_) => "configured with --broker-key".into(),
                    BrokerKey::PinnedOnFirstUse(Some(path)) => {
                        format!("pinned in {}", path.display())
                    }
                    BrokerKey::PinnedOnFirstUse(None) => "pinned at the first registration".into(),
                },
            }),
            None => {
                if let BrokerKey::PinnedOnFirstUse(Some(path)) = &self.policy {
                    write_pin(path, &presented)?;
                    tracing::info!(file = %path.display(), "pinned the broker's key");
                }
                self.key = Some(presented);
                Ok(())
            }
        }
    }
}

/// The key pinned in `path`, or `None` when the file does not exist yet.
fn read_pin(path: &Path) -> Result<Option<VerifyingKey>, HostError> {
    match std::fs::read_to_string(path) {
        Ok(text) => decode_public_key(text.trim()).map(Some).map_err(|e| {
            HostError::Broker(format!("{} must hold the broker's key: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Pins `key` in a new file at `path` (never overwriting one).
fn write_pin(path: &Path, key: &VerifyingKey) -> Result<(), HostError> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    writeln!(file, "{}", encode_public_key(key))?;
    Ok(())
}

/// An HTTP client that verifies HTTPS servers against the system's roots or, with
/// `ca_file`, against the CA certificates of that PEM file alone.
pub fn https_trusting(ca_file: Option<&Path>) -> Result<reqwest::ClientBuilder, HostError> {
    let builder = reqwest::Client::builder();
    let Some(path) = ca_file else { return Ok(builder) };
    let bad = |e: &dyn std::fmt::Display| HostError::Broker(format!("{}: {e}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(&e))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(&e))?;
    if certificates.is_empty() {
        return Err(bad(&"no certificate in the file"));
    }
    Ok(certificates
        .into_iter()
        .fold(builder.tls_built_in_root_certs(false), |b, c| b.add_root_certificate(c)))
}

/// An error and every cause under it, as one line: what a failed request says alone
/// ("error sending request") hides why (a certificate from an unknown issuer, say).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// The WebSocket of a host's signalling link.
pub type SignallingSocket = tokio_tungstenite::WebSocketStream<reqwest::Upgraded>;

/// A host's connection to the broker.
#[derive(Debug)]
pub struct BrokerLink {
    client: reqwest::Client,
    base: String,
    key: SigningKey,
    registration: HostRegistration,
    trust: Mutex<Trust>,
    /// The timestamp of the last request signed, Unix ms.
    /// Times its requests are signed with, never one twice.
    signing: SigningClock,
    /// The STUN and TURN servers the broker last handed out, with their credentials.
    ice_servers: Mutex<Vec<IceServer>>,
    /// What the broker last said of this host.
    standing: Mutex<Standing>,
}

/// What the broker last said of a host, with a heartbeat's answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Standing {
    /// Where it stands with its capacity check, where the broker checks capacity.
    pub capacity: Option<CapacityVerdict>,
    /// What checkers found of it, `0..=1`.
    pub reputation: Option<f64>,
}

/// How a signed POST went.
enum Posted<T> {
    Ok(T),
    NotFound,
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

impl BrokerLink {
    /// A link to the broker at `base` (e.g. `https://broker.example`) for the
    /// host whose key is `key`, trusting the broker key `broker_key` says
    /// (a pin file that cannot be read is an error) and, over HTTPS, the
    /// certificates [`https_trusting`] `ca_file` does.
    pub fn new(
        base: &str,
        key: SigningKey,
        registration: HostRegistration,
        broker_key: BrokerKey,
        ca_file: Option<&Path>,
    ) -> Result<Self, HostError> {
        let client = https_trusting(ca_file)?
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| HostError::Broker(e.to_string()))?;
        let trust = Mutex::new(Trust::load(broker_key)?);
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            key,
            registration,
            trust,
            signing: SigningClock::default(),
            ice_servers: Mutex::default(),
            standing: Mutex::default(),
        })
    }

    /// What this host registers as.
    pub fn registration(&self) -> &HostRegistration {
        &self.registration
    }

    /// The broker's base URL.
    pub fn broker_url(&self) -> &str {
        &self.base
    }

    /// What the broker last said of this host.
    pub fn standing(&self) -> Standing {
        self.standing.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `GET`s one of the broker's public records; `None` when the broker has no such record.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, HostError> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| HostError::Broker(with_causes(&e)))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => {
                Ok(Some(response.json().await.map_err(|e| HostError::Broker(e.to_string()))?))
            }
            status => Err(HostError::Broker(format!("{path} answered {status}"))),
        }
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Posted<T>, HostError> {
        let body = serde_json::to_vec(body).map_err(|e| HostError::Broker(e.to_string()))?;
        let auth = sign_request(&self.key, "POST", path, self.signing.next(unix_ms()), &body);
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(HOST_AUTH_HEADER, auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| HostError::Broker(with_causes(&e)))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(Posted::NotFound),
            status if status.is_success() => {
                Ok(Posted::Ok(response.json().await.map_err(|e| HostError::Broker(e.to_string()))?))
            }
            status => {
                let text = response.text().await.unwrap_or_default();
                Err(HostError::Broker(format!("{path} refused ({status}): {text}")))
            }
        }
    }

    /// Registers (idempotently); returns the broker's token key and heartbeat
    /// period. A broker presenting a key this host does not trust is refused
    /// ([`HostError::UntrustedBroker`]).
    pub async fn register(&self) -> Result<(VerifyingKey, Duration), HostError> {
        let Posted::Ok(registered) =
            self.post::<_, HostRegistered>("/v1/hosts", &self.registration).await?
        else {
            return Err(HostError::Broker("broker has no registration endpoint".into()));
        };
        let key = decode_public_key(&registered.broker_public_key)?;
        self.trust.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).check(key)?;
        self.keep_ice_servers(registered.ice_servers);
        Ok((key, Duration::from_millis(registered.heartbeat_ms.max(100))))
    }

    /// Heartbeats forever at `period` with the sessions `running()` names,
    /// handing the ones the broker has ended to `ended`, and re-registering
    /// when the broker has forgotten this host (a lapsed lease or a restart).
    pub async fn heartbeat_forever(
        &self,
        period: Duration,
        running: impl Fn() -> Vec<String>,
        ended: impl Fn(&[String]),
    ) {
        let path = format!("/v1/hosts/{}/heartbeat", self.registration.host_id);
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut capacity = None;
        loop {
            ticker.tick().await;
            let sessions = running();
            let beat = Heartbeat { load: sessions.len() as f32 / self.capacity(), sessions };
            match self.post::<_, HeartbeatAck>(&path, &beat).await {
                Ok(Posted::Ok(ack)) => {
                    if !ack.ended_sessions.is_empty() {
                        ended(&ack.ended_sessions);
                    }
                    self.keep_ice_servers(ack.ice_servers);
                    tell_capacity(&mut capacity, ack.capacity.as_ref());
                    *self.standing.lock().unwrap_or_else(|p| p.into_inner()) =
                        Standing { capacity: ack.capacity, reputation: ack.reputation };
                }
                Ok(Posted::NotFound) => {
                    tracing::warn!("broker forgot this host; registering again");
                    if let Err(e) = self.register().await {
                        tracing::warn!("re-registration failed: {e}");
                    }
                }
                Err(e) => tracing::warn!("heartbeat failed: {e}"),
            }
        }
    }

    /// Opens this host's signalling link: a WebSocket upgrade of a request signed like every
    /// other, over the same client (and so the same TLS trust). A broker that refuses it
    /// (not admitted, say) is an error naming why.
    pub async fn open_signalling(&self) -> Result<SignallingSocket, HostError> {
        use base64::Engine;
        use reqwest::header::{CONNECTION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
        use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
        use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

        let path = format!("/v1/hosts/{}/link", self.registration.host_id);
        let auth = sign_request(&self.key, "GET", &path, self.signing.next(unix_ms()), b"");
        let mut nonce = [0; 16];
        getrandom::getrandom(&mut nonce).map_err(|e| HostError::Broker(e.to_string()))?;
        let nonce = base64::engine::general_purpose::STANDARD.encode(nonce);
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(HOST_AUTH_HEADER, auth)
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, "websocket")
            .header(SEC_WEBSOCKET_VERSION, "13")
            .header(SEC_WEBSOCKET_KEY, &nonce)
            .send()
            .await
            .map_err(|e| HostError::Broker(with_causes(&e)))?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return Err(HostError::Broker(format!("{path} refused ({status}): {text}")));
        }
        let accepted = response.headers().get("sec-websocket-accept").map(|v| v.as_bytes());
        if accepted != Some(derive_accept_key(nonce.as_bytes()).as_bytes()) {
            return Err(HostError::Broker(format!("{path}: not a WebSocket handshake")));
        }
        let upgraded = response.upgrade().await.map_err(|e| HostError::Broker(with_causes(&e)))?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(gridplay_protocol::link::MAX_MESSAGE_LEN))
            .max_frame_size(Some(gridplay_protocol::link::MAX_MESSAGE_LEN));
        Ok(SignallingSocket::from_raw_socket(upgraded, Role::Client, Some(config)).await)
    }

    /// The STUN and TURN servers for this host's ICE, as the broker last handed them out.
    pub fn ice_servers(&self) -> Vec<IceServer> {
        self.ice_servers.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn keep_ice_servers(&self, servers: Vec<IceServer>) {
        *self.ice_servers.lock().unwrap_or_else(|p| p.into_inner()) = servers;
    }

    fn capacity(&self) -> f32 {
        self.registration.offers.iter().map(|o| o.slots).sum::<u32>().max(1) as f32
    }

    /// Reports a session's state; failures are logged (the lease covers them).
    pub async fn report(&self, session_id: &str, state: SessionState) {
        let path = format!("/v1/hosts/{}/sessions/{session_id}", self.registration.host_id);
        if let Err(e) = self.post::<_, serde_json::Value>(&path, &SessionUpdate { state }).await {
            tracing::warn!(session = session_id, "report failed: {e}");
        }
    }
}

/// Logs where the host stands with its capacity check when that changes.
fn tell_capacity(known: &mut Option<(CapacityState, String)>, verdict: Option<&CapacityVerdict>) {
    let Some(verdict) = verdict else { return };
    let now = Some((verdict.state, verdict.reason.clone()));
    if *known == now {
        return;
    }
    *known = now;
    match verdict.state {
        CapacityState::Failed => {
            tracing::warn!(reason = %verdict.reason, "capacity check failed: no player is placed here")
        }
        state => tracing::info!(?state, reason = %verdict.reason, "capacity check"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> VerifyingKey {
        SigningKey::from_bytes(&[seed; 32]).verifying_key()
    }

    #[test]
    fn a_configured_key_is_the_only_one_trusted() {
        let mut trust = Trust::load(BrokerKey::Configured(key(1))).unwrap();
        assert!(trust.check(key(1)).is_ok());
        let refused = trust.check(key(2)).unwrap_err();
        assert!(matches!(refused, HostError::UntrustedBroker { .. }));
        assert!(refused.to_string().contains("--broker-key"), "{refused}");
        assert!(trust.check(key(1)).is_ok(), "refusing a key changes nothing");
    }

    #[test]
    fn the_first_key_is_pinned_in_its_file_and_a_changed_key_refused() {
        let dir = std::env::temp_dir().join(format!("gridplay-pin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("host.key.broker");
        let policy = BrokerKey::PinnedOnFirstUse(Some(path.clone()));
        let mut trust = Trust::load(policy.clone()).unwrap();
        trust.check(key(1)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), encode_public_key(&key(1)));
        assert!(trust.check(key(2)).is_err());
        // A restart reads the pin: the same key passes, another is refused.
        let mut restarted = Trust::load(policy.clone()).unwrap();
        let refused = restarted.check(key(2)).unwrap_err();
        assert!(refused.to_string().contains("pinned in"), "{refused}");
        restarted.check(key(1)).unwrap();
        // A pin file that holds no key is an error, not a fresh pin.
        std::fs::write(&path, "not a key").unwrap();
        assert!(Trust::load(policy).is_err());
        // Without a file the pin lasts as long as the process.
        let mut in_memory = Trust::load(BrokerKey::PinnedOnFirstUse(None)).unwrap();
        in_memory.check(key(3)).unwrap();
        assert!(in_memory.check(key(1)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
