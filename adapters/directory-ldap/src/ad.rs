//! Active Directory's account states, read two ways: from the entry's attributes (any server
//! holding them, e.g. OpenLDAP with AD's attributes, which accepts the bind of a disabled
//! account), and from the sub-code AD writes into a refused bind's diagnostic (`data 533`).

/// Why the directory says an account may not log in, though the password may be right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountState {
    /// `userAccountControl` ACCOUNTDISABLE (0x2); AD's `data 533`.
    Disabled,
    /// `lockoutTime` > 0 or LOCKOUT (0x10); AD's `data 775`; OpenLDAP's `pwdAccountLockedTime`.
    Locked,
    /// `accountExpires` in the past; AD's `data 701`.
    Expired,
    /// `pwdLastSet = 0` (must change at next logon) or the password expired; AD's `data 773`
    /// and `data 532`.
    MustChangePassword,
}

impl AccountState {
    /// What the log says.
    pub fn reason(self) -> &'static str {
        match self {
            AccountState::Disabled => "directory account disabled",
            AccountState::Locked => "directory account locked",
            AccountState::Expired => "directory account expired",
            AccountState::MustChangePassword => "directory password must be changed",
        }
    }
}

/// [MS-ADTS] 2.2.16 userAccountControl bits.
const ACCOUNTDISABLE: u32 = 0x2;
const LOCKOUT: u32 = 0x10;
/// `accountExpires` of an account that never expires: 0 or 0x7FFFFFFFFFFFFFFF ([MS-ADA1]).
const NEVER: i64 = i64::MAX;
/// 100 ns intervals between 1601-01-01 (Windows FILETIME) and 1970-01-01.
const FILETIME_UNIX_EPOCH: i64 = 116_444_736_000_000_000;

/// The state an entry's AD attributes say, first of disabled, locked, expired, must change;
/// `None` when they allow the login (or are absent). `now` in Unix seconds.
pub fn state_of(attr: &dyn Fn(&str) -> Option<String>, now: i64) -> Option<AccountState> {
    let number = |name: &str| attr(name).and_then(|v| v.trim().parse::<i64>().ok());
    let uac = number("userAccountControl").unwrap_or(0) as u32;
    if uac & ACCOUNTDISABLE != 0 {
        return Some(AccountState::Disabled);
    }
    if uac & LOCKOUT != 0 || number("lockoutTime").is_some_and(|t| t > 0) || attr("pwdAccountLockedTime").is_some() {
        return Some(AccountState::Locked);
    }
    if let Some(expires) = number("accountExpires")
        && expires != 0
        && expires != NEVER
        && (expires - FILETIME_UNIX_EPOCH) / 10_000_000 <= now
    {
        return Some(AccountState::Expired);
    }
    if number("pwdLastSet") == Some(0) {
        return Some(AccountState::MustChangePassword);
    }
    None
}

/// The state in an AD bind refusal (result 49, diagnostic `80090308: LdapErr: DSID-0C09041C,
/// comment: AcceptSecurityContext error, data 533, v4563`); `None` for a wrong password
/// (`data 52e`), an unknown user (`525`) or a diagnostic that names no state.
pub fn state_of_bind_refusal(diagnostic: &str) -> Option<AccountState> {
    let code = diagnostic.split("data ").nth(1)?.split([',', ' ']).next()?.to_ascii_lowercase();
    match code.as_str() {
        "533" => Some(AccountState::Disabled),
        "775" => Some(AccountState::Locked),
        "701" => Some(AccountState::Expired),
        "773" | "532" => Some(AccountState::MustChangePassword),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn state(pairs: &[(&str, &str)], now: i64) -> Option<AccountState> {
        let m: HashMap<&str, &str> = pairs.iter().copied().collect();
        state_of(&|k| m.get(k).map(|v| v.to_string()), now)
    }

    #[test]
    fn each_ad_attribute_state_is_read() {
        let now = 1_780_000_000;
        assert_eq!(state(&[("userAccountControl", "514")], now), Some(AccountState::Disabled));
        assert_eq!(
            state(&[("userAccountControl", "512"), ("lockoutTime", "133000000000000000")], now),
            Some(AccountState::Locked)
        );
        assert_eq!(state(&[("userAccountControl", "512"), ("lockoutTime", "0")], now), None);
        // 2020-01-01 as FILETIME: in the past.
        assert_eq!(state(&[("accountExpires", "132223104000000000")], now), Some(AccountState::Expired));
        assert_eq!(
            state(&[("accountExpires", "9223372036854775807"), ("pwdLastSet", "0")], now),
            Some(AccountState::MustChangePassword)
        );
        assert_eq!(state(&[("accountExpires", "0"), ("pwdLastSet", "133000000000000000")], now), None);
        assert_eq!(state(&[("pwdAccountLockedTime", "20261205120000Z")], now), Some(AccountState::Locked));
    }

    #[test]
    fn ad_bind_sub_codes_name_the_state_and_a_wrong_password_names_none() {
        let d = |code: &str| {
            format!("80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error, data {code}, v4563")
        };
        assert_eq!(state_of_bind_refusal(&d("533")), Some(AccountState::Disabled));
        assert_eq!(state_of_bind_refusal(&d("775")), Some(AccountState::Locked));
        assert_eq!(state_of_bind_refusal(&d("701")), Some(AccountState::Expired));
        assert_eq!(state_of_bind_refusal(&d("773")), Some(AccountState::MustChangePassword));
        assert_eq!(state_of_bind_refusal(&d("52e")), None);
        assert_eq!(state_of_bind_refusal("Invalid credentials"), None);
    }
}
