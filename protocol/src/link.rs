//! The host's signalling link: a WebSocket the host opens to its broker (so that a host
//! behind a NAT needs no inbound port), over which the broker relays players' and the
//! settler's HTTP requests for the host, and the host answers them.
//!
//! Each request or answer is one binary WebSocket message: a 4-byte big-endian length,
//! that many bytes of JSON head ([`RequestHead`] or [`ResponseHead`]), then the body.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ProtocolError;

/// Longest JSON head of a relayed message, in bytes.
pub const MAX_HEAD_LEN: usize = 16 * 1024;
/// Most headers one relayed message carries.
pub const MAX_HEADERS: usize = 16;
/// Longest relayed message, head and body, in bytes: room for the longest host record
/// a settler reads (4 MiB) and its head.
pub const MAX_MESSAGE_LEN: usize = (4 << 20) + MAX_HEAD_LEN + 4;

/// A request relayed to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestHead {
    /// Names the request; its answer carries the same id.
    pub id: u64,
    /// The HTTP method.
    pub method: String,
    /// The path on the host, with its query (`/whep`, `/whep/sessions/{id}`).
    pub path: String,
    /// The headers the broker passes on (name, value).
    pub headers: Vec<(String, String)>,
}

/// The host's answer to a relayed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseHead {
    /// The id of the request answered.
    pub id: u64,
    /// The HTTP status.
    pub status: u16,
    /// The answer's headers (name, value).
    pub headers: Vec<(String, String)>,
}

/// What every relayed head has: headers, within limits.
pub trait Head: Serialize + DeserializeOwned {
    /// The head's headers.
    fn headers(&self) -> &[(String, String)];
}

impl Head for RequestHead {
    fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
}

impl Head for ResponseHead {
    fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
}

/// One link message: `head` and then `body`.
pub fn encode<H: Head>(head: &H, body: &[u8]) -> Vec<u8> {
    let head = serde_json::to_vec(head).expect("a head serializes");
    let mut message = Vec::with_capacity(4 + head.len() + body.len());
    message.extend_from_slice(&(head.len() as u32).to_be_bytes());
    message.extend_from_slice(&head);
    message.extend_from_slice(body);
    message
}

/// A link message's head and body; a truncated message, an oversized or malformed head,
/// or one with too many headers is an error.
pub fn decode<H: Head>(message: &[u8]) -> Result<(H, &[u8]), ProtocolError> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(ProtocolError::Invalid(format!(
            "link message longer than {MAX_MESSAGE_LEN} bytes"
        )));
    }
    let (length, rest) = message.split_first_chunk::<4>().ok_or(ProtocolError::Truncated)?;
    let length = u32::from_be_bytes(*length) as usize;
    if length > MAX_HEAD_LEN {
        return Err(ProtocolError::Invalid(format!("link head longer than {MAX_HEAD_LEN} bytes")));
    }
    if rest.len() < length {
        return Err(ProtocolError::Truncated);
    }
    let (head, body) = rest.split_at(length);
    let head: H = serde_json::from_slice(head)
        .map_err(|e| ProtocolError::Invalid(format!("link head: {e}")))?;
    if head.headers().len() > MAX_HEADERS {
        return Err(ProtocolError::Invalid(format!("more than {MAX_HEADERS} headers")));
    }
    Ok((head, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RequestHead {
        RequestHead {
            id: 7,
            method: "POST".into(),
            path: "/whep".into(),
            headers: vec![("content-type".into(), "application/sdp".into())],
        }
    }

    #[test]
    fn a_message_decodes_to_its_head_and_body() {
        let message = encode(&request(), b"v=0\r\n");
        let (head, body) = decode::<RequestHead>(&message).unwrap();
        assert_eq!((head, body), (request(), &b"v=0\r\n"[..]));
        let empty = encode(&ResponseHead { id: 1, status: 204, headers: vec![] }, b"");
        assert_eq!(decode::<ResponseHead>(&empty).unwrap().1, b"");
    }

    #[test]
    fn truncated_oversized_and_malformed_messages_are_refused() {
        let message = encode(&request(), b"body");
        let head_end = message.len() - 4;
        for cut in [0, 3, 4, head_end - 1] {
            assert!(decode::<RequestHead>(&message[..cut]).is_err(), "cut at {cut}");
        }
        let huge_head = (MAX_HEAD_LEN as u32 + 1).to_be_bytes();
        assert!(decode::<RequestHead>(&huge_head).unwrap_err().to_string().contains("longer"));
        // A response is not a request, and unknown fields are refused.
        assert!(decode::<ResponseHead>(&message).is_err());
        let mut many = request();
        many.headers = vec![("a".into(), "b".into()); MAX_HEADERS + 1];
        assert!(decode::<RequestHead>(&encode(&many, b"")).is_err());
        let too_long = vec![0; MAX_MESSAGE_LEN + 1];
        assert!(decode::<RequestHead>(&too_long).is_err());
    }
}
