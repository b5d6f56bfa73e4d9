//! The decisions a set keeps, keyed by everything a decision depends on.

use vigie_core::policy::{AccountKind, Decision, PolicyRequest, Resource};

use super::CedarEngine;
use super::entities::{action_index, age, level_number};

/// How many decisions a set keeps; when full, the cache is emptied (bounded memory, no eviction
/// bookkeeping on the hot path).
const CACHE_CAPACITY: usize = 4096;

impl CedarEngine {
    /// The decision of `req`: the one this set already made for the same request, or a new one,
    /// kept.
    pub(super) fn decide_cached(&self, req: &PolicyRequest<'_>) -> Decision {
        let key = self.cache_key(req);
        if let Some(hit) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return hit.clone();
        }
        let decision = self.decide_uncached(req);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, decision.clone());
        decision
    }

    /// Everything a decision of this set depends on, written unambiguously (each string with its
    /// length): the action, every attribute of the principal and of the resource the engine gives
    /// Cedar, the context, and the authentication (MIE, factors, level; its age only when a policy
    /// of the action reads `age_secs`, else a login at any time decides alike). The time of the
    /// request matters otherwise only through the step-up candidates, whose age is always 0.
    fn cache_key(&self, req: &PolicyRequest<'_>) -> Vec<u8> {
        let mut k = KeyWriter(Vec::with_capacity(192));
        k.str(req.action.as_str());
        let p = req.principal;
        k.str(&p.id);
        match &p.profession_code {
            Some(code) => {
                k.flag(true);
                k.str(code);
            }
            None => k.flag(false),
        }
        k.str(&p.category);
        k.strs(&p.roles);
        k.strs(&p.units);
        k.flag(p.has_idnat);
        k.str(&p.employment_status);
        k.flag(p.account_kind == AccountKind::Generic);
        match req.resource {
            Resource::Client(c) => {
                k.str("client");
                k.str(&c.id);
                k.flag(c.sensitive);
                k.num(c.required_level.map_or(0, level_number));
                k.str(&c.audience);
            }
            Resource::Dmp => k.str("dmp"),
            Resource::System => k.str("system"),
            Resource::Colleague { id, units } => {
                k.str("colleague");
                k.str(id);
                k.strs(units);
            }
        }
        let c = req.context;
        k.flag(c.degraded);
        k.str(&c.network_zone);
        k.num(i64::from(c.hour));
        k.flag(c.password_totp_transition);
        k.num(i64::from(c.sponsorships_today));
        let a = req.authentication;
        k.str(a.mie.as_str());
        k.num(a.factors.len() as i64);
        for f in &a.factors {
            k.str(f.amr());
        }
        k.num(level_number(a.level));
        if self.reads_age[action_index(req.action)] {
            k.num(age(a, req.now));
        }
        k.0
    }
}

/// Writes a cache key as bytes: every string length-prefixed, numbers and flags fixed-width, so
/// that two different requests never write the same key (and no formatting machinery runs on the
/// decision path).
struct KeyWriter(Vec<u8>);

impl KeyWriter {
    fn str(&mut self, s: &str) {
        self.0.extend_from_slice(&(s.len() as u64).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn strs(&mut self, v: &[String]) {
        self.num(v.len() as i64);
        for s in v {
            self.str(s);
        }
    }

    fn num(&mut self, n: i64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    fn flag(&mut self, b: bool) {
        self.0.push(u8::from(b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_core::policy::{Action, PolicyContext, PolicyEngine, Principal, factors_of};
    use vigie_core::{Authentication, Mie};

    /// Each request differs from the first in one thing a decision depends on: none is answered
    /// from the cache with another's decision, and each is what the engine decides uncached.
    #[test]
    fn a_cached_decision_is_never_served_for_a_changed_attribute() {
        let engine = CedarEngine::builtin().expect("built-in");
        let now = 1_000_000;
        let nurse = Principal {
            id: "ide".into(),
            profession_code: Some("60".into()),
            category: "paramedical".into(),
            roles: vec!["cards".into()],
            units: vec!["UF-A".into()],
            has_idnat: true,
            employment_status: "active".into(),
            account_kind: AccountKind::Personal,
        };
        let dpi = Resource::Client(vigie_core::policy::ClientResource {
            id: "dpi".into(),
            sensitive: true,
            required_level: None,
            audience: "staff".into(),
        });
        let intranet = Resource::Client(vigie_core::policy::ClientResource { sensitive: false, ..Default::default() });
        let internal = PolicyContext { network_zone: "internal".into(), hour: 10, ..Default::default() };
        let external = PolicyContext { network_zone: "external".into(), ..internal.clone() };
        let transition = PolicyContext { password_totp_transition: true, ..internal.clone() };
        let cps = Authentication::hypothetical("ide".into(), Mie::Cps, factors_of(Mie::Cps), now - 60);
        let cps_old = Authentication::hypothetical("ide".into(), Mie::Cps, factors_of(Mie::Cps), now - 901);
        let totp =
            Authentication::hypothetical("ide".into(), Mie::PasswordTotp, factors_of(Mie::PasswordTotp), now - 60);
        let left = Principal { employment_status: "left".into(), ..nurse.clone() };
        let generic = Principal { account_kind: AccountKind::Generic, ..nurse.clone() };
        let no_idnat = Principal { has_idnat: false, ..nurse.clone() };
        let no_role = Principal { roles: Vec::new(), ..nurse.clone() };
        let base = PolicyRequest {
            principal: &nurse,
            action: Action::LoginToClient,
            resource: &dpi,
            authentication: &cps,
            context: &internal,
            now,
        };
        let admin = PolicyRequest { action: Action::Administer, resource: &Resource::System, ..base.clone() };
        let dmp = PolicyRequest { action: Action::AccessDmp, resource: &Resource::Dmp, ..base.clone() };
        let requests = [
            (base.clone(), true),
            (PolicyRequest { principal: &left, ..base.clone() }, false),
            (PolicyRequest { principal: &generic, ..base.clone() }, false),
            (PolicyRequest { authentication: &totp, ..base.clone() }, false),
            (PolicyRequest { authentication: &totp, context: &transition, ..base.clone() }, true),
            (PolicyRequest { authentication: &totp, context: &external, resource: &intranet, ..base.clone() }, false),
            (PolicyRequest { authentication: &totp, resource: &intranet, ..base.clone() }, true),
            (dmp.clone(), true),
            (PolicyRequest { principal: &no_idnat, ..dmp.clone() }, false),
            (admin.clone(), true),
            (PolicyRequest { principal: &no_role, ..admin.clone() }, false),
            // The age is part of the key where a policy of the action reads it...
            (PolicyRequest { authentication: &cps_old, ..admin.clone() }, false),
        ];
        for round in 0..2 {
            for (i, (req, allowed)) in requests.iter().enumerate() {
                let d = engine.decide(req);
                assert_eq!(d.allowed, *allowed, "round {round}, request {i}: {d:?}");
                assert_eq!(d, engine.decide_uncached(req), "round {round}, request {i}");
            }
        }
        let cached = engine.cache.lock().expect("cache").len();
        assert_eq!(cached, requests.len(), "one entry per distinct request, reused on the second round");
        // ... and not where none does: a login an hour later decides alike, from the same entry.
        let later = PolicyRequest { now: now + 3600, ..base.clone() };
        assert_eq!(engine.decide(&later), engine.decide_uncached(&later));
        assert_eq!(engine.cache.lock().expect("cache").len(), cached);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let engine = CedarEngine::builtin().expect("built-in");
        let auth = Authentication::hypothetical("x".into(), Mie::Cps, factors_of(Mie::Cps), 0);
        let ctx = PolicyContext { network_zone: "internal".into(), ..Default::default() };
        for i in 0..CACHE_CAPACITY + 10 {
            let p = Principal { id: format!("p{i}"), employment_status: "active".into(), ..Default::default() };
            let req = PolicyRequest {
                principal: &p,
                action: Action::AccessDmp,
                resource: &Resource::Dmp,
                authentication: &auth,
                context: &ctx,
                now: 0,
            };
            engine.decide(&req);
            assert!(engine.cache.lock().expect("cache").len() <= CACHE_CAPACITY);
        }
    }
}
