//! The DMP / VIHF plan: a card login to the DPI exchanged for a VIHF (RFC 8693), its structure,
//! signature (`xmlsec1`), lifetime and single identity as the DMP's AIR simplifié rules ask
//! (../shared/reference/dmp-vihf-cps.md §1), and the exchanges the gateway must refuse.
use anyhow::{Context, ensure};
use base64::Engine;
use serde_json::Value;

use crate::flow::{Authz, Ctx, Tokens};
use crate::profile::Client;
use crate::vihf::{El, attributes, elements, instant, xmlsec1_verifies};
use crate::{Module, Verdict};

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const SAML2: &str = "urn:ietf:params:oauth:token-type:saml2";
/// EX_AIR-040: "durée de vie de 30 secondes".
const MAX_LIFETIME: i64 = 30;
/// The professional's name (XSPA subject-id), at most once.
const SUBJECT_ID: &str = "urn:oasis:names:tc:xspa:1.0:subject:subject-id";
/// The attributes every VIHF carries (reference §1, from the official AIR examples).
const REQUIRED: &[&str] = &[
    "Identifiant_Structure",
    "Secteur_Activite",
    "urn:oasis:names:tc:xacml:2.0:subject:role",
    "VIHF_Version",
    "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
    "Ressource_URN",
    "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
    "LPS_ID",
];

pub fn modules() -> Vec<Module> {
    vec![
        module!(
            "dmp-vihf-structure-and-signature",
            "dmp-vihf",
            "DMP AIR simplifié: VIHF (SAML 2.0 Core §2.3.3, §2.7.2, §2.7.3; official AIR example tokens); XML-DSig enveloped signature (EX_GEN-1450: ORG_SIGN); RFC 8693 §2.2.1",
            "A card session at the DPI becomes a signed VIHF",
            "Une session par carte au DPI devient un VIHF signé",
            "the token exchange answers issued_token_type saml2 and token_type N_A; the VIHF is a SAML 2.0 Assertion (ID, IssueInstant) with Issuer, then its Signature, a Subject/NameID, an AuthnStatement with a class, the AIR attributes (structure, sector, role, VIHF_Version, the patient's INS, urn:dmp, purpose of use, LPS); xmlsec1 verifies its signature against the seal CA, and no longer once the patient is changed",
            "l'échange de jeton répond issued_token_type saml2 et token_type N_A ; le VIHF est une Assertion SAML 2.0 (ID, IssueInstant) avec l'Issuer puis sa Signature, un Subject/NameID, un AuthnStatement avec une classe, les attributs de l'AIR (structure, secteur, rôle, VIHF_Version, l'INS du patient, urn:dmp, mode d'accès, LPS) ; xmlsec1 en vérifie la signature avec l'AC du cachet, et plus une fois le patient changé",
            structure
        ),
        module!(
            "dmp-vihf-lifetime",
            "dmp-vihf",
            "DMP AIR simplifié EX_AIR-040 (30 s, one request); SAML 2.0 Core §2.5.1 (Conditions); RFC 8693 §2.2.1 (expires_in)",
            "A VIHF lives 30 seconds at most",
            "Un VIHF vit 30 secondes au plus",
            "expires_in between 1 and 30; IssueInstant within 2 minutes of now; Conditions NotOnOrAfter at most 30 s after IssueInstant (and NotBefore not after it)",
            "expires_in entre 1 et 30 ; IssueInstant à moins de 2 minutes de maintenant ; Conditions NotOnOrAfter au plus 30 s après IssueInstant (et NotBefore pas après)",
            lifetime
        ),
        module!(
            "dmp-vihf-single-identity",
            "dmp-vihf",
            "DMP AIR simplifié EX_AIR-020, EX_AIR-040; HL7v2→VIHF mapping (NameID = the professional's idNat_PS); SAML 2.0 Core §2.4.1",
            "A VIHF names one professional, the one logged in, for one request",
            "Un VIHF nomme un seul professionnel, celui connecté, pour une seule sollicitation",
            "one Subject with one NameID, equal to the session's idnat, and at most one subject-id (the professional's name); two exchanges give two assertions with distinct IDs",
            "un seul Subject avec un seul NameID, égal à l'idnat de la session, et au plus un subject-id (le nom du professionnel) ; deux échanges donnent deux assertions d'ID distincts",
            single_identity
        ),
        module!(
            "dmp-vihf-refusals",
            "dmp-vihf",
            "RFC 8693 §2.2.2; DMP AIR simplifié EX_AIR-030 (callers authenticated); référentiel d'accès au DMP (2FA of the RIE); policies: dmp-entitled-professional",
            "No VIHF without a card-strength session of the DPI",
            "Pas de VIHF sans une session par carte (ou équivalent) au DPI",
            "refused (400, no VIHF): no subject token, a forged one, another client's token (a password + TOTP session of the RP client), and a password + TOTP session at the DPI if the RIE lets it log in",
            "refusé (400, pas de VIHF) : sans jeton sujet, avec un jeton forgé, avec le jeton d'un autre client (une session mot de passe + TOTP du client RP), et une session mot de passe + TOTP au DPI si le RIE la laisse entrer",
            refusals
        ),
    ]
}

/// A card session at the DPI: the client, the seal CA and the session's tokens.
struct CardSession {
    client: Client,
    ca: String,
    tokens: Tokens,
}

/// A card login to the DPI, or why the plan does not apply to the profile.
async fn card_session(c: &Ctx) -> anyhow::Result<Result<CardSession, Verdict>> {
    let (Some(dpi), Some(card)) = (c.profile.dpi_client.clone(), c.profile.card.clone()) else {
        return Ok(Err(Verdict::NotApplicable(
            "the profile names no dpi_client or no [card] (a VIHF needs a card session)".into(),
        )));
    };
    let Some(ca) = c.profile.dmp_seal_ca_pem.clone() else {
        return Ok(Err(Verdict::NotApplicable(
            "the profile has no dmp_seal_ca_pem (the CA of the establishment's seal)".into(),
        )));
    };
    let client = c.profile.client(&dpi)?.clone();
    // `hospital`: the scope that carries the professional's idnat (the VIHF's NameID).
    let tokens = c.card_tokens(&card, &Authz::new(&client).with("scope", "openid profile hospital")).await?;
    Ok(Ok(CardSession { client, ca, tokens }))
}

/// RFC 8693 §2.1: the DPI exchanges `subject` (an access token) for a VIHF about the patient.
async fn exchange(c: &Ctx, client: &Client, subject: Option<&str>) -> anyhow::Result<crate::agent::Resp> {
    let ins = c.profile.dmp_patient_ins.clone().unwrap_or_default();
    let mut p = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token_type", ACCESS_TOKEN),
        ("requested_token_type", SAML2),
        ("patient_ins", ins.as_str()),
    ];
    if let Some(s) = subject {
        p.push(("subject_token", s));
    }
    c.token(client, &p).await
}

/// A VIHF: the exchange's JSON answer and the assertion's XML.
async fn vihf(c: &Ctx, client: &Client, subject: &str) -> anyhow::Result<(Value, String)> {
    let r = exchange(c, client, Some(subject)).await?;
    ensure!(
        r.status == 200,
        "the token exchange of a card session answered {} {} ({})",
        r.status,
        r.json()["error"],
        r.json()["error_description"]
    );
    let j = r.json();
    let token = j["access_token"].as_str().context("no access_token (the VIHF) in the exchange's answer")?;
    let xml = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .context("the VIHF is not base64url (RFC 8693 §2.2.1)")?;
    let xml = String::from_utf8(xml).context("the VIHF is not UTF-8 XML")?;
    Ok((j, xml))
}

fn one<'a>(els: &'a [El], path: &[&str]) -> anyhow::Result<&'a El> {
    let found: Vec<&El> = els.iter().filter(|e| e.path == path).collect();
    ensure!(found.len() == 1, "the VIHF has {} {} (one expected)", found.len(), path.join("/"));
    Ok(found[0])
}

async fn structure(c: &Ctx) -> anyhow::Result<Verdict> {
    let CardSession { client, ca, tokens: t } = match card_session(c).await? {
        Ok(s) => s,
        Err(v) => return Ok(v),
    };
    let (j, xml) = vihf(c, &client, &t.access).await?;
    ensure!(j["issued_token_type"] == SAML2, "issued_token_type is {}, not {SAML2}", j["issued_token_type"]);
    ensure!(
        j["token_type"] == "N_A",
        "token_type is {}: a VIHF is not an access token (RFC 8693 §2.2.1: N_A)",
        j["token_type"]
    );
    let els = elements(&xml)?;
    let root = &els[0];
    ensure!(root.path == ["Assertion"], "the VIHF's root is {}, not a SAML Assertion", root.name());
    ensure!(root.attr("Version") == Some("2.0"), "the assertion's Version is {:?}", root.attr("Version"));
    let id = root.attr("ID").filter(|i| !i.is_empty()).context("the assertion has no ID")?;
    root.attr("IssueInstant").context("the assertion has no IssueInstant")?;
    let children: Vec<&str> = els.iter().filter(|e| e.path.len() == 2).map(El::name).collect();
    c.agent.note("VIHF elements", children.join(", "));
    ensure!(
        children.first() == Some(&"Issuer") && children.get(1) == Some(&"Signature"),
        "the assertion begins with {children:?}: Issuer then the enveloped Signature expected (SAML Core §2.3.3)"
    );
    for needed in ["Subject", "AuthnStatement", "AttributeStatement"] {
        ensure!(children.contains(&needed), "the assertion has no {needed}");
    }
    let reference = one(&els, &["Assertion", "Signature", "SignedInfo", "Reference"])?;
    ensure!(
        reference.attr("URI") == Some(&format!("#{id}")),
        "the signature references {:?}, not #{id}",
        reference.attr("URI")
    );
    ensure!(
        els.iter().any(|e| e.name() == "X509Certificate" && !e.text.trim().is_empty()),
        "the signature carries no X509Certificate (KeyInfo) for the DMP to check"
    );
    let class = one(&els, &["Assertion", "AuthnStatement", "AuthnContext", "AuthnContextClassRef"])?;
    ensure!(!class.text.trim().is_empty(), "the AuthnContextClassRef is empty");
    let attrs = attributes(&els);
    c.agent.note("VIHF attributes (names and values)", serde_json::to_string(&attrs)?);
    let missing: Vec<&&str> = REQUIRED.iter().filter(|n| attrs.get(**n).is_none_or(|v| v.is_empty())).collect();
    ensure!(missing.is_empty(), "the VIHF lacks the attributes {missing:?}");
    ensure!(
        attrs.keys().any(|k| k.eq_ignore_ascii_case("Authentification_mode")),
        "the VIHF has no Authentification_mode (the reference finds both spellings)"
    );
    ensure!(attrs["Ressource_URN"] == ["urn:dmp"], "Ressource_URN is {:?}, not urn:dmp", attrs["Ressource_URN"]);
    if let Some(ins) = c.profile.dmp_patient_ins.as_deref() {
        let rid = &attrs["urn:oasis:names:tc:xacml:2.0:resource:resource-id"];
        ensure!(
            rid.iter().any(|v| v.starts_with(&format!("{ins}^^^"))),
            "the resource-id {rid:?} does not name the patient asked for"
        );
    }
    let (ok, said) = xmlsec1_verifies(&xml, &ca)?;
    c.agent.note("xmlsec1 --verify (the VIHF as issued)", said.clone());
    ensure!(ok, "xmlsec1 does not verify the VIHF's signature against the seal CA: {said}");
    let ins = c.profile.dmp_patient_ins.clone().unwrap_or_else(|| id.to_owned());
    let other: String = ins.chars().rev().collect();
    let (ok, said) = xmlsec1_verifies(&xml.replacen(&ins, &other, 1), &ca)?;
    c.agent.note("xmlsec1 --verify (the VIHF, another patient written in)", said);
    ensure!(!ok, "xmlsec1 still verifies the VIHF once its patient is changed: the signature covers nothing");
    Ok(Verdict::Pass)
}

async fn lifetime(c: &Ctx) -> anyhow::Result<Verdict> {
    let CardSession { client, tokens: t, .. } = match card_session(c).await? {
        Ok(s) => s,
        Err(v) => return Ok(v),
    };
    let (j, xml) = vihf(c, &client, &t.access).await?;
    let els = elements(&xml)?;
    let issued = instant(els[0].attr("IssueInstant").context("the assertion has no IssueInstant")?)?;
    let conditions = els.iter().find(|e| e.path == ["Assertion", "Conditions"]);
    c.agent.note(
        "VIHF lifetime",
        serde_json::json!({"expires_in": j["expires_in"], "IssueInstant": els[0].attr("IssueInstant"),
            "NotBefore": conditions.and_then(|e| e.attr("NotBefore")), "NotOnOrAfter": conditions.and_then(|e| e.attr("NotOnOrAfter"))})
        .to_string(),
    );
    let expires_in = j["expires_in"].as_i64().context("the exchange's answer has no expires_in")?;
    ensure!((1..=MAX_LIFETIME).contains(&expires_in), "expires_in is {expires_in} s: EX_AIR-040 allows 30 s at most");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    ensure!((issued - now).abs() <= 120, "IssueInstant is {} s away from now", issued - now);
    if let Some(cond) = conditions {
        if let Some(nb) = cond.attr("NotBefore") {
            ensure!(instant(nb)? <= issued, "NotBefore {nb} is after IssueInstant");
        }
        let end = instant(cond.attr("NotOnOrAfter").context("Conditions without NotOnOrAfter")?)?;
        ensure!(
            end > issued && end - issued <= MAX_LIFETIME,
            "the assertion is valid {} s after IssueInstant: EX_AIR-040 allows 30 s at most",
            end - issued
        );
    }
    Ok(Verdict::Pass)
}

async fn single_identity(c: &Ctx) -> anyhow::Result<Verdict> {
    let CardSession { client, tokens: t, .. } = match card_session(c).await? {
        Ok(s) => s,
        Err(v) => return Ok(v),
    };
    let claims = crate::agent::jwt_part(&t.id, 1);
    let idnat = match claims["idnat"].as_str() {
        Some(i) => i.to_owned(),
        None => c.userinfo_get(&t.access).await?.json()["idnat"]
            .as_str()
            .context("neither the ID token nor userinfo gives the card holder's idnat")?
            .to_owned(),
    };
    let (_, first) = vihf(c, &client, &t.access).await?;
    let (_, second) = vihf(c, &client, &t.access).await?;
    let els = elements(&first)?;
    let subjects = els.iter().filter(|e| e.name() == "Subject").count();
    let names: Vec<&str> = els.iter().filter(|e| e.name() == "NameID").map(|e| e.text.trim()).collect();
    c.agent.note(
        "VIHF subject",
        serde_json::json!({"subjects": subjects, "name_ids": names, "session_idnat": idnat}).to_string(),
    );
    ensure!(
        subjects == 1 && names.len() == 1,
        "the VIHF has {subjects} Subject and {} NameID (one each expected)",
        names.len()
    );
    ensure!(names[0] == idnat, "the VIHF names {}, not the card holder logged in ({idnat})", names[0]);
    // The professional's name, in the statement: a second value names a second professional.
    let named = attributes(&els).get(SUBJECT_ID).map_or(0, Vec::len);
    ensure!(named <= 1, "the VIHF has {named} values of {SUBJECT_ID}: it names more than one professional");
    let (a, b) =
        (els[0].attr("ID").unwrap_or_default(), elements(&second)?[0].attr("ID").unwrap_or_default().to_owned());
    ensure!(
        !a.is_empty() && a != b,
        "two exchanges gave the same assertion ID {a:?}: a VIHF serves one request (EX_AIR-040)"
    );
    Ok(Verdict::Pass)
}

/// `r` refuses the exchange (400, an OAuth error, no VIHF), else what it answered.
fn refused(r: &crate::agent::Resp, what: &str) -> anyhow::Result<()> {
    let j = r.json();
    // The answer is named, never copied: a VIHF in it is a bearer token for 30 s.
    ensure!(
        r.status == 400 && j["error"].is_string() && j["access_token"].is_null(),
        "{what}: the exchange answered {} instead of a refusal{}",
        r.status,
        if j["access_token"].is_string() {
            format!(", with a VIHF ({})", j["issued_token_type"])
        } else {
            String::new()
        }
    );
    Ok(())
}

async fn refusals(c: &Ctx) -> anyhow::Result<Verdict> {
    let Some(dpi) = c.profile.dpi_client.clone() else {
        return Ok(Verdict::NotApplicable("the profile names no dpi_client".into()));
    };
    let client = c.profile.client(&dpi)?.clone();
    refused(&exchange(c, &client, None).await?, "without a subject token")?;
    refused(
        &exchange(c, &client, Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")).await?,
        "with a forged, unsigned token",
    )?;
    let (_, rp_tokens, _) = c.first_login().await?;
    refused(&exchange(c, &client, Some(&rp_tokens.access)).await?, "with the RP client's token (password + TOTP)")?;
    // A password + TOTP session of the DPI itself exists only where the RIE lets it in (the rie
    // plan judges that); the DMP's own rule must still refuse it a VIHF.
    // As the card's holder (an entitled professional: the card plan gets VIHFs for them) when the
    // profile lists them: another user's refusal could be for want of an entitlement, not the MIE.
    let holder: Vec<_> = c
        .profile
        .users
        .iter()
        .filter(|u| c.profile.card.as_ref().is_some_and(|card| card.username == u.username))
        .cloned()
        .collect();
    let users = if holder.is_empty() { &c.profile.users } else { &holder };
    let mut b = c.browser();
    let a = Authz::new(&client);
    let done = b.login(&a, users).await?;
    let p = done.redirect_params();
    if done.location().starts_with(&client.redirect_uri) && p.contains_key("code") {
        let t = Tokens::of(&c.redeem(&a, &p["code"]).await?)?;
        refused(&exchange(c, &client, Some(&t.access)).await?, "with a password + TOTP session of the DPI")?;
        c.agent.note("password + TOTP at the DPI", "a session of the DPI, refused a VIHF".into());
    } else {
        // A code the target refused (401) is no decision of the RIE: the check did not run.
        ensure!(
            done.status != 401,
            "the password + TOTP login at {dpi} was refused its one-time code ({}): the check could not run; wait a minute or list more test users",
            done.status
        );
        c.agent.note(
            "password + TOTP at the DPI",
            "no code: the login itself is refused, so no session to exchange".into(),
        );
    }
    Ok(Verdict::Pass)
}
