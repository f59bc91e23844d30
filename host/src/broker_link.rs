//! The host's link to its broker: registration, heartbeats and session
//! state reports over the broker's HTTP API.

use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use gridplay_protocol::token::decode_public_key;
use gridplay_protocol::{HostRegistered, HostRegistration, SessionState, SessionUpdate};
use reqwest::StatusCode;

use crate::HostError;

/// A registered host's connection to the broker.
#[derive(Debug, Clone)]
pub struct BrokerLink {
    client: reqwest::Client,
    base: String,
    registration: HostRegistration,
}

impl BrokerLink {
    /// A link to the broker at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, registration: HostRegistration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client");
        Self { client, base: base.trim_end_matches('/').to_owned(), registration }
    }

    /// Registers (idempotently); returns the broker's token key and heartbeat period.
    pub async fn register(&self) -> Result<(VerifyingKey, Duration), HostError> {
        let response = self
            .client
            .post(format!("{}/v1/hosts", self.base))
            .json(&self.registration)
            .send()
            .await
            .map_err(|e| HostError::Broker(e.to_string()))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(HostError::Broker(format!("registration refused ({status}): {body}")));
        }
        let registered: HostRegistered =
            response.json().await.map_err(|e| HostError::Broker(e.to_string()))?;
        let key = decode_public_key(&registered.broker_public_key)?;
        Ok((key, Duration::from_millis(registered.heartbeat_ms.max(100))))
    }

    /// Heartbeats forever at `period`, re-registering when the broker has
    /// forgotten this host (a lapsed lease or a restarted broker).
    pub async fn heartbeat_forever(&self, period: Duration) {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let url = format!("{}/v1/hosts/{}/heartbeat", self.base, self.registration.host_id);
            match self.client.post(url).send().await {
                Ok(r) if r.status() == StatusCode::NOT_FOUND => {
                    tracing::warn!("broker forgot this host; registering again");
                    if let Err(e) = self.register().await {
                        tracing::warn!("re-registration failed: {e}");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("heartbeat failed: {e}"),
            }
        }
    }

    /// Reports a session's state; failures are logged (the lease covers them).
    pub async fn report(&self, session_id: &str, state: SessionState) {
        let url =
            format!("{}/v1/hosts/{}/sessions/{session_id}", self.base, self.registration.host_id);
        let result = self.client.post(url).json(&SessionUpdate { state }).send().await;
        match result {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(session = session_id, "broker refused report: {}", r.status()),
            Err(e) => tracing::warn!(session = session_id, "report failed: {e}"),
        }
    }
}
