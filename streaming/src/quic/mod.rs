//! The native transport over QUIC (quinn): a control stream, video as one
//! unidirectional stream per frame or as datagrams, input and frame
//! feedback as datagrams. The wire contract is
//! [`gridplay_protocol::quic`].
//!
//! The host pins nothing and the client pins the host's certificate by hash
//! ([`HostCertificate::sha256_hex`], published through the broker).

mod assembler;
mod client;
mod control;
mod resend;
mod server;
mod tls;

pub use assembler::{Assembled, FrameAssembler};
pub use client::{JoinOptions, QuicViewer, Welcome};
pub use resend::GIVE_UP_AFTER;
pub use server::{HELLO_TIMEOUT, QuicIncoming, QuicJoin, QuicListener, QuicPeer};
pub use tls::HostCertificate;
