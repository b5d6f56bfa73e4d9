//! The default policy set (policies/default/*.cedar) against the scenarios of issue 4 and seeds
//! 004, as a table: who, how authenticated, what on which resource, in which context → allowed or
//! not, which policies decided, which MIE a step-up would offer. Then loading errors, reloads,
//! `eval_json`, and property tests.
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use vigie_core::policy::{
    ALL_MIE, AccountKind, Action, ClientResource, Decision, PolicyContext, PolicyEngine, PolicyRequest, Principal,
    Resource, factors_of,
};
use vigie_core::{AssuranceLevel, Authentication, Factor, Mie};
use vigie_policies::{BUILTIN_POLICIES, CedarEngine, PolicyError, ReloadablePolicies, eval_json, validate_dir};

const NOW: i64 = 1_780_000_000;

#[derive(Clone, Copy, Debug)]
enum Who {
    /// Médecin (TRE_G15 `10`), idNat from the RPPS, unit UF-CARDIO.
    Physician,
    /// Physician whose national identity is not derived yet (no idNat).
    PhysicianWithoutIdnat,
    /// Infirmière (`60`), idNat, unit UF-CARDIO.
    Nurse,
    /// Secrétaire médicale: no profession code, no idNat.
    Secretary,
    /// A shared account of the emergency ward.
    Generic,
    /// A nurse who left the establishment.
    Departed,
    /// HR staff who binds cards: role `cards`.
    CardsOfficer,
}

fn principal(who: Who) -> Principal {
    let p = |id: &str, code: Option<&str>, category: &str, idnat: bool| Principal {
        id: id.into(),
        profession_code: code.map(Into::into),
        category: category.into(),
        roles: Vec::new(),
        units: vec!["UF-CARDIO".into()],
        has_idnat: idnat,
        employment_status: "active".into(),
        account_kind: AccountKind::Personal,
    };
    match who {
        Who::Physician => p("dr-martin", Some("10"), "medical", true),
        Who::PhysicianWithoutIdnat => p("dr-new", Some("10"), "medical", false),
        Who::Nurse => p("ide-durand", Some("60"), "paramedical", true),
        Who::Secretary => p("sec-leroy", None, "administrative", false),
        Who::Generic => {
            Principal { account_kind: AccountKind::Generic, ..p("urgences-poste-3", None, "unknown", false) }
        }
        Who::Departed => {
            Principal { employment_status: "left".into(), ..p("ide-parti", Some("60"), "paramedical", true) }
        }
        Who::CardsOfficer => Principal {
            roles: vec!["cards".into()],
            units: vec!["UF-DRH".into()],
            ..p("drh-bernard", None, "administrative", false)
        },
    }
}

#[derive(Clone, Copy, Debug)]
enum On {
    /// The DPI: integrates the DMP, so sensitive (RIE).
    Dpi,
    /// The intranet: not sensitive.
    Intranet,
    /// The badge office app: not sensitive, but registered with required level 2 (phishing-resistant).
    Badges,
    Dmp,
    System,
    /// A colleague of UF-CARDIO.
    ColleagueSameUnit,
    /// A colleague of UF-PEDIATRIE.
    ColleagueOtherUnit,
    /// Oneself.
    Myself,
}

fn resource(on: On, me: &Principal) -> Resource {
    let client = |id: &str, sensitive, required_level| {
        Resource::Client(ClientResource { id: id.into(), sensitive, required_level, audience: "staff".into() })
    };
    match on {
        On::Dpi => client("dpi", true, None),
        On::Intranet => client("intranet", false, None),
        On::Badges => client("badges", false, Some(AssuranceLevel::TwoFactorPhishingResistant)),
        On::Dmp => Resource::Dmp,
        On::System => Resource::System,
        On::ColleagueSameUnit => Resource::Colleague { id: "ide-oublie".into(), units: vec!["UF-CARDIO".into()] },
        On::ColleagueOtherUnit => Resource::Colleague { id: "ide-ailleurs".into(), units: vec!["UF-PEDIATRIE".into()] },
        On::Myself => Resource::Colleague { id: me.id.clone(), units: me.units.clone() },
    }
}

#[derive(Clone, Copy, Debug)]
enum Ctx {
    Internal,
    External,
    /// Internal, within the establishment's password + TOTP transition period.
    InternalTransition,
    ExternalTransition,
    /// Internal, PSC or the external link down.
    Degraded,
    /// Internal, the principal sponsored 2 colleagues in the last 24 hours.
    TwoSponsoredToday,
    /// Internal, the principal sponsored 3 colleagues in the last 24 hours.
    ThreeSponsoredToday,
}

fn context(ctx: Ctx) -> PolicyContext {
    let c = |zone: &str, transition, degraded| PolicyContext {
        degraded,
        network_zone: zone.into(),
        hour: 10,
        password_totp_transition: transition,
        sponsorships_today: 0,
    };
    match ctx {
        Ctx::Internal => c("internal", false, false),
        Ctx::External => c("external", false, false),
        Ctx::InternalTransition => c("internal", true, false),
        Ctx::ExternalTransition => c("external", true, false),
        Ctx::Degraded => c("internal", false, true),
        Ctx::TwoSponsoredToday => PolicyContext { sponsorships_today: 2, ..c("internal", false, false) },
        Ctx::ThreeSponsoredToday => PolicyContext { sponsorships_today: 3, ..c("internal", false, false) },
    }
}

use Action::*;
use Ctx::*;
use Mie::*;
use On::*;
use Who::*;

/// The MIE of the RIE: CPS, CPE, FIDO key, e-CPS.
const RIE: &[Mie] = &[Cps, Cpe, Fido2, CpsViaPsc, Ecps];
/// The phishing-resistant ones.
const PHR: &[Mie] = &[Cps, Cpe, Fido2, CpsViaPsc];
const NONE: &[Mie] = &[];
/// Every MIE but sponsorship.
const ALL_BUT_SPONSORSHIP: &[Mie] = &[Cps, Cpe, Fido2, CpsViaPsc, Ecps, PasswordTotp];

struct Case {
    who: Who,
    /// MIE and seconds since the login.
    how: (Mie, i64),
    /// The factors of the login; empty: those a fresh login with the MIE proves (`factors_of`).
    factors: &'static [Factor],
    action: Action,
    on: On,
    ctx: Ctx,
    allowed: bool,
    decided_by: &'static [&'static str],
    step_up: &'static [Mie],
}

#[rustfmt::skip]
#[allow(clippy::too_many_arguments)] // one argument per column of the table
const fn case(who: Who, how: (Mie, i64), action: Action, on: On, ctx: Ctx, allowed: bool,
              decided_by: &'static [&'static str], step_up: &'static [Mie]) -> Case {
    Case { who, how, factors: &[], action, on, ctx, allowed, decided_by, step_up }
}

impl Case {
    /// The same case for a login that proved these factors.
    const fn proving(self, factors: &'static [Factor]) -> Case {
        Case { factors, ..self }
    }
}

/// A FIDO2 key registered without verified attestation (before it was verified, or under
/// `webauthn.attestation = "none"`): it may be software, so its login proves `swk`, not `hwk`.
const UNATTESTED_KEY: &[Factor] = &[Factor::Swk, Factor::Pin];

const ALLOW: bool = true;
const DENY: bool = false;

#[rustfmt::skip]
const CASES: &[Case] = &[
    //    who            how                  action         resource            context             → allowed  decided by                                     step-up offers
    // Seeds 004: a nurse with password + TOTP on the DPI is refused and offered card or key.
    case(Nurse,          (PasswordTotp, 5),   LoginToClient, Dpi,                Internal,           DENY,  &["login-sensitive-no-password-totp"],            RIE),
    case(Nurse,          (PasswordTotp, 5),   LoginToClient, Dpi,                InternalTransition, ALLOW, &["login-sensitive-password-totp-transition"],    NONE),
    case(Nurse,          (PasswordTotp, 5),   LoginToClient, Intranet,           Internal,           ALLOW, &["login-non-sensitive-two-factor"],              NONE),
    // The external zone asks for more than the internal one: no password + TOTP from outside,
    // not even on a non-sensitive client, not even in the transition period.
    case(Nurse,          (PasswordTotp, 5),   LoginToClient, Intranet,           External,           DENY,  &["external-zone-rie-mie-only"],                  RIE),
    case(Nurse,          (PasswordTotp, 5),   LoginToClient, Dpi,                ExternalTransition, DENY,  &["external-zone-rie-mie-only"],                  RIE),
    // Seeds 004: a YubiKey (FIDO2, its attestation verified: `hwk`) on the DPI is allowed, inside
    // and outside.
    case(Nurse,          (Fido2, 5),          LoginToClient, Dpi,                Internal,           ALLOW, &["login-rie-mie"],                               NONE),
    case(Nurse,          (Fido2, 5),          LoginToClient, Dpi,                External,           ALLOW, &["login-rie-mie"],                               NONE),
    case(Nurse,          (Fido2, 5),          LoginToClient, Dpi,                Degraded,           ALLOW, &["login-rie-mie"],                               NONE),
    // Issue 12: a key without verified attestation may be software, so it is no MIE of the RIE
    // (seeds 004: the FIDO keys of the ANS's list): no sensitive client, nothing from outside;
    // inside, it opens what any two-factor MIE opens, phishing-resistant as WebAuthn makes it.
    case(Nurse,          (Fido2, 5),          LoginToClient, Dpi,                Internal,           DENY,  &[],                                              RIE).proving(UNATTESTED_KEY),
    case(Nurse,          (Fido2, 5),          LoginToClient, Dpi,                InternalTransition, DENY,  &[],                                              ALL_BUT_SPONSORSHIP).proving(UNATTESTED_KEY),
    case(Nurse,          (Fido2, 5),          LoginToClient, Dpi,                External,           DENY,  &["external-zone-rie-mie-only"],                  RIE).proving(UNATTESTED_KEY),
    case(Nurse,          (Fido2, 5),          LoginToClient, Intranet,           External,           DENY,  &["external-zone-rie-mie-only"],                  RIE).proving(UNATTESTED_KEY),
    case(Nurse,          (Fido2, 5),          LoginToClient, Intranet,           Internal,           ALLOW, &["login-non-sensitive-two-factor"],              NONE).proving(UNATTESTED_KEY),
    case(Nurse,          (Fido2, 5),          LoginToClient, Badges,             Internal,           ALLOW, &["login-non-sensitive-two-factor"],              NONE).proving(UNATTESTED_KEY),
    case(Physician,      (Cps, 5),            LoginToClient, Dpi,                Internal,           ALLOW, &["login-rie-mie"],                               NONE),
    case(Physician,      (Ecps, 5),           LoginToClient, Intranet,           External,           ALLOW, &["login-rie-mie"],                               NONE),
    case(Nurse,          (Cpe, 5),            LoginToClient, Intranet,           Internal,           ALLOW, &["login-non-sensitive-two-factor", "login-rie-mie"], NONE),
    // A client's required level is always met.
    case(Nurse,          (Cpe, 5),            LoginToClient, Badges,             Internal,           ALLOW, &["login-non-sensitive-two-factor", "login-rie-mie"], NONE),
    case(Nurse,          (Ecps, 5),           LoginToClient, Badges,             Internal,           DENY,  &["login-below-required-level"],                  PHR),
    case(Nurse,          (PasswordTotp, 5),   LoginToClient, Badges,             InternalTransition, DENY,  &["login-below-required-level"],                  PHR),
    // Seeds 004: a generic account is refused on a sensitive client, whatever the MIE.
    case(Generic,        (Cps, 5),            LoginToClient, Dpi,                Internal,           DENY,  &["generic-account-never-sensitive"],             NONE),
    case(Generic,        (PasswordTotp, 5),   LoginToClient, Dpi,                InternalTransition, DENY,  &["generic-account-never-sensitive"],             NONE),
    case(Generic,        (PasswordTotp, 5),   LoginToClient, Intranet,           Internal,           ALLOW, &["login-non-sensitive-two-factor"],              NONE),
    // Only active staff.
    case(Departed,       (Fido2, 5),          LoginToClient, Intranet,           Internal,           DENY,  &["employment-not-active"],                       NONE),
    case(Departed,       (Cps, 5),            AccessDmp,     Dmp,                Internal,           DENY,  &["employment-not-active"],                       NONE),
    // Sponsorship: non-sensitive clients only (no permit names sensitive ones: refused by default).
    case(Nurse,          (Sponsorship, 5),    LoginToClient, Intranet,           Internal,           ALLOW, &["login-non-sensitive-two-factor"],              NONE),
    case(Nurse,          (Sponsorship, 5),    LoginToClient, Dpi,                Internal,           DENY,  &[],                                              RIE),
    case(Nurse,          (Sponsorship, 5),    LoginToClient, Dpi,                InternalTransition, DENY,  &[],                                              ALL_BUT_SPONSORSHIP),
    case(Nurse,          (Sponsorship, 5),    LoginToClient, Intranet,           External,           DENY,  &["external-zone-rie-mie-only"],                  RIE),
    // Seeds 004: a physician with a CPS on the DMP is allowed.
    case(Physician,      (Cps, 5),            AccessDmp,     Dmp,                Internal,           ALLOW, &["dmp-entitled-professional"],                   NONE),
    case(Physician,      (Ecps, 5),           AccessDmp,     Dmp,                External,           ALLOW, &["dmp-entitled-professional"],                   NONE),
    case(Nurse,          (Fido2, 5),          AccessDmp,     Dmp,                Internal,           ALLOW, &["dmp-entitled-professional"],                   NONE),
    // Issue 12: not with a key that may be software, transition period or not.
    case(Nurse,          (Fido2, 5),          AccessDmp,     Dmp,                Internal,           DENY,  &[],                                              RIE).proving(UNATTESTED_KEY),
    case(Nurse,          (Fido2, 5),          AccessDmp,     Dmp,                InternalTransition, DENY,  &[],                                              RIE).proving(UNATTESTED_KEY),
    case(Nurse,          (Fido2, 5),          AccessDmp,     Dmp,                External,           DENY,  &["external-zone-rie-mie-only"],                  RIE).proving(UNATTESTED_KEY),
    case(Physician,      (PasswordTotp, 5),   AccessDmp,     Dmp,                Internal,           DENY,  &[],                                              RIE),
    // Not in the transition period either: it ended on 1 January 2026 for the DMP (20_dmp.cedar).
    case(Physician,      (PasswordTotp, 5),   AccessDmp,     Dmp,                InternalTransition, DENY,  &[],                                              RIE),
    case(Physician,      (Sponsorship, 5),    AccessDmp,     Dmp,                InternalTransition, DENY,  &["dmp-never-sponsorship"],                       RIE),
    case(Secretary,      (Cps, 5),            AccessDmp,     Dmp,                Internal,           DENY,  &[],                                              NONE),
    case(PhysicianWithoutIdnat, (Cps, 5),     AccessDmp,     Dmp,                Internal,           DENY,  &[],                                              NONE),
    case(Generic,        (Cps, 5),            AccessDmp,     Dmp,                Internal,           DENY,  &["generic-account-never-dmp"],                   NONE),
    // Administration: phishing-resistant, at most 15 min old, with a role.
    case(CardsOfficer,   (Cps, 60),           Administer,    System,             Internal,           ALLOW, &["administer-phishing-resistant-recent-role"],   NONE),
    case(CardsOfficer,   (Fido2, 900),        Administer,    System,             External,           ALLOW, &["administer-phishing-resistant-recent-role"],   NONE),
    // Phishing resistance is what administration asks, and WebAuthn's origin binding gives it to
    // any key; from outside, only a MIE of the RIE.
    case(CardsOfficer,   (Fido2, 60),         Administer,    System,             Internal,           ALLOW, &["administer-phishing-resistant-recent-role"],   NONE).proving(UNATTESTED_KEY),
    case(CardsOfficer,   (Fido2, 60),         Administer,    System,             External,           DENY,  &["external-zone-rie-mie-only"],                  PHR).proving(UNATTESTED_KEY),
    case(CardsOfficer,   (Cps, 901),          Administer,    System,             Internal,           DENY,  &[],                                              PHR),
    case(CardsOfficer,   (Ecps, 0),           Administer,    System,             Internal,           DENY,  &[],                                              PHR),
    case(CardsOfficer,   (PasswordTotp, 0),   Administer,    System,             External,           DENY,  &["external-zone-rie-mie-only"],                  PHR),
    case(Nurse,          (Fido2, 0),          Administer,    System,             Internal,           DENY,  &[],                                              NONE),
    // Enrolment: two factors, at most 10 min old, not from a sponsorship.
    case(Nurse,          (PasswordTotp, 600), EnrolMie,      System,             Internal,           ALLOW, &["enrol-mie-two-factor-recent"],                 NONE),
    case(Nurse,          (PasswordTotp, 601), EnrolMie,      System,             Internal,           DENY,  &[],                                              ALL_BUT_SPONSORSHIP),
    case(Nurse,          (Sponsorship, 0),    EnrolMie,      System,             Internal,           DENY,  &[],                                              ALL_BUT_SPONSORSHIP),
    case(Nurse,          (PasswordTotp, 0),   EnrolMie,      System,             External,           DENY,  &["external-zone-rie-mie-only"],                  RIE),
    // Sponsorship of a colleague: phishing-resistant, a unit in common, not oneself, personal account.
    case(Physician,      (Cps, 5),            Sponsor,       ColleagueSameUnit,  Internal,           ALLOW, &["sponsor-same-unit-phishing-resistant"],        NONE),
    case(Physician,      (Cps, 5),            Sponsor,       ColleagueOtherUnit, Internal,           DENY,  &[],                                              NONE),
    case(Physician,      (Ecps, 5),           Sponsor,       ColleagueSameUnit,  Internal,           DENY,  &[],                                              PHR),
    case(Physician,      (Cps, 5),            Sponsor,       Myself,             Internal,           DENY,  &[],                                              NONE),
    case(Generic,        (Cps, 5),            Sponsor,       ColleagueSameUnit,  Internal,           DENY,  &[],                                              NONE),
    // Issue 7: at most 3 colleagues in 24 hours, whatever the MIE.
    case(Physician,      (Cps, 5),            Sponsor,       ColleagueSameUnit,  TwoSponsoredToday,  ALLOW, &["sponsor-same-unit-phishing-resistant"],        NONE),
    case(Physician,      (Cps, 5),            Sponsor,       ColleagueSameUnit,  ThreeSponsoredToday, DENY, &["sponsor-at-most-3-a-day"],                     NONE),
    case(Physician,      (Ecps, 5),           Sponsor,       ColleagueSameUnit,  ThreeSponsoredToday, DENY, &["sponsor-at-most-3-a-day"],                     NONE),
];

fn decide(engine: &dyn PolicyEngine, who: Who, how: (Mie, i64), action: Action, on: On, ctx: Ctx) -> Decision {
    decide_proving(engine, who, how, &factors_of(how.0), action, on, ctx)
}

fn decide_proving(
    engine: &dyn PolicyEngine,
    who: Who,
    how: (Mie, i64),
    factors: &[Factor],
    action: Action,
    on: On,
    ctx: Ctx,
) -> Decision {
    let p = principal(who);
    let r = resource(on, &p);
    let c = context(ctx);
    let auth = Authentication::new(p.id.clone(), how.0, factors.to_vec(), NOW - how.1);
    engine.decide(&PolicyRequest { principal: &p, action, resource: &r, authentication: &auth, context: &c, now: NOW })
}

#[test]
fn default_policies_decide_every_scenario_of_the_table() {
    let engine = CedarEngine::builtin().expect("the built-in set validates");
    let mut failures = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let factors = if c.factors.is_empty() { factors_of(c.how.0) } else { c.factors.to_vec() };
        let d = decide_proving(&engine, c.who, c.how, &factors, c.action, c.on, c.ctx);
        let expected = (c.allowed, c.decided_by.to_vec(), c.step_up.to_vec());
        let got = (d.allowed, d.policies.iter().map(String::as_str).collect::<Vec<_>>(), d.step_up.clone());
        if expected != got || !d.errors.is_empty() {
            failures.push(format!(
                "row {i}: {:?} {:?} {factors:?} {:?} {:?} {:?}\n   expected {expected:?}\n   got      {got:?} errors {:?}",
                c.who, c.how, c.action, c.on, c.ctx, d.errors
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} rows differ:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

/// Admin API tokens (issue 12): (roles, scopes, the call's scope or `external`, the deciding
/// policies); allowed when a permit decided.
type TokenCase = (&'static [&'static str], &'static [&'static str], &'static str, &'static [&'static str]);

const TOKEN_CASES: [TokenCase; 5] = [
    (&["cards"], &["cards:read", "cards:bind"], "cards:bind", &["administer-api-token-role-scope"]),
    (&["fido2"], &["keys:enrol"], "keys:enrol", &["administer-api-token-role-scope"]),
    // Outside the establishment's network: no administration by script.
    (&["cards"], &["cards:bind"], "external", &["external-zone-rie-mie-only"]),
    // A scope the token lacks, or no admin role: no permit.
    (&["cards"], &["cards:read"], "cards:write", &[]),
    (&[], &["cards:read"], "cards:read", &[]),
];

#[test]
fn admin_api_tokens_administer_within_their_roles_and_scopes_from_inside_only() {
    let engine = CedarEngine::builtin().expect("built-in set");
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (i, (roles, scopes, scope, decided_by)) in TOKEN_CASES.iter().enumerate() {
        let (scope, zone) = if *scope == "external" { (scopes[0], "external") } else { (*scope, "internal") };
        let token = vigie_core::policy::TokenPrincipal {
            name: format!("t{i}"),
            roles: strings(roles),
            scopes: strings(scopes),
            scope: scope.into(),
        };
        let ctx = PolicyContext { network_zone: zone.into(), hour: 10, ..Default::default() };
        let d = engine.decide_token(&token, &ctx);
        let allowed = decided_by.iter().any(|p| p.starts_with("administer"));
        assert_eq!((d.allowed, d.policies.clone()), (allowed, strings(decided_by)), "row {i}");
        assert!(d.errors.is_empty() && d.step_up.is_empty(), "row {i}: {d:?}");
    }
}

#[test]
fn the_table_exercises_every_default_policy() {
    let engine = CedarEngine::builtin().expect("built-in set");
    let mut covered: Vec<&str> = CASES.iter().flat_map(|c| c.decided_by.iter().copied()).collect();
    covered.extend(TOKEN_CASES.iter().flat_map(|c| c.3.iter().copied()));
    covered.sort();
    covered.dedup();
    assert_eq!(covered, engine.policy_ids().iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn step_up_candidates_are_exactly_the_mie_a_fresh_login_would_be_allowed_with() {
    let engine = CedarEngine::builtin().expect("built-in set");
    for c in CASES.iter().filter(|c| !c.allowed) {
        for mie in ALL_MIE {
            let fresh = decide(&engine, c.who, (mie, 0), c.action, c.on, c.ctx);
            assert_eq!(fresh.allowed, c.step_up.contains(&mie), "{:?} {:?} {:?} with {mie:?}", c.who, c.action, c.on);
        }
    }
}

// ---- Loading a directory -------------------------------------------------------------------

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vigie-policies-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn with_default_set(name: &str) -> Self {
        let d = Self::new(name);
        for (file, text) in BUILTIN_POLICIES {
            d.write(file, text);
        }
        d
    }

    fn write(&self, file: &str, text: &str) {
        let path = self.0.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn problems(err: PolicyError) -> Vec<(String, usize, String)> {
    err.problems()
        .iter()
        .map(|p| (p.file.file_name().unwrap_or_default().to_string_lossy().into_owned(), p.line, p.message.clone()))
        .collect()
}

#[test]
fn the_shipped_default_directory_validates_with_the_builtin_schema() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("default");
    let n = validate_dir(&dir).expect("policies/default validates");
    assert_eq!(n, CedarEngine::builtin().expect("built-in").policy_ids().len());
}

#[test]
fn a_policy_reading_an_attribute_the_schema_lacks_is_refused_with_file_and_line() {
    let d = TempDir::with_default_set("bad-attr");
    d.write(
        "50_local.cedar",
        "// local rule\n@id(\"night-shift\")\npermit (principal, action == Vigie::Action::\"login_to_client\", resource)\n\
         when { principal.shift == \"night\" };\n",
    );
    let err = CedarEngine::load(d.path()).expect_err("invalid set");
    let text = err.to_string();
    let p = problems(err);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!((p[0].0.as_str(), p[0].1), ("50_local.cedar", 4), "{p:?}");
    assert!(p[0].2.contains("shift"), "{p:?}");
    assert!(text.contains("50_local.cedar:4:"), "{text}");
}

#[test]
fn a_syntax_error_and_a_type_error_are_both_reported_each_at_its_line() {
    let d = TempDir::with_default_set("bad-syntax");
    d.write("50_broken.cedar", "@id(\"broken\")\npermit (principal, action, resource)\nwhen { context.hour >= };\n");
    d.write(
        "60_types.cedar",
        "\n\n@id(\"typed\")\nforbid (principal, action, resource)\nwhen { context.hour == \"night\" };\n",
    );
    let p = problems(CedarEngine::load(d.path()).expect_err("invalid set"));
    let at: Vec<(&str, usize)> = p.iter().map(|(f, l, _)| (f.as_str(), *l)).collect();
    assert_eq!(at, vec![("50_broken.cedar", 3), ("60_types.cedar", 5)], "{p:?}");
}

#[test]
fn a_policy_without_id_or_with_a_duplicate_id_is_refused() {
    let d = TempDir::with_default_set("ids");
    d.write(
        "50_ids.cedar",
        "permit (principal, action == Vigie::Action::\"enrol_mie\", resource);\n\n\
         @id(\"login-rie-mie\")\nforbid (principal, action, resource) when { context.degraded };\n",
    );
    let p = problems(CedarEngine::load(d.path()).expect_err("invalid set"));
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!((p[0].0.as_str(), p[0].1), ("50_ids.cedar", 1));
    assert!(p[0].2.contains("no @id"), "{p:?}");
    assert_eq!((p[1].0.as_str(), p[1].1), ("50_ids.cedar", 3));
    assert!(p[1].2.contains("already used") && p[1].2.contains("10_login.cedar"), "{p:?}");
}

#[test]
fn an_empty_directory_is_refused_rather_than_refusing_everyone() {
    let d = TempDir::new("empty");
    assert!(matches!(CedarEngine::load(d.path()), Err(PolicyError::NoPolicies(_))));
    assert!(matches!(CedarEngine::load(&d.path().join("missing")), Err(PolicyError::Io { .. })));
}

#[test]
fn a_schema_in_the_directory_replaces_the_builtin_one() {
    let d = TempDir::with_default_set("own-schema");
    // The built-in schema without `Identity.units`: the sponsorship policy no longer validates.
    let schema = vigie_policies::BUILTIN_SCHEMA.replace("units: Set<String>,", "");
    d.write("schema/vigie.cedarschema", &schema);
    let p = problems(CedarEngine::load(d.path()).expect_err("units is gone"));
    assert!(!p.is_empty() && p.iter().all(|(f, l, _)| f == "40_sponsor.cedar" && *l > 0), "{p:?}");
    // A schema that does not parse is reported in the schema file.
    d.write("schema/vigie.cedarschema", "namespace Vigie {\n  entity Identity = {\n    units: Set<,\n  };\n}\n");
    let p = problems(CedarEngine::load(d.path()).expect_err("schema does not parse"));
    assert_eq!((p[0].0.as_str(), p[0].1), ("vigie.cedarschema", 3), "{p:?}");
}

// ---- Reloading -----------------------------------------------------------------------------

#[test]
fn reload_keeps_the_old_set_on_an_invalid_change_and_swaps_on_a_valid_one() {
    let d = TempDir::with_default_set("reload");
    let policies = ReloadablePolicies::load(d.path()).expect("valid set");
    let nurse_totp_on_dpi = |e: &dyn PolicyEngine| decide(e, Nurse, (PasswordTotp, 5), LoginToClient, Dpi, Internal);
    assert!(!nurse_totp_on_dpi(&policies).allowed);
    let ids_before = policies.policy_ids();
    let fp_before = policies.fingerprint();
    assert_eq!(fp_before.files.len(), BUILTIN_POLICIES.len());
    assert!(!policies.reload_if_changed().expect("nothing changed"));

    // An invalid change: refused, the old set decides on, and the poller reports it once.
    d.write(
        "50_transition.cedar",
        "@id(\"transition\")\npermit (principal, action, resource)\nwhen { context.nope };\n",
    );
    let err = policies.reload_if_changed().expect_err("invalid change");
    assert!(err.to_string().contains("50_transition.cedar:3:"), "{err}");
    assert!(!policies.reload_if_changed().expect("same rejected change: nothing new"));
    assert!(policies.reload().is_err(), "an explicit reload says it again");
    assert_eq!(policies.policy_ids(), ids_before);
    assert_eq!(policies.fingerprint(), fp_before);
    assert!(!nurse_totp_on_dpi(&policies).allowed);

    // A valid change: the establishment opens its transition period by policy.
    let login = BUILTIN_POLICIES[1].1.replace("!context.password_totp_transition", "false");
    d.write("10_login.cedar", &login);
    d.write(
        "50_transition.cedar",
        "// the establishment's transition: password + TOTP on sensitive clients until further notice\n\
         @id(\"transition\")\npermit (principal, action == Vigie::Action::\"login_to_client\", resource)\n\
         when { context.authentication.mie == \"password_totp\" };\n",
    );
    assert!(policies.reload_if_changed().expect("valid change"));
    let d2 = nurse_totp_on_dpi(&policies);
    assert!(d2.allowed, "{d2:?}");
    assert_eq!(d2.policies, vec!["transition"]);
    assert!(policies.policy_ids().contains(&"transition".to_string()));
    assert_ne!(policies.fingerprint(), fp_before);
    assert_eq!(policies.source_dir(), d.path());
}

#[test]
fn a_snapshot_taken_before_a_reload_keeps_deciding_with_its_own_set() {
    let d = TempDir::with_default_set("snapshot");
    let policies = ReloadablePolicies::load(d.path()).expect("valid set");
    let before = policies.current();
    std::fs::remove_file(d.path().join("20_dmp.cedar")).expect("rm");
    policies.reload().expect("valid without the DMP rules");
    assert!(decide(before.as_ref(), Physician, (Cps, 5), AccessDmp, Dmp, Internal).allowed);
    assert!(!decide(&policies, Physician, (Cps, 5), AccessDmp, Dmp, Internal).allowed);
}

#[test]
fn a_reloaded_set_decides_the_same_request_anew_not_from_the_old_sets_cache() {
    let d = TempDir::with_default_set("reload-cache");
    let policies = ReloadablePolicies::load(d.path()).expect("valid set");
    let physician_cps_on_dpi = |e: &dyn PolicyEngine| decide(e, Physician, (Cps, 5), LoginToClient, Dpi, Internal);
    for _ in 0..3 {
        assert!(physician_cps_on_dpi(&policies).allowed, "decided, then answered again by the same set");
    }
    d.write(
        "50_closed.cedar",
        "@id(\"dpi-closed\")\nforbid (principal, action == Vigie::Action::\"login_to_client\", resource)\n\
         when { resource.sensitive };\n",
    );
    assert!(policies.reload_if_changed().expect("valid change"));
    let after = physician_cps_on_dpi(&policies);
    assert!(!after.allowed, "{after:?}");
    assert_eq!(after.policies, vec!["dpi-closed"]);
    // And back: the set without the forbid allows again.
    std::fs::remove_file(d.path().join("50_closed.cedar")).expect("rm");
    assert!(policies.reload_if_changed().expect("valid change"));
    assert!(physician_cps_on_dpi(&policies).allowed);
}

// ---- eval_json (vigie policy eval) ----------------------------------------------------------

#[test]
fn eval_json_answers_the_nurse_with_password_and_totp_on_the_dpi() {
    let engine = CedarEngine::builtin().expect("built-in");
    let d = eval_json(
        &engine,
        r#"{"id": "ide-durand", "profession_code": "60", "has_idnat": true}"#,
        "login_to_client",
        r#"{"type": "client", "id": "dpi", "sensitive": true}"#,
        r#"{"authentication": {"mie": "password_totp"}}"#,
    )
    .expect("well-formed");
    assert!(!d.allowed);
    assert_eq!(d.policies, vec!["login-sensitive-no-password-totp"]);
    assert_eq!(d.step_up, RIE);

    let d = eval_json(
        &engine,
        r#"{"profession_code": "10", "has_idnat": true}"#,
        "access_dmp",
        "dmp",
        r#"{"authentication": {"mie": "cps", "age_secs": 30}}"#,
    )
    .expect("well-formed");
    assert!(d.allowed, "{d:?}");
    let d = eval_json(&engine, "{}", "administer", "system", r#"{"authentication": {"mie": "cps", "age_secs": 3600}}"#)
        .expect("well-formed");
    assert!(!d.allowed);
}

#[test]
fn eval_json_refuses_typos_with_a_message_naming_the_argument() {
    let engine = CedarEngine::builtin().expect("built-in");
    let ctx = r#"{"authentication": {"mie": "cps"}}"#;
    let err = |p: &str, a: &str, r: &str, c: &str| eval_json(&engine, p, a, r, c).expect_err("refused");
    assert!(err(r#"{"profesion_code": "10"}"#, "access_dmp", "dmp", ctx).starts_with("principal: unknown field"));
    assert!(err("{}", "acces_dmp", "dmp", ctx).starts_with("action: unknown action"));
    assert!(err("{}", "access_dmp", "dmpp", ctx).starts_with("resource: unknown type"));
    assert!(
        err("{}", "access_dmp", "dmp", r#"{"authentication": {"mie": "carte"}}"#).starts_with("context.authentication")
    );
    assert!(
        err("{}", "access_dmp", "dmp", r#"{"authentication": {"mie": "cps"}, "zone": "x"}"#)
            .starts_with("context: unknown")
    );
    assert!(err("{}", "access_dmp", "dmp", "{}").starts_with("context: missing field `authentication`"));
    assert!(err("[]", "access_dmp", "dmp", ctx).starts_with("principal: expected a JSON object"));
}

// ---- Properties ----------------------------------------------------------------------------

fn any_mie() -> impl Strategy<Value = Mie> {
    prop::sample::select(ALL_MIE.to_vec())
}

fn any_factor() -> impl Strategy<Value = Factor> {
    prop::sample::select(vec![
        Factor::Pwd,
        Factor::Otp,
        Factor::Sc,
        Factor::Pin,
        Factor::Hwk,
        Factor::Swk,
        Factor::User,
    ])
}

fn any_principal() -> impl Strategy<Value = Principal> {
    (
        ".{0,12}",
        prop::option::of(prop::sample::select(vec!["10", "21", "60", "99", "", "\"; drop"])),
        prop::sample::select(vec!["medical", "paramedical", "unknown", "éàü\u{0}"]),
        prop::collection::vec("[a-z]{0,6}|cards|admin|fido2", 0..4),
        prop::collection::vec("UF-[A-C]|.{0,4}", 0..4),
        any::<bool>(),
        prop::sample::select(vec!["active", "left", "suspended", "ACTIVE", ""]),
        any::<bool>(),
    )
        .prop_map(|(id, code, category, roles, units, has_idnat, status, generic)| Principal {
            id,
            profession_code: code.map(Into::into),
            category: category.into(),
            roles,
            units,
            has_idnat,
            employment_status: status.into(),
            account_kind: if generic { AccountKind::Generic } else { AccountKind::Personal },
        })
}

fn any_resource() -> impl Strategy<Value = Resource> {
    prop_oneof![
        (".{0,8}", any::<bool>(), prop::option::of(prop::sample::select(AssuranceLevel::ALL.to_vec())), ".{0,6}")
            .prop_map(|(id, sensitive, required_level, audience)| Resource::Client(ClientResource {
                id,
                sensitive,
                required_level,
                audience
            })),
        Just(Resource::Dmp),
        Just(Resource::System),
        (".{0,8}", prop::collection::vec("UF-[A-C]", 0..3)).prop_map(|(id, units)| Resource::Colleague { id, units }),
    ]
}

fn any_context() -> impl Strategy<Value = PolicyContext> {
    (
        any::<bool>(),
        prop::sample::select(vec!["internal", "external", "", "vpn"]),
        any::<u8>(),
        any::<bool>(),
        any::<u32>(),
    )
        .prop_map(|(degraded, zone, hour, password_totp_transition, sponsorships_today)| PolicyContext {
            degraded,
            network_zone: zone.into(),
            hour,
            password_totp_transition,
            sponsorships_today,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// `decide` never panics, and its answer is coherent: an allowed decision offers no step-up,
    /// a refused one offers only MIE a fresh login with would be allowed, no evaluation errors.
    #[test]
    fn decide_never_panics_and_step_up_is_coherent(
        p in any_principal(),
        action in prop::sample::select(Action::ALL.to_vec()),
        r in any_resource(),
        c in any_context(),
        mie in any_mie(),
        factors in prop::collection::vec(any_factor(), 0..4),
        at in any::<i64>(),
        now in any::<i64>(),
    ) {
        let engine = engine();
        let auth = Authentication::new(p.id.clone(), mie, factors, at);
        let req = PolicyRequest { principal: &p, action, resource: &r, authentication: &auth, context: &c, now };
        let d = engine.decide(&req);
        let applies = matches!(
            (action, &r),
            (Action::LoginToClient, Resource::Client(_))
                | (Action::AccessDmp, Resource::Dmp)
                | (Action::Sponsor, Resource::Colleague { .. })
                | (Action::EnrolMie | Action::Administer, Resource::System)
        );
        if applies {
            prop_assert!(d.errors.is_empty(), "{:?}", d.errors);
        } else {
            prop_assert!(!d.allowed && d.step_up.is_empty() && d.errors.len() == 1, "{d:?}");
        }
        if d.allowed {
            prop_assert!(d.step_up.is_empty());
        }
        for m in &d.step_up {
            let fresh = Authentication::new(p.id.clone(), *m, factors_of(*m), now);
            let again = engine.decide(&PolicyRequest { authentication: &fresh, ..req.clone() });
            prop_assert!(again.allowed, "{m:?} offered but refused: {again:?}");
        }
    }

    /// Whatever bytes a policy file holds, loading either succeeds or says where it failed.
    #[test]
    fn loading_arbitrary_policy_text_never_panics(text in "(@id\\(\"x\"\\)|permit|forbid|\\(|\\)|principal|,|action|resource|when|\\{|\\}|context\\.hour|[<>=!]=?|[0-9]+|\"[a-z]*\"|;|\n| |.){0,40}") {
        let d = TempDir::new(&format!("fuzz-{}", text.len()));
        d.write("x.cedar", &text);
        match CedarEngine::load(d.path()) {
            Ok(e) => prop_assert!(e.policy_ids().len() <= 1),
            Err(PolicyError::Invalid(p)) => prop_assert!(!p.is_empty() && p.iter().all(|p| p.file.ends_with("x.cedar"))),
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}

fn engine() -> &'static CedarEngine {
    static ENGINE: std::sync::OnceLock<CedarEngine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| CedarEngine::builtin().expect("built-in set"))
}
