//! Where a changed-since sync starts: the mark a pass leaves (AD's update sequence number of one
//! DC, or the latest `modifyTimestamp` read), its text form kept by Vigie between passes, and
//! the filter it gives the next pass.
use crate::LdapUser;
use crate::filter;

/// What a listing read.
#[derive(Debug)]
pub struct Listing {
    pub users: Vec<LdapUser>,
    /// Where the next changed-since pass starts; `None`: this directory gives none (every pass
    /// is then a full one).
    pub mark: Option<SyncMark>,
    /// Every entry was read (no usable mark was given): entries not listed are gone.
    pub full: bool,
}

/// The directory's position after a pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncMark {
    /// Active Directory: the DC's `highestCommittedUSN` before the pass ([MS-ADTS] 3.1.1.3.2.1)
    /// and the DC (`dsServiceName`). USNs are per DC: another DC's mark is not used.
    Usn { server: String, usn: u64 },
    /// OpenLDAP: the latest `entryCSN` read (a change sequence number: time to the microsecond,
    /// a counter, the server id; unique and growing, so "after it" misses nothing and reads
    /// nothing twice).
    Csn(String),
    /// Any other directory: the latest `modifyTimestamp` read (GeneralizedTime, RFC 4517 §3.3.13).
    Timestamp(String),
}

impl SyncMark {
    /// The filter of the entries changed since this mark, if the directory (whose current USN
    /// mark is `now`, if it has one) can answer it.
    pub(crate) fn filter(&self, now: Option<&SyncMark>) -> Option<String> {
        match (self, now) {
            (SyncMark::Usn { server, usn }, Some(SyncMark::Usn { server: here, .. })) if server == here => {
                Some(format!("(uSNChanged>={})", usn + 1))
            }
            // Strictly after: `!(<=)`, RFC 4515 having no `>`.
            (SyncMark::Csn(c), None) => Some(format!("(!(entryCSN<={}))", filter::escape_value(c))),
            // `>=`: timestamps have a resolution of a second; what changed in the mark's second
            // after the pass read it is read again (a pass is idempotent), never missed.
            (SyncMark::Timestamp(t), None) => Some(format!("(modifyTimestamp>={})", filter::escape_value(t))),
            _ => None,
        }
    }

    /// The latest of `since` (a CSN mark) and the CSNs read; `None` when neither. CSNs are of
    /// one fixed-width form (`YYYYmmddHHMMSS.uuuuuuZ#counter#sid#mod`): compared as text.
    pub(crate) fn latest_csn(since: Option<&SyncMark>, read: impl Iterator<Item = String>) -> Option<SyncMark> {
        let before = match since {
            Some(SyncMark::Csn(c)) => Some(c.clone()),
            _ => None,
        };
        before.into_iter().chain(read.filter(|c| valid_csn(c))).max().map(SyncMark::Csn)
    }

    /// The latest of `since` (a timestamp mark) and the timestamps read; `None` when neither.
    pub(crate) fn latest_timestamp(since: Option<&SyncMark>, read: impl Iterator<Item = String>) -> Option<SyncMark> {
        let before = match since {
            Some(SyncMark::Timestamp(t)) => Some(t.clone()),
            _ => None,
        };
        // The same server writes them in one form (`YYYYMMDDHHMMSSZ`, or with a fraction on
        // some): compared as numbers of the same width would be, digit by digit.
        before
            .into_iter()
            .chain(read.filter(|t| valid_time(t)))
            .max_by(|a, b| compare_times(a, b))
            .map(SyncMark::Timestamp)
    }

    /// Its text form, kept in Vigie's directory between passes.
    pub fn encode(&self) -> String {
        match self {
            SyncMark::Usn { server, usn } => format!("usn:{usn}:{server}"),
            SyncMark::Csn(c) => format!("csn:{c}"),
            SyncMark::Timestamp(t) => format!("ts:{t}"),
        }
    }

    /// `None` for text no version wrote: the next pass is then a full one.
    pub fn decode(text: &str) -> Option<SyncMark> {
        if let Some(rest) = text.strip_prefix("usn:") {
            let (usn, server) = rest.split_once(':')?;
            return Some(SyncMark::Usn { server: server.to_owned(), usn: usn.parse().ok()? });
        }
        if let Some(c) = text.strip_prefix("csn:") {
            return valid_csn(c).then(|| SyncMark::Csn(c.to_owned()));
        }
        let t = text.strip_prefix("ts:")?;
        valid_time(t).then(|| SyncMark::Timestamp(t.to_owned()))
    }
}

/// An OpenLDAP CSN: a GeneralizedTime with microseconds, then `#`-separated hex fields.
fn valid_csn(c: &str) -> bool {
    let mut parts = c.split('#');
    parts.next().is_some_and(valid_time)
        && parts.clone().count() == 3
        && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A GeneralizedTime as directories write it: 14 digits, an optional fraction, `Z`.
fn valid_time(t: &str) -> bool {
    let Some(body) = t.strip_suffix('Z') else { return false };
    let (whole, fraction) = body.split_once(['.', ',']).unwrap_or((body, "0"));
    whole.len() == 14
        && whole.bytes().all(|b| b.is_ascii_digit())
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

fn compare_times(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |t: &str| {
        let body = t.trim_end_matches('Z');
        let (whole, fraction) = body.split_once(['.', ',']).unwrap_or((body, ""));
        (whole.to_owned(), fraction.trim_end_matches('0').to_owned())
    };
    split(a).cmp(&split(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_reads_back_as_written_and_unknown_text_means_a_full_pass() {
        let usn = SyncMark::Usn { server: "CN=NTDS Settings,CN=DC1,CN=Servers".into(), usn: 41_207 };
        assert_eq!(SyncMark::decode(&usn.encode()), Some(usn));
        let ts = SyncMark::Timestamp("20261205151000Z".into());
        assert_eq!(SyncMark::decode(&ts.encode()), Some(ts));
        let csn = SyncMark::Csn("20261205151000.123456Z#000000#000#000000".into());
        assert_eq!(SyncMark::decode(&csn.encode()), Some(csn.clone()));
        assert_eq!(csn.filter(None).as_deref(), Some("(!(entryCSN<=20261205151000.123456Z#000000#000#000000))"));
        for bad in [
            "csn:20261205151000.1Z#x#0#0",
            "csn:20261205151000Z",
            "",
            "usn:x:dc",
            "ts:2026",
            "ts:20261205151000Z)(uid=*",
            "other:1",
        ] {
            assert_eq!(SyncMark::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_usn_mark_is_used_on_its_own_dc_only_and_a_timestamp_where_there_is_no_usn() {
        let dc1 = SyncMark::Usn { server: "dc1".into(), usn: 100 };
        let now_dc1 = SyncMark::Usn { server: "dc1".into(), usn: 180 };
        let now_dc2 = SyncMark::Usn { server: "dc2".into(), usn: 900 };
        assert_eq!(dc1.filter(Some(&now_dc1)).as_deref(), Some("(uSNChanged>=101)"));
        assert_eq!(dc1.filter(Some(&now_dc2)), None, "another DC numbers its own changes: a full pass");
        assert_eq!(dc1.filter(None), None);
        let ts = SyncMark::Timestamp("20261205151000Z".into());
        assert_eq!(ts.filter(None).as_deref(), Some("(modifyTimestamp>=20261205151000Z)"));
        assert_eq!(ts.filter(Some(&now_dc1)), None);
    }

    #[test]
    fn the_latest_timestamp_is_kept_fractions_compared_and_garbage_ignored() {
        let read = ["20261205151000Z", "20261205151002Z", "junk", "20261205151001.5Z"].map(String::from);
        assert_eq!(
            SyncMark::latest_timestamp(None, read.into_iter()),
            Some(SyncMark::Timestamp("20261205151002Z".into()))
        );
        let since = SyncMark::Timestamp("20261205151002.25Z".into());
        assert_eq!(
            SyncMark::latest_timestamp(Some(&since), ["20261205151002Z".to_owned()].into_iter()),
            Some(since.clone()),
            "nothing newer read: the mark stays"
        );
        assert_eq!(SyncMark::latest_timestamp(None, std::iter::empty()), None);
    }
}
