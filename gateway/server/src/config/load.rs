//! Reading the configuration: the TOML file (or the demo's base) under `VIGIE_…` overrides, every
//! unknown key reported rather than the first only, then [`Config::validate`].
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use super::{Config, TOP_LEVEL_KEYS};

/// A configuration that failed validation: one line per problem.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "config: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads `path` (TOML) under `VIGIE_…` overrides and validates the result.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        if !path.is_file() {
            return Err(ConfigErrors(vec![format!("{}: no such file", path.display())]));
        }
        Self::extract(Figment::new().merge(Toml::file(path)))
    }

    /// Validates a base configuration (the demo's) under `VIGIE_…` overrides.
    pub fn from_base(base: &Config) -> Result<Config, ConfigErrors> {
        Self::extract(Figment::new().merge(Serialized::defaults(base)))
    }

    fn extract(figment: Figment) -> Result<Config, ConfigErrors> {
        // Only variables naming a configuration section are read: others with the prefix (the
        // `VIGIE_PORT`, `VIGIE_SERVICE_HOST`… Kubernetes adds for a Service named `vigie`,
        // `VIGIE_LOG`, test tooling) are not configuration. Within a section, unknown keys
        // are still refused.
        let env = Env::prefixed("VIGIE_").split("__").filter(|k| {
            let section = k.as_str().split('.').next().unwrap_or_default().to_ascii_lowercase();
            TOP_LEVEL_KEYS.contains(&section.as_str())
        });
        let mut figment = figment.merge(env);
        // serde stops at the first unknown key: each one is reported, dropped, and the rest read
        // again, so that one stray key hides neither the others nor the checks of `validate`.
        let mut errors = Vec::new();
        let mut reread = false;
        loop {
            match figment.extract::<Config>() {
                Ok(config) => {
                    if let Err(ConfigErrors(more)) = config.validate() {
                        errors.extend(more);
                    }
                    return if errors.is_empty() { Ok(config) } else { Err(ConfigErrors(errors)) };
                }
                Err(e) => {
                    let unknown: Vec<Vec<String>> = e
                        .clone()
                        .into_iter()
                        .filter(|e| matches!(e.kind, figment::error::Kind::UnknownField(..)))
                        .map(|e| e.path)
                        .collect();
                    errors.extend(e.into_iter().map(|e| match &e.kind {
                        // Said the way `validate` says it: once re-read, figment would name the
                        // re-read tree, not the file or the environment, as the source.
                        figment::error::Kind::UnknownField(_, expected) => {
                            let expected: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
                            format!("`{}`: unknown key; expected one of {}", key_path(&e.path), expected.join(", "))
                        }
                        kind if reread && !e.path.is_empty() => format!("`{}`: {kind}", key_path(&e.path)),
                        _ => e.to_string(),
                    }));
                    let Ok(mut data) = figment.extract::<figment::value::Value>() else {
                        return Err(ConfigErrors(errors));
                    };
                    if unknown.is_empty() || !unknown.iter().all(|path| remove_key(&mut data, path)) {
                        return Err(ConfigErrors(errors));
                    }
                    figment = Figment::from(Serialized::defaults(data));
                    reread = true;
                }
            }
        }
    }
}

/// `clients[0].name` for the figment path `["clients", "0", "name"]`.
fn key_path(path: &[String]) -> String {
    let mut out = String::new();
    for p in path {
        if p.parse::<usize>().is_ok() {
            out.push_str(&format!("[{p}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(p);
        }
    }
    out
}

/// Removes the key at `path` (as a figment error names it) from a configuration tree; tells
/// whether it was there.
fn remove_key(value: &mut figment::value::Value, path: &[String]) -> bool {
    use figment::value::Value;
    match (path, value) {
        ([last], Value::Dict(_, d)) => d.remove(last).is_some(),
        ([first, rest @ ..], Value::Dict(_, d)) => d.get_mut(first).is_some_and(|v| remove_key(v, rest)),
        ([first, rest @ ..], Value::Array(_, a)) => {
            first.parse::<usize>().ok().and_then(|i| a.get_mut(i)).is_some_and(|v| remove_key(v, rest))
        }
        _ => false,
    }
}
