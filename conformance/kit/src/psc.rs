//! The PSC FI-tiers plan: what Pro Santé Connect's broker checks of an establishment's identity
//! provider when it delegates authentication to it (../shared/reference/psc.md §1, §3).
use anyhow::{Context, ensure};
use serde_json::Value;

use crate::flow::{Authz, Ctx};
use crate::{Module, Verdict};

/// PSC's re-authentication bound (Entra guide: periodic reauth at most 4 h; reference §3).
const MAX_AUTH_AGE: i64 = 4 * 3600;

pub fn modules() -> Vec<Module> {
    vec![module!(
        "psc-fi-tiers-id-token",
        "psc-fi-tiers",
        "ANS FI tiers (Okta and Entra guides: tid, oid, amr; reauth ≤ 4 h); PSC Keycloak extension EidasLevel (acr eidas1); OIDC Core §2",
        "The FI-tiers client's ID token, as PSC's broker reads it",
        "Le jeton d'identité du client FI tiers, tel que le broker de PSC le lit",
        "a card login asked with acr_values=eidas1 and a login_hint: a signed ID token with tid (the profile's), oid (the same at the next login), amr with mfa and a phishing-resistant factor (hwk or sc), acr eidas1, an auth_time under 4 h old; userinfo with the same tid and oid",
        "une connexion par carte demandée avec acr_values=eidas1 et un login_hint : un jeton d'identité signé avec tid (celui du profil), oid (le même à la connexion suivante), un amr avec mfa et un facteur résistant au phishing (hwk ou sc), acr eidas1, un auth_time de moins de 4 h ; userinfo avec les mêmes tid et oid",
        id_token
    )]
}

/// A card login to the FI-tiers client as PSC asks for it; the ID token's verified claims and
/// the access token.
async fn card_login(
    c: &Ctx,
    client: &crate::profile::Client,
    card: &crate::profile::Card,
) -> anyhow::Result<(Value, String)> {
    let a = Authz::new(client)
        .with("scope", "openid profile")
        .with("acr_values", "eidas1")
        .with("login_hint", &card.username);
    let t = c.card_tokens(card, &a).await?;
    let claims = crate::oidc::verify_jwt(c, &t.id, &client.id).await?;
    Ok((claims, t.access))
}

async fn id_token(c: &Ctx) -> anyhow::Result<Verdict> {
    let (Some(id), Some(card)) = (c.profile.fi_tiers_client.clone(), c.profile.card.clone()) else {
        return Ok(Verdict::NotApplicable(
            "the profile names no fi_tiers_client or no [card] (PSC asks for a phishing-resistant login)".into(),
        ));
    };
    let client = c.profile.client(&id)?.clone();
    let (claims, access) = card_login(c, &client, &card).await?;
    c.agent.note("ID token claims PSC reads", serde_json::json!({
        "tid": claims["tid"], "oid": claims["oid"], "amr": claims["amr"], "acr": claims["acr"], "auth_time": claims["auth_time"],
    }).to_string());
    let tid = claims["tid"].as_str().filter(|t| !t.is_empty()).context("the ID token has no tid (PSC routes by it)")?;
    if let Some(want) = &c.profile.fi_tiers_tid {
        ensure!(tid == want, "tid is {tid}, not the {want} registered with the ANS");
    }
    let oid =
        claims["oid"].as_str().filter(|o| !o.is_empty()).context("the ID token has no oid (PSC's pairing pivot)")?;
    let amr: Vec<&str> =
        claims["amr"].as_array().context("the ID token has no amr array")?.iter().filter_map(Value::as_str).collect();
    ensure!(
        amr.contains(&"mfa") && (amr.contains(&"hwk") || amr.contains(&"sc")),
        "amr {amr:?} does not say a phishing-resistant two-factor login (mfa with hwk or sc), which eidas1 asks for"
    );
    ensure!(
        claims["acr"].is_null() || claims["acr"] == "eidas1",
        "acr is {}: PSC's broker accepts only eidas1 or none (\"eIDAS level is not supported\")",
        claims["acr"]
    );
    let auth_time = claims["auth_time"].as_i64().context("the ID token has no auth_time (PSC checks the age)")?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    ensure!(
        auth_time <= now + 60 && auth_time >= now - MAX_AUTH_AGE,
        "auth_time {auth_time} is not within 4 h of now ({now})"
    );
    let u = c.userinfo_get(&access).await?;
    ensure!(u.status == 200, "userinfo answered {}", u.status);
    ensure!(u.json()["tid"] == tid && u.json()["oid"] == oid, "userinfo's tid or oid differs from the ID token's");
    let (again, _) = card_login(c, &client, &card).await?;
    ensure!(again["oid"] == oid, "oid changed between two logins of the same person ({oid}, then {})", again["oid"]);
    Ok(Verdict::Pass)
}
