//! HR enrolment codes for joiners: a single-use, expiring code with which a new person registers
//! a FIDO2 key at `/account/enrol` before they have any MIE. Issued by `vigie users feed` to each
//! joiner and by `vigie users enrolment-codes --issue` (a new one replaces the old), kept hashed in
//! the directory (so another process can issue it), shown once, never logged nor audited.
use serde::Serialize;
use vigie_directory_sql::SqlDirectory;
use vigie_directory_sql::lifecycle::stamp;

use crate::account::enrolment::{new_code, normal_code};
use crate::config::Config;
use crate::secrets::sha256_b64;

/// A code issued to a person, to hand over to them.
#[derive(Clone, Debug, Serialize)]
pub struct HrCode {
    /// HR matricule of the person.
    pub matricule: String,
    /// Their login name, when they have an account.
    pub username: Option<String>,
    /// `XXXX-XXXX-XXXX-XXXX`, as `/account/enrol` takes it.
    pub code: String,
    /// When it stops working (RFC 3339 UTC).
    pub expires_at: String,
    /// Where the person types it.
    pub enrol_url: String,
}

fn hash(code: &str) -> String {
    sha256_b64(normal_code(code).as_bytes())
}

/// Issues a new code to the person with `identity_id` (any earlier one stops working), valid for
/// `webauthn.enrolment_code_ttl_secs`.
pub async fn issue(
    dir: &SqlDirectory,
    config: &Config,
    identity_id: &str,
    matricule: &str,
    username: Option<String>,
    by: &str,
) -> anyhow::Result<HrCode> {
    let code = new_code();
    let ttl = i64::try_from(config.webauthn.enrolment_code_ttl_secs).unwrap_or(i64::MAX / 2);
    let expires_at = stamp(time::OffsetDateTime::now_utc() + time::Duration::seconds(ttl));
    dir.put_hr_enrolment_code(identity_id, &hash(&code), &expires_at, by).await?;
    Ok(HrCode {
        matricule: matricule.to_owned(),
        username,
        code,
        expires_at,
        enrol_url: config.endpoint("/account/enrol"),
    })
}

/// The person and issuer of an HR code typed at `/account/enrol`, if it is one and has not
/// expired; the code is used up either way.
pub async fn take(
    dir: &SqlDirectory,
    code: &str,
) -> Result<Option<(String, String)>, vigie_core::directory::DirectoryError> {
    if normal_code(code).is_empty() {
        return Ok(None);
    }
    dir.take_hr_enrolment_code(&hash(code), &stamp(time::OffsetDateTime::now_utc())).await
}
