//! The kit's user agent: HTTP to the target with a cookie jar, redirects seen rather than
//! followed, and every exchange kept as evidence with its secrets masked.
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use serde::Serialize;

use crate::profile::User;

/// Parameters, form fields and JSON members that carry secrets: never written in a report.
const SECRET_NAMES: &[&str] = &[
    "client_secret",
    "password",
    "totp",
    "code",
    "code_verifier",
    "refresh_token",
    "access_token",
    "id_token",
    "id_token_hint",
    "client_assertion",
    "csrf",
    "flow",
    "subject_token",
    "confirm",
    "logout_token",
    // A WebAuthn credential or assertion: a signed login proof (its clientDataJSON reads as a JWT).
    "credential",
];

/// One request and its answer, as a report shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Exchange {
    pub request: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A response as the checks read it (unmasked; only [`Exchange`] goes into reports).
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn location(&self) -> String {
        self.header("location").unwrap_or_default().to_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok().map(str::to_owned)).collect()
    }
    /// The query of the `Location` this response redirects to.
    pub fn redirect_params(&self) -> BTreeMap<String, String> {
        query_of(&self.location())
    }
    /// The value of `<input type="hidden" name="NAME" value="…">` in an HTML body.
    pub fn hidden(&self, name: &str) -> Option<String> {
        let at = self.body.find(&format!("name=\"{name}\""))?;
        let start = self.body[..at].rfind('<')?;
        let end = at + self.body[at..].find('>')?;
        let tag = &self.body[start..end];
        let v = tag.find("value=\"")? + 7;
        Some(tag[v..v + tag[v..].find('"')?].replace("&amp;", "&"))
    }
}

/// The query parameters of a URL (absolute or a path).
pub fn query_of(u: &str) -> BTreeMap<String, String> {
    url::Url::parse("https://x/")
        .and_then(|b| b.join(u))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// Masks a secret: its length is kept, never its content.
fn mask(v: &str) -> String {
    format!("«masked, {} characters»", v.chars().count())
}

/// A URL with the secret query parameters masked.
pub fn redact_url(u: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(u) else { return u.to_owned() };
    if parsed.query().is_none() {
        return u.to_owned();
    }
    let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    parsed.query_pairs_mut().clear().extend_pairs(
        pairs.iter().map(|(k, v)| (k.clone(), if SECRET_NAMES.contains(&k.as_str()) { mask(v) } else { v.clone() })),
    );
    parsed.to_string()
}

fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if SECRET_NAMES.contains(&k.as_str()) && x.is_string() {
                    *x = serde_json::Value::String(mask(x.as_str().unwrap_or_default()));
                } else {
                    redact_json(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_json),
        _ => {}
    }
}

/// Masks every JWT (RFC 7519 §3: base64url segments joined by dots, the header's `{"` encoded as
/// `eyJ`) wherever a page shows it — a link that carries the query it came from, an error echoing
/// a hint —, not only under the names known to be secret.
fn mask_jwts(text: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("eyJ") {
        out.push_str(&rest[..at]);
        let len = rest[at..].find(|c: char| !is_b64(c)).unwrap_or(rest.len() - at);
        let candidate = &rest[at..at + len];
        if candidate.contains('.') {
            out.push_str(&mask(candidate))
        } else {
            out.push_str(candidate)
        }
        rest = &rest[at + len..];
    }
    out.push_str(rest);
    out
}

fn redact_body(body: &str) -> String {
    if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(body) {
        redact_json(&mut v);
        return mask_jwts(&v.to_string());
    }
    // An HTML page: its hidden flow and CSRF values are bearer secrets of the login.
    let mut out = body.to_owned();
    for name in ["flow", "csrf"] {
        let probe = Resp { status: 0, headers: Default::default(), body: out.clone() };
        if let Some(v) = probe.hidden(name).filter(|v| !v.is_empty()) {
            out = out.replace(&v, &mask(&v));
        }
    }
    mask_jwts(&out).chars().take(2000).collect()
}

fn redact_header(name: &str, value: &str) -> String {
    match name {
        "location" | "content-location" => redact_url(value),
        "set-cookie" | "cookie" => match value.split_once('=') {
            Some((n, rest)) => {
                let (v, attrs) = rest.split_once(';').unwrap_or((rest, ""));
                format!("{n}={}{}{attrs}", mask(v), if attrs.is_empty() { "" } else { ";" })
            }
            None => value.to_owned(),
        },
        "authorization" => {
            value.split_once(' ').map(|(s, v)| format!("{s} {}", mask(v))).unwrap_or_else(|| mask(value))
        }
        _ => value.to_owned(),
    }
}

/// The HTTP side of a run: one client trusting the target's CA, and the evidence of the
/// current test.
#[derive(Clone)]
pub struct Agent {
    pub issuer: String,
    http: reqwest::Client,
    evidence: Arc<Mutex<Vec<Exchange>>>,
    used_totp: Arc<Mutex<HashSet<(String, i64)>>>,
}

impl Agent {
    pub fn new(issuer: &str, ca_pem: Option<&str>, identity: Option<(&str, &str)>) -> anyhow::Result<Agent> {
        let mut b =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(30));
        if let Some(ca) = ca_pem {
            b = b.tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes())
                .context("the --insecure-ca file is not a PEM certificate")?]);
        }
        if let Some((chain, key)) = identity {
            b = b.identity(
                reqwest::Identity::from_pem(format!("{chain}{key}").as_bytes())
                    .context("the profile's card is not a PEM chain and key")?,
            );
        }
        Ok(Agent {
            issuer: issuer.trim_end_matches('/').to_owned(),
            http: b.build()?,
            evidence: Default::default(),
            used_totp: Default::default(),
        })
    }

    /// The same target and evidence, presenting a client certificate (a test card).
    pub fn with_card(&self, ca_pem: Option<&str>, chain: &str, key: &str) -> anyhow::Result<Agent> {
        let mut a = Agent::new(&self.issuer, ca_pem, Some((chain, key)))?;
        a.evidence = self.evidence.clone();
        a.used_totp = self.used_totp.clone();
        Ok(a)
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("https://") || path.starts_with("http://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.issuer)
        }
    }

    /// The evidence gathered since the last call.
    pub fn take_evidence(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.evidence.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Notes a fact the test established without a request (e.g. a decoded token's header).
    pub fn note(&self, what: &str, detail: String) {
        self.evidence.lock().unwrap_or_else(|e| e.into_inner()).push(Exchange {
            request: format!("(note) {what}"),
            status: 0,
            headers: vec![],
            body: redact_body(&detail),
        });
    }

    pub async fn send(&self, req: reqwest::RequestBuilder, form: Option<&[(&str, &str)]>) -> anyhow::Result<Resp> {
        let req = match form {
            Some(f) => req.form(f),
            None => req,
        };
        let built = req.build()?;
        let mut described = format!("{} {}", built.method(), redact_url(built.url().as_str()));
        for (n, v) in built.headers() {
            if matches!(n.as_str(), "authorization" | "cookie") {
                described.push_str(&format!("\n{n}: {}", redact_header(n.as_str(), v.to_str().unwrap_or_default())));
            }
        }
        if let Some(f) = form {
            let shown: Vec<String> = f
                .iter()
                .map(|(k, v)| format!("{k}={}", if SECRET_NAMES.contains(k) { mask(v) } else { (*v).to_owned() }))
                .collect();
            described.push_str(&format!("\n\n{}", shown.join("&")));
        }
        let r = self.http.execute(built).await.with_context(|| format!("no answer from {}", self.issuer))?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.text().await.unwrap_or_default();
        self.evidence.lock().unwrap_or_else(|e| e.into_inner()).push(Exchange {
            request: described,
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), redact_header(n.as_str(), v.to_str().unwrap_or_default())))
                .collect(),
            body: redact_body(&body),
        });
        Ok(Resp { status, headers, body })
    }

    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(url))
    }
    pub fn post(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(url))
    }

    /// A TOTP code (RFC 6238, 30 s steps, 6 digits) of one of `users` the target has not seen
    /// yet: it accepts each code once, so a run spreads its logins over users and steps.
    pub async fn fresh_totp<'u>(&self, users: &'u [User]) -> anyhow::Result<(&'u User, String)> {
        for _ in 0..4 {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
            let (current, left) = (now / 30, 30 - now % 30);
            {
                let mut used = self.used_totp.lock().unwrap_or_else(|e| e.into_inner());
                for u in users {
                    for (step, usable) in [(current, left > 3), (current + 1, true)] {
                        if usable && used.insert((u.username.clone(), step)) {
                            return Ok((u, totp(&decode_base32(&u.totp_secret)?, step)));
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(left as u64) + Duration::from_millis(300)).await;
        }
        anyhow::bail!("no fresh TOTP code for any test user")
    }
}

/// RFC 4226 §5.3 over RFC 6238's time step.
pub fn totp(key: &[u8], step: i64) -> String {
    use aws_lc_rs::hmac;
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key), &(step as u64).to_be_bytes());
    let d = tag.as_ref();
    let at = usize::from(d[19] & 0x0f);
    let n =
        (u32::from(d[at]) & 0x7f) << 24 | u32::from(d[at + 1]) << 16 | u32::from(d[at + 2]) << 8 | u32::from(d[at + 3]);
    format!("{:06}", n % 1_000_000)
}

/// RFC 4648 §6 base32 (the form of a TOTP secret).
pub fn decode_base32(text: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').chars() {
        let v = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
            .find(c.to_ascii_uppercase())
            .with_context(|| "a TOTP secret of the profile is not base32 (RFC 4648 §6)")?;
        acc = (acc << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

pub fn sha256_b64(s: &str) -> String {
    b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes()).as_ref())
}

/// A random URL-safe string of `n` bytes of entropy.
pub fn random(n: usize) -> String {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut buf).expect("the system's random source");
    b64(&buf)
}

/// The JSON of a JWT's part `i` (0 header, 1 claims).
pub fn jwt_part(token: &str, i: usize) -> serde_json::Value {
    token
        .split('.')
        .nth(i)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_gives_rfc_6238_appendix_b_codes() {
        for (t, eight) in [(59, "94287082"), (1_111_111_109, "07081804"), (1_234_567_890, "89005924")] {
            assert_eq!(totp(b"12345678901234567890", t / 30), eight[2..]);
        }
        assert_eq!(decode_base32("MZXW6YTBOI======").unwrap(), b"foobar");
    }

    #[test]
    fn a_jwt_is_masked_wherever_a_page_shows_it() {
        let page =
            r#"<a href="/logout?id_token_hint=eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.&amp;lang=en">English</a> eyJ alone"#;
        let out = redact_body(page);
        assert!(!out.contains("eyJhbGci"), "{out}");
        assert!(out.contains("«masked, ") && out.contains("lang=en") && out.contains("eyJ alone"), "{out}");
    }

    #[test]
    fn secrets_are_masked_in_urls_bodies_and_cookies() {
        let u = redact_url("https://cb/?code=abcdef&state=s1");
        assert!(!u.contains("abcdef") && u.contains("state=s1"), "{u}");
        let b = redact_body(r#"{"access_token":"tok-123","token_type":"Bearer"}"#);
        assert!(!b.contains("tok-123") && b.contains("Bearer"), "{b}");
        let c = redact_header("set-cookie", "vigie_session=s3cr3t; Secure; HttpOnly");
        assert!(!c.contains("s3cr3t") && c.contains("HttpOnly"), "{c}");
        let h = redact_body(r#"<input type="hidden" name="csrf" value="csrf-value-1">"#);
        assert!(!h.contains("csrf-value-1"), "{h}");
    }
}
