//! A real nginx (Debian `nginx`/`nginx-light`, with `auth_request`) run by the test as the
//! current user, its configuration in a temp dir: the snippets of docs/forward-auth.md, verbatim,
//! with the example addresses replaced by the test's.
use super::proxy_process::{ProxyProcess, proxy_dir, spawn};

const NGINX: &str = "/usr/sbin/nginx";

/// A fenced block of docs/forward-auth.md, by the comment on its first line.
pub fn doc_snippet(marker: &str) -> String {
    let doc = include_str!("../../../../docs/forward-auth.md");
    let first = format!("# forward-auth: {marker}\n");
    let start = doc.find(&first).unwrap_or_else(|| panic!("docs/forward-auth.md has no `{first}` block"));
    let rest = &doc[start + first.len()..];
    rest[..rest.find("```").expect("the block ends")].to_owned()
}

/// Starts nginx on `port` with one `server` block per host of `hosts` (loopback addresses it
/// listens on), each protected by
/// Vigie (whose plain-HTTP listener is `vigie`) in front of the app at `app`.
pub async fn start(port: u16, vigie: &str, app: &str, hosts: &[&str]) -> ProxyProcess {
    assert!(
        std::path::Path::new(NGINX).exists(),
        "{NGINX} is missing: `apt-get install nginx-light` (tests/run installs it)"
    );
    let dir = proxy_dir("nginx");
    let example =
        |s: String| s.replace("10.0.0.5:8080", vigie).replace("http://10.0.0.7:8000", &format!("http://{app}"));
    let server_block = example(doc_snippet("nginx server"));
    let servers: String = hosts
        .iter()
        .map(|h| format!("server {{\n    listen {h}:{port};\n    server_name {h};\n{server_block}}}\n"))
        .collect();
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
         http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n{}{servers}}}\n",
        example(doc_snippet("nginx http"))
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
    let args: [&std::ffi::OsStr; 8] = [
        "-p".as_ref(),
        dir.as_os_str(),
        "-e".as_ref(),
        "error.log".as_ref(),
        "-c".as_ref(),
        "nginx.conf".as_ref(),
        "-g".as_ref(),
        // One process, no workers: killing it stops nginx whole.
        "daemon off; master_process off;".as_ref(),
    ];
    let (child, stdin) = spawn(&dir, std::path::Path::new(NGINX), args);
    let log = dir.join("error.log");
    ProxyProcess { name: "nginx", host: hosts[0].to_owned(), port, dir, child, stdin, log }.wait_ready().await
}
