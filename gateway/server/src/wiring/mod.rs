//! Wiring: the state built from configuration (`build`), the one route table (`routes`), the
//! listeners and their background tasks (`serve`).
pub mod build;
pub mod routes;
pub mod serve;
