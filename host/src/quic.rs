//! The host's QUIC endpoint: a native player starts its session here as a
//! browser does over WHEP, and a watcher joins a running session, getting
//! the player's encoded frames (one encode serves both). Each join needs an
//! unexpired token, and a session takes at most the host's `max_watchers`
//! watchers: the next is refused with [`CloseCode::NoCapacity`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use gridplay_protocol::quic::{CloseCode, JoinRole};
use gridplay_streaming::quic::{QuicIncoming, QuicJoin, QuicListener, QuicPeer};
use gridplay_streaming::webrtc::PeerEvent;
use tokio::sync::{broadcast, mpsc};

use crate::session::{PlayerPeer, Watched};
use crate::whep::{Expiry, HostState, Watch, WhepError};

/// Takes QUIC connections until the listener closes.
pub async fn serve_quic(listener: Arc<QuicListener>, state: Arc<HostState>) {
    while let Some(incoming) = listener.accept().await {
        tokio::spawn(join(incoming, Arc::clone(&state)));
    }
}

/// The close code a refused join gets.
fn close_code(error: &WhepError) -> CloseCode {
    match error {
        WhepError::Unauthorized(_) => CloseCode::Unauthorized,
        WhepError::Busy | WhepError::TooManyWatchers(_) => CloseCode::NoCapacity,
        WhepError::Conflict | WhepError::NotFound => CloseCode::Conflict,
        WhepError::BadSdp(_) | WhepError::UnknownApp(_) | WhepError::UnsupportedMedia => {
            CloseCode::ProtocolViolation
        }
        WhepError::Internal(_) => CloseCode::Internal,
    }
}

async fn join(incoming: QuicIncoming, state: Arc<HostState>) {
    let join = match incoming.hello().await {
        Ok(join) => join,
        Err(e) => return tracing::debug!("QUIC client turned away before hello: {e}"),
    };
    let remote = join.remote_address();
    let claims = match state.verify_token(&join.token, Expiry::Enforced) {
        Ok(claims) => claims,
        Err(e) => return refuse(join, &e),
    };
    let size = (claims.width, claims.height, claims.fps);
    match join.role {
        JoinRole::Player => {
            let new = match state.reserve(&claims) {
                Ok(new) => new,
                Err(e) => return refuse(join, &e),
            };
            let rate = Some(new.control.rate.clone());
            match join.accept(&claims.session_id, size, rate).await {
                Ok((peer, events)) => {
                    tracing::info!(session = %claims.session_id, %remote, "QUIC player joined");
                    state.launch(new, PlayerPeer::Quic(peer), events);
                }
                Err(e) => {
                    tracing::debug!(%remote, "QUIC welcome failed: {e}");
                    state.release(new);
                }
            }
        }
        JoinRole::Watcher => {
            let watch = match state.watch(&claims.session_id) {
                Ok(watch) => watch,
                Err(e) => return refuse(join, &e),
            };
            match join.accept(&claims.session_id, size, None).await {
                Ok((peer, events)) => {
                    tracing::info!(session = %claims.session_id, %remote, "QUIC watcher joined");
                    run_watcher(peer, events, watch).await;
                }
                Err(e) => tracing::debug!(%remote, "QUIC welcome failed: {e}"),
            }
        }
    }
}

fn refuse(join: QuicJoin, error: &WhepError) {
    tracing::debug!(remote = %join.remote_address(), "QUIC join refused: {error}");
    join.refuse(close_code(error), &error.to_string());
}

/// Forwards a running session's frames to a watcher, from the next
/// keyframe on, until either side leaves.
async fn run_watcher(
    peer: QuicPeer,
    mut events: mpsc::UnboundedReceiver<PeerEvent>,
    mut watch: Watch,
) {
    watch.control.keyframe.store(true, Ordering::Relaxed);
    let mut synced = false;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(PeerEvent::KeyframeRequest) => {
                    watch.control.keyframe.store(true, Ordering::Relaxed);
                }
                // Watchers steer nothing: input and probes are not theirs to send.
                Some(PeerEvent::Connected | PeerEvent::Input(_) | PeerEvent::Probe(_)) => {}
                Some(PeerEvent::Closed) | None => break,
            },
            watched = watch.media.recv() => match watched {
                Ok(Watched::Frame(frame)) => {
                    synced |= frame.keyframe;
                    if synced
                        && peer.send_frame(frame.data, frame.captured_at, frame.frame_id, frame.keyframe).is_err()
                    {
                        synced = false;
                    }
                }
                Ok(Watched::Sound(packet)) => {
                    let _ = peer.send_sound(&packet.data, packet.samples, packet.captured_at);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    synced = false;
                    watch.control.keyframe.store(true, Ordering::Relaxed);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    peer.close().await;
}
