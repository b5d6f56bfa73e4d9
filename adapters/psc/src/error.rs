//! What can go wrong talking to Pro Santé Connect: the port's `PscError` (a stable `code()` per
//! case for pages, audit lines, metrics and the health monitor), and userinfo claim failures as one.
use crate::claims::ClaimsError;
pub use vigie_core::psc::{Op, PscError};

impl From<ClaimsError> for PscError {
    fn from(e: ClaimsError) -> Self {
        match e {
            ClaimsError::NoIdnat => PscError::NoIdnat,
            other => PscError::Userinfo(other.to_string()),
        }
    }
}
