//! The WHEP client side: POST a viewer's offer with a bearer token, apply
//! the answer, and remember the session resource for DELETE.

use reqwest::{StatusCode, Url, header};
use tokio::sync::mpsc;

use super::{Viewer, ViewerEvent, ViewerOptions, route_candidates_via, without_candidates};
use crate::StreamingError;

/// A viewer connected through WHEP.
pub struct WhepSession {
    viewer: Viewer,
    resource: Url,
    token: String,
    http: reqwest::Client,
}

impl WhepSession {
    /// Offers to `whep_url` with `token`; returns the session and the
    /// viewer's events once the answer is applied. With `options.via`, the
    /// offer carries no candidates and the host's candidates are pointed at
    /// the relay.
    pub async fn connect(
        whep_url: &str,
        token: &str,
        options: &ViewerOptions,
    ) -> Result<(Self, mpsc::UnboundedReceiver<ViewerEvent>), StreamingError> {
        let via = options.via;
        let http = reqwest::Client::new();
        let endpoint = Url::parse(whep_url).map_err(|e| StreamingError::Whep(e.to_string()))?;
        let (viewer, offer, events) = Viewer::offer(options).await?;
        let offer = if via.is_some() { without_candidates(&offer) } else { offer };
        let response = http
            .post(endpoint.clone())
            .bearer_auth(token)
            .header(header::CONTENT_TYPE, "application/sdp")
            .body(offer)
            .send()
            .await
            .map_err(|e| StreamingError::Whep(e.to_string()))?;
        if response.status() != StatusCode::CREATED {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            viewer.close().await;
            return Err(StreamingError::Whep(format!("{status}: {body}")));
        }
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| StreamingError::Whep("answer has no Location".into()))?;
        let resource = endpoint.join(location).map_err(|e| StreamingError::Whep(e.to_string()))?;
        let answer = response.text().await.map_err(|e| StreamingError::Whep(e.to_string()))?;
        let answer = match via {
            Some(relay) => route_candidates_via(&answer, relay),
            None => answer,
        };
        viewer.accept_answer(&answer).await?;
        Ok((Self { viewer, resource, token: token.to_owned(), http }, events))
    }

    /// The peer, e.g. for sending input.
    pub fn viewer(&self) -> &Viewer {
        &self.viewer
    }

    /// The WHEP session resource (the target of DELETE).
    pub fn resource(&self) -> &Url {
        &self.resource
    }

    /// Ends the session with DELETE on its resource, then closes the peer.
    pub async fn end(self) -> Result<(), StreamingError> {
        let result = self.http.delete(self.resource.clone()).bearer_auth(&self.token).send().await;
        self.viewer.close().await;
        let response = result.map_err(|e| StreamingError::Whep(e.to_string()))?;
        if !response.status().is_success() {
            return Err(StreamingError::Whep(format!("DELETE answered {}", response.status())));
        }
        Ok(())
    }
}
