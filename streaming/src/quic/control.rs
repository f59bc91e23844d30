//! Reading and writing [`ControlMessage`]s on a control stream.

use gridplay_protocol::quic::ControlMessage;

use crate::StreamingError;

/// Reads one length-prefixed control message; `Ok(None)` at a clean end of stream.
pub(crate) async fn read_message(
    recv: &mut quinn::RecvStream,
) -> Result<Option<ControlMessage>, StreamingError> {
    let mut prefix = [0u8; 4];
    match recv.read_exact(&mut prefix).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(StreamingError::Quic(format!("control stream: {e}"))),
    }
    let len = ControlMessage::body_len(prefix)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body)
        .await
        .map_err(|e| StreamingError::Quic(format!("control stream: {e}")))?;
    Ok(Some(ControlMessage::decode(&body)?))
}

/// Writes one control message.
pub(crate) async fn write_message(
    send: &mut quinn::SendStream,
    message: &ControlMessage,
) -> Result<(), StreamingError> {
    send.write_all(&message.encode())
        .await
        .map_err(|e| StreamingError::Quic(format!("control stream: {e}")))
}

/// Why a connection ended, as an error for the side that did not close it.
pub(crate) fn closed_error(error: &quinn::ConnectionError) -> StreamingError {
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => StreamingError::Refused {
            code: gridplay_protocol::quic::CloseCode::from_code(close.error_code.into_inner()),
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
        },
        other => StreamingError::Quic(other.to_string()),
    }
}
