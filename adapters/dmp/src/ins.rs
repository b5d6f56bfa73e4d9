//! The patient's INS-NIR (NIR of 13 characters + 2-digit control key; the type is vigie-core's),
//! and the key of a NIR for tests that make patients.

pub use vigie_core::dmp::{InsError, InsNir};

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
