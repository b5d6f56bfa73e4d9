//! A gateway started the way operators start one, `vigie serve --config FILE`, instead of the
//! embedded demo: the test writes the file, the directory's users and the TLS certificate.

use super::*;

impl Gateway {
    /// Runs `vigie serve --config CONFIG` and waits until `/healthz` answers, trusting `ca_pem`
    /// for the listener's certificate. The issuer, listener and audit file are read from the file;
    /// `dir` is the gateway's own directory (its log in `vigie.log`; removed with the gateway
    /// unless `VIGIE_KEEP_TEST_DATA` is set); `users` and `clients` are those the test put in the
    /// directory and in the file.
    pub async fn start_configured(
        dir: &Path,
        config: &Path,
        ca_pem: &str,
        users: Vec<User>,
        clients: Vec<DemoClient>,
    ) -> Gateway {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let text = std::fs::read_to_string(config).expect("the configuration file");
        let file: toml::Table = toml::from_str(&text).expect("the configuration is TOML");
        let issuer = file["issuer"].as_str().expect("issuer").to_owned();
        let listen: SocketAddr = file["server"]["listen"].as_str().expect("server.listen").parse().expect("address");
        let audit_file = file["audit"]["file"].as_str().expect("audit.file").to_owned();

        let log = std::fs::File::create(dir.join("vigie.log")).expect("vigie.log");
        let keep = std::env::var("VIGIE_KEEP_TEST_DATA").unwrap_or_default();
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(WATCHDOG).arg("vigie-watchdog").arg(dir).arg(keep).arg(BIN).arg("serve").arg("--config");
        cmd.arg(config);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("VIGIE_")) {
            cmd.env_remove(k);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("vigie.log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {BIN}: {e}"));
        let stdin = child.stdin.take();
        let http = client_for(Some(ca_pem), listen.port());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("vigie.log")).unwrap_or_default();
                panic!("vigie serve --config exited with {status}: {log}");
            }
            if let Ok(r) = http.get(format!("{issuer}/healthz")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "no answer from {issuer}/healthz within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Gateway {
            demo: json!({ "issuer": issuer, "audit_file": audit_file }),
            issuer,
            port: listen.port(),
            data_dir: dir.to_owned(),
            users,
            clients,
            ca_pem: ca_pem.to_owned(),
            child: Mutex::new(Some(child)),
            stdin: Mutex::new(stdin),
            used_steps: Mutex::new(HashSet::new()),
        }
    }
}
