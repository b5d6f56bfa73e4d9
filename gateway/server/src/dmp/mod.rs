//! The DMP in AIR simplifié (reference `dmp-vihf-cps.md`): the `[dmp]` configuration, the VIHF
//! issued for a professional's live session once the policy allows it (token exchange and relay
//! share it), and the SOAP relay `POST /dmp/relay/{service}` to the DMP over mutual TLS.
use std::path::{Path, PathBuf};
use std::time::Instant;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};

use crate::app::{AppState, State};
use crate::http::{Caller, bearer_missing, bearer_token, problem, with_bearer_challenge};
use crate::oidc::grant::{AccessTokenClaims, verify_access_token};
use crate::secrets::Secret;

pub use vigie_dmp::{InsNir, Sealer, Vihf, VihfSettings};

/// `[dmp]`: VIHF issuance and the relay. Off by default.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DmpConfig {
    /// Issue VIHFs (token exchange) and relay DMP calls.
    pub enabled: bool,
    /// The establishment's seal (ORG_SIGN certificate and key) that signs VIHFs.
    pub seal: SealConfig,
    /// What the VIHF says and how it is signed (`vigie_dmp::VihfSettings`: defaults from the
    /// reference; configurable because the public sources disagree).
    pub vihf: VihfSection,
    /// The DMP web services and the establishment's TLS client certificate (ORG_AUTH_CLI).
    pub relay: RelayConfig,
}

/// `[dmp.vihf]` as written, read into [`VihfSettings`] (unknown keys refused) when the DMP side
/// is built: kept as a configuration value so that the demo's base configuration goes through
/// the same environment overrides as the rest.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VihfSection(pub figment::value::Value);

impl Default for VihfSection {
    fn default() -> Self {
        Self(figment::value::Value::from(figment::value::Dict::new()))
    }
}

impl VihfSection {
    /// A section setting these keys.
    pub fn of(pairs: &[(&str, &str)]) -> Self {
        let dict: figment::value::Dict =
            pairs.iter().map(|(k, v)| (k.to_string(), figment::value::Value::from(v.to_string()))).collect();
        Self(figment::value::Value::from(dict))
    }

    /// The settings, or what is wrong with them (named by key).
    pub fn settings(&self) -> Result<VihfSettings, (String, String)> {
        let mut value = self.0.clone();
        // An environment override reads `1760000018` as a number: where a string is expected, a
        // number is taken as written (a structure id, an LPS id).
        let settings: VihfSettings = loop {
            match value.deserialize::<VihfSettings>() {
                Ok(s) => break s,
                Err(e) => {
                    if let figment::error::Kind::InvalidType(actual, expected) = &e.kind
                        && expected.contains("string")
                        && let Some(text) = match actual {
                            figment::error::Actual::Unsigned(n) => Some(n.to_string()),
                            figment::error::Actual::Signed(n) => Some(n.to_string()),
                            _ => None,
                        }
                        && let Some(slot) = value_at(&mut value, &e.path)
                    {
                        *slot = figment::value::Value::from(text);
                        continue;
                    }
                    let key = if e.path.is_empty() {
                        "dmp.vihf".to_owned()
                    } else {
                        format!("dmp.vihf.{}", e.path.join("."))
                    };
                    return Err((key, e.kind.to_string()));
                }
            }
        };
        settings.validate().map_err(|e| (format!("dmp.vihf.{}", e.key), e.problem))?;
        Ok(settings)
    }
}

/// The value at `path` (dictionary keys) in a configuration value.
fn value_at<'v>(value: &'v mut figment::value::Value, path: &[String]) -> Option<&'v mut figment::value::Value> {
    match path.split_first() {
        None => Some(value),
        Some((first, rest)) => match value {
            figment::value::Value::Dict(_, d) => value_at(d.get_mut(first)?, rest),
            _ => None,
        },
    }
}

/// The seal: a PEM certificate and key, or a PKCS#12 file and its password.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SealConfig {
    /// PEM certificate (the ORG_SIGN "cachet" of the establishment), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8 or PKCS#1, RSA).
    pub key_file: Option<PathBuf>,
    /// PKCS#12 file holding both, instead of `cert_file` and `key_file`.
    pub pkcs12_file: Option<PathBuf>,
    /// Its password, best from the environment (`VIGIE_DMP__SEAL__PKCS12_PASSWORD`).
    pub pkcs12_password: Option<Secret>,
    /// A file holding the password (a mounted secret); one trailing newline is ignored.
    pub pkcs12_password_file: Option<PathBuf>,
}

/// Where the DMP is and how Vigie reaches it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Base URL of the DMP services, e.g. `https://lps.dev1.dmp.gouv.fr/si-dmp-server/v2/services/`.
    /// Unset: the relay answers 503 (token exchange still works).
    pub base_url: Option<String>,
    /// PEM certificate chain of the ORG_AUTH_CLI certificate presented to the DMP.
    pub client_cert_file: Option<PathBuf>,
    /// Its PEM private key.
    pub client_key_file: Option<PathBuf>,
    /// PEM CA certificates to trust for the DMP's server certificate, besides the system ones.
    pub ca_file: Option<PathBuf>,
    /// Time allowed to connect to the DMP, TCP and TLS (milliseconds).
    pub timeout_ms: u64,
    /// Time allowed for one relayed call, from connecting to the answer's last byte
    /// (milliseconds): a DMP that stops answering gets 504, not a held connection.
    pub deadline_ms: u64,
    /// Largest SOAP request relayed (bytes; document submissions are MTOM and large).
    pub max_body_bytes: usize,
    /// Largest answer taken from the DMP (bytes): a fault over it is a 502, a streamed answer
    /// is cut there.
    pub max_answer_bytes: usize,
    /// The service paths under `base_url` the relay may reach.
    pub services: Vec<String>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            client_cert_file: None,
            client_key_file: None,
            ca_file: None,
            timeout_ms: 15_000,
            deadline_ms: 120_000,
            max_body_bytes: 32 * 1024 * 1024,
            max_answer_bytes: 64 * 1024 * 1024,
            // Reference §2: the kit's paths and DRIMbox's.
            services: [
                "patients",
                "PatientSpecific",
                "patient",
                "registry",
                "DocumentRegistry_Service",
                "repository",
                "DocumentRepository_Service",
                "habilitations",
                "Habilitation",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// The DMP side of the gateway, built from a valid `[dmp]`.
pub struct Dmp {
    pub settings: VihfSettings,
    pub sealer: Sealer,
    pub relay: Option<vigie_dmp::DmpRelay>,
    pub services: Vec<String>,
    pub max_body_bytes: usize,
    pub max_answer_bytes: usize,
    /// The assigning authorities under which a relayed call names its patient: the INS ones and
    /// `dmp.vihf.ins_oid`.
    pub patient_oids: Vec<String>,
}

fn read(key: &str, path: &Path, errors: &mut Vec<(String, String)>) -> Option<Vec<u8>> {
    std::fs::read(path).map_err(|e| errors.push((key.into(), format!("cannot read {}: {e}", path.display())))).ok()
}

fn read_text(key: &str, path: &Path, errors: &mut Vec<(String, String)>) -> Option<String> {
    let bytes = read(key, path, errors)?;
    String::from_utf8(bytes).map_err(|_| errors.push((key.into(), format!("{} is not PEM text", path.display())))).ok()
}

impl SealConfig {
    fn load(&self, errors: &mut Vec<(String, String)>) -> Option<Sealer> {
        match (&self.cert_file, &self.key_file, &self.pkcs12_file) {
            (None, None, None) => {
                errors.push((
                    "dmp.seal".into(),
                    "the seal is required: `cert_file` and `key_file` (PEM), or `pkcs12_file`".into(),
                ));
                None
            }
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                errors.push(("dmp.seal".into(), "give `cert_file` and `key_file`, or `pkcs12_file`, not both".into()));
                None
            }
            (None, None, Some(p12)) => {
                let der = read("dmp.seal.pkcs12_file", p12, errors)?;
                let password = match (&self.pkcs12_password, &self.pkcs12_password_file) {
                    (Some(_), Some(_)) => {
                        errors.push((
                            "dmp.seal.pkcs12_password".into(),
                            "give the password or `pkcs12_password_file`, not both".into(),
                        ));
                        return None;
                    }
                    (Some(p), None) => p.0.clone(),
                    (None, Some(f)) => {
                        let text = read_text("dmp.seal.pkcs12_password_file", f, errors)?;
                        text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_owned()
                    }
                    (None, None) => String::new(),
                };
                Sealer::from_pkcs12(&der, &password)
                    .map_err(|e| {
                        errors.push((
                            "dmp.seal.pkcs12_file".into(),
                            format!("{}: {e} (check the file and its password)", p12.display()),
                        ))
                    })
                    .ok()
            }
            (cert, key, None) => {
                let (Some(cert), Some(key)) = (cert, key) else {
                    let missing = if cert.is_none() { "dmp.seal.cert_file" } else { "dmp.seal.key_file" };
                    errors.push((missing.into(), "required with the other PEM file of the seal".into()));
                    return None;
                };
                let cert_pem = read_text("dmp.seal.cert_file", cert, errors);
                let key_pem = read_text("dmp.seal.key_file", key, errors);
                Sealer::from_pem(&cert_pem?, &key_pem?)
                    .map_err(|e| errors.push(("dmp.seal.cert_file".into(), format!("{}: {e}", cert.display()))))
                    .ok()
            }
        }
    }
}

impl RelayConfig {
    fn load(&self, errors: &mut Vec<(String, String)>) -> Option<vigie_dmp::DmpRelay> {
        for (i, s) in self.services.iter().enumerate() {
            if !vigie_dmp::is_service_name(s) {
                errors.push((format!("dmp.relay.services[{i}]"), format!("{s:?} is not a service path segment")));
            }
        }
        for (key, ms) in [("dmp.relay.timeout_ms", self.timeout_ms), ("dmp.relay.deadline_ms", self.deadline_ms)] {
            if ms == 0 {
                errors.push((key.into(), "expected a positive integer".into()));
            }
        }
        for (key, bytes) in
            [("dmp.relay.max_body_bytes", self.max_body_bytes), ("dmp.relay.max_answer_bytes", self.max_answer_bytes)]
        {
            if bytes < 1024 {
                errors.push((key.into(), "expected at least 1024".into()));
            }
        }
        let base = self.base_url.as_deref()?;
        match url::Url::parse(base) {
            Ok(u) if u.scheme() == "https" && u.query().is_none() && u.fragment().is_none() => {}
            _ => errors.push((
                "dmp.relay.base_url".into(),
                format!("expected an https URL (the DMP requires mutual TLS), found {base:?}"),
            )),
        }
        let cert = match &self.client_cert_file {
            Some(p) => read_text("dmp.relay.client_cert_file", p, errors),
            None => {
                errors.push(("dmp.relay.client_cert_file".into(), "required: the ORG_AUTH_CLI certificate".into()));
                None
            }
        };
        let key = match &self.client_key_file {
            Some(p) => read_text("dmp.relay.client_key_file", p, errors),
            None => {
                errors.push(("dmp.relay.client_key_file".into(), "required: the ORG_AUTH_CLI key".into()));
                None
            }
        };
        let ca = self.ca_file.as_ref().map(|p| read_text("dmp.relay.ca_file", p, errors));
        let (cert, key) = (cert?, key?);
        let ca = match ca {
            Some(None) => return None,
            Some(Some(ca)) => Some(ca),
            None => None,
        };
        vigie_dmp::DmpRelay::new(base, &cert, &key, ca.as_deref(), self.timeout_ms, self.deadline_ms)
            .map_err(|e| errors.push(("dmp.relay".into(), e.to_string())))
            .ok()
    }
}

impl DmpConfig {
    /// Builds the DMP side (`None` when disabled), or says what is wrong, one `(key, message)`
    /// per bad key.
    pub fn load(&self) -> Result<Option<Dmp>, Vec<(String, String)>> {
        if !self.enabled {
            return Ok(None);
        }
        let mut errors = Vec::new();
        let sealer = self.seal.load(&mut errors);
        let settings = self.vihf.settings().map_err(|e| errors.push(e)).ok();
        let relay = self.relay.load(&mut errors);
        match (sealer, settings) {
            (Some(sealer), Some(settings)) if errors.is_empty() => {
                let mut patient_oids: Vec<String> = vigie_dmp::INS_OIDS.iter().map(|o| o.to_string()).collect();
                if !patient_oids.contains(&settings.ins_oid) {
                    patient_oids.push(settings.ins_oid.clone());
                }
                Ok(Some(Dmp {
                    settings,
                    sealer,
                    relay,
                    services: self.relay.services.clone(),
                    max_body_bytes: self.relay.max_body_bytes,
                    max_answer_bytes: self.relay.max_answer_bytes,
                    patient_oids,
                }))
            }
            _ => Err(errors),
        }
    }
}

/// SHA-256 of a patient's INS for audit lines: whoever holds an INS finds its lines; the trail does
/// not spell it (low entropy: a pseudonym for log pipelines, not a secret).
pub fn ins_audit_hash(ins: &InsNir) -> String {
    format!("sha256:{}", crate::secrets::sha256_b64(ins.as_str().as_bytes()))
}

/// The DMP side of a validated configuration (`None` when `dmp.enabled` is false).
pub fn build(config: &crate::config::Config) -> anyhow::Result<Option<std::sync::Arc<Dmp>>> {
    match config.dmp.load() {
        Ok(d) => Ok(d.map(std::sync::Arc::new)),
        Err(errors) => {
            let lines: Vec<String> = errors.into_iter().map(|(k, m)| format!("`{k}`: {m}")).collect();
            anyhow::bail!("the DMP configuration: {}", lines.join("; "))
        }
    }
}

/// A purpose of use: a key of `dmp.vihf.purposes`, `normal` when not given.
pub fn parse_purpose<'a>(settings: &VihfSettings, p: Option<&'a str>) -> Result<&'a str, String> {
    let p = p.unwrap_or("normal");
    if settings.purposes.contains_key(p) {
        Ok(p)
    } else {
        let known: Vec<&str> = settings.purposes.keys().map(String::as_str).collect();
        Err(format!("purpose_of_use {p:?} is not one of {} (`dmp.vihf.purposes`)", known.join(", ")))
    }
}

/// Why no VIHF was issued.
#[derive(Debug)]
pub enum Refusal {
    /// The professional's token or session cannot be used.
    Token(String),
    /// The policy refuses (the description names the deciding policies).
    Policy(String),
    /// The DMP side is off, or something it needs is down (what, in the log only).
    Unavailable(String),
    /// A fault of Vigie (its detail in the log only).
    Server(String),
}

/// A store or directory failure: logged with its detail, told to the caller without it (the
/// store's or SQL's error text says nothing the caller can act on, and tells about internals).
fn unavailable(what: &str, e: impl std::fmt::Display) -> Refusal {
    tracing::error!(error = %e, "DMP: {what} failed");
    Refusal::Unavailable(format!("the {what} is unavailable at the moment; try again later"))
}

/// Through which door a VIHF left.
#[derive(Clone, Copy)]
pub enum Via {
    TokenExchange,
    Relay,
}

/// Issues a VIHF for the session behind a verified access token (of the client it names): the
/// session must be live, the policy (`access_dmp`) must allow it; audited (`vihf_issued`, reference
/// EX_AIR-070).
pub async fn vihf_for(
    state: &AppState,
    dmp: &Dmp,
    caller: &Caller,
    claims: &AccessTokenClaims,
    patient: &InsNir,
    purpose: &str,
    via: Via,
) -> Result<Vihf, Refusal> {
    let client_id = claims.client_id.as_str();
    // The authentication is the session's: a token outliving its session (logout, idle, card
    // declared lost) does not reach the DMP.
    let session = crate::session::by_sid(state, &claims.sid)
        .await
        .map_err(|e| unavailable("session store", e))?
        .ok_or_else(|| Refusal::Token("the professional's session has ended: they must log in again".into()))?;
    let auth = &session.authentication;
    if auth.identity_id != claims.sub {
        return Err(Refusal::Token("the token's subject is not the session's".into()));
    }
    let decision = crate::policy::decide_dmp(state, caller, auth, client_id).await;
    if !decision.allowed {
        let deciding =
            if decision.policies.is_empty() { "no policy permits it".to_owned() } else { decision.policies.join(", ") };
        let would: Vec<&str> = decision.step_up.iter().map(|m| m.as_str()).collect();
        let would =
            if would.is_empty() { String::new() } else { format!("; a login with {} would do", would.join(", ")) };
        let errors =
            if decision.errors.is_empty() { String::new() } else { format!(" ({})", decision.errors.join("; ")) };
        return Err(Refusal::Policy(format!(
            "the policy refuses this session the DMP (access_dmp: {deciding}; authenticated with {} (amr {})){would}{errors}",
            auth.mie.as_str(),
            // The factors too: a FIDO2 key without verified attestation (`swk`) is refused where
            // one with (`hwk`) would do.
            auth.amr().join(" ")
        )));
    }
    let identity = state
        .identities
        .get(state, &auth.identity_id)
        .await
        .map_err(|e| unavailable("directory", e))?
        .ok_or_else(|| Refusal::Token("the professional is no longer in the directory".into()))?;
    let professional = auth.professional.as_ref();
    let idnat = professional
        .map(|p| p.idnat.clone())
        .or_else(|| identity.idnat.as_ref().map(|i| i.to_string()))
        .ok_or_else(|| Refusal::Policy("the professional has no national identifier (idNat_PS)".into()))?;
    // Profession and specialty as a national provider asserted them, else the directory's métier.
    let profession = professional
        .and_then(|p| p.profession.as_deref())
        .or_else(|| crate::policy::profession_code_of(identity.metier.as_deref()));
    let specialty = professional.and_then(|p| p.specialty.as_deref());
    let request = vigie_dmp::VihfRequest {
        idnat: idnat.clone(),
        subject_name: format!("{} {}", identity.family_name, identity.given_name),
        roles: vigie_dmp::roles_for(profession, specialty),
        mie: auth.mie.as_str().to_owned(),
        authn_instant: auth.at,
        patient_ins: patient.as_str().to_owned(),
        purpose_of_use: purpose.to_owned(),
        now: crate::now(),
    };
    let vihf = dmp.sealer.issue(&dmp.settings, &request).map_err(|e| match e {
        // What the configuration or the directory does not say: no VIHF for this professional.
        vigie_dmp::VihfError::UnknownMie(_) | vigie_dmp::VihfError::NoRole => {
            Refusal::Policy(format!("no VIHF for this session: {e}"))
        }
        e => {
            tracing::error!(error = %e, "DMP: the VIHF could not be made");
            Refusal::Server("the VIHF could not be made; the incident is logged".into())
        }
    })?;
    metrics::counter!("vigie_vihf_issued_total", "client" => client_id.to_owned()).increment(1);
    state.audit(AuditEvent {
        kind: Some(AuditKind::VihfIssued),
        outcome: Some(Outcome::Success),
        subject: Some(auth.identity_id.clone()),
        client_id: Some(client_id.to_owned()),
        method: Some(auth.mie.as_str().into()),
        acr: Some(auth.level.acr().into()),
        sid: Some(session.sid.clone()),
        ip: Some(caller.ip.clone()),
        request_id: Some(caller.request_id.clone()),
        object: Some(vihf.id.clone()),
        reason: Some(format!(
            "idnat {idnat}; patient INS {}; purpose {purpose}; valid until {}; via {}",
            ins_audit_hash(patient),
            vihf.not_on_or_after,
            match via {
                Via::TokenExchange => "token exchange",
                Via::Relay => "relay",
            }
        )),
        ..Default::default()
    });
    Ok(vihf)
}

/// RFC 6750 §3: a bearer error with its `WWW-Authenticate` challenge, as problem details.
fn bearer_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    with_bearer_challenge(problem(status, "Invalid access token", description), error, description)
}

/// The header naming the patient of a relayed call.
pub const PATIENT_HEADER: &str = "x-vigie-patient-ins";
/// The header naming the purpose of use of a relayed call (default `normal`).
pub const PURPOSE_HEADER: &str = "x-vigie-purpose-of-use";

/// `content-type` parameter `name` (lower case; RFC 9110 §5.6.6), unquoted: read with the
/// parser [`vigie_dmp::insert_security`] uses, so the action audited is the one relayed.
fn media_param(content_type: &str, name: &str) -> Option<String> {
    let (_, params) = vigie_dmp::parse_media_type(content_type).ok()?;
    params.into_iter().find_map(|(k, v)| (k == name).then_some(v))
}

/// The text of the first element named `local` (any prefix) in the first `limit` bytes: the
/// WS-Addressing `Action` of a request, the `Reason/Text` of a fault. For audit lines only.
fn element_text(body: &[u8], local: &str, limit: usize) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(limit)]);
    let mut rest: &str = &text;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
        let name = &rest[..end];
        if name.rsplit(':').next() == Some(local) && !name.starts_with('/') {
            let content = &rest[rest.find('>')? + 1..];
            let value = &content[..content.find('<')?];
            let value = value.trim().replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
            return Some(value.chars().take(200).collect());
        }
    }
    None
}

/// `POST /dmp/relay/{service}`: the DPI's SOAP 1.2 call (plain or MTOM) with the professional's
/// access token and the patient's INS in `X-Vigie-Patient-INS` → a fresh VIHF in `wsse:Security`
/// → the DMP over mutual TLS → its answer streamed back. Audited (`dmp_call`, EX_AIR-090).
pub async fn relay(req: HttpRequest, state: State, path: web::Path<String>, mut payload: web::Payload) -> HttpResponse {
    let caller = Caller::of(&req, &state);
    let service = path.into_inner();
    let Some(dmp) = state.dmp.clone() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "DMP not configured",
            "the DMP is not enabled on this gateway",
        );
    };
    if !dmp.services.contains(&service) {
        return problem(StatusCode::NOT_FOUND, "Unknown DMP service", &format!("{service:?} is not a relayed service"));
    }
    // RFC 6750 §2.1: the bearer token in the Authorization header.
    let Some(token) = bearer_token(&req) else { return bearer_missing() };
    let claims = match verify_access_token(&state, &token).await {
        Ok(c) => c,
        Err(e) => return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", &e),
    };
    let Some(client) = state.client(&claims.client_id) else {
        return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", "the token's client is no longer registered");
    };
    if !client.config.dmp {
        return bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token was issued to a client not allowed to reach the DMP (`dmp = true`)",
        );
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/soap+xml" && essence != "multipart/related" {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Not a SOAP 1.2 message",
            "expected application/soap+xml, or multipart/related (MTOM) with the envelope as root part",
        );
    }
    let header_str = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let patient = match header_str(PATIENT_HEADER).map(InsNir::parse) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return problem(StatusCode::BAD_REQUEST, "Bad patient INS", &format!("X-Vigie-Patient-INS: {e}"));
        }
        None => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Patient INS missing",
                "the X-Vigie-Patient-INS header (the patient's INS-NIR, 15 digits) is required: the VIHF names the patient",
            );
        }
    };
    let purpose = match parse_purpose(&dmp.settings, header_str(PURPOSE_HEADER)) {
        Ok(p) => p,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "Bad purpose of use", &e),
    };
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(c) if body.len() + c.len() <= dmp.max_body_bytes => body.extend_from_slice(&c),
            Ok(_) => {
                return problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "SOAP message too large",
                    &format!("at most {} bytes are relayed (`dmp.relay.max_body_bytes`)", dmp.max_body_bytes),
                );
            }
            Err(e) => return problem(StatusCode::BAD_REQUEST, "Unreadable body", &e.to_string()),
        }
    }
    // One reading of the call: the patients it names, where the VIHF goes and its WS-Addressing
    // action all come from the same parse, so that what is checked is what is relayed.
    let oids: Vec<&str> = dmp.patient_oids.iter().map(String::as_str).collect();
    let soap = match vigie_dmp::SoapCall::read(&body, &content_type, &oids) {
        Ok(s) => s,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "Not a SOAP 1.2 envelope Vigie can secure", &e.to_string()),
    };
    // RFC 3902 §6.5: the action is the content type's `action` parameter, else the envelope's.
    let typed = media_param(&content_type, "action");
    let action = typed.clone().or_else(|| soap.action().map(str::to_owned));
    // What the relay cannot send is the caller's fault: refused here, before any VIHF, and never
    // counted against the DMP.
    let outgoing_type = match vigie_dmp::with_action(&content_type, action.as_deref()) {
        Ok(t) => t,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "Bad SOAP action", &e.to_string()),
    };
    // Two actions that differ would let what is audited differ from what the DMP runs.
    if let (Some(typed), Some(addressed)) = (typed.as_deref(), soap.action())
        && typed != addressed
    {
        return problem(
            StatusCode::BAD_REQUEST,
            "Bad SOAP action",
            "the content type's action and the envelope's wsa:Action differ: send the same action in both",
        );
    }
    // The patients the call names in its Body must be the one its VIHF names (the header): a
    // mismatch would trace one patient's file and ask the DMP for another's. Checked before any
    // VIHF is made: a call that cannot be relayed gets none.
    if let Some(other) = soap.patients().iter().find(|n| !n.eq_ignore_ascii_case(patient.as_str())) {
        let other_hash = InsNir::parse(other).map_or_else(|_| "not an INS-NIR".into(), |o| ins_audit_hash(&o));
        audit_refused(
            &state,
            &caller,
            &claims.client_id,
            &format!(
                "relay to {service}: the call names patient {other_hash}, X-Vigie-Patient-INS {}",
                ins_audit_hash(&patient)
            ),
        );
        return problem(
            StatusCode::BAD_REQUEST,
            "Patient mismatch",
            &format!(
                "the call names patient {other:?} in its Body, but X-Vigie-Patient-INS is {:?}: a VIHF \
                 names one patient, and the call must ask for that patient",
                patient.as_str()
            ),
        );
    }
    let Some(relay) = dmp.relay.as_ref() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "DMP relay not configured",
            "the DMP address is not configured on this gateway (`dmp.relay.base_url`)",
        );
    };
    let vihf = match vihf_for(&state, &dmp, &caller, &claims, &patient, purpose, Via::Relay).await {
        Ok(v) => v,
        Err(Refusal::Token(m)) => return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", &m),
        Err(Refusal::Policy(m)) => {
            audit_refused(&state, &caller, &claims.client_id, &m);
            return problem(StatusCode::FORBIDDEN, "DMP access refused by policy", &m);
        }
        Err(Refusal::Unavailable(m)) => return problem(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", &m),
        Err(Refusal::Server(m)) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "VIHF not issued", &m),
    };
    let secured = soap.secure(&vihf.xml);
    drop(soap);
    drop(body);
    let started = Instant::now();
    let call = Call {
        state: &state,
        caller: &caller,
        subject: &claims.sub,
        client_id: &claims.client_id,
        service: &service,
        action,
        vihf: &vihf,
    };
    // Degraded mode: the DMP's breaker is open; answer at once instead of waiting on it.
    if !state.health.available(crate::health::DMP) {
        let m = "the DMP is unreachable at the moment (its circuit breaker is open after repeated failures); \
                 try again later";
        call.audit(Outcome::Failure, m, started);
        return problem(StatusCode::SERVICE_UNAVAILABLE, "DMP unavailable", m);
    }
    let answer = match relay.send(&service, &outgoing_type, None, secured).await {
        Ok(r) => r,
        Err(e) => return call.failed(&e, started),
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let answer_type =
        answer.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(String::from);
    let mut out = HttpResponse::build(status);
    if let Some(t) = &answer_type {
        out.insert_header((header::CONTENT_TYPE, t.as_str()));
    }
    if !status.is_success() {
        // A SOAP fault, read whole (capped) to say in the audit trail what the DMP refused.
        let bytes = match vigie_dmp::read_whole(answer, dmp.max_answer_bytes).await {
            Ok(b) => b,
            Err(e) => return call.failed(&e, started),
        };
        let fault = element_text(&bytes, "Fault", bytes.len()).is_some();
        // A fault is the DMP answering; a 5xx without one (a front end's error page) is the DMP
        // failing, and counts against its breaker.
        let outcome = if status.is_server_error() && !fault {
            Err(format!("HTTP {} without a SOAP fault", status.as_u16()))
        } else {
            Ok(started.elapsed())
        };
        state.health.record(crate::health::DMP, outcome);
        let reason = element_text(&bytes, "Text", bytes.len()).unwrap_or_default();
        call.audit(Outcome::Failure, &format!("HTTP {}; {reason}", status.as_u16()), started);
        return out.body(bytes);
    }
    state.health.record(crate::health::DMP, Ok(started.elapsed()));
    if answer.content_length().is_some_and(|n| n > dmp.max_answer_bytes as u64) {
        return call.failed(&vigie_dmp::RelayError::TooLarge(dmp.max_answer_bytes), started);
    }
    call.audit(Outcome::Success, &format!("HTTP {}", status.as_u16()), started);
    // Streamed as it comes: MTOM answers (documents) are not held in memory. Past the cap, or
    // the deadline, the stream ends with an error: the DPI sees a cut answer, never a whole one.
    let limit = dmp.max_answer_bytes;
    let stream = futures_util::stream::unfold(Some((answer, 0usize)), move |state| async move {
        let (mut r, sent) = state?;
        match r.chunk().await {
            Ok(Some(b)) if sent + b.len() <= limit => {
                let sent = sent + b.len();
                Some((Ok(b), Some((r, sent))))
            }
            Ok(Some(_)) => {
                tracing::warn!(limit, "DMP answer cut: larger than dmp.relay.max_answer_bytes");
                Some((Err(actix_web::error::ErrorBadGateway("the DMP's answer is too large")), None))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %vigie_core::error_chain(&e), "DMP answer cut");
                Some((Err(actix_web::error::ErrorBadGateway("the DMP's answer was cut")), None))
            }
        }
    });
    out.streaming(stream)
}

/// One relayed call, for its audit line.
struct Call<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    subject: &'a str,
    client_id: &'a str,
    service: &'a str,
    action: Option<String>,
    vihf: &'a Vihf,
}

impl Call<'_> {
    /// A call that got no usable answer: audited with the reason, counted against the DMP's
    /// breaker only when the DMP failed, told to the caller without the transport's detail.
    fn failed(&self, e: &vigie_dmp::RelayError, started: Instant) -> HttpResponse {
        use vigie_dmp::RelayError;
        let detail = e.to_string();
        if e.is_dmp_failure() {
            self.state.health.record(crate::health::DMP, Err(detail.clone()));
        }
        self.audit(Outcome::Failure, &detail, started);
        match e {
            RelayError::Timeout(_) => problem(
                StatusCode::GATEWAY_TIMEOUT,
                "DMP timeout",
                "the DMP did not answer in the time allowed (`dmp.relay.deadline_ms`); try again later",
            ),
            RelayError::Unreachable(_) => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "DMP unavailable",
                "the DMP is unreachable at the moment; try again later",
            ),
            RelayError::TooLarge(n) => problem(
                StatusCode::BAD_GATEWAY,
                "DMP answer too large",
                &format!("the DMP's answer is larger than the {n} bytes Vigie relays (`dmp.relay.max_answer_bytes`)"),
            ),
            RelayError::Service(_) | RelayError::Action(_) | RelayError::Config(_) => {
                problem(StatusCode::BAD_REQUEST, "Call not relayed", &detail)
            }
        }
    }

    fn audit(&self, outcome: Outcome, what: &str, started: Instant) {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let result = if outcome == Outcome::Success { "success" } else { "failure" };
        metrics::counter!("vigie_dmp_calls_total", "service" => self.service.to_owned(), "outcome" => result)
            .increment(1);
        self.state.audit(AuditEvent {
            kind: Some(AuditKind::DmpCall),
            outcome: Some(outcome),
            subject: Some(self.subject.to_owned()),
            client_id: Some(self.client_id.to_owned()),
            method: Some(self.service.to_owned()),
            ip: Some(self.caller.ip.clone()),
            request_id: Some(self.caller.request_id.clone()),
            object: Some(self.vihf.id.clone()),
            reason: Some(format!("action {}; {what}; {ms:.1} ms", self.action.as_deref().unwrap_or("(none)"))),
            ..Default::default()
        });
    }
}

/// A DMP access refused by policy, audited beside the decision line.
pub fn audit_refused(state: &AppState, caller: &Caller, client_id: &str, reason: &str) {
    state.audit(AuditEvent {
        kind: Some(AuditKind::Refused),
        outcome: Some(Outcome::Failure),
        client_id: Some(client_id.to_owned()),
        method: Some("access_dmp".into()),
        ip: Some(caller.ip.clone()),
        request_id: Some(caller.request_id.clone()),
        reason: Some(reason.to_owned()),
        ..Default::default()
    });
}

/// The relay's route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/dmp/relay/{service}", web::post().to(relay));
}

/// The demo's DMP certificates, made once: a test CA for organisations, the establishment's seal
/// (ORG_SIGN-like, RSA-2048: VIHFs are RSA-signed) and its TLS client certificate
/// (ORG_AUTH_CLI-like), both naming the structure in `OU` as IGC-Santé does (reference §1). The CA
/// and the TLS certificate have P-256 keys: every fresh demo (and test gateway) makes them, and
/// RSA key generation is the slow part.
pub fn ensure_demo_pki(dir: &Path, organisation: &str, structure_id: &str) -> anyhow::Result<()> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    let files = ["dmp-org-ca.pem", "dmp-seal.pem", "dmp-seal.key", "dmp-auth.pem", "dmp-auth.key"];
    if files.iter().all(|f| dir.join(f).is_file()) {
        return Ok(());
    }
    let rsa = || KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048);
    let p256 = || KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256);
    let now = time::OffsetDateTime::now_utc();
    // `CertificateParams::new` starts with a CN: a fresh name keeps the order written here
    // (RFC 2253 then reads CN first, C last, like IGC-Santé's certificates).
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CountryName, "FR");
    ca.distinguished_name.push(DnType::OrganizationName, "Vigie demo (not for production)");
    ca.distinguished_name.push(DnType::CommonName, "Vigie demo AC ORGANISATIONS");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(3 * 365);
    let ca_key = p256()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);
    let leaf = |cn: &str, usages: Vec<KeyUsagePurpose>, eku: Vec<ExtendedKeyUsagePurpose>, key: KeyPair| {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CountryName, "FR");
        p.distinguished_name.push(DnType::OrganizationName, organisation);
        p.distinguished_name.push(DnType::OrganizationalUnitName, structure_id);
        p.distinguished_name.push(DnType::CommonName, cn);
        p.key_usages = usages;
        p.extended_key_usages = eku;
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(2 * 365);
        let cert = p.signed_by(&key, &issuer)?;
        Ok::<_, rcgen::Error>((cert.pem(), key.serialize_pem()))
    };
    let (seal, seal_key) = leaf(
        &format!("{organisation} - CACHET VIHF"),
        vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment],
        vec![],
        rsa()?,
    )?;
    let (auth, auth_key) = leaf(
        &format!("{organisation} - AUTH CLI DMP"),
        vec![KeyUsagePurpose::DigitalSignature],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
        p256()?,
    )?;
    std::fs::write(dir.join("dmp-org-ca.pem"), ca_cert.pem())?;
    std::fs::write(dir.join("dmp-seal.pem"), format!("{seal}{}", ca_cert.pem()))?;
    crate::demo::write_secret(&dir.join("dmp-seal.key"), &seal_key)?;
    std::fs::write(dir.join("dmp-auth.pem"), format!("{auth}{}", ca_cert.pem()))?;
    crate::demo::write_secret(&dir.join("dmp-auth.key"), &auth_key)?;
    Ok(())
}

/// The demo's `[dmp]`: the demo seal, VIHFs naming the demo establishment, no DMP address (set
/// `VIGIE_DMP__RELAY__BASE_URL` to a DMP stand-in; the demo CA is trusted for its certificate).
pub fn demo_config(dir: &Path, structure_id: &str) -> DmpConfig {
    DmpConfig {
        enabled: true,
        seal: SealConfig {
            cert_file: Some(dir.join("dmp-seal.pem")),
            key_file: Some(dir.join("dmp-seal.key")),
            ..Default::default()
        },
        // Not homologated: the LPS ids say so, for a stand-in to read.
        vihf: VihfSection::of(&[
            ("structure_id", structure_id),
            ("lps_id", "VIGIE-DEMO"),
            ("lps_homologation", "DEMO-NON-HOMOLOGUE"),
            // The DMP's test platforms know patients by their test INS (reference §1).
            ("ins_oid", "1.2.250.1.213.1.4.10"),
        ]),
        relay: RelayConfig {
            client_cert_file: Some(dir.join("dmp-auth.pem")),
            client_key_file: Some(dir.join("dmp-auth.key")),
            ca_file: Some(dir.join("ca.pem")),
            ..Default::default()
        },
    }
}

/// What `demo.json` says of the DMP.
pub fn demo_json(config: &crate::config::Config, dir: &Path) -> anyhow::Result<serde_json::Value> {
    let issuer = &config.issuer;
    Ok(serde_json::json!({
        "seal_ca_pem": std::fs::read_to_string(dir.join("dmp-org-ca.pem"))?,
        "seal_cert_file": dir.join("dmp-seal.pem"),
        "org_auth_cli": { "cert_file": dir.join("dmp-auth.pem"), "key_file": dir.join("dmp-auth.key"),
                          "ca_file": dir.join("dmp-org-ca.pem") },
        "token_exchange": {
            "token_endpoint": format!("{issuer}/token"),
            "client_id": "demo-dpi",
            "grant_type": crate::oidc::token::exchange::TOKEN_EXCHANGE,
            "subject_token_type": crate::oidc::token::exchange::ACCESS_TOKEN_TYPE,
            "requested_token_type": crate::oidc::token::exchange::SAML2_TOKEN_TYPE,
            "example_patient_ins": DEMO_PATIENT_INS,
        },
        "relay_url": format!("{issuer}/dmp/relay/{{service}}"),
        "relay_configured": config.dmp.relay.base_url.is_some(),
        "patient_header": "X-Vigie-Patient-INS",
    }))
}

/// A valid INS-NIR of the test range, for trying the demo (key 97).
pub const DEMO_PATIENT_INS: &str = "207058575627097";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn purposes_default_to_normal_and_refuse_others() {
        let settings = VihfSettings::default();
        assert_eq!(parse_purpose(&settings, None), Ok("normal"));
        assert_eq!(parse_purpose(&settings, Some("bris_de_glace")), Ok("bris_de_glace"));
        assert!(parse_purpose(&settings, Some("curiosity")).unwrap_err().contains("dmp.vihf.purposes"));
    }

    #[test]
    fn vihf_settings_take_numbers_where_strings_are_expected_and_name_bad_keys() {
        let mut d = figment::value::Dict::new();
        d.insert("structure_id".into(), figment::value::Value::from(1_760_000_018u64));
        d.insert("lps_id".into(), figment::value::Value::from(42u64));
        d.insert("lps_homologation".into(), figment::value::Value::from("H".to_owned()));
        d.insert("validity_secs".into(), figment::value::Value::from(30u64));
        let s = VihfSection(figment::value::Value::from(d.clone())).settings().expect("settings");
        assert_eq!((s.structure_id.as_str(), s.lps_id.as_str(), s.validity_secs), ("1760000018", "42", 30));
        d.insert("validity_secs".into(), figment::value::Value::from("soon".to_owned()));
        let (key, _) = VihfSection(figment::value::Value::from(d.clone())).settings().unwrap_err();
        assert_eq!(key, "dmp.vihf.validity_secs");
        d.remove("validity_secs");
        d.insert("flavour".into(), figment::value::Value::from("x".to_owned()));
        assert_eq!(VihfSection(figment::value::Value::from(d)).settings().unwrap_err().0, "dmp.vihf.flavour");
        let (key, m) = VihfSection::of(&[("lps_id", "L"), ("lps_homologation", "H")]).settings().unwrap_err();
        assert_eq!(key, "dmp.vihf.structure_id", "{m}");
    }

    #[test]
    fn service_names_cannot_leave_the_base_url() {
        assert!(vigie_dmp::is_service_name("DocumentRegistry_Service"));
        for bad in ["", "..", "a/b", "a?b", "%2e%2e", "a b"] {
            assert!(!vigie_dmp::is_service_name(bad), "{bad}");
        }
    }

    #[test]
    fn audit_helpers_read_the_action_and_the_fault_reason() {
        let env = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header><wsa:Action s:mustUnderstand="true">urn:ihe:iti:2007:RegistryStoredQuery</wsa:Action></s:Header></s:Envelope>"#;
        assert_eq!(element_text(env, "Action", 1 << 16).as_deref(), Some("urn:ihe:iti:2007:RegistryStoredQuery"));
        let fault = br#"<env:Fault><env:Reason><env:Text xml:lang="en">VIHF replayed &amp; refused</env:Text></env:Reason></env:Fault>"#;
        assert_eq!(element_text(fault, "Text", 1 << 16).as_deref(), Some("VIHF replayed & refused"));
        assert_eq!(
            media_param(r#"application/soap+xml; charset=utf-8; action="urn:x""#, "action").as_deref(),
            Some("urn:x")
        );
    }

    #[test]
    fn store_failures_reach_the_caller_without_their_detail() {
        let Refusal::Unavailable(m) =
            unavailable("session store", "redis://10.1.2.3:6379: NOAUTH Authentication required")
        else {
            panic!("a store failure is Unavailable");
        };
        assert_eq!(m, "the session store is unavailable at the moment; try again later");
    }

    #[test]
    fn secrets_are_not_shown() {
        let s = SealConfig { pkcs12_password: Some(Secret("hunter2".into())), ..Default::default() };
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    proptest! {
        #[test]
        fn media_params_never_panic_and_read_back_what_was_written(s in "\\PC{0,200}", v in "[a-z:0-9.]{1,40}") {
            let _ = media_param(&s, "action");
            let ct = format!("application/soap+xml; charset=utf-8; action=\"{v}\"");
            prop_assert_eq!(media_param(&ct, "action"), Some(v));
        }

        #[test]
        fn element_text_never_panics(s in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = element_text(&s, "Action", 200);
        }
    }
}
