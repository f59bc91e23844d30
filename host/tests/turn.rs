//! Media through a TURN relay: coturn (from apt) on loopback shares a secret with the
//! broker, which hands players and hosts short-lived TURN credentials. A viewer that goes
//! through TURN alone plays the stream; with an expired credential coturn refuses the
//! relay and the viewer says so.

use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gridplay_protocol::IceServer;
use gridplay_session_broker::BrokerConfig;
use gridplay_session_broker::ice::IceConfig;
use gridplay_streaming::StreamingError;
use gridplay_streaming::webrtc::{IceSettings, ViewerOptions, WhepSession};

mod common;
use common::*;

const SECRET: &[u8] = b"gridplay-turn-test-secret";

/// A `turnserver` on loopback taking TURN REST credentials made with [`SECRET`], killed on drop.
struct Coturn {
    child: Child,
    port: u16,
}

impl Coturn {
    fn start() -> Self {
        let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("turnserver")
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--fingerprint"])
            .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
            .args(["--listening-port", &port.to_string()])
            .args(["--use-auth-secret", "--static-auth-secret"])
            .arg(std::str::from_utf8(SECRET).unwrap())
            .args(["--realm", "gridplay.test", "--allow-loopback-peers", "--log-file", "stdout"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver (apt-get install coturn)");
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "turnserver never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    fn ice(&self) -> IceConfig {
        let stun = vec![format!("stun:127.0.0.1:{}", self.port)];
        let turn = vec![format!("turn:127.0.0.1:{}?transport=udp", self.port)];
        IceConfig::new(stun, turn, Some(SECRET), Duration::from_secs(3600)).unwrap()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Options for a viewer on loopback that reaches the host through TURN alone.
fn through_turn(servers: Vec<IceServer>) -> ViewerOptions {
    ViewerOptions {
        ice: IceSettings { servers, relay_only: true },
        ..ViewerOptions::direct(LOOPBACK)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_plays_through_the_turn_relay_and_an_expired_credential_is_refused() {
    let coturn = Coturn::start();
    let config = BrokerConfig { ice: Some(coturn.ice()), ..BrokerConfig::default() };
    let broker = start_broker_with(BROKER_SEED, config).await;
    let net = Network::on(broker, |_| {}).await;

    let session = net.allocate().await;
    let turn = session.ice_servers.iter().find(|s| s.urls[0].starts_with("turn:")).unwrap();
    let username = turn.username.as_deref().unwrap();
    assert!(username.ends_with(&format!(":{}", session.session_id)), "{username}");

    // Expired an hour ago, though made with the right secret: coturn refuses the allocation.
    let expired = coturn.ice().servers(&session.session_id, unix_ms() - 2 * 3600 * 1000);
    let refused = WhepSession::connect(&session.whep_url, &session.token, &through_turn(expired))
        .await
        .err()
        .expect("no relay with an expired credential");
    assert!(matches!(&refused, StreamingError::Ice(m) if m.contains("no relay")), "{refused}");
    // Nor without any TURN server.
    let none = WhepSession::connect(&session.whep_url, &session.token, &through_turn(vec![]))
        .await
        .err()
        .expect("no relay without a TURN server");
    assert!(none.to_string().contains("no TURN server"), "{none}");

    let options = through_turn(session.ice_servers.clone());
    let (_whep, events) =
        WhepSession::connect(&session.whep_url, &session.token, &options).await.unwrap();
    let mut watch = Watch::new(events);
    for _ in 0..10 {
        watch.picture().await;
    }
}
