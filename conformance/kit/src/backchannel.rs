//! The relying party's side of Back-Channel Logout 1.0: a listener for the logout token the
//! target POSTs to a registered `backchannel_logout_uri`, and the checks of its claims (§2.4).
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Back-Channel Logout 1.0 §2.4: the member of `events` a logout token carries.
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A plain-HTTP listener (a loopback `backchannel_logout_uri`, RFC 8252 §7.3's exception for
/// loopback addresses) that takes the first `logout_token` POSTed to it.
pub struct Receiver {
    listener: TcpListener,
}

impl Receiver {
    /// Listens on `addr`, waiting up to 30 s while another run holds it: the address is fixed by
    /// the client's registration, so two runs against two targets take turns.
    pub async fn bind(addr: &str) -> anyhow::Result<Receiver> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => return Ok(Receiver { listener }),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot listen on backchannel_logout_listen {addr} (is it free, and local?)")
                    });
                }
            }
        }
    }

    /// The first logout token POSTed within `wait`, answered 200 (§2.8); other requests get 400.
    pub async fn logout_token(&self, wait: Duration) -> anyhow::Result<String> {
        tokio::time::timeout(wait, async {
            loop {
                let (mut s, _) = self.listener.accept().await?;
                let request = read_request(&mut s).await.unwrap_or_default();
                let token = parse(&request);
                let answer: &[u8] = if token.is_some() {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\ncache-control: no-store\r\nconnection: close\r\n\r\n"
                } else {
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                };
                let _ = s.write_all(answer).await;
                if let Some(t) = token {
                    return Ok::<_, std::io::Error>(t);
                }
            }
        })
        .await
        .context("timed out")?
        .context("the listener failed")
    }
}

/// One HTTP/1.1 message (a request, or an answer): its head and a `content-length` body.
pub async fn read_request(s: &mut tokio::net::TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break;
            }
        }
        if buf.len() > 64 * 1024 {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// §2.5: a POST whose form-encoded body has `logout_token`.
fn parse(request: &str) -> Option<String> {
    if !request.starts_with("POST ") {
        return None;
    }
    let body = request.split_once("\r\n\r\n")?.1;
    url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "logout_token").map(|(_, v)| v.into_owned())
}

/// Back-Channel Logout 1.0 §2.4 (claims) and §2.6 (what the RP validates), the signature, `iss`,
/// `aud` and `exp` already verified: `sid` is the session's when its ID token had one.
pub fn check_claims(
    header: &Value,
    claims: &Value,
    issuer: &str,
    client: &str,
    sid: Option<&str>,
) -> anyhow::Result<()> {
    ensure!(claims["iss"] == issuer, "the logout token's iss is {}, not {issuer}", claims["iss"]);
    let aud_ok = claims["aud"] == client || claims["aud"].as_array().is_some_and(|a| a.iter().any(|v| v == client));
    ensure!(aud_ok, "the logout token's aud is {}, not the client {client}", claims["aud"]);
    ensure!(claims["iat"].is_i64() || claims["iat"].is_u64(), "the logout token has no iat (§2.4 REQUIRED)");
    ensure!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()), "the logout token has no jti (§2.4 REQUIRED)");
    ensure!(claims["events"][EVENT].is_object(), "the logout token's events lacks {EVENT} with an object value (§2.4)");
    ensure!(claims.get("nonce").is_none(), "the logout token carries a nonce (§2.4: PROHIBITED)");
    if claims["sid"].is_null() && claims["sub"].is_null() {
        bail!("the logout token has neither sid nor sub (§2.4: one at least)");
    }
    if let Some(sid) = sid {
        ensure!(claims["sid"] == sid, "the logout token's sid is {}, not the session's", claims["sid"]);
    }
    // §2.4: "explicitly typed … typ logout+jwt" is RECOMMENDED; an ID token must never pass for
    // one (§4.2 of RFC 8725 on cross-JWT confusion), so a `typ` of JWT is refused.
    ensure!(header["typ"] == "logout+jwt", "the logout token's typ is {}, not logout+jwt", header["typ"]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({"iss": "https://op", "aud": "rp", "iat": 1, "exp": 2, "jti": "j", "sid": "s", "events": {EVENT: {}}})
    }

    #[test]
    fn each_claim_of_section_2_4_is_required() {
        let h = json!({"typ": "logout+jwt"});
        check_claims(&h, &good(), "https://op", "rp", Some("s")).expect("a valid logout token");
        for (what, change) in [
            ("iss", json!({"iss": "https://other"})),
            ("aud", json!({"aud": "other"})),
            ("iat", json!({"iat": null})),
            ("jti", json!({"jti": ""})),
            ("events", json!({"events": {}})),
            ("nonce", json!({"nonce": "n"})),
            ("sid", json!({"sid": "other"})),
        ] {
            let mut c = good();
            for (k, v) in change.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            assert!(check_claims(&h, &c, "https://op", "rp", Some("s")).is_err(), "a bad {what} passed");
        }
        assert!(check_claims(&json!({"typ": "JWT"}), &good(), "https://op", "rp", None).is_err());
    }

    #[test]
    fn only_a_post_with_a_logout_token_is_taken() {
        let post = "POST /bc HTTP/1.1\r\ncontent-length: 16\r\n\r\nlogout_token=abc";
        assert_eq!(parse(post).as_deref(), Some("abc"));
        assert_eq!(parse("GET /bc?logout_token=abc HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse("POST /bc HTTP/1.1\r\n\r\nother=1"), None);
    }
}
