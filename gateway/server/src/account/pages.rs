//! The account pages' texts (FR and EN) and the keys page itself, `/account/keys`.
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::access::{Access, access};
use crate::config::Config;
use crate::login::fido2::allow_script;
use crate::state::{Part, PolicyGate, Ports};
use crate::web::http::esc;
use crate::web::pages::{self, Lang, html_page};

pub(super) struct Texts {
    pub(super) title: &'static str,
    pub(super) intro: &'static str,
    pub(super) none: &'static str,
    pub(super) caption: &'static str,
    pub(super) name: &'static str,
    pub(super) aaguid: &'static str,
    pub(super) created: &'static str,
    pub(super) last_used: &'static str,
    pub(super) never: &'static str,
    pub(super) revoke: &'static str,
    pub(super) add_title: &'static str,
    pub(super) name_label: &'static str,
    pub(super) default_name: &'static str,
    pub(super) add: &'static str,
    pub(super) add_help: &'static str,
    pub(super) too_old: &'static str,
    pub(super) nobody: &'static str,
    pub(super) code_title: &'static str,
    pub(super) code_label: &'static str,
    pub(super) code_help: &'static str,
    pub(super) code_submit: &'static str,
    pub(super) code_refused: &'static str,
    pub(super) added: &'static str,
    pub(super) revoked: &'static str,
    pub(super) unsupported: &'static str,
    pub(super) failed: &'static str,
    pub(super) forbidden: &'static str,
    pub(super) reg_refused: &'static str,
    pub(super) aaguid_refused: &'static str,
    pub(super) done: &'static str,
    pub(super) done_text: &'static str,
    pub(super) synced_refused: &'static str,
}

const FR: Texts = Texts {
    title: "Mes clés de sécurité",
    intro: "Clés de sécurité FIDO2 enregistrées pour",
    none: "Aucune clé enregistrée.",
    caption: "Clés enregistrées",
    name: "Nom",
    aaguid: "Modèle (AAGUID)",
    created: "Ajoutée le",
    last_used: "Dernière utilisation",
    never: "jamais",
    revoke: "Révoquer",
    add_title: "Ajouter une clé",
    name_label: "Nom de la clé",
    default_name: "Ma clé FIDO2",
    add: "Enregistrer une nouvelle clé",
    add_help: "Branchez la clé ; il vous sera demandé de définir ou de saisir son code PIN.",
    too_old: "Pour ajouter une clé, reconnectez-vous avec deux facteurs : votre dernière connexion est trop ancienne.",
    nobody: "Connectez-vous d'abord à une application de l'établissement, ou saisissez le code d'enrôlement remis par les ressources humaines.",
    code_title: "Enrôler une clé de sécurité",
    code_label: "Code d'enrôlement",
    code_help: "Le code à usage unique remis par les ressources humaines (par exemple ABCD-EFGH-JKMN-PQRS).",
    code_submit: "Continuer",
    code_refused: "Ce code est inconnu, a expiré ou a déjà servi. Demandez-en un nouveau aux ressources humaines.",
    added: "La clé a été enregistrée.",
    revoked: "La clé a été révoquée ; les sessions ouvertes avec elle sont terminées.",
    unsupported: "Ce navigateur ne permet pas d'utiliser une clé de sécurité.",
    failed: "La clé de sécurité n'a pas répondu ou l'opération a été annulée. Réessayez.",
    forbidden: "Ce formulaire n'a pas été délivré à ce navigateur, ou votre session a changé : rechargez la page.",
    reg_refused: "L'enregistrement de la clé a été refusé : la vérification de la clé a échoué (code PIN exigé). Réessayez.",
    aaguid_refused: "Ce modèle de clé n'est pas autorisé par l'établissement. Utilisez une clé fournie par le service informatique.",
    synced_refused: "Cette clé est synchronisée (gestionnaire de mots de passe, téléphone) : seules les clés de sécurité matérielles sont acceptées.",
    done: "Terminer l'enrôlement",
    done_text: "L'enrôlement est terminé. Vous pouvez vous connecter avec votre clé et fermer cette page.",
};

const EN: Texts = Texts {
    title: "My security keys",
    intro: "FIDO2 security keys registered for",
    none: "No key registered.",
    caption: "Registered keys",
    name: "Name",
    aaguid: "Model (AAGUID)",
    created: "Added",
    last_used: "Last used",
    never: "never",
    revoke: "Revoke",
    add_title: "Add a key",
    name_label: "Key name",
    default_name: "My FIDO2 key",
    add: "Register a new key",
    add_help: "Plug in the key; you will be asked to set or enter its PIN.",
    too_old: "To add a key, sign in again with two factors: your last sign-in is too old.",
    nobody: "Sign in to an application of the establishment first, or enter the enrolment code HR gave you.",
    code_title: "Enrol a security key",
    code_label: "Enrolment code",
    code_help: "The one-time code HR gave you (e.g. ABCD-EFGH-JKMN-PQRS).",
    code_submit: "Continue",
    code_refused: "This code is unknown, expired or already used. Ask HR for a new one.",
    added: "The key was registered.",
    revoked: "The key was revoked; the sessions opened with it have ended.",
    unsupported: "This browser cannot use a security key.",
    failed: "The security key did not answer or the operation was cancelled. Try again.",
    forbidden: "This form was not issued to this browser, or your session changed: reload the page.",
    reg_refused: "The key registration was refused: the key check failed (a PIN is required). Try again.",
    aaguid_refused: "This key model is not allowed by the establishment. Use a key supplied by IT.",
    synced_refused: "This key is synchronised (password manager, phone): only hardware security keys are accepted.",
    done: "End enrolment",
    done_text: "Enrolment is over. You can sign in with your key and close this page.",
};

pub(super) fn texts(l: Lang) -> &'static Texts {
    pages::tr(l, &FR, &EN)
}

fn date(rfc3339: &str) -> String {
    rfc3339.get(..16).unwrap_or(rfc3339).replace('T', " ")
}

#[derive(Deserialize)]
pub struct PageQuery {
    pub done: Option<String>,
}

/// `GET /account/keys`: the keys of the signed-in user (or of the holder of an enrolment code),
/// with a form to add one when allowed and a button to revoke each.
pub async fn keys_page(
    req: HttpRequest,
    (config, ports, policy): (Part<Config>, Part<Ports>, Part<PolicyGate>),
    q: web::Query<PageQuery>,
) -> HttpResponse {
    let l = pages::lang(&req, None);
    let t = texts(l);
    let access = match access(&ports, &config, &policy, &req).await {
        Ok(a) => a,
        Err(e) => return pages::unavailable(&req, &e),
    };
    let (holder, may_add) = match access {
        Access::Enrol(h) => (h, true),
        Access::ListOnly(h) => (h, false),
        Access::Nobody => {
            let main = format!(
                r#"<p>{nobody}</p><p><a class="button" href="/account/enrol">{code}</a></p>{back}{switch}"#,
                nobody = t.nobody,
                code = t.code_title,
                back = pages::Back::Home.link(&req, l),
                switch = pages::lang_switch(l, "/account/keys?"),
            );
            return html_page(l, StatusCode::OK, t.title, &main, None);
        }
    };
    let (identity, keys) = match tokio::try_join!(
        ports.directory.identity(&holder.identity_id),
        ports.fido2.credentials_of(&holder.identity_id)
    ) {
        Ok(v) => v,
        Err(e) => return pages::unavailable(&req, &e),
    };
    let who = identity.map(|i| format!("{} {}", i.given_name, i.family_name)).unwrap_or_default();
    let done = match q.done.as_deref() {
        Some("added") => format!(r#"<p class="notice" role="status">{}</p>"#, t.added),
        Some("revoked") => format!(r#"<p class="notice" role="status">{}</p>"#, t.revoked),
        _ => String::new(),
    };
    let list = if keys.is_empty() {
        format!(r#"<p id="no-keys">{}</p>"#, t.none)
    } else {
        let rows: String = keys
            .iter()
            .map(|k| {
                let revoke = if holder.can_revoke {
                    format!(
                        r#"<form method="post" action="/account/keys/revoke"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="id" value="{id}"><button type="submit" class="small">{label}</button></form>"#,
                        csrf = esc(&holder.csrf),
                        id = esc(&k.id),
                        label = t.revoke
                    )
                } else {
                    String::new()
                };
                format!(
                    r#"<tr data-key="{id}"><td>{name}</td><td><code>{aaguid}</code></td><td>{created}</td><td>{used}</td><td>{revoke}</td></tr>"#,
                    id = esc(&k.id),
                    name = esc(&k.name),
                    aaguid = esc(&k.aaguid),
                    created = esc(&date(&k.created_at)),
                    used = esc(&k.last_used_at.as_deref().map(date).unwrap_or_else(|| t.never.into())),
                )
            })
            .collect();
        format!(
            r#"<table id="keys"><caption>{caption}</caption><thead><tr><th scope="col">{n}</th><th scope="col">{a}</th><th scope="col">{c}</th><th scope="col">{u}</th><th></th></tr></thead><tbody>{rows}</tbody></table>"#,
            caption = t.caption,
            n = t.name,
            a = t.aaguid,
            c = t.created,
            u = t.last_used
        )
    };
    let add = if may_add {
        format!(
            r#"<h2>{title}</h2>
<form method="post" action="/account/keys" id="register-key" data-webauthn="create" data-options="/account/keys/options">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="credential" value="">
<label for="key-name">{label}</label>
<input id="key-name" name="name" type="text" maxlength="64" required value="{default}">
<button type="submit">{add}</button>
<p class="help">{help}</p>
<p class="error" role="alert" id="fido2-error" hidden data-unsupported="{unsupported}" data-failed="{failed}"></p>
</form>
<script src="/static/fido2.js" defer></script>"#,
            title = t.add_title,
            csrf = esc(&holder.csrf),
            label = t.name_label,
            default = t.default_name,
            add = t.add,
            help = t.add_help,
            unsupported = esc(t.unsupported),
            failed = esc(t.failed),
        )
    } else {
        format!(r#"<p class="help" id="add-refused">{}</p>"#, t.too_old)
    };
    // A code holder ends the grant explicitly when done (shared workstations).
    let finish = if holder.can_revoke {
        String::new()
    } else {
        format!(
            r#"<form method="post" action="/account/enrol/done" id="end-enrolment"><input type="hidden" name="csrf" value="{csrf}"><button type="submit">{label}</button></form>"#,
            csrf = esc(&holder.csrf),
            label = t.done
        )
    };
    let main = format!(
        r#"<p>{intro} <strong>{who}</strong>.</p>{done}{list}{add}{finish}{back}{switch}"#,
        intro = t.intro,
        who = esc(&who),
        back = pages::Back::Home.link(&req, l),
        switch = pages::lang_switch(l, "/account/keys?"),
    );
    let mut resp = html_page(l, StatusCode::OK, t.title, &main, None);
    resp.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    if may_add {
        allow_script(&mut resp);
    }
    resp
}
