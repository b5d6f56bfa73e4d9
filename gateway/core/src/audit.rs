//! The audit port: one event per security-relevant act. Events never carry a secret, a token,
//! a password, a PIN or a TOTP code.
use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A login attempt with any MIE, successful or not.
    Login,
    /// Tokens issued at the token endpoint from an authorization code.
    TokenIssued,
    /// Tokens issued from a refresh token.
    TokenRefreshed,
    /// A token revoked at the revocation endpoint.
    TokenRevoked,
    /// An SSO session ended.
    Logout,
    /// A request refused (bad client, replayed code, reused refresh token, policy).
    Refused,
    /// A card record created for an agent (HR / medical affairs).
    CardCreated,
    /// A card moved in its life cycle (ordered, received, lost, stolen, ...).
    CardStatusChanged,
    /// A card bound to its certificate and handed over (with the override reason, if any).
    CardBound,
    /// An administrative role granted or revoked.
    RoleChanged,
    /// HR announced a professional (by idNat) for just-in-time creation at their first login
    /// through PSC, or withdrew the announcement (`object` = `announcement:<idNat>`).
    IdentityAnnounced,
    /// A policy decision on a login or a DMP access, with the policies that decided.
    PolicyDecision,
    /// The policy set was reloaded, or a changed set was refused (the old one kept).
    PolicyReloaded,
    /// A one-time FIDO2 enrolment code issued by HR, redeemed, or refused (the reason says which).
    EnrolmentCode,
    /// A FIDO2 security key registered (or its registration refused).
    KeyRegistered,
    /// A FIDO2 security key revoked (by its owner or an administrator); its sessions end.
    KeyRevoked,
    /// A person's or a credential's access ended: their sessions and tokens (status change,
    /// lost card, revoked key), completed from a durable note.
    AccessEnded,
    /// A use of the admin API by a static bearer token: which token, which action, which target.
    AdminApi,
    /// Security questions enrolled by their owner (for sponsorship), or the enrolment refused.
    SecurityQuestions,
    /// A sponsorship opened: the sponsor picked a colleague and a reason, the policy allowed it.
    SponsorshipOpened,
    /// A sponsorship refused: policy, daily limit, no questions enrolled, locked (the reason says).
    SponsorshipRefused,
    /// The colleague's answers checked: wrong answers counted, the lock reached.
    SponsorshipAnswers,
    /// A sponsorship granted: the temporary credential issued, a lost or stolen card suspended.
    SponsorshipGranted,
    /// A sponsorship notice e-mailed (or not, after the retries: the reason says why).
    SponsorshipMail,
    /// A person told by e-mail that a credential (a FIDO2 key, a card) was added to their account
    /// (or not, after the retries, or for want of an address: the reason says why).
    CredentialNotice,
    /// A VIHF issued for the DMP (reference EX_AIR-070): its id (`object`), the professional,
    /// the patient's INS hashed, the client.
    VihfIssued,
    /// A DMP SOAP call relayed (reference EX_AIR-090): service, action, VIHF id, outcome, latency.
    DmpCall,
    /// An upstream's circuit breaker changed state (`object` the upstream, `method` from->to,
    /// `reason` why): the switches into and out of degraded mode.
    UpstreamState,
    /// A change pushed through SCIM provisioning (`method` the HTTP method, `object` the
    /// resource, `reason` the attributes it named — names only, never values).
    Provisioned,
    /// An account changed by the sync of the establishment's directory (`vigie directory sync`,
    /// `directory.ldap.sync_interval_secs`): disabled because its entry is disabled or gone (a
    /// leaver), its access then ended (`reason` says which; `actor` is `directory-sync`).
    DirectorySync,
    /// The life cycle of a person (docs/identity-lifecycle.md): an HR feed run applied or refused
    /// by its safety stop (`object` the feed file and run), a person ended (a leaver, an end date
    /// passed) or brought back by HR (`username`, `reason` why, `actor` the feed run or the watch).
    Lifecycle,
    /// A card accepted although its issuer's newest CRL is past `nextUpdate` + grace
    /// (`cards.trust.after_grace = accept`): its revocation was not checked. Written with the
    /// login (or the binding) it let through — same subject, client, IP and request id — so the
    /// login can be found and reviewed once a fresh CRL is in (`object` the card's fingerprint).
    CardRevocationUnchecked,
    /// The trail searched (`vigie audit search`, `GET /admin/audit`, the admin console): who
    /// (`actor`) searched what (`reason`: the filters), and how many records came back (`object`).
    AuditSearched,
    /// An e-mail reminder before an end date (docs/identity-lifecycle.md, "Reminders before
    /// expiry"): `subject` the person whose access ends, `object` `to:person` / `to:sponsor`,
    /// `reason` the end date, the threshold and the attempts or why not sent (never the body).
    ReminderSent,
}

/// The result of the act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It succeeded.
    Success,
    /// It failed or was refused.
    Failure,
}

/// One audit record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditEvent {
    /// RFC 3339 time of the event.
    pub at: String,
    /// What happened.
    pub kind: Option<AuditKind>,
    /// The result.
    pub outcome: Option<Outcome>,
    /// Directory id of the identity concerned, when known.
    pub subject: Option<String>,
    /// The login name typed, for login attempts (never the password).
    pub username: Option<String>,
    /// The OAuth client concerned.
    pub client_id: Option<String>,
    /// The MIE or grant used.
    pub method: Option<String>,
    /// The `acr` reached.
    pub acr: Option<String>,
    /// The public SSO session id (`sid`), never the cookie value.
    pub sid: Option<String>,
    /// Client IP address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// The request id, also in the HTTP logs.
    pub request_id: Option<String>,
    /// Why it failed or was refused.
    pub reason: Option<String>,
    /// Who performed an administrative act: `staff:<identity id>` or `token:<name>`.
    pub actor: Option<String>,
    /// What an administrative act changed: a card id, a card fingerprint, a role.
    pub object: Option<String>,
    /// The professional's national identifier (idNat), when the act knows it (a card, PSC, a
    /// VIHF): the key of the DMP handover and of the FHIR export's `agent.who`.
    pub idnat: Option<String>,
    /// The patient concerned, as `sha256:<base64url>` of their INS: never the INS itself.
    pub patient: Option<String>,
}

/// Where audit events go.
pub trait AuditSink: Send + Sync {
    /// Records an event. Must not block the caller on slow I/O for long.
    fn record(&self, event: &AuditEvent);
    /// Blocks until every event recorded before is durably written (a graceful stop calls it
    /// last, so that no queued event is lost with the process).
    fn flush(&self) {}
    /// Records an event and calls `ack` once it is on stable storage (`true`) or could not be
    /// written (`false`): for the acts whose answer must wait for their trace (a login, a token,
    /// an admin act). A sink without storage of its own acknowledges at once.
    fn record_acked(&self, event: &AuditEvent, ack: Ack) {
        self.record(event);
        ack(true);
    }
}

/// Called once with whether an event reached stable storage ([`AuditSink::record_acked`]).
pub type Ack = Box<dyn FnOnce(bool) + Send>;
