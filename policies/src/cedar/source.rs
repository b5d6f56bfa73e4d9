//! Where a policy set comes from and what can be wrong with it: the built-in set, a policy
//! directory read with its fingerprint, and problems positioned by file, line and column.

use std::fmt;
use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use miette::Diagnostic;

use super::CedarEngine;

/// The schema compiled into the binary: used when a policy directory brings none.
pub const BUILTIN_SCHEMA: &str = include_str!("../../schema/vigie.cedarschema");

/// The default policy set compiled into the binary, as (file name, text).
pub const BUILTIN_POLICIES: [(&str, &str); 5] = [
    ("00_everywhere.cedar", include_str!("../../default/00_everywhere.cedar")),
    ("10_login.cedar", include_str!("../../default/10_login.cedar")),
    ("20_dmp.cedar", include_str!("../../default/20_dmp.cedar")),
    ("30_system.cedar", include_str!("../../default/30_system.cedar")),
    ("40_sponsor.cedar", include_str!("../../default/40_sponsor.cedar")),
];

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
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
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
pub(super) fn problem_of(file: &Path, text: &str, diag: &dyn Diagnostic) -> Problem {
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

/// Where a loaded set came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// The default set compiled into the binary.
    Builtin,
    /// A directory (`*.cedar`, and `schema/*.cedarschema` or the built-in schema).
    Dir(PathBuf),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 1), (1, 1));
        assert_eq!(line_col("ab", 99), (1, 3));
    }
}
