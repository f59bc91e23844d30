//! The broker over HTTPS: a host registers and a player allocates through a broker whose
//! certificate chains to a CA they were given; a host given no such CA (the system's
//! roots) is refused at its first registration, with the reason; a client that opens a
//! connection and never speaks holds up no one else.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use gridplay_host::{HostConfig, https_trusting, run_host};
use gridplay_session_broker::tls::{TlsListener, server_config};
use gridplay_session_broker::{BrokerConfig, BrokerState, serve};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use reqwest::StatusCode;
use tokio::net::TcpListener;
use tokio::time::timeout;

mod common;
use common::{LOOPBACK, WAIT};

/// A test CA and a broker certificate it signed for 127.0.0.1, written as PEM files into
/// `dir`: `ca.pem`, `broker.pem` and `broker.key`.
fn certificates(dir: &Path) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Gridplay test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let leaf = leaf.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("broker.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("broker.key"), key.serialize_pem()).unwrap();
}

/// Starts a broker serving HTTPS with the certificate in `dir`; returns its URL.
async fn start_https_broker(dir: &Path) -> String {
    let config = server_config(&dir.join("broker.pem"), &dir.join("broker.key")).unwrap();
    let tcp = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let url = format!("https://{}", tcp.local_addr().unwrap());
    let listener = TlsListener::new(tcp, config).unwrap();
    let key = SigningKey::from_bytes(&common::BROKER_SEED);
    let state = Arc::new(BrokerState::in_memory(key, BrokerConfig::default()));
    tokio::spawn(serve(listener, state, std::future::pending()));
    url
}

/// Runs a host registering with `broker`, trusting `ca`; resolves to its start-up error,
/// or waits forever once it serves.
async fn host(broker: &str, ca: Option<&Path>) -> Result<(), gridplay_host::HostError> {
    let mut config =
        HostConfig::local(broker, LOOPBACK, 0, 1, SigningKey::from_bytes(&common::HOST_SEED));
    config.broker_ca = ca.map(Path::to_path_buf);
    run_host(config, |_| {}, std::future::pending()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_and_a_player_use_a_broker_over_https_with_the_ca_they_trust() {
    let dir = std::env::temp_dir().join(format!("gridplay-tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    certificates(&dir);
    let broker = start_https_broker(&dir).await;
    let ca = dir.join("ca.pem");

    // A client that connects and never speaks holds up no one.
    let _silent =
        tokio::net::TcpStream::connect(broker.trim_start_matches("https://")).await.unwrap();

    // Trusting only the system's roots, a host is refused at once (well inside the 10 s
    // the silent client may hold its handshake), and says why.
    let refused =
        timeout(Duration::from_secs(5), host(&broker, None)).await.expect("refused at once");
    let why = format!("{:?}", refused.expect_err("an unknown issuer is refused"));
    assert!(why.to_lowercase().contains("certificate"), "{why}");

    // Trusting the test CA, it registers and a player is placed on it over HTTPS.
    tokio::spawn({
        let (broker, ca) = (broker.clone(), ca.clone());
        async move { host(&broker, Some(&ca)).await }
    });
    let player = https_trusting(Some(&ca)).unwrap().build().unwrap();
    let body = serde_json::json!({"app": "orbit", "profile": "game", "width": 640, "height": 360, "fps": 30});
    let allocated = timeout(WAIT, async {
        loop {
            let response = player.post(format!("{broker}/v1/sessions")).json(&body).send().await;
            match response.unwrap().status() {
                StatusCode::CREATED => break,
                // Until the host has registered.
                StatusCode::SERVICE_UNAVAILABLE => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                other => panic!("allocation answered {other}"),
            }
        }
    });
    allocated.await.expect("the host registered over HTTPS");

    // Plain HTTP to the HTTPS port gets nothing.
    let plain = reqwest::Client::new().get(broker.replace("https://", "http://") + "/v1/apps");
    assert!(plain.send().await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
