//! A `redis-server` of a test's own on a free port, killed when dropped, and a Sentinel
//! topology (a primary, a replica, three sentinels). Shared by the Redis store's tests and the
//! gateway's integration tests (`#[path]`), so that it has no other deps.
// Included by several test binaries, each using a part.
#![allow(dead_code)]
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_on(free_port(), &[])
    }

    pub fn start_on(port: u16, extra_args: &[&str]) -> Self {
        Self::launch(port, &[], extra_args)
    }

    /// `redis-server <leading> --port <port> … <extra_args>` (a configuration file, which
    /// must come first, goes in `leading`).
    fn launch(port: u16, leading: &[&str], extra_args: &[&str]) -> Self {
        let spawned = Command::new("redis-server")
            .args(leading)
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .args(["--bind", "127.0.0.1", "--loglevel", "warning"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("redis-server not found: install it (apt-get install redis-server) or run tests/run")
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        let mut server = RedisServer { child, port };
        server.wait_until_it_answers();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_until_it_answers(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("redis-server on port {} exited at start ({status}); see its output above", self.port);
            }
            if answers_ping(self.port) {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server on port {} did not answer within 10 s", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Redis goes away: connections to its port are refused from now on.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether something on `port` answers an inline `PING` (a server started with `requirepass`
/// answers with `-NOAUTH`, which counts: it is up).
fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && (line.starts_with("+PONG") || line.starts_with("-NOAUTH"))
}

/// Sends one inline command to the server on `port` and gives what it answered (all of it
/// that arrives within a short while), or "" when nothing answers.
pub fn ask(port: u16, command: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    // The first bytes may take a while (`WAIT` blocks up to its timeout); the rest follow them.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if stream.write_all(format!("{command}\r\n").as_bytes()).is_err() {
        return String::new();
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Redis Sentinel for real: a primary, one replica of it, and three sentinels monitoring it as
/// `vigie` (quorum 2, down after 1 s, failover timeout 3 s), on free ports, their files in a
/// temp dir; every process is killed and the dir removed when dropped.
pub struct Sentinel {
    /// The data nodes (the first started as primary); a killed one stays in the list, stopped.
    pub nodes: Vec<RedisServer>,
    pub sentinels: Vec<RedisServer>,
    pub dir: PathBuf,
    /// The sentinels' `requirepass`, if they have one.
    pub password: Option<String>,
}

/// The name the sentinels monitor the primary under.
pub const MASTER_NAME: &str = "vigie";

impl Sentinel {
    /// Starts the topology and waits until each sentinel sees the replica and the two other
    /// sentinels (before that, a failover cannot happen).
    pub fn start() -> Sentinel {
        Self::start_with_password(None)
    }

    /// [`Sentinel::start`] with sentinels that ask for `password` (`requirepass`, and
    /// `sentinel sentinel-pass` among themselves).
    pub fn start_with_password(password: Option<&str>) -> Sentinel {
        let dir = std::env::temp_dir().join(format!("vigie-sentinel-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("the sentinels' directory");
        let dir_arg = dir.display().to_string();
        // A replica's full sync goes through an RDB file in its `dir`: the temp dir, not the cwd.
        let primary = RedisServer::start_on(free_port(), &["--dir", &dir_arg, "--dbfilename", "primary.rdb"]);
        let primary_port = primary.port.to_string();
        let replica = RedisServer::start_on(
            free_port(),
            &["--replicaof", "127.0.0.1", &primary_port, "--dir", &dir_arg, "--dbfilename", "replica.rdb"],
        );
        let mut sentinels = Vec::new();
        for i in 0..3 {
            // Sentinel rewrites its configuration file: one each.
            let conf = dir.join(format!("sentinel-{i}.conf"));
            let text = format!(
                "sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 3000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n{auth}",
                auth = password.map(|p| format!("requirepass {p}\nsentinel sentinel-pass {p}\n")).unwrap_or_default()
            );
            std::fs::write(&conf, text).expect("a sentinel's configuration");
            let conf = conf.display().to_string();
            sentinels.push(RedisServer::launch(
                free_port(),
                &[&conf],
                &["--sentinel", "--dir", &dir.display().to_string()],
            ));
        }
        let topology =
            Sentinel { nodes: vec![primary, replica], sentinels, dir, password: password.map(str::to_owned) };
        let deadline = Instant::now() + Duration::from_secs(30);
        for sentinel in &topology.sentinels {
            loop {
                let info = topology.ask_sentinel(sentinel.port, "INFO sentinel");
                if info.contains("slaves=1,sentinels=3") {
                    break;
                }
                assert!(Instant::now() < deadline, "the sentinels did not see each other within 30 s: {info}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        topology
    }

    /// [`ask`] a sentinel, authenticated first when the sentinels have a password.
    pub fn ask_sentinel(&self, port: u16, command: &str) -> String {
        match &self.password {
            Some(password) => ask(port, &format!("AUTH {password}\r\n{command}")),
            None => ask(port, command),
        }
    }

    /// `host:port` of every sentinel, for `store.sentinel.nodes`.
    pub fn nodes(&self) -> Vec<String> {
        self.sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect()
    }

    /// The port of the primary the first sentinel that answers names.
    pub fn primary_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let info = self.ask_sentinel(s.port, "INFO sentinel");
            let address = info.split("address=").nth(1)?.split(',').next()?;
            address.rsplit_once(':')?.1.parse().ok()
        })
    }

    /// SIGKILL the current primary: no goodbye to its clients or its replica.
    pub fn kill_primary(&mut self) -> u16 {
        let port = self.primary_port().expect("no sentinel names a primary");
        let node = self.nodes.iter_mut().find(|n| n.port == port).expect("the primary is one of the nodes");
        node.stop();
        port
    }

    /// Starts the node of `port` again (after [`Sentinel::kill_primary`]) as a replica of the
    /// primary on `primary`, and waits until it has caught up (`WAIT 1`) and every sentinel
    /// counts it, so that another failover can happen.
    pub fn restart_as_replica(&mut self, port: u16, primary: u16) {
        let dir = self.dir.display().to_string();
        let file = format!("node-{port}.rdb");
        let primary_arg = primary.to_string();
        self.nodes.retain(|n| n.port != port);
        let args = ["--replicaof", "127.0.0.1", &primary_arg, "--dir", &dir, "--dbfilename", &file];
        self.nodes.push(RedisServer::start_on(port, &args));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ask(primary, "WAIT 1 1000").starts_with(":1") {
            assert!(Instant::now() < deadline, "the restarted node did not catch up within 30 s");
        }
        for sentinel in &self.sentinels {
            // Flags exactly `slave`: the dead node was listed all along, as `s_down,slave`.
            while !self
                .ask_sentinel(sentinel.port, &format!("SENTINEL REPLICAS {MASTER_NAME}"))
                .contains("flags\r\n$5\r\nslave\r\n")
            {
                assert!(Instant::now() < deadline, "the sentinels did not see the restarted replica within 30 s");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Asks a sentinel to fail the primary over now (`SENTINEL FAILOVER`): the primary is
    /// demoted alive, its clients meet `READONLY`.
    pub fn force_failover(&self) {
        let answer = self.ask_sentinel(self.sentinels[0].port, &format!("SENTINEL FAILOVER {MASTER_NAME}"));
        assert!(answer.trim_end().ends_with("+OK"), "SENTINEL FAILOVER: {answer:?}");
    }

    /// Waits until the sentinels name a primary other than `old` and it answers as one, and
    /// gives its port.
    pub fn wait_for_new_primary(&self, old: u16, within: Duration) -> u16 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(port) = self.primary_port().filter(|&p| p != old)
                && ask(port, "ROLE").contains("master")
            {
                return port;
            }
            assert!(Instant::now() < deadline, "the sentinels did not promote a new primary within {within:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        for server in self.sentinels.iter_mut().chain(self.nodes.iter_mut()) {
            server.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on (right now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("no free local port")
}
