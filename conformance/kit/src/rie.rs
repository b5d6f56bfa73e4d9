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
    let client = c.profile.client(&dpi)?.clone();
    let t = c.card_tokens(&card, &Authz::new(&client)).await?;
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
    Ok(Verdict::Pass)
}
