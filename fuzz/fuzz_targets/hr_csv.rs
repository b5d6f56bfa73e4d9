//! HR exports uploaded for import (`vigie_directory_sql::parse_hr_csv`): what is accepted
//! respects the directory's invariants and reads back the same once written out again.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use vigie_core::IdNat;
use vigie_directory_sql::{HrRow, parse_hr_csv};

const HEADER: [&str; 13] = [
    "matricule",
    "family_name",
    "given_name",
    "birth_date",
    "metier",
    "grade",
    "idnat",
    "units",
    "username",
    "start_date",
    "end_date",
    "sponsor",
    "kind",
];

/// The rows as an export with every column (the life-cycle ones too), one row per line.
fn write(rows: &[HrRow]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER).expect("writing to memory");
    for r in rows {
        let units: Vec<String> = r.units.iter().map(|a| format!("{}:{}", a.uf, a.share)).collect();
        w.write_record([
            r.matricule.as_str(),
            &r.family_name,
            &r.given_name,
            r.birth_date.as_deref().unwrap_or_default(),
            r.metier.as_deref().unwrap_or_default(),
            r.grade.as_deref().unwrap_or_default(),
            r.idnat.as_ref().map(IdNat::as_str).unwrap_or_default(),
            &units.join(";"),
            r.username.as_deref().unwrap_or_default(),
            r.start_at.as_deref().unwrap_or_default(),
            r.end_at.as_deref().unwrap_or_default(),
            r.sponsor.as_deref().unwrap_or_default(),
            r.kind.as_deref().unwrap_or_default(),
        ])
        .expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("UTF-8 in, UTF-8 out")
}

fuzz_target!(|input: &str| {
    // Lines end with `\r\n`, `\n` or a lone `\r`, as records do in the csv crate.
    let line_ends = input.as_bytes().windows(2).filter(|w| w[0] == b'\n' || (w[0] == b'\r' && w[1] != b'\n')).count()
        + usize::from(matches!(input.as_bytes().last(), Some(b'\n' | b'\r')));
    let last_line = 1 + line_ends as u64;
    let rows = match parse_hr_csv(input) {
        Ok(rows) => rows,
        Err(e) => {
            assert!((1..=last_line).contains(&e.line), "error on line {} of {last_line}: {e}", e.line);
            assert!(e.column.is_none_or(|c| HEADER.contains(&c)));
            return;
        }
    };
    let mut matricules = HashSet::new();
    let mut usernames = HashSet::new();
    let mut idnats = HashSet::new();
    let mut previous_line = 1;
    for r in &rows {
        assert!(r.line > previous_line && r.line <= last_line, "row line {} after {previous_line}", r.line);
        previous_line = r.line;
        assert!(matricules.insert(&r.matricule), "matricule {:?} twice", r.matricule);
        assert!(!r.matricule.is_empty() && r.matricule.chars().count() <= 64);
        assert!(!r.family_name.trim().is_empty() && !r.given_name.trim().is_empty());
        for text in [&r.matricule, &r.family_name, &r.given_name].into_iter().chain(&r.metier).chain(&r.grade) {
            assert!(!text.chars().any(char::is_control), "control character in {text:?}");
        }
        if let Some(u) = &r.username {
            assert!(usernames.insert(u), "username {u:?} twice");
        }
        if let Some(id) = &r.idnat {
            assert!(idnats.insert(id), "idNat {id} twice");
            assert_eq!(IdNat::parse(id.as_str()).as_ref(), Ok(id));
        }
        if let Some(d) = &r.birth_date {
            assert_eq!(d.len(), 10);
        }
        // Instants are stored to the second in UTC, so that they compare as text.
        for at in [&r.start_at, &r.end_at].into_iter().flatten() {
            assert_eq!((at.len(), at.ends_with('Z')), (20, true), "{at}");
        }
        if let (Some(start), Some(end)) = (&r.start_at, &r.end_at) {
            assert!(start < end, "{start} .. {end}");
        }
        let mut ufs = HashSet::new();
        for a in &r.units {
            assert!((1..=100).contains(&a.share));
            assert!(ufs.insert(&a.uf), "unit {} twice", a.uf);
        }
        assert!(r.units.iter().map(|a| u32::from(a.share)).sum::<u32>() <= 100);
    }

    let written = write(&rows);
    let reread =
        parse_hr_csv(&written).unwrap_or_else(|e| panic!("accepted rows written out are refused: {e}\n{written}"));
    assert_eq!(reread.len(), rows.len());
    for (i, (a, b)) in rows.iter().zip(&reread).enumerate() {
        assert_eq!(b.line, i as u64 + 2);
        assert_eq!(HrRow { line: b.line, ..a.clone() }, *b);
    }
});
