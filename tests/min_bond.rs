//! Admission by bond on a real anvil: `gridplay up --anvil … --min-bond WEI` runs a host
//! that proves its payout address (bonded 1 ETH on the demo chain) with that address's key.
//! A minimum it meets admits it and players are placed on it; a minimum above its bond
//! refuses it with 403 `not_bonded`, naming the bond and the minimum.

use std::io::Read;
use std::time::{Duration, Instant};

use gridplay_chain::settlement::BUNDLED_ANVIL;

mod common;
use common::Up;

const ETHER: u128 = 1_000_000_000_000_000_000;
const REQUEST: &str = r#"{"app":"orbit","profile":"game","width":1280,"height":720,"fps":60}"#;

fn up(min_bond: u128) -> Up {
    let (bond, anvil) = (min_bond.to_string(), BUNDLED_ANVIL.to_owned());
    Up::start(&["--min-bond", &bond, "--anvil", &anvil], "warn")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_is_admitted_by_a_bond_that_meets_the_minimum_and_refused_under_it() {
    assert!(std::path::Path::new(BUNDLED_ANVIL).exists(), "anvil: run `make chain-deps`");

    // Under its bond: the host is refused at registration, and `up` stops saying why.
    let mut refused = up(2 * ETHER);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = refused.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "a host under the minimum bond kept running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    refused.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!status.success());
    let why = format!("has a bond of {ETHER} wei, under the {} wei", 2 * ETHER);
    assert!(stderr.contains("not_bonded") && stderr.contains(&why), "{stderr}");

    // At its bond: admitted, and players are placed on it.
    let admitted = up(ETHER);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let response = http
            .post(format!("{}/v1/sessions", admitted.url))
            .header("content-type", "application/json")
            .body(REQUEST)
            .send()
            .await;
        if response.is_ok_and(|r| r.status() == reqwest::StatusCode::CREATED) {
            break;
        }
        assert!(Instant::now() < deadline, "a bonded host was never placed");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Stopped, `up` takes its chain with it.
    let anvil = admitted.children_named("anvil");
    assert_eq!(anvil.len(), 1, "up runs one anvil");
    drop(admitted);
    assert!(anvil.iter().all(|&pid| common::ended(pid)), "anvil outlived up");
}
