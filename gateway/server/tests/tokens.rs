//! The token endpoint and what its tokens open: errors per RFC 6749 §5.2, code replay,
//! refresh rotation (RFC 9700 §4.14), UserInfo (OIDC Core §5.3, RFC 6750), introspection
//! (RFC 7662) and revocation (RFC 7009).
use crate::common;

use std::collections::BTreeMap;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

static GW: OnceCell<Gateway> = OnceCell::const_new();
/// One signed-in browser; every test takes its codes from this SSO session.
static SSO: OnceCell<BTreeMap<String, String>> = OnceCell::const_new();

async fn gw() -> &'static Gateway {
    GW.get_or_init(|| Gateway::start(&[])).await
}

async fn code_for(client_id: &str) -> (Authz, String) {
    let gw = gw().await;
    let cookies = SSO
        .get_or_init(|| async {
            let mut b = gw.browser();
            b.sign_in(&Authz::new(gw, "demo-app"), &gw.all_usernames()).await;
            b.cookies
        })
        .await;
    let mut b = gw.browser();
    b.cookies = cookies.clone();
    let a = Authz::new(gw, client_id);
    let code = b.code_without_login(&a).await;
    (a, code)
}

async fn tokens_for(client_id: &str) -> (Authz, Tokens) {
    let (a, code) = code_for(client_id).await;
    let t = redeem(gw().await, &a, &code).await;
    (a, t)
}

/// RFC 6750 §3: the challenge of a refused bearer token (its description follows).
const INVALID_TOKEN: &str = r#"Bearer realm="vigie", error="invalid_token", "#;
/// RFC 6749 §5.2 / RFC 7617 §2: the challenge of a failed Basic client authentication.
const BASIC_CHALLENGE: &str = r#"Basic realm="vigie""#;

fn assert_oauth_error(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.json()["error"], error, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

async fn refresh(client_id: &str, refresh_token: &str, scope: Option<&str>) -> Resp {
    let mut p = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    if let Some(s) = scope {
        p.push(("scope", s));
    }
    gw().await.token(client_id, &p).await
}

async fn assert_token_dead(access: &str) {
    let gw = gw().await;
    // Asked by the token's own client: to any other, every access token is inactive.
    let client = jwt_part(access, 1)["client_id"].as_str().expect("client_id").to_owned();
    assert_eq!(gw.introspect(&client, access).await, json!({ "active": false }));
    let r = gw.userinfo(access).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with(INVALID_TOKEN)), "{:?}", r.headers);
}

#[tokio::test]
async fn token_request_without_code_is_invalid_request() {
    let gw = gw().await;
    let r =
        gw.token("demo-app", &[("grant_type", "authorization_code"), ("redirect_uri", "https://x.example/cb")]).await;
    assert_oauth_error(&r, 400, "invalid_request");
    let r = gw.token("demo-app", &[("code", "abc")]).await;
    assert_oauth_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn token_request_that_is_not_form_encoded_is_invalid_request() {
    let gw = gw().await;
    let c = gw.client("demo-app");
    let r = gw
        .http()
        .post(gw.url("/token"))
        .basic_auth(&c.client_id, c.secret.as_deref())
        .json(&json!({ "grant_type": "authorization_code", "code": "abc" }))
        .send()
        .await
        .expect("token endpoint");
    assert_oauth_error(&Resp::of(r).await, 400, "invalid_request");
}

#[tokio::test]
async fn token_request_with_a_repeated_parameter_is_invalid_request() {
    let gw = gw().await;
    let (a, code) = code_for("demo-app").await;
    let c = gw.client("demo-app");
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
        .append_pair("code", &code)
        .append_pair("redirect_uri", &a.redirect_uri)
        .append_pair("code_verifier", &a.verifier)
        .finish();
    let r = gw
        .http()
        .post(gw.url("/token"))
        .basic_auth(&c.client_id, c.secret.as_deref())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token endpoint");
    assert_oauth_error(&Resp::of(r).await, 400, "invalid_request");
}

#[tokio::test]
async fn wrong_basic_secret_is_401_invalid_client_with_www_authenticate() {
    let gw = gw().await;
    for (id, secret) in [("demo-app", "not-the-secret"), ("no-such-client", "x")] {
        let r = gw
            .http()
            .post(gw.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "authorization_code"), ("code", "abc")])
            .send()
            .await
            .expect("token endpoint");
        let r = Resp::of(r).await;
        assert_oauth_error(&r, 401, "invalid_client");
        assert_eq!(r.header("www-authenticate"), Some(BASIC_CHALLENGE), "RFC 6749 §5.2");
    }
}

#[tokio::test]
async fn client_authenticating_another_way_than_registered_is_invalid_client() {
    let gw = gw().await;
    let app = gw.client("demo-app");
    let cli = gw.client("demo-cli");
    let grant = [("grant_type", "authorization_code"), ("code", "abc")];
    // demo-app is registered for client_secret_basic: its right secret in the body is refused.
    let r = gw
        .http()
        .post(gw.url("/token"))
        .form(&[
            grant[0],
            grant[1],
            ("client_id", "demo-app"),
            ("client_secret", app.secret.as_deref().unwrap_or_default()),
        ])
        .send()
        .await
        .expect("token endpoint");
    assert_oauth_error(&Resp::of(r).await, 401, "invalid_client");
    // demo-cli is registered for client_secret_post: Basic is refused.
    let r = gw.http().post(gw.url("/token")).basic_auth("demo-cli", cli.secret.as_deref()).form(&grant).send().await;
    assert_oauth_error(&Resp::of(r.expect("token endpoint")).await, 401, "invalid_client");
    // Confidential clients cannot pass as public ones.
    for id in ["demo-app", "demo-jwt"] {
        let r = gw.http().post(gw.url("/token")).form(&[grant[0], grant[1], ("client_id", id)]).send().await;
        assert_oauth_error(&Resp::of(r.expect("token endpoint")).await, 401, "invalid_client");
    }
    // A public client has no secret to send.
    let r =
        gw.http().post(gw.url("/token")).form(&[grant[0], grant[1], ("client_id", "demo-spa"), ("client_secret", "x")]);
    assert_oauth_error(&Resp::of(r.send().await.expect("token endpoint")).await, 401, "invalid_client");
}

#[tokio::test]
async fn two_client_authentication_methods_at_once_is_invalid_request() {
    let gw = gw().await;
    let app = gw.client("demo-app");
    let secret = app.secret.clone().unwrap_or_default();
    let r = gw
        .http()
        .post(gw.url("/token"))
        .basic_auth("demo-app", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "abc"),
            ("client_id", "demo-app"),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .expect("token endpoint");
    assert_oauth_error(&Resp::of(r).await, 400, "invalid_request");
}

#[tokio::test]
async fn unknown_code_is_invalid_grant() {
    let gw = gw().await;
    let a = Authz::new(gw, "demo-app");
    assert_oauth_error(&a.redeem(gw, &random(32)).await, 400, "invalid_grant");
}

#[tokio::test]
async fn code_redeemed_with_another_or_no_redirect_uri_is_invalid_grant() {
    let gw = gw().await;
    let (a, code) = code_for("demo-app").await;
    let p = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", &format!("{}/other", gw.issuer)),
        ("code_verifier", &a.verifier),
    ];
    assert_oauth_error(&gw.token("demo-app", &p).await, 400, "invalid_grant");
    let (a, code) = code_for("demo-app").await;
    let p = [("grant_type", "authorization_code"), ("code", code.as_str()), ("code_verifier", &a.verifier)];
    assert_oauth_error(&gw.token("demo-app", &p).await, 400, "invalid_grant");
}

#[tokio::test]
async fn code_redeemed_with_a_wrong_or_no_code_verifier_is_invalid_grant() {
    let gw = gw().await;
    let (a, code) = code_for("demo-spa").await;
    let wrong = random(32);
    let p = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &a.redirect_uri),
        ("code_verifier", &wrong),
    ];
    assert_oauth_error(&gw.token("demo-spa", &p).await, 400, "invalid_grant");
    let (a, code) = code_for("demo-spa").await;
    let p = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", &a.redirect_uri)];
    assert_oauth_error(&gw.token("demo-spa", &p).await, 400, "invalid_grant");
}

#[tokio::test]
async fn code_issued_to_another_client_is_invalid_grant() {
    let gw = gw().await;
    let (a, code) = code_for("demo-app").await;
    let p = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &a.redirect_uri),
        ("code_verifier", &a.verifier),
    ];
    assert_oauth_error(&gw.token("demo-cli", &p).await, 400, "invalid_grant");
}

#[tokio::test]
async fn replayed_code_is_invalid_grant_and_kills_the_tokens_of_its_first_use() {
    let gw = gw().await;
    let (a, code) = code_for("demo-app").await;
    let t = redeem(gw, &a, &code).await;
    assert_eq!(gw.introspect("demo-app", &t.access).await["active"], true);
    assert_eq!(gw.userinfo(&t.access).await.status, 200);

    // RFC 6749 §4.1.2: deny, and revoke the tokens previously issued from this code.
    assert_oauth_error(&a.redeem(gw, &code).await, 400, "invalid_grant");
    assert_token_dead(&t.access).await;
    assert_oauth_error(&refresh("demo-app", &t.refresh, None).await, 400, "invalid_grant");
}

#[tokio::test]
async fn a_code_redeemed_twice_at_once_is_answered_once_and_its_tokens_are_revoked() {
    let gw = gw().await;
    // A race is a matter of luck: run it a few times.
    for _ in 0..5 {
        let (a, code) = code_for("demo-app").await;
        let (first, second) = tokio::join!(a.redeem(gw, &code), a.redeem(gw, &code));
        let (won, lost) = if first.status == 200 { (first, second) } else { (second, first) };
        let t = Tokens::of(&won);
        assert_oauth_error(&lost, 400, "invalid_grant");
        // RFC 6749 §4.1.2: the replay revokes what the code issued, whichever came first.
        assert_token_dead(&t.access).await;
        assert_oauth_error(&refresh("demo-app", &t.refresh, None).await, 400, "invalid_grant");
    }
}

#[tokio::test]
async fn a_refresh_token_used_twice_at_once_rotates_once_and_its_family_is_revoked() {
    let gw = gw().await;
    for _ in 0..5 {
        let (_, t) = tokens_for("demo-cli").await;
        let (first, second) =
            tokio::join!(refresh("demo-cli", &t.refresh, None), refresh("demo-cli", &t.refresh, None));
        let (won, lost) = if first.status == 200 { (first, second) } else { (second, first) };
        let rotated = Tokens::of(&won);
        assert_oauth_error(&lost, 400, "invalid_grant");
        // RFC 9700 §4.14.2: one of the two was a reuse; the whole family goes.
        assert_eq!(gw.introspect("demo-cli", &rotated.access).await, json!({ "active": false }));
        assert_oauth_error(&refresh("demo-cli", &rotated.refresh, None).await, 400, "invalid_grant");
    }
}

#[tokio::test]
async fn unknown_grant_types_are_unsupported_grant_type() {
    let gw = gw().await;
    for grant in ["password", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"] {
        let r = gw.token("demo-app", &[("grant_type", grant), ("username", "x"), ("password", "y")]).await;
        assert_oauth_error(&r, 400, "unsupported_grant_type");
    }
}

#[tokio::test]
async fn refresh_rotates_and_reusing_the_old_token_revokes_the_new_ones() {
    let gw = gw().await;
    let (_, first) = tokens_for("demo-cli").await;
    let first_id = gw.verify_jwt(&first.id, "demo-cli", "RS256").await;

    let second = Tokens::of(&refresh("demo-cli", &first.refresh, None).await);
    assert_ne!(second.refresh, first.refresh, "the refresh token rotates");
    assert_ne!(second.access, first.access);
    let id = gw.verify_jwt(&second.id, "demo-cli", "RS256").await;
    assert_eq!(id["sub"], first_id["sub"]);
    assert_eq!(id["sid"], first_id["sid"]);
    assert_eq!(id["auth_time"], first_id["auth_time"], "OIDC Core §12.2: auth_time of the login");
    assert!(id.get("nonce").is_none(), "a refreshed ID token carries no nonce: {id}");
    assert_eq!(id["at_hash"], at_hash(&second.access).as_str());
    let live = gw.introspect("demo-cli", &second.access).await;
    assert_eq!((live["active"].clone(), live["client_id"].clone()), (json!(true), json!("demo-cli")), "{live}");

    // RFC 9700 §4.14.2: the rotated token comes back — the whole family is revoked.
    assert_oauth_error(&refresh("demo-cli", &first.refresh, None).await, 400, "invalid_grant");
    assert_oauth_error(&refresh("demo-cli", &second.refresh, None).await, 400, "invalid_grant");
    assert_token_dead(&second.access).await;
}

#[tokio::test]
async fn refresh_by_another_client_is_refused_and_leaves_the_token_to_its_client() {
    let (_, t) = tokens_for("demo-app").await;
    assert_oauth_error(&refresh("demo-cli", &t.refresh, None).await, 400, "invalid_grant");
    // RFC 6749 §6: the refresh token is bound to demo-app; another client's attempt fails
    // without spending it.
    Tokens::of(&refresh("demo-app", &t.refresh, None).await);
}

#[tokio::test]
async fn refresh_with_a_wider_scope_is_invalid_scope_and_a_narrower_one_works() {
    let gw = gw().await;
    let (_, t) = tokens_for("demo-app").await;
    let r = refresh("demo-app", &t.refresh, Some("openid profile hospital offline_access admin")).await;
    assert_oauth_error(&r, 400, "invalid_scope");
    // The refused request spent nothing: the same token narrows the scope.
    let narrow = Tokens::of(&refresh("demo-app", &t.refresh, Some("openid")).await);
    assert_eq!(narrow.raw["scope"], "openid");
    let info = gw.userinfo(&narrow.access).await.json();
    assert!(info.get("name").is_none() && info.get("matricule").is_none(), "only the openid scope: {info}");
    // Narrowed once, narrowed for good (RFC 6749 §6: no scope not originally granted).
    let r = refresh("demo-app", &narrow.refresh, Some("openid profile")).await;
    assert_oauth_error(&r, 400, "invalid_scope");
}

#[tokio::test]
async fn userinfo_answers_get_and_post_with_header_or_form_body() {
    let gw = gw().await;
    let (_, t) = tokens_for("demo-app").await;
    let get = gw.userinfo(&t.access).await;
    assert_eq!(get.status, 200, "{}", get.body);
    let claims = get.json();
    let id = jwt_part(&t.id, 1);
    assert_eq!(claims["sub"], id["sub"], "OIDC Core §5.3.2: the ID token's sub");
    assert!(claims["name"].is_string() && claims["matricule"].is_string(), "profile and hospital claims: {claims}");

    let header = gw.http().post(gw.url("/userinfo")).bearer_auth(&t.access).send().await.expect("userinfo");
    let header = Resp::of(header).await;
    assert_eq!((header.status, header.json()), (200, claims.clone()));

    let body = gw.http().post(gw.url("/userinfo")).form(&[("access_token", &t.access)]).send().await.expect("userinfo");
    let body = Resp::of(body).await;
    assert_eq!((body.status, body.json()), (200, claims.clone()));

    // RFC 6750 §2: one method only.
    let both = gw.http().post(gw.url("/userinfo")).bearer_auth(&t.access).form(&[("access_token", &t.access)]);
    let both = Resp::of(both.send().await.expect("userinfo")).await;
    assert_eq!(both.status, 400, "{}", both.body);
    assert_eq!(both.json()["error"], "invalid_request", "RFC 6750 §3.1: {}", both.body);
}

#[tokio::test]
async fn userinfo_refuses_garbage_with_a_bearer_invalid_token_challenge() {
    let gw = gw().await;
    for garbage in ["garbage", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"] {
        let r = gw.userinfo(garbage).await;
        assert_eq!(r.status, 401, "{}", r.body);
        let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
        assert!(challenge.starts_with(INVALID_TOKEN), "{challenge}");
    }
    // No token at all: a challenge without an error code (RFC 6750 §3.1).
    let r = Resp::of(gw.http().get(gw.url("/userinfo")).send().await.expect("userinfo")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(r#"Bearer realm="vigie""#));
}

/// Signs `claims` with the gateway's own private key `kid` (read from its key file), so that
/// a refusal can only come from the claim or header under test.
fn sign_with_gateway_key(gw: &Gateway, kid: &str, header_kid: &str, typ: &str, claims: &Value) -> String {
    let keys = gw.keys_file();
    let key = keys["keys"].as_array().expect("keys").iter().find(|k| k["kid"] == kid).expect("the token's key");
    let pem = key["private_pem"].as_str().expect("private_pem");
    let (enc, alg) = match key["kty"].as_str() {
        Some("EC") => (EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC key"), Algorithm::ES256),
        _ => (EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA key"), Algorithm::RS256),
    };
    let mut h = Header::new(alg);
    h.kid = Some(header_kid.to_owned());
    h.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&h, claims, &enc).expect("signing")
}

#[tokio::test]
async fn userinfo_refuses_forged_access_tokens() {
    let gw = gw().await;
    let (_, t) = tokens_for("demo-app").await;
    let header = jwt_part(&t.access, 0);
    let claims = jwt_part(&t.access, 1);
    let kid = header["kid"].as_str().expect("kid").to_owned();
    let body = t.access.split('.').nth(1).expect("claims part").to_owned();

    // Control: the same claims re-signed with the gateway's key are accepted, so each
    // refusal below is the check under test.
    let control = sign_with_gateway_key(gw, &kid, &kid, "at+jwt", &claims);
    assert_eq!(gw.userinfo(&control).await.status, 200, "the re-signed control token is accepted");

    let mut forged: Vec<(&str, String)> = Vec::new();
    let none = b64(json!({ "alg": "none", "kid": kid, "typ": "at+jwt" }).to_string().as_bytes());
    forged.push(("alg none", format!("{none}.{body}.")));
    // HS256 keyed with the public JWK (as JSON) and with the whole JWK Set: algorithm confusion.
    let jwks: Value = gw.http().get(gw.url("/jwks")).send().await.expect("jwks").json().await.expect("JSON");
    let jwk = jwks["keys"].as_array().expect("keys").iter().find(|k| k["kid"] == kid.as_str()).expect("JWK").clone();
    for secret in [jwk.to_string(), jwks.to_string()] {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.clone());
        h.typ = Some("at+jwt".into());
        forged.push((
            "HS256 with the public key",
            jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(secret.as_bytes())).expect("HS256"),
        ));
    }
    forged.push(("unknown kid", sign_with_gateway_key(gw, &kid, "no-such-kid", "at+jwt", &claims)));
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("https://evil.example");
    forged.push(("wrong iss", sign_with_gateway_key(gw, &kid, &kid, "at+jwt", &wrong_iss)));
    let mut expired = claims.clone();
    expired["exp"] = json!(now() - 5);
    forged.push(("expired", sign_with_gateway_key(gw, &kid, &kid, "at+jwt", &expired)));
    forged.push(("ID token typ", sign_with_gateway_key(gw, &kid, &kid, "JWT", &claims)));
    let mut tampered: Vec<&str> = t.access.split('.').collect();
    let changed = b64(json!({ "sub": "someone-else" }).to_string().as_bytes());
    tampered[1] = &changed;
    forged.push(("payload swapped", tampered.join(".")));

    for (what, token) in forged {
        let r = gw.userinfo(&token).await;
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with(INVALID_TOKEN)), "{what}: {:?}", r.headers);
    }
}

#[tokio::test]
async fn introspection_describes_a_live_token_and_nothing_about_garbage() {
    let gw = gw().await;
    let (_, t) = tokens_for("demo-app").await;
    let id = gw.verify_jwt(&t.id, "demo-app", "ES256").await;
    let i = gw.introspect("demo-app", &t.access).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["client_id"], "demo-app");
    assert_eq!(i["sub"], id["sub"]);
    assert_eq!(i["iss"], gw.issuer.as_str());
    assert_eq!(i["scope"], "openid profile hospital offline_access");
    assert_eq!(i["sid"], id["sid"]);
    // `tokens.access_token_ttl_secs` defaults to 5 minutes (deploy/config/vigie.example.toml).
    let (iat, exp) = (i["iat"].as_i64().expect("iat"), i["exp"].as_i64().expect("exp"));
    assert_eq!(exp - iat, 300, "{i}");
    assert!(iat <= now() && exp > now(), "{i}");

    let r = gw.introspect("demo-app", &t.refresh).await;
    assert_eq!((r["active"].clone(), r["client_id"].clone()), (json!(true), json!("demo-app")), "{r}");

    for garbage in ["garbage", "a.b.c", &random(32)] {
        assert_eq!(gw.introspect("demo-app", garbage).await, json!({ "active": false }), "RFC 7662 §2.2");
    }
}

#[tokio::test]
async fn introspection_by_an_unauthenticated_caller_is_401() {
    let gw = gw().await;
    let (_, t) = tokens_for("demo-app").await;
    let anonymous =
        gw.http().post(gw.url("/introspect")).form(&[("token", &t.access)]).send().await.expect("introspect");
    let anonymous = Resp::of(anonymous).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert!(!anonymous.body.contains("active"));
    let bad = gw.http().post(gw.url("/introspect")).basic_auth("demo-app", Some("wrong")).form(&[("token", &t.access)]);
    assert_eq!(Resp::of(bad.send().await.expect("introspect")).await.status, 401);
    // A public client is no resource server.
    let public = gw.http().post(gw.url("/introspect")).form(&[("token", t.access.as_str()), ("client_id", "demo-spa")]);
    assert_eq!(Resp::of(public.send().await.expect("introspect")).await.status, 401);
}

#[tokio::test]
async fn revoked_refresh_token_cannot_refresh_and_its_access_token_is_inactive() {
    let gw = gw().await;
    let (_, t) = tokens_for("demo-cli").await;
    let r = gw
        .authenticated_post("demo-cli", "/revoke", &[("token", &t.refresh), ("token_type_hint", "refresh_token")])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_oauth_error(&refresh("demo-cli", &t.refresh, None).await, 400, "invalid_grant");
    assert_eq!(gw.introspect("demo-cli", &t.access).await, json!({ "active": false }));
    assert_eq!(gw.userinfo(&t.access).await.status, 401);
    // RFC 7009 §2.2: an invalid token is no error.
    let r = gw.authenticated_post("demo-cli", "/revoke", &[("token", "garbage")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token() {
    let gw = gw().await;
    let (_, t) = tokens_for("demo-app").await;
    for token in [&t.access, &t.refresh] {
        let r = gw.authenticated_post("demo-cli", "/revoke", &[("token", token)]).await;
        // RFC 7009 §2.1: "If this validation fails, the request is refused and the client is
        // informed of the error".
        assert_oauth_error(&r, 400, "unauthorized_client");
    }
    assert_eq!(gw.introspect("demo-app", &t.access).await["active"], true, "RFC 7009 §2.1: not demo-cli's token");
    Tokens::of(&refresh("demo-app", &t.refresh, None).await);
}

/// A refresh token of `refresh`'s family and generation with a made-up secret.
fn made_up(refresh: &str, generation: u32) -> String {
    let family = refresh.split('.').next().expect("family");
    format!("{family}.{generation}.{}", random(32))
}

#[tokio::test]
async fn an_access_token_does_not_tell_its_refresh_family() {
    let (_, t) = tokens_for("demo-spa").await;
    let family = t.refresh.split('.').next().expect("family");
    let claims = jwt_part(&t.access, 1);
    assert!(!claims.to_string().contains(family), "the family id is in the access token: {claims}");
    assert!(claims["gid"].as_str().is_some_and(|g| !g.is_empty()), "a grant handle for revocation: {claims}");
}

#[tokio::test]
async fn a_made_up_secret_for_a_known_family_is_invalid_grant_and_revokes_nothing() {
    let gw = gw().await;
    // A public client: anyone may send its client_id without credentials.
    let (_, t) = tokens_for("demo-spa").await;
    for generation in [0, 1, 7] {
        assert_oauth_error(&refresh("demo-spa", &made_up(&t.refresh, generation), None).await, 400, "invalid_grant");
    }
    // The same through another public client, Vigie's own admin page.
    let forged = made_up(&t.refresh, 0);
    let r = gw.http().post(gw.url("/token")).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", forged.as_str()),
        ("client_id", "vigie-admin"),
    ]);
    assert_oauth_error(&Resp::of(r.send().await.expect("token endpoint")).await, 400, "invalid_grant");
    assert_eq!(gw.userinfo(&t.access).await.status, 200, "the user's access token still works");
    let second = Tokens::of(&refresh("demo-spa", &t.refresh, None).await);
    // A rotated generation with a made-up secret is no reuse either; with its own secret it is.
    assert_oauth_error(&refresh("demo-spa", &made_up(&t.refresh, 0), None).await, 400, "invalid_grant");
    assert_eq!(gw.userinfo(&second.access).await.status, 200, "a made-up old token revoked nothing");
    assert_oauth_error(&refresh("demo-spa", &t.refresh, None).await, 400, "invalid_grant");
    assert_eq!(gw.userinfo(&second.access).await.status, 401, "the reused family is revoked");
}

#[tokio::test]
async fn a_refresh_token_of_another_client_with_a_wrong_secret_revokes_nothing() {
    let (_, t) = tokens_for("demo-app").await;
    assert_oauth_error(&refresh("demo-cli", &made_up(&t.refresh, 0), None).await, 400, "invalid_grant");
    Tokens::of(&refresh("demo-app", &t.refresh, None).await);
}

#[tokio::test]
async fn revoking_a_made_up_refresh_token_of_a_known_family_revokes_nothing() {
    let gw = gw().await;
    let (_, t) = tokens_for("demo-cli").await;
    let r = gw.authenticated_post("demo-cli", "/revoke", &[("token", &made_up(&t.refresh, 0))]).await;
    assert_eq!(r.status, 200, "RFC 7009 §2.2: an invalid token is no error: {}", r.body);
    assert_eq!(gw.introspect("demo-cli", &t.access).await["active"], true);
    Tokens::of(&refresh("demo-cli", &t.refresh, None).await);
}

#[tokio::test]
async fn introspection_describes_an_access_token_to_its_own_client_only() {
    let gw = gw().await;
    let (_, t) = tokens_for("demo-app").await;
    assert_eq!(gw.introspect("demo-cli", &t.access).await, json!({ "active": false }), "RFC 7662 §2.2");
    assert_eq!(gw.introspect("demo-cli", &t.refresh).await, json!({ "active": false }));
    assert_eq!(gw.introspect("demo-app", &t.access).await["active"], true);
}

#[tokio::test]
async fn a_client_assertion_living_longer_than_five_minutes_is_refused() {
    let gw = gw().await;
    let aud = gw.url("/token");
    let now = now();
    for (iat, exp) in [(now, now + 3600), (now - 600, now + 60)] {
        let mut claims = json!({ "iss": "demo-jwt", "sub": "demo-jwt", "aud": aud, "jti": random(16), "exp": exp });
        if iat != now {
            claims["iat"] = json!(iat);
        }
        let assertion = gw.client_assertion_with("demo-jwt", &claims);
        let r = gw.http().post(gw.url("/token")).form(&[
            ("grant_type", "authorization_code"),
            ("code", "abc"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ]);
        let r = Resp::of(r.send().await.expect("token endpoint")).await;
        assert_oauth_error(&r, 401, "invalid_client");
        assert!(r.json()["error_description"].as_str().is_some_and(|d| d.contains("too long")), "{}", r.body);
    }
}

#[tokio::test]
async fn repeated_client_authentication_failures_lock_the_client_and_the_address_out() {
    // A gateway of its own: the lockout would refuse the other tests' clients.
    let gw = Gateway::start(&[]).await;
    let app = gw.client("demo-app");
    let grant = [("grant_type", "authorization_code"), ("code", "abc")];
    for _ in 0..20 {
        let r = gw.http().post(gw.url("/token")).basic_auth("demo-app", Some("wrong")).form(&grant).send().await;
        let r = Resp::of(r.expect("token endpoint")).await;
        assert_oauth_error(&r, 401, "invalid_client");
        assert_eq!(r.header("retry-after"), None);
    }
    // Locked out: even the right secret is not checked, and the answer says when to retry.
    let right = gw.http().post(gw.url("/token")).basic_auth("demo-app", app.secret.as_deref()).form(&grant);
    let r = Resp::of(right.send().await.expect("token endpoint")).await;
    assert_oauth_error(&r, 401, "invalid_client");
    assert_eq!(r.header("retry-after"), Some("60"), "{:?}", r.headers);
    assert_eq!(r.header("www-authenticate"), Some(BASIC_CHALLENGE));
    // The address is locked out for every client.
    let cli = gw.client("demo-cli");
    let other = gw.http().post(gw.url("/token")).form(&[
        grant[0],
        grant[1],
        ("client_id", "demo-cli"),
        ("client_secret", cli.secret.as_deref().unwrap_or_default()),
    ]);
    let r = Resp::of(other.send().await.expect("token endpoint")).await;
    assert_oauth_error(&r, 401, "invalid_client");
    assert_eq!(r.header("retry-after"), Some("60"));
}
