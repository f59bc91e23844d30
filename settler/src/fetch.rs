//! Reading hosts' signed records of their sessions for a settling round: all at once, each
//! within a time and size bound, only from the endpoint the host registered, and only from
//! public addresses unless the broker allows private ones. A host that hangs, floods or lies
//! spoils its own sessions' records, nobody else's.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use gridplay_chain::evidence::{Evidence, Expected, verify_record};
use gridplay_protocol::probe::{ClientKey, PROBES_SIGNATURE_HEADER};

use crate::Error;

/// Longest host record read, in bytes.
pub const MAX_RECORD_BYTES: usize = 4 << 20;

/// How long one round waits for any host's record.
pub const RECORD_TIMEOUT: Duration = Duration::from_secs(10);

/// How records are fetched.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time for one record, from resolving the host's name to its last byte.
    pub timeout: Duration,
    /// Longest body read.
    pub max_bytes: usize,
    /// Whether loopback, private and link-local addresses may be fetched.
    pub allow_private: bool,
}

/// One session whose record is wanted.
#[derive(Debug, Clone)]
pub struct Job {
    /// The broker's session id.
    pub session_id: String,
    /// The host's id (its ed25519 key), which must have signed the record.
    pub host_id: String,
    /// The WHEP base URL the host registered.
    pub whep_url: String,
    /// A short-lived token with the session's claims, signed for this read.
    pub token: String,
    /// The client key the player named at allocation.
    pub client_key: Option<String>,
    /// When the session was allocated, Unix ms.
    pub allocated_ms: u64,
}

/// Whether the settler may connect to `ip`: never to an unspecified, broadcast or multicast
/// address, and to loopback, private (RFC 1918, RFC 6598 shared, IPv6 ULA) and link-local
/// ones only when `allow_private` (IPv4-mapped IPv6 addresses are judged as IPv4).
pub fn allowed_address(ip: IpAddr, allow_private: bool) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let (never, private) = match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            let shared = a == 100 && (64..128).contains(&b);
            (
                v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast(),
                v4.is_loopback() || v4.is_private() || v4.is_link_local() || shared,
            )
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (
                v6.is_unspecified() || v6.is_multicast(),
                v6.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80,
            )
        }
    };
    !never && (allow_private || !private)
}

/// Reads every job's record at once, each within `limits`, and checks it as evidence at
/// `now_ms`. Every job gets an answer, by session id, within about `limits.timeout`: its
/// evidence, or why its record was refused.
pub async fn read_records(
    jobs: Vec<Job>,
    limits: Limits,
    now_ms: u64,
) -> HashMap<String, Result<Evidence, Error>> {
    let mut set = tokio::task::JoinSet::new();
    for job in jobs {
        set.spawn(async move {
            let session_id = job.session_id.clone();
            let read = tokio::time::timeout(limits.timeout, fetch(&job, &limits)).await;
            let verified = match read {
                Err(_) => Err(refused(format!("no answer within {:?}", limits.timeout))),
                Ok(Err(e)) => Err(e),
                // Hundreds of signature checks: off the async workers.
                Ok(Ok((body, signature))) => tokio::task::spawn_blocking(move || {
                    verify(&job, &body, signature.as_deref(), now_ms)
                })
                .await
                .unwrap_or_else(|e| Err(refused(format!("checking it failed: {e}")))),
            };
            (session_id, verified)
        });
    }
    let mut records = HashMap::new();
    while let Some(done) = set.join_next().await {
        match done {
            Ok((session_id, verified)) => {
                records.insert(session_id, verified);
            }
            Err(e) => tracing::error!("reading a host record: {e}"),
        }
    }
    records
}

fn refused(reason: impl Into<String>) -> Error {
    Error::HostRecord(reason.into())
}

/// Checks a fetched record as evidence of the job's session.
pub(crate) fn verify(
    job: &Job,
    body: &[u8],
    signature: Option<&str>,
    now_ms: u64,
) -> Result<Evidence, Error> {
    let client_key = job.client_key.as_deref().and_then(|k| k.parse::<ClientKey>().ok());
    let expected = Expected {
        session_id: &job.session_id,
        host_id: &job.host_id,
        client_key: client_key.as_ref(),
        allocated_ms: job.allocated_ms,
        now_ms,
    };
    verify_record(body, signature, &expected).map_err(|e| refused(e.to_string()))
}

/// Fetches the job's record from the host's registered endpoint (unbounded in time: the
/// caller bounds it): the body (at most `limits.max_bytes`) and the signature header. Every address the host's name resolves to
/// must be allowed, and the connection is pinned to them, so that a name that resolves
/// again to something else (DNS rebinding) is never followed; so are redirects.
async fn fetch(job: &Job, limits: &Limits) -> Result<(Vec<u8>, Option<String>), Error> {
    let url = format!("{}/sessions/{}/probes", job.whep_url.trim_end_matches('/'), job.session_id);
    let url = reqwest::Url::parse(&url).map_err(|e| refused(format!("bad endpoint: {e}")))?;
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Err(refused("the endpoint names no host"));
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused("the endpoint is not http(s)"));
    }
    let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
    let addresses: Vec<SocketAddr> = match literal {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| refused(format!("resolving {host}: {e}")))?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(refused(format!("{host} resolves to nothing")));
    }
    if let Some(bad) = addresses.iter().find(|a| !allowed_address(a.ip(), limits.allow_private)) {
        return Err(refused(format!("{host} is at {}, which is not public", bad.ip())));
    }
    // The caller bounds the time.
    let mut client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy();
    if literal.is_none() {
        client = client.resolve_to_addrs(host, &addresses);
    }
    let client = client.build().map_err(|e| refused(e.to_string()))?;
    let failed = |e: reqwest::Error| refused(e.without_url().to_string());
    let mut response = client
        .get(url)
        .bearer_auth(&job.token)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(failed)?;
    let too_long = || refused(format!("longer than {} bytes", limits.max_bytes));
    if response.content_length().is_some_and(|n| n > limits.max_bytes as u64) {
        return Err(too_long());
    }
    let signature = response
        .headers()
        .get(PROBES_SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > limits.max_bytes {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, signature))
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;
    use tokio::net::TcpListener;

    use super::*;
    use crate::book::tests::{ALLOCATED_MS, genuine, job, record};

    #[test]
    fn only_public_addresses_unless_private_ones_are_allowed() {
        // (address, allowed by default, allowed with private hosts allowed)
        let cases = [
            ("8.8.8.8", true, true),
            ("172.32.0.1", true, true),
            ("2001:4860:4860::8888", true, true),
            ("127.0.0.1", false, true),
            ("10.1.2.3", false, true),
            ("172.16.0.1", false, true),
            ("192.168.1.1", false, true),
            ("169.254.169.254", false, true),
            ("100.64.0.1", false, true),
            ("::1", false, true),
            ("fc00::1", false, true),
            ("fd12:3456::1", false, true),
            ("fe80::1", false, true),
            ("::ffff:127.0.0.1", false, true),
            ("::ffff:10.0.0.1", false, true),
            ("0.0.0.0", false, false),
            ("255.255.255.255", false, false),
            ("224.0.0.1", false, false),
            ("::", false, false),
            ("ff02::1", false, false),
        ];
        for (address, public, private) in cases {
            let ip: IpAddr = address.parse().unwrap();
            assert_eq!(allowed_address(ip, false), public, "{address}");
            assert_eq!(allowed_address(ip, true), private, "{address} with private hosts allowed");
        }
    }

    /// A host on loopback serving `session`'s honest record; its WHEP base URL.
    async fn honest_host(session: &'static str) -> String {
        let (body, signature) = record(session, "good host", |s| genuine(session, s));
        let app = Router::new().route(
            "/whep/sessions/{id}/probes",
            get(move || async move { ([(PROBES_SIGNATURE_HEADER, signature)], body) }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/whep", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// A host that takes connections and never answers.
    async fn hanging_host() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/whep", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        url
    }

    /// A host that answers with a body that never ends (chunked, no length).
    async fn flooding_host() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/whep", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let Ok((stream, _)) = listener.accept().await else { return };
            let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            let chunk = [b"10000\r\n".as_slice(), &[b'x'; 0x10000], b"\r\n"].concat();
            let mut pending = head;
            loop {
                if stream.writable().await.is_err() {
                    return;
                }
                match stream.try_write(&pending) {
                    Ok(n) if n == pending.len() => pending = chunk.clone(),
                    Ok(n) => pending.drain(..n).for_each(drop),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        });
        url
    }

    #[tokio::test]
    async fn a_host_that_hangs_or_floods_spoils_only_its_own_session() {
        let jobs = vec![
            job("honest", "good host", &honest_host("honest").await),
            job("hung", "bad host", &hanging_host().await),
            job("flooded", "bad host", &flooding_host().await),
        ];
        let limits =
            Limits { timeout: Duration::from_secs(2), max_bytes: 1 << 20, allow_private: true };
        let started = std::time::Instant::now();
        let mut records = read_records(jobs, limits, ALLOCATED_MS + 60_000).await;
        assert!(started.elapsed() < Duration::from_secs(10), "bounded by the timeout");
        let evidence = records.remove("honest").unwrap().unwrap();
        assert_eq!(evidence.seconds_counted(), 20);
        let reason = |r: Option<Result<Evidence, Error>>| r.unwrap().unwrap_err().to_string();
        let hung = reason(records.remove("hung"));
        assert!(hung.contains("no answer within"), "{hung}");
        let flooded = reason(records.remove("flooded"));
        assert!(flooded.contains("longer than 1048576 bytes"), "{flooded}");
    }

    #[tokio::test]
    async fn private_hosts_are_not_read_unless_allowed() {
        let limits =
            Limits { timeout: Duration::from_secs(2), max_bytes: 1 << 20, allow_private: false };
        let url = honest_host("s").await;
        let by_name = url.replace("127.0.0.1", "localhost");
        for whep_url in [url, by_name, "http://[::1]:9/whep".into(), "file:///etc/passwd".into()] {
            let mut records =
                read_records(vec![job("s", "good host", &whep_url)], limits, ALLOCATED_MS).await;
            let refused = records.remove("s").unwrap().unwrap_err().to_string();
            assert!(
                refused.contains("not public")
                    || refused.contains("http(s)")
                    || refused.contains("no host"),
                "{whep_url}: {refused}"
            );
        }
    }
}
