//! The Vigie directory (identities, affectations, accounts) in SQL: [`SqlDirectory`] implements
//! [`vigie_core::directory::Directory`] on SQLite or PostgreSQL, and [`import`] loads the HR export.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod announced;
pub mod audit_trail;
pub mod card_orders;
pub mod cards;
mod db;
mod directory;
mod directory_link;
mod feed_runs;
mod fences;
mod fido2;
mod hr_enrolment;
pub mod import;
pub mod lifecycle;
mod lifecycle_store;
pub mod people;
mod people_search;
mod policy_attributes;
pub mod reminders;
mod revocations;
pub mod rpps;
mod rules;
mod schema;
mod scim;
pub mod sponsorship;

pub use db::Dialect;
pub use directory::{OpenOptions, SqlDirectory};
pub use feed_runs::{FeedRun, MAX_RUNS};
pub use import::{CsvError, HrRow, ImportReport, import_rows, parse_hr_csv};
pub use lifecycle_store::{Applied, Ended, Temporary};
pub use schema::{NewerSchema, SchemaVersions};
