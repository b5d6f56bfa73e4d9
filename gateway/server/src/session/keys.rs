//! Every key Vigie writes in the ephemeral store, one function per kind of entry.
//!
//! The store is shared by every replica, and during a rolling upgrade by two versions of Vigie
//! at once: a key's prefix and shape are a contract between them. A key built differently by
//! the new version is an entry the old one no longer finds (a session logged out, a code that
//! cannot be redeemed, a revocation missed). Keeping every key here makes such a change visible
//! in one file, and its tests pin the exact bytes the previous version wrote.
//!
//! Secrets (codes, cookies, tokens, `state`s that stand for a browser) are keyed by their
//! SHA-256 only, computed here, so that reading the store gives nothing usable.
//!
//! | prefix | entry |
//! | --- | --- |
//! | `code:` | an authorization code's grant |
//! | `code-used:` | the mark of a redeemed authorization code |
//! | `rt:` | a refresh-token family's record |
//! | `rt-spent:` | a family's rotated tokens |
//! | `rt-rotating:` | the claim on rotating one generation |
//! | `revoked-grant:` | a revoked grant |
//! | `revoked-sid:` | an ended session, for token checks |
//! | `jti:` | a client assertion already used |
//! | `sid-clients:` | the clients a session signed in to |
//! | `logout:` | an RP-initiated logout awaiting confirmation |
//! | `flow:` | a login flow |
//! | `webauthn-login:` | a FIDO2 login challenge |
//! | `psc-state:` | a login sent to Pro Santé Connect |
//! | `psc-logout:` | a logout sent to Pro Santé Connect |
//! | `totp-used:` | a TOTP step already accepted |
//! | `enrol-code:` | an enrolment code |
//! | `enrol-grant:` | an enrolment under way in a browser |
//! | `webauthn-reg:` | a security-key registration challenge |
//! | `sess:` | an SSO session |
//! | `sid:` | a session's store key, by its public id |
//! | `cred-sids:` | the sessions opened with a credential |
//! | `identity-sids:` | the sessions of a person |
//! | `revocation-claim:` | a replica's claim on a pending ending of access |
//! | `sponsorship:` | a sponsorship ceremony |
//! | `rl:` | rate-limit and lockout counters (kinds below) |
//! | `demo-app:` | the demo client's own sessions (demo mode only) |
//! | `health:` | an upstream's circuit breaker state, for the whole deployment |
//! | `view-epoch:` | the mark of the last change to who may access what (caches to drop) |
use crate::secrets::sha256_b64;

/// An authorization code's grant (`oidc::CodeGrant`), for the code's lifetime
/// (`tokens.code_ttl_secs`); written by the authorization endpoint, taken by the token endpoint.
pub fn authorization_code(code: &str) -> String {
    format!("code:{}", sha256_b64(code.as_bytes()))
}

/// The grant id of a redeemed authorization code, as long as a refresh token lives: a second
/// redemption finds it and revokes what the first one issued (RFC 6749 §4.1.2). Written only
/// for codes of the previous version (a random family id): a code's family is now derived from
/// it (`oidc::grant::family_of_code`), and the family's record is the mark.
pub fn used_authorization_code(code: &str) -> String {
    format!("code-used:{}", sha256_b64(code.as_bytes()))
}

/// The one record of a refresh-token family (`oidc::grant::RefreshRecord`), as long as its
/// refresh tokens live; read and rewritten at each refresh.
pub fn refresh_family(family: &str) -> String {
    format!("rt:{family}")
}

/// The hashes of a family's rotated tokens, by generation, as long as the family: a reused
/// token is recognised here by the token endpoint.
pub fn refresh_spent(family: &str) -> String {
    format!("rt-spent:{family}")
}

/// The claim of one replica on rotating one generation of a family, for a couple of minutes:
/// a second request with the same token meanwhile is a reuse.
pub fn refresh_rotation(family: &str, generation: u32) -> String {
    format!("rt-rotating:{family}:{generation}")
}

/// A revoked grant, by its handle (`oidc::grant::grant_handle`), as long as its tokens live;
/// read by every token check.
pub fn revoked_grant(handle: &str) -> String {
    format!("revoked-grant:{handle}")
}

/// An ended session, by its `sid`, as long as its tokens live; read by every token check.
pub fn revoked_sid(sid: &str) -> String {
    format!("revoked-sid:{sid}")
}

/// A client assertion's `jti` already used by that client, until the assertion expires
/// (replay check of private_key_jwt, RFC 7523 §3).
pub fn client_assertion_jti(client_id: &str, jti: &str) -> String {
    format!("jti:{client_id}:{jti}")
}

/// The set of clients a session signed in to, for the session's absolute lifetime; read by
/// logout to notify them.
pub fn sid_clients(sid: &str) -> String {
    format!("sid-clients:{sid}")
}

/// An RP-initiated logout waiting for the person to confirm it, five minutes, by the random
/// token of its confirmation page.
pub fn rp_logout(token: &str) -> String {
    format!("logout:{token}")
}

/// A login flow (the authorization request being served), for `tokens.login_flow_ttl_secs`;
/// read by every login page and method.
pub fn login_flow(flow_id: &str) -> String {
    format!("flow:{flow_id}")
}

/// A FIDO2 login's challenge, by its flow, for `webauthn.ceremony_ttl_secs`; taken by the
/// answer.
pub fn fido2_login(flow_id: &str) -> String {
    format!("webauthn-login:{flow_id}")
}

/// A login sent to Pro Santé Connect, by the `state` given to it, for `psc.state_ttl_secs`;
/// taken by the callback.
pub fn psc_login(state: &str) -> String {
    format!("psc-state:{}", sha256_b64(state.as_bytes()))
}

/// A logout sent to Pro Santé Connect, by the `state` given to it, for `psc.state_ttl_secs`;
/// taken when PSC sends the browser back.
pub fn psc_logout(state: &str) -> String {
    format!("psc-logout:{state}")
}

/// A TOTP time step a person already signed in with, for three steps (RFC 6238 §5.2).
pub fn totp_used(identity_id: &str, step: i64) -> String {
    format!("totp-used:{identity_id}:{step}")
}

/// An enrolment code, by its normal form, for `webauthn.enrolment_code_ttl_secs`; taken when
/// the agent types it.
pub fn enrolment_code(normal_code: &str) -> String {
    format!("enrol-code:{}", sha256_b64(normal_code.as_bytes()))
}

/// An enrolment under way in one browser, by its cookie, ten minutes at most.
pub fn enrolment_grant(cookie: &str) -> String {
    format!("enrol-grant:{}", sha256_b64(cookie.as_bytes()))
}

/// A security-key registration's challenge, by its holder's CSRF token, for
/// `webauthn.ceremony_ttl_secs`; taken by the registration.
pub fn key_registration(csrf: &str) -> String {
    format!("webauthn-reg:{}", sha256_b64(csrf.as_bytes()))
}

/// An SSO session (`session::Session`), by its cookie, for its idle timeout (never past its
/// absolute end); read by every request that carries the cookie.
pub fn session(cookie: &str) -> String {
    format!("sess:{}", sha256_b64(cookie.as_bytes()))
}

/// The [`session`] key of a session, by its public `sid`, for the session's absolute lifetime;
/// read to end a session from elsewhere (logout, revocation).
pub fn session_of_sid(sid: &str) -> String {
    format!("sid:{sid}")
}

/// The `sid`s of the sessions opened with a credential (a card, a key), as long as their tokens
/// live; read when the credential is revoked.
pub fn credential_sessions(credential: &str) -> String {
    format!("cred-sids:{}", sha256_b64(credential.as_bytes()))
}

/// The `sid`s of a person's sessions, as long as their tokens live; read when the person's
/// access ends.
pub fn identity_sessions(identity_id: &str) -> String {
    format!("identity-sids:{identity_id}")
}

/// One replica's claim on completing a pending ending of access, one minute, so that replicas
/// sweeping at once do not all end it.
pub fn revocation_claim(note_id: &str) -> String {
    format!("revocation-claim:{note_id}")
}

/// A sponsorship ceremony, by its token, for `sponsorship.ceremony_ttl_secs`; taken by its
/// answer.
pub fn sponsorship_ceremony(token: &str) -> String {
    format!("sponsorship:{}", sha256_b64(token.as_bytes()))
}

/// The per-address rate limits: each counts the requests of one client address (an IPv6 /64)
/// for one purpose.
#[derive(Clone, Copy, Debug)]
pub enum PerAddress<'a> {
    /// Failed client authentications at the token endpoints, whatever the client.
    ClientAuth,
    /// Failed client authentications of one registered client.
    ClientAuthOf(&'a str),
    /// Login flows opened.
    Flow,
    /// Enrolment codes tried.
    Enrolment,
    /// Login attempts.
    Login,
}

/// The counter of one per-address rate limit, over its window; `address` is
/// `web::http::address_key`.
pub fn rate_limit_by_address(limit: PerAddress<'_>, address: &str) -> String {
    match limit {
        PerAddress::ClientAuth => format!("rl:client-auth:{address}"),
        // The client id hashed: raw, a client id of hex digits met the per-address counter of an
        // IPv6 /64 (`rl:client-auth:2001` + `:db8::/64`), and an id holding a colon met another
        // client's counter; a hash has a fixed length and no colon.
        PerAddress::ClientAuthOf(client_id) => {
            format!("rl:client-auth-of:{}:{address}", sha256_b64(client_id.as_bytes()))
        }
        PerAddress::Flow => format!("rl:flow-ip:{address}"),
        PerAddress::Enrolment => format!("rl:enrol-ip:{address}"),
        PerAddress::Login => format!("rl:login-ip:{address}"),
    }
}

/// The SCIM calls of one provisioning token (its name hashed: fixed length, no colon), over a
/// minute (`scim.requests_per_minute`).
pub fn scim_calls(token_name: &str) -> String {
    format!("rl:scim-token:{}", sha256_b64(token_name.as_bytes()))
}

/// The failed password logins of one account, whatever the case it was typed in, over the
/// lockout window.
pub fn login_account_failures(username: &str) -> String {
    format!("rl:login-account:{}", username.to_lowercase())
}

/// The failed sponsored logins of one account, whatever the case it was typed in, over the
/// lockout window.
pub fn sponsorship_login_failures(username: &str) -> String {
    format!("rl:sponsorship-login:{}", username.to_lowercase())
}

/// The wrong answers given about one sponsored colleague, over the sponsorship lockout.
pub fn sponsorship_wrong_colleague(colleague_id: &str) -> String {
    format!("rl:sponsorship-wrong-colleague:{colleague_id}")
}

/// The wrong answers given by one sponsor, over the sponsorship lockout.
pub fn sponsorship_wrong_sponsor(sponsor_id: &str) -> String {
    format!("rl:sponsorship-wrong-sponsor:{sponsor_id}")
}

/// A demo client session (`demo::app`), by its cookie, for the gateway session's absolute
/// lifetime.
pub fn demo_app_session(cookie: &str) -> String {
    format!("demo-app:session:{}", sha256_b64(cookie.as_bytes()))
}

/// A demo client login sent to the gateway, by its `state`, fifteen minutes.
pub fn demo_app_login(state: &str) -> String {
    format!("demo-app:login:{state}")
}

/// The demo client's [`demo_app_session`] keys of one gateway `sid`, for back-channel logout.
pub fn demo_app_sid(sid: &str) -> String {
    format!("demo-app:sid:{sid}")
}

/// The deployment's state of one upstream's circuit breaker (`health::shared`), a week past its
/// last transition; read by every replica each second, replaced on a transition by
/// compare-and-set.
pub fn upstream_health(upstream: &str) -> String {
    format!("health:{upstream}")
}

/// A random mark replaced at each change of a status, a role, a card or a key
/// (`policy::view`), thirty days; read by every replica each second: when it changes, the
/// caches that decide access are dropped. `scope` is `access`.
pub fn view_epoch(scope: &str) -> String {
    format!("view-epoch:{scope}")
}

/// The lease of the periodic sync of a directory (`directory_sync`; `source` is `ldap`): the
/// replica that puts it runs the pass and deletes it at the end; it lapses if that replica dies.
pub fn directory_sync_lease(source: &str) -> String {
    format!("lease:directory-sync:{source}")
}

/// The counter of the fencing tokens of `job`'s lease (`directory_sync::Lease`): incremented at
/// each take, never deleted (it lapses after years, and then starts again from the clock).
pub fn lease_fence(job: &str) -> String {
    format!("lease-fence:{job}")
}

/// The `ETag` / `Last-Modified` of the last HR export pulled from `url` and run whole
/// (`lifecycle::feed`): the next pull asks whether it changed since. Hashed: a URL may carry a key.
pub fn hr_feed_validators(url: &str) -> String {
    format!("hr-feed-validators:{}", sha256_b64(url.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH_OF_SECRET: &str = "K7gNU3sdo-OL0wNhqoVWhr3g6s1xYv72ol_pe_Unols";

    /// Every kind of key, built with sample arguments, with the exact bytes the previous
    /// version wrote for them and the part that came from the arguments.
    fn every_kind() -> Vec<(String, String, String)> {
        let h = HASH_OF_SECRET;
        let cases: Vec<(String, String, String)> = vec![
            (authorization_code("secret"), format!("code:{h}"), h.into()),
            (used_authorization_code("secret"), format!("code-used:{h}"), h.into()),
            (refresh_family("fam"), "rt:fam".into(), "fam".into()),
            (refresh_spent("fam"), "rt-spent:fam".into(), "fam".into()),
            (refresh_rotation("fam", 3), "rt-rotating:fam:3".into(), "fam:3".into()),
            (revoked_grant("hdl"), "revoked-grant:hdl".into(), "hdl".into()),
            (revoked_sid("s1"), "revoked-sid:s1".into(), "s1".into()),
            (client_assertion_jti("c1", "j1"), "jti:c1:j1".into(), "c1:j1".into()),
            (sid_clients("s1"), "sid-clients:s1".into(), "s1".into()),
            (rp_logout("t1"), "logout:t1".into(), "t1".into()),
            (login_flow("f1"), "flow:f1".into(), "f1".into()),
            (fido2_login("f1"), "webauthn-login:f1".into(), "f1".into()),
            (psc_login("secret"), format!("psc-state:{h}"), h.into()),
            (psc_logout("st"), "psc-logout:st".into(), "st".into()),
            (totp_used("i1", 57_000_000), "totp-used:i1:57000000".into(), "i1:57000000".into()),
            (enrolment_code("secret"), format!("enrol-code:{h}"), h.into()),
            (enrolment_grant("secret"), format!("enrol-grant:{h}"), h.into()),
            (key_registration("secret"), format!("webauthn-reg:{h}"), h.into()),
            (session("secret"), format!("sess:{h}"), h.into()),
            (session_of_sid("s1"), "sid:s1".into(), "s1".into()),
            (credential_sessions("secret"), format!("cred-sids:{h}"), h.into()),
            (identity_sessions("i1"), "identity-sids:i1".into(), "i1".into()),
            (revocation_claim("n1"), "revocation-claim:n1".into(), "n1".into()),
            (sponsorship_ceremony("secret"), format!("sponsorship:{h}"), h.into()),
            (
                rate_limit_by_address(PerAddress::ClientAuth, "192.0.2.1"),
                "rl:client-auth:192.0.2.1".into(),
                "192.0.2.1".into(),
            ),
            (
                // Changed on purpose: these counters start again once at the upgrade (one
                // `login.ip_window_secs` window), the price of keys that cannot collide.
                rate_limit_by_address(PerAddress::ClientAuthOf("secret"), "192.0.2.1"),
                format!("rl:client-auth-of:{h}:192.0.2.1"),
                format!("{h}:192.0.2.1"),
            ),
            (
                rate_limit_by_address(PerAddress::Flow, "2001:db8::/64"),
                "rl:flow-ip:2001:db8::/64".into(),
                "2001:db8::/64".into(),
            ),
            (
                rate_limit_by_address(PerAddress::Enrolment, "192.0.2.1"),
                "rl:enrol-ip:192.0.2.1".into(),
                "192.0.2.1".into(),
            ),
            (rate_limit_by_address(PerAddress::Login, "192.0.2.1"), "rl:login-ip:192.0.2.1".into(), "192.0.2.1".into()),
            (login_account_failures("Marie.Curie"), "rl:login-account:marie.curie".into(), "marie.curie".into()),
            (scim_calls("secret"), format!("rl:scim-token:{h}"), h.into()),
            (
                sponsorship_login_failures("Marie.Curie"),
                "rl:sponsorship-login:marie.curie".into(),
                "marie.curie".into(),
            ),
            (sponsorship_wrong_colleague("i2"), "rl:sponsorship-wrong-colleague:i2".into(), "i2".into()),
            (sponsorship_wrong_sponsor("i3"), "rl:sponsorship-wrong-sponsor:i3".into(), "i3".into()),
            (demo_app_session("secret"), format!("demo-app:session:{h}"), h.into()),
            (demo_app_login("st"), "demo-app:login:st".into(), "st".into()),
            (demo_app_sid("s1"), "demo-app:sid:s1".into(), "s1".into()),
            (upstream_health("psc"), "health:psc".into(), "psc".into()),
            (view_epoch("access"), "view-epoch:access".into(), "access".into()),
            (directory_sync_lease("ldap"), "lease:directory-sync:ldap".into(), "ldap".into()),
            (lease_fence("ldap"), "lease-fence:ldap".into(), "ldap".into()),
            (hr_feed_validators("secret"), format!("hr-feed-validators:{h}"), h.into()),
        ];
        cases
    }

    #[test]
    fn every_key_is_what_the_previous_version_wrote() {
        assert_eq!(sha256_b64(b"secret"), HASH_OF_SECRET);
        for (built, previous, _) in every_kind() {
            assert_eq!(built, previous);
        }
    }

    #[test]
    fn no_two_kinds_share_a_prefix() {
        let prefixes: Vec<String> = every_kind()
            .into_iter()
            .map(|(built, _, from_arguments)| {
                built.strip_suffix(&from_arguments).unwrap_or_else(|| panic!("{built}: arguments not last")).to_owned()
            })
            .collect();
        for (i, a) in prefixes.iter().enumerate() {
            assert!(a.ends_with(':'), "{a}");
            for (j, b) in prefixes.iter().enumerate() {
                assert!(i == j || !b.starts_with(a.as_str()), "{a} is a prefix of {b}");
            }
        }
    }

    /// The client-authentication counters of different clients, or of a client and of an
    /// address, never share a key: one client's failures must not lock out another, nor an
    /// address's failures a client elsewhere.
    #[test]
    fn client_authentication_counters_never_meet() {
        let v6 = "2001:db8::/64";
        let keys = [
            rate_limit_by_address(PerAddress::ClientAuth, v6),
            rate_limit_by_address(PerAddress::ClientAuthOf("2001"), "db8::/64"),
            rate_limit_by_address(PerAddress::ClientAuthOf("a"), v6),
            rate_limit_by_address(PerAddress::ClientAuthOf("a:2001"), "db8::/64"),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
