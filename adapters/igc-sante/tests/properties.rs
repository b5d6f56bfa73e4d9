//! Property tests: the certificate parser takes bytes from the network, and subjects round-trip.
mod common;

use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use vigie_igc_sante::{CardKind, card_identity, subject_identity};
use x509_parser::prelude::{FromDer, X509Name};

fn valid_cps() -> &'static [u8] {
    static DER: OnceLock<Vec<u8>> = OnceLock::new();
    DER.get_or_init(|| certificate(&[(SN, "PHARMACH0007512"), (CN, "899700075122"), (GN, "CAROLE")], &[]))
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = card_identity(&bytes);
    }

    #[test]
    fn corrupted_certificates_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut der = valid_cps().to_vec();
        let i = at.index(der.len());
        der[i] = byte;
        let _ = card_identity(&der);
        der.truncate(cut.index(der.len()));
        let _ = card_identity(&der);
    }

    #[test]
    fn cps_subjects_round_trip(
        // Letters after the prefix occur on real cards (00B7010446).
        idnat in "[08][0-9A-Z]{9,11}",
        surname in "[A-Z0-9]{1,20}",
        given_name in "[A-Za-zÀ-ÿ' -]{1,20}",
        title in proptest::option::of("[A-Za-zé -]{1,30}"),
    ) {
        let mut rdns: Vec<&[(u8, &str)]> = Vec::new();
        let first = [(SN, surname.as_str()), (CN, idnat.as_str()), (GN, given_name.as_str())];
        rdns.push(&first);
        let title_rdn = title.as_deref().map(|t| [(TITLE, t)]);
        if let Some(t) = &title_rdn {
            rdns.push(t);
        }
        let der = name_der(&rdns);
        let (_, name) = X509Name::from_der(&der).expect("a DER Name");
        let subject = subject_identity(&name).expect("a CPS subject");
        prop_assert_eq!(subject.kind, CardKind::Cps);
        prop_assert_eq!(subject.idnat.as_ref().map(|i| i.as_str()), Some(idnat.as_str()));
        prop_assert_eq!(subject.idnat.as_ref().map(|i| i.is_rpps()), Some(idnat.starts_with('8')));
        prop_assert_eq!(subject.cn, idnat);
        prop_assert_eq!(subject.surname, Some(surname));
        prop_assert_eq!(subject.given_name, Some(given_name));
        prop_assert_eq!(subject.title, title);
    }

    #[test]
    fn cpe_subjects_round_trip(
        structure in "[0-9]{9,14}",
        employee in "[0-9A-Z]{1,12}",
        organization in "[A-Z0-9 ]{1,30}",
        pseudonym in "[A-Z0-9]{1,20}",
        holder in proptest::option::of(("[A-Z]{1,20}", "[A-Z]{1,20}")),
    ) {
        let cn = format!("3{structure}/{employee}");
        let mut attrs = vec![(O, organization.as_str()), (OU, structure.as_str()), (PSEUDONYM, pseudonym.as_str())];
        if let Some((sn, gn)) = &holder {
            attrs.extend([(SN, sn.as_str()), (GN, gn.as_str())]);
        }
        attrs.push((CN, cn.as_str()));
        let rdns: Vec<&[(u8, &str)]> = attrs.chunks(1).collect();
        let der = name_der(&rdns);
        let (_, name) = X509Name::from_der(&der).expect("a DER Name");
        let subject = subject_identity(&name).expect("a CPE subject");
        let kind = if holder.is_some() { CardKind::CpeNominative } else { CardKind::CpeNonNominative };
        prop_assert_eq!(subject.kind, kind);
        prop_assert_eq!(subject.idnat.as_ref().map(|i| i.as_str()), Some(cn.as_str()));
        prop_assert_eq!(subject.cn, cn);
        prop_assert_eq!(subject.organization, Some(organization));
        prop_assert_eq!(subject.structure_id, Some(structure));
        prop_assert_eq!(subject.pseudonym, Some(pseudonym));
        prop_assert_eq!(subject.surname, holder.as_ref().map(|h| h.0.clone()));
        prop_assert_eq!(subject.given_name, holder.map(|h| h.1));
    }
}
