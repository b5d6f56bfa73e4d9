//! Small real HTTP/1.1 servers (tokio TcpListener): one serves CRLs by path, can answer an error
//! status, and can be stopped so that its port refuses connections; one accepts and never answers.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone)]
enum Answer {
    Body(Vec<u8>),
    Status(u16),
}

pub struct CrlServer {
    base: String,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CrlServer {
    pub async fn start() -> CrlServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a local port");
        let base = format!("http://{}", listener.local_addr().expect("its address"));
        let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let shared = answers.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let answers = shared.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&request);
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let answer = answers.lock().expect("answers").get(&path).cloned().unwrap_or(Answer::Status(404));
                    let (status, body) = match answer {
                        Answer::Body(body) => (200, body),
                        Answer::Status(status) => (status, Vec::new()),
                    };
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&body).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        CrlServer { base, answers, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn serve(&self, path: &str, body: Vec<u8>) {
        self.answers.lock().expect("answers").insert(path.to_owned(), Answer::Body(body));
    }

    pub fn fail(&self, path: &str, status: u16) {
        self.answers.lock().expect("answers").insert(path.to_owned(), Answer::Status(status));
    }

    /// Closes the listening socket: later fetches get "connection refused".
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A source that accepts connections and never answers (a CRL server hung, or a firewall that
/// swallows the request): what the fetch timeout is for.
pub struct SilentSource {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl SilentSource {
    pub async fn start() -> SilentSource {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a local port");
        let base = format!("http://{}", listener.local_addr().expect("its address"));
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        SilentSource { base, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for SilentSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}
