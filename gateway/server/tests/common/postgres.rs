//! PostgreSQL for the integration tests: [`PgServer`], a server of a test's own (initdb into a
//! temp dir, `pg_ctl` on a free port) that the test can stop and start again; [`shared_database`],
//! a database of the test's own on the run's server (`VIGIE_TEST_POSTGRES_URL`, tests/postgres.sh);
//! [`psql`] to look at rows or hold locks as another client would.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where tests/postgres.sh says its server is (the maintenance database).
pub const POSTGRES_URL_VAR: &str = "VIGIE_TEST_POSTGRES_URL";

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Debian keeps initdb and pg_ctl off PATH, under /usr/lib/postgresql/<version>/bin.
fn pg_bin(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|p| p.join(name).is_file()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.pop().map_or_else(|| PathBuf::from(name), |d| d.join(name))
}

/// A command run as the server's owner: initdb refuses root, so as root it runs as `postgres`.
fn as_owner(program: &str) -> Command {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_bin(program));
        c
    } else {
        Command::new(pg_bin(program))
    }
}

fn ok(what: &str, out: std::io::Result<Output>) -> String {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e} (PostgreSQL 15 is on the image; apt-get install postgresql)"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A PostgreSQL server of one test, on a free port of 127.0.0.1, trust authentication for user
/// `vigie`; stopped and its files removed when dropped.
pub struct PgServer {
    dir: PathBuf,
    pub port: u16,
    options: String,
    running: bool,
}

impl PgServer {
    /// initdb and start, with `extra` server settings (`-c ssl=on …`).
    pub fn start(extra: &str) -> PgServer {
        let dir = std::env::temp_dir().join(format!(
            "vigie-pg-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the server's directory");
        let _ = Command::new("chown").args(["postgres"]).arg(&dir).output();
        ok(
            "initdb",
            as_owner("initdb")
                .arg(format!("--pgdata={}", dir.join("data").display()))
                .args(["--username=vigie", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
                .output(),
        );
        let port = super::free_port();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off {extra}",
            dir.display()
        );
        let mut server = PgServer { dir, port, options, running: false };
        server.start_again();
        server
    }

    /// The server's data directory (for certificates and keys it reads).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a file the server reads, owned by the server's user.
    pub fn write_owned(&self, name: &str, content: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, content).expect("write");
        let _ = Command::new("chown").args(["postgres"]).arg(&path).output();
        let _ = Command::new("chmod").args(["600"]).arg(&path).output();
        path.display().to_string()
    }

    /// Starts the server (again) on the same data directory and port; waits until it accepts.
    pub fn start_again(&mut self) {
        ok(
            "pg_ctl start",
            as_owner("pg_ctl")
                .arg(format!("--pgdata={}", self.dir.join("data").display()))
                .arg(format!("--log={}", self.dir.join("server.log").display()))
                .args(["--wait", "--timeout=60", "--silent", &format!("--options={}", self.options), "start"])
                .stdin(Stdio::null())
                .output(),
        );
        self.running = true;
    }

    /// Stops the server (fast: open connections are closed): the port refuses connections.
    pub fn stop(&mut self) {
        ok(
            "pg_ctl stop",
            as_owner("pg_ctl")
                .arg(format!("--pgdata={}", self.dir.join("data").display()))
                .args(["--mode=fast", "--wait", "--timeout=60", "--silent", "stop"])
                .output(),
        );
        self.running = false;
    }

    /// The URL of `database` on this server, as user `vigie`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://vigie@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        psql(&self.url("postgres"), &format!("CREATE DATABASE \"{name}\""));
        self.url(name)
    }

    /// The server's log (for a failure's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let _ = as_owner("pg_ctl")
                .arg(format!("--pgdata={}", self.dir.join("data").display()))
                .args(["--mode=immediate", "--wait", "--silent", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `sql` with psql on `url` (unaligned, tuples only) and returns its output; fails the test
/// on an error.
pub fn psql(url: &str, sql: &str) -> String {
    ok(
        &format!("psql: {sql}"),
        Command::new(pg_bin("psql")).args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql]).output(),
    )
}

/// A database of the test's own on the run's shared server, dropped at the end; `None` (the test
/// says it is skipped) when `VIGIE_TEST_POSTGRES_URL` is not set.
pub struct SharedDatabase {
    admin: String,
    name: String,
    pub url: String,
}

pub fn shared_database(test: &str) -> Option<SharedDatabase> {
    let Some(admin) = std::env::var(POSTGRES_URL_VAR).ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipped: {POSTGRES_URL_VAR} is not set (tests/run starts a server and sets it)");
        return None;
    };
    let name = format!("it_{test}_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst));
    psql(&admin, &format!("CREATE DATABASE \"{name}\""));
    let (base, _) = admin.rsplit_once('/').expect("a URL ending in /database");
    Some(SharedDatabase { url: format!("{base}/{name}"), admin, name })
}

impl Drop for SharedDatabase {
    fn drop(&mut self) {
        let _ = Command::new(pg_bin("psql"))
            .args(["-X", "-q", &self.admin, "-c", &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)])
            .output();
    }
}

/// Polls `f` every 100 ms until it is true, for at most `secs`; whether it became true.
pub fn until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}
