//! A relay standing on the demo's back-channel address (`127.0.0.1:8770`, where `demo-bcl`'s
//! logout tokens go) that forwards each POST to the kit's listener with the logout token's
//! claims altered: what a tampering network hop would deliver.
use std::time::Duration;

use base64::Engine;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use vigie_conformance::backchannel::read_request;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Starts the relay on `at` (waiting up to 30 s while a kit run of another test holds it),
/// forwarding to `127.0.0.1:to`; it stops with the returned task.
pub async fn start(at: &str, to: u16) -> tokio::task::JoinHandle<()> {
    let mut listener = None;
    for _ in 0..300 {
        match TcpListener::bind(at).await {
            Ok(l) => {
                listener = Some(l);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let listener = listener.unwrap_or_else(|| panic!("{at} stayed busy for 30 s"));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let request = read_request(&mut s).await.unwrap_or_default();
            let body = request.split("\r\n\r\n").nth(1).unwrap_or_default();
            let token = body.strip_prefix("logout_token=").unwrap_or_default().to_owned();
            let forwarded = format!("logout_token={}", altered(&token));
            let mut out = TcpStream::connect(("127.0.0.1", to)).await.expect("the kit's listener");
            let head = format!(
                "POST /backchannel HTTP/1.1\r\nhost: 127.0.0.1:{to}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                forwarded.len()
            );
            out.write_all(head.as_bytes()).await.expect("forwarding");
            out.write_all(forwarded.as_bytes()).await.expect("forwarding");
            let _ = read_request(&mut out).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        }
    })
}

/// The token with another `sid` in its claims, the header and signature kept.
fn altered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a logout token is a JWS: {token:.20}");
    let mut claims: serde_json::Value =
        serde_json::from_slice(&B64.decode(parts[1]).expect("base64url claims")).expect("JSON claims");
    claims["sid"] = serde_json::json!("another-session");
    format!("{}.{}.{}", parts[0], B64.encode(claims.to_string()), parts[2])
}
