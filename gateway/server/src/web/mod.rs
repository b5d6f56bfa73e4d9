//! The web edge every feature shares: HTTP helpers and error shapes, TLS and the client
//! certificate, the page shell with its one FR/EN mechanism, and Vigie's own signed-in pages.
pub mod http;
pub mod own_pages;
pub mod pages;
pub mod tls;
