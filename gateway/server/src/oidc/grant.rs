//! Minting tokens for a grant: the ID token (OIDC Core §2), the access token as a JWT
//! (RFC 9068) and the rotating refresh token (RFC 6749 §6, RFC 9700 §4.14).
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use vigie_core::Authentication;
use vigie_core::directory::Identity;
use vigie_core::store::{EphemeralStore, StoreError};

use crate::config::Config;
use crate::secrets::{random_token, sha256_b64};
use crate::session::keys;
use crate::state::{AppState, Client, IdentityCache, OidcState, Ports};

mod layout;

/// A refresh-token family: the grant of one authorization code. One record per family,
/// whatever the number of rotations: it holds the generation of the one live refresh token
/// and the hash of its secret, so a token of an older generation is known as reused without
/// keeping a mark per rotated token (RFC 9700 §4.14.2).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub authentication: Authentication,
    pub sid: String,
    /// The family id, shared by every token issued from one code; revoking it revokes them all.
    pub grant_id: String,
    pub family_expires_at: i64,
    /// Generation of the live refresh token (0 for the one issued with the code).
    #[serde(default)]
    pub generation: u32,
    /// SHA-256 of the live refresh token's secret.
    #[serde(default)]
    pub secret_hash: String,
    /// The ID token's `acr` when it is not the level's: the code's, kept for every refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

/// What leads a family record of layout 1, a positional JSON array (written by the previous
/// version, read still): the array and its layout number.
const COMPACT_LAYOUT: &[u8] = b"[1,";

/// A layout-1 family record's fields by position.
type CompactFamily = (u8, String, String, CompactAuthentication, String, i64, u32, String, Option<String>);

/// An [`Authentication`]'s fields by position: identity, MIE, factors, time, level, credential,
/// professional claims.
type CompactAuthentication =
    (String, serde_json::Value, serde_json::Value, i64, serde_json::Value, Option<String>, Option<serde_json::Value>);

impl RefreshRecord {
    /// The bytes kept for this family as long as its refresh tokens live: the binary layout 2
    /// (`grant/layout.rs`), under half the bytes of the object layout. [`RefreshRecord::decode`]
    /// still reads the layouts earlier versions wrote (the positional JSON array of layout 1, the
    /// object before it): records written before an upgrade live as long as their refresh tokens.
    pub fn encode(&self) -> Vec<u8> {
        layout::encode(self)
    }

    /// The bytes to store: [`RefreshRecord::encode`], or the previous version's JSON object
    /// while `tokens.compact_families` is off (a rolling upgrade from it).
    pub fn stored(&self, compact: bool) -> Vec<u8> {
        if compact {
            return self.encode();
        }
        // Serialising our own plain struct to JSON cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The record of family `family` stored at `key`, in the binary layout 2, the positional
    /// JSON of layout 1 or the JSON object of the version before.
    pub fn decode(key: &str, family: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { key: key.to_owned(), reason };
        if bytes.first() != Some(&b'[') {
            let record: Self = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
            // The object layout names its family; the key does too, and the newer layouts trust
            // only the key. A record naming another family than the one it is stored under is
            // damaged: read as is, it would become that other family at its next rotation.
            if record.grant_id != family {
                return Err(corrupt("the record names another family than its key".into()));
            }
            return Ok(record);
        }
        if bytes.starts_with(layout::PREFIX) {
            return layout::decode(family, bytes).map_err(corrupt);
        }
        if !bytes.starts_with(COMPACT_LAYOUT) {
            return Err(corrupt("a layout this version does not read: upgrade every replica".into()));
        }
        let (_, client_id, scopes, a, sid, family_expires_at, generation, secret_hash, acr) =
            serde_json::from_slice::<CompactFamily>(bytes).map_err(|e| corrupt(e.to_string()))?;
        // Through serde, as any stored authentication is read: only verifiers build one.
        let mut authentication = serde_json::json!({
            "identity_id": a.0, "mie": a.1, "factors": a.2, "at": a.3, "level": a.4,
        });
        if let Some(credential) = a.5 {
            authentication["credential"] = credential.into();
        }
        if let Some(professional) = a.6 {
            authentication["professional"] = professional;
        }
        Ok(Self {
            client_id,
            scopes: scopes.split(' ').filter(|s| !s.is_empty()).map(String::from).collect(),
            authentication: serde_json::from_value(authentication).map_err(|e| corrupt(e.to_string()))?,
            sid,
            grant_id: family.to_owned(),
            family_expires_at,
            generation,
            secret_hash,
            acr,
        })
    }
}

/// A refresh token as presented: `<family>.<generation>.<secret>`.
#[derive(Debug, PartialEq, Eq)]
pub struct RefreshToken<'a> {
    pub family: &'a str,
    pub generation: u32,
    pub secret: &'a str,
}

impl<'a> RefreshToken<'a> {
    /// Parses the token format; anything else is not a refresh token of Vigie.
    pub fn parse(token: &'a str) -> Option<Self> {
        let mut parts = token.split('.');
        let (family, generation, secret) = (parts.next()?, parts.next()?, parts.next()?);
        let b64url = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let digits = !generation.is_empty() && generation.len() <= 10 && generation.bytes().all(|b| b.is_ascii_digit());
        if parts.next().is_some() || !b64url(family, 22) || !b64url(secret, 43) || !digits {
            return None;
        }
        Some(Self { family, generation: generation.parse().ok()?, secret })
    }

    /// Whether this is the family's live token (constant-time on the secret).
    pub fn is_live_in(&self, record: &RefreshRecord) -> bool {
        self.generation == record.generation
            && crate::secrets::ct_eq(sha256_b64(self.secret.as_bytes()).as_bytes(), record.secret_hash.as_bytes())
    }

    /// How this token stands in its family: the live one, a rotated one presented with the very
    /// secret it was issued with, or anything else (a guess, a forgery).
    pub async fn standing(&self, store: &dyn EphemeralStore, record: &RefreshRecord) -> Result<Standing, StoreError> {
        if self.generation >= record.generation {
            return Ok(if self.is_live_in(record) { Standing::Live } else { Standing::Wrong });
        }
        let mine = self.spent_member();
        let spent = store.members(&keys::refresh_spent(self.family)).await?;
        Ok(if spent.iter().any(|m| crate::secrets::ct_eq(m.as_bytes(), mine.as_bytes())) {
            Standing::Spent
        } else {
            Standing::Wrong
        })
    }

    /// Records this (live) token as rotated: presented again later, it is known for a reuse by
    /// its secret, not by its generation alone.
    pub async fn mark_spent(&self, store: &dyn EphemeralStore, record: &RefreshRecord) -> Result<(), StoreError> {
        let ttl = Duration::from_secs((record.family_expires_at - crate::now()).max(1) as u64);
        store.add_to_set(&keys::refresh_spent(self.family), &self.spent_member(), ttl).await
    }

    /// The generation and the SHA-256 of the secret: what the family's set of rotated tokens holds.
    fn spent_member(&self) -> String {
        format!("{}:{}", self.generation, sha256_b64(self.secret.as_bytes()))
    }
}

/// What a presented refresh token is to its family.
#[derive(Debug, PartialEq, Eq)]
pub enum Standing {
    /// The family's live token: it may be rotated.
    Live,
    /// A token of the family that was rotated, with its own secret: its second use (RFC 9700
    /// §4.14.2).
    Spent,
    /// Not a token this family issued: a wrong secret or generation proves nothing of the family
    /// and must not end it.
    Wrong,
}

/// The family id of the grant of an authorization code: the code's own hash, cut to the length
/// of a random family id (22 base64url characters, 132 bits). Derived, not drawn, so that the
/// family record (written before the code is taken, see `token::code`) is also the mark of a
/// redeemed code: a replay finds it from the code alone, and no second entry per grant is kept.
pub fn family_of_code(code: &str) -> String {
    let mut family = sha256_b64(format!("vigie-family:{code}").as_bytes());
    family.truncate(22);
    family
}

/// The name of a grant in access tokens and revocation marks: a hash of the family id. An access
/// token goes to resource servers and may be logged; whoever knew the family id could present
/// refresh tokens of it, so it never leaves the refresh tokens themselves.
pub fn grant_handle(grant_id: &str) -> String {
    sha256_b64(format!("vigie-grant:{grant_id}").as_bytes())
}

/// The family record of a presented refresh token, if the token is well-formed and its
/// family lives (of any generation: the caller tells live from reused).
pub async fn refresh_family<'t>(
    store: &dyn EphemeralStore,
    token: &'t str,
) -> Result<Option<(RefreshToken<'t>, RefreshRecord)>, StoreError> {
    Ok(refresh_family_stored(store, token).await?.map(|(t, record, _)| (t, record)))
}

/// [`refresh_family`], with the record's bytes as stored: what a rotation compares the store's
/// value against when it writes the next generation ([`mint_rotation`]).
pub async fn refresh_family_stored<'t>(
    store: &dyn EphemeralStore,
    token: &'t str,
) -> Result<Option<(RefreshToken<'t>, RefreshRecord, Vec<u8>)>, StoreError> {
    let Some(t) = RefreshToken::parse(token) else { return Ok(None) };
    let key = keys::refresh_family(t.family);
    let Some(bytes) = store.get(&key).await? else { return Ok(None) };
    let record = RefreshRecord::decode(&key, t.family, &bytes)?;
    Ok(Some((t, record, bytes)))
}

#[derive(Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub acr: String,
    pub amr: Vec<String>,
    pub sid: String,
    pub at_hash: String,
    /// FI tiers (reference/psc.md §3): the constant tenant id registered with ANS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// FI tiers: the immutable id of the person, PSC's pairing pivot (the directory id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    #[serde(flatten)]
    pub profile: ProfileClaims,
}

/// RFC 9068 §2.2 claims, plus the authentication context the resource server may need.
#[derive(Clone, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub exp: i64,
    pub aud: String,
    pub sub: String,
    pub client_id: String,
    pub iat: i64,
    pub jti: String,
    pub scope: String,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub sid: String,
    /// The handle of the grant this token belongs to ([`grant_handle`]), for revocation; never
    /// the family id.
    pub gid: String,
}

/// Identity claims by scope (OIDC Core §5.4 for `profile`; `hospital` is Vigie's).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ProfileClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matricule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idnat: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
}

impl ProfileClaims {
    pub fn of(identity: &Identity, scopes: &[String]) -> Self {
        let has = |s: &str| scopes.iter().any(|x| x == s);
        let mut c = Self::default();
        if has("profile") {
            c.name = Some(format!("{} {}", identity.given_name, identity.family_name));
            c.given_name = Some(identity.given_name.clone());
            c.family_name = Some(identity.family_name.clone());
            c.birthdate = identity.birth_date.clone();
        }
        if has("hospital") {
            c.matricule = Some(identity.matricule.clone());
            c.idnat = identity.idnat.as_ref().map(|i| i.to_string());
            c.units = serde_json::to_value(&identity.units).ok();
            c.metier = identity.metier.clone();
            c.grade = identity.grade.clone();
        }
        c
    }
}

/// OIDC Core §3.1.3.6: "the base64url encoding of the left-most half of the hash of the
/// octets of the ASCII representation of the access_token value", SHA-256 for our algorithms.
pub fn at_hash(access_token: &str) -> String {
    let d = digest::digest(&digest::SHA256, access_token.as_bytes());
    B64.encode(&d.as_ref()[..16])
}

#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
    pub id_token: String,
    pub scope: String,
}

pub enum MintError {
    Store(StoreError),
    Server(String),
    /// The identity is gone from the directory.
    UnknownIdentity,
}

impl From<StoreError> for MintError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The provider's token side, what minting and checking tokens read: the token settings, the
/// signing keys, the store (family records, revocation marks), the identities (through their
/// cache).
#[derive(Clone, Copy)]
pub struct Issuer<'a> {
    pub config: &'a Config,
    pub oidc: &'a OidcState,
    pub ports: &'a Ports,
    pub identities: &'a IdentityCache,
}

impl<'a> From<&'a AppState> for Issuer<'a> {
    fn from(state: &'a AppState) -> Self {
        Self { config: &state.config, oidc: &state.oidc, ports: &state.ports, identities: &state.policy.identities }
    }
}

impl<'a> From<&'a actix_web::web::Data<AppState>> for Issuer<'a> {
    fn from(state: &'a actix_web::web::Data<AppState>) -> Self {
        Self::from(&***state)
    }
}

/// Issues an access token, an ID token and the refresh token of generation
/// `record.generation` of the family `record.grant_id`, which becomes the family's live one.
pub async fn mint<'a>(
    issuer: impl Into<Issuer<'a>>,
    client: &Client,
    record: &RefreshRecord,
    nonce: Option<String>,
) -> Result<TokenResponse, MintError> {
    let issuer = issuer.into();
    let minted = sign(issuer, client, record, nonce).await?;
    issuer.ports.store.put(&minted.key, &minted.record, minted.ttl).await?;
    Ok(minted.tokens(client))
}

/// [`mint`] for a rotation: the family's record becomes the next generation's only if the store
/// still holds `previous`, the bytes the presented token was checked against. `None`: another
/// request rotated the same generation first (on any replica), and nothing this one signed is
/// handed out. One compare-and-set instead of a claim on the generation: no entry kept per
/// rotation (RFC 9700 §4.14.2 asks only that one of two uses win and the other be known).
pub async fn mint_rotation<'a>(
    issuer: impl Into<Issuer<'a>>,
    client: &Client,
    record: &RefreshRecord,
    previous: &[u8],
) -> Result<Option<TokenResponse>, MintError> {
    let issuer = issuer.into();
    // OIDC Core §12.2: a refreshed ID token has no nonce.
    let minted = sign(issuer, client, record, None).await?;
    let store = issuer.ports.store.as_ref();
    let won = store.replace_if(&minted.key, Some(previous), &minted.record, minted.ttl).await?;
    Ok(won.then(|| minted.tokens(client)))
}

/// Tokens signed, and the family record that makes their refresh token the live one, not yet
/// stored.
struct Minted {
    access_token: String,
    id_token: String,
    refresh_token: String,
    scope: String,
    expires_in: u64,
    key: String,
    record: Vec<u8>,
    ttl: Duration,
}

impl Minted {
    fn tokens(self, client: &Client) -> TokenResponse {
        metrics::counter!("vigie_tokens_issued_total", "client" => client.config.client_id.clone()).increment(1);
        TokenResponse {
            access_token: self.access_token,
            token_type: "Bearer",
            expires_in: self.expires_in,
            refresh_token: self.refresh_token,
            id_token: self.id_token,
            scope: self.scope,
        }
    }
}

async fn sign(
    issuer: Issuer<'_>,
    client: &Client,
    record: &RefreshRecord,
    nonce: Option<String>,
) -> Result<Minted, MintError> {
    let Issuer { config, oidc, ports, identities } = issuer;
    let now = crate::now();
    let identity = identities
        .get(ports.directory.as_ref(), &record.authentication.identity_id)
        .await
        .map_err(|e| MintError::Server(e.to_string()))?
        .ok_or(MintError::UnknownIdentity)?;
    let cfg = &config.tokens;
    let auth = &record.authentication;
    let fi_tiers = client.config.fi_tiers.as_ref();
    let amr = super::fi_tiers::amr(&config.login, fi_tiers, auth);
    let keyset = oidc.keys.get();
    let access = AccessTokenClaims {
        iss: config.issuer.clone(),
        exp: now + cfg.access_token_ttl_secs as i64,
        aud: client.config.client_id.clone(),
        sub: identity.id.clone(),
        client_id: client.config.client_id.clone(),
        iat: now,
        jti: random_token(16),
        scope: record.scopes.join(" "),
        auth_time: auth.at,
        acr: auth.level.acr().to_owned(),
        amr: amr.clone(),
        sid: record.sid.clone(),
        gid: grant_handle(&record.grant_id),
    };
    // RFC 9068 §2.1: access tokens are typed `at+jwt`; signed like the client's ID tokens.
    let alg = client.config.id_token_signed_response_alg;
    let access_token = keyset.sign(alg, Some("at+jwt"), &access).map_err(|e| MintError::Server(e.to_string()))?;
    let id = IdTokenClaims {
        iss: config.issuer.clone(),
        sub: identity.id.clone(),
        aud: client.config.client_id.clone(),
        azp: client.config.client_id.clone(),
        exp: now + cfg.id_token_ttl_secs as i64,
        iat: now,
        auth_time: auth.at,
        nonce,
        acr: record.acr.clone().unwrap_or_else(|| auth.level.acr().to_owned()),
        amr,
        sid: record.sid.clone(),
        at_hash: at_hash(&access_token),
        tid: fi_tiers.map(|f| f.tid.clone()),
        oid: fi_tiers.map(|_| identity.id.clone()),
        profile: ProfileClaims::of(&identity, &record.scopes),
    };
    let id_token = keyset.sign(alg, Some("JWT"), &id).map_err(|e| MintError::Server(e.to_string()))?;

    let secret = random_token(32);
    let refresh_token = format!("{}.{}.{secret}", record.grant_id, record.generation);
    let family = RefreshRecord { secret_hash: sha256_b64(secret.as_bytes()), ..record.clone() };
    let ttl = (record.family_expires_at - now).max(1) as u64;
    Ok(Minted {
        access_token,
        id_token,
        refresh_token,
        scope: record.scopes.join(" "),
        expires_in: cfg.access_token_ttl_secs,
        key: keys::refresh_family(&record.grant_id),
        record: family.stored(cfg.compact_families),
        ttl: Duration::from_secs(ttl),
    })
}

/// Whether a grant (by its [`grant_handle`]), or the SSO session it came from, was revoked.
pub async fn is_revoked(store: &dyn EphemeralStore, handle: &str, sid: &str) -> Result<bool, StoreError> {
    // Both reads at once: one store round trip of latency instead of two (Redis).
    let (grant_key, sid_key) = (keys::revoked_grant(handle), keys::revoked_sid(sid));
    let (grant, session) = tokio::join!(store.get(&grant_key), store.get(&sid_key));
    Ok(grant?.is_some() || session?.is_some())
}

/// Revokes a grant (by its [`grant_handle`]): every access and refresh token of the family stops
/// working.
pub async fn revoke_grant(store: &dyn EphemeralStore, config: &Config, handle: &str) -> Result<(), StoreError> {
    store.put(&keys::revoked_grant(handle), b"1", crate::session::tokens_ttl(config)).await
}

/// Verifies an access token Vigie issued: signature, `typ`, issuer, expiry, revocation.
pub async fn verify_access_token<'a>(issuer: impl Into<Issuer<'a>>, token: &str) -> Result<AccessTokenClaims, String> {
    let Issuer { config, oidc, ports, .. } = issuer.into();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_issuer(&[&config.issuer]);
    v.validate_aud = false;
    v.leeway = 0;
    v.set_required_spec_claims(&["exp", "iss", "sub"]);
    let (_, claims) = oidc.keys.get().verify::<AccessTokenClaims>(token, Some("at+jwt"), v)?;
    match is_revoked(ports.store.as_ref(), &claims.gid, &claims.sid).await {
        Ok(false) => Ok(claims),
        Ok(true) => Err("the token was revoked".into()),
        Err(e) => {
            super::log_internal("access token check", &e);
            Err(super::INTERNAL_ERROR.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OIDC Core §A.3 gives `at_hash` "77QmUPtjPfzWtF2AnpK9RQ" for this access token (RS256).
    #[test]
    fn refresh_tokens_parse_only_in_their_own_format() {
        let family = "a".repeat(22);
        let secret = "B-_".repeat(14) + "c";
        let token = format!("{family}.7.{secret}");
        assert_eq!(RefreshToken::parse(&token), Some(RefreshToken { family: &family, generation: 7, secret: &secret }));
        for bad in [
            "",
            "a.b.c",
            &format!("{family}.x.{secret}"),
            &format!("{family}.1.{secret}.x"),
            &format!("{family}..{secret}"),
        ] {
            assert_eq!(RefreshToken::parse(bad), None, "{bad}");
        }
        assert_eq!(RefreshToken::parse(&format!("{family}.99999999999.{secret}")), None);
    }

    proptest::proptest! {
        #[test]
        fn refresh_token_parser_never_panics(s in "\\PC{0,120}") {
            let _ = RefreshToken::parse(&s);
        }
    }

    #[test]
    fn a_code_names_its_family_in_the_refresh_token_format() {
        let code = random_token(32);
        let family = family_of_code(&code);
        assert_eq!(family, family_of_code(&code));
        assert_ne!(family, family_of_code(&random_token(32)));
        let token = format!("{family}.0.{}", random_token(32));
        assert_eq!(RefreshToken::parse(&token).map(|t| t.family), Some(family.as_str()));
    }

    #[test]
    fn at_hash_matches_the_oidc_core_example() {
        assert_eq!(at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
    }
}
