//! The host's link to its broker: registration, heartbeats and session
//! state reports over the broker's HTTP API, each request signed with the
//! host's key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{SigningKey, VerifyingKey};
use gridplay_protocol::host_auth::{HOST_AUTH_HEADER, sign_request};
use gridplay_protocol::token::decode_public_key;
use gridplay_protocol::{
    Heartbeat, HeartbeatAck, HostRegistered, HostRegistration, SessionState, SessionUpdate,
};
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::HostError;

/// A host's connection to the broker.
#[derive(Debug, Clone)]
pub struct BrokerLink {
    client: reqwest::Client,
    base: String,
    key: SigningKey,
    registration: HostRegistration,
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
    /// A link to the broker at `base` (e.g. `http://127.0.0.1:8080`) for the
    /// host whose key is `key`.
    pub fn new(base: &str, key: SigningKey, registration: HostRegistration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client");
        Self { client, base: base.trim_end_matches('/').to_owned(), key, registration }
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Posted<T>, HostError> {
        let body = serde_json::to_vec(body).map_err(|e| HostError::Broker(e.to_string()))?;
        let auth = sign_request(&self.key, "POST", path, unix_ms(), &body);
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(HOST_AUTH_HEADER, auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| HostError::Broker(e.to_string()))?;
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

    /// Registers (idempotently); returns the broker's token key and heartbeat period.
    pub async fn register(&self) -> Result<(VerifyingKey, Duration), HostError> {
        let Posted::Ok(registered) =
            self.post::<_, HostRegistered>("/v1/hosts", &self.registration).await?
        else {
            return Err(HostError::Broker("broker has no registration endpoint".into()));
        };
        let key = decode_public_key(&registered.broker_public_key)?;
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
        loop {
            ticker.tick().await;
            let sessions = running();
            let beat = Heartbeat { load: sessions.len() as f32 / self.capacity(), sessions };
            match self.post::<_, HeartbeatAck>(&path, &beat).await {
                Ok(Posted::Ok(ack)) if !ack.ended_sessions.is_empty() => ended(&ack.ended_sessions),
                Ok(Posted::Ok(_)) => {}
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
