//! The HR export parser: what HR gets told when their file is wrong, and property tests.
use proptest::prelude::*;
use vigie_core::IdNat;
use vigie_core::directory::Affectation;
use vigie_directory_sql::import::HEADER;
use vigie_directory_sql::{CsvError, HrRow, parse_hr_csv};

const EXAMPLE: &str = include_str!("../examples/hr-export.csv");

fn error(input: &str) -> CsvError {
    match parse_hr_csv(input) {
        Err(e) => e,
        Ok(rows) => panic!("expected an error, parsed {rows:?}"),
    }
}

fn with_row(row: &str) -> String {
    format!("{HEADER}\n{row}\n")
}

#[test]
fn the_example_export_parses() {
    let rows = parse_hr_csv(EXAMPLE).unwrap();
    assert_eq!(rows.len(), 5);
    let camille = &rows[0];
    assert_eq!(camille.line, 2);
    assert_eq!(camille.matricule, "004512");
    assert_eq!(camille.family_name, "Lefèvre");
    assert_eq!(camille.idnat, Some(IdNat::parse("810002004512").unwrap()));
    assert_eq!(
        camille.units,
        vec![Affectation { uf: "UF1234".into(), share: 60 }, Affectation { uf: "UF2201".into(), share: 40 }]
    );
    assert_eq!(camille.username.as_deref(), Some("clefevre"));
    assert_eq!(rows[2].grade.as_deref(), Some("Praticien hospitalier, chef de service"));
    let ines = &rows[3];
    assert_eq!((ines.idnat.as_ref(), ines.username.as_ref()), (None, None));
}

#[test]
fn columns_may_come_in_any_order_and_values_are_trimmed() {
    let input = "\u{feff}username , units,idnat,grade,metier,birth_date,given_name,family_name,matricule\n\
                 jdoe, UF1 : 30 ; UF2:70 ; ,,,,, Jeanne , Doe , 42 \n";
    let rows = parse_hr_csv(input).unwrap();
    assert_eq!(
        rows,
        vec![HrRow {
            line: 2,
            matricule: "42".into(),
            family_name: "Doe".into(),
            given_name: "Jeanne".into(),
            birth_date: None,
            metier: None,
            grade: None,
            idnat: None,
            units: vec![Affectation { uf: "UF1".into(), share: 30 }, Affectation { uf: "UF2".into(), share: 70 }],
            username: Some("jdoe".into()),
            start_at: None,
            end_at: None,
            sponsor: None,
            kind: None,
            roles: None,
        }]
    );
}

#[test]
fn blank_lines_and_rows_of_empty_cells_are_skipped() {
    let input = format!("{HEADER}\n\n1,A,B,,,,,,\n,,,,,,,,\n\n2,C,D,,,,,,\n");
    let rows = parse_hr_csv(&input).unwrap();
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 6]);
    // Likewise with Windows line ends, and errors after blank lines.
    let input = format!("{HEADER}\r\n\r\n1,A,B,,,,,,\r\n\r\n\r\n2,C,D,,,,2123,,\r\n");
    assert_eq!((error(&input).line, error(&input).column), (6, Some("idnat")));
}

#[test]
fn a_mac_export_with_carriage_returns_only_names_its_lines() {
    // Found by the `hr_csv` fuzz target: every row used to be reported on line 1.
    let input = format!("{HEADER}\r1,A,B,,,,,,\r\r2,C,D,,,,,,\r3,E,F,,,,2123,,\r");
    assert_eq!((error(&input).line, error(&input).column), (5, Some("idnat")));
    let rows = parse_hr_csv(&input.replace(",2123,", ",,")).unwrap();
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 4, 5]);
}

#[test]
fn a_header_only_file_has_no_rows_and_an_empty_file_is_refused() {
    assert_eq!(parse_hr_csv(HEADER).unwrap(), vec![]);
    let e = error("");
    assert_eq!((e.line, e.column), (1, None));
    assert!(e.reason.contains("empty"), "{e}");
}

#[test]
fn a_bad_idnat_is_reported_at_its_line_and_column() {
    let input = format!("{HEADER}\n1,A,B,,,,,,\n2,C,D,,,,2123,,\n");
    let e = error(&input);
    assert_eq!(
        e.to_string(),
        "line 3, column `idnat`: idNat must start with 0, 1, 3, 4, 5, 6 or 8 (type of \
         identifier), found '2'"
    );
}

#[test]
fn unknown_missing_and_repeated_columns_are_refused() {
    let e = error(&format!("{HEADER},service\n"));
    assert_eq!((e.line, e.column), (1, None));
    assert!(e.reason.contains("unknown column `service`"), "{e}");

    let e = error("matricule,family_name,given_name,birth_date,metier,grade,idnat,username\n");
    assert!(e.reason.contains("missing column `units`"), "{e}");

    let e = error(&format!("{HEADER},grade\n"));
    assert!(e.reason.contains("column `grade` appears twice"), "{e}");
}

#[test]
fn a_semicolon_separated_file_is_recognised() {
    let e = error(&format!("{}\n", HEADER.replace(',', ";")));
    assert!(e.reason.contains("','"), "{e}");
}

#[test]
fn a_row_with_the_wrong_number_of_values_names_its_line() {
    let e = error(&with_row("1,Martin,Paul,1980-01-01,Médecin,PH,Chef de service,,,"));
    assert_eq!((e.line, e.column), (2, None));
    assert!(e.reason.contains("expected 9 values"), "{e}");
    assert!(e.reason.contains("double quotes"), "{e}");
}

#[test]
fn bad_values_name_their_column() {
    for (row, column, expected) in [
        (",A,B,,,,,,", "matricule", "empty"),
        ("1,,B,,,,,,", "family_name", "empty"),
        ("1,A,,,,,,,", "given_name", "empty"),
        ("1,A,B,14/03/1979,,,,,", "birth_date", "YYYY-MM-DD"),
        ("1,A,B,1979-13-01,,,,,", "birth_date", "not a calendar date"),
        ("1,A,B,,,,,UF1:60;UF2:50,", "units", "110%"),
        ("1,A,B,,,,,UF1:0,", "units", "from 1 to 100"),
        ("1,A,B,,,,,UF1:101,", "units", "from 1 to 100"),
        ("1,A,B,,,,,UF1:soixante,", "units", "\"soixante\""),
        ("1,A,B,,,,,UF1=60,", "units", "like UF1234:60"),
        ("1,A,B,,,,,UF1:50;UF1:10,", "units", "twice"),
        ("1,A,B,,,,,UF 1:50,", "units", "unit code"),
        ("1,A,B,,,,,,jean dupont", "username", "username"),
    ] {
        let e = error(&with_row(row));
        assert_eq!((e.line, e.column), (2, Some(column)), "{row}: {e}");
        assert!(e.reason.contains(expected), "{row}: {e}");
    }
}

#[test]
fn duplicates_within_the_file_point_to_the_first_occurrence() {
    for (second, column) in
        [("1,C,D,,,,,,", "matricule"), ("2,C,D,,,,810002004512,,", "idnat"), ("2,C,D,,,,,,ab", "username")]
    {
        let input = format!("{HEADER}\n1,A,B,,,,810002004512,,ab\n{second}\n");
        let e = error(&input);
        assert_eq!((e.line, e.column), (3, Some(column)), "{e}");
        assert!(e.reason.contains("line 2"), "{e}");
    }
}

#[test]
fn a_value_spanning_lines_is_refused_at_the_line_its_row_starts() {
    let input = format!("{HEADER}\n\n1,A,\"B\nB\",,,,,,\n");
    let e = error(&input);
    assert_eq!((e.line, e.column), (3, Some("given_name")), "{e}");
    assert!(e.reason.contains("line break"), "{e}");
}

fn text() -> impl Strategy<Value = String> {
    // Names with spaces, commas, quotes and accents; no surrounding blanks (they are trimmed).
    "[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ ,'\"-]{0,15}[A-Za-zÀ-ÿ]"
}

fn optional(s: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(s)
}

fn units() -> impl Strategy<Value = Vec<Affectation>> {
    proptest::collection::btree_map("[A-Z0-9_-]{1,8}", 1u8..=100, 0..4).prop_filter_map(
        "shares add up to at most 100",
        |units| {
            let total: u32 = units.values().map(|s| u32::from(*s)).sum();
            (total <= 100).then(|| units.into_iter().map(|(uf, share)| Affectation { uf, share }).collect())
        },
    )
}

/// The life-cycle columns: instants as stored (UTC, to the second), the start before the end.
fn life() -> impl Strategy<Value = (Option<String>, Option<String>, Option<String>, Option<String>)> {
    let stamp = |t: i64| vigie_directory_sql::lifecycle::stamp(time::OffsetDateTime::from_unix_timestamp(t).unwrap());
    (
        proptest::option::of(0i64..4_000_000_000),
        proptest::option::of(1i64..1_000_000_000),
        optional("[A-Z0-9]{1,10}"),
        optional(proptest::sample::select(&vigie_directory_sql::lifecycle::PERSON_KINDS[..]).prop_map(String::from)),
    )
        .prop_map(move |(start, length, sponsor, kind)| {
            let end = length.map(|l| start.unwrap_or(0) + l);
            (start.map(stamp), end.map(stamp), sponsor, kind)
        })
}

fn row() -> impl Strategy<Value = HrRow> {
    (
        "[A-Za-z0-9][A-Za-z0-9 ./-]{0,10}[A-Za-z0-9]",
        text(),
        text(),
        optional((1900i32..2100, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))),
        optional(text()),
        optional(text()),
        optional("(8[0-9]{11}|0[0-9]{9}|3[0-9]{9}/[A-Z0-9-]{1,10})"),
        units(),
        optional("[A-Za-z0-9._@-]{1,20}"),
        life(),
        // The roles' labels, sorted as the parser gives them.
        proptest::sample::subsequence(vec!["cards", "fido2", "provisioning"], 0..=3)
            .prop_map(|r| r.into_iter().map(String::from).collect::<Vec<_>>()),
    )
        .prop_map(
            |(matricule, family_name, given_name, birth_date, metier, grade, idnat, units, username, life, roles)| {
                HrRow {
                    line: 0,
                    matricule,
                    family_name,
                    given_name,
                    birth_date,
                    metier,
                    grade,
                    idnat: idnat.map(|s| IdNat::parse(&s).expect("generated idNat is valid")),
                    units,
                    username,
                    start_at: life.0,
                    end_at: life.1,
                    sponsor: life.2,
                    kind: life.3,
                    roles: Some(roles),
                }
            },
        )
}

fn write_csv(rows: &[HrRow]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(HEADER.split(',').chain(vigie_directory_sql::import::LIFECYCLE_HEADER.split(','))).unwrap();
    for r in rows {
        let units = r.units.iter().map(|u| format!("{}:{}", u.uf, u.share)).collect::<Vec<_>>().join(";");
        writer
            .write_record([
                r.matricule.as_str(),
                &r.family_name,
                &r.given_name,
                r.birth_date.as_deref().unwrap_or(""),
                r.metier.as_deref().unwrap_or(""),
                r.grade.as_deref().unwrap_or(""),
                r.idnat.as_ref().map_or("", IdNat::as_str),
                &units,
                r.username.as_deref().unwrap_or(""),
                r.start_at.as_deref().unwrap_or(""),
                r.end_at.as_deref().unwrap_or(""),
                r.sponsor.as_deref().unwrap_or(""),
                r.kind.as_deref().unwrap_or(""),
                &r.roles.as_deref().unwrap_or_default().join(";"),
            ])
            .unwrap();
    }
    String::from_utf8(writer.into_inner().unwrap()).unwrap()
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(input in "\\PC{0,300}") {
        let _ = parse_hr_csv(&input);
    }

    #[test]
    fn arbitrary_rows_under_a_valid_header_never_panic(body in "[ -~\n\"éÀ;:,]{0,400}") {
        let input = format!("{HEADER}\n{body}");
        if let Err(e) = parse_hr_csv(&input) {
            prop_assert!(e.line >= 1);
        }
    }

    #[test]
    fn valid_rows_round_trip(rows in proptest::collection::vec(row(), 0..8)) {
        // Keys are unique within an export.
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<HrRow> = rows
            .into_iter()
            .filter(|r| {
                let keys = [
                    Some(format!("matricule {}", r.matricule)),
                    r.idnat.as_ref().map(|i| format!("idnat {i}")),
                    r.username.as_ref().map(|u| format!("username {u}")),
                ];
                let fresh = keys.iter().flatten().all(|k| !seen.contains(k));
                seen.extend(keys.into_iter().flatten());
                fresh
            })
            .collect();
        let input = write_csv(&rows);
        let parsed = parse_hr_csv(&input).unwrap();
        // Generated values hold no line break: row i is on line i + 2.
        let without_lines: Vec<HrRow> = parsed.iter().map(|r| HrRow { line: 0, ..r.clone() }).collect();
        prop_assert_eq!(without_lines, rows);
        prop_assert!(parsed.iter().zip(2..).all(|(r, line)| r.line == line));
    }
}
