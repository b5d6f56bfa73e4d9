//! A refresh or a token exchange asks again about the person as they are now, not as they were at
//! login: an account disabled, an agent who left or was suspended, a card declared lost, a key or
//! a sponsorship withdrawn, a policy that changed — each ends the grant at its next use.
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::{Authentication, Mie};

use super::{Grant, TokenError};
use crate::state::Ports;

/// Whether the grant's authentication may still log in to `client`: the account, the MIE instance
/// of the login (card, key, sponsorship) by what the directory says now, and the policy
/// (`login_to_client`, audited) with the principal read now. When refused, the grant (`grant`, its
/// handle: `grant::grant_handle`) is revoked, the refusal audited, and the answer is
/// `invalid_grant` (RFC 6749 §5.2: the grant "is invalid, expired, revoked").
pub async fn still_allowed(grant: &Grant<'_>, auth: &Authentication, handle: &str) -> Result<(), TokenError> {
    let Grant { issuer, audit, client, caller, .. } = grant;
    let Some(reason) = refusal(grant, auth).await? else { return Ok(()) };
    crate::oidc::grant::revoke_grant(issuer.ports.store.as_ref(), issuer.config, handle).await?;
    audit.record(AuditEvent {
        kind: Some(AuditKind::Refused),
        outcome: Some(Outcome::Failure),
        subject: Some(auth.identity_id.clone()),
        client_id: Some(client.config.client_id.clone()),
        method: Some(auth.mie.as_str().to_owned()),
        reason: Some(format!("{reason}: the grant is revoked")),
        ip: Some(caller.ip.clone()),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
    Err(TokenError::new("invalid_grant", format!("{reason}: log in again")))
}

/// Why the authentication may no longer be used, if it may not.
async fn refusal(grant: &Grant<'_>, auth: &Authentication) -> Result<Option<String>, TokenError> {
    let (ports, id) = (grant.issuer.ports, &auth.identity_id);
    if ports.directory.account_disabled(id).await.map_err(TokenError::from)? {
        return Ok(Some("the account is disabled".into()));
    }
    if let Some(reason) = withdrawn_mie(ports, auth).await? {
        return Ok(Some(reason));
    }
    let principal = crate::policy::current_principal(grant.policy, ports, id).await.map_err(TokenError::internal)?;
    let decision = crate::policy::decide_login(grant.policy, grant.caller, &principal, grant.client, auth, true);
    if decision.allowed {
        return Ok(None);
    }
    Ok(Some(format!("the policy no longer lets this login into the client ({})", crate::policy::deciding(&decision))))
}

/// Whether the MIE instance of the login was withdrawn since: a card no longer in a status that
/// logs in, a FIDO2 key revoked, a sponsorship ended. Also asked of a session before SSO.
pub async fn withdrawn_mie(ports: &Ports, auth: &Authentication) -> Result<Option<String>, TokenError> {
    let Some(credential) = auth.credential.as_deref() else { return Ok(None) };
    let withdrawn = match auth.mie {
        Mie::Cps | Mie::Cpe => {
            let Some((issuer, serial)) = vigie_core::cards::parse_card_fingerprint(credential) else {
                return Ok(None);
            };
            let card = ports.cards.card_by_certificate(issuer, serial).await.map_err(TokenError::from)?;
            // A CPS the registry does not hold yet logs in by its idNat: nothing withdrew it.
            card.filter(|c| !c.status.allows_login())
                .map(|c| format!("the card of this login is {}", c.status.as_str()))
        }
        Mie::Fido2 => {
            let key = ports.fido2.credential(credential).await.map_err(TokenError::from)?;
            (key.is_none_or(|k| k.identity_id != auth.identity_id))
                .then(|| "the FIDO2 key of this login was revoked".to_owned())
        }
        Mie::Sponsorship => {
            let grant = credential.strip_prefix("sponsorship:").unwrap_or_default();
            let active = ports
                .sponsorships
                .active_grants(&auth.identity_id, crate::now())
                .await
                .map_err(TokenError::internal)?;
            (!active.iter().any(|g| g.id == grant)).then(|| "the sponsorship of this login has ended".to_owned())
        }
        _ => None,
    };
    Ok(withdrawn)
}

/// Why the account behind a session or an access token may no longer be used, read now from the
/// directory (on the request paths through `policy::standing`, which keeps it while nothing
/// changed in the deployment): the account disabled (a status, SCIM `active=false`, a
/// leaver), the agent suspended or gone. Two indexed reads, cheaper than a principal: what the
/// policy decides on (roles, kind, units) stays cached and follows changes by
/// `policy::view::signal_change`. Asked by `/authorize` before a session gets a code and by
/// `/userinfo` before it answers, as a refresh asks it ([`still_allowed`]): a change made on any
/// replica counts at the next request, not after the revocation sweep (`session::SWEEP_SECS`).
pub async fn account_standing(ports: &Ports, identity_id: &str) -> Result<Option<String>, String> {
    if ports.directory.account_disabled(identity_id).await.map_err(|e| e.to_string())? {
        return Ok(Some("the account is disabled".into()));
    }
    let (_, status) = ports.policy_attributes.policy_attributes(identity_id).await.map_err(|e| e.to_string())?;
    if status != "active" {
        return Ok(Some(format!("the agent's employment status is {status}")));
    }
    Ok(None)
}
