//! Extractors whose rejections answer in the API's JSON error format.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use gridplay_protocol::host_auth::{HOST_AUTH_HEADER, MAX_SKEW_MS, verify_request};
use serde::de::DeserializeOwned;

use crate::BrokerError;
use crate::store::SessionStore;

/// A JSON body; malformed or oversized bodies become [`BrokerError`]s.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = BrokerError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(BrokerError::TooLarge)
            }
            Err(rejection) => Err(BrokerError::BadRequest(rejection.body_text())),
        }
    }
}

/// A host's request signature: the `x-gridplay-host-auth` header, and the method and path
/// it must have signed.
pub struct HostSignature {
    method: String,
    path: String,
    auth: Option<String>,
}

impl HostSignature {
    /// Checks that the request, with `body`, was signed by `host_id`'s key within the
    /// allowed skew ([`MAX_SKEW_MS`]) and is not a replay: its signature is marked in
    /// `store` for as long as it could pass, and refused if already marked (by any replica).
    pub async fn verify(
        &self,
        host_id: &str,
        body: &[u8],
        store: &dyn SessionStore,
        now_ms: u64,
    ) -> Result<(), BrokerError> {
        let auth = self
            .auth
            .as_deref()
            .ok_or(BrokerError::Unauthorized("missing host signature".into()))?;
        verify_request(host_id, auth, &self.method, &self.path, body, now_ms)
            .map_err(|e| BrokerError::Unauthorized(e.to_string()))?;
        // Verified, so the header is `<unix ms>.<signature>`. The signature alone is marked:
        // the time may be written in more than one way (`+1000`, `01000`), the signature
        // (strict base64url of ed25519's canonical encoding) in one only.
        let Some((at, signature)) = auth.split_once('.') else {
            return Err(BrokerError::Unauthorized("malformed host signature".into()));
        };
        let signed_ms = at.parse::<u64>().unwrap_or(now_ms);
        let keep_ms = signed_ms.saturating_add(MAX_SKEW_MS + 1).saturating_sub(now_ms);
        if !store.first_signature_use(signature, now_ms, keep_ms).await? {
            return Err(BrokerError::Unauthorized(
                "replayed request: this host signature was already used; sign each request afresh"
                    .into(),
            ));
        }
        Ok(())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for HostSignature {
    type Rejection = BrokerError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            auth: header_text(&parts.headers, HOST_AUTH_HEADER),
        })
    }
}

/// A host's request: the body, checked against the host's signature.
pub struct SignedBody<T> {
    /// The parsed body.
    pub body: T,
    /// The raw body bytes.
    raw: axum::body::Bytes,
    signature: HostSignature,
}

impl<T: DeserializeOwned> SignedBody<T> {
    /// Checks the request was signed by `host_id` ([`HostSignature::verify`]).
    pub async fn verify(
        &self,
        host_id: &str,
        store: &dyn SessionStore,
        now_ms: u64,
    ) -> Result<(), BrokerError> {
        self.signature.verify(host_id, &self.raw, store, now_ms).await
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for SignedBody<T> {
    type Rejection = BrokerError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let signature = HostSignature::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let raw = axum::body::Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                BrokerError::TooLarge
            } else {
                BrokerError::BadRequest(r.body_text())
            }
        })?;
        let body = serde_json::from_slice(&raw)
            .map_err(|e| BrokerError::BadRequest(format!("invalid JSON: {e}")))?;
        Ok(Self { body, raw, signature })
    }
}

/// A header's value as text, if present and visible ASCII.
pub fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}
