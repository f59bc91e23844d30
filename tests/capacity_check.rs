//! Capacity checks end to end: `gridplay up --capacity-check` runs a host that offers
//! more 1280x720@60 game slots than this machine can serve at once. The host is on
//! probation, and no player is placed on it, until its checker has played trials of
//! sessions on it; it is then admitted with fewer slots, or none, and players are placed
//! on no more than that.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use gridplay_protocol::Profile;
use gridplay_protocol::capacity::{CapacityState, CapacityVerdict};
use reqwest::StatusCode;

mod common;
use common::Up;

/// Game slots the host offers: more than two cores serve at 1280x720@60.
const CLAIMED: u32 = 8;
const REQUEST: &str = r#"{"app":"orbit","profile":"game","width":1280,"height":720,"fps":60}"#;

async fn allocate(http: &reqwest::Client, base: &str) -> StatusCode {
    let response = http
        .post(format!("{base}/v1/sessions"))
        .header("content-type", "application/json")
        .body(REQUEST)
        .send()
        .await
        .unwrap();
    response.status()
}

async fn verdict(http: &reqwest::Client, base: &str, host: &str) -> CapacityVerdict {
    let url = format!("{base}/v1/hosts/{host}/capacity");
    http.get(url).send().await.unwrap().error_for_status().unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_claims_more_than_it_serves_is_admitted_with_fewer_slots_or_none() {
    let mut up = Up::start(&["--slots", &CLAIMED.to_string(), "--capacity-check"], "info");
    // The host's id, from its registration's log line.
    let stderr = up.child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("host registered")
                && let Some(id) = line.split("host=").nth(1).and_then(|r| r.split(' ').next())
            {
                let _ = tx.send(id.to_owned());
            }
        }
    });
    let host = rx.recv_timeout(Duration::from_secs(60)).expect("the host registers");
    let (http, base) = (reqwest::Client::new(), up.url.clone());

    // On probation until checked: every player is turned away meanwhile.
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut refused_on_probation = 0;
    let checked = loop {
        let before = verdict(&http, &base, &host).await;
        if before.state != CapacityState::Probation {
            break before;
        }
        let status = allocate(&http, &base).await;
        if verdict(&http, &base, &host).await.state == CapacityState::Probation {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "a player placed on probation");
            refused_on_probation += 1;
        }
        assert!(Instant::now() < deadline, "the host was never checked");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(refused_on_probation > 0, "the host was checked before a player could ask");

    // Each profile admitted with fewer slots than it claimed, or none, on its trials' figures.
    println!("{}", checked.reason);
    assert_eq!(checked.profiles.len(), 2, "game and phone slots");
    for found in &checked.profiles {
        let admitted = checked.admitted.get(&found.profile).copied().unwrap_or(0);
        println!("{:?}: {:?}", found.profile, found.trials);
        assert_eq!((found.claimed, found.admitted), (CLAIMED, admitted));
        assert!(admitted < CLAIMED, "{CLAIMED} sessions at {} met the service level", found.stream);
        assert!(found.trials.iter().any(|t| !t.met && t.sessions > admitted));
        assert!(found.trials.iter().all(|t| t.met == (t.sessions <= admitted)));
    }
    let total: u32 = checked.admitted.values().sum();
    match checked.state {
        CapacityState::Admitted => assert!(total > 0 && checked.due_ms.is_none()),
        CapacityState::Failed => assert!(total == 0 && checked.due_ms.is_some()),
        CapacityState::Probation => unreachable!(),
    }
    let admitted = checked.admitted.get(&Profile::Game).copied().unwrap_or(0);

    // Players get the admitted game slots and no more.
    for _ in 0..admitted {
        assert_eq!(allocate(&http, &base).await, StatusCode::CREATED);
    }
    assert_eq!(allocate(&http, &base).await, StatusCode::SERVICE_UNAVAILABLE);
    drop(up);
}
