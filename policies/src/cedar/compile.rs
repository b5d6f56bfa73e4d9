//! Compilation of a validated set: parse each file, name each policy by its `@id`, validate in
//! strict mode, and slice the policies by action with what each reads of the authentication.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use cedar_policy::{ActionConstraint, PolicyId, PolicySet, Schema, SchemaFragment, ValidationMode, Validator};
use cedar_policy_core::ast::{self, EntityUIDEntry, Value};
use cedar_policy_core::entities::Entities as CoreEntities;
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;
use cedar_policy_core::pst::SmolStr;
use vigie_core::policy::ALL_MIE;

use super::CedarEngine;
use super::entities::{Names, authentication_value, fresh_authentication};
use super::source::{Fingerprint, PolicyError, PolicySource, Problem, line_col, problem_of};

/// The annotation that names a policy: `@id("…")`. Decisions and audit lines report it.
const ID_ANNOTATION: &str = "id";

/// A static policy ready to evaluate: its condition (scope and body as one expression) is built
/// once here, where Cedar's authorizer would rebuild it on every request.
pub(super) struct Compiled {
    pub(super) id: String,
    pub(super) effect: ast::Effect,
    pub(super) condition: ast::Expr,
    /// What the condition reads of the context (see [`context_use`]).
    pub(super) reads: ContextUse,
    /// Per step-up candidate (in [`ALL_MIE`] order): the condition cannot hold for a login with
    /// it, whatever the rest of the request (see [`ruled_out_by_authentication`]).
    pub(super) ruled_out: [bool; ALL_MIE.len()],
}

/// For each step-up candidate, whether `condition` surely does not hold on a request whose
/// `context.authentication` is that candidate's. Cedar evaluates `a && b` left to right and stops
/// at the first operand that is false or errs (Cedar docs, "Operators": `&&` short-circuits); so a
/// condition is satisfied only when every operand of its `&&` chain evaluates to `true`. An operand
/// that reads nothing but `context.authentication` and literals has the same value on every
/// request with that authentication: evaluated here once per candidate, any value but `true`
/// rules the condition out for that candidate.
fn ruled_out_by_authentication(condition: &ast::Expr, names: &Names, fresh: &[Value]) -> [bool; ALL_MIE.len()] {
    fn conjuncts<'a>(e: &'a ast::Expr, out: &mut Vec<&'a ast::Expr>) {
        match e.expr_kind() {
            ast::ExprKind::And { left, right } => {
                conjuncts(left, out);
                conjuncts(right, out);
            }
            _ => out.push(e),
        }
    }
    let mut operands = Vec::new();
    conjuncts(condition, &mut operands);
    operands.retain(|e| reads_only_authentication(e));
    let mut ruled_out = [false; ALL_MIE.len()];
    if operands.is_empty() {
        return ruled_out;
    }
    let entities = CoreEntities::new();
    for (out, authentication) in ruled_out.iter_mut().zip(fresh) {
        // The operands read neither the principal, the action, the resource nor an entity: any
        // uid does, and no entity is needed.
        let context = BTreeMap::from([(SmolStr::from("authentication"), authentication.clone())]);
        let uid = || EntityUIDEntry::known(names.system.as_ref().clone(), None);
        let request = ast::Request::new_unchecked(uid(), uid(), uid(), Some(ast::Context::Value(Arc::new(context))));
        let evaluator = Evaluator::new(request, &entities, Extensions::all_available());
        *out = operands.iter().any(|e| {
            !matches!(
                evaluator.interpret(e, &ast::SlotEnv::new()).map(|v| v.value),
                Ok(ast::ValueKind::Lit(ast::Literal::Bool(true)))
            )
        });
    }
    ruled_out
}

/// `e` reads nothing of a request but `context.authentication`: no variable but `context`, and
/// that only as `context.authentication`; no entity literal (it could be dereferenced), no slot.
fn reads_only_authentication(e: &ast::Expr) -> bool {
    use ast::ExprKind;
    let (mut contexts, mut through_authentication) = (0, 0);
    for sub in e.subexpressions() {
        match sub.expr_kind() {
            ExprKind::Var(ast::Var::Context) => contexts += 1,
            ExprKind::Var(_) | ExprKind::Slot(_) | ExprKind::Unknown(_) => return false,
            ExprKind::Lit(ast::Literal::EntityUID(_)) => return false,
            ExprKind::GetAttr { expr, attr }
                if attr == "authentication" && matches!(expr.expr_kind(), ExprKind::Var(ast::Var::Context)) =>
            {
                through_authentication += 1
            }
            _ => {}
        }
    }
    contexts > 0 && contexts == through_authentication
}

/// What a condition reads of the context, found by walking its expression at load, conservatively:
/// `context` or `context.authentication` used whole (compared, passed on) counts as reading all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ContextUse {
    /// Reads `context.authentication`: its value may change with the MIE of a step-up candidate.
    pub(super) authentication: bool,
    /// Reads `context.authentication.age_secs`: its value may change with the time of the request.
    pub(super) age: bool,
    /// The attributes of `context.authentication` it reads; `None`: all of it.
    pub(super) authentication_attrs: Option<Vec<SmolStr>>,
}

fn context_use(condition: &ast::Expr) -> ContextUse {
    use ast::ExprKind;
    let is_context = |e: &ast::Expr| matches!(e.expr_kind(), ExprKind::Var(ast::Var::Context));
    let is_authentication = |e: &ast::Expr| matches!(e.expr_kind(), ExprKind::GetAttr { expr, attr } if is_context(expr) && attr == "authentication");
    let mut uses = ContextUse { authentication_attrs: Some(Vec::new()), ..Default::default() };
    // Each node has one parent: a `context` (or `context.authentication`) node that is not the
    // object of an attribute access is used whole.
    let (mut contexts, mut contexts_accessed, mut authentications, mut authentications_accessed) = (0, 0, 0, 0);
    for e in condition.subexpressions() {
        if is_context(e) {
            contexts += 1;
        }
        if is_authentication(e) {
            authentications += 1;
        }
        let (object, attr, nested) = match e.expr_kind() {
            ExprKind::GetAttr { expr, attr } | ExprKind::HasAttr { expr, attr } => (expr, attr, false),
            ExprKind::ExtHasAttr { expr, attrs } => (expr, attrs.first(), attrs.len() > 1),
            _ => continue,
        };
        if is_context(object) {
            contexts_accessed += 1;
            if attr == "authentication" {
                uses.authentication = true;
                if nested {
                    // `context has authentication.age_secs`: reads below, conservatively everything.
                    uses.authentication_attrs = None;
                }
            }
        }
        if is_authentication(object) {
            authentications_accessed += 1;
            if let Some(attrs) = &mut uses.authentication_attrs {
                attrs.push(attr.clone());
            }
        }
    }
    if contexts > contexts_accessed || authentications > authentications_accessed {
        uses.authentication = true;
        uses.authentication_attrs = None;
    }
    if let Some(attrs) = &mut uses.authentication_attrs {
        attrs.sort();
        attrs.dedup();
    }
    uses.age = uses.authentication_attrs.as_ref().is_none_or(|a| a.iter().any(|a| a == "age_secs"));
    uses
}

/// Splits a validated set by the actions its policies' scopes can match. A policy on an action
/// the engine does not know (an action group of a custom schema) goes to every slice: a slice may
/// hold more than needed, never less.
fn slice_by_action(set: &PolicySet, names: &Names, fresh: &[Value]) -> [Vec<Compiled>; 5] {
    let mut slices: [Vec<Compiled>; 5] = Default::default();
    for p in set.policies() {
        let targets: Vec<usize> = match p.action_constraint() {
            ActionConstraint::Any => (0..5).collect(),
            ActionConstraint::Eq(uid) => {
                names.actions.iter().position(|a| *a == uid).map_or((0..5).collect(), |i| vec![i])
            }
            ActionConstraint::In(uids) => {
                let known: Option<Vec<usize>> =
                    uids.iter().map(|u| names.actions.iter().position(|a| a == u)).collect();
                known.unwrap_or_else(|| (0..5).collect())
            }
        };
        let policy: &ast::Policy = p.as_ref();
        let condition = policy.condition();
        let reads = context_use(&condition);
        let ruled_out = ruled_out_by_authentication(&condition, names, fresh);
        for i in targets {
            let id = p.id().to_string();
            let (condition, reads) = (condition.clone(), reads.clone());
            slices[i].push(Compiled { id, effect: policy.effect(), condition, reads, ruled_out });
        }
    }
    slices
}

impl CedarEngine {
    pub(super) fn build(
        schemas: &[(PathBuf, &str)],
        files: &[(PathBuf, &str)],
        source: PolicySource,
        fingerprint: Fingerprint,
    ) -> Result<Self, PolicyError> {
        let mut problems = Vec::new();

        let mut fragments = Vec::new();
        for (path, text) in schemas {
            match SchemaFragment::from_cedarschema_str(text) {
                Ok((fragment, _warnings)) => fragments.push(fragment),
                Err(e) => problems.push(problem_of(path, text, &e)),
            }
        }
        let schema = if problems.is_empty() {
            match Schema::from_schema_fragments(fragments) {
                Ok(s) => Some(s),
                Err(e) => {
                    let (path, text) = &schemas[0];
                    problems.push(problem_of(path, text, &e));
                    None
                }
            }
        } else {
            None
        };

        // Each file is parsed on its own so that Cedar's source spans are offsets in that file;
        // each policy is then renamed to its @id, and the id remembers its file.
        let mut set = PolicySet::new();
        let mut origin: HashMap<String, (usize, usize)> = HashMap::new(); // id -> (file index, line)
        for (fi, (path, text)) in files.iter().enumerate() {
            let parsed = match PolicySet::from_str(text) {
                Ok(p) => p,
                Err(errs) => {
                    problems.extend(errs.iter().map(|e| problem_of(path, text, e)));
                    continue;
                }
            };
            for t in parsed.templates() {
                let line = text.find(&t.to_cedar()).map_or((0, 0), |o| line_col(text, o));
                problems.push(Problem {
                    file: path.clone(),
                    line: line.0,
                    column: line.1,
                    message: "templates (?principal, ?resource) are not supported: write a static policy".into(),
                });
            }
            for p in parsed.policies() {
                let (line, column) = p.to_cedar().and_then(|src| text.find(&src)).map_or((0, 0), |o| line_col(text, o));
                let at = |message: String| Problem { file: path.clone(), line, column, message };
                let Some(id) = p.annotation(ID_ANNOTATION).map(str::to_owned) else {
                    problems.push(at("policy has no @id(\"…\") annotation: every policy needs one, decisions and \
                                      audit lines report it"
                        .into()));
                    continue;
                };
                if id.trim().is_empty() {
                    problems.push(at("@id is empty: name the policy".into()));
                    continue;
                }
                if let Some((f, l)) = origin.get(&id) {
                    problems.push(at(format!(
                        "@id(\"{id}\") is already used by the policy at {}:{l}: ids must be unique",
                        files[*f].0.display()
                    )));
                    continue;
                }
                origin.insert(id.clone(), (fi, line));
                if let Err(e) = set.add(p.new_id(PolicyId::new(&id))) {
                    problems.push(at(e.to_string()));
                }
            }
        }

        if let Some(schema) = schema {
            let result = Validator::new(schema).validate(&set, ValidationMode::Strict);
            for e in result.validation_errors() {
                let id = e.policy_id().to_string();
                match origin.get(&id) {
                    Some((fi, _)) => {
                        let (path, text) = &files[*fi];
                        problems.push(problem_of(path, text, e));
                    }
                    None => {
                        problems.push(Problem { file: PathBuf::from(id), line: 0, column: 0, message: e.to_string() })
                    }
                }
            }
        }

        if !problems.is_empty() {
            problems.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            return Err(PolicyError::Invalid(problems));
        }
        let mut ids: Vec<String> = origin.into_keys().collect();
        ids.sort();
        let names = Names::new();
        let fresh = ALL_MIE.map(|mie| authentication_value(&fresh_authentication("", mie, 0), 0));
        let slices = slice_by_action(&set, &names, &fresh);
        let reads_age = std::array::from_fn(|i| slices[i].iter().any(|p| p.reads.age));
        Ok(Self {
            policies: set,
            slices,
            ids,
            source,
            fingerprint,
            names,
            reads_age,
            fresh,
            cache: Mutex::new(HashMap::default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cedar::builtin;
    use vigie_core::Mie;

    #[test]
    fn the_builtin_set_validates_and_every_policy_has_an_id() {
        let engine = CedarEngine::builtin().expect("built-in set");
        assert!(engine.policy_ids().len() >= 12, "{:?}", engine.policy_ids());
        assert!(engine.policy_ids().iter().any(|id| id == "login-rie-mie"));
        assert_eq!(engine.source(), &PolicySource::Builtin);
    }

    fn uses(condition: &str) -> (bool, bool) {
        let text = format!("permit (principal, action, resource) when {{ {condition} }};");
        let set = PolicySet::from_str(&text).expect("parses");
        let p = set.policies().next().expect("one policy");
        let policy: &ast::Policy = p.as_ref();
        let u = context_use(&policy.condition());
        (u.authentication, u.age)
    }

    #[test]
    fn what_a_condition_reads_of_the_authentication_is_found_conservatively() {
        assert_eq!(uses("context.hour < 6 && principal.units.containsAny(resource.units)"), (false, false));
        assert_eq!(uses("context.network_zone != \"internal\""), (false, false));
        assert_eq!(uses("context.authentication.mie == \"cps\""), (true, false));
        assert_eq!(uses("context[\"authentication\"][\"level\"] >= 1"), (true, false));
        assert_eq!(uses("context has authentication"), (true, false));
        assert_eq!(uses("context.authentication.age_secs <= 900"), (true, true));
        assert_eq!(uses("context has authentication.age_secs"), (true, true));
        // Used whole: anything in it may be read.
        assert_eq!(uses("context.authentication == context.authentication"), (true, true));
        assert_eq!(uses("{a: context}.a.authentication.mie == \"cps\""), (true, true));
        assert_eq!(uses("{a: context.authentication}.a.mie == \"cps\""), (true, true));
        // Which attributes: a step-up candidate agreeing with the request on them shares its outcome.
        let attrs = |condition: &str| {
            let text = format!("permit (principal, action, resource) when {{ {condition} }};");
            let set = PolicySet::from_str(&text).expect("parses");
            let policy: &ast::Policy = set.policies().next().expect("one").as_ref();
            context_use(&policy.condition()).authentication_attrs
        };
        let some = |a: &[&str]| Some(a.iter().map(|s| SmolStr::from(*s)).collect::<Vec<_>>());
        assert_eq!(attrs("context.authentication.level >= resource.required_level"), some(&["level"]));
        assert_eq!(
            attrs("context.authentication has mie && context.authentication.level > 0"),
            some(&["level", "mie"])
        );
        assert_eq!(attrs("context.hour > 1"), some(&[]));
        assert_eq!(attrs("context.authentication == context.authentication"), None);
        assert_eq!(attrs("context has authentication.level"), None);
    }

    /// Which candidates each default login policy is ruled out for, from its `&&` operands that
    /// read only the authentication; operands reading anything else never rule out.
    #[test]
    fn a_policy_is_ruled_out_for_a_candidate_only_by_what_the_authentication_alone_decides() {
        let engine = builtin();
        let ruled_out = |id: &str| -> Vec<Mie> {
            let p = engine.slices[0].iter().find(|p| p.id == id).expect("policy");
            ALL_MIE.into_iter().zip(p.ruled_out).filter(|(_, out)| *out).map(|(m, _)| m).collect()
        };
        use Mie::*;
        assert_eq!(ruled_out("login-rie-mie"), vec![PasswordTotp, Sponsorship]);
        assert_eq!(ruled_out("external-zone-rie-mie-only"), vec![Cps, Cpe, Fido2, CpsViaPsc, Ecps]);
        assert_eq!(ruled_out("login-sensitive-no-password-totp"), vec![Cps, Cpe, Fido2, CpsViaPsc, Ecps, Sponsorship]);
        assert_eq!(ruled_out("login-non-sensitive-two-factor"), Vec::<Mie>::new(), "level >= 1 holds for all");
        assert_eq!(ruled_out("login-below-required-level"), Vec::<Mie>::new(), "reads the resource");
        assert_eq!(ruled_out("employment-not-active"), Vec::<Mie>::new(), "reads no authentication");
        let only = |condition: &str| {
            let text = format!("permit (principal, action, resource) when {{ {condition} }};");
            let set = PolicySet::from_str(&text).expect("parses");
            let policy: &ast::Policy = set.policies().next().expect("one").as_ref();
            ruled_out_by_authentication(&policy.condition(), &engine.names, &engine.fresh)
        };
        // An operand mixing the authentication with anything else decides nothing alone.
        assert_eq!(only("context.authentication.mie == principal.category"), [false; 7]);
        assert_eq!(only("context.authentication.mie == context.network_zone"), [false; 7]);
        assert_eq!(only("Vigie::Identity::\"x\".units.contains(context.authentication.mie)"), [false; 7]);
        // An operand that errs for a candidate (not a boolean) rules it out, as Cedar's `&&` fails.
        assert_eq!(
            only("context.hour > 3 && (if context.authentication.level == 2 then 1 else true)"),
            [true, true, true, true, false, false, false]
        );
    }
}
