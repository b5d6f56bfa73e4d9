//! The OpenID Connect provider plan: equivalents of the OpenID Foundation's `oidcc-*` test
//! modules (basic and config plans), each named as the OIDF names it.
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, ensure};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;

use crate::agent::jwt_part;
use crate::flow::{Authz, Ctx, Tokens, code_of, refused_with};
use crate::{Module, Verdict};

pub fn modules() -> Vec<Module> {
    vec![
        module!(
            "oidcc-discovery",
            "oidc",
            "OpenID Connect Discovery 1.0 §3, §4.3",
            "Discovery document lists the required metadata",
            "Le document de découverte donne les métadonnées requises",
            "issuer equal to the target, the endpoints, jwks_uri, response_types_supported with code, subject_types_supported, id_token_signing_alg_values_supported without none, code_challenge_methods_supported with S256",
            "issuer égal à la cible, les points d'accès, jwks_uri, response_types_supported avec code, subject_types_supported, id_token_signing_alg_values_supported sans none, code_challenge_methods_supported avec S256",
            discovery
        ),
        module!(
            "oidcc-server",
            "oidc",
            "OpenID Connect Core 1.0 §3.1; RFC 7636 §4",
            "Code flow with PKCE, end to end (login with password + TOTP)",
            "Flux code avec PKCE de bout en bout (connexion mot de passe + TOTP)",
            "a code in the redirect with the same state, tokens from the token endpoint, an ID token for this client with the request's nonce",
            "un code dans la redirection avec le même state, des jetons au point d'accès token, un jeton d'identité pour ce client avec le nonce de la requête",
            server
        ),
        module!(
            "oidcc-idtoken-signature",
            "oidc",
            "OpenID Connect Core 1.0 §3.1.3.7, §10.1; RFC 7517",
            "ID token signed with a key of the JWKS",
            "Jeton d'identité signé par une clé du JWKS",
            "alg announced in discovery (not none), a kid found in jwks_uri, a signature that verifies with that key, iss/aud/exp valid",
            "alg annoncé par la découverte (pas none), un kid présent dans jwks_uri, une signature vérifiée par cette clé, iss/aud/exp valides",
            idtoken_signature
        ),
        module!(
            "oidcc-userinfo-get",
            "oidc",
            "OpenID Connect Core 1.0 §5.3.1; RFC 6750 §2.1",
            "UserInfo with the access token in the Authorization header",
            "UserInfo avec le jeton d'accès dans l'en-tête Authorization",
            "200 with a sub equal to the ID token's sub",
            "200 avec un sub égal à celui du jeton d'identité",
            userinfo_get
        ),
        module!(
            "oidcc-userinfo-post-body",
            "oidc",
            "OpenID Connect Core 1.0 §5.3.1; RFC 6750 §2.2",
            "UserInfo with the access token in a form body",
            "UserInfo avec le jeton d'accès dans le corps du formulaire",
            "200 with the same sub",
            "200 avec le même sub",
            userinfo_post_body
        ),
        module!(
            "oidcc-prompt-none-not-logged-in",
            "oidc",
            "OpenID Connect Core 1.0 §3.1.2.1 (prompt=none), §3.1.2.6",
            "prompt=none without a session",
            "prompt=none sans session",
            "a redirect to the client with error=login_required (or interaction_required) and the state, no login page",
            "une redirection vers le client avec error=login_required (ou interaction_required) et le state, pas de page de connexion",
            prompt_none_not_logged_in
        ),
        module!(
            "oidcc-max-age-1",
            "oidc",
            "OpenID Connect Core 1.0 §3.1.2.1 (max_age), §2 (auth_time)",
            "max_age=1 with a session older than a second",
            "max_age=1 avec une session de plus d'une seconde",
            "the user is asked to log in again and the new ID token's auth_time is later than the first",
            "l'utilisateur doit se reconnecter et le nouvel auth_time est postérieur au premier",
            max_age_1
        ),
        module!(
            "oidcc-codereuse-30seconds",
            "oidc",
            "RFC 6749 §4.1.2, §10.5; OpenID Connect Core 1.0 §3.1.3.2",
            "An authorization code used twice",
            "Un code d'autorisation utilisé deux fois",
            "the second use refused (invalid_grant) and the access token of the first use revoked",
            "la seconde utilisation refusée (invalid_grant) et le jeton d'accès de la première révoqué",
            codereuse
        ),
        module!(
            "oidcc-ensure-registered-redirect-uri",
            "oidc",
            "OpenID Connect Core 1.0 §3.1.2.1, §3.1.2.6; RFC 6749 §4.1.2.1",
            "An unregistered redirect_uri",
            "Une redirect_uri non enregistrée",
            "an error shown to the user, never a redirect to the unregistered URI",
            "une erreur montrée à l'utilisateur, jamais de redirection vers l'URI non enregistrée",
            registered_redirect_uri
        ),
        module!(
            "oidcc-refresh-token",
            "oidc",
            "OpenID Connect Core 1.0 §12; RFC 6749 §6",
            "Refresh token grant",
            "Renouvellement par refresh token",
            "new tokens, an ID token with the same sub, a rotated refresh token",
            "de nouveaux jetons, un jeton d'identité avec le même sub, un refresh token renouvelé",
            refresh_token
        ),
        module!(
            "oidcc-ensure-request-with-valid-pkce-succeeds",
            "oidc",
            "RFC 7636 §4.5, §4.6",
            "PKCE: the right verifier succeeds, a wrong one fails",
            "PKCE : le bon vérificateur réussit, un mauvais échoue",
            "a code redeemed with a wrong code_verifier refused (invalid_grant); with the right one, tokens",
            "un code présenté avec un mauvais code_verifier refusé (invalid_grant) ; avec le bon, des jetons",
            valid_pkce
        ),
    ]
}

async fn discovery(c: &Ctx) -> anyhow::Result<Verdict> {
    let d = c.discovery().await?;
    ensure!(
        d["issuer"] == c.agent.issuer.as_str(),
        "issuer is {} but the target is {} (Discovery §4.3)",
        d["issuer"],
        c.agent.issuer
    );
    for k in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ] {
        ensure!(!d[k].is_null(), "the discovery document lacks {k} (Discovery §3)");
    }
    let has = |k: &str, v: &str| d[k].as_array().is_some_and(|a| a.iter().any(|x| x == v));
    ensure!(has("response_types_supported", "code"), "response_types_supported lacks code");
    ensure!(!has("id_token_signing_alg_values_supported", "none"), "id_token_signing_alg_values_supported offers none");
    ensure!(
        has("code_challenge_methods_supported", "S256"),
        "code_challenge_methods_supported lacks S256 (RFC 8414 §2)"
    );
    Ok(Verdict::Pass)
}

async fn server(c: &Ctx) -> anyhow::Result<Verdict> {
    let (_, t, a) = c.first_login().await?;
    let claims = jwt_part(&t.id, 1);
    ensure!(claims["nonce"] == a.nonce.as_str(), "the ID token's nonce is not the request's (Core §3.1.3.7 11)");
    ensure!(
        claims["aud"] == a.client.id.as_str()
            || claims["aud"].as_array().is_some_and(|x| x.iter().any(|v| v == a.client.id.as_str())),
        "the ID token's aud is not the client"
    );
    ensure!(claims["sub"].is_string(), "the ID token has no sub");
    c.agent.note("ID token claims", claims.to_string());
    Ok(Verdict::Pass)
}

/// Verifies an ID token's signature with the target's JWKS; returns its claims.
async fn verify_id_token(c: &Ctx, token: &str, client_id: &str) -> anyhow::Result<Value> {
    c.agent.note("ID token header", jwt_part(token, 0).to_string());
    verify_jwt(c, token, client_id).await
}

/// Verifies a JWT the target signed (an ID token, a logout token) with a key of its JWKS, its
/// `iss`, `aud` and `exp`; returns its claims.
pub async fn verify_jwt(c: &Ctx, token: &str, client_id: &str) -> anyhow::Result<Value> {
    let header = jwt_part(token, 0);
    let alg = header["alg"].as_str().context("the token's header has no alg")?;
    ensure!(alg != "none", "the token is unsigned (alg none)");
    let kid = header["kid"].as_str().context("the token's header has no kid")?;
    let d = c.discovery().await?;
    ensure!(
        d["id_token_signing_alg_values_supported"].as_array().is_some_and(|a| a.iter().any(|x| x == alg)),
        "alg {alg} is not announced in discovery"
    );
    let jwks_uri = d["jwks_uri"].as_str().context("no jwks_uri")?;
    let r = c.agent.send(c.agent.get(jwks_uri), None).await?;
    let set: JwkSet = serde_json::from_str(&r.body).context("jwks_uri does not answer a JWK Set (RFC 7517 §5)")?;
    let jwk = set.find(kid).with_context(|| format!("no key with kid {kid} in the JWKS"))?;
    let mut v = Validation::new(Algorithm::from_str(alg).with_context(|| format!("unknown alg {alg}"))?);
    v.set_audience(&[client_id]);
    v.set_issuer(&[c.agent.issuer.as_str()]);
    let data = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &v)
        .context("the token's signature or claims do not verify with the JWKS key")?;
    Ok(data.claims)
}

async fn idtoken_signature(c: &Ctx) -> anyhow::Result<Verdict> {
    let (_, t, a) = c.first_login().await?;
    verify_id_token(c, &t.id, &a.client.id).await?;
    Ok(Verdict::Pass)
}

async fn userinfo_get(c: &Ctx) -> anyhow::Result<Verdict> {
    let (_, t, _) = c.first_login().await?;
    let r = c.userinfo_get(&t.access).await?;
    ensure!(r.status == 200, "userinfo answered {}", r.status);
    ensure!(r.json()["sub"] == jwt_part(&t.id, 1)["sub"], "userinfo's sub differs from the ID token's (Core §5.3.2)");
    Ok(Verdict::Pass)
}

async fn userinfo_post_body(c: &Ctx) -> anyhow::Result<Verdict> {
    let (_, t, _) = c.first_login().await?;
    let r = c.agent.send(c.agent.post("/userinfo"), Some(&[("access_token", &t.access)])).await?;
    ensure!(r.status == 200, "userinfo by POST body answered {}", r.status);
    ensure!(r.json()["sub"] == jwt_part(&t.id, 1)["sub"], "userinfo's sub differs from the ID token's");
    Ok(Verdict::Pass)
}

async fn prompt_none_not_logged_in(c: &Ctx) -> anyhow::Result<Verdict> {
    let a = Authz::new(c.rp()).with("prompt", "none");
    let r = c.browser().get(&a.url(&c.agent)).await?;
    ensure!(
        r.location().starts_with(&a.client.redirect_uri),
        "prompt=none without a session did not answer the client but {} {}",
        r.status,
        r.location()
    );
    let p = r.redirect_params();
    ensure!(
        matches!(p.get("error").map(String::as_str), Some("login_required" | "interaction_required")),
        "error is {:?}, not login_required",
        p.get("error")
    );
    ensure!(p.get("state") == Some(&a.state), "the state did not come back");
    Ok(Verdict::Pass)
}

async fn max_age_1(c: &Ctx) -> anyhow::Result<Verdict> {
    let (mut b, t, _) = c.first_login().await?;
    let first_auth = jwt_part(&t.id, 1)["auth_time"].as_i64().context("the first ID token has no auth_time")?;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let a = Authz::new(c.rp()).with("max_age", "1");
    let r = b.get(&a.url(&c.agent)).await?;
    ensure!(
        r.location().contains("/login?flow="),
        "max_age=1 with an older session did not ask to log in again: {} {}",
        r.status,
        r.location()
    );
    let done = b.submit_fresh(&r.location(), &c.profile.users).await?;
    c.keep_session(&b).await;
    let p = code_of(&done, &a)?;
    let t2 = Tokens::of(&c.redeem(&a, &p["code"]).await?)?;
    let second = jwt_part(&t2.id, 1)["auth_time"]
        .as_i64()
        .context("an ID token asked with max_age has no auth_time (Core §2)")?;
    ensure!(second > first_auth, "auth_time {second} is not later than the first login's {first_auth}");
    Ok(Verdict::Pass)
}

async fn codereuse(c: &Ctx) -> anyhow::Result<Verdict> {
    let (a, code, t) = c.sso_tokens().await?;
    refused_with(&c.redeem(&a, &code).await?, "invalid_grant", "a code used twice")?;
    // RFC 6749 §4.1.2: "SHOULD revoke (when possible) all tokens previously issued based on that code".
    ensure!(
        c.access_token_refused(&t.access).await?,
        "the access token of the code's first use still works after the code was replayed"
    );
    Ok(Verdict::Pass)
}

async fn registered_redirect_uri(c: &Ctx) -> anyhow::Result<Verdict> {
    let evil = "https://attacker.example/callback";
    let a = Authz::new(c.rp()).with("redirect_uri", evil);
    let r = c.browser().get(&a.url(&c.agent)).await?;
    ensure!(!r.location().starts_with(evil), "the target redirected to an unregistered redirect_uri");
    ensure!(r.status == 400, "an unregistered redirect_uri was answered {} (expected an error page, 400)", r.status);
    Ok(Verdict::Pass)
}

async fn refresh_token(c: &Ctx) -> anyhow::Result<Verdict> {
    let (_, _, t) = c.sso_tokens().await?;
    let Some(refresh) = t.refresh.clone() else {
        return Ok(Verdict::NotApplicable("no refresh token issued to the RP client for scope offline_access".into()));
    };
    let rp = c.rp().clone();
    let t2 = Tokens::of(&c.token(&rp, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await?)?;
    refreshed(&t, &t2)?;
    Ok(Verdict::Pass)
}

/// What a refresh grant's answer `after` must be, given the tokens `before` whose refresh token
/// it redeemed: the same subject, a new access token, a rotated refresh token.
fn refreshed(before: &Tokens, after: &Tokens) -> anyhow::Result<()> {
    ensure!(
        jwt_part(&after.id, 1)["sub"] == jwt_part(&before.id, 1)["sub"],
        "the refreshed ID token's sub changed (Core §12.2)"
    );
    // RFC 6749 §6: the grant issues an access token (§5.1); the one issued before is no answer.
    ensure!(after.access != before.access, "the refresh grant answered the access token issued before (RFC 6749 §6)");
    ensure!(
        after.refresh.as_ref().is_some_and(|r| Some(r) != before.refresh.as_ref()),
        "the refresh token was not rotated (RFC 9700 §4.14.2)"
    );
    Ok(())
}

async fn valid_pkce(c: &Ctx) -> anyhow::Result<Verdict> {
    let a = Authz::new(c.rp());
    let code = c.sso_code(&a).await?;
    let mut wrong = a.clone();
    wrong.verifier = crate::agent::random(32);
    refused_with(&c.redeem(&wrong, &code).await?, "invalid_grant", "a wrong code_verifier")?;
    c.sso_tokens().await?;
    Ok(Verdict::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::b64;

    fn tokens(sub: &str, access: &str, refresh: Option<&str>) -> Tokens {
        let id = format!("{}.{}.sig", b64(b"{\"alg\":\"ES256\"}"), b64(format!("{{\"sub\":\"{sub}\"}}").as_bytes()));
        Tokens { access: access.into(), refresh: refresh.map(str::to_owned), id }
    }

    #[test]
    fn a_refresh_answer_needs_the_same_sub_a_new_access_token_and_a_rotated_refresh_token() {
        let before = tokens("alice", "a1", Some("r1"));
        refreshed(&before, &tokens("alice", "a2", Some("r2"))).expect("new tokens for the same subject");
        for (after, why) in [
            (tokens("bob", "a2", Some("r2")), "sub changed"),
            (tokens("alice", "a1", Some("r2")), "access token issued before"),
            (tokens("alice", "a2", Some("r1")), "not rotated"),
            (tokens("alice", "a2", None), "not rotated"),
        ] {
            let e = refreshed(&before, &after).expect_err(why).to_string();
            assert!(e.contains(why), "{e}");
        }
    }
}
