//! The OpenID Connect logout plans: equivalents of the OIDF's RP-initiated logout modules
//! (`oidcc-rp-initiated-logout*`) and back-channel logout (`oidcc-backchannel-rp-initiated-logout`),
//! and `oidcc-claims-essential` (OIDC Core §5.5), run against the live end-session endpoint.
use std::time::Duration;

use anyhow::{Context, ensure};

use crate::agent::{Resp, b64, jwt_part};
use crate::flow::{Authz, Browser, Ctx, Tokens};
use crate::{Module, Verdict};

pub fn modules() -> Vec<Module> {
    // claims-essential first: it belongs to the `oidc` plan, whose modules run together.
    vec![
        module!(
            "oidcc-claims-essential",
            "oidc",
            "OpenID Connect Core 1.0 §5.5, §5.5.1.1; OIDC Unmet Authentication Requirements 1.0 §2",
            "The claims request parameter with essential claims",
            "Le paramètre claims avec des claims essentielles",
            "an essential name in userinfo and an essential acr the session meets are returned; an essential acr the provider does not offer fails the request (an error, no code)",
            "un name essentiel dans userinfo et un acr essentiel que la session atteint sont rendus ; un acr essentiel que le fournisseur n'offre pas fait échouer la requête (une erreur, pas de code)",
            claims_essential
        ),
        module!(
            "oidcc-rp-initiated-logout",
            "oidc-logout",
            "OpenID Connect RP-Initiated Logout 1.0 §2, §3",
            "RP-initiated logout ends the session",
            "La déconnexion initiée par le client met fin à la session",
            "with its session's id_token_hint, a registered post_logout_redirect_uri and a state: a redirect there with the state unchanged; afterwards prompt=none answers login_required and the session's access token is refused",
            "avec l'id_token_hint de sa session, une post_logout_redirect_uri enregistrée et un state : une redirection vers elle avec le state inchangé ; ensuite prompt=none répond login_required et le jeton d'accès de la session est refusé",
            rp_initiated
        ),
        module!(
            "oidcc-rp-initiated-logout-bad-id-token-hint",
            "oidc-logout",
            "OpenID Connect RP-Initiated Logout 1.0 §2 (id_token_hint); OIDC Core §3.1.3.7",
            "Logout with an id_token_hint whose signature is broken",
            "Déconnexion avec un id_token_hint à la signature cassée",
            "an error shown to the user, no redirect to the post_logout_redirect_uri",
            "une erreur montrée à l'utilisateur, pas de redirection vers la post_logout_redirect_uri",
            bad_hint
        ),
        module!(
            "oidcc-rp-initiated-logout-modified-id-token-hint",
            "oidc-logout",
            "OpenID Connect RP-Initiated Logout 1.0 §2 (id_token_hint); RFC 7515 §5.2",
            "Logout with an id_token_hint whose claims were modified",
            "Déconnexion avec un id_token_hint aux claims modifiées",
            "an error shown to the user (the signature no longer matches), no redirect to the post_logout_redirect_uri",
            "une erreur montrée à l'utilisateur (la signature ne correspond plus), pas de redirection vers la post_logout_redirect_uri",
            modified_hint
        ),
        module!(
            "oidcc-rp-initiated-logout-bad-post-logout-redirect-uri",
            "oidc-logout",
            "OpenID Connect RP-Initiated Logout 1.0 §3 (MUST have been previously registered)",
            "Logout to an unregistered post_logout_redirect_uri",
            "Déconnexion vers une post_logout_redirect_uri non enregistrée",
            "an error shown to the user, never a redirect to the unregistered URI (no open redirect)",
            "une erreur montrée à l'utilisateur, jamais de redirection vers l'URI non enregistrée (pas de redirection ouverte)",
            bad_post_logout_uri
        ),
        module!(
            "oidcc-rp-initiated-logout-no-state",
            "oidc-logout",
            "OpenID Connect RP-Initiated Logout 1.0 §2 (state), §3",
            "RP-initiated logout without a state",
            "Déconnexion initiée par le client sans state",
            "a redirect to the registered post_logout_redirect_uri that carries no state (none was sent)",
            "une redirection vers la post_logout_redirect_uri enregistrée sans state (aucun n'a été envoyé)",
            no_state
        ),
        module!(
            "oidcc-backchannel-rp-initiated-logout",
            "oidc-logout",
            "OpenID Connect Back-Channel Logout 1.0 §2.4, §2.5, §2.6",
            "Back-channel logout token delivered on logout",
            "Jeton de déconnexion back-channel remis à la déconnexion",
            "a POST of a form-encoded logout_token to the client's backchannel_logout_uri, signed by a key of the JWKS, typ logout+jwt, with iss, aud, iat, jti, the back-channel event, the session's sid, and no nonce",
            "un POST d'un logout_token (formulaire) vers la backchannel_logout_uri du client, signé par une clé du JWKS, typ logout+jwt, avec iss, aud, iat, jti, l'événement back-channel, le sid de la session, sans nonce",
            backchannel
        ),
    ]
}

/// The end-session endpoint's URL with `params`.
fn logout_url(c: &Ctx, params: &[(&str, &str)]) -> anyhow::Result<String> {
    let mut u = url::Url::parse(&c.agent.url("/logout"))?;
    u.query_pairs_mut().extend_pairs(params.iter());
    Ok(u.to_string())
}

/// The RP client's registered post-logout URI, or why the logout modules do not apply.
fn post_logout(c: &Ctx) -> Result<String, Verdict> {
    c.rp()
        .post_logout_redirect_uri
        .clone()
        .ok_or_else(|| Verdict::NotApplicable("the RP client has no post_logout_redirect_uri in the profile".into()))
}

/// A logout request as the browser sends it; a confirmation page (RP-Initiated Logout §2: a
/// request the OP does not trust is confirmed by the user) is confirmed as a user would.
async fn end_session(b: &mut Browser, url: &str) -> anyhow::Result<Resp> {
    let r = b.get(url).await?;
    match r.hidden("confirm") {
        Some(token) if r.status == 200 => b.post_form("/logout", &[("confirm", &token)]).await,
        _ => Ok(r),
    }
}

/// Fails if `r` took the browser to `uri`; else requires the error page the user reads.
fn refused_logout(r: &Resp, uri: &str, what: &str) -> anyhow::Result<()> {
    ensure!(!r.location().starts_with(uri), "{what} was followed by a redirect to {}", r.location());
    ensure!(r.status == 400, "{what} was answered {} (expected an error page, 400)", r.status);
    Ok(())
}

/// A new session of its own (the run's shared one stays alive for the other modules).
async fn own_session(c: &Ctx) -> anyhow::Result<(Browser, Tokens)> {
    let mut b = c.browser();
    let a = Authz::new(c.rp());
    let p = b.sign_in(&a, &c.profile.users).await?;
    let t = Tokens::of(&c.redeem(&a, &p["code"]).await?)?;
    Ok((b, t))
}

async fn rp_initiated(c: &Ctx) -> anyhow::Result<Verdict> {
    let uri = match post_logout(c) {
        Ok(u) => u,
        Err(v) => return Ok(v),
    };
    let (mut b, t) = own_session(c).await?;
    let state = crate::agent::random(12);
    let url = logout_url(c, &[("id_token_hint", &t.id), ("post_logout_redirect_uri", &uri), ("state", &state)])?;
    let r = end_session(&mut b, &url).await?;
    ensure!(
        r.location().starts_with(&uri),
        "logout did not redirect to the registered post_logout_redirect_uri: {} {}",
        r.status,
        r.location()
    );
    ensure!(
        r.redirect_params().get("state") == Some(&state),
        "the state did not come back unchanged to the post_logout_redirect_uri (§3)"
    );
    let a = Authz::new(c.rp()).with("prompt", "none");
    let after = b.get(&a.url(&c.agent)).await?;
    let p = after.redirect_params();
    ensure!(
        !p.contains_key("code") && p.get("error").map(String::as_str) == Some("login_required"),
        "after logout, prompt=none with the same browser was answered {} {} (the session lives on)",
        after.status,
        after.location()
    );
    // The session's tokens go with it.
    ensure!(c.access_token_refused(&t.access).await?, "after logout, the session's access token still opens userinfo");
    Ok(Verdict::Pass)
}

/// The run's ID token with part `i` (0 header, 1 claims, 2 signature) replaced by `f`'s.
async fn altered_hint(c: &Ctx, f: impl Fn(&str) -> String) -> anyhow::Result<String> {
    let (_, t, _) = c.first_login().await?;
    let parts: Vec<&str> = t.id.split('.').collect();
    ensure!(parts.len() == 3, "the ID token is not a JWS in compact form (RFC 7515 §7.1)");
    Ok(f(&t.id))
}

async fn bad_hint(c: &Ctx) -> anyhow::Result<Verdict> {
    let uri = match post_logout(c) {
        Ok(u) => u,
        Err(v) => return Ok(v),
    };
    let hint = altered_hint(c, |t| {
        // A character in the middle of the signature: its bytes change (the last character may
        // hold only padding bits).
        let sig_at = t.rfind('.').unwrap_or(0) + 1;
        let mid = sig_at + (t.len() - sig_at) / 2;
        let swapped = if &t[mid..=mid] == "A" { "B" } else { "A" };
        format!("{}{swapped}{}", &t[..mid], &t[mid + 1..])
    })
    .await?;
    let url = logout_url(c, &[("id_token_hint", &hint), ("post_logout_redirect_uri", &uri), ("state", "s")])?;
    refused_logout(&c.browser().get(&url).await?, &uri, "an id_token_hint with a broken signature")?;
    Ok(Verdict::Pass)
}

async fn modified_hint(c: &Ctx) -> anyhow::Result<Verdict> {
    let uri = match post_logout(c) {
        Ok(u) => u,
        Err(v) => return Ok(v),
    };
    let hint = altered_hint(c, |t| {
        let mut claims = jwt_part(t, 1);
        claims["sub"] = format!("{}-modified", claims["sub"].as_str().unwrap_or_default()).into();
        let p: Vec<&str> = t.split('.').collect();
        format!("{}.{}.{}", p[0], b64(claims.to_string().as_bytes()), p[2])
    })
    .await?;
    let url = logout_url(c, &[("id_token_hint", &hint), ("post_logout_redirect_uri", &uri), ("state", "s")])?;
    refused_logout(&c.browser().get(&url).await?, &uri, "an id_token_hint with modified claims")?;
    Ok(Verdict::Pass)
}

async fn bad_post_logout_uri(c: &Ctx) -> anyhow::Result<Verdict> {
    let (_, t, _) = c.first_login().await?;
    let evil = "https://attacker.example/logged-out";
    let url = logout_url(c, &[("id_token_hint", &t.id), ("post_logout_redirect_uri", evil), ("state", "s")])?;
    refused_logout(&c.browser().get(&url).await?, evil, "an unregistered post_logout_redirect_uri")?;
    Ok(Verdict::Pass)
}

async fn no_state(c: &Ctx) -> anyhow::Result<Verdict> {
    let uri = match post_logout(c) {
        Ok(u) => u,
        Err(v) => return Ok(v),
    };
    let (mut b, t) = own_session(c).await?;
    let url = logout_url(c, &[("id_token_hint", &t.id), ("post_logout_redirect_uri", &uri)])?;
    let r = end_session(&mut b, &url).await?;
    ensure!(r.location().starts_with(&uri), "logout without a state did not redirect: {} {}", r.status, r.location());
    ensure!(
        !r.redirect_params().contains_key("state"),
        "a state came back though none was sent: {:?}",
        r.redirect_params().get("state")
    );
    Ok(Verdict::Pass)
}

async fn backchannel(c: &Ctx) -> anyhow::Result<Verdict> {
    let d = c.discovery().await?;
    if d["backchannel_logout_supported"] != true {
        return Ok(Verdict::NotApplicable(
            "the discovery document does not announce backchannel_logout_supported (Back-Channel Logout §2.1)".into(),
        ));
    }
    let Some(client) = c.profile.clients.iter().find(|cl| cl.backchannel_logout_listen.is_some()).cloned() else {
        return Ok(Verdict::NotApplicable(
            "no client of the profile has backchannel_logout_listen (the address where the kit receives the POSTs to that client's registered backchannel_logout_uri); the demo's back-channel client, demo-app, delivers to its own page inside the gateway, where the kit cannot listen".into(),
        ));
    };
    let listen = client.backchannel_logout_listen.clone().unwrap_or_default();
    let receiver = crate::backchannel::Receiver::bind(&listen).await?;
    let mut b = c.browser();
    let a = Authz::new(&client);
    let p = b.sign_in(&a, &c.profile.users).await?;
    let t = Tokens::of(&c.redeem(&a, &p["code"]).await?)?;
    let sid = jwt_part(&t.id, 1)["sid"].as_str().map(str::to_owned);
    let mut params = vec![("id_token_hint", t.id.clone())];
    if let Some(u) = &client.post_logout_redirect_uri {
        params.push(("post_logout_redirect_uri", u.clone()));
    }
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    end_session(&mut b, &logout_url(c, &pairs)?).await?;
    let token = receiver.logout_token(Duration::from_secs(10)).await.context(
        "no logout token reached the backchannel_logout_uri within 10 s after logout (Back-Channel Logout §2.5)",
    )?;
    c.agent.note("logout token header", jwt_part(&token, 0).to_string());
    c.agent.note("logout token claims", jwt_part(&token, 1).to_string());
    let claims = crate::oidc::verify_jwt(c, &token, &client.id).await?;
    crate::backchannel::check_claims(&jwt_part(&token, 0), &claims, &c.agent.issuer, &client.id, sid.as_deref())?;
    Ok(Verdict::Pass)
}

async fn claims_essential(c: &Ctx) -> anyhow::Result<Verdict> {
    let (_, first, _) = c.first_login().await?;
    let Some(acr) = jwt_part(&first.id, 1)["acr"].as_str().map(str::to_owned) else {
        return Ok(Verdict::NotApplicable("the run's ID token carries no acr to ask for as essential".into()));
    };
    let claims = serde_json::json!({
        "userinfo": {"name": {"essential": true}},
        "id_token": {"acr": {"essential": true, "values": [acr]}},
    });
    let a = Authz::new(c.rp()).with("claims", &claims.to_string());
    let code = c.sso_code(&a).await?;
    let t = Tokens::of(&c.redeem(&a, &code).await?)?;
    let got = jwt_part(&t.id, 1)["acr"].clone();
    ensure!(got == acr.as_str(), "the essential acr {acr} was asked, the ID token says {got}");
    let u = c.userinfo_get(&t.access).await?;
    ensure!(u.status == 200, "userinfo answered {}", u.status);
    ensure!(u.json()["name"].is_string(), "the essential claim name is not in userinfo (Core §5.5.1)");

    let unknown =
        serde_json::json!({"id_token": {"acr": {"essential": true, "values": ["urn:vigie:conformance:no-such-acr"]}}});
    let a = Authz::new(c.rp()).with("claims", &unknown.to_string());
    let (mut b, _, _) = c.first_login().await?;
    let r = b.get(&a.url(&c.agent)).await?;
    let p = r.redirect_params();
    ensure!(!p.contains_key("code"), "an essential acr the provider does not offer still got a code (Core §5.5.1.1)");
    ensure!(
        r.location().starts_with(&a.client.redirect_uri) && p.contains_key("error"),
        "an essential acr the provider does not offer was answered {} {}, not an error to the client",
        r.status,
        r.location()
    );
    Ok(Verdict::Pass)
}
