//! TLS for the QUIC transport: the host's self-signed certificate, and a
//! client verifier that accepts exactly the certificate whose SHA-256 the
//! broker published (no certificate authority involved).

use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use gridplay_protocol::quic::ALPN;

use crate::StreamingError;

/// Name in the host certificate and the one clients ask for; identity comes
/// from the pinned hash, not from the name.
const SERVER_NAME: &str = "gridplay-host";

/// A host's QUIC certificate, made fresh at start-up.
pub struct HostCertificate {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    sha256: String,
}

impl HostCertificate {
    /// A new self-signed certificate and key (ECDSA P-256).
    pub fn generate() -> Result<Self, StreamingError> {
        let made = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()])
            .map_err(|e| StreamingError::Quic(format!("certificate: {e}")))?;
        let cert = made.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
        let sha256 = hex(&Sha256::digest(&cert));
        Ok(Self { cert, key, sha256 })
    }

    /// SHA-256 of the certificate (DER), lowercase hex: what clients pin.
    pub fn sha256_hex(&self) -> &str {
        &self.sha256
    }

    /// The server side of the QUIC handshake with this certificate.
    pub(crate) fn server_config(&self) -> Result<quinn::ServerConfig, StreamingError> {
        let mut tls = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_error)?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], PrivateKeyDer::Pkcs8(self.key.clone_key()))
            .map_err(tls_error)?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = QuicServerConfig::try_from(tls).map_err(tls_error)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(Arc::new(transport()));
        Ok(config)
    }
}

/// The client side of the handshake, accepting only the certificate whose
/// SHA-256 is `cert_sha256` (lowercase hex).
pub(crate) fn client_config(
    cert_sha256: &str,
) -> Result<(quinn::ClientConfig, &'static str), StreamingError> {
    let pinned = unhex(cert_sha256)
        .ok_or_else(|| StreamingError::Quic("certificate hash must be 64 hex digits".into()))?;
    let provider = provider();
    let verifier = PinnedCertificate {
        sha256: pinned,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(tls_error)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport()));
    Ok((config, SERVER_NAME))
}

/// Transport settings both sides use: BBR, room for a few seconds of frame
/// streams and datagrams, keep-alives well inside the idle timeout.
fn transport() -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport
        .congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(512))
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(1))
        .datagram_receive_buffer_size(Some(4 << 20))
        .datagram_send_buffer_size(1 << 20)
        .keep_alive_interval(Some(Duration::from_secs(1)))
        .max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(10_000))));
    transport
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(e: impl std::fmt::Display) -> StreamingError {
    StreamingError::Quic(format!("TLS: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    // Digits only: `from_str_radix` alone would also take a sign (`+a` as 0x0a).
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Accepts exactly one certificate, by hash; handshake signatures are still
/// checked against it.
#[derive(Debug)]
struct PinnedCertificate {
    sha256: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if Sha256::digest(end_entity).as_slice() == self.sha256 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("host certificate does not match its published hash".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not offered".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_hash_is_hex_of_the_der_and_parses_back() {
        let cert = HostCertificate::generate().expect("certificate");
        assert_eq!(cert.sha256_hex().len(), 64);
        assert_eq!(
            unhex(cert.sha256_hex()).map(|h| h.to_vec()),
            Some(Sha256::digest(&cert.cert).to_vec())
        );
        assert!(unhex("zz").is_none());
        assert!(unhex(&"é".repeat(32)).is_none());
        assert!(unhex(&"+a".repeat(32)).is_none());
        assert!(client_config("abc").is_err());
    }
}
