//! The demo's sponsorship data: each demo user's e-mail address and answers to the security
//! questions (written in `demo.json` so that a sponsorship can be tried).
use crate::state::Ports;

/// The demo users' answers to the security questions (demo only: written in `demo.json`).
pub const DEMO_ANSWERS: [(&str, &str); 3] = [("animal", "Médor"), ("naissance", "Chartres"), ("star", "Édith Piaf")];

/// Where a demo user's sponsorship notices go.
pub fn demo_email(username: &str) -> String {
    format!("{username}@chu-demo.example")
}

/// Gives the demo users an e-mail address and, unless they enrolled their own, the demo answers.
pub async fn seed_demo(ports: &Ports, demo: &crate::demo::Description) -> anyhow::Result<()> {
    for username in demo.usernames() {
        let Some(account) = ports.directory.account_by_username(&username).await? else { continue };
        ports.sponsorships.set_email(&account.identity_id, Some(&demo_email(&username))).await?;
        if ports.sponsorships.security_answers(&account.identity_id).await?.is_empty() {
            let answers: Vec<(String, String)> = DEMO_ANSWERS
                .iter()
                .map(|(q, a)| {
                    let normal = super::questions::normalise_answer(a).unwrap_or_default();
                    (q.to_string(), super::questions::hash_answer(q, &normal))
                })
                .collect();
            ports.sponsorships.set_security_answers(&account.identity_id, &answers).await?;
        }
    }
    Ok(())
}
