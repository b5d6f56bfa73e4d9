//! The embedded store against the shared ephemeral-store conformance suite.
use std::sync::Arc;

use vigie_core::store::EphemeralStore;
use vigie_core::testkit;
use vigie_store_embedded::EmbeddedStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_store_keeps_every_port_guarantee() {
    testkit::run_all(Arc::new(EmbeddedStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handles_on_one_embedded_store_share_its_state() {
    let store: Arc<dyn EphemeralStore> = Arc::new(EmbeddedStore::new());
    testkit::replicas_share_state(store.clone(), store).await;
}
