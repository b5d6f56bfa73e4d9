//! A real `rsyslogd` (Debian `rsyslog` + `rsyslog-openssl`) for tests, as the current user: a
//! TLS listener (imtcp with the `ossl` netstream driver, RFC 5425) on a free port, whose
//! messages are parsed as RFC 5424, their structured data read by rsyslog's own `mmpstrucdata`,
//! and written as one JSON object per line to a file. Stopped on drop.
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

pub struct Rsyslog {
    pub port: u16,
    /// The CA of the listener's certificate (for the gateway's `ca_file`).
    pub ca: PathBuf,
    received: PathBuf,
    dir: PathBuf,
    child: Child,
}

/// rsyslog's view of each message: the header fields it parsed, the SD params, the MSG.
const CONFIG: &str = r#"global(workDirectory="{dir}"
       DefaultNetstreamDriverCAFile="{ca}"
       DefaultNetstreamDriverCertFile="{cert}"
       DefaultNetstreamDriverKeyFile="{key}")
module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
module(load="mmpstrucdata")
template(name="rfc3339" type="string" string="%timereported:::date-rfc3339%")
template(name="parsed" type="string" string="%$!all-json-plain%\n")
ruleset(name="vigie") {
  action(type="mmpstrucdata")
  set $!protocol = $protocol-version;
  set $!facility = $syslogfacility;
  set $!severity = $syslogseverity;
  set $!app = $app-name;
  set $!procid = $procid;
  set $!msgid = $msgid;
  set $!timestamp = exec_template("rfc3339");
  set $!msg = $msg;
  action(type="omfile" file="{received}" template="parsed")
}
input(type="imtcp" port="{port}" ruleset="vigie")
"#;

impl Rsyslog {
    pub fn start(dir: &Path) -> Rsyslog {
        Rsyslog::start_on(dir, super::free_port())
    }

    /// On a given port: a collector back after an outage, where the gateway looks for it.
    pub fn start_on(dir: &Path, port: u16) -> Rsyslog {
        assert!(
            Path::new(RSYSLOGD).exists(),
            "rsyslogd is missing: apt-get install rsyslog rsyslog-openssl (tests/run installs them)"
        );
        std::fs::create_dir_all(dir).expect("rsyslog's directory");
        // A collector back after an outage keeps its certificate (the gateway trusts its CA).
        let (ca, cert, key) = if dir.join("ca.pem").exists() {
            (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
        } else {
            super::ldap::tls_files(dir)
        };
        let received = dir.join("received.jsonl");
        let config = CONFIG
            .replace("{dir}", &dir.display().to_string())
            .replace("{ca}", &ca.display().to_string())
            .replace("{cert}", &cert.display().to_string())
            .replace("{key}", &key.display().to_string())
            .replace("{received}", &received.display().to_string())
            .replace("{port}", &port.to_string());
        let conf = dir.join("rsyslog.conf");
        std::fs::write(&conf, config).expect("rsyslog.conf");
        let log = std::fs::File::create(dir.join("rsyslogd.log")).expect("rsyslogd.log");
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting rsyslogd");
        let mut server = Rsyslog { port, ca, received, dir: dir.to_owned(), child };
        server.wait_listening();
        server
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("rsyslogd exited ({status}): {}", self.log());
            }
            assert!(Instant::now() < deadline, "rsyslogd did not listen within 30 s: {}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rsyslogd.log")).unwrap_or_default()
    }

    /// The messages received so far, as rsyslog parsed them.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.received)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("rsyslog wrote {l:?}: {e}")))
            .collect()
    }

    /// The first message matching `what`, waiting up to `secs` (rsyslog writes on its own time).
    pub async fn message(&self, secs: u64, what: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(m) = self.received().into_iter().find(|m| what(m)) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no such message reached rsyslog within {secs} s: {:#?}\nrsyslogd log: {}",
                self.received(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the collector: the export's outage.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}
