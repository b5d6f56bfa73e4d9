//! What `serve` reads from disk at start (signing keys, policy set, trust anchors, certificates and
//! keys of the upstreams, the TLS pair, the audit file's directory), read by one function that both
//! `serve` and `vigie check-config` call: a configuration that passes the check starts.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use vigie_core::cards::CardValidation;
use vigie_core::policy::PolicyEngine;

use crate::config::Config;
use crate::keys::Keys;

/// Everything [`load`] read, ready for `build_state`.
pub struct Loaded {
    pub keys: Keys,
    pub policy: Arc<dyn PolicyEngine>,
    /// The policy set when it comes from `policy.dir` (reloadable).
    pub policy_reload: Option<Arc<vigie_policies::ReloadablePolicies>>,
    pub http: reqwest::Client,
    pub card_validator: Option<Arc<dyn CardValidation>>,
    pub webauthn: webauthn_rs::Webauthn,
    pub attestation_roots: Option<webauthn_rs::prelude::AttestationCaList>,
    pub psc: Option<Arc<crate::psc::PscRuntime>>,
    pub dmp: Option<Arc<crate::dmp::Dmp>>,
    pub mailer: vigie_mail::Mailer,
    /// `store.ca_file`, `store.client_cert` / `store.client_key`, read.
    pub store_tls: vigie_store_redis::RedisTls,
}

/// Whether [`load`] may write: `serve` creates the CRL cache directory; `check-config` writes
/// nothing and only checks that the directory is there or can be made. `check-config` also builds
/// the listener's TLS configuration, which `serve` builds once the state exists.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    Check,
}

/// What stops a start: one line per problem, each naming its key and what to do.
#[derive(Debug)]
pub struct Problems(pub Vec<String>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for Problems {}

/// Reads every file `serve` loads at start, the way it loads them, and reports every problem
/// rather than the first. Opens no network connection (the directory and the store are opened
/// by `build_state`, after this).
pub fn load(config: &Config, mode: Mode) -> Result<Loaded, Problems> {
    let mut problems = Vec::new();
    // An error that already starts with its key (`webauthn.origin`: …) is kept as it is; others
    // get the key of the setting they came from.
    let mut keep = |key: &str, e: anyhow::Error| {
        let text = format!("{e:#}");
        problems.push(if text.starts_with('`') { text } else { format!("`{key}`: {text}") });
    };
    let keys = Keys::load(&config.keys.file).map_err(|e| keep("keys.file", e.into())).ok();
    let policy = policy(config).map_err(|e| keep("policy.dir", e)).ok();
    let http = http_client(config).map_err(|e| keep("demo.ca_file", e)).ok();
    let card_validator = card_validator(config, mode).map_err(|e| keep("cards.trust", e)).ok();
    if let (Mode::Check, Some(dir)) = (mode, &config.cards.trust.crl_cache_dir)
        && !dir.exists()
        && let Err(e) = crl_cache_dir(dir)
    {
        keep("cards.trust.crl_cache_dir", e);
    }
    let webauthn = crate::login::fido2::relying_party(config).map_err(|e| keep("webauthn", e)).ok();
    let attestation_roots = crate::login::attestation::trust_roots(&config.webauthn, crate::now())
        .map_err(|e| keep(&e.key, anyhow::anyhow!("{}", e.message)))
        .ok();
    let psc = crate::psc::build(config).map_err(|e| keep("psc", e)).ok();
    let dmp = crate::dmp::build(config).map_err(|e| keep("dmp", e)).ok();
    let mailer = vigie_mail::Mailer::new(&config.mail).map_err(|e| keep("mail", e.into())).ok();
    if let Err(e) = ldap_source(config) {
        keep("directory.ldap", e);
    }
    if let Some(feed) = &config.lifecycle.hr_feed
        && let Err(e) = crate::lifecycle::pull::check_files(feed)
    {
        keep("lifecycle.hr_feed", e);
    }
    if let Err(e) = crate::derivation::fhir::Fhir::from_config(&config.derivation) {
        keep("derivation", e);
    }
    if let Err(e) = audit_directory(&config.audit.file) {
        keep("audit.file", e);
    }
    if let Some(syslog) = &config.audit.syslog
        && let Err(e) = crate::audit_export::syslog::check(syslog)
    {
        keep("audit.syslog", e);
    }
    if let Some(path) = &config.audit.ins_key_file
        && let Err(e) = crate::audit::ins::InsKey::load(path)
    {
        keep("audit.ins_key_file", e);
    }
    if let Err(e) = config.audit.signer() {
        keep("audit.checkpoint_key", e);
    }
    let store_tls = redis_tls(&config.store).map_err(|e| keep("store", e)).ok();
    // The listener's TLS configuration is not part of the state: `serve` builds it from the state
    // right after (`wiring::serve`), with the same errors naming `server.tls_cert` or
    // `server.tls_key`; `check-config` builds it here with the same anchors. (The state alone is
    // also built without a listener: the in-process test, the fuzz targets.)
    if mode == Mode::Check {
        let validator = card_validator.as_ref().and_then(Option::as_ref).map(|v| v as &dyn CardValidation);
        let subjects = crate::web::tls::client_ca_subjects(validator, &config.cards);
        if let Err(e) = crate::web::tls::server_config(&config.server.tls_cert, &config.server.tls_key, subjects) {
            keep("server.tls_cert", e);
        }
    }
    match (keys, policy, http, card_validator, webauthn, attestation_roots, psc, dmp, mailer) {
        (
            Some(keys),
            Some((policy, policy_reload)),
            Some(http),
            Some(card_validator),
            Some(webauthn),
            Some(attestation_roots),
            Some(psc),
            Some(dmp),
            Some(mailer),
        ) if problems.is_empty() => {
            let card_validator = card_validator.map(|v| Arc::new(v.with_http(http.clone())) as Arc<dyn CardValidation>);
            Ok(Loaded {
                keys,
                policy,
                policy_reload,
                http,
                card_validator,
                webauthn,
                attestation_roots,
                psc,
                dmp,
                mailer,
                store_tls: store_tls.unwrap_or_default(),
            })
        }
        _ => Err(Problems(problems)),
    }
}

/// [`redis_tls`] for a command that opens only the store (`vigie directory sync`'s lease).
pub fn store_tls(config: &crate::config::Config) -> anyhow::Result<vigie_store_redis::RedisTls> {
    redis_tls(&config.store).map_err(|e| anyhow::anyhow!("store: {e:#}"))
}

/// The PEM files of TLS to Redis, checked as rustls will read them: a CA file with no
/// certificate, a client certificate without one or a key that is not a private key is refused
/// here, naming its key, rather than at the first connection.
fn redis_tls(store: &crate::config::StoreConfig) -> anyhow::Result<vigie_store_redis::RedisTls> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    if store.kind != crate::config::StoreKind::Redis {
        return Ok(Default::default());
    }
    let read = |key: &str, path: &Path| {
        std::fs::read(path).map_err(|e| anyhow::anyhow!("`store.{key}`: cannot read {}: {e}", path.display()))
    };
    let certificates = |key: &str, path: &Path| {
        let pem = read(key, path)?;
        match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
            Ok(certs) if !certs.is_empty() => Ok(pem),
            _ => anyhow::bail!(
                "`store.{key}`: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        }
    };
    let ca_pem = store.ca_file.as_deref().map(|path| certificates("ca_file", path)).transpose()?;
    let client_pem = match (&store.client_cert, &store.client_key) {
        (Some(cert), Some(key)) => {
            let cert = certificates("client_cert", cert)?;
            let pem = read("client_key", key)?;
            if PrivateKeyDer::from_pem_slice(&pem).is_err() {
                anyhow::bail!("`store.client_key`: {} holds no PEM private key", key.display());
            }
            Some((cert, pem))
        }
        _ => None,
    };
    Ok(vigie_store_redis::RedisTls { ca_pem, client_pem })
}

/// The LDAP source of `[directory.ldap]`, its CA and service password files read (no connection:
/// the directory may be down at start, logins then get a page saying so). [`load`] checks it;
/// `build_state` builds it after [`load`] passed.
pub fn ldap_source(config: &Config) -> anyhow::Result<Option<Arc<vigie_directory_ldap::LdapSource>>> {
    let Some(ldap) = &config.directory.ldap else { return Ok(None) };
    let source = vigie_directory_ldap::LdapSource::from_files(ldap.clone(), "directory.ldap")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(Arc::new(source)))
}

type Policies = (Arc<dyn PolicyEngine>, Option<Arc<vigie_policies::ReloadablePolicies>>);

/// The policy set of `policy.dir`, else the built-in one. An invalid set says one line per
/// problem (file:line:column: reason).
fn policy(config: &Config) -> anyhow::Result<Policies> {
    Ok(match &config.policy.dir {
        Some(dir) => {
            let p = Arc::new(
                vigie_policies::ReloadablePolicies::load(dir)
                    .with_context(|| format!("loading the policy set {}: check `policy.dir`", dir.display()))?,
            );
            (p.clone(), Some(p))
        }
        None => (Arc::new(vigie_policies::CedarEngine::builtin().context("the built-in policy set")?), None),
    })
}

fn http_client(config: &Config) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vigie/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &config.demo.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).context("demo CA certificate")?);
    }
    b.build().context("building the HTTP client")
}

/// The card validator when `cards.trust` names anchors. In [`Mode::Check`] a CRL cache
/// directory that does not exist yet is left out (the validator would create it):
/// [`crl_cache_dir`] checks that it can be; one that exists is read as `serve` reads it.
fn card_validator(config: &Config, mode: Mode) -> anyhow::Result<Option<vigie_igc_sante::CardValidator>> {
    let trust = &config.cards.trust;
    if trust.anchors.is_empty() && trust.anchors_pem.is_empty() {
        return Ok(None);
    }
    let mut trust = trust.clone();
    if mode == Mode::Check && trust.crl_cache_dir.as_ref().is_some_and(|d| !d.exists()) {
        trust.crl_cache_dir = None;
    }
    match vigie_igc_sante::CardValidator::new(trust) {
        Ok(v) => Ok(Some(v)),
        Err(e @ vigie_igc_sante::TrustError::CacheDir { .. }) => {
            anyhow::bail!("`cards.trust.crl_cache_dir`: {e}: create it or change the key")
        }
        Err(e) => Err(anyhow::Error::new(e)
            .context("loading the card trust anchors: check `cards.trust.anchors` / `cards.trust.anchors_pem`")),
    }
}

/// A CRL cache directory still to be made, as `serve` makes it (with its parents): its first
/// existing ancestor must be a directory this process may write.
fn crl_cache_dir(dir: &Path) -> anyhow::Result<()> {
    let existing = dir.ancestors().find(|a| !a.as_os_str().is_empty() && a.exists()).unwrap_or(Path::new("."));
    if !(existing.is_dir() && writable(existing)) {
        anyhow::bail!(
            "the CRL cache directory {} cannot be created: {} is not a writable directory",
            dir.display(),
            existing.display()
        );
    }
    Ok(())
}

/// The audit file is appended to from the start: its directory must exist and be writable
/// (checked without writing), and the file, if there, must be a writable file.
pub fn audit_directory(file: &str) -> anyhow::Result<()> {
    if file == "-" {
        return Ok(());
    }
    let path = Path::new(file);
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        anyhow::bail!(
            "the directory {} of the audit file does not exist: create it or change `audit.file`",
            dir.display()
        );
    }
    let target = if path.exists() { path } else { dir };
    if path.exists() && !path.is_file() {
        anyhow::bail!("{file} is not a file: check `audit.file`");
    }
    if !writable(target) {
        anyhow::bail!("{} is not writable by this user: check `audit.file` and its permissions", target.display());
    }
    Ok(())
}

/// Whether this process may write `path` (access(2) with W_OK: asks the kernel, writes nothing).
fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; access only reads it.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}
