//! Whether the names on a card are the agent's names: the coherence check HR makes when binding a
//! card (seeds 000: "Nom de l'agent = Nom présent sur la carte").
//!
//! Cards print names in capitals without accents (`LE GALL`, `ELODIE`); HR software keeps them
//! as typed (`Le Gall`, `Élodie`, `Le-Gall`). Two names match when they are the same letters once
//! accents, case and separators (space, hyphen, apostrophe, dot) are set aside.

/// Whether a card's surname and given name (`SN`, `GN` of its certificate) name the agent whose
/// directory names are `family_name` and `given_name`. Both pairs must match; an empty name never
/// matches (a card without names cannot prove whose it is).
pub fn names_match(card_surname: &str, card_given: &str, family_name: &str, given_name: &str) -> bool {
    let (sn, gn, family, given) = (fold(card_surname), fold(card_given), fold(family_name), fold(given_name));
    !sn.is_empty() && !gn.is_empty() && sn == family && gn == given
}

/// The comparable form of a name: capital letters (and digits) without accents, separators
/// removed. Letters outside Latin-1 and Latin Extended-A are kept upper-cased as they are.
pub fn fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if is_separator(c) || is_combining_mark(c) {
            continue;
        }
        // Through the lower case: a compatibility letter such as the ångström sign (U+212B) is its
        // own capital but lower-cases to `å`, which the table knows; folding a folded name must
        // change nothing.
        for lower in c.to_lowercase() {
            match base_letter(lower) {
                Some(base) => out.push_str(base),
                None => out.extend(lower.to_uppercase().filter(|u| !is_combining_mark(*u))),
            }
        }
    }
    out
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '\'' | '.' | '\u{2019}' | '\u{2018}' | '\u{2010}' | '\u{2011}' | '\u{00B4}')
}

/// Combining diacritical marks (U+0300–U+036F): what a decomposed `É` (`E` + U+0301) leaves.
fn is_combining_mark(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

/// The unaccented capital(s) of a Latin letter with a diacritic or a ligature.
fn base_letter(c: char) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("ÀÁÂÃÄÅàáâãäåĀāĂăĄą", "A"),
        ("ÆæǼǽ", "AE"),
        ("ÇçĆćĈĉĊċČč", "C"),
        ("ÐðĎďĐđ", "D"),
        ("ÈÉÊËèéêëĒēĔĕĖėĘęĚě", "E"),
        ("ĜĝĞğĠġĢģ", "G"),
        ("ĤĥĦħ", "H"),
        ("ÌÍÎÏìíîïĨĩĪīĬĭĮįİı", "I"),
        ("Ĳĳ", "IJ"),
        ("Ĵĵ", "J"),
        ("Ķķ", "K"),
        ("ĹĺĻļĽľĿŀŁł", "L"),
        ("ÑñŃńŅņŇň", "N"),
        ("ÒÓÔÕÖØòóôõöøŌōŎŏŐő", "O"),
        ("Œœ", "OE"),
        ("ŔŕŖŗŘř", "R"),
        ("ŚśŜŝŞşŠšſ", "S"),
        ("ß", "SS"),
        ("ŢţŤťŦŧ", "T"),
        ("ÙÚÛÜùúûüŨũŪūŬŭŮůŰűŲų", "U"),
        ("Ŵŵ", "W"),
        ("ÝýÿŶŷŸ", "Y"),
        ("ŹźŻżŽž", "Z"),
        ("Þþ", "TH"),
    ];
    if c.is_ascii() {
        return None;
    }
    TABLE.iter().find(|(letters, _)| letters.contains(c)).map(|(_, base)| *base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Found by the sponsorship answers' property test: `Åව` (U+212B) folded to `Å`, whose lower
    /// case `å` then folded to `A`.
    #[test]
    fn a_compatibility_letter_folds_as_the_letter_it_stands_for() {
        assert_eq!(fold("\u{212B}ngstr\u{00F6}m"), "ANGSTROM");
        assert_eq!(fold("\u{212A}elvin"), "KELVIN");
        assert_eq!(fold(&fold("\u{212B}\u{0DC0}").to_lowercase()), fold("\u{212B}\u{0DC0}"));
    }

    #[test]
    fn accents_case_and_separators_do_not_matter() {
        assert!(names_match("LE GALL", "ELODIE", "Le Gall", "Élodie"));
        assert!(names_match("LE-GALL", "ELODIE", "Le Gall", "Élodie"));
        assert!(names_match("D'ALMEIDA", "JEAN PIERRE", "d’Almeida", "Jean-Pierre"));
        assert!(names_match("LEFEVRE", "FRANCOISE", "Lefèvre", "Françoise"));
        assert!(names_match("NOEL", "ZOE", "Noël", "Zoé"));
        assert!(names_match("OEHLER", "CLEO", "Œhler", "Cléo"));
        // A decomposed accent (E + U+0301), as some HR exports write it.
        assert!(names_match("DUPRE", "REMI", "Dupre\u{301}", "Re\u{301}mi"));
    }

    #[test]
    fn different_people_do_not_match() {
        assert!(!names_match("MARTIN", "CAMILLE", "Martin", "Camila"));
        assert!(!names_match("MARTIN", "CAMILLE", "Martine", "Camille"));
        // Names swapped between fields are not the same person's card.
        assert!(!names_match("CAMILLE", "MARTIN", "Martin", "Camille"));
        // A card without names proves nothing.
        assert!(!names_match("", "", "", ""));
        assert!(!names_match(" - ", "CAMILLE", "", "Camille"));
    }

    /// An ASCII name with some letters given an accent and its case changed.
    fn dressed(name: &str, accents: &[bool], lower: bool) -> String {
        name.chars()
            .zip(accents.iter().chain(std::iter::repeat(&false)))
            .map(|(c, &accent)| {
                let c = match (c, accent) {
                    ('E', true) => 'É',
                    ('A', true) => 'À',
                    ('C', true) => 'Ç',
                    ('O', true) => 'Ô',
                    ('U', true) => 'Ü',
                    ('I', true) => 'Ï',
                    (c, _) => c,
                };
                if lower { c.to_lowercase().next().unwrap_or(c) } else { c }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn a_name_matches_itself_dressed_with_accents_case_and_separators(
            family in "[A-Z]{1,12}( [A-Z]{1,10})?",
            given in "[A-Z]{1,12}(-[A-Z]{1,10})?",
            accents in proptest::collection::vec(any::<bool>(), 0..24),
            lower in any::<bool>(),
        ) {
            let card_family = family.replace(' ', "-");
            let card_given = given.replace('-', " ");
            prop_assert!(names_match(&card_family, &card_given, &dressed(&family, &accents, lower), &dressed(&given, &accents, !lower)));
            prop_assert!(names_match(&family, &given, &family, &given));
        }

        #[test]
        fn names_with_different_letters_never_match(a in "[A-Z]{1,12}", b in "[A-Z]{1,12}", given in "[A-Z]{1,8}") {
            prop_assume!(a != b);
            prop_assert!(!names_match(&a, &given, &b, &given));
            prop_assert!(!names_match(&given, &a, &given, &b));
        }

        #[test]
        fn folding_is_idempotent_and_symmetric(a in "\\PC{0,40}", b in "\\PC{0,40}") {
            prop_assert_eq!(fold(&fold(&a)), fold(&a));
            // The sponsorship answers lower-case what `fold` gives and fold it again.
            prop_assert_eq!(fold(&fold(&a).to_lowercase()), fold(&a));
            prop_assert_eq!(names_match(&a, &b, &a, &b), !fold(&a).is_empty() && !fold(&b).is_empty());
            prop_assert_eq!(names_match(&a, &a, &b, &b), names_match(&b, &b, &a, &a));
        }
    }
}
