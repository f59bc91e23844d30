//! A host with no inbound port, on loopback: players' WHEP requests and the settler's record
//! reads reach it through the broker's relay over its signalling link. The link runs
//! through a TCP relay the test can cut, standing in for a broker that drops it: the host
//! links again by itself, and the session under way never stops.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use gridplay_host::{HostConfig, HostError, run_host};
use gridplay_protocol::probe::{PROBES_SIGNATURE_HEADER, SessionProbes};
use gridplay_protocol::{AllocateResponse, SessionClaims, SessionState};
use gridplay_session_broker::BrokerConfig;
use reqwest::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

mod common;
use common::*;

/// A TCP relay to `target` whose connections can all be cut at once.
struct Cuttable {
    addr: SocketAddr,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Cuttable {
    async fn to(target: SocketAddr) -> Self {
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let held = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relayed = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                held.lock().unwrap().push(relayed);
            }
        });
        Self { addr, connections }
    }

    /// Drops every connection under way (new ones pass again).
    fn cut(&self) {
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

/// GETs `url` until it answers `status`.
async fn until_status(http: &reqwest::Client, url: &str, status: StatusCode) {
    timeout(WAIT, async {
        loop {
            if http.get(url).send().await.is_ok_and(|r| r.status() == status) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{url} never answered {status}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_an_inbound_port_streams_through_its_link_and_links_again_after_a_cut() {
    let broker = start_broker(BROKER_SEED).await;
    let broker_addr: SocketAddr = broker.trim_start_matches("http://").parse().unwrap();
    let cuttable = Cuttable::to(broker_addr).await;
    let mut config = HostConfig::local(
        &format!("http://{}", cuttable.addr),
        LOOPBACK,
        0,
        2,
        SigningKey::from_bytes(&HOST_SEED),
    );
    config.listen = None;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(run_host(
        config,
        move |addr| ready_tx.send(addr).unwrap(),
        std::future::pending(),
    ));
    assert_eq!(timeout(WAIT, ready_rx).await.unwrap().unwrap(), None, "no inbound port");
    let net = Network { broker: broker.clone(), http: reqwest::Client::new() };

    let session: AllocateResponse = net.allocate().await;
    let relay = format!("{broker}/v1/hosts/{}/relay", session.host_id);
    assert_eq!(session.whep_url, format!("{relay}/whep"), "players are sent to the relay");
    until_status(&net.http, &format!("{relay}/ping"), StatusCode::NO_CONTENT).await;

    // An offer with a token the broker did not sign is refused by the host, as on its own port.
    let forged = SessionClaims::verify(&session.token, &broker_key(), 0).unwrap();
    let forged = forged.sign(&SigningKey::from_bytes(&[1; 32]));
    let refused = net.whep(&session.whep_url, Some(&forged), "v=0\r\n".into()).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let (whep, mut watch) = watch_over_whep(&session).await;
    assert!(whep.resource().as_str().starts_with(&relay), "{}", whep.resource());
    net.wait_for_state(&session.session_id, SessionState::Running).await;
    watch.picture().await;

    // The settler's read: the signed record, its signature header passed through.
    let probes = format!("{}/sessions/{}/probes", session.whep_url, session.session_id);
    let record = net.http.get(&probes).bearer_auth(&session.token).send().await.unwrap();
    assert_eq!(record.status(), StatusCode::OK);
    let signature = record.headers()[PROBES_SIGNATURE_HEADER].to_str().unwrap().to_owned();
    let body = record.bytes().await.unwrap();
    SessionProbes::from_signed(&body, Some(&signature), &session.host_id).unwrap();

    // The broker drops the link: the stream goes on, and the host links again by itself.
    cuttable.cut();
    let shown = watch.frames.len();
    watch.until("frames after the cut", |w, _| w.frames.len() >= shown + 30).await;
    until_status(&net.http, &format!("{relay}/ping"), StatusCode::NO_CONTENT).await;

    // Ending the session goes through the new link.
    whep.end().await.unwrap();
    net.wait_for_state(&session.session_id, SessionState::Ended).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlinked_host_is_a_clean_503_and_a_broker_without_a_public_url_relays_nobody() {
    let broker = start_broker(BROKER_SEED).await;
    let http = reqwest::Client::new();
    let unlinked = format!("{broker}/v1/hosts/nobody/relay/whep");
    let answer = http.post(&unlinked).body("v=0").send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.headers().contains_key("retry-after"));
    assert!(answer.text().await.unwrap().contains("host_unreachable"));

    // A broker that has no public URL cannot relay, and says so to a host that needs it.
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let private = format!("http://{}", listener.local_addr().unwrap());
    let state = gridplay_session_broker::BrokerState::in_memory(
        SigningKey::from_bytes(&BROKER_SEED),
        BrokerConfig::default(),
    );
    tokio::spawn(gridplay_session_broker::serve(listener, Arc::new(state), std::future::pending()));
    let mut config =
        HostConfig::local(&private, LOOPBACK, 0, 1, SigningKey::from_bytes(&HOST_SEED));
    config.listen = None;
    let refused = timeout(WAIT, run_host(config, |_| {}, std::future::pending())).await.unwrap();
    let Err(HostError::Broker(message)) = refused else { panic!("{refused:?}") };
    assert!(message.contains("relays no host's signalling"), "{message}");
}

fn broker_key() -> ed25519_dalek::VerifyingKey {
    SigningKey::from_bytes(&BROKER_SEED).verifying_key()
}
