//! The policy port: may this identity, authenticated this way, in this context, use this
//! client — and if not, which MIE would make it so (step-up).
use crate::auth::{Authentication, Mie};

/// The context of a decision.
#[derive(Clone, Debug, Default)]
pub struct PolicyContext {
    /// PSC or the external link is down.
    pub degraded: bool,
}

/// A question to the policy engine.
#[derive(Clone, Debug)]
pub struct PolicyRequest<'a> {
    /// How the user authenticated.
    pub authentication: &'a Authentication,
    /// The client being accessed.
    pub client_id: &'a str,
    /// The policy label of that client, from its registration.
    pub client_policy: &'a str,
    /// Runtime context.
    pub context: &'a PolicyContext,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Access is granted.
    Allow,
    /// Access would be granted after a login with one of these MIE.
    StepUp(Vec<Mie>),
    /// Access is refused, with a reason a person can act on.
    Deny(String),
}

/// A policy engine.
pub trait PolicyEngine: Send + Sync {
    /// Decides one request.
    fn decide(&self, request: &PolicyRequest<'_>) -> Decision;
    /// The engine's name, for logs and `/readyz`.
    fn name(&self) -> &'static str;
}
