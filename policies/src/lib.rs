//! Policy engines: [`CedarEngine`], the RIE's rules written in Cedar and validated against the
//! schema in `policies/schema/`, reloadable with [`ReloadablePolicies`]; and
//! [`AllowAnyAuthenticated`], which allows any authenticated session, and whose name says so.
#![forbid(unsafe_code)]

mod cedar;
mod eval;
mod reload;

pub use cedar::{
    BUILTIN_POLICIES, BUILTIN_SCHEMA, CedarEngine, FileStamp, Fingerprint, PolicyError, PolicySource, Problem,
};
pub use eval::{eval_json, validate_dir};
pub use reload::ReloadablePolicies;

use vigie_core::policy::{Decision, PolicyContext, PolicyEngine, PolicyRequest, TokenPrincipal};

/// Allows every request that carries a completed authentication: no per-client rule, no
/// context rule, no step-up. Every login method of Vigie is already two-factor.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAnyAuthenticated;

impl PolicyEngine for AllowAnyAuthenticated {
    fn decide(&self, _request: &PolicyRequest<'_>) -> Decision {
        // A `PolicyRequest` can only be built from an `Authentication`, which only a login
        // verifier makes: being asked at all means the session is authenticated.
        Decision::allow(vec!["allow-any-authenticated".into()])
    }

    fn decide_token(&self, _token: &TokenPrincipal, _context: &PolicyContext) -> Decision {
        // The gateway found the token among its configured hashes: it is authenticated.
        Decision::allow(vec!["allow-any-authenticated".into()])
    }

    fn name(&self) -> &'static str {
        "allow-any-authenticated"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_core::policy::{Action, PolicyContext, Principal, Resource};
    use vigie_core::{Authentication, Factor, Mie};

    #[test]
    fn an_authenticated_session_is_allowed_on_any_client() {
        let auth = Authentication::hypothetical("id-1".into(), Mie::PasswordTotp, vec![Factor::Pwd, Factor::Otp], 0);
        let ctx = PolicyContext { degraded: true, ..Default::default() };
        let principal = Principal { id: "id-1".into(), ..Default::default() };
        let req = PolicyRequest {
            principal: &principal,
            action: Action::LoginToClient,
            resource: &Resource::Dmp,
            authentication: &auth,
            context: &ctx,
            now: 0,
        };
        assert!(AllowAnyAuthenticated.decide(&req).allowed);
        assert_eq!(AllowAnyAuthenticated.name(), "allow-any-authenticated");
    }
}
