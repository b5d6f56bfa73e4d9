//! Signing key rotation without downtime (OIDC Core §10.1.1): `vigie keys rotate` on a running
//! gateway publishes a new next key, signs with the former next key, and keeps verifying the
//! tokens signed before.
use crate::common;

use std::process::Command;

use common::*;
use serde_json::Value;

/// The kid of the key of type `kty` in `state` in a key file.
fn kid(keys: &Value, kty: &str, state: &str) -> String {
    let found: Vec<&str> = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["kty"] == kty && k["state"] == state)
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(found.len(), 1, "one {state} {kty} key in {keys}");
    found[0].to_owned()
}

fn header_kid(token: &str) -> String {
    jwt_part(token, 0)["kid"].as_str().expect("kid").to_owned()
}

#[tokio::test]
async fn keys_rotate_on_a_running_gateway_publishes_a_new_next_key_and_keeps_old_tokens_valid() {
    let gw = Gateway::start(&[]).await;
    let before = gw.keys_file();
    let (ec_current, ec_next) = (kid(&before, "EC", "current"), kid(&before, "EC", "next"));
    let (rsa_current, rsa_next) = (kid(&before, "RSA", "current"), kid(&before, "RSA", "next"));

    let (mut b, _, _, old_es) = logged_in(&gw, "demo-app", &gw.all_usernames()).await;
    assert_eq!(header_kid(&old_es.id), ec_current);
    let a = Authz::new(&gw, "demo-cli");
    let code = b.code_without_login(&a).await;
    let old_rs = redeem(&gw, &a, &code).await;
    assert_eq!(header_kid(&old_rs.access), rsa_current);

    let out = Command::new(BIN)
        .args(["keys", "rotate", "--data-dir"])
        .arg(&gw.data_dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("vigie keys rotate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = gw.keys_file();
    assert_eq!(kid(&after, "EC", "current"), ec_next, "next became current");
    assert_eq!(kid(&after, "RSA", "current"), rsa_next);
    let (new_ec_next, new_rsa_next) = (kid(&after, "EC", "next"), kid(&after, "RSA", "next"));
    assert!(![&ec_current, &ec_next, &rsa_current, &rsa_next].contains(&&new_ec_next));

    // The running gateway picks the file up: it looks every 10 s. The bound, ten of those
    // periods, only tells a reload from none on a loaded machine; it does not time the period.
    let published = eventually(100, || async {
        let jwks = gw.jwks().await;
        (jwks.find(&new_ec_next).is_some() && jwks.find(&new_rsa_next).is_some()).then_some(jwks)
    })
    .await
    .expect("the new next keys are published in /jwks");
    for old in [&ec_current, &rsa_current] {
        assert!(published.find(old).is_some(), "the previous key {old} stays published for its tokens");
    }

    // Tokens signed before the rotation still work.
    assert_eq!(gw.userinfo(&old_es.access).await.status, 200);
    assert_eq!(gw.userinfo(&old_rs.access).await.status, 200);
    gw.verify_jwt(&old_es.id, "demo-app", "ES256").await;
    gw.verify_jwt(&old_rs.id, "demo-cli", "RS256").await;

    // New tokens are signed with the former next keys.
    for (client, alg, expected) in
        [("demo-app", "ES256", &ec_next), ("demo-cli", "RS256", &rsa_next), ("demo-spa", "PS256", &rsa_next)]
    {
        let a = Authz::new(&gw, client);
        let code = b.code_without_login(&a).await;
        let t = redeem(&gw, &a, &code).await;
        assert_eq!(&header_kid(&t.id), expected, "{client} ID token");
        assert_eq!(&header_kid(&t.access), expected, "{client} access token");
        gw.verify_jwt(&t.id, client, alg).await;
        assert_eq!(gw.userinfo(&t.access).await.status, 200);
    }
}
