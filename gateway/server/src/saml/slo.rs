//! Single Logout, front channel (saml-profiles §4.4), tied to Vigie's SSO session: each SP an
//! assertion went to is recorded with the session (its NameID; the SessionIndex is the `sid`);
//! a LogoutRequest from one of them (HTTP-Redirect or HTTP-POST) ends the session as the OIDC
//! logout does, then the browser carries a signed LogoutRequest to every other SP, one after the
//! other (the RelayState names the chain), and the initiator gets a signed LogoutResponse. Vigie's
//! own logout (`/logout`) runs the same chain before its last page (IdP-initiated, §4.4.3.1).
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::{EphemeralStore, StoreExt};

use super::decode;
use super::idp::{Idp, Sp};
use super::signed;
use super::slo_message::{self, ASSERTION, LogoutRequest, Message, PROTOCOL};
use super::slo_send;
use crate::config::Config;
use crate::secrets::random_token;
use crate::session::{self, Session, keys};
use crate::state::{Audit, OidcState, Ports, Upstreams, parts};
use crate::web::http::{Caller, esc};
use crate::web::pages::{Back, Say, error_page, unavailable};

const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const PARTIAL: &str = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout";
/// How old a LogoutRequest may be (its IssueInstant), and so how long its ID is remembered.
const FRESH_SECS: i64 = 600;
/// Clocks of SPs and Vigie may differ by this much.
const SKEW_SECS: i64 = 60;
/// How long the browser has to go round the SPs.
const CHAIN_TTL: Duration = Duration::from_secs(600);

parts! {
    /// What Single Logout reaches: the settings (SPs), the store (participants, the chain), and
    /// what ending a session reaches ([`session::Ending`]).
    pub struct Slo {
        config: Config,
        ports: Ports,
        audit: Audit,
        oidc: OidcState,
        upstreams: Upstreams,
        idp: super::SamlIdp,
    }
}

/// An SP that took part in a session, as its assertion named the person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub sp: String,
    pub name_id: String,
    pub format: String,
}

fn participants_key(sid: &str) -> String {
    format!("saml-sps:{sid}")
}

fn chain_key(token: &str) -> String {
    format!("saml-slo:{token}")
}

/// Records that `sid` sent an assertion to an SP: the SP will be told when the session ends.
pub async fn joined(
    store: &dyn EphemeralStore,
    session: &Session,
    who: &Participant,
) -> Result<(), vigie_core::store::StoreError> {
    let ttl = Duration::from_secs((session.expires_at - crate::now()).max(60) as u64);
    let member = serde_json::to_string(who).unwrap_or_default();
    store.add_to_set(&participants_key(&session.sid), &member, ttl).await
}

async fn participants(
    store: &dyn EphemeralStore,
    sid: &str,
) -> Result<Vec<Participant>, vigie_core::store::StoreError> {
    let mut all: Vec<Participant> =
        store.members(&participants_key(sid)).await?.iter().filter_map(|m| serde_json::from_str(m).ok()).collect();
    all.sort_by(|a, b| (&a.sp, &a.name_id).cmp(&(&b.sp, &b.name_id)));
    all.dedup();
    Ok(all)
}

/// The logout going round the SPs.
#[derive(Serialize, Deserialize)]
struct Chain {
    sid: String,
    /// SP-initiated: who asked, answered last.
    initiator: Option<Initiator>,
    pending: Vec<Participant>,
    told: u32,
    failed: Vec<String>,
    /// The LogoutRequest the browser carries now.
    awaiting: Option<(String, String)>,
    /// IdP-initiated: where Vigie's logout was going (a redirect); none: the logged-out page.
    then: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Initiator {
    sp: String,
    client_id: String,
    request_id: String,
    relay_state: Option<String>,
}

const BAD: Say<'static> = Say::new(
    "La demande de déconnexion de l'application n'est pas valable : fermez le navigateur pour terminer la session.",
    "The application's sign-out request is not valid: close the browser to end the session.",
);

/// `GET /saml/slo`: a LogoutRequest or LogoutResponse by HTTP-Redirect (saml-bindings §3.4.4).
pub async fn redirect(req: HttpRequest, slo: Slo) -> HttpResponse {
    let query = req.query_string().to_owned();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(encoded) = param("SAMLRequest").or_else(|| param("SAMLResponse")) else {
        return refuse(&req, &slo, "no SAMLRequest or SAMLResponse", BAD);
    };
    let xml = match decode::redirect_request(&encoded) {
        Ok(xml) => xml,
        Err(why) => return refuse(&req, &slo, why.reason(), BAD),
    };
    let signature = match (param("SigAlg"), param("Signature")) {
        (Some(alg), Some(sig)) => Some((alg, sig)),
        _ => None,
    };
    received(req, slo, xml, param("RelayState"), Some((query, signature))).await
}

/// `POST /saml/slo` (saml-bindings §3.5.4).
pub async fn post(req: HttpRequest, slo: Slo, form: web::Form<Vec<(String, String)>>) -> HttpResponse {
    let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(encoded) = param("SAMLRequest").or_else(|| param("SAMLResponse")) else {
        return refuse(&req, &slo, "no SAMLRequest or SAMLResponse", BAD);
    };
    let xml = match decode::post_request(&encoded) {
        Ok(xml) => xml,
        Err(why) => return refuse(&req, &slo, why.reason(), BAD),
    };
    received(req, slo, xml, param("RelayState"), None).await
}

type RedirectSignature = Option<(String, Option<(String, String)>)>;

async fn received(
    req: HttpRequest,
    slo: Slo,
    xml: String,
    relay: Option<String>,
    redirect: RedirectSignature,
) -> HttpResponse {
    let Some(idp) = slo.idp.get() else {
        return super::not_configured();
    };
    let message = match slo_message::read(&xml) {
        Ok(m) => m,
        Err(why) => return refuse(&req, &slo, &format!("not a logout message: {why}"), BAD),
    };
    let issuer = match &message {
        Message::Request(r) => r.issuer.clone(),
        Message::Response(r) => r.issuer.clone(),
    };
    let Some(sp) = idp.sp(&issuer) else {
        return refuse(&req, &slo, "the logout message's Issuer is not a registered SP", BAD);
    };
    // What the signature covers, or nothing (saml-bindings §3.4.4.1 for Redirect: over the
    // query's octets; §3.5.5.2 for POST: an enveloped XML signature, read after reduction so a
    // wrapped element is never what is used).
    // saml-profiles §4.4.4.1/§4.4.4.2: over a front-channel binding the requester "MUST
    // authenticate itself … by signing" its LogoutRequest/LogoutResponse; the HTTP bindings offer
    // no other mechanism. So every SP signs its logout messages, whatever `require_signed_requests`
    // says of its AuthnRequests: NameID and SessionIndex travel in assertions and ID tokens, and
    // must not be enough to end someone's session.
    let signed_required = true;
    let message = match redirect {
        Some((query, Some((alg, sig)))) => match super::flow::verify_redirect(sp, &query, &alg, &sig) {
            Ok(()) => Some(message),
            Err(why) => return refuse(&req, &slo, &why, BAD),
        },
        Some((_, None)) => (!signed_required).then_some(message),
        None => {
            let id = |m: &Message| match m {
                Message::Request(r) => (r.signed, r.id.clone()),
                Message::Response(r) => (r.signed, r.id.clone()),
            };
            let (signed, root_id) = id(&message);
            // saml-bindings §3.5.5.2: the message itself is signed (a `Signature` child of its
            // root). A signature elsewhere (a signed message wrapped in a forged one) is not the
            // SP signing this message.
            if !signed {
                (!signed_required).then_some(message)
            } else {
                match signed::verified(&xml, sp).map(|x| slo_message::read(&x)) {
                    // What the signature covers is the root that was read, not an element of it.
                    Ok(Ok(m)) if id(&m).1 == root_id => Some(m),
                    // SHA-1 and the like (saml/signed.rs): the page says so. The SP is not
                    // answered: a LogoutResponse is signed by Vigie, and Vigie signs nothing in
                    // answer to a message it could not authenticate.
                    Err(why @ signed::Refused::Algorithm { .. }) => {
                        let reason = why.reason("logout message");
                        tracing::warn!(sp = sp.entity_id, "SAML logout message refused: {reason}");
                        return refuse(&req, &slo, &reason, signed::WEAK_ALGORITHM);
                    }
                    _ => return refuse(&req, &slo, "the logout message's signature does not verify", BAD),
                }
            }
        }
    };
    let Some(message) = message else {
        return refuse(&req, &slo, "the SP must sign its logout messages and this one is not signed", BAD);
    };
    // saml-bindings §3.5.5.2 (POST) and §3.4.5.2 (Redirect): a signed message's Destination "MUST
    // contain the URL to which the sender has instructed the user agent to deliver the message",
    // and the recipient "MUST then verify that the value matches the location at which the
    // message has been received". Every logout message is signed (above), so every one names
    // Vigie's SingleLogoutService: one signed for another IdP, or for none, is not replayed here.
    let destination = match &message {
        Message::Request(r) => r.destination.as_deref(),
        Message::Response(r) => r.destination.as_deref(),
    };
    if destination != Some(slo.config.endpoint("/saml/slo").as_str()) {
        return refuse(&req, &slo, "the logout message's Destination is not Vigie's SingleLogoutService", BAD);
    }
    match message {
        Message::Request(r) => sp_initiated(req, slo, &idp, sp, r, relay).await,
        Message::Response(r) => {
            let Some(token) = relay else {
                return refuse(&req, &slo, "a LogoutResponse without the RelayState Vigie sent", BAD);
            };
            // Taken, not read: of two copies of one LogoutResponse arriving together, one takes the
            // step and advances the chain; the other finds nothing (the store's `take` returns a
            // value at most once) and is refused.
            let mut chain = match slo.ports.store.take_json::<Chain>(&chain_key(&token)).await {
                Ok(Some(c)) => c,
                Ok(None) => return refuse(&req, &slo, "a LogoutResponse for no logout under way", expired()),
                Err(e) => return unavailable(&req, &e),
            };
            // saml-core §3.2.2: InResponseTo names our request, sent to this very SP.
            let ours = chain
                .awaiting
                .as_ref()
                .is_some_and(|(s, id)| *s == sp.entity_id && r.in_response_to.as_deref() == Some(id.as_str()));
            if !ours {
                // Not this step's answer: the chain stays for the one that is.
                if let Err(e) = slo.ports.store.put_json(&chain_key(&token), &chain, CHAIN_TTL).await {
                    return unavailable(&req, &e);
                }
                return refuse(&req, &slo, "a LogoutResponse that answers no request Vigie sent to this SP", BAD);
            }
            chain.awaiting = None;
            if r.status == SUCCESS {
                chain.told += 1;
            } else {
                tracing::warn!(sp = sp.entity_id, status = r.status, "an SP did not log out");
                chain.failed.push(sp.entity_id.clone());
            }
            next(&req, &slo, &idp, &token, chain).await
        }
    }
}

/// saml-profiles §4.4.4.1: the request must name a session Vigie gave this SP.
async fn sp_initiated(
    req: HttpRequest,
    slo: Slo,
    idp: &Idp,
    sp: &Sp,
    r: LogoutRequest,
    relay: Option<String>,
) -> HttpResponse {
    let now = Utc::now();
    let time = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc));
    let Some(issued) = time(&r.issue_instant) else {
        return refuse(&req, &slo, "IssueInstant is not an xs:dateTime", BAD);
    };
    let age = (now - issued).num_seconds();
    if !(-SKEW_SECS..=FRESH_SECS).contains(&age) {
        return refuse(&req, &slo, "the LogoutRequest's IssueInstant is too old or in the future", expired());
    }
    // saml-core §3.7.1: "NotOnOrAfter … the time at which the request expires".
    if let Some(until) = &r.not_on_or_after {
        match time(until) {
            Some(t) if (now - t).num_seconds() < SKEW_SECS => {}
            _ => return refuse(&req, &slo, "the LogoutRequest is past its NotOnOrAfter", expired()),
        }
    }
    let sids = if r.session_indexes.is_empty() {
        match session::current(&slo.ports, &slo.config, &req).await {
            Ok(s) => s.map(|s| vec![s.sid]).unwrap_or_default(),
            Err(e) => return unavailable(&req, &e),
        }
    } else {
        r.session_indexes.clone()
    };
    let mut found = None;
    for sid in sids {
        match participants(slo.ports.store.as_ref(), &sid).await {
            Ok(p) if p.iter().any(|p| p.sp == sp.entity_id && p.name_id == r.name_id) => {
                found = Some((sid, p));
                break;
            }
            Ok(_) => {}
            Err(e) => return unavailable(&req, &e),
        }
    }
    let Some((sid, all)) = found else {
        return refuse(
            &req,
            &slo,
            "the LogoutRequest's SessionIndex and NameID name no session Vigie gave this SP",
            Say::new(
                "Cette session est inconnue de Vigie ou déjà terminée : fermez le navigateur pour terminer la session.",
                "Vigie does not know this session, or it has already ended: close the browser to end the session.",
            ),
        );
    };
    // An ID is used once (saml-core §1.3.4: IDs are unique): remembered as long as a request
    // with it may be fresh.
    let seen = format!("saml-slo-seen:{}:{}", crate::secrets::sha256_b64(sp.entity_id.as_bytes()), r.id);
    match slo.ports.store.put_if_absent(&seen, b"1", Duration::from_secs((FRESH_SECS + SKEW_SECS) as u64)).await {
        Ok(true) => {}
        Ok(false) => return refuse(&req, &slo, "the LogoutRequest's ID was already used (a replay)", expired()),
        Err(e) => return unavailable(&req, &e),
    }
    let live = match slo.ports.store.get(&keys::session_of_sid(&sid)).await {
        Ok(k) => k.is_some(),
        Err(e) => return unavailable(&req, &e),
    };
    // An SP asking again for a session already ended is answered Success: the others were told.
    let pending: Vec<Participant> =
        if live { all.into_iter().filter(|p| p.sp != sp.entity_id).collect() } else { Vec::new() };
    if live {
        let ending = session::Ending {
            config: &slo.config,
            ports: &slo.ports,
            oidc: &slo.oidc,
            audit: &slo.audit,
            http: &slo.upstreams.http,
        };
        crate::oidc::logout::end_session(ending, &Caller::of(&req, &slo.config.server), &sid).await;
    }
    let chain = Chain {
        sid,
        initiator: Some(Initiator {
            sp: sp.entity_id.clone(),
            client_id: sp.config.client_id.clone(),
            request_id: r.id,
            relay_state: relay,
        }),
        pending,
        told: 0,
        failed: Vec::new(),
        awaiting: None,
        then: None,
    };
    let mut resp = next(&req, &slo, idp, &random_token(24), chain).await;
    let _ = resp.add_cookie(&session::clear_cookie());
    resp
}

/// The hook of Vigie's own logout (`/logout`, OIDC RP-initiated): when SAML SPs took part in the
/// ended session `sid`, the browser tells each before it gets `done` (its redirect or page).
pub async fn after_logout(req: &HttpRequest, sid: &str, done: HttpResponse) -> HttpResponse {
    let Ok(slo) = <Slo as actix_web::FromRequest>::from_request(req, &mut actix_web::dev::Payload::None).into_inner()
    else {
        return done;
    };
    let Some(idp) = slo.idp.get() else { return done };
    let pending = match participants(slo.ports.store.as_ref(), sid).await {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => return done,
        Err(e) => {
            tracing::error!(error = %e, "the SAML SPs of the session could not be read: they are not told");
            return done;
        }
    };
    let then = (done.status() == StatusCode::SEE_OTHER)
        .then(|| done.headers().get(header::LOCATION).and_then(|l| l.to_str().ok()).map(str::to_owned))
        .flatten();
    let chain =
        Chain { sid: sid.to_owned(), initiator: None, pending, told: 0, failed: Vec::new(), awaiting: None, then };
    let mut resp = next(req, &slo, &idp, &random_token(24), chain).await;
    // The cookies `done` set (the session cookie cleared, PSC's logout state) go now.
    for c in done.cookies() {
        let _ = resp.add_cookie(&c.into_owned());
    }
    resp
}

/// The next SP of the chain, or its end.
async fn next(req: &HttpRequest, slo: &Slo, idp: &Idp, token: &str, mut chain: Chain) -> HttpResponse {
    while let Some(p) = chain.pending.pop() {
        let Some(sp) = idp.sp(&p.sp) else { continue };
        // saml-profiles §4.4.3.3: to the SP's SingleLogoutService, by HTTP-Redirect or HTTP-POST.
        let Some(to) = slo_send::endpoint(sp) else {
            tracing::warn!(sp = p.sp, "the SP has no HTTP-Redirect or HTTP-POST SingleLogoutService: it is not told");
            chain.failed.push(p.sp.clone());
            continue;
        };
        let location = to.location.clone();
        let id = message_id();
        let now = Utc::now();
        let xml = format!(
            r#"<samlp:LogoutRequest xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}" NotOnOrAfter="{}"><saml:Issuer>{}</saml:Issuer><saml:NameID Format="{}">{}</saml:NameID><samlp:SessionIndex>{}</samlp:SessionIndex></samlp:LogoutRequest>"#,
            instant(now),
            esc(&location),
            instant(now + chrono::Duration::seconds(300)),
            esc(&idp.entity_id),
            esc(&p.format),
            esc(&p.name_id),
            esc(&chain.sid),
        );
        let resp = match slo_send::send(idp, to.binding, &location, "SAMLRequest", &id, &xml, Some(token)) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "a LogoutRequest could not be signed");
                chain.failed.push(p.sp.clone());
                continue;
            }
        };
        chain.awaiting = Some((p.sp.clone(), id));
        if let Err(e) = slo.ports.store.put_json(&chain_key(token), &chain, CHAIN_TTL).await {
            return unavailable(req, &e);
        }
        return resp;
    }
    if let Err(e) = slo.ports.store.delete(&chain_key(token)).await {
        tracing::warn!(error = %e, "the finished logout chain could not be deleted; it expires");
    }
    let caller = Caller::of(req, &slo.config.server);
    let from = chain.initiator.as_ref().map(|i| i.sp.as_str()).unwrap_or("Vigie");
    slo.audit.record(AuditEvent {
        kind: Some(AuditKind::Logout),
        outcome: Some(if chain.failed.is_empty() { Outcome::Success } else { Outcome::Failure }),
        sid: Some(chain.sid.clone()),
        client_id: chain.initiator.as_ref().map(|i| i.client_id.clone()),
        reason: Some(format!(
            "saml: single logout from {from}: {} SP(s) told, {} not ({})",
            chain.told,
            chain.failed.len(),
            chain.failed.join(", ")
        )),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
    let Some(initiator) = chain.initiator else {
        return match chain.then {
            Some(u) => see_other(&u),
            None => crate::web::pages::logged_out(req),
        };
    };
    let Some(sp) = idp.sp(&initiator.sp) else { return crate::web::pages::logged_out(req) };
    // saml-metadata §2.2.2: the ResponseLocation when given, else the Location.
    let Some(to) = slo_send::endpoint(sp) else {
        tracing::warn!(
            sp = initiator.sp,
            "the SP has no HTTP-Redirect or HTTP-POST SingleLogoutService for its LogoutResponse"
        );
        return crate::web::pages::logged_out(req);
    };
    let location = to.for_responses().to_owned();
    let id = message_id();
    // saml-core §3.7.3.2: PartialLogout when not every participant could be told.
    let second =
        if chain.failed.is_empty() { String::new() } else { format!(r#"<samlp:StatusCode Value="{PARTIAL}"/>"#) };
    let xml = format!(
        r#"<samlp:LogoutResponse xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="{}" Version="2.0" IssueInstant="{}" Destination="{}" InResponseTo="{}"><saml:Issuer>{}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{SUCCESS}">{second}</samlp:StatusCode></samlp:Status></samlp:LogoutResponse>"#,
        id,
        instant(Utc::now()),
        esc(&location),
        esc(&initiator.request_id),
        esc(&idp.entity_id),
    );
    match slo_send::send(idp, to.binding, &location, "SAMLResponse", &id, &xml, initiator.relay_state.as_deref()) {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(error = %e, "the LogoutResponse could not be signed");
            crate::web::pages::logged_out(req)
        }
    }
}

fn message_id() -> String {
    // xs:ID is an NCName: not a digit first.
    format!("_{}", random_token(24).replace('-', "_"))
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn see_other(url: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn expired() -> Say<'static> {
    Say::new(
        "Cette demande de déconnexion a déjà servi ou a expiré : fermez le navigateur pour terminer la session.",
        "This sign-out request was already used or has expired: close the browser to end the session.",
    )
}

fn refuse(req: &HttpRequest, slo: &Slo, reason: &str, page: Say<'_>) -> HttpResponse {
    let caller = Caller::of(req, &slo.config.server);
    slo.audit.record(AuditEvent {
        kind: Some(AuditKind::Refused),
        outcome: Some(Outcome::Failure),
        reason: Some(format!("saml logout: {reason}")),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
    error_page(req, StatusCode::BAD_REQUEST, page, Back::Home)
}
