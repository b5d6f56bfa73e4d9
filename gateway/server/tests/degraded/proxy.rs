//! A TCP proxy between Vigie and an upstream (the PSC stand-in, a CRL server) that a test or a
//! bench cuts and restores: the "external link". Shared by `tests/degraded.rs` and
//! `benches/degraded.rs` (`#[path]`).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The proxy's open connections (one task each).
type Connections = Arc<Mutex<Vec<JoinHandle<()>>>>;

/// A TCP proxy the test controls: `cut` closes every open connection and refuses new ones (the
/// listening socket is closed), `restore` listens again on the same address.
pub struct Proxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    tasks: Mutex<(Option<JoinHandle<()>>, Connections)>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let addr: SocketAddr =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let p = Proxy { addr, target, tasks: Mutex::new((None, Arc::new(Mutex::new(Vec::new())))) };
        p.restore().await;
        p
    }

    pub async fn restore(&self) {
        self.cut().await;
        let listener = self.listen().await;
        let target = self.target;
        let conns = self.tasks.lock().unwrap().1.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut c = conns.lock().unwrap();
                c.retain(|h| !h.is_finished());
                c.push(conn);
            }
        });
        self.tasks.lock().unwrap().0 = Some(accept);
    }

    /// The link drops every packet: connections are accepted and then nothing ever answers (a
    /// cut upstream of a firewall), so only timeouts tell.
    pub async fn blackhole(&self) {
        self.cut().await;
        let listener = self.listen().await;
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        self.tasks.lock().unwrap().0 = Some(accept);
    }

    async fn listen(&self) -> TcpListener {
        let mut listener = None;
        for _ in 0..50 {
            match TcpListener::bind(self.addr).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        listener.unwrap_or_else(|| panic!("the proxy cannot listen again on {}", self.addr))
    }

    /// The link goes down: open connections are closed, new ones refused.
    pub async fn cut(&self) {
        // The accept loop first: a connection it accepted after the list was taken would have been
        // pushed to the emptied list and outlive the cut (a probe then succeeded through it).
        let accept = self.tasks.lock().unwrap().0.take();
        if let Some(a) = accept {
            a.abort();
            let _ = a.await;
        }
        let conns = std::mem::take(&mut *self.tasks.lock().unwrap().1.lock().unwrap());
        for c in conns {
            c.abort();
            let _ = c.await;
        }
    }
}
