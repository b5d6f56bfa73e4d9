//! A card CRL distribution point over plain HTTP/1.1, served by the test: GET gives the CRL,
//! HEAD (the breaker's probe) its headers only; `stop` makes the source go away.
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct CrlServer {
    pub addr: SocketAddr,
    /// The CRL's URL, as a card's distribution point names it.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl CrlServer {
    pub async fn start(crl: Vec<u8>) -> CrlServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port for the CRL");
        let addr = listener.local_addr().expect("its address");
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let body = crl.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = conn.read(&mut buf).await.unwrap_or(0);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/pkix-crl\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    if !buf[..n].starts_with(b"HEAD ") {
                        let _ = conn.write_all(&body).await;
                    }
                    let _ = conn.shutdown().await;
                });
            }
        });
        CrlServer { addr, url: format!("http://{addr}/ACI-EL-PP-TEST.crl"), task }
    }

    /// The source goes away: connections are refused from now on.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for CrlServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
