//! The admin API of cards (`vigie_gateway::admin::api`): JSON bodies, ids, statuses and
//! certificate PEM sent by HR tools and the CLI; and the name folding of the binding check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_core::cards::CardStatus;
use vigie_core::names::{fold, names_match};
use vigie_gateway::admin::api::{self, BindCard, NewCard, StatusChange};

fuzz_target!(|input: (&[u8], &str, &str)| {
    let (body, text, other) = input;
    let _ = api::parse_body::<NewCard>(body);
    let _ = api::parse_body::<StatusChange>(body);
    if let Ok(b) = api::parse_body::<BindCard>(body)
        && let Ok(chain) = api::pem_chain(&b.certificate_pem)
    {
        assert!(!chain.is_empty() && b.certificate_pem.len() <= api::MAX_PEM_BYTES);
    }
    if api::check_id("id", text).is_ok() {
        assert!(!text.is_empty() && text.len() <= api::MAX_ID_CHARS && text.bytes().all(|b| b.is_ascii_graphic()));
    }
    if let Ok(s) = api::parse_status(text) {
        assert_eq!(CardStatus::parse(text), Some(s));
    }
    // Folding is stable, and a name always matches itself whatever its case.
    assert_eq!(fold(&fold(text)), fold(text));
    let named = !fold(text).is_empty() && !fold(other).is_empty();
    assert_eq!(names_match(text, other, text, other), named);
    assert_eq!(names_match(&text.to_uppercase(), other, text, other), named && fold(&text.to_uppercase()) == fold(text));
});
