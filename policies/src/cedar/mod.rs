//! The Cedar policy engine: loads a policy set and its schema, validates the set in strict mode,
//! and answers [`PolicyRequest`]s with the ids of the deciding policies and, when refused, the MIE
//! with which a fresh login would be allowed (step-up).
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
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
    ALL_MIE, AccountKind, Action, Decision, PolicyContext, PolicyEngine, PolicyRequest, Principal, Resource,
    TokenPrincipal, factors_of,
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
    api_token: EntityTypeName,
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
            api_token: ty("Vigie::ApiToken"),
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
    /// What the condition reads of the context (see [`context_use`]).
    reads: ContextUse,
    /// Per step-up candidate (in [`ALL_MIE`] order): the condition cannot hold for a login with
    /// it, whatever the rest of the request (see [`ruled_out_by_authentication`]).
    ruled_out: [bool; ALL_MIE.len()],
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
struct ContextUse {
    /// Reads `context.authentication`: its value may change with the MIE of a step-up candidate.
    authentication: bool,
    /// Reads `context.authentication.age_secs`: its value may change with the time of the request.
    age: bool,
    /// The attributes of `context.authentication` it reads; `None`: all of it.
    authentication_attrs: Option<Vec<SmolStr>>,
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
    /// Per action, whether a policy of its slice reads `context.authentication.age_secs`.
    reads_age: [bool; 5],
    /// The `context.authentication` of a login with each of [`ALL_MIE`] made at the time of the
    /// request (age 0): the step-up candidates, built once.
    fresh: [Value; ALL_MIE.len()],
    /// Decisions of this set, by everything they depend on (see [`CedarEngine::cache_key`]).
    /// A reload builds a new engine, hence a new cache: a decision of an old set is never served.
    /// Seeded per process (foldhash's random state): fast, and keys cannot be chosen to collide.
    cache: Mutex<HashMap<Vec<u8>, Decision, foldhash::fast::RandomState>>,
}

/// How many decisions a set keeps; when full, the cache is emptied (bounded memory, no eviction
/// bookkeeping on the hot path).
const CACHE_CAPACITY: usize = 4096;

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

    /// The context of a request, for tests: [`context_without_authentication`] and
    /// [`authentication_value`] put together.
    #[cfg(test)]
    fn context(&self, auth: &Authentication, ctx: &PolicyContext, now: i64) -> ast::Context {
        with_authentication(
            &context_without_authentication(ctx),
            authentication_value(auth, now.saturating_sub(auth.at)),
        )
    }

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

    /// Decides without the cache.
    fn decide_uncached(&self, req: &PolicyRequest<'_>) -> Decision {
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

    /// The principal, context and entities of a token's request.
    fn token_request(
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

/// Seconds since the authentication, as `context.authentication.age_secs` says it (never negative).
fn age(auth: &Authentication, now: i64) -> i64 {
    now.saturating_sub(auth.at).max(0)
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

/// `context.authentication`: the schema's `Authentication` record.
fn authentication_value(auth: &Authentication, age: i64) -> Value {
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
fn context_without_authentication(ctx: &PolicyContext) -> BTreeMap<SmolStr, Value> {
    BTreeMap::from([
        ("network_zone".into(), Value::from(ctx.network_zone.as_str())),
        ("degraded".into(), Value::from(ctx.degraded)),
        ("hour".into(), Value::from(i64::from(ctx.hour))),
        ("password_totp_transition".into(), Value::from(ctx.password_totp_transition)),
        ("sponsorships_today".into(), Value::from(i64::from(ctx.sponsorships_today))),
    ])
}

fn with_authentication(shared: &BTreeMap<SmolStr, Value>, authentication: Value) -> ast::Context {
    let mut pairs = shared.clone();
    pairs.insert("authentication".into(), authentication);
    ast::Context::Value(Arc::new(pairs))
}

/// Writes a cache key: every string with its length, so that no two inputs write the same key.
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

impl PolicyEngine for CedarEngine {
    fn decide(&self, req: &PolicyRequest<'_>) -> Decision {
        if !applies_to(req.action, req.resource) {
            // Outside the schema's `appliesTo`: no policy was written for it, and Cedar would
            // only report evaluation errors. Refused, saying why; no MIE would change it.
            let error = format!("action {} does not apply to {}", req.action.as_str(), resource_kind(req.resource));
            return Decision { errors: vec![error], ..Default::default() };
        }
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
                let auth = Authentication::new(p.id.clone(), mie, login_factors(mie, unattested), 1_000_000 - age);
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
                let auth = Authentication::new(p.id.clone(), mie, login_factors(mie, unattested), now - age);
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
        let cps = Authentication::new("ide".into(), Mie::Cps, factors_of(Mie::Cps), now - 60);
        let cps_old = Authentication::new("ide".into(), Mie::Cps, factors_of(Mie::Cps), now - 901);
        let totp = Authentication::new("ide".into(), Mie::PasswordTotp, factors_of(Mie::PasswordTotp), now - 60);
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

    #[test]
    fn the_cache_stays_bounded() {
        let engine = CedarEngine::builtin().expect("built-in");
        let auth = Authentication::new("x".into(), Mie::Cps, factors_of(Mie::Cps), 0);
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
