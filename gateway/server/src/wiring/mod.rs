//! Wiring: what `serve` reads from disk (`files`, also `check-config`), the state built from
//! configuration (`build`), the one route table (`routes`), the
//! listeners and their background tasks (`serve`).
pub mod build;
pub mod files;
pub mod routes;
pub mod serve;
