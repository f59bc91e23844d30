//! Checker reports: `POST /v1/checks` weighs a checker's signed report of
//! a host into the host's reputation, which placement takes into account.
//! Each checker's report on a session counts once, whichever replica takes it.

use axum::Json;
use axum::extract::State;
use gridplay_protocol::check::{CheckAccepted, SignedCheck};
use gridplay_protocol::{ApiError, ProtocolError};

use super::extract::ApiJson;
use super::{Shared, unix_ms};
use crate::BrokerError;

/// How far a report's time may be from the broker's clock: a report is news
/// once, not a lever to pull again and again.
pub const CHECK_FRESHNESS_MS: u64 = 5 * 60 * 1000;

/// How long a counted (checker, session) stays marked: longer than any report stays fresh
/// on either side of its time.
const COUNTED_KEPT_MS: u64 = 2 * CHECK_FRESHNESS_MS;

/// Takes one checker report, signed by a checker this broker trusts. A checker's report on
/// a session counts once: sent again (the same or another report by that checker on that
/// session), it changes nothing and is answered 409 `already_counted`.
#[utoipa::path(post, path = "/v1/checks", request_body = SignedCheck,
    responses((status = 200, body = CheckAccepted, description = "Counted"),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 404, body = ApiError, description = "The host never registered"),
        (status = 409, body = ApiError,
            description = "`already_counted`: this checker's report on this session was \
                counted before; nothing changed")))]
pub(super) async fn submit(
    State(state): State<Shared>,
    ApiJson(check): ApiJson<SignedCheck>,
) -> Result<Json<CheckAccepted>, BrokerError> {
    let (report, checker) = check.verify().map_err(|e| match e {
        ProtocolError::Invalid(m) => BrokerError::BadRequest(m),
        _ => BrokerError::Unauthorized("the report is not signed by its checker".into()),
    })?;
    let checker = checker.to_string();
    if !state.config.checkers.contains(&checker) {
        return Err(BrokerError::Unauthorized(format!(
            "{checker} is not a checker of this broker"
        )));
    }
    let now_ms = unix_ms();
    if now_ms.abs_diff(report.checked_at_ms) > CHECK_FRESHNESS_MS {
        return Err(BrokerError::BadRequest("the report is not from the last five minutes".into()));
    }
    let host_id = report.host_id;
    let store = &state.store;
    let (session, delivered) = (&report.session_id, report.delivered);
    let Some(reputation) = store
        .record_check_once(&checker, session, &host_id, delivered, now_ms, COUNTED_KEPT_MS)
        .await?
    else {
        tracing::info!(host = %host_id, %checker, %session, "checker report replayed: not counted");
        return Err(BrokerError::AlreadyCounted);
    };
    tracing::info!(host = %host_id, %checker, delivered = report.delivered, reputation, "checker report");
    Ok(Json(CheckAccepted { host_id, reputation }))
}

#[cfg(test)]
mod tests {
    use super::COUNTED_KEPT_MS;
    use crate::BrokerError;
    use crate::store::conformance::{TIMING, host};
    use crate::store::{MemoryStore, RedisStore, SessionStore};
    use crate::testing::RedisServer;

    const T0: u64 = 1_000_000;

    /// `a` and `b` are two replicas' views of one store.
    async fn counted_once(a: &dyn SessionStore, b: &dyn SessionStore) {
        a.register_host(&host("h", 1, 0, 0.0, 0.0), T0).await.unwrap();
        let kept = COUNTED_KEPT_MS;
        assert_eq!(a.record_check_once("c1", "s", "h", false, T0, kept).await, Ok(Some(0.75)));
        assert_eq!(b.record_check_once("c1", "s", "h", false, T0, kept).await, Ok(None));
        assert_eq!(a.record_check_once("c1", "s", "h", true, T0 + 1, kept).await, Ok(None));
        // Another checker on the session, or the checker on another session, counts.
        assert_eq!(b.record_check_once("c2", "s", "h", true, T0, kept).await, Ok(Some(0.8125)));
        assert!(a.record_check_once("c1", "s2", "h", true, T0, kept).await.unwrap().is_some());
        // A report that does not count is not marked.
        let nobody = a.record_check_once("c1", "s3", "nobody", true, T0, kept).await;
        assert_eq!(nobody, Err(BrokerError::HostNotFound));
        assert_eq!(
            b.record_check_once("c1", "s3", "nobody", true, T0, kept).await,
            Err(BrokerError::HostNotFound)
        );
    }

    #[tokio::test]
    async fn a_checker_report_on_a_session_counts_once_in_memory() {
        let store = MemoryStore::new(TIMING);
        counted_once(&store, &store).await;
        // The mark lapses after its time (the report is long stale by then).
        let later = T0 + COUNTED_KEPT_MS + 1;
        let again = store.record_check_once("c1", "s", "h", true, later, COUNTED_KEPT_MS).await;
        assert!(again.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_checker_report_on_a_session_counts_once_across_replicas_on_redis() {
        let server = RedisServer::start().expect("redis-server (apt-get install redis-server)");
        let a = RedisStore::connect(&server.url(), TIMING).await.unwrap();
        let b = RedisStore::connect(&server.url(), TIMING).await.unwrap();
        counted_once(&a, &b).await;
    }
}
