//! One connection to Redis, whether one server or a Cluster, and the pipelines that must
//! run on both: a Cluster takes a pipeline only when all its keys share a slot, so there a
//! pipeline's commands go one by one, routed each to its own node.

use std::time::Duration;

use futures_util::future::try_join_all;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value};

use crate::BrokerError;

/// Where the broker's Redis is: one server, or the seed nodes of a Cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server, by URL.
    Single(String),
    /// A Cluster, by the URLs of some of its nodes.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// Reads `--redis-url`: `redis://host:port` for one server; for a Cluster,
    /// `redis+cluster://host:port,host:port,…` or several URLs separated by commas.
    pub fn parse(url: &str) -> Result<Self, BrokerError> {
        let bad = |why: &str| BrokerError::Store(format!("--redis-url {url:?}: {why}"));
        if let Some(nodes) = url.strip_prefix("redis+cluster://") {
            let seeds: Vec<String> = nodes
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| format!("redis://{n}"))
                .collect();
            if seeds.is_empty() {
                return Err(bad("a Cluster needs at least one node, host:port"));
            }
            return Ok(Self::Cluster(seeds));
        }
        let urls: Vec<&str> = url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        match urls.as_slice() {
            [] => Err(bad("empty")),
            [one] => Ok(Self::Single((*one).to_owned())),
            many => Ok(Self::Cluster(many.iter().map(|u| (*u).to_owned()).collect())),
        }
    }
}

/// A connection that reconnects by itself: to one server, or to every node of a Cluster
/// (following its slots as they move, and its replicas as they are promoted).
#[derive(Clone)]
pub enum RedisConnection {
    /// One server.
    Single(ConnectionManager),
    /// A Cluster.
    Cluster(ClusterConnection),
}

/// How long a write waits for a replica to acknowledge it on a Cluster.
const REPLICA_WAIT_MS: u64 = 1_000;
/// How long a Cluster node may take to accept a connection before the command fails (and
/// the request gets a 503 with Retry-After), so that a dead master costs no more.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a Cluster node may take to answer: a loaded node is slow, not gone.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a pipeline's commands must run in their order on a Cluster (each answered
/// before the next goes), or may all run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// In order: what a later command writes must never exist without what an earlier did.
    Kept,
    /// At once: independent reads.
    Free,
}

impl RedisConnection {
    /// Connects to `target`.
    pub async fn connect(target: &RedisTarget) -> Result<Self, BrokerError> {
        Ok(match target {
            RedisTarget::Single(url) => {
                Self::Single(ConnectionManager::new(redis::Client::open(url.as_str())?).await?)
            }
            RedisTarget::Cluster(seeds) => {
                // A few quick retries (a moved slot, a reconnect), not minutes of them: while a
                // master fails over, requests fail fast with a 503 and clients retry.
                let client = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(ANSWER_TIMEOUT)
                    .retries(3)
                    .min_retry_wait(50)
                    .max_retry_wait(500)
                    .build()?;
                Self::Cluster(client.get_async_connection().await?)
            }
        })
    }

    /// Whether this is a connection to a Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// On a Cluster, waits until a replica of `key`'s master holds what was written there, so
    /// that a failover cannot lose it: a write no replica acknowledged in time is an error.
    /// A master without replicas, and one server, have nothing to wait for.
    pub async fn replicated(&mut self, key: &str) -> Result<(), BrokerError> {
        let Self::Cluster(cluster) = self else { return Ok(()) };
        let master = || {
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(
                key,
                SlotAddr::Master,
            )))
        };
        // Asked first: WAIT on a master without replicas would block for its whole timeout.
        let role = cluster.route_command(redis::cmd("ROLE").clone(), master()).await?;
        if !lists_replicas(&role) {
            return Ok(());
        }
        let wait = redis::cmd("WAIT").arg(1).arg(REPLICA_WAIT_MS).clone();
        let acknowledged = i64::from_redis_value(cluster.route_command(wait, master()).await?)
            .map_err(|e| BrokerError::Store(format!("WAIT: {e}")))?;
        if acknowledged < 1 {
            return Err(BrokerError::Store(format!(
                "no replica acknowledged the write within {REPLICA_WAIT_MS} ms"
            )));
        }
        Ok(())
    }

    /// Runs `pipe` and reads its answers: in one round trip on one server; on a Cluster,
    /// command by command, in `order`.
    pub async fn run<T: FromRedisValue>(
        &mut self,
        pipe: &Pipeline,
        order: Order,
    ) -> RedisResult<T> {
        let cluster = match self {
            Self::Single(conn) => return pipe.query_async(conn).await,
            Self::Cluster(cluster) => cluster,
        };
        let answers = match order {
            Order::Kept => {
                let mut answers = Vec::new();
                for cmd in pipe.cmd_iter() {
                    answers.push(cmd.query_async::<Value>(cluster).await?);
                }
                answers
            }
            Order::Free => {
                try_join_all(pipe.cmd_iter().map(|cmd| {
                    let mut cluster = cluster.clone();
                    async move { cmd.query_async::<Value>(&mut cluster).await }
                }))
                .await?
            }
        };
        Ok(T::from_redis_value(Value::Array(answers))?)
    }
}

/// Whether a master's answer to ROLE (`["master", offset, [[ip, port, offset], …]]`) lists a
/// replica.
fn lists_replicas(role: &Value) -> bool {
    let Value::Array(fields) = role else { return false };
    matches!(fields.get(2), Some(Value::Array(replicas)) if !replicas.is_empty())
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_one_server_and_several_or_a_cluster_scheme_a_cluster() {
        let single = RedisTarget::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!(single, RedisTarget::Single("redis://127.0.0.1:6379".into()));
        let seeds = ["redis://a:1".to_owned(), "redis://b:2".to_owned()];
        assert_eq!(
            RedisTarget::parse("redis+cluster://a:1, b:2").unwrap(),
            RedisTarget::Cluster(seeds.to_vec())
        );
        assert_eq!(
            RedisTarget::parse("redis://a:1,redis://b:2").unwrap(),
            RedisTarget::Cluster(seeds.to_vec())
        );
        for bad in ["", " , ", "redis+cluster://", "redis+cluster://,"] {
            assert!(RedisTarget::parse(bad).is_err(), "{bad:?}");
        }
    }
}
