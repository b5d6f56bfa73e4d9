//! What the audit lines hold, against the real binary (issue 18, "Minimal and safe content"): a
//! professional's login and token lines carry their idNat, so that `vigie audit search --person
//! <idNat>` and the DMP handover select them by it.
use crate::common;

use common::*;
use serde_json::Value;

const MEDECIN_IDNAT: &str = "810100000011";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_professional_s_login_and_token_lines_carry_their_idnat_and_search_selects_by_it() {
    let gw = Gateway::start(&[]).await;
    let mut b = gw.browser();
    let a = Authz::new(&gw, "demo-app");
    let r = b.authorize(&a).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let (user, totp) = gw.any_user_totp(&["demo.medecin"]).await;
    let done = b.submit_login(&r.location(), &user.username, &user.password, &totp).await;
    assert_eq!(done.status, 303, "the médecin logs in: {}", done.body);
    let code = done.redirect_params().get("code").cloned().expect("a code");
    redeem(&gw, &a, &code).await;

    let login = gw.audit_line(|l| l["kind"] == "login" && l["outcome"] == "success").await;
    assert_eq!(login["idnat"], MEDECIN_IDNAT, "the login line names the professional by idNat: {login}");
    let token = gw.audit_line(|l| l["kind"] == "token_issued").await;
    assert_eq!(token["idnat"], MEDECIN_IDNAT, "the token line too: {token}");

    let file = gw.data_dir.join("audit.jsonl");
    let out = std::process::Command::new(BIN)
        .args(["audit", "search", "--person", MEDECIN_IDNAT, "--format", "jsonl"])
        .arg(&file)
        .output()
        .expect("running vigie audit search");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let found: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = found.iter().filter_map(|l| l["kind"].as_str()).collect();
    assert!(kinds.contains(&"login") && kinds.contains(&"token_issued"), "search by idNat: {found:#?}");
    assert!(found.iter().all(|l| l["idnat"] == MEDECIN_IDNAT), "{found:#?}");
}
