//! The web edge every feature shares: HTTP helpers and error shapes, TLS and the client
//! certificate, the one FR/EN mechanism, the page shell, the auto-posting form, and Vigie's own pages.
pub mod auto_post;
pub mod http;
pub mod lang;
pub mod own_pages;
pub mod pages;
pub mod tls;
