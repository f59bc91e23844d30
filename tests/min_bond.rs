//! Admission by bond on a real anvil: `gridplay up --anvil … --min-bond WEI` runs a host
//! that proves its payout address (bonded 1 ETH on the demo chain) with that address's key.
//! A minimum it meets admits it and players are placed on it; a minimum above its bond
//! refuses it with 403 `not_bonded`, naming the bond and the minimum.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gridplay_chain::settlement::BUNDLED_ANVIL;

const ETHER: u128 = 1_000_000_000_000_000_000;
const REQUEST: &str = r#"{"app":"orbit","profile":"game","width":1280,"height":720,"fps":60}"#;

struct Up {
    child: Child,
    url: String,
    web: std::path::PathBuf,
}

impl Up {
    fn start(min_bond: u128) -> Self {
        let web = std::env::temp_dir()
            .join(format!("gridplay-bond-web-{}-{min_bond}", std::process::id()));
        std::fs::create_dir_all(&web).unwrap();
        std::fs::write(web.join("index.html"), "<!doctype html>").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(env!("CARGO_BIN_EXE_gridplay"))
            .args(["up", "--port", &port.to_string(), "--min-bond", &min_bond.to_string()])
            .arg("--anvil")
            .arg(BUNDLED_ANVIL)
            .arg("--web-dir")
            .arg(&web)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gridplay binary");
        Self { child, url: format!("http://127.0.0.1:{port}"), web }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.web);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_is_admitted_by_a_bond_that_meets_the_minimum_and_refused_under_it() {
    assert!(std::path::Path::new(BUNDLED_ANVIL).exists(), "anvil: run `make chain-deps`");

    // Under its bond: the host is refused at registration, and `up` stops saying why.
    let mut refused = Up::start(2 * ETHER);
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
    let admitted = Up::start(ETHER);
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
}
