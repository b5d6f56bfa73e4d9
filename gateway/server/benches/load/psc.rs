//! The load benchmark's `--store psc`: full logins through Pro Santé Connect's stand-in.
use std::sync::Arc;

use super::common::{free_port, start_psc_sandbox};
use super::{Backend, authorize_url, cpu_secs, drive, phase, start};

/// One full login through PSC on a fresh browser: authorize → `/login/psc` → PSC (completing at
/// once as Dr Marie Durand, or through its approval form) → callback → code.
async fn psc_login(ca: &reqwest::Certificate, control: &str, url: &str, base: &str) -> bool {
    let Ok(http) =
        reqwest::Client::builder().tls_certs_only([ca.clone()]).redirect(reqwest::redirect::Policy::none()).build()
    else {
        return false;
    };
    // Queued (the stand-in's load-test mode): each concurrent login takes one.
    let next = serde_json::json!({ "idnat": "810001234567", "means": "ecps", "queue": true });
    if http.post(format!("{control}/__control/next-login")).json(&next).send().await.is_err() {
        return false;
    }
    let Some((browser, flow)) = super::open_flow(&http, url).await else { return false };
    let Ok(r) = http.get(format!("{base}/login/psc?flow={flow}")).header("cookie", &browser).send().await else {
        return false;
    };
    let mut location = r.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned);
    let mut jar: Vec<String> = Vec::new();
    for _ in 0..12 {
        let Some(to) = location.take() else { return false };
        let to = if to.starts_with('/') { format!("{control}{to}") } else { to };
        let ours = to.contains("/login/psc/callback");
        let cookies = if ours { browser.clone() } else { jar.join("; ") };
        let Ok(r) = http.get(&to).header("cookie", cookies).send().await else { return false };
        for c in r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            jar.push(c.split(';').next().unwrap_or_default().to_owned());
        }
        let here = r.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned);
        if ours {
            match here {
                // The registered callback is on 127.0.0.1: one hop to the issuer's host.
                Some(l) if l.starts_with(base) && l.contains("/login/psc/callback") => location = Some(l),
                Some(l) => return r.status() == 303 && l.contains("code="),
                None => return false,
            }
            continue;
        }
        location = match here {
            Some(l) => Some(l),
            // The stand-in's approval page (when the next-login went to another loop's request).
            None => {
                let Ok(html) = r.text().await else { return false };
                let Some(action) = html.split("action=\"").nth(1).and_then(|a| a.split('"').next()) else {
                    return false;
                };
                let action = if action.starts_with('/') { format!("{control}{action}") } else { action.to_owned() };
                let Ok(r) = http
                    .post(action)
                    .header("cookie", jar.join("; "))
                    .form(&[("idnat", "810001234567"), ("means", "ecps")])
                    .send()
                    .await
                else {
                    return false;
                };
                for c in r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
                    jar.push(c.split(';').next().unwrap_or_default().to_owned());
                }
                r.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned)
            }
        };
    }
    false
}

/// Full logins through the PSC stand-in per second, and the gateway's CPU per login (what Vigie
/// adds: flow, state, code exchange, ID token and userinfo checks, session, code).
pub async fn bench_psc(secs: u64, concurrency: usize) {
    let psc_port = free_port();
    let env = vec![
        ("VIGIE_PSC__ISSUER".to_owned(), format!("http://127.0.0.1:{psc_port}/auth/realms/esante-wallet")),
        ("VIGIE_PSC__CLIENT_ID".to_owned(), "vigie".to_owned()),
        ("VIGIE_PSC__CLIENT_SECRET".to_owned(), "bench-secret".to_owned()),
    ];
    let gw = start(Backend::Embedded, 1, &env);
    let gateway_port: u16 = gw.base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("gateway port");
    let (sandbox, issuer) = start_psc_sandbox(psc_port, None, gateway_port);
    let control = url::Url::parse(&issuer).expect("issuer").origin().ascii_serialization();
    let ca = reqwest::Certificate::from_pem(gw.demo["ca_pem"].as_str().unwrap_or_default().as_bytes()).expect("CA");
    let redirect = format!("{}/demo-app/callback", gw.base);
    let url = authorize_url(&gw.base, &redirect);
    assert!(psc_login(&ca, &control, &url, &gw.base).await, "a login through the PSC stand-in must work");
    let shared = Arc::new((ca, control, url, gw.base.clone()));
    let op = move |_| {
        let s = shared.clone();
        async move { psc_login(&s.0, &s.1, &s.2, &s.3).await }
    };
    drive(concurrency, 2, None, op.clone()).await;
    let node_before = cpu_secs(sandbox.0.id());
    let max = phase("[psc] full login through the stand-in, max", &[gw.pid], concurrency, secs, None, op.clone()).await;
    let node = cpu_secs(sandbox.0.id()) - node_before;
    println!("[psc] the stand-in (node) used {:.0} µs CPU per login", node * 1e6 / max.ops.max(1) as f64);
    let label = "[psc] full login, at half that load";
    phase(label, &[gw.pid], concurrency, secs, Some(max.rate() / 2.0), op).await;
}
