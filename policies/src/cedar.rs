//! The Cedar policy engine: loads a policy set and its schema, validates the set in strict mode,
//! and answers [`PolicyRequest`]s with the ids of the deciding policies and, when refused, the MIE
//! with which a fresh login would be allowed (step-up).
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use cedar_policy::{
    ActionConstraint, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet, Schema, SchemaFragment, ValidationMode,
    Validator,
};
use cedar_policy_core::ast::{self, EntityUIDEntry, PartialValue, Value};
use cedar_policy_core::entities::{Entities as CoreEntities, NoEntitiesSchema, TCComputation};
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;
use cedar_policy_core::pst::SmolStr;
use miette::Diagnostic;
use vigie_core::policy::{
    ALL_MIE, AccountKind, Action, Decision, PolicyContext, PolicyEngine, PolicyRequest, Principal, Resource, factors_of,
};
use vigie_core::{AssuranceLevel, Authentication, Mie};

/// The schema compiled into the binary: used when a policy directory brings none.
pub const BUILTIN_SCHEMA: &str = include_str!("../schema/vigie.cedarschema");

/// The default policy set compiled into the binary, as (file name, text).
pub const BUILTIN_POLICIES: [(&str, &str); 5] = [
    ("00_everywhere.cedar", include_str!("../default/00_everywhere.cedar")),
    ("10_login.cedar", include_str!("../default/10_login.cedar")),
    ("20_dmp.cedar", include_str!("../default/20_dmp.cedar")),
    ("30_system.cedar", include_str!("../default/30_system.cedar")),
    ("40_sponsor.cedar", include_str!("../default/40_sponsor.cedar")),
];

/// The annotation that names a policy: `@id("…")`. Decisions and audit lines report it.
const ID_ANNOTATION: &str = "id";

/// One problem in a policy set or schema, where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line; 0 when the problem has no position (a whole-file problem).
    pub line: usize,
    /// 1-based column; 0 when the problem has no position.
    pub column: usize,
    /// What is wrong, and what to do where Cedar says so.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)
        }
    }
}

/// Why a policy set cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The directory holds no `*.cedar` file: refusing everything silently would lock everyone out.
    #[error("no policy file (*.cedar) in {0}: point the policy directory at the policy set")]
    NoPolicies(PathBuf),
    /// The set or its schema does not parse or does not validate; one entry per problem.
    #[error("invalid policy set:\n{}", render(.0))]
    Invalid(Vec<Problem>),
}

impl PolicyError {
    /// The problems, one per line, when the set is invalid.
    pub fn problems(&self) -> &[Problem] {
        match self {
            PolicyError::Invalid(p) => p,
            _ => &[],
        }
    }
}

fn render(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}

/// What a loaded set was read from: each file with its size, mtime and a hash of its content, so
/// that a poller can tell whether the directory changed since (see
/// [`crate::ReloadablePolicies::reload_if_changed`]). Empty for the built-in set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// The files, sorted by path.
    pub files: Vec<FileStamp>,
}

/// One file of a [`Fingerprint`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStamp {
    /// The file.
    pub path: PathBuf,
    /// Size in bytes.
    pub len: u64,
    /// Last modification, when the file system tells.
    pub modified: Option<SystemTime>,
    /// Hash of the content (not cryptographic: change detection only).
    pub content_hash: u64,
}

impl Fingerprint {
    /// The fingerprint of what is in `dir` now (the files [`CedarEngine::load`] would read).
    pub fn of_dir(dir: &Path) -> Result<Self, PolicyError> {
        let files = read_dir_sources(dir)?;
        Ok(Self { files: files.into_iter().map(|s| s.stamp).collect() })
    }
}

struct SourceFile {
    path: PathBuf,
    text: String,
    stamp: FileStamp,
}

fn read_source(path: PathBuf) -> Result<SourceFile, PolicyError> {
    let io = |source| PolicyError::Io { path: path.clone(), source };
    let meta = std::fs::metadata(&path).map_err(io)?;
    let text = std::fs::read_to_string(&path).map_err(io)?;
    let mut h = DefaultHasher::new();
    h.write(text.as_bytes());
    let stamp =
        FileStamp { path: path.clone(), len: meta.len(), modified: meta.modified().ok(), content_hash: h.finish() };
    Ok(SourceFile { path, text, stamp })
}

fn files_with_ext(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, PolicyError> {
    let io = |source| PolicyError::Io { path: dir.to_path_buf(), source };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Every source file of a policy directory: `DIR/schema/*.cedarschema` first, then `DIR/*.cedar`.
fn read_dir_sources(dir: &Path) -> Result<Vec<SourceFile>, PolicyError> {
    let schema_dir = dir.join("schema");
    let mut paths = if schema_dir.is_dir() { files_with_ext(&schema_dir, "cedarschema")? } else { Vec::new() };
    paths.extend(files_with_ext(dir, "cedar")?);
    paths.into_iter().map(read_source).collect()
}

/// 1-based line and column of a byte offset in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A problem from one of Cedar's diagnostics, positioned by its first labelled span in `text`.
fn problem_of(file: &Path, text: &str, diag: &dyn Diagnostic) -> Problem {
    let mut message = diag.to_string();
    let mut position = (0, 0);
    if let Some(label) = diag.labels().and_then(|mut l| l.next()) {
        position = line_col(text, label.offset());
        if let Some(l) = label.label() {
            message.push_str(&format!(" ({l})"));
        }
    }
    if let Some(help) = diag.help() {
        message.push_str(&format!("; help: {help}"));
    }
    Problem { file: file.to_path_buf(), line: position.0, column: position.1, message }
}

/// The Cedar names the engine uses on every decision, parsed once.
struct Names {
    identity: EntityTypeName,
    client: EntityTypeName,
    dmp: EntityUid,
    system: EntityUid,
    actions: [EntityUid; 5],
}

impl Names {
    fn new() -> Self {
        // These names are the schema's (policies/schema/vigie.cedarschema): constants, and the
        // unit tests parse them, so a failure here is a programming error caught before release.
        let ty = |n: &str| EntityTypeName::from_str(n).unwrap_or_else(|e| panic!("entity type {n}: {e}"));
        let uid = |t: &str, id: &str| EntityUid::from_type_name_and_id(ty(t), EntityId::new(id));
        Self {
            identity: ty("Vigie::Identity"),
            client: ty("Vigie::Client"),
            dmp: uid("Vigie::Dmp", "dmp"),
            system: uid("Vigie::System", "vigie"),
            actions: Action::ALL.map(|a| uid("Vigie::Action", a.as_str())),
        }
    }

    fn action(&self, a: Action) -> &EntityUid {
        &self.actions[action_index(a)]
    }
}

fn action_index(a: Action) -> usize {
    Action::ALL.iter().position(|x| *x == a).unwrap_or(0)
}

/// A static policy ready to evaluate: its condition (scope and body as one expression) is built
/// once here, where Cedar's authorizer would rebuild it on every request.
struct Compiled {
    id: String,
    effect: ast::Effect,
    condition: ast::Expr,
}

/// Splits a validated set by the actions its policies' scopes can match. A policy on an action
/// the engine does not know (an action group of a custom schema) goes to every slice: a slice may
/// hold more than needed, never less.
fn slice_by_action(set: &PolicySet, names: &Names) -> [Vec<Compiled>; 5] {
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
        for i in targets {
            let id = p.id().to_string();
            slices[i].push(Compiled { id, effect: policy.effect(), condition: policy.condition() });
        }
    }
    slices
}

/// Where a loaded set came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// The default set compiled into the binary.
    Builtin,
    /// A directory (`*.cedar`, and `schema/*.cedarschema` or the built-in schema).
    Dir(PathBuf),
}

/// A validated Cedar policy set, ready to decide. Cheap to share (`Arc`); immutable once loaded.
pub struct CedarEngine {
    /// The whole validated set.
    policies: PolicySet,
    /// Per action (in `Action::ALL` order), the policies whose scope can match it, compiled.
    slices: [Vec<Compiled>; 5],
    ids: Vec<String>,
    source: PolicySource,
    fingerprint: Fingerprint,
    names: Names,
}

impl fmt::Debug for CedarEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CedarEngine").field("source", &self.source).field("policies", &self.ids).finish()
    }
}

impl CedarEngine {
    /// Loads every `*.cedar` file of `dir` (not recursive, sorted by name) and validates the set,
    /// in Cedar's strict mode, against the schema in `dir/schema/*.cedarschema` — or, when `dir`
    /// has no `schema/` directory, against the schema compiled into the binary (the one the engine
    /// builds its requests for: a set that brings its own schema must keep those names).
    /// Every policy carries an `@id("…")` annotation, unique across the set.
    /// Errors name the file, line and reason, one per problem.
    pub fn load(dir: &Path) -> Result<Self, PolicyError> {
        let sources = read_dir_sources(dir)?;
        let (schemas, policies): (Vec<_>, Vec<_>) =
            sources.iter().partition(|s| s.path.extension().is_some_and(|e| e == "cedarschema"));
        if policies.is_empty() {
            return Err(PolicyError::NoPolicies(dir.to_path_buf()));
        }
        let schemas: Vec<(PathBuf, &str)> = if schemas.is_empty() {
            vec![(PathBuf::from("<built-in>/vigie.cedarschema"), BUILTIN_SCHEMA)]
        } else {
            schemas.iter().map(|s| (s.path.clone(), s.text.as_str())).collect()
        };
        let policies: Vec<(PathBuf, &str)> = policies.iter().map(|s| (s.path.clone(), s.text.as_str())).collect();
        let fingerprint = Fingerprint { files: sources.iter().map(|s| s.stamp.clone()).collect() };
        Self::build(&schemas, &policies, PolicySource::Dir(dir.to_path_buf()), fingerprint)
    }

    /// The default policy set and schema compiled into the binary.
    pub fn builtin() -> Result<Self, PolicyError> {
        let schema = [(PathBuf::from("<built-in>/vigie.cedarschema"), BUILTIN_SCHEMA)];
        let policies: Vec<(PathBuf, &str)> =
            BUILTIN_POLICIES.iter().map(|(n, t)| (PathBuf::from(format!("<built-in>/{n}")), *t)).collect();
        Self::build(&schema, &policies, PolicySource::Builtin, Fingerprint::default())
    }

    fn build(
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
        let slices = slice_by_action(&set, &names);
        Ok(Self { policies: set, slices, ids, source, fingerprint, names })
    }

    /// The validated Cedar policy set (ids are the `@id` annotations), e.g. to list its texts.
    pub fn policy_set(&self) -> &PolicySet {
        &self.policies
    }

    /// The ids (`@id`) of the loaded policies, sorted.
    pub fn policy_ids(&self) -> &[String] {
        &self.ids
    }

    /// Where the set came from.
    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    /// The files (with sizes, mtimes and content hashes) the set was read from.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    // The request's entities and context are built as Cedar values directly (cedar-policy-core's
    // `Value`), not as expressions that Cedar would then evaluate: the same values, without the
    // evaluator's allocations on the hot path. Their shapes are the schema's; the scenario tests
    // and `eval_json` (which goes through the same code) check them against the policies.
    fn identity_entity(&self, p: &Principal) -> ast::Entity {
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
    fn resource_entity(&self, r: &Resource, principal: &Principal) -> (EntityUid, Option<ast::Entity>) {
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

    fn context(&self, auth: &Authentication, ctx: &PolicyContext, now: i64) -> ast::Context {
        let factors = Value::set(auth.factors.iter().map(|f| Value::from(f.amr())), None);
        let age = now.saturating_sub(auth.at).max(0);
        let authentication = Value::record(
            [
                ("mie", Value::from(auth.mie.as_str())),
                ("factors", factors),
                ("phishing_resistant", Value::from(auth.level == AssuranceLevel::TwoFactorPhishingResistant)),
                ("level", Value::from(level_number(auth.level))),
                ("age_secs", Value::from(age)),
            ],
            None,
        );
        let pairs: BTreeMap<SmolStr, Value> = BTreeMap::from([
            ("authentication".into(), authentication),
            ("network_zone".into(), Value::from(ctx.network_zone.as_str())),
            ("degraded".into(), Value::from(ctx.degraded)),
            ("hour".into(), Value::from(i64::from(ctx.hour))),
            ("password_totp_transition".into(), Value::from(ctx.password_totp_transition)),
        ]);
        ast::Context::Value(Arc::new(pairs))
    }

    /// Cedar's authorization algorithm (Cedar docs, "Authorization": a request is allowed when at
    /// least one permit is satisfied and no forbid is; a policy whose evaluation errors is
    /// skipped, and the error reported), on the action's compiled slice. The determining
    /// policies are the satisfied forbids when refused by one, else the satisfied permits. A unit
    /// test checks it against `Authorizer::is_authorized` on the whole set.
    fn evaluate(
        &self,
        principal: &EntityUid,
        action: Action,
        resource: &EntityUid,
        context: ast::Context,
        entities: &CoreEntities,
    ) -> (bool, Vec<String>, Vec<String>) {
        let request = ast::Request::new_unchecked(
            EntityUIDEntry::known(principal.as_ref().clone(), None),
            EntityUIDEntry::known(self.names.action(action).as_ref().clone(), None),
            EntityUIDEntry::known(resource.as_ref().clone(), None),
            Some(context),
        );
        let evaluator = Evaluator::new(request, entities, Extensions::all_available());
        let slots = ast::SlotEnv::new();
        let (mut permits, mut forbids, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        for p in &self.slices[action_index(action)] {
            match evaluator.interpret(&p.condition, &slots).map(|v| v.value) {
                Ok(ast::ValueKind::Lit(ast::Literal::Bool(true))) => match p.effect {
                    ast::Effect::Permit => permits.push(p.id.clone()),
                    ast::Effect::Forbid => forbids.push(p.id.clone()),
                },
                Ok(ast::ValueKind::Lit(ast::Literal::Bool(false))) => {}
                // A validated set only has boolean conditions.
                Ok(other) => errors.push(format!("policy `{}` evaluated to {other:?}, not a boolean", p.id)),
                Err(e) => errors.push(format!("error while evaluating policy `{}`: {e}", p.id)),
            }
        }
        let (allowed, mut policies) =
            if !forbids.is_empty() { (false, forbids) } else { (!permits.is_empty(), permits) };
        policies.sort();
        (allowed, policies, errors)
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

/// The `level` the schema speaks of: 1 two factors, 2 two phishing-resistant factors.
fn level_number(level: AssuranceLevel) -> i64 {
    match level {
        AssuranceLevel::TwoFactor => 1,
        AssuranceLevel::TwoFactorPhishingResistant => 2,
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
        let context = self.context(req.authentication, req.context, req.now);
        let (allowed, policies, errors) = self.evaluate(&principal_uid, action, &resource_uid, context, &entities);
        if allowed {
            return Decision { allowed, policies, step_up: Vec::new(), errors };
        }
        // Step-up: ask again as if the principal had just logged in with each candidate MIE,
        // everything else unchanged; the entities are the same, only the context differs.
        let step_up = ALL_MIE
            .into_iter()
            .filter(|mie| {
                let fresh = fresh_authentication(&req.principal.id, *mie, req.now);
                let context = self.context(&fresh, req.context, req.now);
                self.evaluate(&principal_uid, action, &resource_uid, context, &entities).0
            })
            .collect();
        Decision { allowed, policies, step_up, errors }
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

/// A login with `mie` that has just happened: its factors and level as the verifier would set them.
pub(crate) fn fresh_authentication(identity: &str, mie: Mie, now: i64) -> Authentication {
    Authentication::new(identity.to_owned(), mie, factors_of(mie), now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_builtin_set_validates_and_every_policy_has_an_id() {
        let engine = CedarEngine::builtin().expect("built-in set");
        assert!(engine.policy_ids().len() >= 12, "{:?}", engine.policy_ids());
        assert!(engine.policy_ids().iter().any(|id| id == "login-rie-mie"));
        assert_eq!(engine.source(), &PolicySource::Builtin);
    }

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// The compiled fast path decides exactly as Cedar's `Authorizer` on the whole set:
        /// same decision, same determining policies, as many errors.
        #[test]
        fn the_fast_path_agrees_with_cedars_authorizer(
            p in principal_strategy(),
            (action, r) in target_strategy(),
            mie in prop::sample::select(ALL_MIE.to_vec()),
            age in prop_oneof![0i64..2000, Just(i64::MAX / 2)],
            zone in prop::sample::select(vec!["internal", "external"]),
            degraded in any::<bool>(),
            hour in 0u8..24,
            transition in any::<bool>(),
        ) {
            for engine in [builtin(), extended()] {
                let auth = Authentication::new(p.id.clone(), mie, factors_of(mie), 1_000_000 - age);
                let ctx = PolicyContext { degraded, network_zone: zone.into(), hour, password_totp_transition: transition };
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

    fn builtin() -> &'static CedarEngine {
        static E: std::sync::OnceLock<CedarEngine> = std::sync::OnceLock::new();
        E.get_or_init(|| CedarEngine::builtin().expect("built-in"))
    }

    fn extended() -> &'static CedarEngine {
        static E: std::sync::OnceLock<CedarEngine> = std::sync::OnceLock::new();
        E.get_or_init(extended_engine)
    }

    #[test]
    fn the_extended_set_errs_refuses_and_permits_as_written() {
        let e = extended();
        let p = Principal { id: "a".into(), employment_status: "active".into(), ..Default::default() };
        let auth = Authentication::new("a".into(), Mie::Cps, factors_of(Mie::Cps), 0);
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

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 1), (1, 1));
        assert_eq!(line_col("ab", 99), (1, 3));
    }
}
