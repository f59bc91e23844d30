//! A real `redis-server` on a free loopback port, or a Redis Cluster of them, for tests and
//! benchmarks.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server or a Cluster may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `redis-server` child process, killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    /// Its arguments besides the port, to start it again with.
    args: Vec<String>,
}

impl RedisServer {
    /// Starts `redis-server` (no persistence) and waits until it accepts connections.
    pub fn start() -> std::io::Result<Self> {
        Self::start_with(&[])
    }

    /// Starts a durable `redis-server`: every write reaches its append-only file in `dir`
    /// (fsync on each) before it is acknowledged, so [`restart`](Self::restart) after a
    /// [`kill`](Self::kill) loses nothing acknowledged.
    pub fn start_durable(dir: &std::path::Path) -> std::io::Result<Self> {
        let dir = dir.to_string_lossy();
        Self::start_with(&["--appendonly", "yes", "--appendfsync", "always", "--dir", &dir])
    }

    /// Starts `redis-server` with `extra` arguments besides the port and no persistence.
    fn start_with(extra: &[&str]) -> std::io::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut args: Vec<String> = ["--save", "", "--appendonly", "no"].map(Into::into).to_vec();
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let child = spawn(port, &args)?;
        Ok(Self { child, port, args })
    }

    /// Kills the server with SIGKILL.
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Starts the server again, on the same port with the same arguments (a durable one
    /// from its append-only file).
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.child = spawn(self.port, &self.args)?;
        Ok(())
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// `redis-server` on `port` with `args`, once it accepts connections.
fn spawn(port: u16, args: &[String]) -> std::io::Result<Child> {
    let mut child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + START_TIMEOUT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("redis-server did not start"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(child)
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis Cluster on loopback: masters with one replica each, made by `redis-cli --cluster
/// create`; every node is killed and its directory removed on drop.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts `masters` masters and as many replicas, and waits until every node reports
    /// the Cluster ok.
    pub fn start(masters: usize) -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "gridplay-redis-cluster-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&dir)?;
        let mut cluster = Self { nodes: Vec::new(), dir };
        for i in 0..masters * 2 {
            let conf = cluster.dir.join(format!("nodes-{i}.conf"));
            let conf = conf.to_string_lossy();
            let dir = cluster.dir.to_string_lossy();
            let args = ["--cluster-enabled", "yes", "--cluster-config-file", &conf, "--dir", &dir];
            let node = RedisServer::start_with(
                &[&args[..], &["--cluster-node-timeout", "2000"]].concat(),
            )?;
            cluster.nodes.push(node);
        }
        let addresses: Vec<String> =
            cluster.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        if !created.status.success() {
            let why = String::from_utf8_lossy(&created.stderr).into_owned();
            return Err(std::io::Error::other(format!("redis-cli --cluster create: {why}")));
        }
        let deadline = Instant::now() + START_TIMEOUT;
        while !cluster.nodes.iter().all(|n| cluster_ok(n.port)) {
            if Instant::now() > deadline {
                return Err(std::io::Error::other("the Redis Cluster never reported ok"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(cluster)
    }

    /// Kills one master with SIGKILL (its replica is promoted once the others notice, after
    /// the 2 s node timeout); the port it listened on.
    pub fn kill_a_master(&mut self) -> std::io::Result<u16> {
        let master = self
            .nodes
            .iter_mut()
            .find(|n| role(n.port).as_deref() == Some("master"))
            .ok_or_else(|| std::io::Error::other("no master answers"))?;
        master.kill()?;
        Ok(master.port)
    }

    /// The ports of its nodes, killed ones included.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The Cluster's URL for `--redis-url`: every node, as seeds.
    pub fn url(&self) -> String {
        let nodes: Vec<String> =
            self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis+cluster://{}", nodes.join(","))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the node on `port` reports the Cluster ok.
fn cluster_ok(port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else { return false };
    let Ok(mut conn) = client.get_connection() else { return false };
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query::<String>(&mut conn)
        .is_ok_and(|info| info.contains("cluster_state:ok"))
}

/// The role (`master`, `slave`) of the node on `port`, if it answers.
fn role(port: u16) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut conn = client.get_connection().ok()?;
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut conn).ok()?;
    match role.first()? {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        _ => None,
    }
}

/// A number no other call in this process returns.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
