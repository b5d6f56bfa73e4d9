//! The life cycle of a person (issue 17, docs/identity-lifecycle.md): the HR feed (`feed`, pulled over HTTPS by `pull`) and the
//! watch that ends access at each end date (`watch`) and e-mails before it (`reminders`), on top of the directory's `lifecycle` store.
pub mod config;
pub mod end_date;
pub mod enrolment;
pub mod feed;
pub mod orders;
pub mod pull;
pub mod reminders;
pub mod runs;
pub mod watch;

use vigie_core::store::EphemeralStore;

/// Every replica drops its cached principals: a change of the life cycle must not outlive a cache.
async fn tell(store: &dyn EphemeralStore) {
    if let Err(e) = crate::policy::view::signal_change(store).await {
        tracing::warn!(error = %e, "life cycle: replicas not told; their caches lapse by themselves");
    }
}
