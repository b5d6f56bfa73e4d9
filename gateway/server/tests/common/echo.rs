//! The app behind the proxy in the forward-auth tests: a tiny HTTP/1.x server that answers every
//! request with the request's header lines as a JSON object (names lowercased, values as sent).
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct EchoApp {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl EchoApp {
    pub async fn start() -> EchoApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port for the echo app");
        let addr = listener.local_addr().expect("its address");
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head);
                    let mut headers = serde_json::Map::new();
                    for line in text.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
                        if let Some((k, v)) = line.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().into());
                        }
                    }
                    let body = serde_json::Value::Object(headers).to_string();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        EchoApp { addr, task }
    }
}

impl Drop for EchoApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
