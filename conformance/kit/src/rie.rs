//! The RIE's two-factor rules (PGSSI-S référentiel d'identification électronique), run as
//! logins: for a MIE and a client's sensitivity, the expected allow / step-up / deny.
use anyhow::ensure;

use crate::flow::{Authz, Browser};
use crate::{Module, Verdict};

pub fn modules() -> Vec<Module> {
    vec![
        module!(
            "rie-password-totp-sensitive-refused",
            "rie",
            "RIE (PGSSI-S) exigences 2FA; policies: login-sensitive-no-password-totp",
            "Password + TOTP never opens a sensitive client",
            "Mot de passe + TOTP n'ouvre jamais un service sensible",
            "a password + TOTP login to the DPI (sensitive) client gets no code: refused or asked for a MIE of the RIE",
            "une connexion mot de passe + TOTP au DPI (sensible) n'obtient pas de code : refus ou demande d'un MIE du RIE",
            password_totp_sensitive
        ),
        module!(
            "rie-password-totp-non-sensitive-allowed",
            "rie",
            "RIE (PGSSI-S) tous les MIE 2FA au 1er janvier 2026; policies: login-non-sensitive-two-factor",
            "Password + TOTP opens a non-sensitive client from inside",
            "Mot de passe + TOTP ouvre un service non sensible depuis l'intérieur",
            "a password + TOTP login to the RP (non-sensitive) client gets a code, with the amr of a password and a one-time code",
            "une connexion mot de passe + TOTP au client RP (non sensible) obtient un code, avec l'amr d'un mot de passe et d'un code à usage unique",
            password_totp_non_sensitive
        ),
        module!(
            "rie-cps-opens-non-sensitive",
            "rie",
            "RIE (PGSSI-S) MIE de niveau substantiel/élevé; policies: login-rie-mie",
            "A CPS/CPE card opens a non-sensitive client",
            "Une carte CPS/CPE ouvre un service non sensible",
            "a card login to the RP (non-sensitive) client gets a code, with the amr of a card",
            "une connexion par carte au client RP (non sensible) obtient un code, avec l'amr d'une carte",
            cps_non_sensitive
        ),
        module!(
            "rie-fido2-hardware-key",
            "rie",
            "RIE (PGSSI-S) clés FIDO; policies: login-rie-mie (hwk), login-non-sensitive-two-factor (swk)",
            "A FIDO2 key: an attested hardware key opens every client, another only non-sensitive ones",
            "Une clé FIDO2 : une clé matérielle attestée ouvre tout service, une autre les seuls non sensibles",
            "needs a WebAuthn authenticator: run in a browser with a virtual authenticator (the gateway's own tests do, tests/browser)",
            "demande un authentificateur WebAuthn : à passer dans un navigateur avec un authentificateur virtuel (les tests du gateway le font, tests/browser)",
            fido2
        ),
        module!(
            "rie-cps-opens-sensitive",
            "rie",
            "RIE (PGSSI-S) MIE de niveau substantiel/élevé; policies: login-rie-mie",
            "A CPS/CPE card opens a sensitive client",
            "Une carte CPS/CPE ouvre un service sensible",
            "a card login (the test card presented in the TLS handshake) to the DPI client gets a code, with the amr of a card",
            "une connexion par carte (la carte de test présentée dans la poignée de main TLS) au DPI obtient un code, avec l'amr d'une carte",
            cps_sensitive
        ),
    ]
}

async fn cps_sensitive(c: &crate::flow::Ctx) -> anyhow::Result<Verdict> {
    let (Some(dpi), Some(card)) = (c.profile.dpi_client.clone(), c.profile.card.clone()) else {
        return Ok(Verdict::NotApplicable("the profile names no dpi_client or no [card]".into()));
    };
    card_opens(c, &card, &c.profile.client(&dpi)?.clone()).await
}

/// A card login to `client` gets a code whose ID token says how (an `amr`).
async fn card_opens(
    c: &crate::flow::Ctx,
    card: &crate::profile::Card,
    client: &crate::profile::Client,
) -> anyhow::Result<Verdict> {
    let t = c.card_tokens(card, &Authz::new(client)).await?;
    let claims = crate::agent::jwt_part(&t.id, 1);
    c.agent.note(
        "ID token claims (acr, amr)",
        serde_json::json!({"acr": claims["acr"], "amr": claims["amr"]}).to_string(),
    );
    ensure!(claims["amr"].as_array().is_some_and(|a| !a.is_empty()), "the ID token of a card login has no amr");
    Ok(Verdict::Pass)
}

async fn password_totp_sensitive(c: &crate::flow::Ctx) -> anyhow::Result<Verdict> {
    let Some(dpi) = c.profile.dpi_client.clone() else {
        return Ok(Verdict::NotApplicable("the profile names no dpi_client (a sensitive client)".into()));
    };
    let client = c.profile.client(&dpi)?.clone();
    if !client.sensitive {
        return Ok(Verdict::NotApplicable(format!("the profile's dpi_client {dpi} is not marked sensitive")));
    }
    let mut b: Browser = c.browser();
    let a = Authz::new(&client);
    let done = b.login(&a, &c.profile.users).await?;
    let p = done.redirect_params();
    ensure!(
        !(done.location().starts_with(&a.client.redirect_uri) && p.contains_key("code")),
        "password + TOTP opened the sensitive client {dpi}: a code was issued"
    );
    // The policies' README: a refused decision comes with its step-up, the MIE that would do.
    let step_up = done.body.contains("/login/cps?flow=") || done.body.contains("/login/fido2");
    c.agent.note(
        "the answer",
        format!(
            "{} — {}",
            done.status,
            if step_up { "step-up: a card or a FIDO2 key is offered" } else { "refused, nothing stronger offered" }
        ),
    );
    ensure!(
        step_up,
        "password + TOTP was refused at {dpi}, but the answer ({}) offers no stronger MIE (no step-up)",
        done.status
    );
    Ok(Verdict::Pass)
}

/// A FIDO2 login needs a WebAuthn authenticator (CTAP2, an attestation the gateway verifies):
/// the kit speaks HTTP only, so the row is reported, with the reason, never left out.
async fn fido2(c: &crate::flow::Ctx) -> anyhow::Result<Verdict> {
    // The evidence: whether the sensitive client's login page offers a FIDO2 key at all.
    let client = match c.profile.dpi_client.clone() {
        Some(dpi) => c.profile.client(&dpi)?.clone(),
        None => c.rp().clone(),
    };
    let mut b = c.browser();
    let r = b.get(&Authz::new(&client).url(&b.agent)).await?;
    let page = b.get(&r.location()).await?;
    let offered = page.body.contains("fido2");
    c.agent
        .note("FIDO2 on the login page", format!("{}: {}", client.id, if offered { "offered" } else { "not offered" }));
    Ok(Verdict::NotApplicable(format!(
        "a FIDO2 login needs a WebAuthn authenticator (a key, or a browser's virtual authenticator); the kit speaks HTTP only and carries none (the login page of {} {} it)",
        client.id,
        if offered { "offers" } else { "does not offer" }
    )))
}

/// The `amr` of the ID token in `done`'s code, redeemed; `done` must carry a code for `a`.
async fn amr_of_code(c: &crate::flow::Ctx, a: &Authz, done: &crate::agent::Resp) -> anyhow::Result<Vec<String>> {
    let p = crate::flow::code_of(done, a)?;
    let t = crate::flow::Tokens::of(&c.redeem(a, &p["code"]).await?)?;
    let claims = crate::agent::jwt_part(&t.id, 1);
    c.agent.note(
        "ID token claims (acr, amr)",
        serde_json::json!({"acr": claims["acr"], "amr": claims["amr"]}).to_string(),
    );
    Ok(claims["amr"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect())
}

async fn password_totp_non_sensitive(c: &crate::flow::Ctx) -> anyhow::Result<Verdict> {
    let client = c.rp().clone();
    let mut b = c.browser();
    let a = Authz::new(&client);
    let done = b.login(&a, &c.profile.users).await?;
    ensure!(
        done.location().starts_with(&client.redirect_uri) && done.redirect_params().contains_key("code"),
        "password + TOTP got no code for the non-sensitive client {}: answered {} {}",
        client.id,
        done.status,
        crate::agent::redact_url(&done.location())
    );
    let amr = amr_of_code(c, &a, &done).await?;
    ensure!(
        amr.iter().any(|m| m == "pwd") && amr.iter().any(|m| m == "otp"),
        "amr {amr:?} does not say password + one-time code"
    );
    Ok(Verdict::Pass)
}

async fn cps_non_sensitive(c: &crate::flow::Ctx) -> anyhow::Result<Verdict> {
    let Some(card) = c.profile.card.clone() else {
        return Ok(Verdict::NotApplicable("the profile has no [card]".into()));
    };
    card_opens(c, &card, &c.rp().clone()).await
}
