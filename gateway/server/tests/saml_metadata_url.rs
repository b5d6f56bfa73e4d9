//! SP metadata by URL: the pysaml2 SP's metadata served over HTTPS (tests/saml/md_server.py,
//! under a test CA), fetched by Vigie at start, changed (a new AssertionConsumerService URL) and
//! used after the refresh (and a login started for the old URL not answered there); the server
//! stopped, the last good copy kept and the failure counted.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::saml::{Sp, fresh, idp_and_sp_keys, idp_for, to_the_callback, to_the_sp};

const LAB: &str = "https://lab.chu.example/saml";

/// The metadata server, stopped on drop.
struct MdServer(Child);

impl Drop for MdServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path, port: u16) -> MdServer {
    let (_, cert, key) = crate::common::ldap::tls_files(dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/saml/md_server.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .args([&cert, &key, &dir.join("lab-md.xml"), &dir.join("md.log")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (the metadata server of this test needs Python 3)");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line)
        .expect("the metadata server's first line");
    assert_eq!(line.trim(), "ready", "the metadata server did not start");
    MdServer(child)
}

/// The status Vigie answers an AuthnRequest from `lab` asking for this ACS URL: 303 (on to the
/// login) when the URL is in the SP's metadata as Vigie holds it, 400 when not.
async fn asks_for(lab: &Sp, b: &mut Browser<'_>, acs: &str) -> u16 {
    let req = lab.json(&["redirect", "--acs", acs]);
    fresh(b);
    b.get(req["url"].as_str().expect("url")).await.status
}

async fn failures(gw: &Gateway) -> bool {
    let text = gw.http().get(gw.url("/metrics")).send().await.expect("/metrics").text().await.expect("text");
    text.lines().any(|l| l.starts_with("vigie_saml_metadata_fetch_failures_total") && !l.ends_with(" 0"))
}

#[tokio::test]
async fn an_sp_registered_by_url_is_fetched_refreshed_and_kept_when_its_server_is_down() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("saml-md-url-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    idp_and_sp_keys(&dir);
    let (ok, md, err) = Sp::new(&dir, "lab", LAB, None).run(&["metadata"], "");
    assert!(ok, "SP metadata: {err}");
    std::fs::write(dir.join("lab-md.xml"), &md).expect("SP metadata file");
    let port = free_port();
    let server = serve(&dir, port);
    let ca = dir.join("ca.pem");
    assert!(ca.exists(), "the test CA is at {}", ca.display());
    let sps = format!(
        r#"{{metadata_url="https://localhost:{port}/metadata", metadata_ca_file="{}", metadata_refresh_secs=2, client_id="lab", attributes=["mie"]}}"#,
        ca.display()
    );
    let gw = idp_for(&dir, &sps).await;
    let lab = Sp::new(&dir, "lab", LAB, Some(&dir.join("idp-md.xml")));
    let mut b = gw.browser();

    // Fetched at start: a login to lab works.
    let req = lab.json(&["redirect"]);
    let (response, _) = to_the_sp(&mut b, req["url"].as_str().expect("url")).await;
    let read = lab.parse(req["id"].as_str().expect("id"), &response).expect("pysaml2 reads the Response");
    assert_eq!(read["attributes"]["urn:vigie:attribute:mie"][0], "password_totp", "{read}");
    let new_acs = format!("{LAB}/acs-v2");
    assert_eq!(asks_for(&lab, &mut b, &new_acs).await, 400, "not in the metadata yet");

    // A second person starts a login to the current ACS, and is at the callback when the SP moves.
    let mut late = gw.browser();
    let req = lab.json(&["redirect"]);
    let pending = to_the_callback(&mut late, req["url"].as_str().expect("url")).await;

    // The SP moves its ACS: Vigie uses the new metadata after a refresh, and the old URL no more.
    let moved = md.replace(&format!("\"{LAB}/acs\""), &format!("\"{new_acs}\""));
    assert_ne!(moved, md, "the ACS URL is in the metadata: {md}");
    std::fs::write(dir.join("lab-md.xml"), &moved).expect("moved metadata");
    let deadline = Instant::now() + Duration::from_secs(60);
    while asks_for(&lab, &mut b, &new_acs).await != 303 {
        assert!(Instant::now() < deadline, "the new ACS URL was not taken within 60 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(asks_for(&lab, &mut b, &format!("{LAB}/acs")).await, 400, "the old ACS URL is gone");
    // The login started before the move ends without a Response to the old URL (saml-profiles
    // §4.1.4.1: the ACS is checked against the metadata as it is now).
    fresh(&mut late);
    let r = late.get(&pending).await;
    assert_eq!(r.status, 400, "no Response to an ACS the SP no longer lists: {}", r.body);
    assert!(r.hidden("SAMLResponse").is_none(), "{}", r.body);
    gw.audit_line(|l| l["reason"].as_str().is_some_and(|r| r.contains("no longer in the SP's metadata"))).await;

    // The server goes away: the failure is counted, the last good copy stays in use.
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !failures(&gw).await {
        assert!(Instant::now() < deadline, "no fetch failure counted within 60 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(asks_for(&lab, &mut b, &new_acs).await, 303, "the last good copy is kept");
    let _ = std::fs::remove_dir_all(dir);
}
