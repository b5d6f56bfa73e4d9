//! The patient's INS-NIR (NIR of 13 characters + 2-digit control key), checked before it names the
//! DMP the VIHF opens.

use std::fmt;

/// Why an INS-NIR was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsError {
    #[error("the INS-NIR must have 15 characters (NIR 13 + key 2), got {0}")]
    Length(usize),
    #[error(
        "the INS-NIR has {found:?} at position {at}: only digits are allowed (and 2A/2B as the Corsican department)"
    )]
    NotDigit { at: usize, found: char },
    #[error("the INS-NIR starts with {0}: a NIR starts with 1 or 2 (3, 4, 7, 8 for provisional numbers)")]
    Sex(char),
    #[error("the INS-NIR key is {found:02}, the NIR gives {expected:02} (97 - NIR mod 97): check the number")]
    Key { expected: u64, found: u64 },
}

/// A checked INS-NIR, as 15 ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsNir(String);

impl InsNir {
    /// Checks the shape and the key. NIR layout: sex (1), year (2), month (2), department (2,
    /// `2A`/`2B` for Corsica), commune (3), order (3); key = 97 − (NIR mod 97), where for Corsica
    /// the NIR is read with `2A` → `19` and `2B` → `18` (the INSEE rule).
    pub fn parse(s: &str) -> Result<Self, InsError> {
        let n = s.chars().count();
        if n != 15 {
            return Err(InsError::Length(n));
        }
        let b = s.as_bytes(); // 15 chars, and below every one is checked ASCII
        let corsica = match (b[5], b[6]) {
            (b'2', b'A' | b'a') => Some(19u64),
            (b'2', b'B' | b'b') => Some(18u64),
            _ => None,
        };
        for (at, c) in s.chars().enumerate() {
            let letter_ok = corsica.is_some() && at == 6;
            if !(c.is_ascii_digit() || letter_ok) {
                return Err(InsError::NotDigit { at, found: c });
            }
        }
        if !matches!(b[0], b'1' | b'2' | b'3' | b'4' | b'7' | b'8') {
            return Err(InsError::Sex(b[0] as char));
        }
        let digits = |r: std::ops::Range<usize>| r.fold(0u64, |acc, i| acc * 10 + u64::from(b[i] - b'0'));
        let nir = match corsica {
            Some(dept) => digits(0..5) * 100_000_000 + dept * 1_000_000 + digits(7..13),
            None => digits(0..13),
        };
        let expected = 97 - nir % 97;
        let found = digits(13..15);
        if found != expected {
            return Err(InsError::Key { expected, found });
        }
        Ok(InsNir(s.to_ascii_uppercase()))
    }

    /// The 15 characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InsNir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key (97 − NIR mod 97) of a 13-character NIR, for tests making patients' INS-NIRs; `None` if
/// malformed. Written apart from [`InsNir::parse`] so that the tests check the parser against it.
#[cfg(any(test, feature = "test-fixtures"))]
pub fn nir_key(nir13: &str) -> Option<u64> {
    let b = nir13.as_bytes();
    if b.len() != 13 {
        return None;
    }
    let mut n = 0u64;
    for (i, &c) in b.iter().enumerate() {
        let d = match (i, c) {
            (5, b'2') if matches!(b[6], b'A' | b'B') => {
                n = n * 10 + 1;
                if b[6] == b'A' { 9 } else { 8 }
            }
            (6, b'A' | b'B') => continue,
            (_, b'0'..=b'9') => u64::from(c - b'0'),
            _ => return None,
        };
        n = n * 10 + d;
    }
    Some(97 - n % 97)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dmp_kit_test_ins_is_valid() {
        // Reference §1: resource-id example of the official DMP kit.
        assert_eq!(InsNir::parse("207058575627097").unwrap().as_str(), "207058575627097");
    }

    #[test]
    fn corsica_departments_use_19_and_18() {
        let a = "1850".to_string() + "52A" + "004" + "123";
        let key = nir_key(&a).unwrap();
        let expected = 97 - (1_850_519_004_123u64 % 97);
        assert_eq!(key, expected);
        assert!(InsNir::parse(&format!("{a}{key:02}")).is_ok());
        let b = "185052B004123";
        let key = nir_key(b).unwrap();
        assert_eq!(key, 97 - (1_850_518_004_123u64 % 97));
        assert!(InsNir::parse(&format!("{b}{key:02}")).is_ok());
    }

    #[test]
    fn precise_errors() {
        assert_eq!(InsNir::parse("12345"), Err(InsError::Length(5)));
        assert_eq!(InsNir::parse("2070585756270x7"), Err(InsError::NotDigit { at: 13, found: 'x' }));
        assert_eq!(InsNir::parse("20705A575627097"), Err(InsError::NotDigit { at: 5, found: 'A' }));
        assert_eq!(InsNir::parse("207058575627096"), Err(InsError::Key { expected: 97, found: 96 }));
        assert!(matches!(InsNir::parse("507058575627097"), Err(InsError::Sex('5'))));
    }
}
