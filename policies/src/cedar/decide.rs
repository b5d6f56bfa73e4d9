//! Deciding: Cedar's authorization algorithm on the action's compiled slice, the step-up
//! candidates of a refusal, and the `PolicyEngine` the gateway calls.

use std::collections::BTreeMap;

use cedar_policy::{EntityId, EntityUid};
use cedar_policy_core::ast::{self, EntityUIDEntry, Value};
use cedar_policy_core::entities::{Entities as CoreEntities, NoEntitiesSchema, TCComputation};
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;
use cedar_policy_core::pst::SmolStr;
use vigie_core::Mie;
use vigie_core::policy::{
    ALL_MIE, Action, Decision, PolicyContext, PolicyEngine, PolicyRequest, Resource, TokenPrincipal,
};

use super::CedarEngine;
use super::compile::Compiled;
use super::entities::{action_index, age, authentication_value, context_without_authentication, with_authentication};

impl CedarEngine {
    /// Cedar's authorization algorithm (Cedar docs, "Authorization": a request is allowed when at
    /// least one permit is satisfied and no forbid is; a policy whose evaluation errors is
    /// skipped, and the error reported), on the action's compiled slice. The determining
    /// policies are the satisfied forbids when refused by one, else the satisfied permits. A unit
    /// test checks it against `Authorizer::is_authorized` on the whole set.
    #[cfg(test)]
    fn evaluate(
        &self,
        principal: &EntityUid,
        action: Action,
        resource: &EntityUid,
        context: ast::Context,
        entities: &CoreEntities,
    ) -> (bool, Vec<String>, Vec<String>) {
        let (allowed, policies, errors, _) = self.evaluate_all(principal, action, resource, context, entities);
        (allowed, policies, errors)
    }

    /// [`Self::evaluate`], with each policy's outcome (in slice order; `None` when it erred).
    fn evaluate_all(
        &self,
        principal: &EntityUid,
        action: Action,
        resource: &EntityUid,
        context: ast::Context,
        entities: &CoreEntities,
    ) -> (bool, Vec<String>, Vec<String>, Vec<Option<bool>>) {
        let request = self.request(principal, action, resource, context);
        let evaluator = Evaluator::new(request, entities, Extensions::all_available());
        let slice = &self.slices[action_index(action)];
        let (mut permits, mut forbids, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        let mut outcomes = Vec::with_capacity(slice.len());
        for p in slice {
            let result = outcome(&evaluator, p);
            outcomes.push(result.as_ref().ok().copied());
            match result {
                Ok(true) => match p.effect {
                    ast::Effect::Permit => permits.push(p.id.clone()),
                    ast::Effect::Forbid => forbids.push(p.id.clone()),
                },
                Ok(false) => {}
                Err(e) => errors.push(e),
            }
        }
        let (allowed, mut policies) =
            if !forbids.is_empty() { (false, forbids) } else { (!permits.is_empty(), permits) };
        policies.sort();
        (allowed, policies, errors, outcomes)
    }

    fn request(
        &self,
        principal: &EntityUid,
        action: Action,
        resource: &EntityUid,
        context: ast::Context,
    ) -> ast::Request {
        ast::Request::new_unchecked(
            EntityUIDEntry::known(principal.as_ref().clone(), None),
            EntityUIDEntry::known(self.names.action(action).as_ref().clone(), None),
            EntityUIDEntry::known(resource.as_ref().clone(), None),
            Some(context),
        )
    }

    /// The MIE with which a login made now would be allowed, everything else unchanged, given
    /// the outcomes of the refused request's evaluation. Only the authentication differs between
    /// the candidates and that request, so a policy that does not read `context.authentication`
    /// has the outcome it had there: a satisfied one of those forbids every candidate, a satisfied
    /// permit of those allows every candidate no forbid stops. For the others, per candidate,
    /// forbids first, each kind stopping at its first satisfied policy (a policy that errs is
    /// skipped, as in [`Self::evaluate`]): a policy ruled out for the candidate at load is not
    /// satisfied; one that reads only attributes of the authentication on which the request or an
    /// earlier candidate agrees has the outcome it had there; the rest is evaluated. A property
    /// test checks it against asking Cedar's `Authorizer` about each candidate.
    #[allow(clippy::too_many_arguments)] // the parts of one request, shared with `decide_uncached`
    fn step_up(
        &self,
        principal: &EntityUid,
        action: Action,
        resource: &EntityUid,
        context: &BTreeMap<SmolStr, Value>,
        entities: &CoreEntities,
        authentication: &Value,
        outcomes: &[Option<bool>],
    ) -> Vec<Mie> {
        let slice = &self.slices[action_index(action)];
        let settled = |effect: ast::Effect| {
            slice.iter().zip(outcomes).any(|(p, o)| !p.reads.authentication && p.effect == effect && *o == Some(true))
        };
        if settled(ast::Effect::Forbid) {
            return Vec::new();
        }
        let permitted = settled(ast::Effect::Permit);
        // Per policy, the candidates it was evaluated for, and whether it was satisfied.
        let mut known: Vec<Vec<(usize, bool)>> = vec![Vec::new(); slice.len()];
        let mut step_up = Vec::new();
        for (c, candidate) in self.fresh.iter().enumerate() {
            let mut evaluator = None;
            let mut satisfied = |effect: ast::Effect| {
                for (i, p) in slice.iter().enumerate() {
                    if !p.reads.authentication || p.effect != effect || p.ruled_out[c] {
                        continue;
                    }
                    let attrs = &p.reads.authentication_attrs;
                    let already = if agree(authentication, candidate, attrs) {
                        Some(outcomes[i] == Some(true))
                    } else {
                        known[i].iter().find(|(d, _)| agree(&self.fresh[*d], candidate, attrs)).map(|(_, s)| *s)
                    };
                    let holds = already.unwrap_or_else(|| {
                        let evaluator = evaluator.get_or_insert_with(|| {
                            let context = with_authentication(context, candidate.clone());
                            let request = self.request(principal, action, resource, context);
                            Evaluator::new(request, entities, Extensions::all_available())
                        });
                        let holds = outcome(evaluator, p) == Ok(true);
                        known[i].push((c, holds));
                        holds
                    });
                    if holds {
                        return true;
                    }
                }
                false
            };
            if !satisfied(ast::Effect::Forbid) && (permitted || satisfied(ast::Effect::Permit)) {
                step_up.push(ALL_MIE[c]);
            }
        }
        step_up
    }

    /// Decides without the cache.
    pub(super) fn decide_uncached(&self, req: &PolicyRequest<'_>) -> Decision {
        let principal_uid =
            EntityUid::from_type_name_and_id(self.names.identity.clone(), EntityId::new(&req.principal.id));
        let (resource_uid, resource_entity) = self.resource_entity(req.resource, req.principal);
        // Two entities without parents: there is no hierarchy whose closure Cedar would compute.
        let entities = match CoreEntities::from_entities(
            std::iter::once(self.identity_entity(req.principal)).chain(resource_entity),
            None::<&NoEntitiesSchema>,
            TCComputation::AssumeAlreadyComputed,
            Extensions::all_available(),
        ) {
            Ok(e) => e,
            Err(e) => return Decision { errors: vec![e.to_string()], ..Default::default() },
        };
        let action = req.action;
        let shared = context_without_authentication(req.context);
        let authentication = authentication_value(req.authentication, age(req.authentication, req.now));
        let context = with_authentication(&shared, authentication.clone());
        let (allowed, policies, errors, outcomes) =
            self.evaluate_all(&principal_uid, action, &resource_uid, context, &entities);
        if allowed {
            return Decision { allowed, policies, step_up: Vec::new(), errors };
        }
        let step_up =
            self.step_up(&principal_uid, action, &resource_uid, &shared, &entities, &authentication, &outcomes);
        Decision { allowed, policies, step_up, errors }
    }

    /// `administer` by an admin API token: the token as a `Vigie::ApiToken` (roles, scopes, the
    /// call's scope) with the context of a bearer credential. Admin calls are few: not cached.
    fn decide_token_uncached(&self, token: &TokenPrincipal, context: &PolicyContext) -> Decision {
        match self.token_request(token, context) {
            Ok((uid, context, entities)) => {
                let (allowed, policies, errors, _) =
                    self.evaluate_all(&uid, Action::Administer, &self.names.system, context, &entities);
                Decision { allowed, policies, step_up: Vec::new(), errors }
            }
            Err(e) => Decision { errors: vec![e], ..Default::default() },
        }
    }

    /// The same question through Cedar's own `Authorizer` on the whole set: the reference the
    /// fast path is tested against.
    #[cfg(test)]
    fn evaluate_with_authorizer(
        &self,
        principal: &EntityUid,
        action: Action,
        resource: &EntityUid,
        context: ast::Context,
        entities: &CoreEntities,
    ) -> (bool, Vec<String>, usize) {
        let request = cedar_policy::Request::new(
            principal.clone(),
            self.names.action(action).clone(),
            resource.clone(),
            cedar_policy::Context::from(context),
            None,
        )
        .expect("no schema, no validation");
        let entities = cedar_policy::Entities::from(entities.clone());
        let response = cedar_policy::Authorizer::new().is_authorized(&request, &self.policies, &entities);
        let mut policies: Vec<String> = response.diagnostics().reason().map(|id| id.to_string()).collect();
        policies.sort();
        (response.decision() == cedar_policy::Decision::Allow, policies, response.diagnostics().errors().count())
    }
}

/// Two `context.authentication` records have the same value for each of `attrs` (all: `None`).
fn agree(a: &Value, b: &Value, attrs: &Option<Vec<SmolStr>>) -> bool {
    let Some(attrs) = attrs else { return a == b };
    match (&a.value, &b.value) {
        (ast::ValueKind::Record(a), ast::ValueKind::Record(b)) => attrs.iter().all(|k| a.get(k) == b.get(k)),
        _ => a == b,
    }
}

/// One policy's condition on a request: satisfied or not, or why it could not be evaluated.
fn outcome(evaluator: &Evaluator<'_>, p: &Compiled) -> Result<bool, String> {
    match evaluator.interpret(&p.condition, &ast::SlotEnv::new()).map(|v| v.value) {
        Ok(ast::ValueKind::Lit(ast::Literal::Bool(b))) => Ok(b),
        // A validated set only has boolean conditions.
        Ok(other) => Err(format!("policy `{}` evaluated to {other:?}, not a boolean", p.id)),
        Err(e) => Err(format!("error while evaluating policy `{}`: {e}", p.id)),
    }
}

impl PolicyEngine for CedarEngine {
    fn decide(&self, req: &PolicyRequest<'_>) -> Decision {
        if !applies_to(req.action, req.resource) {
            // Outside the schema's `appliesTo`: no policy was written for it, and Cedar would
            // only report evaluation errors. Refused, saying why; no MIE would change it.
            let error = format!("action {} does not apply to {}", req.action.as_str(), resource_kind(req.resource));
            return Decision { errors: vec![error], ..Default::default() };
        }
        self.decide_cached(req)
    }

    fn decide_token(&self, token: &TokenPrincipal, context: &PolicyContext) -> Decision {
        self.decide_token_uncached(token, context)
    }

    fn name(&self) -> &'static str {
        "cedar"
    }
}

/// The schema's `appliesTo`: which resource each action is about.
fn applies_to(action: Action, resource: &Resource) -> bool {
    matches!(
        (action, resource),
        (Action::LoginToClient, Resource::Client(_))
            | (Action::AccessDmp, Resource::Dmp)
            | (Action::Sponsor, Resource::Colleague { .. })
            | (Action::EnrolMie | Action::Administer, Resource::System)
    )
}

fn resource_kind(resource: &Resource) -> &'static str {
    match resource {
        Resource::Client(_) => "a client",
        Resource::Dmp => "the DMP",
        Resource::Colleague { .. } => "a colleague",
        Resource::System => "the system",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use vigie_core::policy::{AccountKind, Principal, factors_of};
    use vigie_core::{AssuranceLevel, Authentication};

    use crate::cedar::builtin;
    use crate::cedar::entities::fresh_authentication;
    use crate::cedar::{BUILTIN_POLICIES, BUILTIN_SCHEMA, Fingerprint, PolicySource};
    use proptest::prelude::*;
    /// A set with what the default one lacks: `action in [...]`, an unconstrained permit, and a
    /// policy that errors at run time (integer overflow passes validation).
    fn extended_engine() -> CedarEngine {
        let extra = r#"
            @id("overflow") forbid (principal, action, resource)
            when { context.authentication.age_secs + 9223372036854775000 > 0 };
            @id("night-admin") forbid (principal, action in [Vigie::Action::"administer", Vigie::Action::"enrol_mie"], resource)
            when { context.hour < 6 };
            @id("degraded-anything") permit (principal, action, resource) when { context.degraded };
        "#;
        let schema = [(PathBuf::from("s"), BUILTIN_SCHEMA)];
        let mut files: Vec<(PathBuf, &str)> = BUILTIN_POLICIES.iter().map(|(n, t)| (PathBuf::from(n), *t)).collect();
        files.push((PathBuf::from("extra.cedar"), extra));
        CedarEngine::build(&schema, &files, PolicySource::Builtin, Fingerprint::default()).expect("valid")
    }

    fn principal_strategy() -> impl Strategy<Value = Principal> {
        (
            "[a-z]{0,3}",
            prop::option::of(prop::sample::select(vec!["10", "60", "99"])),
            prop::collection::vec(prop::sample::select(vec!["cards", "x"]), 0..2),
            prop::collection::vec(prop::sample::select(vec!["UF-A", "UF-B"]), 0..2),
            any::<bool>(),
            prop::sample::select(vec!["active", "left"]),
            any::<bool>(),
        )
            .prop_map(|(id, code, roles, units, has_idnat, status, generic)| Principal {
                id,
                profession_code: code.map(Into::into),
                category: "medical".into(),
                roles: roles.into_iter().map(Into::into).collect(),
                units: units.into_iter().map(Into::into).collect(),
                has_idnat,
                employment_status: status.into(),
                account_kind: if generic { AccountKind::Generic } else { AccountKind::Personal },
            })
    }

    /// An action and a resource it applies to.
    fn target_strategy() -> impl Strategy<Value = (Action, Resource)> {
        prop_oneof![
            (any::<bool>(), prop::option::of(prop::sample::select(AssuranceLevel::ALL.to_vec()))).prop_map(
                |(sensitive, required_level)| (
                    Action::LoginToClient,
                    Resource::Client(vigie_core::policy::ClientResource {
                        id: "c".into(),
                        sensitive,
                        required_level,
                        audience: "staff".into()
                    })
                )
            ),
            Just((Action::AccessDmp, Resource::Dmp)),
            Just((Action::EnrolMie, Resource::System)),
            Just((Action::Administer, Resource::System)),
            (
                "[a-z]{0,3}",
                prop::collection::vec(prop::sample::select(vec!["UF-A".to_string(), "UF-B".to_string()]), 0..2)
            )
                .prop_map(|(id, units)| (Action::Sponsor, Resource::Colleague { id, units })),
        ]
    }

    /// The factors of a login with `mie`: a fresh one's, or for a FIDO2 key registered without
    /// verified attestation, `swk` instead of `hwk` (the policies tell them apart).
    fn login_factors(mie: Mie, unattested: bool) -> Vec<vigie_core::Factor> {
        match mie {
            Mie::Fido2 if unattested => vec![vigie_core::Factor::Swk, vigie_core::Factor::Pin],
            _ => factors_of(mie),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// The compiled fast path decides exactly as Cedar's `Authorizer` on the whole set:
        /// same decision, same determining policies, as many errors.
        #[test]
        fn the_fast_path_agrees_with_cedars_authorizer(
            p in principal_strategy(),
            (action, r) in target_strategy(),
            mie in prop::sample::select(ALL_MIE.to_vec()),
            unattested in any::<bool>(),
            age in prop_oneof![0i64..2000, Just(i64::MAX / 2)],
            zone in prop::sample::select(vec!["internal", "external"]),
            degraded in any::<bool>(),
            hour in 0u8..24,
            transition in any::<bool>(),
            sponsorships_today in 0u32..6,
        ) {
            for engine in [builtin(), extended()] {
                let auth = Authentication::hypothetical(p.id.clone(), mie, login_factors(mie, unattested), 1_000_000 - age);
                let ctx = PolicyContext {
                    degraded, network_zone: zone.into(), hour, password_totp_transition: transition, sponsorships_today,
                };
                let principal = EntityUid::from_type_name_and_id(engine.names.identity.clone(), EntityId::new(&p.id));
                let (resource, resource_entity) = engine.resource_entity(&r, &p);
                let entities = CoreEntities::from_entities(
                    std::iter::once(engine.identity_entity(&p)).chain(resource_entity),
                    None::<&NoEntitiesSchema>,
                    TCComputation::ComputeNow,
                    Extensions::all_available(),
                ).expect("entities");
                let context = engine.context(&auth, &ctx, 1_000_000);
                let fast = engine.evaluate(&principal, action, &resource, context.clone(), &entities);
                let reference = engine.evaluate_with_authorizer(&principal, action, &resource, context, &entities);
                prop_assert_eq!((fast.0, &fast.1, fast.2.len()), (reference.0, &reference.1, reference.2));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// `decide` (cached or not) answers as asking Cedar's `Authorizer` about the request and
        /// then about each step-up candidate, a login with it made now: the shortcut that
        /// evaluates only the policies reading `context.authentication` changes nothing.
        #[test]
        fn decide_and_its_step_up_agree_with_asking_cedar_about_each_candidate(
            p in principal_strategy(),
            (action, r) in target_strategy(),
            mie in prop::sample::select(ALL_MIE.to_vec()),
            unattested in any::<bool>(),
            age in prop_oneof![0i64..2000, Just(i64::MAX / 2)],
            zone in prop::sample::select(vec!["internal", "external"]),
            degraded in any::<bool>(),
            hour in 0u8..24,
            transition in any::<bool>(),
            sponsorships_today in 0u32..6,
        ) {
            let now = 1_000_000;
            for engine in [builtin(), extended()] {
                let auth = Authentication::hypothetical(p.id.clone(), mie, login_factors(mie, unattested), now - age);
                let ctx = PolicyContext {
                    degraded, network_zone: zone.into(), hour, password_totp_transition: transition, sponsorships_today,
                };
                let req = PolicyRequest { principal: &p, action, resource: &r, authentication: &auth, context: &ctx, now };
                let principal = EntityUid::from_type_name_and_id(engine.names.identity.clone(), EntityId::new(&p.id));
                let (resource, resource_entity) = engine.resource_entity(&r, &p);
                let entities = CoreEntities::from_entities(
                    std::iter::once(engine.identity_entity(&p)).chain(resource_entity),
                    None::<&NoEntitiesSchema>,
                    TCComputation::ComputeNow,
                    Extensions::all_available(),
                ).expect("entities");
                let ask = |auth: &Authentication| {
                    let context = engine.context(auth, &ctx, now);
                    engine.evaluate_with_authorizer(&principal, action, &resource, context, &entities)
                };
                let reference = ask(&auth);
                let step_up: Vec<Mie> = if reference.0 {
                    Vec::new()
                } else {
                    ALL_MIE.into_iter().filter(|m| ask(&fresh_authentication(&p.id, *m, now)).0).collect()
                };
                for d in [engine.decide_uncached(&req), engine.decide(&req), engine.decide(&req)] {
                    prop_assert_eq!(
                        (d.allowed, &d.policies, d.errors.len(), &d.step_up),
                        (reference.0, &reference.1, reference.2, &step_up)
                    );
                }
            }
        }
    }

    /// An admin API token administers within its roles and scopes, from inside only, and Cedar's
    /// own authorizer decides the same.
    #[test]
    fn an_api_token_administers_within_its_scopes_from_inside_only() {
        let engine = builtin();
        let token = TokenPrincipal {
            name: "drh".into(),
            roles: vec!["cards".into()],
            scopes: vec!["cards:read".into(), "cards:bind".into()],
            scope: "cards:bind".into(),
        };
        let internal = PolicyContext { network_zone: "internal".into(), hour: 10, ..Default::default() };
        let external = PolicyContext { network_zone: "external".into(), ..internal.clone() };
        let other_scope = TokenPrincipal { scope: "cards:write".into(), ..token.clone() };
        let no_role = TokenPrincipal { roles: vec![], ..token.clone() };
        let cases = [
            (&token, &internal, true, vec!["administer-api-token-role-scope"]),
            (&token, &external, false, vec!["external-zone-rie-mie-only"]),
            (&other_scope, &internal, false, Vec::<&str>::new()),
            (&no_role, &internal, false, vec![]),
        ];
        for (i, (t, ctx, allowed, policies)) in cases.into_iter().enumerate() {
            let d = engine.decide_token(t, ctx);
            let policies: Vec<String> = policies.into_iter().map(String::from).collect();
            assert_eq!((d.allowed, &d.policies, d.errors.len()), (allowed, &policies, 0), "case {i}: {d:?}");
            assert!(d.step_up.is_empty());
            let (uid, context, entities) = engine.token_request(t, ctx).unwrap();
            let reference =
                engine.evaluate_with_authorizer(&uid, Action::Administer, &engine.names.system, context, &entities);
            assert_eq!((reference.0, reference.1), (d.allowed, d.policies), "case {i}");
        }
    }

    fn extended() -> &'static CedarEngine {
        static E: std::sync::OnceLock<CedarEngine> = std::sync::OnceLock::new();
        E.get_or_init(extended_engine)
    }

    #[test]
    fn the_extended_set_errs_refuses_and_permits_as_written() {
        let e = extended();
        let p = Principal { id: "a".into(), employment_status: "active".into(), ..Default::default() };
        let auth = Authentication::hypothetical("a".into(), Mie::Cps, factors_of(Mie::Cps), 0);
        let ctx = PolicyContext { network_zone: "internal".into(), hour: 3, degraded: true, ..Default::default() };
        let req = PolicyRequest {
            principal: &p,
            action: Action::EnrolMie,
            resource: &Resource::System,
            authentication: &auth,
            context: &ctx,
            now: i64::MAX,
        };
        let d = e.decide(&req);
        assert!(!d.allowed);
        assert_eq!(d.policies, vec!["night-admin"]);
        assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
        assert!(d.errors[0].contains("overflow"), "{:?}", d.errors);
        let day = PolicyContext { hour: 12, ..ctx.clone() };
        let d = e.decide(&PolicyRequest {
            context: &day,
            action: Action::LoginToClient,
            resource: &Resource::Client(Default::default()),
            ..req
        });
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.policies, vec!["degraded-anything", "login-non-sensitive-two-factor", "login-rie-mie"]);
    }
}
