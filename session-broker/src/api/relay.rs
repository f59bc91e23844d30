//! Hosts without an inbound port: their signalling link (`GET /v1/hosts/{id}/link`, a
//! WebSocket the host opens, signed with its key) and the relay over it
//! (`/v1/hosts/{id}/relay/{path}`), which is such a host's WHEP endpoint for players and
//! the settler.
//!
//! The host's answers are passed on under this broker's origin, which also serves the web
//! client, so only what WHEP needs passes: the status, a body, and a few headers. Anything
//! else a host says (cookies, pages, redirects elsewhere) stays behind.

use axum::body::{Body, to_bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gridplay_protocol::link::{MAX_MESSAGE_LEN, RequestHead, ResponseHead};
use gridplay_protocol::probe::PROBES_SIGNATURE_HEADER;
use tower_http::cors::{Any, CorsLayer};

use super::extract::HostSignature;
use super::{MAX_BODY, Shared, unix_ms};
use crate::BrokerError;

/// The path under which a host's relay answers, on the broker.
pub fn relay_path(host_id: &str) -> String {
    format!("/v1/hosts/{host_id}/relay")
}

/// Opens a host's signalling link; signed with the host's key like every host request.
#[utoipa::path(get, path = "/v1/hosts/{id}/link",
    params(("id" = String, Path), ("x-gridplay-host-auth" = String, Header)),
    responses((status = 101, description = "The link, a WebSocket"), (status = 401, body = gridplay_protocol::ApiError),
        (status = 403, body = gridplay_protocol::ApiError)))]
pub(super) async fn link(
    State(state): State<Shared>,
    Path(host_id): Path<String>,
    signature: HostSignature,
    upgrade: WebSocketUpgrade,
) -> Result<Response, BrokerError> {
    signature.verify(&host_id, b"", &*state.store, unix_ms()).await?;
    state.admit(&host_id)?;
    Ok(upgrade
        .max_message_size(MAX_MESSAGE_LEN)
        .on_upgrade(move |socket| async move { state.links.serve(host_id, socket).await }))
}

/// Cross-origin use of the relay, as of a host's own WHEP endpoint: players hold bearer
/// tokens, not cookies, so any page may offer, read and end its session.
pub(super) fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::LOCATION, HeaderName::from_static(PROBES_SIGNATURE_HEADER)])
}

/// The request headers passed on to a host.
const REQUEST_HEADERS: [HeaderName; 3] =
    [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT];

/// Relays a request to a host over its link.
pub(super) async fn relay(
    State(state): State<Shared>,
    Path((host_id, path)): Path<(String, String)>,
    request: Request,
) -> Result<Response, BrokerError> {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY).await.map_err(|_| BrokerError::TooLarge)?;
    let path = match parts.uri.query() {
        Some(query) => format!("/{path}?{query}"),
        None => format!("/{path}"),
    };
    let headers = REQUEST_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            Some((name.to_string(), value.to_owned()))
        })
        .collect();
    let head = RequestHead { id: 0, method: parts.method.to_string(), path, headers };
    let (answer, body) = state.links.relay(&host_id, head, &body).await?;
    answer_of(&host_id, answer, body)
}

/// The response for a host's answer: its status and body, with only the headers WHEP
/// needs, and headers that keep the broker's origin safe from what the body holds.
fn answer_of(host_id: &str, answer: ResponseHead, body: Vec<u8>) -> Result<Response, BrokerError> {
    let status = StatusCode::from_u16(answer.status)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| BrokerError::BadGateway(format!("status {}", answer.status)))?;
    let mut response = (status, Body::from(body)).into_response();
    let headers = response.headers_mut();
    for (name, value) in &answer.headers {
        let passed = match name.to_ascii_lowercase().as_str() {
            "content-type" => {
                let known = ["application/sdp", "application/json"];
                let value = if known.iter().any(|k| value.starts_with(k)) {
                    value.as_str()
                } else {
                    "application/octet-stream"
                };
                Some((header::CONTENT_TYPE, value.to_owned()))
            }
            // A path on the host is the same path under its relay; nothing else is followed.
            "location" if value.starts_with('/') && !value.starts_with("//") => {
                Some((header::LOCATION, format!("{}{value}", relay_path(host_id))))
            }
            "etag" => Some((header::ETAG, value.clone())),
            "retry-after" => Some((header::RETRY_AFTER, value.clone())),
            PROBES_SIGNATURE_HEADER => {
                Some((HeaderName::from_static(PROBES_SIGNATURE_HEADER), value.clone()))
            }
            _ => None,
        };
        if let Some((name, value)) = passed
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            headers.insert(name, value);
        }
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
        let headers = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        ResponseHead { id: 1, status, headers }
    }

    #[test]
    fn only_what_whep_needs_passes_from_a_host_answer() {
        let response = answer_of(
            "h",
            answer(
                201,
                &[
                    ("Content-Type", "application/sdp"),
                    ("Location", "/whep/sessions/s"),
                    (PROBES_SIGNATURE_HEADER, "sig"),
                    ("set-cookie", "broker_session=stolen"),
                    ("access-control-allow-origin", "*"),
                ],
            ),
            b"v=0".to_vec(),
        )
        .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], "application/sdp");
        assert_eq!(headers[header::LOCATION], "/v1/hosts/h/relay/whep/sessions/s");
        assert_eq!(headers[PROBES_SIGNATURE_HEADER], "sig");
        assert!(headers.get(header::SET_COOKIE).is_none());
        assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }

    #[test]
    fn a_host_cannot_serve_pages_or_redirect_elsewhere_under_the_broker() {
        let page = answer_of(
            "h",
            answer(302, &[("content-type", "text/html"), ("location", "//evil.example/")]),
            b"<script>".to_vec(),
        )
        .unwrap();
        assert_eq!(page.headers()[header::CONTENT_TYPE], "application/octet-stream");
        assert!(page.headers().get(header::LOCATION).is_none());
        assert!(
            page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("sandbox")
        );
        for status in [100, 101, 0, 1000] {
            assert!(matches!(
                answer_of("h", answer(status, &[]), vec![]),
                Err(BrokerError::BadGateway(_))
            ));
        }
    }
}
