//! The owner's dashboard: a page and its data on an address of the host's own,
//! loopback unless the owner says otherwise.
//!
//! - `GET /api/owner`: the [`OwnerView`]: sessions now and recent with the
//!   players' own figures and the broker's bill, the capacity check,
//!   reputation, earnings per epoch, and the last day in buckets.
//! - `POST /api/owner/claim`: claims every final, unpaid epoch ([`Payouts::claim`]).
//! - anything else: the web client's build, its `owner.html` at `/`.
//!
//! Bound to loopback, it answers only requests addressed to a loopback name, so
//! that no web page can reach it by pointing a name of its own at 127.0.0.1.
//! Bound anywhere else, every `/api` request must bear its token.

mod history;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gridplay_protocol::ApiError;
use gridplay_protocol::owner::{ClaimOutcome, OwnerBlocks, OwnerEarnings, OwnerSession, OwnerView};
use gridplay_protocol::settlement::{SessionReceipt, SettlementInfo};
use tower_http::services::{ServeDir, ServeFile};

pub use history::{BUCKET_MS, BUCKETS, History};

use crate::broker_link::BrokerLink;
use crate::probes::Clock;
use crate::whep::{HostState, SessionBrief};

/// Where the dashboard listens and who may use it.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Its address: loopback unless the owner wants it reachable from elsewhere.
    pub listen: SocketAddr,
    /// The token every `/api` request must bear (`Authorization: Bearer`); required
    /// where `listen` is not a loopback address.
    pub token: Option<String>,
    /// The web client's build, whose `owner.html` is the page; `None` serves the API alone.
    pub web_dir: Option<PathBuf>,
}

impl DashboardConfig {
    /// The dashboard on `listen`, with `token`, or a fresh random one where `listen`
    /// is not a loopback address.
    pub fn new(
        listen: SocketAddr,
        token: Option<String>,
        web_dir: Option<PathBuf>,
    ) -> Result<Self, crate::HostError> {
        let token = match token {
            Some(token) => Some(token),
            None if listen.ip().is_loopback() => None,
            None => {
                let mut bytes = [0; 24];
                getrandom::getrandom(&mut bytes)
                    .map_err(|e| crate::HostError::Broker(format!("no randomness: {e}")))?;
                Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
            }
        };
        Ok(Self { listen, token, web_dir })
    }

    /// The address to open, with the token in its fragment (which browsers never send).
    pub fn url(&self, bound: SocketAddr) -> String {
        match &self.token {
            Some(token) => format!("http://{bound}/#token={token}"),
            None => format!("http://{bound}/"),
        }
    }
}

/// A future the dashboard awaits.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The host's earnings on the chain its broker settles on, and its claims.
pub trait Payouts: Send + Sync {
    /// The host's total in each epoch, and where each one's payment stands.
    fn earnings(&self) -> Pending<'_, OwnerEarnings>;
    /// Claims every final, unpaid epoch in one transaction; an error says why none was.
    fn claim(&self) -> Pending<'_, Result<ClaimOutcome, String>>;
}

/// What the dashboard reads.
pub(crate) struct Dashboard {
    pub(crate) state: Arc<HostState>,
    pub(crate) link: Arc<BrokerLink>,
    pub(crate) payouts: Option<Arc<dyn Payouts>>,
    pub(crate) up_since_ms: u64,
    pub(crate) clock: Clock,
    /// Bills of ended sessions whose every block is committed: they change no more.
    pub(crate) settled: Mutex<HashMap<String, OwnerBlocks>>,
}

impl Dashboard {
    /// Everything the page shows, now.
    async fn view(&self) -> OwnerView {
        let briefs = self.state.briefs();
        let settles =
            matches!(self.link.get::<SettlementInfo>("/v1/settlement").await, Ok(Some(_)));
        let bills = futures_util::future::join_all(
            briefs
                .iter()
                .map(|brief| async move { if settles { self.bill(brief).await } else { None } }),
        )
        .await;
        self.forget_bills_but(&briefs);
        let sessions = briefs.iter().zip(bills).map(|(brief, blocks)| owner_session(brief, blocks));
        let standing = self.link.standing();
        let registration = self.link.registration();
        let earnings = match &self.payouts {
            Some(payouts) => payouts.earnings().await,
            None => OwnerEarnings {
                payout_address: registration.payout_address.clone(),
                note: Some(match settles {
                    true => "this host names no payout address: its sessions earn nothing".into(),
                    false => "the broker does not settle sessions on a chain".into(),
                }),
                ..OwnerEarnings::default()
            },
        };
        let now_ms = self.clock.now_ms();
        let history = self.state.history().lock().unwrap_or_else(|p| p.into_inner()).view(now_ms);
        OwnerView {
            host_id: registration.host_id.clone(),
            region: registration.region.clone(),
            gpu: registration.gpu.clone(),
            broker_url: self.link.broker_url().to_owned(),
            now_ms,
            up_since_ms: self.up_since_ms,
            offers: registration.offers.clone(),
            sessions: sessions.collect(),
            capacity: standing.capacity,
            reputation: standing.reputation,
            earnings,
            history,
            bucket_ms: BUCKET_MS,
        }
    }

    /// How the broker billed a session so far (none before it bills anything).
    async fn bill(&self, brief: &SessionBrief) -> Option<OwnerBlocks> {
        if let Some(settled) = self.settled.lock().unwrap_or_else(|p| p.into_inner()).get(&brief.id)
        {
            return Some(settled.clone());
        }
        let path = format!("/v1/sessions/{}/receipt", brief.id);
        let receipt = match self.link.get::<SessionReceipt>(&path).await {
            Ok(receipt) => receipt?,
            Err(e) => {
                tracing::debug!(session = %brief.id, "no receipt: {e}");
                return None;
            }
        };
        let lines = &receipt.lines;
        let count = |f: fn(&gridplay_protocol::settlement::ReceiptLine) -> bool| {
            lines.iter().filter(|l| f(l)).count() as u32
        };
        let blocks = OwnerBlocks {
            billed: lines.len() as u32,
            delivered: count(|l| l.delivered),
            committed: count(|l| l.epoch_id.is_some()),
            amount: receipt.total,
        };
        if brief.ended_at_ms.is_some() && blocks.billed > 0 && blocks.committed == blocks.billed {
            let mut settled = self.settled.lock().unwrap_or_else(|p| p.into_inner());
            settled.insert(brief.id.clone(), blocks.clone());
        }
        Some(blocks)
    }

    /// Keeps the bills of the sessions still listed, and no others.
    fn forget_bills_but(&self, briefs: &[SessionBrief]) {
        let mut settled = self.settled.lock().unwrap_or_else(|p| p.into_inner());
        settled.retain(|id, _| briefs.iter().any(|b| &b.id == id));
    }
}

/// One session's row.
fn owner_session(brief: &SessionBrief, blocks: Option<OwnerBlocks>) -> OwnerSession {
    let figures = brief.probes.player_figures();
    OwnerSession {
        session_id: brief.id.clone(),
        app: brief.app.clone(),
        stream: brief.stream.clone(),
        started_at_ms: brief.probes.started_at_ms(),
        ended_at_ms: brief.ended_at_ms,
        fps: figures.fps,
        rtt_ms: figures.rtt_ms,
        click_to_photon_ms: figures.click_to_photon_ms,
        reports: figures.reports,
        blocks,
    }
}

/// Who may reach the dashboard.
#[derive(Debug, Clone)]
struct Guard {
    loopback: bool,
    token: Option<String>,
}

/// The dashboard's router: its API behind the [`Guard`], and the page.
pub(crate) fn dashboard_router(dashboard: Arc<Dashboard>, config: &DashboardConfig) -> Router {
    let api = Router::new()
        .route("/api/owner", get(owner_view))
        .route("/api/owner/claim", post(claim))
        .with_state(dashboard);
    let router = match &config.web_dir {
        Some(dir) => {
            let page = ServeFile::new(dir.join("owner.html"));
            api.route_service("/", page.clone()).fallback_service(ServeDir::new(dir).fallback(page))
        }
        None => api,
    };
    guarded(router, config)
}

/// `router` behind the [`Guard`] `config` asks for.
fn guarded(router: Router, config: &DashboardConfig) -> Router {
    let guard = Guard { loopback: config.listen.ip().is_loopback(), token: config.token.clone() };
    router.layer(axum::middleware::from_fn_with_state(guard, check_guard))
}

async fn owner_view(State(dashboard): State<Arc<Dashboard>>) -> Json<OwnerView> {
    Json(dashboard.view().await)
}

async fn claim(State(dashboard): State<Arc<Dashboard>>) -> Response {
    let Some(payouts) = &dashboard.payouts else {
        let why = "this host has no payout key to claim with (gridplay host --payout-key-file)";
        return refusal(StatusCode::CONFLICT, "no_payout_key", why);
    };
    match payouts.claim().await {
        Ok(outcome) => {
            tracing::info!(epochs = ?outcome.epochs, "claimed from the dashboard");
            Json(outcome).into_response()
        }
        Err(why) => refusal(StatusCode::CONFLICT, "nothing_claimed", &why),
    }
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ApiError { error: code.into(), message: message.into() };
    (status, Json(body)).into_response()
}

/// Refuses a request to a loopback dashboard addressed to another name, a change
/// (`POST`) sent from another origin's page, and an `/api` request without the
/// token where there is one.
async fn check_guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if guard.loopback && !names_loopback(host) {
        let why = "the owner's dashboard answers only at 127.0.0.1, [::1] or localhost";
        return refusal(StatusCode::FORBIDDEN, "not_loopback", why);
    }
    // A page elsewhere may send this browser's POSTs here, but not make them look its own.
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    let origin = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if !reads && origin.is_some_and(|o| o.split_once("://").is_none_or(|(_, at)| at != host)) {
        let why = "the owner's dashboard takes changes from its own page alone";
        return refusal(StatusCode::FORBIDDEN, "cross_origin", why);
    }
    if let Some(token) = &guard.token
        && request.uri().path().starts_with("/api/")
    {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same_secret(given.as_bytes(), token.as_bytes()) {
            let why = "open the dashboard with the address the host printed (it holds the token)";
            return refusal(StatusCode::UNAUTHORIZED, "unauthorized", why);
        }
    }
    next.run(request).await
}

/// Whether a `Host` header names this machine's loopback: `localhost`, `127.x.y.z` or `[::1]`,
/// with or without a port.
fn names_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    given.len() == secret.len() && given.iter().zip(secret).fold(0, |d, (a, b)| d | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_reach_a_loopback_dashboard() {
        for host in ["127.0.0.1:7070", "localhost", "LOCALHOST:80", "[::1]:7070", "127.1.2.3"] {
            assert!(names_loopback(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:7070",
            "192.168.1.2:7070",
            "[::2]:1",
            "localhost.evil",
        ] {
            assert!(!names_loopback(host), "{host}");
        }
    }

    #[test]
    fn a_token_is_made_unless_the_dashboard_is_on_loopback() {
        let loopback = DashboardConfig::new("127.0.0.1:7070".parse().unwrap(), None, None).unwrap();
        assert_eq!(loopback.token, None);
        assert_eq!(loopback.url("127.0.0.1:7070".parse().unwrap()), "http://127.0.0.1:7070/");
        let open = DashboardConfig::new("0.0.0.0:7070".parse().unwrap(), None, None).unwrap();
        let token = open.token.clone().unwrap();
        assert_eq!(token.len(), 48);
        assert!(open.url("10.0.0.2:7070".parse().unwrap()).ends_with(&format!("/#token={token}")));
        let other = DashboardConfig::new("0.0.0.0:7070".parse().unwrap(), None, None).unwrap();
        assert_ne!(other.token, open.token, "each start makes its own");
    }

    /// What a guarded dashboard on `listen` with `token` answers `request`.
    async fn answer(
        listen: &str,
        token: Option<&str>,
        request: axum::http::request::Builder,
    ) -> StatusCode {
        use tower::ServiceExt;
        let config = DashboardConfig {
            listen: listen.parse().unwrap(),
            token: token.map(str::to_owned),
            web_dir: None,
        };
        let router = Router::new()
            .route("/api/owner", get(|| async { "view" }))
            .route("/api/owner/claim", post(|| async { "claimed" }))
            .route("/owner.html", get(|| async { "page" }));
        let request = request.body(axum::body::Body::empty()).unwrap();
        guarded(router, &config).oneshot(request).await.unwrap().status()
    }

    /// A GET of `path` addressed to `host`, with `bearer` if any.
    fn get_at(path: &str, host: &str, bearer: Option<&str>) -> axum::http::request::Builder {
        let request = axum::http::Request::get(path).header(header::HOST, host);
        match bearer {
            Some(bearer) => request.header(header::AUTHORIZATION, format!("Bearer {bearer}")),
            None => request,
        }
    }

    #[tokio::test]
    async fn a_loopback_dashboard_answers_loopback_names_alone() {
        let on_loopback = |host| answer("127.0.0.1:7070", None, get_at("/api/owner", host, None));
        assert_eq!(on_loopback("127.0.0.1:7070").await, StatusCode::OK);
        assert_eq!(on_loopback("localhost:7070").await, StatusCode::OK);
        // A page whose own name was pointed at 127.0.0.1 reaches the port under that name.
        assert_eq!(on_loopback("rebound.example:7070").await, StatusCode::FORBIDDEN);
        assert_eq!(on_loopback("").await, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn changes_come_from_the_dashboards_own_page_alone() {
        let claim = |origin: Option<&str>| {
            let request = axum::http::Request::post("/api/owner/claim")
                .header(header::HOST, "127.0.0.1:7070");
            let request = match origin {
                Some(origin) => request.header(header::ORIGIN, origin),
                None => request,
            };
            answer("127.0.0.1:7070", None, request)
        };
        assert_eq!(claim(Some("http://127.0.0.1:7070")).await, StatusCode::OK);
        assert_eq!(claim(None).await, StatusCode::OK, "not from a page: curl, say");
        assert_eq!(claim(Some("http://evil.example")).await, StatusCode::FORBIDDEN);
        assert_eq!(claim(Some("http://127.0.0.1:7071")).await, StatusCode::FORBIDDEN);
        assert_eq!(claim(Some("null")).await, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn a_dashboard_with_a_token_asks_for_it_on_the_api_alone() {
        let open = |path, bearer| {
            answer("0.0.0.0:7070", Some("s3cret"), get_at(path, "10.0.0.2:7070", bearer))
        };
        assert_eq!(open("/api/owner", Some("s3cret")).await, StatusCode::OK);
        assert_eq!(open("/api/owner", None).await, StatusCode::UNAUTHORIZED);
        assert_eq!(open("/api/owner", Some("s3cre")).await, StatusCode::UNAUTHORIZED);
        assert_eq!(open("/api/owner", Some("s3cret ")).await, StatusCode::UNAUTHORIZED);
        assert_eq!(open("/owner.html", None).await, StatusCode::OK, "the page itself is public");
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abd", b"abc"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"", b"abc"));
    }
}
