//! `[server]`: the listeners, their TLS files and the proxies in front of them. Kept under
//! `config/` until the HTTP side (`http.rs`, `tls.rs`) has a folder of its own.
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::check::Cidr;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTPS listener.
    pub listen: SocketAddr,
    /// PEM certificate chain of the HTTPS listener.
    pub tls_cert: PathBuf,
    /// PEM private key of the HTTPS listener.
    pub tls_key: PathBuf,
    /// Optional plain-HTTP listener for the TLS-terminating proxies: it serves peers in
    /// `trusted_proxies` only (anyone else gets 403).
    pub plain_http_listen: Option<SocketAddr>,
    /// Proxies (addresses or CIDRs) whose `X-Forwarded-For` is believed: the client is the
    /// rightmost address in it that is not one of them. No other forwarded header is read.
    pub trusted_proxies: Vec<Cidr>,
    /// Optional plain-HTTP listener for operations (`/healthz`, `/readyz` with the details of a
    /// failed check, `/metrics`), e.g. `127.0.0.1:9090`. When set, the main listeners no longer
    /// serve `/readyz` and `/metrics`.
    pub ops_listen: Option<SocketAddr>,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// Seconds between SIGTERM and the end of accepting connections, during which `/readyz`
    /// answers 503 (`draining`) and everything else is served as usual: Kubernetes removes a
    /// terminating pod from the Service's endpoints asynchronously, so connections keep coming
    /// for a few seconds after the signal. 0 where nothing routes (the embedded demo).
    pub drain_secs: u64,
    /// Longest wait, once accepting has ended, for the requests in flight to finish; keep
    /// `drain_secs` + this under the pod's `terminationGracePeriodSeconds` (default 30).
    pub shutdown_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            tls_cert: PathBuf::from("/etc/vigie/tls/tls.crt"),
            tls_key: PathBuf::from("/etc/vigie/tls/tls.key"),
            plain_http_listen: None,
            trusted_proxies: Vec::new(),
            ops_listen: None,
            max_body_bytes: 64 * 1024,
            workers: 0,
            drain_secs: 5,
            shutdown_timeout_secs: 20,
        }
    }
}

impl ServerConfig {
    /// Whether `ip` is one of `trusted_proxies`.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(ip))
    }

    // Three checks, not one: `Config::validate` keeps the order its lines have always come in.
    pub(super) fn validate_files(&self, err: &mut dyn FnMut(&str, String)) {
        for (key, path) in [("server.tls_cert", &self.tls_cert), ("server.tls_key", &self.tls_key)] {
            if !path.is_file() {
                err(key, format!("{} is not a readable file", path.display()));
            }
        }
    }

    pub(super) fn validate_plain_http(&self, err: &mut dyn FnMut(&str, String)) {
        if self.plain_http_listen.is_some() && self.trusted_proxies.is_empty() {
            err(
                "server.plain_http_listen",
                "a plain-HTTP listener needs `server.trusted_proxies` (the TLS-terminating proxies)".into(),
            );
        }
    }

    pub(super) fn validate_limits(&self, err: &mut dyn FnMut(&str, String)) {
        if self.max_body_bytes < 1024 {
            err("server.max_body_bytes", "expected at least 1024".into());
        }
        if self.drain_secs > 300 {
            err("server.drain_secs", "expected at most 300 (seconds)".into());
        }
        if self.shutdown_timeout_secs == 0 || self.shutdown_timeout_secs > 300 {
            err("server.shutdown_timeout_secs", "expected 1 to 300 (seconds)".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ServerConfig;

    fn problems(c: &ServerConfig) -> Vec<String> {
        let mut out = Vec::new();
        c.validate_limits(&mut |key, e| out.push(format!("{key}: {e}")));
        out
    }

    #[test]
    fn a_stop_that_cannot_finish_or_outlasts_the_grace_period_is_refused_by_key() {
        assert!(problems(&ServerConfig::default()).is_empty());
        let never = ServerConfig { shutdown_timeout_secs: 0, ..Default::default() };
        assert_eq!(problems(&never), ["server.shutdown_timeout_secs: expected 1 to 300 (seconds)"]);
        let endless = ServerConfig { drain_secs: 3600, ..Default::default() };
        assert_eq!(problems(&endless), ["server.drain_secs: expected at most 300 (seconds)"]);
        // 0: no drain, for a node nothing routes to (the embedded demo).
        assert!(problems(&ServerConfig { drain_secs: 0, ..Default::default() }).is_empty());
    }
}
