//! Vigie's integration tests against the real `vigie` binary, in one test binary: each module
//! below is one area (the harness is `common`). One binary rather than one per file: one link,
//! and one copy of the gateway's code on disk instead of twenty-two (a debug build of the
//! workspace has to fit the free disk of a CI machine). Run one area with
//! `cargo test -p vigie-gateway --test integration <module>::`.

mod common;
#[path = "degraded/proxy.rs"]
mod proxy;
#[path = "fido2/softkey.rs"]
mod softkey;

mod admin;
mod audit_content;
mod audit_export;
mod audit_purge;
mod audit_search;
mod audit_spool;
mod audit_trail;
mod authorize_errors;
mod card_login;
mod cards_admin;
mod cli;
mod code_flow;
mod configured;
mod conformance_kit;
mod console;
mod console_audit;
mod console_feeds;
mod console_people;
mod console_shell;
mod degraded;
mod derivation;
mod derivation_fhir;
mod derivation_refresh;
mod directory_replicas;
mod dmp;
mod docs;
mod edge;
mod failover;
mod fi_tiers;
mod fido2;
mod forward_auth;
mod hot_path;
mod key_rotation;
mod ldap;
mod ldap_sync;
mod lifecycle;
mod lifecycle_enrolment;
mod lifecycle_orders;
mod lifecycle_pull;
mod lifecycle_reminders;
mod lifecycle_roles;
mod login_page;
mod logout;
mod ops;
mod outage;
mod pages;
mod pg_tls;
mod policy;
mod predeploy;
mod psc_login;
mod psc_paths;
mod redis_tls;
mod refresh_in_process;
mod replicas;
mod rolling;
#[cfg(feature = "saml")]
mod saml;
#[cfg(feature = "saml")]
mod saml_algorithms;
#[cfg(feature = "saml")]
mod saml_encrypted;
#[cfg(feature = "saml")]
mod saml_metadata_url;
#[cfg(feature = "saml")]
mod saml_mie;
#[cfg(feature = "saml")]
mod saml_slo_post;
mod schema;
mod scim;
mod security;
mod shared_view;
mod shared_workstation;
mod sponsorship;
mod step_up;
mod tokens;
