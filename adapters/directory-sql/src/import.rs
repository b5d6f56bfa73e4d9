//! The HR export: a CSV file of the establishment's staff, parsed without I/O by
//! [`parse_hr_csv`] and loaded into the directory, all or nothing, by [`import_rows`].
//!
//! The header row names the columns, in any order (docs/identity-lifecycle.md), these required:
//! `matricule,family_name,given_name,birth_date,metier,grade,idnat,units,username`, and the
//! life-cycle ones optional: `start_date,end_date,sponsor,kind,roles`.
//! Blank values are absent values; `matricule`, `family_name` and `given_name` are required.
//! `units` lists affectations as `UF1234:60;UF2201:40` (shares in percent, 1 to 100, at most
//! 100 in all); `birth_date` is `YYYY-MM-DD`; `idnat` is an `idNat_PS`; the dates are
//! `YYYY-MM-DD` or RFC 3339 instants (`crate::lifecycle::parse_instant`); `sponsor` a matricule;
//! `roles` the roles the feed grants, `;`-separated (a file without the column leaves roles alone).
use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use vigie_core::IdNat;
use vigie_core::directory::{Account, Affectation, DirectoryError, Identity};

use crate::directory::{failed, has_account, store_account, store_identity};
use crate::{SqlDirectory, lifecycle, rules};

/// One person of the HR export, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HrRow {
    /// Line of the file the row starts on, for messages.
    pub line: u64,
    /// HR matricule: the key of the identity.
    pub matricule: String,
    /// Family name.
    pub family_name: String,
    /// Given name.
    pub given_name: String,
    /// Birth date, `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// Métier (profession).
    pub metier: Option<String>,
    /// Grade.
    pub grade: Option<String>,
    /// National identifier.
    pub idnat: Option<IdNat>,
    /// Affectations, in the order of the file.
    pub units: Vec<Affectation>,
    /// Login name of the account to create if the person has none.
    pub username: Option<String>,
    /// First instant of activity, RFC 3339 UTC to the second (`start_date`).
    pub start_at: Option<String>,
    /// Instant access ends, RFC 3339 UTC to the second (`end_date`: a date ends with its day).
    pub end_at: Option<String>,
    /// Matricule of the responsible manager.
    pub sponsor: Option<String>,
    /// Kind of person: `staff`, `intern`, `contractor`, `agency`, `mission`.
    pub kind: Option<String>,
    /// The roles the feed grants (labels of `vigie_core::roles::Role`, sorted, once each); `None`
    /// when the file has no `roles` column, so the feed leaves the person's roles alone.
    pub roles: Option<Vec<String>>,
}

impl HrRow {
    /// The identity this row describes (its directory id is left for the directory to find).
    pub fn identity(&self) -> Identity {
        Identity {
            id: String::new(),
            matricule: self.matricule.clone(),
            family_name: self.family_name.clone(),
            given_name: self.given_name.clone(),
            birth_date: self.birth_date.clone(),
            metier: self.metier.clone(),
            grade: self.grade.clone(),
            idnat: self.idnat.clone(),
            units: self.units.clone(),
        }
    }
}

/// Why an HR export was refused: the first problem found, with its line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvError {
    /// Line of the file, from 1.
    pub line: u64,
    /// Column concerned, if the problem is in one value.
    pub column: Option<&'static str>,
    /// What is wrong and, where it helps, what is expected.
    pub reason: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(column) => write!(f, "line {}, column `{column}`: {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

impl std::error::Error for CsvError {}

/// The columns of the export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Matricule,
    FamilyName,
    GivenName,
    BirthDate,
    Metier,
    Grade,
    Idnat,
    Units,
    Username,
    StartDate,
    EndDate,
    Sponsor,
    Kind,
    Roles,
}

/// How many columns an export may have.
const COLUMNS: usize = 14;
/// The required columns are the first ones of [`Column::ALL`].
const REQUIRED: usize = 9;

impl Column {
    const ALL: [Column; COLUMNS] = [
        Column::Matricule,
        Column::FamilyName,
        Column::GivenName,
        Column::BirthDate,
        Column::Metier,
        Column::Grade,
        Column::Idnat,
        Column::Units,
        Column::Username,
        Column::StartDate,
        Column::EndDate,
        Column::Sponsor,
        Column::Kind,
        Column::Roles,
    ];

    fn name(self) -> &'static str {
        match self {
            Column::Matricule => "matricule",
            Column::FamilyName => "family_name",
            Column::GivenName => "given_name",
            Column::BirthDate => "birth_date",
            Column::Metier => "metier",
            Column::Grade => "grade",
            Column::Idnat => "idnat",
            Column::Units => "units",
            Column::Username => "username",
            Column::StartDate => "start_date",
            Column::EndDate => "end_date",
            Column::Sponsor => "sponsor",
            Column::Kind => "kind",
            Column::Roles => "roles",
        }
    }
}

/// The header row, required columns in their usual order (any order is accepted).
pub const HEADER: &str = "matricule,family_name,given_name,birth_date,metier,grade,idnat,units,username";
/// The optional life-cycle columns.
pub const LIFECYCLE_HEADER: &str = "start_date,end_date,sponsor,kind,roles";

/// Parses an HR export. Stops at the first problem, naming its line and column.
pub fn parse_hr_csv(input: &str) -> Result<Vec<HrRow>, CsvError> {
    // Spreadsheets often start UTF-8 files with a byte order mark.
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        // Field counts are checked here, to report them with their line.
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input.as_bytes());
    let mut records = reader.records();
    let mut lines = Lines::new(input);

    let header = match records.next() {
        None => {
            return Err(CsvError {
                line: 1,
                column: None,
                reason: format!("the file is empty: expected the header row `{HEADER}`"),
            });
        }
        Some(record) => record.map_err(|e| lines.syntax_error(e))?,
    };
    let header_line = lines.of(&header);
    let positions = column_positions(&header, header_line)?;

    let mut rows = Vec::new();
    let mut matricules: HashMap<String, u64> = HashMap::new();
    let mut usernames: HashMap<String, u64> = HashMap::new();
    let mut idnats: HashMap<IdNat, u64> = HashMap::new();
    for record in records {
        let record = record.map_err(|e| lines.syntax_error(e))?;
        // Spreadsheets pad exports with lines of empty cells.
        if record.iter().all(str::is_empty) {
            continue;
        }
        let line = lines.of(&record);
        if record.len() != header.len() {
            return Err(CsvError {
                line,
                column: None,
                reason: format!(
                    "expected {} values as in the header, found {} (a value with a comma must be \
                     in double quotes)",
                    header.len(),
                    record.len()
                ),
            });
        }
        let value = |c: Column| positions[c as usize].and_then(|p| record.get(p)).unwrap_or_default();
        let err = |c: Column, reason: String| CsvError { line, column: Some(c.name()), reason };
        let optional = |c: Column| Some(value(c)).filter(|v| !v.is_empty()).map(str::to_owned);

        let matricule = value(Column::Matricule).to_owned();
        rules::check_matricule(&matricule).map_err(|r| err(Column::Matricule, r))?;
        if let Some(first) = matricules.insert(matricule.clone(), line) {
            return Err(err(Column::Matricule, format!("matricule {matricule:?} already appears on line {first}")));
        }
        let family_name = value(Column::FamilyName).to_owned();
        rules::check_text("family name", &family_name, true).map_err(|r| err(Column::FamilyName, r))?;
        let given_name = value(Column::GivenName).to_owned();
        rules::check_text("given name", &given_name, true).map_err(|r| err(Column::GivenName, r))?;
        let birth_date = optional(Column::BirthDate);
        if let Some(date) = &birth_date {
            rules::check_birth_date(date).map_err(|r| err(Column::BirthDate, r))?;
        }
        let metier = optional(Column::Metier);
        if let Some(metier) = &metier {
            rules::check_text("métier", metier, false).map_err(|r| err(Column::Metier, r))?;
        }
        let grade = optional(Column::Grade);
        if let Some(grade) = &grade {
            rules::check_text("grade", grade, false).map_err(|r| err(Column::Grade, r))?;
        }
        let idnat = match optional(Column::Idnat) {
            None => None,
            Some(s) => {
                let idnat = IdNat::parse(&s).map_err(|e| err(Column::Idnat, e.to_string()))?;
                if let Some(first) = idnats.insert(idnat.clone(), line) {
                    return Err(err(Column::Idnat, format!("idNat {idnat} already appears on line {first}")));
                }
                Some(idnat)
            }
        };
        let units = parse_units(value(Column::Units)).map_err(|r| err(Column::Units, r))?;
        let username = optional(Column::Username);
        if let Some(username) = &username {
            rules::check_username(username).map_err(|r| err(Column::Username, r))?;
            if let Some(first) = usernames.insert(username.clone(), line) {
                return Err(err(Column::Username, format!("username {username:?} already appears on line {first}")));
            }
        }
        let start_at = optional(Column::StartDate)
            .map(|d| lifecycle::parse_instant(&d, lifecycle::DateEdge::Start))
            .transpose()
            .map_err(|r| err(Column::StartDate, r))?;
        let end_at = optional(Column::EndDate)
            .map(|d| lifecycle::parse_instant(&d, lifecycle::DateEdge::End))
            .transpose()
            .map_err(|r| err(Column::EndDate, r))?;
        if let (Some(start), Some(end)) = (&start_at, &end_at)
            && end <= start
        {
            return Err(err(Column::EndDate, format!("the end ({end}) is not after the start ({start})")));
        }
        let sponsor = optional(Column::Sponsor);
        if let Some(sponsor) = &sponsor {
            rules::check_matricule(sponsor).map_err(|r| err(Column::Sponsor, format!("the sponsor's {r}")))?;
        }
        let kind = optional(Column::Kind);
        if let Some(kind) = &kind {
            lifecycle::check_person_kind(kind).map_err(|r| err(Column::Kind, r))?;
        }
        let roles = positions[Column::Roles as usize]
            .map(|_| parse_roles(value(Column::Roles)))
            .transpose()
            .map_err(|r| err(Column::Roles, r))?;
        rows.push(HrRow {
            line,
            matricule,
            family_name,
            given_name,
            birth_date,
            metier,
            grade,
            idnat,
            units,
            username,
            start_at,
            end_at,
            sponsor,
            kind,
            roles,
        });
    }
    Ok(rows)
}

/// Line numbers of records. The csv crate's own leave out blank lines, so lines are counted
/// here from the byte offsets of records, which only move forward.
struct Lines<'a> {
    input: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(input: &'a str) -> Self {
        Lines { input: input.as_bytes(), offset: 0, line: 1 }
    }

    fn at(&mut self, position: Option<&csv::Position>) -> u64 {
        let mut byte = position
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(self.offset)
            .clamp(self.offset, self.input.len());
        // The reported offset is before the blank lines skipped; no record starts with one.
        while matches!(self.input.get(byte), Some(b'\n' | b'\r')) {
            byte += 1;
        }
        // A line ends as the csv crate ends records: `\r\n`, `\n`, or a lone `\r` (the
        // "CSV (Macintosh)" of spreadsheets).
        let line_ends = (self.offset..byte)
            .filter(|&i| match self.input[i] {
                b'\n' => true,
                b'\r' => self.input.get(i + 1) != Some(&b'\n'),
                _ => false,
            })
            .count();
        self.line += line_ends as u64;
        self.offset = byte;
        self.line
    }

    fn of(&mut self, record: &csv::StringRecord) -> u64 {
        self.at(record.position())
    }

    fn syntax_error(&mut self, e: csv::Error) -> CsvError {
        CsvError { line: self.at(e.position()), column: None, reason: e.to_string() }
    }
}

/// Where each [`Column`] is in the file, indexed by `Column as usize`.
fn column_positions(header: &csv::StringRecord, line: u64) -> Result<[Option<usize>; COLUMNS], CsvError> {
    let err = |reason: String| CsvError { line, column: None, reason };
    if header.len() == 1 && header.get(0).is_some_and(|h| h.contains(';')) {
        return Err(err(format!(
            "the header has no comma but has semicolons: export the file with ',' as separator \
             (`;` only separates units); expected `{HEADER}`"
        )));
    }
    let mut positions: [Option<usize>; COLUMNS] = [None; COLUMNS];
    for (i, name) in header.iter().enumerate() {
        let column = Column::ALL.into_iter().find(|c| c.name() == name).ok_or_else(|| {
            err(format!(
                "unknown column `{name}`: the columns are `{HEADER}`, and optionally `{LIFECYCLE_HEADER}` \
                 (docs/identity-lifecycle.md)"
            ))
        })?;
        if positions[column as usize].replace(i).is_some() {
            return Err(err(format!("column `{name}` appears twice")));
        }
    }
    for column in &Column::ALL[..REQUIRED] {
        if positions[*column as usize].is_none() {
            return Err(err(format!(
                "missing column `{}`: the columns are `{HEADER}` (in any order; values may be \
                 blank)",
                column.name()
            )));
        }
    }
    Ok(positions)
}

/// `UF1234:60;UF2201:40` into affectations, in that order.
fn parse_units(s: &str) -> Result<Vec<Affectation>, String> {
    let mut units = Vec::new();
    for item in s.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let (uf, share) = item
            .split_once(':')
            .ok_or_else(|| format!("{item:?} must be a unit and its share, like UF1234:60 (units separated by ';')"))?;
        let (uf, share) = (uf.trim(), share.trim());
        rules::check_uf(uf)?;
        let share = share.parse::<u8>().ok().filter(|s| (1..=100).contains(s)).ok_or_else(|| {
            format!(
                "the share of unit {uf} must be a whole number of percent from 1 to 100, \
                     found {share:?}"
            )
        })?;
        units.push(Affectation { uf: uf.to_owned(), share });
    }
    rules::check_units(&units)?;
    Ok(units)
}

/// `cards;fido2` into the roles' labels, sorted, each once.
fn parse_roles(s: &str) -> Result<Vec<String>, String> {
    let mut roles = Vec::new();
    for item in s.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let role = vigie_core::roles::Role::parse(item).map_err(|e| format!("{e} (roles separated by ';')"))?;
        roles.push(role.as_str().to_owned());
    }
    roles.sort();
    roles.dedup();
    Ok(roles)
}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Identities new to the directory.
    pub identities_created: usize,
    /// Identities already in the directory (same matricule), overwritten by the export.
    pub identities_updated: usize,
    /// Accounts created, without password or TOTP, for rows with a username whose identity
    /// had no account.
    pub accounts_created: usize,
}

/// Loads parsed rows into the directory in one transaction: on error nothing is imported.
///
/// Identities are upserted by matricule (their affectations replaced); an account is created
/// for a row with a username when its identity has none. Existing accounts are left as they
/// are, even when the username differs; identities missing from the export are not touched.
pub async fn import_rows(dir: &SqlDirectory, rows: &[HrRow]) -> Result<ImportReport, DirectoryError> {
    let mut report = ImportReport::default();
    let mut tx = dir.begin_write().await?;
    for row in rows {
        let at_row = |e: DirectoryError| match e {
            DirectoryError::Invalid(m) => DirectoryError::Invalid(format!(
                "line {} (matricule {:?}): {m}; nothing was imported",
                row.line, row.matricule
            )),
            DirectoryError::Unavailable(m) => DirectoryError::Unavailable(format!(
                "line {} (matricule {:?}): {m}; nothing was imported",
                row.line, row.matricule
            )),
            fenced @ DirectoryError::Fenced { .. } => fenced,
        };
        let (id, created) = store_identity(&mut tx, &row.identity()).await.map_err(at_row)?;
        if created {
            report.identities_created += 1;
        } else {
            report.identities_updated += 1;
        }
        if let Some(roles) = &row.roles {
            crate::lifecycle_store::set_feed_roles(&mut tx, &id, roles).await.map_err(at_row)?;
        }
        if let Some(username) = &row.username
            && !has_account(&mut tx, &id).await.map_err(at_row)?
        {
            let account = Account {
                identity_id: id,
                username: username.clone(),
                password_hash: None,
                totp_secret: None,
                disabled: false,
            };
            store_account(&mut tx, &account).await.map_err(at_row)?;
            report.accounts_created += 1;
        }
    }
    tx.commit().await.map_err(|e| failed("saving the import", &e))?;
    Ok(report)
}
