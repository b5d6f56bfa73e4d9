//! The syslog export: each audit event as one RFC 5424 message — facility `authpriv`, severity
//! from the outcome, the event's who/what/where in structured data `[vigie@<PEN> …]`, the JSON
//! event as MSG — sent with octet-counting framing (RFC 6587 §3.4.1, RFC 5425 §4.3) over TLS
//! (RFC 5425) or plain TCP to a local relay. UDP is not offered: an audit copy lost without a
//! trace is worth less than none. A bounded queue and one writer thread that reconnects with
//! backoff: a collector outage never holds a login; what the queue cannot hold is dropped,
//! counted (`vigie_audit_export_dropped_total{sink="syslog"}`) and logged once per outage.
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};

/// IANA's Private Enterprise Number reserved for documentation and examples (RFC 5612), the
/// default of `enterprise_number` until the establishment puts its own.
pub const EXAMPLE_PEN: u32 = 32473;
/// `authpriv` (RFC 5424 §6.2.1, table 1): security/authorization messages kept apart.
const FACILITY_AUTHPRIV: u8 = 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A collector that stops reading must not stall the writer for ever (the queue fills instead).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The longest a graceful stop waits for the queue to reach the collector.
const FLUSH_WAIT: Duration = Duration::from_secs(3);

/// `[audit.syslog]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `tls://host:6514` (RFC 5425), or `tcp://host:port` for a relay on the same host.
    pub url: String,
    /// PEM file of the CA(s) that issued the collector's certificate (required for `tls://`).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// PEM certificate chain presented to a collector that asks for one (with `client_key_file`).
    #[serde(default)]
    pub client_cert_file: Option<String>,
    /// PEM private key of `client_cert_file` (a secret: file mode 0600).
    #[serde(default)]
    pub client_key_file: Option<String>,
    /// The name the collector's certificate must carry; default the URL's host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// The establishment's IANA Private Enterprise Number in the SD-ID `vigie@<PEN>`.
    #[serde(default = "default_pen")]
    pub enterprise_number: u32,
    /// HOSTNAME of the messages; default this machine's name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Events held while the collector is slow or away; beyond, dropped and counted.
    #[serde(default = "default_queue")]
    pub queue: usize,
}

fn default_pen() -> u32 {
    EXAMPLE_PEN
}

fn default_queue() -> usize {
    10_000
}

/// Where the messages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Tls { host: String, port: u16 },
    Tcp { host: String, port: u16 },
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!("`{url}` is not a syslog URL: write tls://host:6514 (or tcp://host:port for a local relay)")
        })?;
        let (host, port) = rest
            .trim_end_matches('/')
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_owned(), p.parse::<u16>().ok()?)))
            .filter(|(h, p)| !h.is_empty() && *p != 0)
            .ok_or_else(|| format!("`{url}` names no host and port: write {scheme}://host:port"))?;
        match scheme {
            "tls" => Ok(Target::Tls { host, port }),
            "tcp" => Ok(Target::Tcp { host, port }),
            "udp" => Err("syslog over UDP is not offered for audit (a lost datagram leaves no trace): use \
                          tls://host:6514, or tcp:// to a relay on this host"
                .into()),
            other => Err(format!("unknown syslog scheme `{other}`: use tls:// (or tcp:// to a local relay)")),
        }
    }
}

impl SyslogConfig {
    /// What is wrong, as (key, what to do).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match Target::parse(&self.url) {
            Ok(Target::Tls { .. }) if self.ca_file.is_none() => out.push((
                "audit.syslog.ca_file",
                "required with tls://: the PEM of the CA that issued the collector's certificate".into(),
            )),
            Ok(_) => {}
            Err(e) => out.push(("audit.syslog.url", e)),
        }
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            out.push(("audit.syslog.client_cert_file", "goes with client_key_file: set both or neither".into()));
        }
        if self.queue == 0 {
            out.push(("audit.syslog.queue", "must be at least 1".into()));
        }
        out
    }
}

/// Escapes a PARAM-VALUE (RFC 5424 §6.3.3): `"`, `\` and `]` are preceded by `\`.
pub fn escape_param_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The inverse of [`escape_param_value`] (for tests and readers of the export).
pub fn unescape_param_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|n| matches!(n, '"' | '\\' | ']')) {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// Octet-counting framing (RFC 6587 §3.4.1, RFC 5425 §4.3): `MSG-LEN SP SYSLOG-MSG`, the length
/// in octets.
pub fn frame(message: &str) -> Vec<u8> {
    let mut out = format!("{} ", message.len()).into_bytes();
    out.extend_from_slice(message.as_bytes());
    out
}

/// The snake_case name of a kind, as the trail writes it.
pub fn kind_name(kind: AuditKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".into(),
    }
}

/// Severity (RFC 5424 §6.2.1): what went wrong or was let through unchecked is a warning (4),
/// the rest informational (6).
fn severity(event: &AuditEvent) -> u8 {
    match (event.kind, event.outcome) {
        (Some(AuditKind::CardRevocationUnchecked), _) | (_, Some(Outcome::Failure)) => 4,
        _ => 6,
    }
}

/// TIMESTAMP (RFC 5424 §6.2.3): UTC, at most 6 fractional digits; `-` when the time is unknown.
fn timestamp(at: &str) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&format).ok())
        .unwrap_or_else(|| "-".into())
}

/// A header field (RFC 5424 §6.2): printable US-ASCII, at most `max` octets, `-` when empty.
fn header_field(value: &str, max: usize) -> String {
    let v: String = value.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if v.is_empty() { "-".into() } else { v }
}

/// The RFC 5424 message of an event (without framing).
pub fn message(event: &AuditEvent, pen: u32, hostname: &str, procid: u32) -> String {
    let kind = event.kind.map(kind_name).unwrap_or_else(|| "unknown".into());
    let outcome = match event.outcome {
        Some(Outcome::Success) => "success",
        Some(Outcome::Failure) => "failure",
        None => "unknown",
    };
    let pri = u16::from(FACILITY_AUTHPRIV) * 8 + u16::from(severity(event));
    let mut sd = format!("[vigie@{pen} kind=\"{kind}\" outcome=\"{outcome}\"");
    let params = [
        ("subject", &event.subject),
        ("client_id", &event.client_id),
        ("ip", &event.ip),
        ("request_id", &event.request_id),
        ("method", &event.method),
        ("acr", &event.acr),
        ("sid", &event.sid),
        ("actor", &event.actor),
        ("object", &event.object),
    ];
    for (name, value) in params {
        if let Some(v) = value {
            sd.push_str(&format!(" {name}=\"{}\"", escape_param_value(v)));
        }
    }
    sd.push(']');
    let json = serde_json::to_string(event).unwrap_or_default();
    // MSG in UTF-8 starts with the BOM (RFC 5424 §6.4).
    format!(
        "<{pri}>1 {} {} vigie {procid} {} {sd} \u{feff}{json}",
        timestamp(&event.at),
        header_field(hostname, 255),
        header_field(&kind, 32)
    )
}

enum Message {
    Frame(Vec<u8>),
    Flush(mpsc::SyncSender<()>),
}

/// The export's sink: formats on the caller's thread, sends on its own.
pub struct SyslogExport {
    tx: mpsc::SyncSender<Message>,
    pen: u32,
    hostname: String,
    outage: Arc<Outage>,
}

/// What the writer and the callers share about the collector being away.
#[derive(Default)]
struct Outage {
    /// Set from the first failure (or drop) to the next successful write: one log line each way.
    on: AtomicBool,
    dropped: AtomicU64,
}

impl Outage {
    fn begin(&self, why: &str) {
        if !self.on.swap(true, Ordering::Relaxed) {
            tracing::warn!(reason = %why, "audit export to syslog interrupted: events are queued, then dropped once \
                the queue is full (the audit trail keeps them all)");
        }
    }

    fn end(&self) {
        if self.on.swap(false, Ordering::Relaxed) {
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            tracing::info!(dropped, "audit export to syslog resumed");
        }
    }

    fn drop_one(&self) {
        metrics::counter!("vigie_audit_export_dropped_total", "sink" => "syslog").increment(1);
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.begin("the queue is full");
    }
}

impl SyslogExport {
    /// Reads the TLS files now (a mistake stops the start), then connects in the background.
    pub fn start(config: &SyslogConfig) -> anyhow::Result<Self> {
        check(config)?;
        let target = Target::parse(&config.url).map_err(anyhow::Error::msg)?;
        let connector = Connector::new(config, target)?;
        let (tx, rx) = mpsc::sync_channel(config.queue);
        let outage = Arc::new(Outage::default());
        let shared = outage.clone();
        std::thread::Builder::new().name("vigie-audit-syslog".into()).spawn(move || send(&connector, &rx, &shared))?;
        let hostname = config.hostname.clone().unwrap_or_else(this_host);
        Ok(Self { tx, pen: config.enterprise_number, hostname, outage })
    }
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

impl vigie_core::audit::AuditSink for SyslogExport {
    fn record(&self, event: &AuditEvent) {
        let m = message(event, self.pen, &self.hostname, std::process::id());
        if self.tx.try_send(Message::Frame(frame(&m))).is_err() {
            self.outage.drop_one();
        }
    }

    /// Bounded: a stop does not wait for a collector that is away.
    fn flush(&self) {
        let (ack, done) = mpsc::sync_channel(1);
        if self.tx.try_send(Message::Flush(ack)).is_ok() && done.recv_timeout(FLUSH_WAIT).is_err() {
            tracing::warn!("audit events queued for syslog were not all sent before the stop");
        }
    }
}

/// Reads what [`SyslogExport::start`] reads (the URL, the CA, the client pair) without
/// connecting: `vigie check-config`.
pub fn check(config: &SyslogConfig) -> anyhow::Result<()> {
    if let Some((key, problem)) = config.problems().into_iter().next() {
        anyhow::bail!("`{key}`: {problem}");
    }
    Connector::new(config, Target::parse(&config.url).map_err(anyhow::Error::msg)?).map(drop)
}

/// Opens connections to the collector.
struct Connector {
    target: Target,
    tls: Option<(Arc<rustls::ClientConfig>, rustls::pki_types::ServerName<'static>)>,
}

impl Connector {
    fn new(config: &SyslogConfig, target: Target) -> anyhow::Result<Self> {
        use anyhow::Context;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        let Target::Tls { host, .. } = &target else { return Ok(Self { target, tls: None }) };
        let ca = config.ca_file.as_deref().unwrap_or_default();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).with_context(|| format!("audit.syslog.ca_file {ca}"))? {
            roots.add(cert.with_context(|| format!("audit.syslog.ca_file {ca}: not a PEM certificate"))?)?;
        }
        if roots.is_empty() {
            anyhow::bail!("audit.syslog.ca_file {ca}: no certificate in it (a PEM CA certificate is needed)");
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let client = match (&config.client_cert_file, &config.client_key_file) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .with_context(|| format!("audit.syslog.client_cert_file {cert}"))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .with_context(|| format!("audit.syslog.client_key_file {key}: no private key in it"))?;
                builder.with_client_auth_cert(chain, key)?
            }
            _ => builder.with_no_client_auth(),
        };
        let name = config.server_name.clone().unwrap_or_else(|| host.clone());
        let name = ServerName::try_from(name.clone())
            .with_context(|| format!("audit.syslog.server_name: `{name}` is not a DNS name or an IP"))?;
        Ok(Self { target, tls: Some((Arc::new(client), name)) })
    }

    fn connect(&self) -> std::io::Result<Box<dyn Write + Send>> {
        let (Target::Tls { host, port } | Target::Tcp { host, port }) = &self.target;
        let mut last = std::io::Error::other(format!("{host}:{port} resolves to no address"));
        for addr in (host.as_str(), *port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(tcp) => {
                    tcp.set_write_timeout(Some(WRITE_TIMEOUT))?;
                    // A collector that accepts and then says nothing (starting, stopping, wedged)
                    // must not hold the writer in the handshake for good.
                    tcp.set_read_timeout(Some(CONNECT_TIMEOUT))?;
                    tcp.set_nodelay(true)?;
                    let Some((config, name)) = &self.tls else { return Ok(Box::new(tcp)) };
                    let conn =
                        rustls::ClientConnection::new(config.clone(), name.clone()).map_err(std::io::Error::other)?;
                    let mut tls = rustls::StreamOwned::new(conn, tcp);
                    // The handshake now, so that a certificate problem is this connection's error.
                    while tls.conn.is_handshaking() {
                        tls.conn.complete_io(&mut tls.sock)?;
                    }
                    return Ok(Box::new(tls));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// The writer: connects (backing off while the collector is away), sends each frame, keeps the
/// frame a failed write was sending for the next connection.
fn send(connector: &Connector, rx: &mpsc::Receiver<Message>, outage: &Outage) {
    let mut backoff = BACKOFF_FIRST;
    let mut pending: Option<Vec<u8>> = None;
    let mut conn: Option<Box<dyn Write + Send>> = None;
    loop {
        let Some(out) = conn.as_mut() else {
            match connector.connect() {
                Ok(c) => {
                    conn = Some(c);
                    backoff = BACKOFF_FIRST;
                }
                Err(e) => {
                    outage.begin(&e.to_string());
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
            continue;
        };
        let frame = match pending.take() {
            Some(f) => f,
            None => match rx.recv() {
                Ok(Message::Frame(f)) => f,
                Ok(Message::Flush(ack)) => {
                    let _ = out.flush();
                    let _ = ack.send(());
                    continue;
                }
                Err(_) => return,
            },
        };
        match out.write_all(&frame).and_then(|()| out.flush()) {
            Ok(()) => outage.end(),
            Err(e) => {
                outage.begin(&e.to_string());
                pending = Some(frame);
                conn = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Reads octet-counted frames back (RFC 6587 §3.4.1), as a collector does.
    fn unframe(mut bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let sp = bytes.iter().position(|b| *b == b' ').expect("MSG-LEN SP");
            let len: usize = std::str::from_utf8(&bytes[..sp]).unwrap().parse().unwrap();
            out.push(String::from_utf8(bytes[sp + 1..sp + 1 + len].to_vec()).unwrap());
            bytes = &bytes[sp + 1 + len..];
        }
        out
    }

    /// The PARAM-VALUEs of one SD-ELEMENT, read as RFC 5424 §6.3.3 says.
    fn params(sd: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = sd;
        while let Some(eq) = rest.find("=\"") {
            let name = rest[..eq].rsplit(' ').next().unwrap().to_owned();
            let body = &rest[eq + 2..];
            let mut end = 0;
            let mut escaped = false;
            for (i, c) in body.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            out.push((name, unescape_param_value(&body[..end])));
            rest = &body[end + 1..];
        }
        out
    }

    proptest! {
        #[test]
        fn an_escaped_value_has_no_bare_quote_backslash_or_bracket_and_reads_back(v in "\\PC*") {
            let e = escape_param_value(&v);
            let mut chars = e.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    let next = chars.next();
                    prop_assert!(matches!(next, Some('"' | '\\' | ']')), "lone backslash in {e:?}");
                } else {
                    prop_assert!(!matches!(c, '"' | ']'), "bare {c} in {e:?}");
                }
            }
            prop_assert_eq!(unescape_param_value(&e), v);
        }

        #[test]
        fn frames_back_to_back_read_back_as_the_messages(ms in proptest::collection::vec("\\PC*", 0..8)) {
            let bytes: Vec<u8> = ms.iter().flat_map(|m| frame(m)).collect();
            prop_assert_eq!(unframe(&bytes), ms);
        }

        #[test]
        fn hostile_fields_stay_inside_their_param(subject in "\\PC*", reason in "\\PC*") {
            let event = AuditEvent {
                kind: Some(AuditKind::Login),
                outcome: Some(Outcome::Success),
                subject: Some(subject.clone()),
                reason: Some(reason),
                ..Default::default()
            };
            let m = message(&event, EXAMPLE_PEN, "host", 1);
            let sd_start = m.find("[vigie@").unwrap();
            let got = params(&m[sd_start..]);
            prop_assert_eq!(&got[0], &("kind".to_owned(), "login".to_owned()));
            prop_assert_eq!(&got[2], &("subject".to_owned(), subject));
        }
    }

    #[test]
    fn a_failed_login_is_authpriv_warning_with_its_sd() {
        let event = AuditEvent {
            at: "2026-12-05T15:10:34.123456789Z".into(),
            kind: Some(AuditKind::Login),
            outcome: Some(Outcome::Failure),
            client_id: Some("dpi".into()),
            ip: Some("10.0.0.1".into()),
            request_id: Some("r\"1]".into()),
            ..Default::default()
        };
        let m = message(&event, 32473, "gw 1", 42);
        assert!(
            m.starts_with(
                "<84>1 2026-12-05T15:10:34.123456Z gw1 vigie 42 login [vigie@32473 kind=\"login\" outcome=\"failure\" \
                 client_id=\"dpi\" ip=\"10.0.0.1\" request_id=\"r\\\"1\\]\"] \u{feff}{"
            ),
            "{m}"
        );
    }

    #[test]
    fn urls_say_what_is_wrong() {
        assert_eq!(Target::parse("tls://siem:6514"), Ok(Target::Tls { host: "siem".into(), port: 6514 }));
        assert_eq!(Target::parse("tcp://[::1]:514"), Ok(Target::Tcp { host: "::1".into(), port: 514 }));
        assert!(Target::parse("udp://siem:514").unwrap_err().contains("not offered"));
        assert!(Target::parse("siem:6514").unwrap_err().contains("tls://host:6514"));
        assert!(Target::parse("tls://siem").unwrap_err().contains("no host and port"));
    }
}
