//! How long the Redis store takes to say Redis is unavailable, the figures the functional tests
//! (`tests/conformance.rs`) only bound at ten times: a connect to a closed port, a ping once the
//! server is gone, a connect to a server that accepts and never answers. Median and worst of
//! `--rounds` (default 10).
//!
//! `cargo bench -p vigie-store-redis --bench unavailable [-- --rounds 10]` (needs `redis-server`).
use std::net::TcpListener;
use std::time::{Duration, Instant};

use vigie_store_redis::RedisStore;

#[path = "../tests/common/redis_server.rs"]
mod redis_server;
use redis_server::{RedisServer, free_port};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse().expect("--rounds N"))
        .unwrap_or(10);
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(async {
        report("connect, port closed", rounds, || async {
            let url = format!("redis://127.0.0.1:{}", free_port());
            let started = Instant::now();
            assert!(RedisStore::connect(&url, "bench:").await.is_err(), "nothing listens on {url}");
            started.elapsed()
        })
        .await;
        report("ping, Redis gone", rounds, || async {
            let mut server = RedisServer::start();
            let store = RedisStore::connect(&server.url(), "bench:").await.expect("connect");
            server.stop();
            let started = Instant::now();
            assert!(vigie_core::store::EphemeralStore::ping(&store).await.is_err(), "Redis is gone");
            started.elapsed()
        })
        .await;
        report("connect, server silent", rounds, || async {
            let silent = TcpListener::bind("127.0.0.1:0").expect("a port");
            let url = format!("redis://{}", silent.local_addr().expect("its address"));
            let started = Instant::now();
            assert!(RedisStore::connect(&url, "bench:").await.is_err(), "nothing answers on {url}");
            started.elapsed()
        })
        .await;
    });
}

async fn report<F, Fut>(what: &str, rounds: usize, mut once: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        times.push(once().await);
    }
    times.sort();
    println!("{what}: median {:?}, worst {:?} ({rounds} rounds)", times[times.len() / 2], times[times.len() - 1]);
}
