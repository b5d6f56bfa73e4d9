//! The establishment's own directory (Active Directory, OpenLDAP) as a *source* for Vigie: a user
//! and their groups read by a service account, and the password checked by binding as the user.
//! Vigie stores no directory password; its SQL directory stays the store of what Vigie owns.
//!
//! One connection per operation (a login: connect, service bind, search, user bind, groups,
//! close): a bind changes a connection's identity, so a shared connection would have to be
//! re-bound as the service after every user bind anyway; see docs/directory.md for the figures.
pub mod ad;
mod config;
pub mod filter;
mod sync_mark;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};

pub use ad::AccountState;
use config::Resolved;
pub use config::{Attributes, GroupExpansion, LdapConfig, MatriculeChanges, Profile};
pub use sync_mark::{Listing, SyncMark};

/// A directory that cannot be used now (down, timing out, refusing the service account).
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("the LDAP directory is unavailable: {0}")]
    Unavailable(String),
    /// A file the configuration names cannot be used; the text starts with the key.
    #[error("{0}")]
    Config(String),
}

/// A user of the directory, as mapped by `[directory.ldap.attributes]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapUser {
    pub dn: String,
    /// `objectGUID` (as a UUID, AD's byte order) or `entryUUID`: stable across renames.
    pub id: String,
    pub login: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub mail: Option<String>,
    pub matricule: Option<String>,
    pub idnat: Option<String>,
    pub units: Vec<String>,
    pub metier: Option<String>,
    pub grade: Option<String>,
    /// DNs of every group the user is in, nested ones included.
    pub groups: Vec<String>,
    /// Vigie roles of those groups (`group_roles`), sorted, once each.
    pub roles: Vec<String>,
    /// What the entry's AD attributes say of the account (disabled, locked…), if anything.
    pub state: Option<AccountState>,
}

/// Why a password check was refused. A wrong password and an unknown user are one case: the
/// person is told the same thing; the log reads [`Refusal::reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No such user (or more than one entry with that login name).
    UnknownUser,
    /// The directory refused the password.
    BadPassword,
    /// The password was right (or the directory said why before checking it) but the account
    /// may not log in.
    State(AccountState),
}

impl Refusal {
    /// What the log says (never the password).
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::UnknownUser => "unknown directory user",
            Refusal::BadPassword => "wrong directory password",
            Refusal::State(s) => s.reason(),
        }
    }
}

/// The service account's password: never printed.
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The directory, as a source of users, groups and password checks.
#[derive(Debug)]
pub struct LdapSource {
    config: LdapConfig,
    resolved: Resolved,
    password: Secret,
    tls: Arc<rustls::ClientConfig>,
    /// The index in `urls` of the server that answered last: tried first. A server that hangs
    /// (a DC blackholed, not refusing) then costs its timeouts once, not at every login and
    /// every probe — which, the probe's budget being shorter than the failover, would open the
    /// breaker while the next server answers.
    preferred: std::sync::atomic::AtomicUsize,
}

/// RFC 4511 §4.1.9 result codes read here.
const INVALID_CREDENTIALS: u32 = 49;

impl LdapSource {
    /// Reads the CA file and the service password file the configuration names; the errors
    /// name the key (what `check-config` prints).
    pub fn from_files(config: LdapConfig, prefix: &str) -> Result<Self, LdapError> {
        let password = std::fs::read_to_string(&config.bind_password_file).map_err(|e| {
            LdapError::Config(format!(
                "`{prefix}.bind_password_file`: cannot read {}: {e}",
                config.bind_password_file.display()
            ))
        })?;
        let password = password.strip_suffix('\n').unwrap_or(&password).trim_end_matches('\r').to_owned();
        if password.is_empty() {
            return Err(LdapError::Config(format!(
                "`{prefix}.bind_password_file`: {} is empty: an empty password is an anonymous bind (RFC 4513 §5.1.2)",
                config.bind_password_file.display()
            )));
        }
        let ca =
            match &config.ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    LdapError::Config(format!("`{prefix}.ca_file`: cannot read {}: {e}", path.display()))
                })?),
                None => None,
            };
        Self::new(config, password, ca.as_deref()).map_err(|e| LdapError::Config(format!("`{prefix}.ca_file`: {e}")))
    }

    /// A source from its configuration, the service password and the PEM of the CA(s) (`None`:
    /// the system's roots).
    pub fn new(config: LdapConfig, bind_password: String, ca_pem: Option<&[u8]>) -> Result<Self, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        match ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| format!("not a PEM certificate: {e}"))?;
                    roots.add(cert).map_err(|e| format!("an unusable CA certificate: {e}"))?;
                }
                if roots.is_empty() {
                    return Err("holds no PEM certificate".into());
                }
            }
            None => {
                let found = rustls_native_roots();
                roots.add_parsable_certificates(found);
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let resolved = config.resolved();
        Ok(Self {
            config,
            resolved,
            password: Secret(bind_password),
            tls: Arc::new(tls),
            preferred: Default::default(),
        })
    }

    /// The roles `group_roles` gives out: a login grants those of the user's groups and revokes
    /// the others of these (roles granted otherwise are left alone).
    pub fn managed_roles(&self) -> Vec<String> {
        let mut roles: Vec<String> = self.config.group_roles.values().cloned().collect();
        roles.sort();
        roles.dedup();
        roles
    }

    fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.config.connect_timeout_ms)
    }

    fn op_timeout(&self) -> Duration {
        Duration::from_millis(self.config.operation_timeout_ms)
    }

    /// A connection bound as the service account: the URLs in order from the one that answered
    /// last, the first that answers.
    async fn connect(&self) -> Result<Ldap, LdapError> {
        self.connect_within(self.connect_timeout() + self.op_timeout()).await
    }

    /// [`Self::connect`], each server given at most `per_server`.
    async fn connect_within(&self, per_server: Duration) -> Result<Ldap, LdapError> {
        use std::sync::atomic::Ordering;
        let mut failures = Vec::new();
        let urls = &self.config.urls;
        let first = self.preferred.load(Ordering::Relaxed) % urls.len().max(1);
        for (i, url) in urls.iter().enumerate().cycle().skip(first).take(urls.len()) {
            let attempt = async {
                // Our own socket, for TCP_NODELAY: ldap3's leaves Nagle on, and each of the
                // handshake's and bind's small writes then waits for a delayed ACK (~40 ms a
                // connection on loopback, measured: docs/directory.md).
                let stream = tokio::net::TcpStream::connect(socket_address(url)?).await?;
                stream.set_nodelay(true)?;
                let settings = LdapConnSettings::new()
                    .set_conn_timeout(self.connect_timeout())
                    .set_starttls(self.config.starttls)
                    .set_config(self.tls.clone())
                    .set_std_stream(ldap3::StdStream::Tcp(stream.into_std()?));
                let (conn, mut ldap) = LdapConnAsync::with_settings(settings, url).await?;
                ldap3::drive!(conn);
                let bound = ldap.simple_bind(&self.config.bind_dn, &self.password.0).await?;
                Ok::<_, ldap3::LdapError>((ldap, bound))
            };
            match tokio::time::timeout(per_server, attempt).await {
                Ok(Ok((ldap, bound))) if bound.rc == 0 => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(ldap);
                }
                Ok(Ok((_, bound))) => {
                    // The service account itself is refused: every other server would say the same.
                    return Err(LdapError::Unavailable(format!(
                        "{}: the service bind was refused (result {}): check `bind_dn` and `bind_password_file`",
                        host_of(url),
                        bound.rc
                    )));
                }
                Ok(Err(e)) => failures.push(format!("{}: {e}", host_of(url))),
                Err(_) => failures.push(format!("{}: no answer within the timeouts", host_of(url))),
            }
        }
        Err(LdapError::Unavailable(failures.join("; ")))
    }

    async fn op<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = ldap3::result::Result<T>>,
    ) -> Result<T, LdapError> {
        match tokio::time::timeout(self.op_timeout(), f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(LdapError::Unavailable(format!("{what}: {e}"))),
            Err(_) => Err(LdapError::Unavailable(format!("{what}: no answer within `operation_timeout_ms`"))),
        }
    }

    fn user_attributes(&self) -> Vec<String> {
        let r = &self.resolved;
        let mut attrs: Vec<String> = [&r.login, &r.id, &r.given_name, &r.family_name, &r.mail, &r.matricule]
            .into_iter()
            .cloned()
            .chain([&r.idnat, &r.unit, &r.metier, &r.grade].into_iter().flatten().cloned())
            .collect();
        attrs.extend(
            ["userAccountControl", "lockoutTime", "accountExpires", "pwdLastSet", "pwdAccountLockedTime"]
                .map(String::from),
        );
        attrs
    }

    /// The one entry whose login attribute is `login`; `None` when none or several are.
    async fn find(&self, ldap: &mut Ldap, login: &str) -> Result<Option<SearchEntry>, LdapError> {
        let filter = filter::equality(&self.resolved.login, login, &self.resolved.user_filter);
        let attrs = self.user_attributes();
        let (entries, result) = self
            .op("searching the user", ldap.search(&self.config.user_base, Scope::Subtree, &filter, attrs))
            .await?
            .success()
            .map_err(|e| LdapError::Unavailable(format!("searching the user under `user_base`: {e}")))?;
        let _ = result;
        let mut entries: Vec<SearchEntry> = entries.into_iter().map(SearchEntry::construct).collect();
        if entries.len() > 1 {
            tracing::warn!(
                login,
                count = entries.len(),
                "several directory entries carry this login name: none is used"
            );
            return Ok(None);
        }
        Ok(entries.pop())
    }

    /// The health monitor's probe: the service bind and a base-scope search of `user_base`
    /// asking for no attribute (RFC 4511 §4.5.1.2 `baseObject`, §4.5.1.8 "1.1"), on a connection
    /// of its own: it proves the server answers, the service account is accepted and the base
    /// exists, for the cost of a login's first two steps. The error names the server, never a
    /// credential.
    ///
    /// Each server gets at most `per_server` (the probe's budget, shorter than a login's
    /// timeouts), so that a server that hangs is passed over by the probe itself and the next
    /// one becomes the one tried first: the whole probe may take `per_server` × [`Self::servers`].
    pub async fn probe(&self, per_server: Duration) -> Result<(), LdapError> {
        let mut ldap = self.connect_within(per_server.min(self.connect_timeout() + self.op_timeout())).await?;
        let read = self
            .op("reading `user_base`", ldap.search(&self.config.user_base, Scope::Base, "(objectClass=*)", vec!["1.1"]))
            .await;
        let _ = ldap.unbind().await;
        read?.success().map_err(|e| LdapError::Unavailable(format!("reading `user_base`: {e}")))?;
        Ok(())
    }

    /// The user with this login name and their groups, read by the service account.
    pub async fn user(&self, login: &str) -> Result<Option<LdapUser>, LdapError> {
        let mut ldap = self.connect().await?;
        let found = match self.find(&mut ldap, login).await? {
            Some(entry) => Some(self.mapped(&mut ldap, &entry).await?),
            None => None,
        };
        let _ = ldap.unbind().await;
        Ok(found)
    }

    /// Checks `password` by binding as the user (never compared by Vigie), then reads the
    /// account's state and groups. The outer error is an outage.
    pub async fn check_password(&self, login: &str, password: &str) -> Result<Result<LdapUser, Refusal>, LdapError> {
        // RFC 4513 §5.1.2: a simple bind with a DN and an empty password is an *unauthenticated*
        // bind, which servers may answer with success: it proves nothing.
        let mut ldap = self.connect().await?;
        let entry = self.find(&mut ldap, login).await?;
        let Some(entry) = entry else {
            // A bind anyway, so that an unknown login costs about what a wrong password does.
            let nobody = format!("cn=vigie-nobody,{}", self.config.user_base);
            let _ = self.op("equalising", ldap.simple_bind(&nobody, "x")).await;
            let _ = ldap.unbind().await;
            return Ok(Err(Refusal::UnknownUser));
        };
        if password.is_empty() {
            let _ = ldap.unbind().await;
            return Ok(Err(Refusal::BadPassword));
        }
        let bound = self.op("binding as the user", ldap.simple_bind(&entry.dn, password)).await?;
        if bound.rc == INVALID_CREDENTIALS {
            let _ = ldap.unbind().await;
            return Ok(Err(match ad::state_of_bind_refusal(&bound.text) {
                Some(state) => Refusal::State(state),
                None => Refusal::BadPassword,
            }));
        }
        if bound.rc != 0 {
            let _ = ldap.unbind().await;
            return Err(LdapError::Unavailable(format!("the user bind answered result {}", bound.rc)));
        }
        // slapd accepts the bind of an account AD would refuse: the attributes decide as well.
        let attr = |name: &str| first(&entry, name);
        if let Some(state) = ad::state_of(&attr, now()) {
            let _ = ldap.unbind().await;
            return Ok(Err(Refusal::State(state)));
        }
        // The groups are read as the service account: the user may not be allowed to.
        let service =
            self.op("binding as the service again", ldap.simple_bind(&self.config.bind_dn, &self.password.0)).await?;
        if service.rc != 0 {
            let _ = ldap.unbind().await;
            return Err(LdapError::Unavailable(format!("the service bind was refused (result {})", service.rc)));
        }
        let user = self.mapped(&mut ldap, &entry).await;
        let _ = ldap.unbind().await;
        Ok(Ok(user?))
    }

    /// Every user under `user_base` (matching `user_filter`) with their groups, for a full sync.
    pub async fn users(&self) -> Result<Vec<LdapUser>, LdapError> {
        Ok(self.users_since(None).await?.users)
    }

    /// The users changed since `since` (the mark of the last pass), or every user when `since`
    /// is `None` or cannot be used here (another DC, another kind of mark): [`Listing::full`]
    /// says which. The listing's mark is where the next pass starts (see [`SyncMark`]).
    pub async fn users_since(&self, since: Option<&SyncMark>) -> Result<Listing, LdapError> {
        let mut ldap = self.connect().await?;
        let listing = self.list(&mut ldap, since).await;
        let _ = ldap.unbind().await;
        listing
    }

    async fn list(&self, ldap: &mut Ldap, since: Option<&SyncMark>) -> Result<Listing, LdapError> {
        // [MS-ADTS] 3.1.1.3.2.1: the rootDSE's highestCommittedUSN, read *before* the listing, so
        // that what changes while it runs is read again next time; the DC's dsServiceName says
        // whose counter it is (each DC numbers its own changes).
        // A server whose rootDSE the service account may not read has no USN for us: the other
        // marks are read from the entries.
        let root = self
            .op(
                "reading the rootDSE",
                ldap.search("", Scope::Base, "(objectClass=*)", vec!["highestCommittedUSN", "dsServiceName"]),
            )
            .await?
            .success()
            .map(|(entries, _)| entries)
            .unwrap_or_default();
        let root = root.into_iter().next().map(SearchEntry::construct);
        let usn = root.as_ref().and_then(|r| {
            let n = first(r, "highestCommittedUSN")?.parse::<u64>().ok()?;
            Some(SyncMark::Usn { server: first(r, "dsServiceName").unwrap_or_default(), usn: n })
        });
        let changed = since.and_then(|s| s.filter(usn.as_ref()));
        let full = changed.is_none();
        let filter = match &changed {
            Some(f) => format!("(&{}{f})", self.resolved.user_filter),
            None => self.resolved.user_filter.clone(),
        };
        let mut attrs = self.user_attributes();
        // Operational (RFC 4512 §3.4): returned only when asked for.
        attrs.extend(["entryCSN", "modifyTimestamp"].map(String::from));
        let entries = self.search_paged(ldap, &filter, attrs).await?;
        let read = |attr: &'static str| entries.iter().filter_map(move |e| first(e, attr));
        let mark = match usn {
            Some(usn) => Some(usn),
            // A CSN mark stays one: a quiet pass reads no entry to say which kind this server has.
            None if read("entryCSN").next().is_some() || matches!(since, Some(SyncMark::Csn(_))) => {
                SyncMark::latest_csn(since, read("entryCSN"))
            }
            None => SyncMark::latest_timestamp(since, read("modifyTimestamp")),
        };
        let mut users = Vec::with_capacity(entries.len());
        for entry in &entries {
            users.push(self.mapped(ldap, entry).await?);
        }
        Ok(Listing { users, mark, full })
    }

    /// Every entry under `user_base` matching `filter`, in pages of 500 (RFC 2696): AD answers at
    /// most 1000 entries to one plain search.
    async fn search_paged(
        &self,
        ldap: &mut Ldap,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, LdapError> {
        use ldap3::adapters::{EntriesOnly, PagedResults};
        let mut entries = Vec::new();
        let mut stream = self
            .op(
                "listing users",
                ldap.streaming_search_with(
                    vec![
                        Box::new(EntriesOnly::new()) as Box<dyn ldap3::adapters::Adapter<_, _>>,
                        Box::new(PagedResults::new(500)),
                    ],
                    &self.config.user_base,
                    Scope::Subtree,
                    filter,
                    attrs,
                ),
            )
            .await?;
        while let Some(entry) = self.op("listing users", stream.next()).await? {
            entries.push(SearchEntry::construct(entry));
        }
        self.op("listing users", async { stream.finish().await.success() }).await?;
        Ok(entries)
    }

    /// What a sync does with a linked entry whose matricule changed (`matricule_changes`).
    pub fn matricule_changes(&self) -> MatriculeChanges {
        self.config.matricule_changes
    }

    /// How often a periodic pass reads every entry (`full_sync_interval_secs`).
    pub fn full_sync_interval(&self) -> Duration {
        Duration::from_secs(self.config.full_sync_interval_secs)
    }

    /// How many servers `urls` names (tried in turn).
    pub fn servers(&self) -> usize {
        self.config.urls.len()
    }

    /// Checks that a directory answers and accepts the service account.
    pub async fn ping(&self) -> Result<(), LdapError> {
        let mut ldap = self.connect().await?;
        let _ = ldap.unbind().await;
        Ok(())
    }

    async fn mapped(&self, ldap: &mut Ldap, entry: &SearchEntry) -> Result<LdapUser, LdapError> {
        let r = &self.resolved;
        let groups = self.groups(ldap, &entry.dn).await?;
        let mut roles: Vec<String> = groups.iter().filter_map(|g| self.role_of(g)).collect();
        roles.sort();
        roles.dedup();
        let opt = |a: &Option<String>| a.as_deref().and_then(|a| first(entry, a));
        Ok(LdapUser {
            dn: entry.dn.clone(),
            id: stable_id(entry, &r.id).unwrap_or_default(),
            login: first(entry, &r.login).unwrap_or_default(),
            given_name: first(entry, &r.given_name),
            family_name: first(entry, &r.family_name),
            mail: first(entry, &r.mail),
            matricule: first(entry, &r.matricule),
            idnat: opt(&r.idnat),
            units: r.unit.as_deref().map(|a| all(entry, a)).unwrap_or_default(),
            metier: opt(&r.metier),
            grade: opt(&r.grade),
            groups,
            roles,
            state: ad::state_of(&|name: &str| first(entry, name), now()),
        })
    }

    fn role_of(&self, group_dn: &str) -> Option<String> {
        let dn = group_dn.to_ascii_lowercase();
        let cn = dn.split(',').next().and_then(|rdn| rdn.strip_prefix("cn=")).unwrap_or_default().to_owned();
        self.config
            .group_roles
            .iter()
            .find(|(group, _)| {
                let g = group.to_ascii_lowercase();
                g == dn || g == cn
            })
            .map(|(_, role)| role.clone())
    }

    /// Every group `dn` is in, nested ones included; a cycle of groups ends.
    async fn groups(&self, ldap: &mut Ldap, dn: &str) -> Result<Vec<String>, LdapError> {
        let base = self.config.group_base.as_deref().unwrap_or(&self.config.user_base);
        let search = |filter: String| {
            let mut ldap = ldap.clone();
            async move {
                let (entries, _) = self
                    .op("searching groups", ldap.search(base, Scope::Subtree, &filter, vec!["1.1"]))
                    .await?
                    .success()
                    .map_err(|e| LdapError::Unavailable(format!("searching groups under `group_base`: {e}")))?;
                Ok::<Vec<String>, LdapError>(entries.into_iter().map(|e| SearchEntry::construct(e).dn).collect())
            }
        };
        match self.resolved.group_expansion {
            // [MS-ADTS] 3.1.1.3.4.4.3: LDAP_MATCHING_RULE_IN_CHAIN walks the ancestry on the server.
            GroupExpansion::InChain => {
                search(format!("(member:1.2.840.113556.1.4.1941:={})", filter::escape_value(dn))).await
            }
            GroupExpansion::Client => {
                // Bounded: a directory with more nesting than this is misconfigured, not a user's.
                const MAX_GROUPS: usize = 1000;
                let mut seen: HashSet<String> = HashSet::new();
                let mut found = Vec::new();
                let mut frontier = vec![dn.to_owned()];
                while let Some(member) = frontier.pop() {
                    for group in search(format!("(member={})", filter::escape_value(&member))).await? {
                        if seen.insert(group.to_ascii_lowercase()) && found.len() < MAX_GROUPS {
                            found.push(group.clone());
                            frontier.push(group);
                        }
                    }
                }
                Ok(found)
            }
        }
    }
}

/// `host:port` of an `ldap://` or `ldaps://` URL (RFC 4516 §2: 389 and 636 by default).
fn socket_address(url: &str) -> Result<String, ldap3::LdapError> {
    let parsed = url::Url::parse(url).map_err(ldap3::LdapError::from)?;
    let port = parsed.port().unwrap_or(if parsed.scheme() == "ldaps" { 636 } else { 389 });
    match parsed.host() {
        Some(url::Host::Ipv6(ip)) => Ok(format!("[{ip}]:{port}")),
        Some(host) => Ok(format!("{host}:{port}")),
        None => Err(ldap3::LdapError::from(url::ParseError::EmptyHost)),
    }
}

/// The host of an URL for messages: never its credentials or path.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split('/').next().unwrap_or(rest);
    rest.rsplit('@').next().unwrap_or(rest)
}

fn first(entry: &SearchEntry, attr: &str) -> Option<String> {
    all(entry, attr).into_iter().next()
}

/// Attribute names are case-insensitive (RFC 4512 §2.5); servers answer in their own case.
fn all(entry: &SearchEntry, attr: &str) -> Vec<String> {
    entry.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// The stable id: `entryUUID` is text; `objectGUID` is 16 octets, shown as a UUID with the first
/// three fields little-endian, as Windows prints it.
fn stable_id(entry: &SearchEntry, attr: &str) -> Option<String> {
    if let Some(v) = first(entry, attr) {
        return Some(v);
    }
    let raw = entry.bin_attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr))?.1.first()?;
    let b: [u8; 16] = raw.as_slice().try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

fn rustls_native_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    // Debian's bundle; a deployment that uses a private CA names it in `ca_file`.
    CertificateDer::pem_file_iter("/etc/ssl/certs/ca-certificates.crt")
        .map(|it| it.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_host_never_url_credentials() {
        assert_eq!(host_of("ldaps://svc:pw@dc1.chu.fr:636/dc=chu"), "dc1.chu.fr:636");
        assert_eq!(host_of("ldap://dc2"), "dc2");
    }

    #[test]
    fn an_object_guid_reads_as_windows_prints_it() {
        // [MS-DTYP] 2.3.4.2: Data1..Data3 little-endian.
        let raw = vec![0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
        let mut entry = SearchEntry { dn: "cn=x".into(), attrs: Default::default(), bin_attrs: Default::default() };
        entry.bin_attrs.insert("objectGUID".into(), vec![raw]);
        assert_eq!(stable_id(&entry, "objectguid").as_deref(), Some("00112233-4455-6677-8899-aabbccddeeff"));
    }
}
