//! The broker's HTTP API end to end in process (router + memory store).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ed25519_dalek::SigningKey;
use gridplay_protocol::capacity::{
    CapacityMessage, CapacityState, CapacityTrial, CapacityVerdict, ProfileCapacity, SignedCapacity,
};
use gridplay_protocol::check::{CheckAccepted, CheckReport, HostRecord, SignedCheck};
use gridplay_protocol::host_auth::{HOST_AUTH_HEADER, sign_request};
use gridplay_protocol::network::{NetworkView, RegionFigures};
use gridplay_protocol::probe::Address;
use gridplay_protocol::settlement::{
    HostClaims, SessionReceipt, SettlementInfo, VoucherSubmission,
};
use gridplay_protocol::token::encode_public_key;
use gridplay_protocol::{
    AllocateResponse, ApiError, CandidateHost, GeoPoint, HostRegistered, HostRegistration, Profile,
    SessionClaims, SessionRecord, SessionState, SessionToken, SlotOffer,
};
use gridplay_session_broker::settlement::Settlement;
use gridplay_session_broker::{BrokerConfig, BrokerError, BrokerState, MAX_BODY, MemoryStore, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Now, but strictly after any earlier answer: each signed request is unique, as a host's are
/// (the broker refuses a signature seen before).
fn signing_ms() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now_ms().max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

struct Broker {
    router: Router,
    key: SigningKey,
    state: Arc<BrokerState>,
}

impl Broker {
    fn new() -> Self {
        Self::with_config(BrokerConfig::default())
    }

    fn with_config(config: BrokerConfig) -> Self {
        let store = Arc::new(MemoryStore::new(config.timing()));
        let key = SigningKey::from_bytes(&[3; 32]);
        let state = Arc::new(BrokerState::new(store, key.clone(), config));
        Self { router: app(Arc::clone(&state)), key, state }
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        (status, response.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    async fn json(&self, method: &str, uri: &str, body: &str) -> (StatusCode, Vec<u8>) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.call(request).await
    }

    async fn signed(&self, host: &SigningKey, uri: &str, body: &str) -> (StatusCode, Vec<u8>) {
        let auth = sign_request(host, "POST", uri, signing_ms(), body.as_bytes());
        self.with_auth(&auth, uri, body).await
    }

    /// POSTs `body` to `uri` with `auth` as its host signature header.
    async fn with_auth(&self, auth: &str, uri: &str, body: &str) -> (StatusCode, Vec<u8>) {
        let request = Request::builder()
            .method("POST")
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(HOST_AUTH_HEADER, auth)
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.call(request).await
    }

    async fn register(&self, host: &SigningKey, slots: u32) -> (StatusCode, Vec<u8>) {
        let body = serde_json::to_string(&registration(host, slots)).unwrap();
        self.signed(host, "/v1/hosts", &body).await
    }

    async fn delete(&self, uri: &str, token: Option<&str>) -> StatusCode {
        let mut request = Request::builder().method("DELETE").uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.call(request.body(Body::empty()).unwrap()).await.0
    }
}

fn registration(host: &SigningKey, slots: u32) -> HostRegistration {
    HostRegistration {
        host_id: encode_public_key(&host.verifying_key()),
        whep_url: "http://127.0.0.1:9/whep".into(),
        ping_url: "http://127.0.0.1:9/ping".into(),
        gpu: "llvmpipe".into(),
        region: "local".into(),
        location: GeoPoint { lat: 48.0, lon: 2.0 },
        offers: vec![SlotOffer {
            profile: Profile::Game,
            slots,
            max_width: 1920,
            max_height: 1080,
            max_fps: 60,
        }],
        price_per_block: 10,
        quic: None,
        payout_address: None,
        apps: Vec::new(),
        payout_proof: None,
        probation: false,
    }
}

const REQUEST: &str = r#"{"app":"orbit","profile":"game","width":1280,"height":720,"fps":60}"#;

#[tokio::test]
async fn the_network_figures_are_served_and_every_metric_the_dashboard_reads_is_exported() {
    let broker = Broker::new();
    assert_eq!(broker.register(&SigningKey::from_bytes(&[1; 32]), 4).await.0, StatusCode::OK);
    assert_eq!(broker.json("POST", "/v1/sessions", REQUEST).await.0, StatusCode::CREATED);
    let unknown = REQUEST.replace("orbit", "nothing");
    assert_eq!(broker.json("POST", "/v1/sessions", &unknown).await.0, StatusCode::BAD_REQUEST);
    let (status, body) = broker.json("GET", "/v1/network", "").await;
    assert_eq!(status, StatusCode::OK);
    let view: NetworkView = serde_json::from_slice(&body).unwrap();
    let region = RegionFigures {
        region: "local".into(),
        hosts: 1,
        slots: 4,
        sessions: 1,
        surge_milli: 1000,
    };
    assert_eq!((view.regions, view.delivered), (vec![region], None), "no settlement, no bills");
    let (status, body) = broker.json("GET", "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    let exported = String::from_utf8(body).unwrap();
    assert!(exported.contains(r#"gridplay_broker_network_hosts{region="local"} 1"#), "{exported}");
    let dashboard = include_str!("../grafana/gridplay-network.json");
    serde_json::from_str::<serde_json::Value>(dashboard).expect("the dashboard is JSON");
    for (at, _) in dashboard.match_indices("gridplay_broker_") {
        let name = &dashboard[at..];
        let end = name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        let metric = &name[..end.unwrap_or(name.len())];
        let found = [format!("{metric}{{"), format!("{metric} ")];
        assert!(
            found.iter().any(|f| exported.contains(f)),
            "{metric} is not exported:\n{exported}"
        );
    }
}

#[tokio::test]
async fn a_busy_region_raises_its_price_which_the_allocation_fixes_and_a_limit_keeps() {
    let broker = Broker::new();
    let host = SigningKey::from_bytes(&[1; 32]);
    assert_eq!(broker.register(&host, 4).await.0, StatusCode::OK);
    let price_of = |body: &[u8]| {
        let answer: AllocateResponse = serde_json::from_slice(body).unwrap();
        answer.price_per_block
    };
    for _ in 0..3 {
        let (status, body) = broker.json("POST", "/v1/sessions", REQUEST).await;
        assert_eq!(
            (status, price_of(&body)),
            (StatusCode::CREATED, "10".into()),
            "quiet: the base price"
        );
    }
    // Five minutes at three slots of four: ×1.25 (from ×1 at 60 % to ×2 at 100 %, in quarters).
    let now = gridplay_session_broker::unix_ms();
    let loads = broker.state.store.load_by_region(now).await.unwrap();
    for ago in (0..30).rev() {
        broker.state.prices.sample(&loads, now - ago * 10_000);
    }
    let (status, body) = broker.json("GET", "/v1/candidates?lat=48&lon=2&profile=game", "").await;
    assert_eq!(status, StatusCode::OK);
    let candidates: Vec<CandidateHost> = serde_json::from_slice(&body).unwrap();
    assert_eq!((candidates[0].price_per_block.as_str(), candidates[0].surge_milli), ("12", 1250));
    // A player who accepts at most 11 is not placed, and hears why.
    let capped = r#"{"app":"orbit","profile":"game","width":1280,"height":720,"fps":60,"max_price_per_block":"11"}"#;
    let (status, body) = broker.json("POST", "/v1/sessions", capped).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let error: ApiError = serde_json::from_slice(&body).unwrap();
    assert_eq!(error.error, "price_above_limit", "{}", error.message);
    let (status, body) =
        broker.json("POST", "/v1/sessions", &capped.replace("\"11\"", "\"12\"")).await;
    assert_eq!((status, price_of(&body)), (StatusCode::CREATED, "12".into()), "the surged price");
    let malformed = capped.replace("\"11\"", "\"1e3\"");
    assert_eq!(broker.json("POST", "/v1/sessions", &malformed).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn allocates_a_signed_session_then_reports_no_capacity() {
    let broker = Broker::new();
    let host = SigningKey::from_bytes(&[1; 32]);
    let (status, body) = broker.register(&host, 1).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let registered: HostRegistered = serde_json::from_slice(&body).unwrap();
    assert_eq!(registered.broker_public_key, encode_public_key(&broker.key.verifying_key()));

    let (status, body) = broker.json("POST", "/v1/sessions", REQUEST).await;
    assert_eq!(status, StatusCode::CREATED);
    let answer: AllocateResponse = serde_json::from_slice(&body).unwrap();
    let claims =
        SessionClaims::verify(&answer.token, &broker.key.verifying_key(), now_ms()).unwrap();
    assert_eq!((claims.session_id.as_str(), claims.width), (answer.session_id.as_str(), 1280));

    let (status, body) = broker.json("POST", "/v1/sessions", REQUEST).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(serde_json::from_slice::<ApiError>(&body).unwrap().error, "no_capacity");

    let uri = format!("/v1/sessions/{}", answer.session_id);
    assert_eq!(broker.delete(&uri, None).await, StatusCode::UNAUTHORIZED);
    let forged = claims.sign(&SigningKey::from_bytes(&[9; 32]));
    assert_eq!(broker.delete(&uri, Some(&forged)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(broker.delete(&uri, Some(&answer.token)).await, StatusCode::NO_CONTENT);
    let (_, body) = broker.json("GET", &uri, "").await;
    assert_eq!(serde_json::from_slice::<SessionRecord>(&body).unwrap().state, SessionState::Ended);
    assert_eq!(broker.json("POST", "/v1/sessions", REQUEST).await.0, StatusCode::CREATED);

    let (status, body) = broker.json("GET", "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("gridplay_broker_allocations_total 2"), "{text}");
    assert!(
        text.contains(r#"gridplay_broker_allocation_failures_total{reason="no_capacity"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"gridplay_broker_free_slots{profile="game"} 0"#), "{text}");
}

#[tokio::test]
async fn the_client_key_is_validated_and_carried_in_the_token() {
    let broker = Broker::new();
    broker.register(&SigningKey::from_bytes(&[1; 32]), 2).await;
    let with_key = |key: &str| {
        format!(
            r#"{{"app":"orbit","profile":"game","width":1280,"height":720,"fps":60,"client_key":"{key}"}}"#
        )
    };
    let (status, body) = broker.json("POST", "/v1/sessions", &with_key("0x1234")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
    let address = "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23";
    let (status, body) = broker.json("POST", "/v1/sessions", &with_key(address)).await;
    assert_eq!(status, StatusCode::CREATED);
    let answer: AllocateResponse = serde_json::from_slice(&body).unwrap();
    let claims =
        SessionClaims::verify(&answer.token, &broker.key.verifying_key(), now_ms()).unwrap();
    assert_eq!(claims.client_key.as_deref(), Some(address));
}

#[tokio::test]
async fn hosts_must_sign_with_their_own_key() {
    let broker = Broker::new();
    let host = SigningKey::from_bytes(&[1; 32]);
    let impostor = SigningKey::from_bytes(&[2; 32]);
    let body = serde_json::to_string(&registration(&host, 1)).unwrap();
    assert_eq!(
        broker.json("POST", "/v1/hosts", &body).await.0,
        StatusCode::UNAUTHORIZED,
        "unsigned"
    );
    assert_eq!(
        broker.signed(&impostor, "/v1/hosts", &body).await.0,
        StatusCode::UNAUTHORIZED,
        "forged"
    );
    assert_eq!(
        broker.json("POST", "/v1/sessions", REQUEST).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(broker.register(&host, 1).await.0, StatusCode::OK);
    let id = encode_public_key(&host.verifying_key());
    let beat = r#"{"load":0.5,"sessions":["gone"]}"#;
    let uri = format!("/v1/hosts/{id}/heartbeat");
    assert_eq!(broker.signed(&impostor, &uri, beat).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = broker.signed(&host, &uri, beat).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(String::from_utf8(body).unwrap(), r#"{"ended_sessions":["gone"],"reputation":1.0}"#);
}

#[tokio::test]
async fn a_live_token_renews_while_its_session_lives_an_expired_one_only_ends_it() {
    let broker = Broker::new();
    let host = SigningKey::from_bytes(&[1; 32]);
    assert_eq!(broker.register(&host, 1).await.0, StatusCode::OK);
    let (status, body) = broker.json("POST", "/v1/sessions", REQUEST).await;
    assert_eq!(status, StatusCode::CREATED);
    let answer: AllocateResponse = serde_json::from_slice(&body).unwrap();
    let key = broker.key.verifying_key();
    let granted = SessionClaims::verify(&answer.token, &key, now_ms()).unwrap();
    let renew = |token: &str| {
        let request = Request::builder()
            .method("POST")
            .uri(format!("/v1/sessions/{}/token", answer.session_id))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        broker.call(request)
    };
    let refusal = |body: Vec<u8>| serde_json::from_slice::<ApiError>(&body).unwrap().message;

    let (status, body) = renew(&answer.token).await;
    assert_eq!(status, StatusCode::OK);
    let fresh: SessionToken = serde_json::from_slice(&body).unwrap();
    let renewed = SessionClaims::verify(&fresh.token, &key, now_ms()).unwrap();
    assert_eq!(renewed.expires_at_ms, fresh.expires_at_ms);
    assert_eq!(
        SessionClaims { expires_at_ms: 0, ..renewed },
        SessionClaims { expires_at_ms: 0, ..granted.clone() }
    );
    // An expired token renews nothing, nor does another session's.
    let expired =
        SessionClaims { expires_at_ms: now_ms() - 1, ..granted.clone() }.sign(&broker.key);
    let (status, body) = renew(&expired).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(refusal(body).contains("expired"));
    let other = SessionClaims { session_id: "other".into(), ..granted }.sign(&broker.key);
    assert_eq!(renew(&other).await.0, StatusCode::UNAUTHORIZED);
    // It still ends its own session; the session's tokens then renew nothing.
    let uri = format!("/v1/sessions/{}", answer.session_id);
    assert_eq!(broker.delete(&uri, Some(&expired)).await, StatusCode::NO_CONTENT);
    let (status, body) = renew(&fresh.token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(refusal(body).contains("ended"));
}

#[tokio::test]
async fn a_replayed_host_request_is_refused_with_a_clear_message() {
    let broker = Broker::new();
    let host = SigningKey::from_bytes(&[1; 32]);
    let registration = serde_json::to_string(&registration(&host, 1)).unwrap();
    let at = now_ms();
    let auth = sign_request(&host, "POST", "/v1/hosts", at, registration.as_bytes());
    assert_eq!(broker.with_auth(&auth, "/v1/hosts", &registration).await.0, StatusCode::OK);
    let id = encode_public_key(&host.verifying_key());
    let uri = format!("/v1/hosts/{id}/heartbeat");
    let beat = r#"{"load":0.5,"sessions":[]}"#;
    let beat_auth = sign_request(&host, "POST", &uri, at, beat.as_bytes());
    assert_eq!(broker.with_auth(&beat_auth, &uri, beat).await.0, StatusCode::OK);
    // The same signed requests again, well within the allowed clock skew, the time as sent or
    // written another way.
    let (_, signature) = beat_auth.split_once('.').unwrap();
    let (plus, zero) = (format!("+{at}.{signature}"), format!("0{at}.{signature}"));
    for (auth, uri, body) in [
        (&auth, "/v1/hosts", &*registration),
        (&beat_auth, &*uri, beat),
        (&plus, &*uri, beat),
        (&zero, &*uri, beat),
    ] {
        let (status, answer) = broker.with_auth(auth, uri, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} replayed");
        let error: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("replayed request"), "{message}");
    }
    // The same request signed afresh passes.
    let fresh = sign_request(&host, "POST", &uri, at + 1, beat.as_bytes());
    assert_eq!(broker.with_auth(&fresh, &uri, beat).await.0, StatusCode::OK);
}

#[tokio::test]
async fn bad_input_gets_a_json_4xx_and_stores_nothing() {
    let broker = Broker::new();
    let host = SigningKey::from_bytes(&[1; 32]);
    broker.register(&host, 1).await;
    let big = format!(r#"{{"app":"{}"}}"#, "a".repeat(MAX_BODY));
    let bad = [
        "{not json",
        r#"{"app":"orbit","profile":"game","width":-1,"height":720,"fps":60}"#,
        r#"{"app":"orbit","profile":"game","width":100000,"height":720,"fps":60}"#,
        r#"{"app":"orbit","profile":"game","width":1280,"height":720,"fps":-60}"#,
        r#"{"app":"orbit","profile":"game","width":1280,"height":720,"fps":60,"location":{"lat":200,"lon":0}}"#,
        r#"{"app":"nope","profile":"game","width":1280,"height":720,"fps":60}"#,
        r#"{"app":"orbit","profile":"phone","width":1280,"height":720,"fps":60}"#,
        big.as_str(),
    ];
    for body in bad {
        let (status, bytes) = broker.json("POST", "/v1/sessions", body).await;
        assert!(status.is_client_error(), "{status} for {}", &body[..body.len().min(60)]);
        let error: ApiError = serde_json::from_slice(&bytes).expect("json error body");
        assert!(!error.message.is_empty());
    }
    let mut absurd = registration(&host, 1);
    absurd.location.lat = 200.0;
    let body = serde_json::to_string(&absurd).unwrap();
    assert_eq!(broker.signed(&host, "/v1/hosts", &body).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        broker.json("GET", "/v1/candidates?lat=200&lon=0&profile=game", "").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(broker.json("GET", "/v1/sessions/missing", "").await.0, StatusCode::NOT_FOUND);
    // The only slot is still free.
    assert_eq!(broker.json("POST", "/v1/sessions", REQUEST).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn candidates_come_nearest_first_with_ping_urls() {
    let broker = Broker::new();
    broker.register(&SigningKey::from_bytes(&[1; 32]), 1).await;
    let (status, body) =
        broker.json("GET", "/v1/candidates?lat=48.8&lon=2.3&profile=game", "").await;
    assert_eq!(status, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list[0]["ping_url"], "http://127.0.0.1:9/ping");
    assert!(list[0]["distance_km"].as_f64().unwrap() < 100.0);
}

#[tokio::test]
async fn allocations_and_vouchers_are_rate_limited_per_client_address() {
    let config = BrokerConfig {
        allocations_per_ip: std::num::NonZeroU32::new(2),
        ..BrokerConfig::default()
    };
    let store = Arc::new(MemoryStore::new(config.timing()));
    let router = app(Arc::new(BrokerState::new(store, SigningKey::from_bytes(&[3; 32]), config)));
    let post = |ip: [u8; 4], path: &str, body: &'static str| {
        let mut request = Request::builder()
            .method("POST")
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let address = std::net::SocketAddr::from((ip, 40_000));
        request.extensions_mut().insert(axum::extract::ConnectInfo(address));
        request
    };
    let from = |ip: [u8; 4]| post(ip, "/v1/sessions", REQUEST);
    // A burst of twice the rate passes (no hosts: each is a clean 503), then 429.
    for _ in 0..4 {
        let status = router.clone().oneshot(from([10, 0, 0, 1])).await.unwrap().status();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    let limited = router.clone().oneshot(from([10, 0, 0, 1])).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    let body = limited.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(serde_json::from_slice::<ApiError>(&body).unwrap().error, "rate_limited");
    // Vouchers draw on the same budget: each is a check against the chain.
    let voucher = post([10, 0, 0, 1], "/v1/sessions/s1/voucher", "{}");
    assert_eq!(
        router.clone().oneshot(voucher).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let other = router.clone().oneshot(from([10, 0, 0, 2])).await.unwrap().status();
    assert_eq!(other, StatusCode::SERVICE_UNAVAILABLE, "other addresses are not limited");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let broker = Broker::new();
    let (status, body) = broker.json("GET", "/v1/openapi.json", "").await;
    assert_eq!(status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/apps", "get"),
        ("/v1/candidates", "get"),
        ("/v1/sessions", "post"),
        ("/v1/sessions/{id}", "get"),
        ("/v1/sessions/{id}", "delete"),
        ("/v1/sessions/{id}/token", "post"),
        ("/v1/hosts", "post"),
        ("/v1/hosts/{id}/heartbeat", "post"),
        ("/v1/hosts/{id}/sessions/{session_id}", "post"),
        ("/v1/checks", "post"),
        ("/v1/capacity/due", "get"),
        ("/v1/capacity/sessions", "post"),
        ("/v1/capacity", "post"),
        ("/v1/hosts/{id}/capacity", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} undocumented");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in
        ["AllocateRequest", "AllocateResponse", "ApiError", "HostRegistration", "SessionRecord"]
    {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let allocate = &paths["/v1/sessions"]["post"]["responses"];
    assert!(
        allocate["201"].is_object() && allocate["503"].is_object() && allocate["429"].is_object()
    );
    assert!(paths["/v1/checks"]["post"]["responses"]["409"].is_object(), "replays documented");
}

fn check_report(host_id: &str, checker: &k256::ecdsa::SigningKey, delivered: bool) -> CheckReport {
    CheckReport {
        host_id: host_id.into(),
        session_id: "s".into(),
        checker: Address::of(checker.verifying_key()).to_string(),
        checked_at_ms: now_ms(),
        stream: "1280x720@60".into(),
        mean_fps: if delivered { 59.8 } else { 12.0 },
        longest_freeze_ms: 50.0,
        click_to_photon_ms_p50: 20.0,
        click_to_photon_ms_p99: 40.0,
        click_to_photon_samples: 60,
        rtt_ms: Some(1.0),
        host: HostRecord {
            signature_verified: true,
            seconds: 15,
            frames_sent: 900,
            reports_valid: 0,
        },
        delivered,
        block_summaries: Vec::new(),
    }
}

#[tokio::test]
async fn signed_checker_reports_move_host_reputation_and_nothing_else_does() {
    let checker = k256::ecdsa::SigningKey::from_bytes(&[5; 32].into()).unwrap();
    let stranger = k256::ecdsa::SigningKey::from_bytes(&[6; 32].into()).unwrap();
    let config = BrokerConfig {
        checkers: vec![Address::of(checker.verifying_key()).to_string()],
        ..BrokerConfig::default()
    };
    let broker = Broker::with_config(config);
    let host = SigningKey::from_bytes(&[9; 32]);
    assert_eq!(broker.register(&host, 2).await.0, StatusCode::OK);
    let host_id = encode_public_key(&host.verifying_key());
    let submit = |check: SignedCheck| {
        let body = serde_json::to_string(&check).unwrap();
        let broker = &broker;
        async move { broker.json("POST", "/v1/checks", &body).await }
    };

    let (status, body) =
        submit(SignedCheck::sign(&check_report(&host_id, &checker, false), &checker)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let accepted: CheckAccepted = serde_json::from_slice(&body).unwrap();
    assert_eq!(accepted.reputation, 0.75);

    // A checker the broker does not know, a report signed by someone else, a
    // tampered one, a stale one, an unknown host, and garbage: refused, and the
    // reputation stays where it was.
    let unknown = SignedCheck::sign(&check_report(&host_id, &stranger, false), &stranger);
    assert_eq!(submit(unknown).await.0, StatusCode::UNAUTHORIZED);
    let forged = SignedCheck::sign(&check_report(&host_id, &checker, false), &stranger);
    assert_eq!(submit(forged).await.0, StatusCode::UNAUTHORIZED);
    let mut tampered = SignedCheck::sign(&check_report(&host_id, &checker, true), &checker);
    tampered.report = tampered.report.replace("\"delivered\":true", "\"delivered\":false");
    assert_eq!(submit(tampered).await.0, StatusCode::UNAUTHORIZED);
    let stale = CheckReport {
        checked_at_ms: now_ms() - 3_600_000,
        ..check_report(&host_id, &checker, false)
    };
    assert_eq!(submit(SignedCheck::sign(&stale, &checker)).await.0, StatusCode::BAD_REQUEST);
    let nobody = CheckReport { session_id: "s0".into(), ..check_report("nobody", &checker, false) };
    let nobody = SignedCheck::sign(&nobody, &checker);
    assert_eq!(submit(nobody.clone()).await.0, StatusCode::NOT_FOUND);
    assert_eq!(submit(nobody).await.0, StatusCode::NOT_FOUND, "not counted, so not marked");
    assert_eq!(
        broker.json("POST", "/v1/checks", "{\"report\":1}").await.0,
        StatusCode::BAD_REQUEST
    );

    // The same report again, or another by the same checker on the same session: counted
    // once, and the answer says so.
    let first = check_report(&host_id, &checker, false);
    let (status, body) = submit(SignedCheck::sign(&first, &checker)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"], "already_counted");
    let again =
        CheckReport { checked_at_ms: now_ms() + 1, ..check_report(&host_id, &checker, true) };
    assert_eq!(submit(SignedCheck::sign(&again, &checker)).await.0, StatusCode::CONFLICT);

    let next = CheckReport { session_id: "s2".into(), ..check_report(&host_id, &checker, true) };
    let (status, body) = submit(SignedCheck::sign(&next, &checker)).await;
    assert_eq!(status, StatusCode::OK);
    let accepted: CheckAccepted = serde_json::from_slice(&body).unwrap();
    assert_eq!(accepted.reputation, 0.8125, "only the two accepted reports counted");
}

/// A stand-in for a settler whose state can fail to be written: the broker's side of the
/// [`Settlement`] trait is what is tested here (the real settler lives in its own crate).
struct FailingSettler {
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Settlement for FailingSettler {
    fn info(&self) -> SettlementInfo {
        unimplemented!("not asked in this test")
    }

    fn allocated(
        &self,
        _: &SessionClaims,
        _: &HostRegistration,
        _: u64,
        _: u64,
    ) -> Result<(), BrokerError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(BrokerError::Store("settlement journal: disk full".into()));
        }
        Ok(())
    }

    async fn submit_voucher(
        &self,
        _: &str,
        _: &VoucherSubmission,
        _: u64,
    ) -> Result<(), BrokerError> {
        Ok(())
    }

    async fn host_bond(&self, _: &str) -> Result<u128, BrokerError> {
        unimplemented!("not asked in this test")
    }

    fn host_claims(&self, _: &str) -> Result<HostClaims, BrokerError> {
        Err(BrokerError::NotSettling)
    }

    fn receipt(&self, _: &str) -> Result<SessionReceipt, BrokerError> {
        Err(BrokerError::SessionNotFound)
    }

    fn network(&self, _: u64) -> gridplay_protocol::network::Delivered {
        unimplemented!("not asked in this test")
    }

    async fn run(&self, _: SigningKey, _: tokio::sync::watch::Receiver<bool>) {}
}

#[tokio::test]
async fn an_allocation_the_settler_cannot_keep_is_refused_and_its_slot_freed() {
    let config = BrokerConfig::default();
    let store = Arc::new(MemoryStore::new(config.timing()));
    let key = SigningKey::from_bytes(&[3; 32]);
    let settler = Arc::new(FailingSettler { failing: true.into() });
    let state = BrokerState::new(store, key.clone(), config)
        .with_settlement(Arc::clone(&settler) as Arc<dyn Settlement>);
    let state = Arc::new(state);
    let broker = Broker { router: app(Arc::clone(&state)), key, state };
    broker.register(&SigningKey::from_bytes(&[1; 32]), 1).await;
    for _ in 0..2 {
        let (status, body) = broker.json("POST", "/v1/sessions", REQUEST).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let error: ApiError = serde_json::from_slice(&body).unwrap();
        assert_eq!(error.error, "store_unavailable", "{}", error.message);
    }
    // The one slot was given back each time: once the settler can keep it, it is taken.
    settler.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(broker.json("POST", "/v1/sessions", REQUEST).await.0, StatusCode::CREATED);
    assert_eq!(
        broker.json("POST", "/v1/sessions", REQUEST).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn a_broker_with_an_admission_list_refuses_other_hosts_and_never_places_on_them() {
    let (admitted, stranger) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
    let admitted_id = encode_public_key(&admitted.verifying_key());
    let config = BrokerConfig {
        admitted_hosts: Some([admitted_id.clone()].into()),
        ..BrokerConfig::default()
    };
    let broker = Broker::with_config(config);
    let (status, body) = broker.register(&stranger, 4).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let error: ApiError = serde_json::from_slice(&body).unwrap();
    assert_eq!(error.error, "not_admitted");
    assert!(error.message.contains(&encode_public_key(&stranger.verifying_key())), "{error:?}");
    // Nothing of it was kept: no slot to place a session on.
    let (status, _) = broker.json("POST", "/v1/sessions", REQUEST).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let id = encode_public_key(&stranger.verifying_key());
    let beat = broker
        .signed(&stranger, &format!("/v1/hosts/{id}/heartbeat"), r#"{"load":0,"sessions":[]}"#)
        .await;
    assert_eq!(beat.0, StatusCode::NOT_FOUND);
    // The listed host registers and gets sessions.
    assert_eq!(broker.register(&admitted, 4).await.0, StatusCode::OK);
    assert_eq!(broker.json("POST", "/v1/sessions", REQUEST).await.0, StatusCode::CREATED);
}

/// The game finding of a capacity check: `admitted` of `claimed` slots.
fn game_capacity(claimed: u32, admitted: u32) -> ProfileCapacity {
    let trial = |sessions, met| CapacityTrial {
        sessions,
        min_fps_centi: if met { 6000 } else { 2000 },
        max_click_to_photon_p99_ms: Some(40),
        met,
    };
    ProfileCapacity {
        profile: Profile::Game,
        claimed,
        admitted,
        stream: "1920x1080@60".into(),
        trials: vec![trial(admitted + 1, false), trial(admitted, true)],
    }
}

#[tokio::test]
async fn a_host_is_placed_only_on_the_slots_its_capacity_check_passed() {
    let checker = k256::ecdsa::SigningKey::from_bytes(&[5; 32].into()).unwrap();
    let stranger = k256::ecdsa::SigningKey::from_bytes(&[6; 32].into()).unwrap();
    let checker_id = Address::of(checker.verifying_key()).to_string();
    let config = BrokerConfig {
        checkers: vec![checker_id.clone()],
        capacity_check: true,
        ..BrokerConfig::default()
    };
    let broker = Broker::with_config(config);
    let host = SigningKey::from_bytes(&[9; 32]);
    let host_id = encode_public_key(&host.verifying_key());
    let allocate = || broker.json("POST", "/v1/sessions", REQUEST);
    let ask = |key: &k256::ecdsa::SigningKey, message: CapacityMessage| {
        let body = serde_json::to_string(&SignedCapacity::sign(&message, key)).unwrap();
        let broker = &broker;
        async move {
            let uri = match message {
                CapacityMessage::Sessions { .. } => "/v1/capacity/sessions",
                CapacityMessage::Report { .. } => "/v1/capacity",
            };
            broker.json("POST", uri, &body).await
        }
    };

    // Registered, the host is on probation: listed as due, placed for no player.
    assert_eq!(broker.register(&host, 3).await.0, StatusCode::OK);
    let (_, body) = broker.json("GET", "/v1/capacity/due", "").await;
    let due: Vec<CapacityVerdict> = serde_json::from_slice(&body).unwrap();
    assert_eq!(due.len(), 1);
    let verdict = &due[0];
    assert_eq!((verdict.state, verdict.host_id.as_str()), (CapacityState::Probation, &*host_id));
    assert_eq!(allocate().await.0, StatusCode::SERVICE_UNAVAILABLE);
    let sessions = |count, key: &str, at_ms| CapacityMessage::Sessions {
        checker: checker_id.clone(),
        host_id: host_id.clone(),
        offers_key: key.into(),
        profile: Profile::Game,
        count,
        at_ms,
    };
    let key = verdict.offers_key.clone();

    // Only a trusted checker's fresh, well-formed asks get sessions.
    let forged = CapacityMessage::Sessions {
        checker: Address::of(stranger.verifying_key()).to_string(),
        host_id: host_id.clone(),
        offers_key: key.clone(),
        profile: Profile::Game,
        count: 1,
        at_ms: now_ms(),
    };
    assert_eq!(ask(&stranger, forged).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(ask(&stranger, sessions(1, &key, now_ms())).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        ask(&checker, sessions(1, &key, now_ms() - 600_000)).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(ask(&checker, sessions(0, &key, now_ms())).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(ask(&checker, sessions(1, "other", now_ms())).await.0, StatusCode::CONFLICT);
    assert_eq!(ask(&checker, sessions(4, &key, now_ms())).await.0, StatusCode::SERVICE_UNAVAILABLE);
    let trial_ask = sessions(3, &key, now_ms());
    let (status, body) = ask(&checker, trial_ask.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ask(&checker, trial_ask).await.0, StatusCode::UNAUTHORIZED, "a replay");
    let trial: Vec<AllocateResponse> = serde_json::from_slice(&body).unwrap();
    assert_eq!(trial.len(), 3);
    let (_, body) = broker.json("GET", "/v1/capacity/due", "").await;
    assert_eq!(&body[..], b"[]", "a check under way is the checker's for a while");
    for session in &trial {
        let uri = format!("/v1/sessions/{}", session.session_id);
        assert_eq!(broker.delete(&uri, Some(&session.token)).await, StatusCode::NO_CONTENT);
    }

    // A report that is not about the host's offer is refused; a true one admits 2 of 3.
    let report_on = |offers_key: &str, profiles| CapacityMessage::Report {
        checker: checker_id.clone(),
        host_id: host_id.clone(),
        offers_key: offers_key.into(),
        profiles,
        at_ms: now_ms(),
    };
    let report = |profiles| report_on(&key, profiles);
    assert_eq!(ask(&checker, report(vec![game_capacity(9, 2)])).await.0, StatusCode::BAD_REQUEST);
    let (status, body) = ask(&checker, report(vec![game_capacity(3, 2)])).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let verdict: CapacityVerdict = serde_json::from_slice(&body).unwrap();
    assert_eq!(verdict.state, CapacityState::Admitted);
    assert_eq!(verdict.admitted.get(&Profile::Game), Some(&2));
    assert_eq!(ask(&checker, report(vec![game_capacity(3, 3)])).await.0, StatusCode::CONFLICT);
    for _ in 0..2 {
        assert_eq!(allocate().await.0, StatusCode::CREATED);
    }
    assert_eq!(allocate().await.0, StatusCode::SERVICE_UNAVAILABLE, "no more than passed");

    // Registering the same offers again keeps the verdict; the host hears it with its heartbeat.
    assert_eq!(broker.register(&host, 3).await.0, StatusCode::OK);
    let (_, body) = broker
        .signed(&host, &format!("/v1/hosts/{host_id}/heartbeat"), r#"{"load":0,"sessions":[]}"#)
        .await;
    let ack: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(ack["capacity"]["state"], "admitted");
    let (_, body) = broker.json("GET", &format!("/v1/hosts/{host_id}/capacity"), "").await;
    assert_eq!(serde_json::from_slice::<CapacityVerdict>(&body).unwrap(), verdict);

    // Offering more puts it on probation again.
    assert_eq!(broker.register(&host, 5).await.0, StatusCode::OK);
    assert_eq!(allocate().await.0, StatusCode::SERVICE_UNAVAILABLE);
    let (_, body) = broker.json("GET", &format!("/v1/hosts/{host_id}/capacity"), "").await;
    let again: CapacityVerdict = serde_json::from_slice(&body).unwrap();
    assert_eq!((again.state, again.claimed[0].slots), (CapacityState::Probation, 5));

    // A check that admits nothing fails the host, who is checked again after a back-off.
    let report = report_on(&again.offers_key, vec![game_capacity(5, 0)]);
    let (_, body) = ask(&checker, report).await;
    let failed: CapacityVerdict = serde_json::from_slice(&body).unwrap();
    assert_eq!((failed.state, failed.failures), (CapacityState::Failed, 1));
    assert!(failed.due_ms.unwrap() >= now_ms() + 50_000, "checked again in a minute");
    assert!(failed.reason.contains("no slot met"), "{}", failed.reason);
    assert_eq!(allocate().await.0, StatusCode::SERVICE_UNAVAILABLE);
}
