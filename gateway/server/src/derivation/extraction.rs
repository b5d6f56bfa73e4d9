//! The RPPS "PS_LibreAcces" personne-activité extraction (reference: annuaire-sante.md §1): one
//! header line, `|`-separated fields with a trailing `|`, one line per professional × activity,
//! read line by line (the real file is ~800 MB–2 GB) into [`RppsEntry`] rows.
//!
//! Columns are found by header name, not position: the 2026 file has 56 names, an older one 52.
//! The encoding is not stated by the ANS (loaders read UTF-8, one third party says Windows-1252):
//! the header decides — valid UTF-8 means UTF-8, else Windows-1252.
use std::io::BufRead;

use vigie_directory_sql::rpps::RppsEntry;

use super::config::OptionalColumns;

/// A line of the file that cannot be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {message}", column.as_ref().map(|c| format!(", column {c:?}")).unwrap_or_default())]
pub struct LineError {
    /// 1 is the header.
    pub line: u64,
    /// The header name of the column at fault, when one is.
    pub column: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

/// How the file's bytes are text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8.
    Utf8,
    /// Windows-1252 (a superset of Latin-1 for the letters of French names).
    Windows1252,
}

impl Encoding {
    /// Its name, as recorded with the load.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Windows1252 => "windows-1252",
        }
    }

    fn decode(self, bytes: &[u8]) -> Option<String> {
        match self {
            Encoding::Utf8 => std::str::from_utf8(bytes).ok().map(str::to_owned),
            Encoding::Windows1252 => Some(bytes.iter().map(|&b| cp1252(b)).collect()),
        }
    }
}

/// Windows-1252: Latin-1 but for 0x80–0x9F (WHATWG encoding index windows-1252).
fn cp1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// Where the columns Vigie reads are in this file.
#[derive(Clone, Debug)]
pub struct Header {
    names: Vec<String>,
    id_type: usize,
    id: usize,
    idnat: usize,
    family: usize,
    given: usize,
    profession: (usize, usize),
    category: (usize, usize),
    savoir_faire: (usize, usize),
    birth_date: Option<usize>,
    activity_start: Option<usize>,
    activity_end: Option<usize>,
}

/// Splits a line into its fields, without the trailing `|` every line ends with.
fn fields(line: &str) -> Vec<&str> {
    line.strip_suffix('|').unwrap_or(line).split('|').collect()
}

impl Header {
    /// Reads the header line; the columns Vigie needs must be there (named as in the public file).
    pub fn parse(line: &str, optional: &OptionalColumns) -> Result<Header, LineError> {
        let names: Vec<String> =
            fields(line.trim_start_matches('\u{feff}')).iter().map(|n| n.trim().to_owned()).collect();
        let find = |name: &str| names.iter().position(|n| n == name);
        let need = |name: &str| {
            find(name).ok_or_else(|| LineError {
                line: 1,
                column: Some(name.to_owned()),
                message:
                    "missing from the header: is this the PS_LibreAcces personne-activité extraction (`|`-separated)?"
                        .into(),
            })
        };
        Ok(Header {
            id_type: need("Type d'identifiant PP")?,
            id: need("Identifiant PP")?,
            idnat: need("Identification nationale PP")?,
            family: need("Nom d'exercice")?,
            given: need("Prénom d'exercice")?,
            profession: (need("Code profession")?, need("Libellé profession")?),
            category: (need("Code catégorie professionnelle")?, need("Libellé catégorie professionnelle")?),
            savoir_faire: (need("Code savoir-faire")?, need("Libellé savoir-faire")?),
            birth_date: find(&optional.birth_date),
            activity_start: find(&optional.activity_start),
            activity_end: find(&optional.activity_end),
            names,
        })
    }

    /// Reads one data line (`today`: `YYYY-MM-DD`, to tell an ended activity).
    pub fn line(&self, line: &str, line_no: u64, today: &str) -> Result<RppsEntry, LineError> {
        let f = fields(line);
        let at = |column: usize, message: String| LineError {
            line: line_no,
            column: self.names.get(column).cloned(),
            message,
        };
        if f.len() != self.names.len() {
            return Err(LineError {
                line: line_no,
                column: None,
                message: format!(
                    "{} fields where the header has {}: a `|` inside a value, or a truncated line",
                    f.len(),
                    self.names.len()
                ),
            });
        }
        let get = |i: usize| f[i].trim();
        let opt = |i: usize| Some(get(i)).filter(|v| !v.is_empty()).map(str::to_owned);
        let (id_type, id, idnat) = (get(self.id_type), get(self.id), get(self.idnat));
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(at(self.id, format!("expected the RPPS or ADELI number, found {id:?}")));
        }
        // annuaire-sante.md §2: `Identification nationale PP` = `Type d'identifiant PP` +
        // `Identifiant PP` (8 + RPPS, 0 + ADELI); a line where they disagree is not trusted.
        if idnat.len() != id_type.len() + id.len() || !idnat.starts_with(id_type) || !idnat.ends_with(id) {
            return Err(at(
                self.idnat,
                format!("{idnat:?} is not `Type d'identifiant PP` ({id_type:?}) followed by `Identifiant PP` ({id:?})"),
            ));
        }
        let family = get(self.family);
        let given = get(self.given);
        if family.is_empty() {
            return Err(at(self.family, "empty: every professional has an exercise name".into()));
        }
        let date = |i: Option<usize>| -> Result<Option<String>, LineError> {
            let Some(i) = i else { return Ok(None) };
            match get(i) {
                "" => Ok(None),
                v => iso_date(v)
                    .map(Some)
                    .ok_or_else(|| at(i, format!("expected a date (JJ/MM/AAAA or AAAA-MM-JJ), found {v:?}"))),
            }
        };
        let activity_end = date(self.activity_end)?;
        Ok(RppsEntry {
            idnat: idnat.to_owned(),
            rpps: id.to_owned(),
            family_name: family.to_owned(),
            given_name: given.to_owned(),
            family_norm: normalise(family),
            given_norm: normalise(given),
            birth_date: date(self.birth_date)?,
            profession_code: opt(self.profession.0),
            profession_label: opt(self.profession.1),
            category_code: opt(self.category.0),
            category_label: opt(self.category.1),
            savoir_faire_code: opt(self.savoir_faire.0),
            savoir_faire_label: opt(self.savoir_faire.1),
            activity_start: date(self.activity_start)?,
            ended: activity_end.as_deref().is_some_and(|end| end < today),
            activity_end,
            line_no,
        })
    }
}

/// `JJ/MM/AAAA` (the ANS files) or `AAAA-MM-JJ` as `AAAA-MM-JJ`, a real calendar date.
fn iso_date(v: &str) -> Option<String> {
    let (y, m, d) = match v.as_bytes() {
        [d1, d2, b'/', m1, m2, b'/', y1, y2, y3, y4] => ([*y1, *y2, *y3, *y4], [*m1, *m2], [*d1, *d2]),
        [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] => ([*y1, *y2, *y3, *y4], [*m1, *m2], [*d1, *d2]),
        _ => return None,
    };
    let num =
        |b: &[u8]| std::str::from_utf8(b).ok().filter(|s| s.bytes().all(|c| c.is_ascii_digit()))?.parse::<u16>().ok();
    let (yy, mm, dd) = (num(&y)?, num(&m)?, num(&d)?);
    let month = time::Month::try_from(u8::try_from(mm).ok()?).ok()?;
    time::Date::from_calendar_date(i32::from(yy), month, u8::try_from(dd).ok()?).ok()?;
    Some(format!("{yy:04}-{mm:02}-{dd:02}"))
}

/// A name as matching compares it: upper case, without accents, hyphens and apostrophes as
/// spaces, one space between words ("Jean-Noël d'Aumale" → "JEAN NOEL D AUMALE").
pub fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let folded: &str = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => "A",
            'ç' | 'Ç' => "C",
            'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => "E",
            'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => "I",
            'ñ' | 'Ñ' => "N",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => "O",
            'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => "U",
            'ý' | 'ÿ' | 'Ý' | 'Ÿ' => "Y",
            'œ' | 'Œ' => "OE",
            'æ' | 'Æ' => "AE",
            'ß' => "SS",
            '-' | '\'' | '’' | '‘' | '`' | '.' | ',' => " ",
            c if c.is_whitespace() => " ",
            c => {
                for u in c.to_uppercase() {
                    out.push(u);
                }
                continue;
            }
        };
        out.push_str(folded);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The extraction read line by line: never more than one line in memory.
pub struct Extraction<R> {
    input: R,
    header: Header,
    encoding: Encoding,
    line_no: u64,
    today: String,
    buf: Vec<u8>,
}

fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, line_no: u64) -> Result<bool, LineError> {
    buf.clear();
    let n = input.read_until(b'\n', buf).map_err(|e| LineError {
        line: line_no,
        column: None,
        message: format!("cannot read the file: {e}"),
    })?;
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(n > 0)
}

impl<R: BufRead> Extraction<R> {
    /// Reads the header (and so the encoding) of the extraction.
    pub fn open(mut input: R, optional: &OptionalColumns, today: &str) -> Result<Self, LineError> {
        let mut buf = Vec::new();
        if !read_line(&mut input, &mut buf, 1)? {
            return Err(LineError {
                line: 1,
                column: None,
                message: "the file is empty: expected the header line".into(),
            });
        }
        let encoding = if std::str::from_utf8(&buf).is_ok() { Encoding::Utf8 } else { Encoding::Windows1252 };
        let text = encoding.decode(&buf).unwrap_or_default();
        let header = Header::parse(&text, optional)?;
        Ok(Extraction { input, header, encoding, line_no: 1, today: today.to_owned(), buf })
    }

    /// The encoding the header showed.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }
}

impl<R: BufRead> Iterator for Extraction<R> {
    type Item = Result<RppsEntry, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.line_no += 1;
            match read_line(&mut self.input, &mut self.buf, self.line_no) {
                Err(e) => return Some(Err(e)),
                Ok(false) => return None,
                Ok(true) if self.buf.is_empty() => continue,
                Ok(true) => {}
            }
            let Some(text) = self.encoding.decode(&self.buf) else {
                return Some(Err(LineError {
                    line: self.line_no,
                    column: None,
                    message: "not UTF-8, though the header is: the file mixes encodings; export it again".into(),
                }));
            };
            return Some(self.header.line(&text, self.line_no, &self.today));
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The 2026 header (annuaire-sante.md §1), C/L expanded to `Code x|Libellé x`.
    pub(crate) const HEADER: &str = "Type d'identifiant PP|Identifiant PP|Identification nationale PP|Code civilité d'exercice|Libellé civilité d'exercice|Code civilité|Libellé civilité|Nom d'exercice|Prénom d'exercice|Code profession|Libellé profession|Code catégorie professionnelle|Libellé catégorie professionnelle|Code type savoir-faire|Libellé type savoir-faire|Code savoir-faire|Libellé savoir-faire|Code mode exercice|Libellé mode exercice|";

    fn line(idnat_type: &str, id: &str, family: &str, given: &str) -> String {
        format!(
            "{idnat_type}|{id}|{idnat_type}{id}|DR|Docteur|M|Monsieur|{family}|{given}|10|Médecin|C|Civil|S|Spécialité ordinale|SM49|Pédiatrie|S|Salarié|"
        )
    }

    fn header() -> Header {
        Header::parse(HEADER, &OptionalColumns::default()).expect("the public header")
    }

    #[test]
    fn a_public_line_reads_with_its_profession_and_specialty() {
        let e = header().line(&line("8", "10001045367", "DUPONT-MARTIN", "Zoé"), 2, "2026-12-01").unwrap();
        assert_eq!((e.idnat.as_str(), e.rpps.as_str()), ("810001045367", "10001045367"));
        assert_eq!((e.family_norm.as_str(), e.given_norm.as_str()), ("DUPONT MARTIN", "ZOE"));
        assert_eq!(e.profession_code.as_deref(), Some("10"));
        assert_eq!(e.savoir_faire_label.as_deref(), Some("Pédiatrie"));
        assert!(!e.ended && e.birth_date.is_none());
    }

    #[test]
    fn a_short_line_and_a_bad_idnat_name_line_and_column() {
        let h = header();
        let e = h.line("8|1000|81000|DR|", 7, "2026-12-01").unwrap_err();
        assert_eq!((e.line, e.column.clone()), (7, None));
        assert!(e.to_string().starts_with("line 7: 4 fields where the header has 19"), "{e}");
        let bad = line("8", "10001045367", "X", "Y").replacen("810001045367", "810001045368", 1);
        let e = h.line(&bad, 9, "2026-12-01").unwrap_err();
        assert_eq!(e.column.as_deref(), Some("Identification nationale PP"), "{e}");
        assert!(e.to_string().starts_with("line 9, column \"Identification nationale PP\""), "{e}");
    }

    #[test]
    fn a_header_without_the_columns_says_which_one_is_missing() {
        let e = Header::parse("Identifiant PP|Nom|", &OptionalColumns::default()).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("Type d'identifiant PP"));
    }

    #[test]
    fn a_windows_1252_file_reads_as_the_same_names() {
        let text = format!("{HEADER}\n{}\n", line("8", "10001045367", "LEFÈVRE", "Zoé"));
        let latin: Vec<u8> = text.chars().map(|c| u8::try_from(u32::from(c)).expect("Latin-1 text")).collect();
        let mut x = Extraction::open(latin.as_slice(), &OptionalColumns::default(), "2026-12-01").unwrap();
        assert_eq!(x.encoding(), Encoding::Windows1252);
        let e = x.next().unwrap().unwrap();
        assert_eq!((e.family_name.as_str(), e.given_norm.as_str()), ("LEFÈVRE", "ZOE"));
        assert!(x.next().is_none());
    }

    #[test]
    fn an_end_date_in_the_past_ends_the_activity() {
        let h = format!("{HEADER}Date de fin d'activité|");
        let h = Header::parse(&h, &OptionalColumns::default()).unwrap();
        let l = format!("{}31/10/2026|", line("8", "10001045367", "A", "B"));
        assert!(h.line(&l, 2, "2026-12-01").unwrap().ended);
        assert!(!h.line(&l, 2, "2026-10-01").unwrap().ended);
        let bad = format!("{}31/02/2026|", line("8", "10001045367", "A", "B"));
        assert_eq!(h.line(&bad, 3, "2026-12-01").unwrap_err().column.as_deref(), Some("Date de fin d'activité"));
    }

    proptest! {
        #[test]
        fn any_line_is_read_or_refused_with_its_line_number(s in "[^\n]{0,300}", n in 2u64..1_000_000) {
            match header().line(&s, n, "2026-12-01") {
                Ok(e) => {
                    prop_assert_eq!(e.line_no, n);
                    prop_assert!(e.idnat.ends_with(&e.rpps));
                }
                Err(e) => prop_assert_eq!(e.line, n),
            }
        }

        #[test]
        fn generated_lines_round_trip(id in "[0-9]{11}", family in "[A-Za-zÀ-ÿ' -]{1,30}", given in "[A-Za-zÀ-ÿ-]{0,20}") {
            prop_assume!(!family.trim().is_empty());
            let e = header().line(&line("8", &id, &family, &given), 5, "2026-12-01").unwrap();
            prop_assert_eq!(e.idnat, format!("8{id}"));
            prop_assert_eq!(e.family_name, family.trim());
        }

        #[test]
        fn normalising_is_idempotent_and_yields_no_accent_nor_lower_case(s in "\\PC{0,40}") {
            let n = normalise(&s);
            prop_assert_eq!(normalise(&n), n.clone());
            // Letters with no upper case (mathematical script `𝒻`) stay as they are.
            prop_assert!(!n.chars().any(|c| "éèàçôœ-'".contains(c) || c.is_ascii_lowercase()), "{}", n);
            prop_assert!(!n.starts_with(' ') && !n.ends_with(' ') && !n.contains("  "));
        }
    }
}
