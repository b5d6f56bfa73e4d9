//! The gateway's e-mails to people (the mail port, `vigie_core::mail`, seen from the features):
//! what a notice sent in the background holds, the address the directory has, the helpdesk's
//! number and the establishment's local time the texts give. Sponsorship and the credential
//! notices (account, admin) send through it; it imports no feature.
use vigie_core::mail::{Mailer, Notice};
use vigie_core::sponsorship::Sponsorships;

use crate::config::Config;
use crate::state::{Audit, Part, Ports, Upstreams};

/// What an e-mail sent in the background reaches, held past the request that sends it: the
/// directory (who, at which address), the mail port, the configuration (local time, the
/// helpdesk) and the audit trail of the outcome.
#[derive(Clone)]
pub struct Mailroom {
    pub config: Part<Config>,
    pub ports: Part<Ports>,
    pub upstreams: Part<Upstreams>,
    pub audit: Audit,
}

impl Mailroom {
    pub fn new(config: &Part<Config>, ports: &Part<Ports>, upstreams: &Part<Upstreams>, audit: &Audit) -> Self {
        Mailroom { config: config.clone(), ports: ports.clone(), upstreams: upstreams.clone(), audit: audit.clone() }
    }
}

/// `dd/mm/yyyy` and `hh:mm:ss` in the establishment's time (`policy.utc_offset_minutes`).
pub fn local(config: &Config, t: i64) -> (String, String) {
    let offset = i64::from(config.policy.utc_offset_minutes) * 60;
    match time::OffsetDateTime::from_unix_timestamp(t + offset) {
        Ok(d) => (
            format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year()),
            format!("{:02}:{:02}:{:02}", d.hour(), d.minute(), d.second()),
        ),
        Err(_) => (String::new(), String::new()),
    }
}

/// How the e-mails name the helpdesk to call, in French and English: ` au <phone>`, ` on <phone>`
/// (`sponsorship.helpdesk_phone`), or nothing.
pub fn helpdesk(config: &Config) -> (String, String) {
    let phone = &config.sponsorship.helpdesk_phone;
    if phone.is_empty() { (String::new(), String::new()) } else { (format!(" au {phone}"), format!(" on {phone}")) }
}

/// E-mails a person at the address the directory has for them; the number of attempts made, or
/// why it was not sent (no address, a bad one, the relay after its retries).
pub async fn send_notice(
    mailer: &dyn Mailer,
    sponsorships: &dyn Sponsorships,
    identity_id: &str,
    subject: &str,
    body: &str,
) -> Result<u32, String> {
    let address = sponsorships
        .email_of(identity_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the directory has no e-mail address for this person")?;
    mailer.send(&Notice { from: None, to: &address, subject, body }).await.map_err(|e| e.to_string())
}
