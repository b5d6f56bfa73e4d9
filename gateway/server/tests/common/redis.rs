//! Stateless replicas: a real `redis-server` (the Redis store's own test launcher) and `vigie`
//! replicas sharing it, one data directory and one issuer.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../../../adapters/store-redis/tests/common/redis_server.rs"]
mod redis_server;
pub use redis_server::RedisServer;

/// A `vigie serve` replica on the Redis store, killed when dropped; its log in
/// `<data dir>/replica-<port>.log`.
pub struct Replica {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Replica {
    /// Starts a replica on the shared data directory (the first one writes the demo there),
    /// Redis and issuer, with `env` on top, and waits until it listens and `demo.json` is written.
    /// A replica that exits fails the test at once with its log.
    pub fn start(dir: &Path, port: u16, redis: &RedisServer, issuer: &str, env: &[(&str, &str)]) -> Replica {
        std::fs::create_dir_all(dir).expect("the replicas' data directory");
        let log = dir.join(format!("replica-{port}.log"));
        let out = std::fs::File::create(&log).expect("the replica's log");
        let child = Command::new(super::BIN)
            .args(["serve", "--data-dir"])
            .arg(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("VIGIE_STORE__KIND", "redis")
            .env("VIGIE_STORE__URL", redis.url())
            .env("VIGIE_ISSUER", issuer)
            .env("VIGIE_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("the replica's log"))
            .stderr(out)
            .spawn()
            .expect("start vigie");
        let mut replica = Replica { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || !dir.join("demo.json").is_file() {
            if let Ok(Some(status)) = replica.child.try_wait() {
                panic!("the replica on {port} exited with {status}: {}", replica.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "the replica on {port} did not start within 60 s: {}",
                replica.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        replica
    }

    pub fn base(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
