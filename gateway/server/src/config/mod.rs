//! The one typed configuration: a TOML file with `VIGIE_…` environment overrides
//! (`VIGIE_STORE__URL` sets `store.url`), validated at start with one line per bad key.
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::policy::Cidr;

/// The whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The issuer identifier (OIDC Discovery §3): an `https` URL with no query or fragment.
    pub issuer: String,
    /// Sponsorship of a colleague without a usable card (`[sponsorship]`, see docs/sponsorship.md).
    #[serde(default)]
    pub sponsorship: crate::sponsorship::config::SponsorshipConfig,
    /// Outgoing e-mail through SMTP (`[mail]`): the sponsorship notices.
    #[serde(default)]
    pub mail: vigie_mail::MailConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    pub directory: DirectoryConfig,
    pub keys: KeysConfig,
    #[serde(default)]
    pub session: SessionConfig,
    #[serde(default)]
    pub tokens: TokenConfig,
    #[serde(default)]
    pub login: LoginConfig,
    #[serde(default)]
    pub cards: CardsConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub webauthn: WebauthnConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub demo: DemoConfig,
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Login through Pro Santé Connect (`[psc]`, see docs/psc.md).
    #[serde(default)]
    pub psc: crate::psc::PscConfig,
    /// The DMP in AIR simplifié: VIHF issuance and the SOAP relay (`[dmp]`, see docs/dmp.md).
    #[serde(default)]
    pub dmp: crate::dmp::DmpConfig,
    /// Circuit breakers of the upstreams and degraded mode (`[health]`, see docs/degraded-mode.md).
    #[serde(default)]
    pub health: crate::health::HealthConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTPS listener.
    pub listen: SocketAddr,
    /// PEM certificate chain of the HTTPS listener.
    pub tls_cert: PathBuf,
    /// PEM private key of the HTTPS listener.
    pub tls_key: PathBuf,
    /// Optional plain-HTTP listener for the TLS-terminating proxies: it serves peers in
    /// `trusted_proxies` only (anyone else gets 403).
    pub plain_http_listen: Option<SocketAddr>,
    /// Proxies (addresses or CIDRs) whose `X-Forwarded-For` is believed: the client is the
    /// rightmost address in it that is not one of them. No other forwarded header is read.
    pub trusted_proxies: Vec<Cidr>,
    /// Optional plain-HTTP listener for operations (`/healthz`, `/readyz` with the details of a
    /// failed check, `/metrics`), e.g. `127.0.0.1:9090`. When set, the main listeners no longer
    /// serve `/readyz` and `/metrics`.
    pub ops_listen: Option<SocketAddr>,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Worker threads (0: one per core).
    pub workers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            tls_cert: PathBuf::from("/etc/vigie/tls/tls.crt"),
            tls_key: PathBuf::from("/etc/vigie/tls/tls.key"),
            plain_http_listen: None,
            trusted_proxies: Vec::new(),
            ops_listen: None,
            max_body_bytes: 64 * 1024,
            workers: 0,
        }
    }
}

impl ServerConfig {
    /// Whether `ip` is one of `trusted_proxies`.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(ip))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// In-process: one node only.
    #[default]
    Embedded,
    /// Redis, shared by replicas.
    Redis,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// `redis://[user:password@]host:port/db` or `rediss://…`.
    pub url: Option<String>,
    pub key_prefix: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { kind: StoreKind::Embedded, url: None, key_prefix: "vigie:".into() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `sqlite:///var/lib/vigie/directory.db`.
    pub url: String,
    /// How long identity claims read for tokens and userinfo are reused (seconds; 0: never).
    /// Logins always read the account itself.
    #[serde(default = "default_identity_cache_secs")]
    pub identity_cache_secs: u64,
}

fn default_identity_cache_secs() -> u64 {
    30
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// The signing key set (JSON, written by `vigie keys generate` / `vigie keys rotate`),
    /// shared by replicas as a mounted secret and re-read when it changes.
    pub file: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// An SSO session unused for this long ends (seconds).
    pub idle_timeout_secs: u64,
    /// An SSO session ends this long after login whatever its use (seconds).
    pub absolute_timeout_secs: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        // A shift is 12 hours; a workstation left alone for 30 minutes is someone else's.
        Self { idle_timeout_secs: 30 * 60, absolute_timeout_secs: 12 * 3600 }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    pub code_ttl_secs: u64,
    pub access_token_ttl_secs: u64,
    pub id_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// How long a login page stays valid (seconds).
    pub login_flow_ttl_secs: u64,
    /// Client authentications without a success (token, introspection, revocation endpoints)
    /// from one address, or for one client from one address, before they are refused for
    /// `client_auth_lockout_secs`.
    pub client_auth_max_failures: u64,
    /// The window in which client authentication failures are counted, and the lockout.
    pub client_auth_lockout_secs: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            code_ttl_secs: 60,
            access_token_ttl_secs: 300,
            id_token_ttl_secs: 300,
            refresh_token_ttl_secs: 12 * 3600,
            login_flow_ttl_secs: 15 * 60,
            client_auth_max_failures: 20,
            client_auth_lockout_secs: 60,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed logins on one account before it is locked for `lockout_secs`.
    pub max_failures_per_account: u64,
    pub lockout_secs: u64,
    /// Login attempts from one IP per `ip_window_secs` before 429.
    pub max_attempts_per_ip: u64,
    pub ip_window_secs: u64,
    /// Login flows (authorization requests that lead to the login page) one IP may open per
    /// `ip_window_secs`; beyond, the client gets `temporarily_unavailable`. Each flow is kept in
    /// the store for `tokens.login_flow_ttl_secs`, so this bounds what one address can store.
    pub max_flows_per_ip: u64,
    /// The `amr` values (RFC 8176) published for a login method, by MIE label (`cps`, `cpe`,
    /// `fido2`, `password_totp`, …), replacing those derived from the verified factors
    /// (`Authentication::amr`: a card gives `sc`, `pin`, `mfa`). For relying parties that
    /// expect other values, e.g. `cps = ["sc", "pin", "mfa", "hwk"]`.
    pub amr: std::collections::BTreeMap<String, Vec<String>>,
    /// `acr` values of other schemes a relying party may send in `acr_values` (e.g. Pro Santé
    /// Connect's `eidas1`), each mapped to the Vigie `acr` that meets it: the login must reach
    /// that level, and the ID token answers the value asked for. Over the built-in
    /// `eidas1 = "urn:vigie:loa:2fa-phr"` (`crate::oidc::authorize::BUILT_IN_ACR_MAP`); a
    /// client's own `acr_values_map` wins over this one.
    pub acr_values_map: AcrValuesMap,
}

/// Other schemes' `acr` values → the Vigie `acr` (`urn:vigie:loa:…`) that meets each.
pub type AcrValuesMap = std::collections::BTreeMap<String, String>;

/// What is wrong with an `acr_values_map`, as (key under the map, message).
pub fn acr_values_map_problems(map: &AcrValuesMap) -> Vec<(String, String)> {
    let known: Vec<&str> = vigie_core::AssuranceLevel::ALL.iter().map(|l| l.acr()).collect();
    let mut out = Vec::new();
    for (value, acr) in map {
        // OIDC Core §3.1.2.1: acr_values is a space-separated list, so a value has no space.
        if value.is_empty() || value.len() > 256 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            out.push((value.clone(), "expected an acr value: 1 to 256 printable ASCII characters, no space".into()));
        } else if known.contains(&value.as_str()) {
            out.push((value.clone(), "is Vigie's own acr, which needs no mapping".into()));
        }
        if vigie_core::AssuranceLevel::from_acr(acr).is_none() {
            out.push((value.clone(), format!("unknown acr {acr:?}; expected one of {}", known.join(", "))));
        }
    }
    out
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            lockout_secs: 15 * 60,
            max_attempts_per_ip: 30,
            ip_window_secs: 60,
            // Generous: a terminal server or a NAT puts a whole ward behind one address.
            max_flows_per_ip: 300,
            amr: Default::default(),
            acr_values_map: Default::default(),
        }
    }
}

impl LoginConfig {
    /// The `amr` claim of an authentication: configured for its MIE, or derived from its factors.
    pub fn amr_for(&self, auth: &vigie_core::Authentication) -> Vec<String> {
        match self.amr.get(auth.mie.as_str()) {
            Some(values) => values.clone(),
            None => auth.amr().into_iter().map(String::from).collect(),
        }
    }
}

/// FIDO2 / WebAuthn: the relying party, key enrolment and its safeguards.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnConfig {
    /// RP ID (WebAuthn §5.1.2): a registrable domain suffix of the origin's host. Default: the
    /// issuer's host. Keys registered under one RP ID do not work under another.
    pub rp_id: Option<String>,
    /// The origin browsers run the ceremonies from. Default: the issuer's origin.
    pub origin: Option<String>,
    /// The name shown by the browser when registering a key.
    pub rp_name: String,
    /// What a key must prove of its model at registration (WebAuthn L2 §6.5, §7.1 steps 19–21).
    pub attestation: AttestationMode,
    /// PEM files of attestation CAs (a vendor's attestation root): a key whose attestation
    /// chains to one of them is a hardware key of a model they vouch for.
    pub attestation_ca_files: Vec<PathBuf>,
    /// The FIDO Metadata Service BLOB (FIDO MDS3 §3), downloaded from
    /// `https://mds3.fidoalliance.org/` by the operator (refresh it monthly): the attestation
    /// roots of each certified model, by AAGUID; models reported compromised are left out.
    pub mds_blob_file: Option<PathBuf>,
    /// The root the BLOB's signing chain must end at (FIDO's: GlobalSign Root CA - R3).
    pub mds_root_ca_file: Option<PathBuf>,
    /// AAGUIDs (WebAuthn §6.5.1) of the authenticator models allowed to register; empty = any
    /// model the attestation roots vouch for. Read from the verified attestation only, so it
    /// needs `attestation = "required"`.
    pub aaguid_allow_list: Vec<String>,
    /// Lifetime of a challenge (registration or login).
    pub ceremony_ttl_secs: u64,
    /// A signed-in user may register a key only this soon after a two-factor login.
    pub enrolment_max_auth_age_secs: u64,
    /// Lifetime of an enrolment code issued by HR.
    pub enrolment_code_ttl_secs: u64,
}

impl Default for WebauthnConfig {
    fn default() -> Self {
        Self {
            rp_id: None,
            origin: None,
            rp_name: "Vigie".into(),
            attestation: AttestationMode::Required,
            attestation_ca_files: Vec::new(),
            mds_blob_file: None,
            mds_root_ca_file: None,
            aaguid_allow_list: Vec::new(),
            ceremony_ttl_secs: 300,
            enrolment_max_auth_age_secs: 600,
            enrolment_code_ttl_secs: 72 * 3600,
        }
    }
}

/// `webauthn.attestation`: whether a key must prove its model (WebAuthn L2 §5.4.7, §6.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestationMode {
    /// Direct attestation, verified to `attestation_ca_files` or the MDS BLOB's roots: keys
    /// without it (software authenticators, `none` or self attestation) are refused.
    #[default]
    Required,
    /// No attestation asked for: any authenticator registers, and none counts as a hardware
    /// key (its logins carry `swk`, never `hwk`).
    None,
}

impl WebauthnConfig {
    /// The RP ID and origin in force, from the issuer unless configured.
    pub fn relying_party(&self, issuer: &str) -> Result<(String, url::Url), String> {
        let origin =
            url::Url::parse(self.origin.as_deref().unwrap_or(issuer)).map_err(|e| format!("not a URL: {e}"))?;
        let host = origin.host_str().ok_or("the origin has no host")?.to_owned();
        let rp_id = self.rp_id.clone().unwrap_or(host.clone());
        // WebAuthn §5.1.2: the RP ID is the origin's effective domain or a registrable suffix of it.
        if !(host == rp_id || host.ends_with(&format!(".{rp_id}"))) {
            return Err(format!("the RP ID {rp_id:?} is not the origin host {host:?} or a suffix of it"));
        }
        Ok((rp_id, origin))
    }
}

/// The MIE labels `login.amr` may name.
pub const MIE_LABELS: [&str; 7] = ["cps", "cpe", "fido2", "cps_via_psc", "ecps", "password_totp", "sponsorship"];

/// The policy engine (Cedar) and the context it is given.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Directory of the Cedar policy set (`*.cedar`, and `schema/*.cedarschema` to replace the
    /// built-in schema). Unset: the default set built into Vigie. A changed set is reloaded on
    /// SIGHUP and when a file changes (checked every `reload_poll_secs`), validated first.
    pub dir: Option<PathBuf>,
    /// Seconds between two checks of `dir` for changed files (0: only on SIGHUP).
    pub reload_poll_secs: u64,
    /// Network zones by name, each a list of CIDRs (`10.0.0.0/8`, `fd00::/8`); the first zone
    /// holding the caller's address is the `network_zone` of the policy context, `external`
    /// when none does.
    pub zones: std::collections::BTreeMap<String, Vec<String>>,
    /// End of the establishment's transition period (`YYYY-MM-DD`, exclusive) during which
    /// password + TOTP is still allowed on sensitive services (RIE: MIE de transition).
    pub password_totp_transition_until: Option<String>,
    /// Offset of local time from UTC, in minutes, for the `hour` of the policy context.
    pub utc_offset_minutes: i32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let internal = ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];
        Self {
            dir: None,
            reload_poll_secs: 5,
            zones: [("internal".to_owned(), internal.map(String::from).to_vec())].into_iter().collect(),
            password_totp_transition_until: None,
            utc_offset_minutes: 60,
        }
    }
}

/// Card login (CPS, CPE): TLS client certificates validated against IGC-Santé.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CardsConfig {
    /// Ask browsers for a card certificate (optional: people without a card still connect) and
    /// offer card login. Default: `false`.
    pub enabled: bool,
    /// Header in which an ingress that terminates TLS passes the client certificate
    /// (URL-encoded PEM; ingress-nginx: `ssl-client-cert`). Read only from `ingress_header_from`;
    /// from anyone else it is refused and audited. Empty: never read.
    pub ingress_header: String,
    /// The ingresses (addresses or CIDRs) that terminate TLS for card login and pass the card in
    /// `ingress_header`. Their own list, not `server.trusted_proxies`: a proxy trusted to name the
    /// client's address is not thereby trusted to vouch for a card. Empty (the default): none.
    pub ingress_header_from: Vec<Cidr>,
    /// How long a card bound without being read (its certificate sent to the admin API) waits
    /// for its holder to present it, seconds; after that it must be bound again. Default 30 days.
    pub pending_presentation_secs: u64,
    /// Trust anchors, CRLs, grace (see `vigie_igc_sante::TrustConfig`).
    pub trust: vigie_igc_sante::TrustConfig,
}

impl Default for CardsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            ingress_header: "ssl-client-cert".into(),
            ingress_header_from: Vec::new(),
            pending_presentation_secs: 30 * 86_400,
            trust: Default::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// JSON-lines file of audit events; `-` for standard output.
    pub file: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { file: "-".into() }
    }
}

/// The admin API (`/admin/api/…`, used by the `vigie cards …` CLI): who may call it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer tokens of the admin API, each with its roles (`vigie admin new-token` makes one).
    pub tokens: Vec<AdminTokenConfig>,
}

/// One bearer token of the admin API.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenConfig {
    /// Who holds it (audit lines say `token:<name>`).
    pub name: String,
    /// `sha256:<base64url>` of the token, as `vigie admin new-token` prints it. Never the token.
    pub token_hash: String,
    /// Roles it grants (`cards`, `fido2`).
    pub roles: Vec<String>,
    /// What it may do within its roles (`cards:read`, `cards:write`, `cards:bind`, `keys:read`,
    /// `keys:enrol`, `keys:revoke`; see `vigie_core::roles::Scope`). Absent (a token made before
    /// scopes existed): only the read scopes of its roles, and every start warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// When it stops working (RFC 3339, e.g. `2026-06-30T00:00:00Z`); refused after, and every
    /// start warns from 14 days before. Absent: it never expires, and every start warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl AdminTokenConfig {
    /// The scopes the token holds: those configured, or, when none are, the read scopes of its
    /// roles (a safe migration: a token configured before scopes existed reads, writes nothing).
    /// Scopes that do not parse are left out (the start-up validation refuses them).
    pub fn scopes(&self) -> Vec<vigie_core::roles::Scope> {
        use vigie_core::roles::Scope;
        match &self.scopes {
            Some(scopes) => scopes.iter().filter_map(|s| Scope::parse(s).ok()).collect(),
            None => Scope::ALL
                .into_iter()
                .filter(|s| s.read_only() && self.roles.iter().any(|r| r == s.role().as_str()))
                .collect(),
        }
    }

    /// The end of the token's validity, Unix seconds; `None` when it never expires (or the value
    /// is invalid, which the start-up validation refuses).
    pub fn expires_at(&self) -> Option<i64> {
        let at = self.expires_at.as_deref()?;
        crate::parse_rfc3339(at)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Serve the embedded demo application at `/demo-app/`.
    pub app: bool,
    /// CA that signed the listener's certificate, trusted by the demo app's HTTP client.
    pub ca_file: Option<PathBuf>,
    /// CRL (DER) of the demo card CA, served at `/demo-pki/card-ca.crl` like IGC-Santé serves
    /// its CRLs over HTTP.
    pub card_crl: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl ClientAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SigningAlg {
    #[default]
    ES256,
    RS256,
    PS256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
        }
    }
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "offline_access"].map(String::from).to_vec()
}

fn default_true() -> bool {
    true
}

fn default_policy() -> String {
    "default".into()
}

/// A client registered statically (OIDC Dynamic Registration §2 names the fields).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    /// Hash of the client secret: `sha256:<base64url>` (for generated secrets, see
    /// `vigie clients new-secret`) or an argon2id PHC string. Never the secret itself.
    pub client_secret_hash: Option<String>,
    pub auth_method: ClientAuthMethod,
    /// Public keys for `private_key_jwt`, inline (a JWK Set).
    pub jwks: Option<serde_json::Value>,
    /// Public keys for `private_key_jwt`, fetched.
    pub jwks_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub id_token_signed_response_alg: SigningAlg,
    /// PKCE (RFC 7636) is required of every client unless this is false; public clients
    /// cannot turn it off (RFC 9700 §2.1.1).
    #[serde(default = "default_true")]
    pub require_pkce: bool,
    /// Label the policy engine reads.
    #[serde(default = "default_policy")]
    pub policy: String,
    /// Display name on login pages.
    pub name: Option<String>,
    /// The `acr` every login to this client must reach, whatever the request asks (e.g.
    /// `urn:vigie:loa:2fa-phr` for a client that needs a card or a FIDO2 key): a session below it
    /// is asked for a stronger MIE (step-up) without losing SSO. Default: none.
    #[serde(default)]
    pub acr: Option<String>,
    /// `acr` values of other schemes this client sends, mapped to the Vigie `acr` that meets
    /// each, over `login.acr_values_map` (see there). Default: none of its own.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub acr_values_map: AcrValuesMap,
    /// A "sensitive" service of the RIE (the DPI and what integrates shared services, external
    /// access, large services): the policies ask for a two-factor MIE of the RIE. Default: false.
    #[serde(default)]
    pub sensitive: bool,
    /// Who the client is for (`staff`, `external`…), a label the policies may read. Default: `staff`.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// This client is Pro Santé Connect using Vigie as a *FI tiers* (delegated identity
    /// provider, reference/psc.md §3): its ID tokens and userinfo also carry `tid`, `oid` and the
    /// `amr` PSC expects, and it never gets an authentication older than `max_auth_age_secs`.
    /// See docs/fi-tiers.md. Only a confidential client may be one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fi_tiers: Option<FiTiersConfig>,
    /// May obtain VIHFs for the DMP (RFC 8693 token exchange) and use the DMP relay with its
    /// users' access tokens. Confidential clients only. Default: false.
    #[serde(default)]
    pub dmp: bool,
}

/// `clients[].fi_tiers`: what Vigie asserts to Pro Santé Connect as its FI tiers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FiTiersConfig {
    /// The tenant id, a constant registered with ANS (`tid` claim): chosen once, never changed
    /// (e.g. `VIGIE_<FINESS juridique>`). PSC routes and checks authentications by it.
    pub tid: String,
    /// The `amr` values (RFC 8176) sent to PSC, by MIE label (`cps`, `fido2`, …), replacing the
    /// defaults (see `crate::oidc::fi_tiers::amr`): PSC's accepted values are not public.
    #[serde(default)]
    pub amr: std::collections::BTreeMap<String, Vec<String>>,
    /// An authentication older than this is never reused for this client: a fresh login is
    /// asked for, as `max_age` does (seconds; default 4 h, ANS's periodic re-authentication).
    #[serde(default = "default_fi_max_auth_age_secs")]
    pub max_auth_age_secs: u64,
}

fn default_fi_max_auth_age_secs() -> u64 {
    4 * 3600
}

/// RFC 8176 §2: `amr` values are case-sensitive strings; the registered ones and those PSC's
/// FI-tiers guides use are short tokens of letters, digits, `_`, `-` and `.`.
pub fn is_amr_token(v: &str) -> bool {
    (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn default_audience() -> String {
    "staff".into()
}

impl FiTiersConfig {
    /// What is wrong with it, as (key under `clients[i].`, message).
    pub fn problems(&self, auth_method: ClientAuthMethod) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let tid = self.tid.as_str();
        if tid.is_empty() || tid.len() > 128 || !tid.bytes().all(|b| b.is_ascii_graphic()) {
            out.push((
                "fi_tiers.tid".into(),
                "expected the tenant id registered with ANS: 1 to 128 printable ASCII characters".into(),
            ));
        }
        for (mie, values) in &self.amr {
            let key = format!("fi_tiers.amr.{mie}");
            if !MIE_LABELS.contains(&mie.as_str()) {
                out.push((key.clone(), format!("unknown login method; expected one of {}", MIE_LABELS.join(", "))));
            }
            if values.is_empty() || !values.iter().all(|v| is_amr_token(v)) {
                out.push((key, "expected a non-empty list of RFC 8176 amr values (letters, digits, _ - .)".into()));
            }
        }
        if self.max_auth_age_secs == 0 {
            out.push((
                "fi_tiers.max_auth_age_secs".into(),
                "expected a positive number of seconds (4 h: 14400)".into(),
            ));
        }
        if auth_method == ClientAuthMethod::None {
            out.push((
                "fi_tiers".into(),
                "a FI-tiers client (Pro Santé Connect) must be confidential: set `auth_method` to client_secret_basic, client_secret_post or private_key_jwt".into(),
            ));
        }
        out
    }
}

impl ClientConfig {
    /// The level named by `acr`, once validated.
    pub fn min_level(&self) -> Option<vigie_core::AssuranceLevel> {
        self.acr.as_deref().and_then(vigie_core::AssuranceLevel::from_acr)
    }
}

/// The top-level keys of [`Config`]: the only `VIGIE_…` variables read.
const TOP_LEVEL_KEYS: &[&str] = &[
    "issuer",
    "server",
    "store",
    "directory",
    "keys",
    "session",
    "sponsorship",
    "mail",
    "tokens",
    "login",
    "cards",
    "policy",
    "webauthn",
    "admin",
    "audit",
    "demo",
    "clients",
    "dmp",
    "psc",
    "health",
];

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

    /// Semantic checks serde cannot make.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let mut err = |key: &str, msg: String| errors.push(format!("`{key}`: {msg}"));
        if self.cards.enabled && self.cards.trust.anchors.is_empty() && self.cards.trust.anchors_pem.is_empty() {
            err("cards.trust.anchors", "card login is enabled but no trust anchor is configured".into());
        }
        if !self.cards.ingress_header.is_empty()
            && actix_web::http::header::HeaderName::from_bytes(self.cards.ingress_header.as_bytes()).is_err()
        {
            err("cards.ingress_header", "not a valid HTTP header name".into());
        }
        if !(1..=365 * 86_400).contains(&self.cards.pending_presentation_secs) {
            err("cards.pending_presentation_secs", "expected 1 to 31536000 (a year)".into());
        }
        if self.cards.ingress_header.is_empty() && !self.cards.ingress_header_from.is_empty() {
            err(
                "cards.ingress_header_from",
                "set, but `cards.ingress_header` is empty: no header would be read".into(),
            );
        }
        for (zone, cidrs) in &self.policy.zones {
            for (j, c) in cidrs.iter().enumerate() {
                if let Err(e) = crate::policy::Cidr::parse(c) {
                    err(&format!("policy.zones.{zone}[{j}]"), e);
                }
            }
        }
        if let Some(d) = &self.policy.password_totp_transition_until
            && crate::policy::parse_date(d).is_none()
        {
            err("policy.password_totp_transition_until", format!("{d:?} is not a date YYYY-MM-DD"));
        }
        if !(-14 * 60..=14 * 60).contains(&self.policy.utc_offset_minutes) {
            err("policy.utc_offset_minutes", "must be within ±840 minutes".into());
        }
        self.psc.validate(&mut err);
        self.health.validate(&mut err);
        for (mie, values) in &self.login.amr {
            if !MIE_LABELS.contains(&mie.as_str()) {
                err(
                    &format!("login.amr.{mie}"),
                    format!("unknown login method; expected one of {}", MIE_LABELS.join(", ")),
                );
            }
            // RFC 8176 §2: values are case-sensitive strings; ours must be non-empty tokens.
            if values.is_empty() || values.iter().any(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic())) {
                err(
                    &format!("login.amr.{mie}"),
                    "must be a non-empty list of non-empty ASCII tokens (RFC 8176)".into(),
                );
            }
        }

        for (value, m) in acr_values_map_problems(&self.login.acr_values_map) {
            err(&format!("login.acr_values_map.{value}"), m);
        }

        match url::Url::parse(&self.issuer) {
            Ok(u) if u.scheme() == "https" && u.query().is_none() && u.fragment().is_none() => {
                if self.issuer.ends_with('/') {
                    err("issuer", "must not end with '/' (OIDC Discovery §4.3 compares it exactly)".into());
                }
            }
            _ => err("issuer", format!("expected an https URL with no query or fragment, found {:?}", self.issuer)),
        }
        for (key, path) in [("server.tls_cert", &self.server.tls_cert), ("server.tls_key", &self.server.tls_key)] {
            if !path.is_file() {
                err(key, format!("{} is not a readable file", path.display()));
            }
        }
        if !self.keys.file.is_file() {
            err(
                "keys.file",
                format!(
                    "{} is not a readable file (create it with `vigie keys generate --out FILE`)",
                    self.keys.file.display()
                ),
            );
        }
        if self.server.plain_http_listen.is_some() && self.server.trusted_proxies.is_empty() {
            err(
                "server.plain_http_listen",
                "a plain-HTTP listener needs `server.trusted_proxies` (the TLS-terminating proxies)".into(),
            );
        }
        if let Err(m) = self.webauthn.relying_party(&self.issuer) {
            err("webauthn.origin", m);
        }
        for (i, a) in self.webauthn.aaguid_allow_list.iter().enumerate() {
            if uuid::Uuid::parse_str(a).is_err() {
                err(&format!("webauthn.aaguid_allow_list[{i}]"), format!("{a:?} is not an AAGUID (a UUID)"));
            }
        }
        if self.webauthn.attestation == AttestationMode::None && !self.webauthn.aaguid_allow_list.is_empty() {
            err(
                "webauthn.aaguid_allow_list",
                "needs `webauthn.attestation = \"required\"`: without verified attestation a key's model is \
                 only its own claim"
                    .into(),
            );
        }
        if let Err(e) = crate::login::attestation::trust_roots(&self.webauthn, crate::now()) {
            err(&e.key, e.message);
        }
        for (key, v) in [
            ("webauthn.ceremony_ttl_secs", self.webauthn.ceremony_ttl_secs),
            ("webauthn.enrolment_max_auth_age_secs", self.webauthn.enrolment_max_auth_age_secs),
            ("webauthn.enrolment_code_ttl_secs", self.webauthn.enrolment_code_ttl_secs),
        ] {
            if v == 0 {
                err(key, "expected a positive integer".into());
            }
        }
        self.sponsorship.validate(&mut err);
        self.mail.validate(&mut err);
        if self.server.max_body_bytes < 1024 {
            err("server.max_body_bytes", "expected at least 1024".into());
        }
        match (self.store.kind, &self.store.url) {
            (StoreKind::Redis, None) => err("store.url", "required when `store.kind` is \"redis\"".into()),
            (StoreKind::Redis, Some(u)) if !(u.starts_with("redis://") || u.starts_with("rediss://")) => {
                err("store.url", "expected a redis:// or rediss:// URL".into())
            }
            _ => {}
        }
        if !self.directory.url.starts_with("sqlite:") {
            err("directory.url", format!("expected a sqlite: URL, found {:?}", self.directory.url));
        }
        for (key, v) in [
            ("session.idle_timeout_secs", self.session.idle_timeout_secs),
            ("session.absolute_timeout_secs", self.session.absolute_timeout_secs),
            ("tokens.code_ttl_secs", self.tokens.code_ttl_secs),
            ("tokens.access_token_ttl_secs", self.tokens.access_token_ttl_secs),
            ("tokens.id_token_ttl_secs", self.tokens.id_token_ttl_secs),
            ("tokens.refresh_token_ttl_secs", self.tokens.refresh_token_ttl_secs),
            ("tokens.login_flow_ttl_secs", self.tokens.login_flow_ttl_secs),
            ("tokens.client_auth_max_failures", self.tokens.client_auth_max_failures),
            ("tokens.client_auth_lockout_secs", self.tokens.client_auth_lockout_secs),
            ("login.max_failures_per_account", self.login.max_failures_per_account),
            ("login.lockout_secs", self.login.lockout_secs),
            ("login.max_attempts_per_ip", self.login.max_attempts_per_ip),
            ("login.ip_window_secs", self.login.ip_window_secs),
            ("login.max_flows_per_ip", self.login.max_flows_per_ip),
        ] {
            if v == 0 {
                err(key, "expected a positive integer".into());
            }
        }
        if self.tokens.code_ttl_secs > 600 {
            // RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED."
            err("tokens.code_ttl_secs", "expected at most 600 (RFC 6749 §4.1.2)".into());
        }
        if self.session.idle_timeout_secs > self.session.absolute_timeout_secs {
            err("session.idle_timeout_secs", "must not exceed `session.absolute_timeout_secs`".into());
        }

        let mut names = HashSet::new();
        for (i, t) in self.admin.tokens.iter().enumerate() {
            let k = |field: &str| format!("admin.tokens[{i}].{field}");
            if t.name.is_empty() || t.name.len() > 64 || !t.name.bytes().all(|b| b.is_ascii_graphic()) {
                err(&k("name"), "expected 1 to 64 printable ASCII characters".into());
            }
            if !names.insert(t.name.as_str()) {
                err(&k("name"), format!("{:?} is named twice", t.name));
            }
            // Tokens are generated (high entropy): the fast hash is the one that fits.
            if !matches!(crate::secrets::SecretHash::parse(&t.token_hash), Some(crate::secrets::SecretHash::Sha256(_)))
            {
                err(&k("token_hash"), "expected `sha256:<base64url>` (see `vigie admin new-token`)".into());
            }
            if t.roles.is_empty() {
                err(&k("roles"), "at least one role is required".into());
            }
            if t.expires_at.is_some() && t.expires_at().is_none() {
                err(&k("expires_at"), "expected an RFC 3339 date and time, e.g. `2026-06-30T00:00:00Z`".into());
            }
            for (j, r) in t.roles.iter().enumerate() {
                if let Err(m) = vigie_core::roles::Role::parse(r) {
                    err(&k(&format!("roles[{j}]")), m);
                }
            }
            if t.scopes.as_ref().is_some_and(Vec::is_empty) {
                err(&k("scopes"), "at least one scope, or leave `scopes` out for a read-only token".into());
            }
            for (j, s) in t.scopes.iter().flatten().enumerate() {
                match vigie_core::roles::Scope::parse(s) {
                    Err(m) => err(&k(&format!("scopes[{j}]")), m),
                    Ok(scope) if !t.roles.iter().any(|r| r == scope.role().as_str()) => err(
                        &k(&format!("scopes[{j}]")),
                        format!("the scope {scope} needs the role {} in `roles`", scope.role()),
                    ),
                    Ok(_) => {}
                }
            }
        }

        let mut seen = HashSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            let k = |field: &str| format!("clients[{i}].{field}");
            if c.client_id.is_empty() || c.client_id.len() > 128 || !c.client_id.bytes().all(|b| b.is_ascii_graphic()) {
                err(&k("client_id"), "expected 1 to 128 printable ASCII characters".into());
            }
            if !seen.insert(c.client_id.as_str()) {
                err(&k("client_id"), format!("{:?} is registered twice", c.client_id));
            }
            match c.auth_method {
                ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost => match &c.client_secret_hash
                {
                    None => err(&k("client_secret_hash"), format!("required for {}", c.auth_method.as_str())),
                    Some(h) if crate::secrets::SecretHash::parse(h).is_none() => err(
                        &k("client_secret_hash"),
                        "expected `sha256:<base64url>` or an argon2id PHC string (see `vigie clients new-secret`)"
                            .into(),
                    ),
                    _ => {}
                },
                ClientAuthMethod::PrivateKeyJwt => {
                    if c.jwks.is_none() == c.jwks_uri.is_none() {
                        err(&k("jwks"), "private_key_jwt needs exactly one of `jwks` or `jwks_uri`".into());
                    }
                    if let Some(j) = &c.jwks
                        && serde_json::from_value::<jsonwebtoken::jwk::JwkSet>(j.clone()).is_err()
                    {
                        err(&k("jwks"), "expected a JWK Set ({\"keys\": [...]})".into());
                    }
                }
                ClientAuthMethod::None => {
                    if c.client_secret_hash.is_some() {
                        err(&k("client_secret_hash"), "a public client (auth_method \"none\") has no secret".into());
                    }
                    if !c.require_pkce {
                        err(&k("require_pkce"), "public clients must use PKCE (RFC 9700 §2.1.1)".into());
                    }
                }
            }
            if c.redirect_uris.is_empty() {
                err(&k("redirect_uris"), "at least one redirect URI is required".into());
            }
            if let Some(acr) = &c.acr
                && vigie_core::AssuranceLevel::from_acr(acr).is_none()
            {
                let known: Vec<&str> = vigie_core::AssuranceLevel::ALL.iter().map(|l| l.acr()).collect();
                err(&format!("clients[{i}].acr"), format!("unknown acr {acr:?}; expected one of {}", known.join(", ")));
            }
            for (value, m) in acr_values_map_problems(&c.acr_values_map) {
                err(&k(&format!("acr_values_map.{value}")), m);
            }
            for (j, u) in c.redirect_uris.iter().enumerate() {
                if let Err(m) = check_redirect_uri(u) {
                    err(&k(&format!("redirect_uris[{j}]")), m);
                }
            }
            for (j, u) in c.post_logout_redirect_uris.iter().enumerate() {
                if let Err(m) = check_redirect_uri(u) {
                    err(&k(&format!("post_logout_redirect_uris[{j}]")), m);
                }
            }
            if let Some(u) = &c.backchannel_logout_uri
                && let Err(m) = check_redirect_uri(u)
            {
                err(&k("backchannel_logout_uri"), m);
            }
            if !c.scopes.iter().any(|s| s == "openid") {
                err(&k("scopes"), "must include \"openid\"".into());
            }
            if c.dmp && c.auth_method == ClientAuthMethod::None {
                err(&k("dmp"), "only a confidential client may obtain VIHFs (RFC 8693 token exchange)".into());
            }
            if let Some(fi) = &c.fi_tiers {
                for (key, m) in fi.problems(c.auth_method) {
                    err(&k(&key), m);
                }
            }
        }
        if let Err(bad) = self.dmp.load() {
            for (key, m) in bad {
                err(&key, m);
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(ConfigErrors(errors)) }
    }

    pub fn client(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.client_id == client_id)
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

/// Whether `u` names this machine: a loopback address, or `localhost`.
pub(crate) fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// RFC 6749 §3.1.2: absolute, no fragment; RFC 9700 §2.1: https, or http only on loopback
/// (RFC 8252 §7.3); private-use schemes for native apps (RFC 8252 §7.1).
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let u = url::Url::parse(uri).map_err(|e| format!("{uri:?} is not an absolute URI: {e}"))?;
    if u.fragment().is_some() {
        return Err(format!("{uri:?} must not contain a fragment (RFC 6749 §3.1.2)"));
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&u) => Ok(()),
        "http" => Err(format!("{uri:?}: http is allowed only on loopback (RFC 8252 §7.3); use https")),
        s if s.contains('.') => Ok(()),
        s => Err(format!("{uri:?}: scheme {s:?} is neither https nor a reverse-domain private-use scheme")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redirect_uris_follow_rfc_8252_and_9700() {
        assert!(check_redirect_uri("https://dpi.chu.example/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:8765/cb").is_ok());
        assert!(check_redirect_uri("fr.chu.app:/cb").is_ok());
        assert!(check_redirect_uri("http://dpi.chu.example/cb").is_err());
        assert!(check_redirect_uri("https://dpi.chu.example/cb#x").is_err());
        assert!(check_redirect_uri("/relative").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
    }

    #[test]
    fn an_acr_values_map_names_real_acr_values_and_vigies_levels_only() {
        let map = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let problems = |pairs: &[(&str, &str)]| -> Vec<String> {
            acr_values_map_problems(&map(pairs)).into_iter().map(|(k, _)| k).collect()
        };
        assert!(problems(&[("eidas1", "urn:vigie:loa:2fa-phr"), ("eidas2", "urn:vigie:loa:2fa")]).is_empty());
        assert_eq!(problems(&[("eidas1", "urn:vigie:loa:3fa")]), ["eidas1"]);
        assert_eq!(problems(&[("two words", "urn:vigie:loa:2fa")]), ["two words"]);
        assert_eq!(problems(&[("urn:vigie:loa:2fa", "urn:vigie:loa:2fa-phr")]), ["urn:vigie:loa:2fa"]);
        assert_eq!(problems(&[("", "urn:vigie:loa:2fa")]), [""]);
    }

    #[test]
    fn the_example_configuration_is_valid_but_for_its_files() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/config/vigie.example.toml");
        let errors = Config::load(std::path::Path::new(path)).unwrap_err().0;
        assert!(!errors.is_empty());
        for e in &errors {
            // Only the TLS, key and PSC secret files of a real deployment are missing here.
            assert!(
                e.contains("server.tls_") || e.contains("keys.file") || e.contains("psc.client_secret_file"),
                "unexpected error: {e}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_toml_never_panics(s in "\\PC{0,400}") {
            if let Ok(c) = Figment::from(Toml::string(&s)).extract::<Config>() {
                let _ = c.validate();
            }
        }

        #[test]
        fn redirect_uri_check_never_panics(s in "\\PC{0,200}") {
            let _ = check_redirect_uri(&s);
        }
    }
}
