//! The load benchmark's `--store forward-auth`: forward-auth checks through a real nginx
//! (`auth_request`, configured with docs/forward-auth.md's snippets verbatim) in front of a tiny
//! backend (an nginx `return 200`), with one live session: each request of the driver is one
//! check of Vigie's (`/forward-auth/nginx` on its plain-HTTP listener) and one backend answer.
//! The driver speaks HTTP/1.1 itself over many keep-alive connections (a few hundred bytes a
//! request), so that it takes as little of the shared cores as it can.
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::common::{RemoveDir, cookie_of, free_port};
use super::{Backend, drive, phase, start};

const NGINX: &str = "/usr/sbin/nginx";
/// The app's host: a loopback address, where a plain-`http` app is allowed.
const APP_HOST: &str = "127.0.0.2";

/// A fenced block of docs/forward-auth.md, by the comment on its first line.
fn doc_snippet(marker: &str) -> String {
    let doc = include_str!("../../../../docs/forward-auth.md");
    let first = format!("# forward-auth: {marker}\n");
    let start = doc.find(&first).unwrap_or_else(|| panic!("docs/forward-auth.md has no `{first}` block"));
    let rest = &doc[start + first.len()..];
    rest[..rest.find("```").expect("the block ends")].to_owned()
}

/// nginx, stopped (SIGTERM: the master stops its workers) when dropped.
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

/// nginx on `port` (the app's host) with Vigie's check, and the backend on `backend`; a master
/// with `workers` workers, stopped with the bench.
fn start_nginx(port: u16, backend: u16, vigie: &str, workers: usize) -> (Nginx, RemoveDir) {
    assert!(std::path::Path::new(NGINX).exists(), "{NGINX} is missing: `apt-get install nginx-light`");
    let dir = std::env::temp_dir().join(format!("vigie-bench-nginx-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("nginx dir");
    let example = |s: String| {
        s.replace("10.0.0.5:8080", vigie).replace("http://10.0.0.7:8000", &format!("http://127.0.0.1:{backend}"))
    };
    let d = dir.display();
    let conf = format!(
        "worker_processes {workers};\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 8192; }}\n\
         http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
         keepalive_requests 1000000;\n{}\
         upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}\n\
         server {{ listen 127.0.0.1:{backend}; keepalive_requests 1000000; location / {{ return 200 \"ok\\n\"; }} }}\n\
         server {{\n    listen {APP_HOST}:{port};\n    server_name {APP_HOST};\n{}}}\n}}\n",
        example(doc_snippet("nginx http")),
        // The app behind a keep-alive upstream, as Vigie is: the figure is the check's.
        example(doc_snippet("nginx server")).replace(
            &format!("proxy_pass http://127.0.0.1:{backend};"),
            "proxy_pass http://backend;\n        proxy_http_version 1.1;\n        proxy_set_header Connection \"\";"
        ),
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(&dir)
        .args(["-e", "error.log", "-c", "nginx.conf", "-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx");
    let child = Nginx(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect((APP_HOST, port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start: {}/error.log", dir.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, RemoveDir(dir))
}

/// One keep-alive connection of the driver, to the app's host.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(port: u16) -> Option<Conn> {
        let stream = TcpStream::connect((APP_HOST, port)).await.ok()?;
        stream.set_nodelay(true).ok()?;
        Some(Conn { stream, buf: Vec::with_capacity(4096) })
    }

    /// Sends `request`; the answer's status once its whole body is read (nginx answers with
    /// `Content-Length` here: a `return` and a proxied fixed body).
    async fn send(&mut self, request: &[u8]) -> Option<u16> {
        self.stream.write_all(request).await.ok()?;
        self.buf.clear();
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).ok()?;
                let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
                let length: usize = head
                    .lines()
                    .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                while self.buf.len() < end + 4 + length {
                    self.read().await?;
                }
                return Some(status);
            }
            self.read().await?;
        }
    }

    async fn read(&mut self) -> Option<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.ok()?;
        (n > 0).then(|| self.buf.extend_from_slice(&chunk[..n]))
    }
}

/// The app's cookie of a live session: the app's dance (`/.vigie/start` → Vigie's `/authorize`)
/// with a password + TOTP login at Vigie, then the dance again with that session (SSO) → the
/// app's callback. (`VIGIE_CLIENTS` leaves the app's client alone: the login starts from it.)
async fn app_session(gw: &super::Gateway, port: u16) -> String {
    let http = super::client(&gw.demo);
    let app = format!("http://{APP_HOST}:{port}");
    let page: String = url::form_urlencoded::byte_serialize(format!("{app}/").as_bytes()).collect();
    let (h, app, page) = (&http, &app, &page);
    let start = move || async move {
        let r = h.get(format!("{app}/.vigie/start?rd={page}")).send().await.expect("start");
        assert_eq!(r.status(), 303, "/.vigie/start sends the browser to Vigie");
        let login_cookie = cookie_of(&r, "vigie-app-login").expect("the app's login cookie");
        (login_cookie, r.headers()["location"].to_str().expect("location").to_owned())
    };
    let (_, authorize) = start().await;
    let session = super::login(&http, gw, &authorize).await;
    let (login_cookie, authorize) = start().await;
    let r = http.get(&authorize).header("cookie", &session).send().await.expect("authorize");
    assert_eq!(r.status(), 303, "SSO: the session gets a code for the app");
    let callback = r.headers()["location"].to_str().expect("location").to_owned();
    let r = http.get(&callback).header("cookie", &login_cookie).send().await.expect("callback");
    assert_eq!(r.status(), 303, "the callback sets the app's cookie");
    cookie_of(&r, "vigie-app").expect("the app's cookie")
}

/// Checks per second through nginx with one live session, `concurrency` keep-alive connections.
pub async fn bench_forward_auth(secs: u64, concurrency: usize) {
    let (plain, port, backend) = (free_port(), free_port(), free_port());
    let vigie = format!("127.0.0.1:{plain}");
    let app = format!("http://{APP_HOST}:{port}");
    let env: Vec<(String, String)> = [
        ("VIGIE_SERVER__PLAIN_HTTP_LISTEN", vigie.clone()),
        ("VIGIE_SERVER__TRUSTED_PROXIES", r#"["127.0.0.1/32"]"#.to_owned()),
        (
            "VIGIE_CLIENTS",
            format!(r#"[{{client_id="lab", auth_method="none", redirect_uris=["{app}/.vigie/callback"]}}]"#),
        ),
        ("VIGIE_FORWARD_AUTH", format!(r#"{{apps=[{{url="{app}", client_id="lab"}}]}}"#)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let gw = start(Backend::Embedded, 1, &env);
    let workers: usize = super::common::arg("--nginx-workers", "2").parse().expect("--nginx-workers N");
    let (nginx, _nginx_dir) = start_nginx(port, backend, &vigie, workers);
    let cookie = app_session(&gw, port).await;
    let request = Arc::new(
        format!("GET /results?id=42 HTTP/1.1\r\nHost: {APP_HOST}:{port}\r\nCookie: {cookie}\r\n\r\n").into_bytes(),
    );
    let mut conns = Vec::new();
    for _ in 0..concurrency {
        let mut c = Conn::open(port).await.expect("a connection to nginx");
        assert_eq!(c.send(&request).await, Some(200), "the app answers through nginx with the session");
        conns.push(tokio::sync::Mutex::new(c));
    }
    // Without the cookie, the check sends the browser to log in: what is measured is Vigie's answer.
    let mut c = Conn::open(port).await.expect("connection");
    let anonymous = format!("GET / HTTP/1.1\r\nHost: {APP_HOST}:{port}\r\n\r\n");
    assert_eq!(c.send(anonymous.as_bytes()).await, Some(302), "no session: to the login");
    let conns = Arc::new(conns);
    let op = move |i: usize| {
        let (conns, request) = (conns.clone(), request.clone());
        async move { conns[i].lock().await.send(&request).await == Some(200) }
    };
    drive(concurrency, 2, None, op.clone()).await;
    let pids = [gw.pid];
    let label = format!("[forward-auth] check through nginx ({workers} workers), max");
    let max = phase(&label, &pids, concurrency, secs, None, op.clone()).await;
    let label = "[forward-auth] check through nginx, at half that load";
    phase(label, &pids, concurrency, secs, Some(max.rate() / 2.0), op.clone()).await;
    phase("[forward-auth] check through nginx, at 5,000/s", &pids, concurrency, secs, Some(5000.0), op).await;
    println!("(CPU per op above: Vigie's alone; nginx and the driver share the same cores)");
    drop(nginx);
    gw.print_rss("forward-auth", &[]);
}
