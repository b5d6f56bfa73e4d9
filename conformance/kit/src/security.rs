//! RFC 9700 (OAuth 2.0 Security Best Current Practice) checks, as attacks on the live target.
use anyhow::ensure;

use crate::agent::b64;
use crate::flow::{Authz, Ctx, Tokens};
use crate::{Module, Verdict};

pub fn modules() -> Vec<Module> {
    vec![
        module!(
            "rfc9700-pkce-downgrade",
            "security",
            "RFC 9700 §2.1.1, §4.8.2; RFC 7636 §4.4.1",
            "PKCE downgrade refused",
            "Rétrogradation PKCE refusée",
            "an authorization request without code_challenge, or with method plain, refused; a PKCE code redeemed without code_verifier refused",
            "une requête d'autorisation sans code_challenge, ou en méthode plain, refusée ; un code PKCE présenté sans code_verifier refusé",
            pkce_downgrade
        ),
        module!(
            "rfc9207-iss-in-authorization-response",
            "security",
            "RFC 9207 §2; RFC 9700 §4.4.2 (mix-up)",
            "iss in the authorization response",
            "iss dans la réponse d'autorisation",
            "the redirect carrying the code also carries iss equal to the issuer",
            "la redirection portant le code porte aussi iss égal à l'émetteur",
            iss_in_response
        ),
        module!(
            "rfc9700-refresh-token-replay",
            "security",
            "RFC 9700 §4.14.2",
            "Refresh token replay revokes the family",
            "Le rejeu d'un refresh token révoque la famille",
            "the replayed old refresh token refused, and the new one refused too afterwards",
            "l'ancien refresh token rejoué refusé, et le nouveau refusé ensuite",
            refresh_replay
        ),
        module!(
            "rfc9700-alg-none-id-token-hint",
            "security",
            "RFC 9700 §4.1; RFC 8725 §3.1; OpenID Connect RP-Initiated Logout §2",
            "Unsigned (alg=none) id_token_hint refused at logout",
            "id_token_hint non signé (alg=none) refusé à la déconnexion",
            "no redirect to the post_logout_redirect_uri on an unsigned hint",
            "pas de redirection vers post_logout_redirect_uri sur un indice non signé",
            alg_none_hint
        ),
        module!(
            "rfc9700-clickjacking-and-cookies",
            "security",
            "RFC 9700 §4.16; RFC 6265 §4.1.2.5-6; RFC 6265bis SameSite",
            "Clickjacking headers and cookie flags on the login page",
            "En-têtes anti-clickjacking et attributs des cookies de la page de connexion",
            "X-Frame-Options DENY or CSP frame-ancestors 'none'; every cookie Secure, HttpOnly and SameSite",
            "X-Frame-Options DENY ou CSP frame-ancestors 'none' ; chaque cookie Secure, HttpOnly et SameSite",
            clickjacking_and_cookies
        ),
    ]
}

async fn pkce_downgrade(c: &Ctx) -> anyhow::Result<Verdict> {
    for (what, a) in [
        ("without code_challenge", Authz::new(c.rp()).without("code_challenge").without("code_challenge_method")),
        ("with code_challenge_method=plain", {
            let a = Authz::new(c.rp());
            let v = a.verifier.clone();
            a.with("code_challenge", &v).with("code_challenge_method", "plain")
        }),
    ] {
        let (mut b, _, _) = c.first_login().await?;
        let r = b.get(&a.url(&c.agent)).await?;
        let p = r.redirect_params();
        ensure!(!p.contains_key("code"), "an authorization request {what} got a code (PKCE not enforced)");
    }
    let a = Authz::new(c.rp());
    let code = c.sso_code(&a).await?;
    let rp = c.rp().clone();
    let r = c
        .token(&rp, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &a.client.redirect_uri)])
        .await?;
    ensure!(r.status == 400, "a PKCE code redeemed without code_verifier was answered {}", r.status);
    Ok(Verdict::Pass)
}

async fn iss_in_response(c: &Ctx) -> anyhow::Result<Verdict> {
    let a = Authz::new(c.rp());
    let (mut b, _, _) = c.first_login().await?;
    let r = b.get(&a.url(&c.agent)).await?;
    let p = r.redirect_params();
    ensure!(p.contains_key("code"), "no code in the SSO answer: {}", r.status);
    ensure!(
        p.get("iss").map(String::as_str) == Some(c.agent.issuer.as_str()),
        "iss in the authorization response is {:?}, not {}",
        p.get("iss"),
        c.agent.issuer
    );
    let d = c.discovery().await?;
    ensure!(
        d["authorization_response_iss_parameter_supported"] == true,
        "discovery does not announce authorization_response_iss_parameter_supported (RFC 9207 §3)"
    );
    Ok(Verdict::Pass)
}

async fn refresh_replay(c: &Ctx) -> anyhow::Result<Verdict> {
    let (_, _, t) = c.sso_tokens().await?;
    let Some(old) = t.refresh else {
        return Ok(Verdict::NotApplicable("no refresh token issued to the RP client".into()));
    };
    let rp = c.rp().clone();
    let t2 = Tokens::of(&c.token(&rp, &[("grant_type", "refresh_token"), ("refresh_token", &old)]).await?)?;
    let replay = c.token(&rp, &[("grant_type", "refresh_token"), ("refresh_token", &old)]).await?;
    ensure!(replay.status == 400, "the replayed refresh token was answered {}", replay.status);
    let new = t2.refresh.unwrap_or_default();
    let after = c.token(&rp, &[("grant_type", "refresh_token"), ("refresh_token", &new)]).await?;
    ensure!(after.status == 400, "after a replay, the family's newest refresh token still works ({})", after.status);
    Ok(Verdict::Pass)
}

async fn alg_none_hint(c: &Ctx) -> anyhow::Result<Verdict> {
    let rp = c.rp().clone();
    let Some(post_logout) = rp.post_logout_redirect_uri.clone() else {
        return Ok(Verdict::NotApplicable("the RP client has no post_logout_redirect_uri in the profile".into()));
    };
    let (_, t, _) = c.first_login().await?;
    let claims = crate::agent::jwt_part(&t.id, 1);
    let forged = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims.to_string().as_bytes()));
    let mut u = url::Url::parse(&c.agent.url("/logout"))?;
    u.query_pairs_mut()
        .append_pair("id_token_hint", &forged)
        .append_pair("post_logout_redirect_uri", &post_logout)
        .append_pair("state", "s");
    let r = c.browser().get(u.as_str()).await?;
    ensure!(
        !r.location().starts_with(&post_logout),
        "an unsigned id_token_hint was trusted: redirected to {}",
        r.location()
    );
    Ok(Verdict::Pass)
}

async fn clickjacking_and_cookies(c: &Ctx) -> anyhow::Result<Verdict> {
    let a = Authz::new(c.rp());
    let mut b = c.browser();
    let r = b.get(&a.url(&c.agent)).await?;
    let mut cookies = r.set_cookies();
    let page = b.get(&r.location()).await?;
    cookies.extend(page.set_cookies());
    let xfo = page.header("x-frame-options").unwrap_or_default().to_ascii_uppercase();
    let csp = page.header("content-security-policy").unwrap_or_default();
    ensure!(
        xfo == "DENY" || csp.contains("frame-ancestors 'none'"),
        "the login page can be framed: X-Frame-Options {xfo:?}, CSP {csp:?}"
    );
    ensure!(!cookies.is_empty(), "the login set no cookie to check");
    for ck in cookies {
        let l = ck.to_ascii_lowercase();
        let name = ck.split('=').next().unwrap_or_default();
        ensure!(
            l.contains("; secure") && l.contains("; httponly") && l.contains("samesite="),
            "cookie {name} lacks Secure, HttpOnly or SameSite"
        );
    }
    Ok(Verdict::Pass)
}
