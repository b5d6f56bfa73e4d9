//! The operator docs against the source: every metric the code registers is in
//! `docs/metrics.md`, with its type, and the doc names none the code no longer registers.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The workspace root (this crate is `gateway/server`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if !matches!(p.file_name().and_then(|n| n.to_str()), Some("target" | "tests" | "node_modules")) {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `counter!("vigie_…"` / `gauge!(…` / `histogram!(…` of the shipped code: name → type.
fn registered() -> BTreeMap<String, &'static str> {
    let mut files = Vec::new();
    for dir in ["gateway", "adapters", "policies"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut found = BTreeMap::new();
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap_or_default();
        for kind in ["counter", "gauge", "histogram"] {
            let open = format!("{kind}!(");
            for (i, _) in src.match_indices(&open) {
                let rest = src[i + open.len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else { continue };
                let name: String = rest.chars().take_while(|c| *c != '"').collect();
                if name.starts_with("vigie_") {
                    found.insert(name, kind);
                }
            }
        }
    }
    found
}

/// The rows of the doc's table: name → type.
fn documented() -> BTreeMap<String, String> {
    let doc = std::fs::read_to_string(root().join("docs/metrics.md")).expect("docs/metrics.md");
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix("`vigie_")?.strip_suffix('`')?;
            Some((format!("vigie_{name}"), cells.get(2)?.to_string()))
        })
        .collect()
}

#[test]
fn metrics_doc_lists_every_registered_metric() {
    let code = registered();
    assert!(code.len() > 20, "the scan found the metrics of the source: {code:?}");
    let doc = documented();
    let missing: Vec<_> = code.keys().filter(|m| !doc.contains_key(*m)).collect();
    assert!(missing.is_empty(), "registered but not in docs/metrics.md (add a row: type, unit, labels): {missing:?}");
    let stale: Vec<_> = doc.keys().filter(|m| !code.contains_key(*m)).collect();
    assert!(stale.is_empty(), "in docs/metrics.md but registered nowhere: {stale:?}");
    for (name, kind) in &code {
        assert_eq!(doc[name], *kind, "docs/metrics.md gives {name} the wrong type");
    }
}
