//! The RIE's two-factor rules (PGSSI-S référentiel d'identification électronique), run as
//! logins: for a MIE and a client's sensitivity, the expected allow / step-up / deny.
use anyhow::{Context, ensure};

use crate::flow::{Authz, Browser};
use crate::profile::Fido2Enrolment;
use crate::softkey::{Attestor, SoftKey};
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
            "rie-password-totp-session-steps-up-at-sensitive",
            "rie",
            "RIE (PGSSI-S) exigences 2FA; OIDC Core §3.1.2.3 (re-authentication); policies: login-sensitive-no-password-totp (step-up)",
            "A password + TOTP session does not get into a sensitive client by SSO: it is asked for a card or a key",
            "Une session mot de passe + TOTP n'entre pas dans un service sensible par SSO : une carte ou une clé est demandée",
            "after a password + TOTP login to the RP client, the same browser's authorization request to the DPI (sensitive) gets no code: it leads to a login page that offers a card and no password form (step-up)",
            "après une connexion mot de passe + TOTP au client RP, la demande d'autorisation du même navigateur au DPI (sensible) n'obtient pas de code : elle mène à une page de connexion qui propose une carte et pas de formulaire de mot de passe (step-up)",
            password_totp_session_steps_up
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
            "rie-fido2-software-key-opens-non-sensitive",
            "rie",
            "RIE (PGSSI-S) clés FIDO; WebAuthn L2 §6.1, §8.7; RFC 8176 §2 (swk); policies: login-non-sensitive-two-factor",
            "A FIDO2 key without attestation opens a non-sensitive client, as software (swk)",
            "Une clé FIDO2 sans attestation ouvre un service non sensible, comme logicielle (swk)",
            "the kit's software key (attestation none), enrolled on the account page after a password + TOTP login, logs in to the RP (non-sensitive) client: a code, with the amr swk and never hwk",
            "la clé logicielle du kit (attestation none), enrôlée sur la page du compte après une connexion mot de passe + TOTP, se connecte au client RP (non sensible) : un code, avec l'amr swk et jamais hwk",
            fido2_non_sensitive
        ),
        module!(
            "rie-fido2-software-key-sensitive-refused",
            "rie",
            "RIE (PGSSI-S) clés FIDO matérielles seules pour les services sensibles; policies: login-rie-mie (hwk only)",
            "A FIDO2 key without attestation never opens a sensitive client",
            "Une clé FIDO2 sans attestation n'ouvre jamais un service sensible",
            "the kit's software key logs in to the DPI (sensitive) client: no code; the answer offers a stronger MIE (a card: step-up)",
            "la clé logicielle du kit se connecte au DPI (sensible) : pas de code ; la réponse propose un MIE plus fort (une carte : step-up)",
            fido2_sensitive
        ),
        module!(
            "rie-fido2-hardware-key-opens-sensitive",
            "rie",
            "RIE (PGSSI-S) clés FIDO matérielles (liste de l'ANS); WebAuthn L2 §7.1 steps 19-21, §8.2; RFC 8176 §2 (hwk); policies: login-rie-mie",
            "A FIDO2 key with verified attestation opens a sensitive client, as hardware (hwk)",
            "Une clé FIDO2 à attestation vérifiée ouvre un service sensible, comme matérielle (hwk)",
            "a key of the profile's test model (attestation packed, its batch certificate chaining to a root the target trusts) is registered on the account page and logs in to the DPI (sensitive) client: a code, with the amr hwk; the same key withholding its attestation (format none) is never counted as hwk",
            "une clé du modèle de test du profil (attestation packed, son certificat de lot chaîné à une racine de confiance de la cible) est enregistrée sur la page du compte et se connecte au DPI (sensible) : un code, avec l'amr hwk ; la même clé sans son attestation (format none) n'est jamais comptée hwk",
            fido2_hardware_sensitive
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

/// The profile's sensitive client (its `dpi_client`), or why there is none to test.
fn sensitive_client(c: &crate::flow::Ctx) -> anyhow::Result<Result<crate::profile::Client, String>> {
    let Some(dpi) = c.profile.dpi_client.clone() else {
        return Ok(Err("the profile names no dpi_client (a sensitive client)".into()));
    };
    let client = c.profile.client(&dpi)?.clone();
    if !client.sensitive {
        return Ok(Err(format!("the profile's dpi_client {dpi} is not marked sensitive")));
    }
    Ok(Ok(client))
}

async fn password_totp_sensitive(c: &crate::flow::Ctx) -> anyhow::Result<Verdict> {
    let client = match sensitive_client(c)? {
        Ok(client) => client,
        Err(why) => return Ok(Verdict::NotApplicable(why)),
    };
    let dpi = client.id.clone();
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

async fn password_totp_session_steps_up(c: &crate::flow::Ctx) -> anyhow::Result<Verdict> {
    let client = match sensitive_client(c)? {
        Ok(client) => client,
        Err(why) => return Ok(Verdict::NotApplicable(why)),
    };
    let dpi = client.id.clone();
    let mut b = c.browser();
    let rp = Authz::new(c.rp());
    let first = b.login(&rp, &c.profile.users).await?;
    if crate::flow::code_of(&first, &rp).is_err() {
        return Ok(Verdict::NotApplicable(format!(
            "the password + TOTP login to {} got no code ({}): there is no such session to step up (see rie-password-totp-non-sensitive-allowed)",
            rp.client.id, first.status
        )));
    }
    let a = Authz::new(&client);
    let r = b.get(&a.url(&b.agent)).await?;
    let to = r.location();
    ensure!(
        !(to.starts_with(&client.redirect_uri) && r.redirect_params().contains_key("code")),
        "the password + TOTP session got into the sensitive client {dpi} by SSO: a code was issued without a step-up"
    );
    ensure!(
        to.contains("/login?flow="),
        "the password + TOTP session's request to {dpi} answered {} {}, not the login page of a step-up",
        r.status,
        crate::agent::redact_url(&to)
    );
    let page = b.get(&to).await?;
    let card = page.body.contains("/login/cps?flow=");
    let password = page.body.contains("action=\"/login/password\"");
    c.agent
        .note("the step-up page", format!("{} — card offered: {card}; password form offered: {password}", page.status));
    ensure!(card, "the step-up page for {dpi} ({}) offers no card", page.status);
    ensure!(!password, "the step-up page for {dpi} still offers the password + TOTP form");
    Ok(Verdict::Pass)
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

/// A software key enrolled for a profile user, and the browser (its session) that enrolled it.
struct Enrolled {
    key: SoftKey,
    owner: Browser,
}

/// A registration on the account page: the attestation the target asked for, its answer.
struct Registration {
    asked: String,
    added: crate::agent::Resp,
    enrolled: Enrolled,
}

/// Registers a new software key (attested by `attestor`, else attestation "none") through the
/// account page (`/account/keys`), after a password + TOTP login to the RP client (what the
/// profile's `fido2_enrolment = "account"` says); `Err` with the reason when the profile asks for
/// no enrolment or the target leaves no session that may add a key.
async fn register(c: &crate::flow::Ctx, attestor: Option<Attestor>) -> anyhow::Result<Result<Registration, String>> {
    if c.profile.fido2_enrolment == Fido2Enrolment::None {
        return Ok(Err("the profile says fido2_enrolment = \"none\": the kit enrols no key on this target".into()));
    }
    let mut b = c.browser();
    let login = b.login(&Authz::new(c.rp()), &c.profile.users).await?;
    let page = b.get("/account/keys").await?;
    ensure!(
        page.status == 200,
        "the account page /account/keys answered {} after a password + TOTP login",
        page.status
    );
    if !page.body.contains("id=\"register-key\"") {
        // No session to enrol from: the rows cannot run, and the password + TOTP row says why.
        return Ok(Err(format!(
            "the kit enrols its key on the account page after a password + TOTP login to {}, which answered {} and left no session that may add a key here (see rie-password-totp-non-sensitive-allowed; or set fido2_enrolment = \"none\")",
            c.rp().id,
            login.status
        )));
    }
    let csrf = page.hidden("csrf").context("the account page has no hidden `csrf` input")?;
    let opts = b.post_form("/account/keys/options", &[("csrf", &csrf), ("name", "vigie-conformance test key")]).await?;
    ensure!(opts.status == 200, "the key creation options answered {}: {}", opts.status, opts.body);
    let options = opts.json();
    // WebAuthn §5.4.7: "direct" when the target verifies what a key proves of its model.
    let asked = options["publicKey"]["attestation"].as_str().unwrap_or("none").to_owned();
    let rp_id = options["publicKey"]["rp"]["id"].as_str().context("the creation options name no rp.id")?.to_owned();
    let origin = url::Url::parse(&c.agent.url("/"))?.origin().ascii_serialization();
    let mut key = SoftKey::new(&rp_id, &origin)?;
    let sends = if attestor.is_some() { "packed" } else { "none" };
    if let Some(a) = attestor {
        key = key.attested_by(a);
    }
    let credential = key.register(&options)?.to_string();
    let added = b.post_form("/account/keys", &[("csrf", &csrf), ("credential", &credential)]).await?;
    c.agent.note(
        "FIDO2 registration",
        format!("rp.id {rp_id}; attestation asked {asked:?}, sent {sends:?}: answered {}", added.status),
    );
    Ok(Ok(Registration { asked, added, enrolled: Enrolled { key, owner: b } }))
}

/// The kit's software key (attestation "none") enrolled, or why the rows cannot run.
async fn enrol(c: &crate::flow::Ctx) -> anyhow::Result<Result<Enrolled, String>> {
    let r = match register(c, None).await? {
        Ok(r) => r,
        Err(why) => return Ok(Err(why)),
    };
    if r.added.status != 303 && r.asked == "direct" {
        // A target verifying attestation refuses a key that proves no model: as it should.
        return Ok(Err(format!(
            "the target asks for direct attestation and refused to register a key with attestation \"none\" ({}): it verifies attestation, so no software key logs in there",
            r.added.status
        )));
    }
    ensure!(
        r.added.status == 303 && r.added.location().contains("done=added"),
        "the key registration answered {} {}",
        r.added.status,
        r.added.location()
    );
    Ok(Ok(r.enrolled))
}

impl Enrolled {
    /// A key login for `a` in a fresh browser: the answer to the assertion.
    async fn login(&mut self, c: &crate::flow::Ctx, a: &Authz) -> anyhow::Result<crate::agent::Resp> {
        let mut kb = c.browser();
        let r = kb.get(&a.url(&kb.agent)).await?;
        let to = r.location();
        ensure!(to.contains("/login?flow="), "the authorization request of {} led to {} {to}", a.client.id, r.status);
        let page = kb.get(&to).await?;
        let flow = page.hidden("flow").context("the login page has no hidden `flow` input")?;
        let csrf = page.hidden("csrf").context("the login page has no hidden `csrf` input")?;
        let opts = kb.post_form("/login/fido2/options", &[("flow", &flow), ("csrf", &csrf)]).await?;
        ensure!(opts.status == 200, "the FIDO2 login options of {} answered {}", a.client.id, opts.status);
        let assertion = self.key.assert(&opts.json())?.to_string();
        kb.post_form("/login/fido2", &[("flow", &flow), ("csrf", &csrf), ("credential", &assertion)]).await
    }

    /// Revokes the key (the run leaves no way in behind it).
    async fn revoke(mut self) -> anyhow::Result<()> {
        let page = self.owner.get("/account/keys").await?;
        let csrf = page.hidden("csrf").context("the account page has no hidden `csrf` input")?;
        let r = self.owner.post_form("/account/keys/revoke", &[("csrf", &csrf), ("id", &self.key.id_b64())]).await?;
        ensure!(r.status == 303, "revoking the kit's test key answered {}", r.status);
        Ok(())
    }
}

async fn fido2_non_sensitive(c: &crate::flow::Ctx) -> anyhow::Result<Verdict> {
    let mut k = match enrol(c).await? {
        Ok(k) => k,
        Err(why) => return Ok(Verdict::NotApplicable(why)),
    };
    let a = Authz::new(&c.rp().clone());
    let done = k.login(c, &a).await?;
    let amr = amr_of_code(c, &a, &done).await;
    k.revoke().await?;
    let amr = amr?;
    ensure!(amr.iter().any(|m| m == "swk"), "amr {amr:?} does not say a software-secured key (RFC 8176 swk)");
    ensure!(!amr.iter().any(|m| m == "hwk"), "amr {amr:?} says hwk for a key that proved no hardware model");
    Ok(Verdict::Pass)
}

async fn fido2_sensitive(c: &crate::flow::Ctx) -> anyhow::Result<Verdict> {
    let client = match sensitive_client(c)? {
        Ok(client) => client,
        Err(why) => return Ok(Verdict::NotApplicable(why)),
    };
    let dpi = client.id.clone();
    let mut k = match enrol(c).await? {
        Ok(k) => k,
        Err(why) => return Ok(Verdict::NotApplicable(why)),
    };
    let a = Authz::new(&client);
    let done = k.login(c, &a).await;
    k.revoke().await?;
    let done = done?;
    ensure!(
        !(done.location().starts_with(&client.redirect_uri) && done.redirect_params().contains_key("code")),
        "a software FIDO2 key (attestation none) opened the sensitive client {dpi}: a code was issued"
    );
    let step_up = done.body.contains("/login/cps?flow=");
    c.agent.note(
        "the answer",
        format!(
            "{} — {}",
            done.status,
            if step_up { "step-up: a card is offered" } else { "refused, no card offered" }
        ),
    );
    ensure!(
        step_up,
        "the software key was refused at {dpi}, but the answer ({}) offers no card (no step-up)",
        done.status
    );
    Ok(Verdict::Pass)
}

async fn fido2_hardware_sensitive(c: &crate::flow::Ctx) -> anyhow::Result<Verdict> {
    let client = match sensitive_client(c)? {
        Ok(client) => client,
        Err(why) => return Ok(Verdict::NotApplicable(why)),
    };
    // Without a test model the ceremony still runs (with attestation "none", the key revoked
    // after): what the target asks for is the evidence of why the row cannot run.
    let model = c.profile.fido2_attestation.clone();
    let attestor = match &model {
        Some(m) if m.format != "none" => Some(Attestor::from_pem(&m.cert_pem, &m.key_pem, &m.aaguid)?),
        _ => None,
    };
    let r = match register(c, attestor).await? {
        Ok(r) => r,
        Err(why) => return Ok(Verdict::NotApplicable(why)),
    };
    let not_applicable = if r.asked != "direct" {
        // A target asking for none verifies no model: by its setting no key is hwk there.
        Some(format!(
            "the target asks for attestation {:?}, not \"direct\" (webauthn.attestation = \"none\", as the demo): it verifies no key's model, so every key logs in as software (swk) and none can be shown as hwk",
            r.asked
        ))
    } else {
        model.is_none().then(|| {
            "the profile has no [fido2_attestation] (a test model whose attestation root the target lists in webauthn.attestation_ca_files)".to_owned()
        })
    };
    let Some(model) = model.filter(|_| not_applicable.is_none()) else {
        if r.added.status == 303 {
            r.enrolled.revoke().await?;
        }
        return Ok(Verdict::NotApplicable(not_applicable.unwrap_or_default()));
    };
    let dpi = client.id.clone();
    ensure!(
        r.added.status == 303 && r.added.location().contains("done=added"),
        "the target refused to register a key of the test model {} with attestation {:?}: answered {} (a key whose attestation chains to a trusted root is a MIE of the RIE; one without proves no hardware and is no hwk)",
        model.aaguid,
        model.format,
        r.added.status
    );
    let mut k = r.enrolled;
    let a = Authz::new(&client);
    let done = k.login(c, &a).await;
    let amr = match done {
        Ok(done)
            if done.location().starts_with(&client.redirect_uri) && done.redirect_params().contains_key("code") =>
        {
            amr_of_code(c, &a, &done).await
        }
        Ok(done) => Err(anyhow::anyhow!(
            "a key of the test model (attestation {:?}) got no code for the sensitive client {dpi}: answered {} {}",
            model.format,
            done.status,
            crate::agent::redact_url(&done.location())
        )),
        Err(e) => Err(e),
    };
    k.revoke().await?;
    let amr = amr?;
    ensure!(amr.iter().any(|m| m == "hwk"), "amr {amr:?} does not say a hardware-secured key (RFC 8176 hwk)");
    ensure!(!amr.iter().any(|m| m == "swk"), "amr {amr:?} says swk for a key with verified attestation");
    Ok(Verdict::Pass)
}
