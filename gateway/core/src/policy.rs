//! The policy port: may this identity, authenticated this way, in this context, do this to that
//! resource (use a client, reach the DMP, sponsor a colleague, enrol a MIE, administer) — and if
//! not, which MIE would make it so (step-up). Engines implement [`PolicyEngine`]; the Cedar one
//! lives in `vigie-policies`.
use serde::{Deserialize, Serialize};

use crate::auth::{AssuranceLevel, Authentication, Factor, Mie};

/// What is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Log in to a client (an application): the authorization endpoint.
    LoginToClient,
    /// Reach the DMP (a VIHF, a relayed SOAP call).
    AccessDmp,
    /// Open a sponsorship for a colleague.
    Sponsor,
    /// Register a new MIE (a FIDO2 key, security questions).
    EnrolMie,
    /// An administrative act (cards, keys, roles).
    Administer,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 5] =
        [Action::LoginToClient, Action::AccessDmp, Action::Sponsor, Action::EnrolMie, Action::Administer];

    /// The action's name, as policies and audit lines spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::LoginToClient => "login_to_client",
            Action::AccessDmp => "access_dmp",
            Action::Sponsor => "sponsor",
            Action::EnrolMie => "enrol_mie",
            Action::Administer => "administer",
        }
    }

    /// The action with this name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Whether an account is a person's own or shared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// One person's account.
    #[default]
    Personal,
    /// A shared (generic) account: never on a sensitive service (RIE).
    Generic,
}

impl AccountKind {
    /// The label policies and the directory use.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Personal => "personal",
            AccountKind::Generic => "generic",
        }
    }

    /// The kind with this label.
    pub fn parse(s: &str) -> Option<Self> {
        [AccountKind::Personal, AccountKind::Generic].into_iter().find(|k| k.as_str() == s)
    }
}

/// Who asks: the identity, with what the policies may read of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Directory id.
    pub id: String,
    /// Profession code of the ANS nomenclature (TRE_G15: `10` médecin, `21` pharmacien, `40`
    /// chirurgien-dentiste, `50` sage-femme, `60` infirmier, `70` masseur-kinésithérapeute…), when known.
    pub profession_code: Option<String>,
    /// Broad category: `medical`, `pharmacy`, `paramedical`, `administrative`, `technical`, `unknown`.
    pub category: String,
    /// Roles granted in Vigie (`cards`, `fido2`, …).
    pub roles: Vec<String>,
    /// Functional units (UF) the identity works in.
    pub units: Vec<String>,
    /// Whether the identity has a national identifier (idNat_PS).
    pub has_idnat: bool,
    /// `active`, `suspended` or `left`.
    pub employment_status: String,
    /// Personal or generic account.
    pub account_kind: AccountKind,
}

/// An admin API token as a principal (`Vigie::ApiToken` in the schema): a bearer token of the
/// configuration, with its roles and scopes. It has no interactive authentication: its
/// `context.authentication` is that of a bearer credential (MIE `api_token`, no factor, level 0),
/// so that no rule written for people's logins is met by it by accident.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPrincipal {
    /// The token's name (`[admin] tokens[].name`).
    pub name: String,
    /// Roles it holds (`cards`, `fido2`).
    pub roles: Vec<String>,
    /// Scopes it holds (`cards:read`, `keys:enrol`, …).
    pub scopes: Vec<String>,
    /// The scope the call being decided needs.
    pub scope: String,
}

/// A client (application) as the policies see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientResource {
    /// `client_id`.
    pub id: String,
    /// A "sensitive" service of the RIE (the DPI and what integrates shared services, external
    /// access, …): two-factor MIE only.
    pub sensitive: bool,
    /// The level every login to it must reach, if the client says so.
    pub required_level: Option<AssuranceLevel>,
    /// Who it is for (`staff`, `external`, …): a free label from its registration.
    pub audience: String,
}

/// What is acted upon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Resource {
    /// A client (application).
    Client(ClientResource),
    /// The DMP (Dossier Médical Partagé).
    Dmp,
    /// A colleague (for a sponsorship).
    Colleague {
        /// Directory id.
        id: String,
        /// Their functional units.
        units: Vec<String>,
    },
    /// Vigie itself (enrolment, administration).
    System,
}

/// The context of a decision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyContext {
    /// PSC or the external link is down.
    pub degraded: bool,
    /// Network zone of the caller, from the configured CIDRs (`internal`, `external`, …).
    pub network_zone: String,
    /// Local hour of day, 0–23.
    pub hour: u8,
    /// Within the establishment's transition period, where password + TOTP is still allowed on
    /// sensitive services (configuration, with an end date).
    pub password_totp_transition: bool,
    /// Action `sponsor`: how many colleagues the principal sponsored in the last 24 hours (the
    /// policy bounds it); 0 for the other actions.
    #[serde(default)]
    pub sponsorships_today: u32,
}

/// A question to the policy engine.
#[derive(Clone, Debug)]
pub struct PolicyRequest<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// What for.
    pub action: Action,
    /// On what.
    pub resource: &'a Resource,
    /// How they authenticated.
    pub authentication: &'a Authentication,
    /// Runtime context.
    pub context: &'a PolicyContext,
    /// Now, Unix seconds (the authentication's age is measured from it).
    pub now: i64,
}

/// The answer, with what decided it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Access is granted.
    pub allowed: bool,
    /// Ids of the policies that decided (the permits that allowed, or the forbids that refused).
    pub policies: Vec<String>,
    /// When refused: the MIE with which a fresh login would be allowed (step-up); empty when none would.
    pub step_up: Vec<Mie>,
    /// Errors met while evaluating (a policy that failed is skipped, as Cedar does).
    pub errors: Vec<String>,
}

impl Decision {
    /// An allowing decision by these policies.
    pub fn allow(policies: Vec<String>) -> Self {
        Self { allowed: true, policies, ..Default::default() }
    }
}

/// The factors a fresh login with this MIE proves — what a step-up candidate would bring.
pub fn factors_of(mie: Mie) -> Vec<Factor> {
    match mie {
        Mie::Cps | Mie::Cpe => vec![Factor::Sc, Factor::Pin],
        Mie::Fido2 => vec![Factor::Hwk, Factor::Pin],
        Mie::Ecps => vec![Factor::Hwk, Factor::Pin],
        Mie::CpsViaPsc => vec![Factor::Sc, Factor::Pin],
        Mie::PasswordTotp => vec![Factor::Pwd, Factor::Otp],
        Mie::Sponsorship => vec![Factor::Pwd, Factor::User],
    }
}

/// Every MIE, strongest kinds first: the step-up candidates.
pub const ALL_MIE: [Mie; 7] =
    [Mie::Cps, Mie::Cpe, Mie::Fido2, Mie::CpsViaPsc, Mie::Ecps, Mie::PasswordTotp, Mie::Sponsorship];

/// A policy engine.
pub trait PolicyEngine: Send + Sync {
    /// Decides one request; when refused, says which MIE would do (by asking again as if the
    /// principal had just logged in with each candidate).
    fn decide(&self, request: &PolicyRequest<'_>) -> Decision;
    /// Decides an administrative act (`administer` on the system) by an admin API token, in
    /// this context. No step-up: a token cannot log in again.
    fn decide_token(&self, token: &TokenPrincipal, context: &PolicyContext) -> Decision;
    /// The engine's name, for logs and `/readyz`.
    fn name(&self) -> &'static str;
}
