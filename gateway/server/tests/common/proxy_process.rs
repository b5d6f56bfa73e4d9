//! A reverse proxy process (nginx, Traefik) run by a test: its config in a temp dir, readiness
//! polled on its port; killed (through the harness's watchdog, so also when the test binary dies)
//! and the dir removed when dropped.
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ProxyProcess {
    pub name: &'static str,
    /// The loopback address it listens on.
    pub host: String,
    pub port: u16,
    pub dir: PathBuf,
    /// The watchdog shell running the proxy.
    pub child: Child,
    /// Its stdin: closed, the watchdog kills the proxy.
    pub stdin: Option<ChildStdin>,
    /// The file the proxy logs to, shown when it does not come up.
    pub log: PathBuf,
}

/// Runs `program args` under the harness's watchdog (`WATCHDOG`): the proxy dies with the test
/// binary however it ends. Its stderr goes to `dir/stderr.log`.
pub fn spawn<I, S>(dir: &Path, program: &Path, args: I) -> (Child, Option<ChildStdin>)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let stderr = std::fs::File::create(dir.join("stderr.log")).expect("stderr.log");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(super::WATCHDOG)
        .arg("proxy-watchdog")
        .arg(dir)
        .arg(std::env::var("VIGIE_KEEP_TEST_DATA").unwrap_or_default())
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
    let stdin = child.stdin.take();
    (child, stdin)
}

impl ProxyProcess {
    /// Waits until the proxy accepts connections on its port (60 s: a loaded CI machine).
    pub async fn wait_ready(mut self) -> ProxyProcess {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("{} exited with {status}: {log}", self.name);
            }
            if tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await.is_ok() {
                return self;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {}:{} within 60 s",
                self.name,
                self.host,
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
        if std::env::var_os("VIGIE_KEEP_TEST_DATA").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A fresh temp dir for one proxy of one test.
pub fn proxy_dir(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{}", std::process::id(), super::random(6)));
    std::fs::create_dir_all(&dir).expect("the proxy's dir");
    dir
}
