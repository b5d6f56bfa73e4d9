//! The national identifier of a health professional (`idNat_PS`), parsed once at the edge.
//!
//! Prefixes per the ANS FHIR IG `ps-id-nat`: `0` ADELI, `1` cabinet ADELI / internal id,
//! `3` FINESS / internal id, `4` SIREN, `5` SIRET, `6` cabinet RPPS, `8` RPPS. Structure ids
//! carry a `/` followed by an internal identifier (e.g. `500000001815646/CPAT00045`).
//! The IG's pattern says digits, but ADELI numbers start with the département code, and
//! Corsica's are `2A`/`2B`: real CPS certificates carry CNs such as `00B7010446`, so capital
//! letters are accepted after the prefix.
use std::fmt;

/// A validated `idNat_PS`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNat(String);

/// Why a string is not an `idNat_PS`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdNatError {
    /// Empty input.
    #[error("idNat is empty")]
    Empty,
    /// Over 64 characters.
    #[error("idNat is longer than 64 characters")]
    TooLong,
    /// The first character is not a known type prefix.
    #[error("idNat must start with 0, 1, 3, 4, 5, 6 or 8 (type of identifier), found {0:?}")]
    UnknownPrefix(char),
    /// The national part (before any `/`) must be digits or capital letters.
    #[error("idNat must be digits or capital letters after its prefix (then optionally '/' and an internal id)")]
    NotDigits,
    /// The internal part after `/` must be ASCII letters, digits or `-`.
    #[error("the internal part of an idNat (after '/') must be non-empty ASCII letters, digits or '-'")]
    BadInternalPart,
}

impl IdNat {
    /// Parses an `idNat_PS`.
    pub fn parse(s: &str) -> Result<Self, IdNatError> {
        let first = s.chars().next().ok_or(IdNatError::Empty)?;
        if s.len() > 64 {
            return Err(IdNatError::TooLong);
        }
        if !matches!(first, '0' | '1' | '3' | '4' | '5' | '6' | '8') {
            return Err(IdNatError::UnknownPrefix(first));
        }
        let (national, internal) = match s.split_once('/') {
            Some((n, i)) => (n, Some(i)),
            None => (s, None),
        };
        if national.len() < 2 || !national.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
            return Err(IdNatError::NotDigits);
        }
        if let Some(i) = internal
            && (i.is_empty() || !i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(IdNatError::BadInternalPart);
        }
        Ok(Self(s.to_owned()))
    }

    /// The identifier as it appears in certificates and claims.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `8` + RPPS: the professional is registered in the RPPS.
    pub fn is_rpps(&self) -> bool {
        self.0.starts_with('8')
    }
}

impl fmt::Display for IdNat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for IdNat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for IdNat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        IdNat::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rpps_adeli_and_structure_ids_parse() {
        assert!(IdNat::parse("899700427869").unwrap().is_rpps());
        assert!(!IdNat::parse("0123456789").unwrap().is_rpps());
        assert_eq!(IdNat::parse("500000001815646/CPAT00045").unwrap().as_str(), "500000001815646/CPAT00045");
    }

    #[test]
    fn corsican_adeli_numbers_carry_letters() {
        // A CPS of a professional registered in Haute-Corse (2B): CN = 0 + ADELI.
        let id = IdNat::parse("00B7010446").unwrap();
        assert_eq!(id.as_str(), "00B7010446");
        assert!(!id.is_rpps());
        assert!(IdNat::parse("02A1234567").is_ok());
    }

    #[test]
    fn garbage_is_refused_with_the_reason() {
        assert_eq!(IdNat::parse(""), Err(IdNatError::Empty));
        assert_eq!(IdNat::parse("2123"), Err(IdNatError::UnknownPrefix('2')));
        assert_eq!(IdNat::parse("8abc"), Err(IdNatError::NotDigits));
        assert_eq!(IdNat::parse("8 12"), Err(IdNatError::NotDigits));
        assert_eq!(IdNat::parse("8"), Err(IdNatError::NotDigits));
        assert_eq!(IdNat::parse("3123/"), Err(IdNatError::BadInternalPart));
        assert_eq!(IdNat::parse("3123/a b"), Err(IdNatError::BadInternalPart));
        assert_eq!(IdNat::parse(&"8".repeat(65)), Err(IdNatError::TooLong));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in "\\PC{0,80}") {
            if let Ok(id) = IdNat::parse(&s) {
                prop_assert_eq!(id.as_str(), s.as_str());
                prop_assert_eq!(IdNat::parse(id.as_str()), Ok(id));
            }
        }

        #[test]
        fn every_rpps_number_parses(n in "[0-9]{11}") {
            let id = format!("8{n}");
            prop_assert!(IdNat::parse(&id).unwrap().is_rpps());
        }
    }
}
