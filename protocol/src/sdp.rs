//! What a host checks of a WHEP offer's SDP before handing it to the WebRTC stack: its
//! size, that it is SDP, that it asks for video, and whether it asks for sound. The full
//! parse is the WebRTC stack's.

use crate::ProtocolError;

/// Largest SDP accepted from a remote peer, in bytes.
pub const MAX_SDP_LEN: usize = 32 * 1024;

/// Checks an offer: at most [`MAX_SDP_LEN`] bytes, starting `v=0`, with an `m=video` line.
pub fn check_offer(sdp: &str) -> Result<(), ProtocolError> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(ProtocolError::Invalid(format!("offer longer than {MAX_SDP_LEN} bytes")));
    }
    if !sdp.starts_with("v=0") {
        return Err(ProtocolError::Invalid("offer must start with v=0".into()));
    }
    if !sdp.lines().any(|l| l.starts_with("m=video")) {
        return Err(ProtocolError::Invalid("offer has no video section".into()));
    }
    Ok(())
}

/// Whether an offer has an audio section: the player wants sound.
pub fn offers_audio(sdp: &str) -> bool {
    sdp.lines().any(|l| l.starts_with("m=audio"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_oversized_and_malformed_offers() {
        assert!(check_offer(&format!("v=0\r\nm=video\r\n{}", "a".repeat(MAX_SDP_LEN))).is_err());
        assert!(check_offer("hello").is_err());
        assert!(check_offer("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n").is_err());
        assert!(check_offer("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\n").is_ok());
        assert!(!offers_audio("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\n"));
        assert!(offers_audio(
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        ));
    }
}
