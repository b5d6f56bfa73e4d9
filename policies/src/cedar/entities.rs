//! The Cedar request of a decision, built as Cedar values directly: the schema's names, the
//! principal's and resource's entities, and the context with its `authentication` record.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{EntityId, EntityTypeName, EntityUid};
use cedar_policy_core::ast::{self, PartialValue, Value};
use cedar_policy_core::entities::{Entities as CoreEntities, NoEntitiesSchema, TCComputation};
use cedar_policy_core::extensions::Extensions;
use cedar_policy_core::pst::SmolStr;
use vigie_core::policy::{AccountKind, Action, PolicyContext, Principal, Resource, TokenPrincipal, factors_of};
use vigie_core::{AssuranceLevel, Authentication, Mie};

use super::CedarEngine;

/// The Cedar names the engine uses on every decision, parsed once.
pub(super) struct Names {
    pub(super) identity: EntityTypeName,
    pub(super) api_token: EntityTypeName,
    pub(super) client: EntityTypeName,
    pub(super) dmp: EntityUid,
    pub(super) system: EntityUid,
    pub(super) actions: [EntityUid; 5],
}

impl Names {
    pub(super) fn new() -> Self {
        // These names are the schema's (policies/schema/vigie.cedarschema): constants, and the
        // unit tests parse them, so a failure here is a programming error caught before release.
        let ty = |n: &str| EntityTypeName::from_str(n).unwrap_or_else(|e| panic!("entity type {n}: {e}"));
        let uid = |t: &str, id: &str| EntityUid::from_type_name_and_id(ty(t), EntityId::new(id));
        Self {
            identity: ty("Vigie::Identity"),
            api_token: ty("Vigie::ApiToken"),
            client: ty("Vigie::Client"),
            dmp: uid("Vigie::Dmp", "dmp"),
            system: uid("Vigie::System", "vigie"),
            actions: Action::ALL.map(|a| uid("Vigie::Action", a.as_str())),
        }
    }

    pub(super) fn action(&self, a: Action) -> &EntityUid {
        &self.actions[action_index(a)]
    }
}

pub(super) fn action_index(a: Action) -> usize {
    Action::ALL.iter().position(|x| *x == a).unwrap_or(0)
}

impl CedarEngine {
    // The request's entities and context are built as Cedar values directly (cedar-policy-core's
    // `Value`), not as expressions that Cedar would then evaluate: the same values, without the
    // evaluator's allocations on the hot path. Their shapes are the schema's; the scenario tests
    // and `eval_json` (which goes through the same code) check them against the policies.
    pub(super) fn identity_entity(&self, p: &Principal) -> ast::Entity {
        let strings = |v: &[String]| Value::set(v.iter().map(|s| Value::from(s.as_str())), None);
        let kind = match p.account_kind {
            AccountKind::Personal => "personal",
            AccountKind::Generic => "generic",
        };
        let mut attrs: Vec<(SmolStr, PartialValue)> = vec![
            ("category".into(), Value::from(p.category.as_str()).into()),
            ("roles".into(), strings(&p.roles).into()),
            ("units".into(), strings(&p.units).into()),
            ("has_idnat".into(), Value::from(p.has_idnat).into()),
            ("employment_status".into(), Value::from(p.employment_status.as_str()).into()),
            ("account_kind".into(), Value::from(kind).into()),
        ];
        if let Some(code) = &p.profession_code {
            attrs.push(("profession_code".into(), Value::from(code.as_str()).into()));
        }
        let uid = EntityUid::from_type_name_and_id(self.names.identity.clone(), EntityId::new(&p.id));
        ast::Entity::new_with_attr_partial_value(uid.into(), attrs, HashSet::new(), HashSet::new(), [])
    }

    /// Resource uid and, for those that have attributes, its entity.
    pub(super) fn resource_entity(&self, r: &Resource, principal: &Principal) -> (EntityUid, Option<ast::Entity>) {
        match r {
            Resource::Client(c) => {
                let level = c.required_level.map_or(0, level_number);
                let attrs: [(SmolStr, PartialValue); 3] = [
                    ("sensitive".into(), Value::from(c.sensitive).into()),
                    ("required_level".into(), Value::from(level).into()),
                    ("audience".into(), Value::from(c.audience.as_str()).into()),
                ];
                let uid = EntityUid::from_type_name_and_id(self.names.client.clone(), EntityId::new(&c.id));
                let entity = ast::Entity::new_with_attr_partial_value(
                    uid.clone().into(),
                    attrs,
                    HashSet::new(),
                    HashSet::new(),
                    [],
                );
                (uid, Some(entity))
            }
            Resource::Dmp => (self.names.dmp.clone(), None),
            Resource::System => (self.names.system.clone(), None),
            Resource::Colleague { id, units } => {
                let uid = EntityUid::from_type_name_and_id(self.names.identity.clone(), EntityId::new(id));
                if *id == principal.id {
                    // Sponsoring oneself: the principal's entity is the resource's.
                    return (uid, None);
                }
                // The port tells only the colleague's id and units; the other attributes the
                // schema requires get neutral values that no default policy grants anything on.
                let colleague = Principal {
                    id: id.clone(),
                    category: "unknown".into(),
                    units: units.clone(),
                    employment_status: "unknown".into(),
                    ..Default::default()
                };
                (uid, Some(self.identity_entity(&colleague)))
            }
        }
    }

    /// The context of a request, for tests: [`context_without_authentication`] and
    /// [`authentication_value`] put together.
    #[cfg(test)]
    pub(super) fn context(&self, auth: &Authentication, ctx: &PolicyContext, now: i64) -> ast::Context {
        with_authentication(
            &context_without_authentication(ctx),
            authentication_value(auth, now.saturating_sub(auth.at)),
        )
    }

    /// The principal, context and entities of a token's request.
    pub(super) fn token_request(
        &self,
        token: &TokenPrincipal,
        context: &PolicyContext,
    ) -> Result<(EntityUid, ast::Context, CoreEntities), String> {
        let strings = |v: &[String]| Value::set(v.iter().map(|s| Value::from(s.as_str())), None);
        let attrs: [(SmolStr, PartialValue); 3] = [
            ("roles".into(), strings(&token.roles).into()),
            ("scopes".into(), strings(&token.scopes).into()),
            ("scope".into(), Value::from(token.scope.as_str()).into()),
        ];
        let uid = EntityUid::from_type_name_and_id(self.names.api_token.clone(), EntityId::new(&token.name));
        let entity =
            ast::Entity::new_with_attr_partial_value(uid.clone().into(), attrs, HashSet::new(), HashSet::new(), []);
        let entities = CoreEntities::from_entities(
            [entity],
            None::<&NoEntitiesSchema>,
            TCComputation::AssumeAlreadyComputed,
            Extensions::all_available(),
        )
        .map_err(|e| e.to_string())?;
        let context = with_authentication(&context_without_authentication(context), bearer_token_authentication());
        Ok((uid, context, entities))
    }
}

/// The `level` the schema speaks of: 1 two factors, 2 two phishing-resistant factors.
pub(super) fn level_number(level: AssuranceLevel) -> i64 {
    match level {
        AssuranceLevel::TwoFactor => 1,
        AssuranceLevel::TwoFactorPhishingResistant => 2,
    }
}

/// Seconds since the authentication, as `context.authentication.age_secs` says it (never negative).
pub(super) fn age(auth: &Authentication, now: i64) -> i64 {
    now.saturating_sub(auth.at).max(0)
}

/// `context.authentication`: the schema's `Authentication` record.
pub(super) fn authentication_value(auth: &Authentication, age: i64) -> Value {
    let factors = Value::set(auth.factors.iter().map(|f| Value::from(f.amr())), None);
    Value::record(
        [
            ("mie", Value::from(auth.mie.as_str())),
            ("factors", factors),
            ("phishing_resistant", Value::from(auth.level == AssuranceLevel::TwoFactorPhishingResistant)),
            ("level", Value::from(level_number(auth.level))),
            ("age_secs", Value::from(age.max(0))),
        ],
        None,
    )
}

/// `context.authentication` of an admin API token: a bearer credential, no factor of a person.
fn bearer_token_authentication() -> Value {
    Value::record(
        [
            ("mie", Value::from("api_token")),
            ("factors", Value::set(std::iter::empty(), None)),
            ("phishing_resistant", Value::from(false)),
            ("level", Value::from(0)),
            ("age_secs", Value::from(0)),
        ],
        None,
    )
}

/// The context but its `authentication`: shared by a request and its step-up candidates.
pub(super) fn context_without_authentication(ctx: &PolicyContext) -> BTreeMap<SmolStr, Value> {
    BTreeMap::from([
        ("network_zone".into(), Value::from(ctx.network_zone.as_str())),
        ("degraded".into(), Value::from(ctx.degraded)),
        ("hour".into(), Value::from(i64::from(ctx.hour))),
        ("password_totp_transition".into(), Value::from(ctx.password_totp_transition)),
        ("sponsorships_today".into(), Value::from(i64::from(ctx.sponsorships_today))),
    ])
}

pub(super) fn with_authentication(shared: &BTreeMap<SmolStr, Value>, authentication: Value) -> ast::Context {
    let mut pairs = shared.clone();
    pairs.insert("authentication".into(), authentication);
    ast::Context::Value(Arc::new(pairs))
}

/// A login with `mie` that has just happened: its factors and level as the verifier would set them.
pub(super) fn fresh_authentication(identity: &str, mie: Mie, now: i64) -> Authentication {
    Authentication::hypothetical(identity.to_owned(), mie, factors_of(mie), now)
}
