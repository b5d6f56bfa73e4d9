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

    /// idNat_PS values of the reference documents, and whether each is `8` + RPPS.
    const KNOWN_VALID: [(&str, bool); 8] = [
        ("810102727017", true),               // annuaire-sante.md §2: the IG's example, RPPS 10102727017
        ("899700427869", true),               // psc.md: a PSC SubjectNameID (EdC tests)
        ("899900063480", true),               // dmp-vihf-cps.md: the AIR example's NameID
        ("899700075122", true),               // dmp-vihf-cps.md: a CPS subject CN
        ("500000001815646/CPAT00045", false), // psc.md: 5 + SIRET / internal id
        ("3760021832/000000018", false),      // dmp-vihf-cps.md: a CPE CN, 3 + FINESS / internal id
        ("00B7010446", false),                // dmp-vihf-cps.md: a legacy CPS CN, 0 + ADELI (2B)
        ("02A1234567", false),                // 0 + ADELI of Corse-du-Sud (2A)
    ];

    #[test]
    fn the_reference_documents_examples_parse() {
        for (s, rpps) in KNOWN_VALID {
            let id = IdNat::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!((id.as_str(), id.is_rpps()), (s, rpps));
            assert_eq!(serde_json::from_value::<IdNat>(serde_json::json!(s)).unwrap(), id);
        }
    }

    #[test]
    fn garbage_is_refused_with_the_reason() {
        let cases = [
            ("", IdNatError::Empty),
            ("2123", IdNatError::UnknownPrefix('2')),
            ("7123", IdNatError::UnknownPrefix('7')),
            ("9123", IdNatError::UnknownPrefix('9')),
            ("A0123", IdNatError::UnknownPrefix('A')),
            (" 810102727017", IdNatError::UnknownPrefix(' ')),
            ("/123", IdNatError::UnknownPrefix('/')),
            ("8abc", IdNatError::NotDigits),
            ("8 12", IdNatError::NotDigits),
            ("8", IdNatError::NotDigits),
            ("8/123", IdNatError::NotDigits),
            ("8-10102727017", IdNatError::NotDigits),
            ("810102727017 ", IdNatError::NotDigits),
            ("00b7010446", IdNatError::NotDigits),
            ("3123/", IdNatError::BadInternalPart),
            ("3123/a b", IdNatError::BadInternalPart),
            ("3760021832/000000018/1", IdNatError::BadInternalPart),
            ("3760021832/0_18", IdNatError::BadInternalPart),
        ];
        for (s, e) in cases {
            assert_eq!(IdNat::parse(s), Err(e), "{s:?}");
        }
        assert_eq!(IdNat::parse(&"8".repeat(65)), Err(IdNatError::TooLong));
        assert_eq!(IdNat::parse(&"8".repeat(64)).map(|i| i.is_rpps()), Ok(true));
        assert!(serde_json::from_value::<IdNat>(serde_json::json!("2123")).is_err());
    }

    /// The documented shapes (annuaire-sante.md §2, psc.md, dmp-vihf-cps.md): `8` + RPPS (11
    /// digits), `0` + ADELI (département, `2A`/`2B` in Corsica, then 7 digits), `1` cabinet ADELI,
    /// `3` FINESS, `4` SIREN (9 digits), `5` SIRET (14), `6` cabinet RPPS (11), structures with
    /// `/` and an internal id. With whether each is an RPPS one.
    fn documented() -> impl Strategy<Value = (String, bool)> {
        prop_oneof![
            "8[0-9]{11}".prop_map(|s| (s, true)),
            "0([0-9]{2}|2A|2B)[0-9]{7}".prop_map(|s| (s, false)),
            "[134][0-9]{9}(/[A-Za-z0-9-]{1,20})?".prop_map(|s| (s, false)),
            "5[0-9]{14}(/[A-Za-z0-9-]{1,20})?".prop_map(|s| (s, false)),
            "6[0-9]{11}(/[A-Za-z0-9-]{1,20})?".prop_map(|s| (s, false)),
        ]
    }

    /// Characters allowed in no part of an idNat.
    fn never_allowed() -> BoxedStrategy<char> {
        prop_oneof!["[ _.+:,;'\"\t]", "[éÉß€\u{a0}\u{0}]"].prop_map(|s| s.chars().next().unwrap()).boxed()
    }

    /// Off in the national part: also small letters and `-` (allowed in the internal part).
    fn not_national() -> impl Strategy<Value = char> {
        prop_oneof![prop::char::range('a', 'z'), Just('-'), never_allowed()]
    }

    /// Off in the internal part: also a second `/`.
    fn not_internal() -> impl Strategy<Value = char> {
        prop_oneof![Just('/'), never_allowed()]
    }

    proptest! {
        #[test]
        fn every_documented_shape_parses((s, rpps) in documented()) {
            let id = IdNat::parse(&s);
            prop_assert_eq!(id.as_ref().map(|i| (i.as_str(), i.is_rpps())), Ok((s.as_str(), rpps)));
            prop_assert_eq!(serde_json::from_value::<IdNat>(serde_json::json!(s)).ok(), id.ok());
        }

        #[test]
        fn one_character_off_in_the_national_part_is_not_digits((s, _) in documented(), at in any::<prop::sample::Index>(), c in not_national()) {
            let national = s.split('/').next().unwrap().len();
            let at = 1 + at.index(national - 1);
            let off = format!("{}{c}{}", &s[..at], &s[at + 1..]);
            prop_assert_eq!(IdNat::parse(&off), Err(IdNatError::NotDigits), "{:?}", off);
        }

        #[test]
        fn another_first_character_is_an_unknown_prefix((s, _) in documented(), c in "[279A-Za-z/ +-]") {
            let c = c.chars().next().unwrap();
            prop_assert_eq!(IdNat::parse(&format!("{c}{}", &s[1..])), Err(IdNatError::UnknownPrefix(c)));
        }

        #[test]
        fn one_character_off_in_the_internal_part_is_refused(national in "3[0-9]{9}", internal in "[A-Za-z0-9-]{1,20}", at in any::<prop::sample::Index>(), c in not_internal()) {
            let at = at.index(internal.len());
            let id = format!("{national}/{}{c}{}", &internal[..at], &internal[at + 1..]);
            prop_assert_eq!(IdNat::parse(&id), Err(IdNatError::BadInternalPart), "{:?}", id);
            prop_assert_eq!(IdNat::parse(&format!("{national}/")), Err(IdNatError::BadInternalPart));
        }

        #[test]
        fn a_documented_shape_lengthened_parses_up_to_64_characters_only((s, rpps) in documented(), extra in 0usize..40) {
            // More digits after the prefix: the national part has no fixed length in the parser.
            let long = format!("{}{}{}", &s[..1], "7".repeat(extra), &s[1..]);
            let expected = if long.len() <= 64 { Ok(rpps) } else { Err(IdNatError::TooLong) };
            prop_assert_eq!(IdNat::parse(&long).map(|i| i.is_rpps()), expected);
            prop_assert_eq!(IdNat::parse(&s[..1]), Err(IdNatError::NotDigits), "a prefix alone");
        }
    }
}
