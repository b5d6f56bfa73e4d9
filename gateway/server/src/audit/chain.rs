//! The hash chain of the trail: how an event becomes a sealed record (its sequence number, the
//! hash of the record before it, its own hash) and how a writer picks the chain up again from the
//! last record of a file (docs/audit.md, "The chain").
//!
//! A record is one JSON line: `{"seq":N,"prev":"<hex>",<the event's fields>,"hash":"<hex>"}`,
//! where `hash` is the SHA-256 of every byte of the line before `,"hash":` (the body) and `prev`
//! the `hash` of record N-1 (64 zeros for the first). Hashing the bytes as written, not a
//! re-serialisation, lets any tool check a line without knowing the event's fields.
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};

use aws_lc_rs::digest;

/// What separates a record's body from its own hash.
pub const HASH_MARK: &str = ",\"hash\":\"";
/// `prev` of the first record of a chain.
pub const GENESIS: [u8; 32] = [0; 32];

/// Where the chain stands: the last record's sequence number and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub seq: u64,
    pub head: [u8; 32],
}

impl Default for Link {
    fn default() -> Self {
        Self { seq: 0, head: GENESIS }
    }
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(2 * bytes.len());
    push_hex(&mut text, bytes);
    text
}

/// Lower-case hex, appended: no allocation per byte (issue 18: two hashes per record, sealed on
/// the writer's thread, which shares the cores with the requests).
fn push_hex(text: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

pub fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Link {
    /// Seals an event (its JSON object) as the next record; returns the line (with its newline).
    pub fn seal(&mut self, event_json: &str) -> String {
        let fields = event_json.strip_prefix('{').and_then(|s| s.strip_suffix('}')).unwrap_or("");
        let seq = self.seq + 1;
        let comma = if fields.is_empty() { "" } else { "," };
        // One allocation for the line: the body, then its hash after it.
        let mut line = String::with_capacity(fields.len() + 200);
        let _ = write!(line, "{{\"seq\":{seq},\"prev\":\"");
        push_hex(&mut line, &self.head);
        let _ = write!(line, "\"{comma}{fields}");
        let hash = sha256(line.as_bytes());
        *self = Link { seq, head: hash };
        line.push_str(HASH_MARK);
        push_hex(&mut line, &hash);
        line.push_str("\"}\n");
        line
    }
}

/// A record read back: what verification and a resuming writer need of a line.
#[derive(Debug, PartialEq, Eq)]
pub struct Sealed {
    pub seq: u64,
    pub prev: [u8; 32],
    /// The hash the line carries.
    pub hash: [u8; 32],
    /// Whether `hash` is the SHA-256 of the line's body (false: the line was edited).
    pub intact: bool,
}

/// Reads a line (without its newline) as a record; `None` when it is not one.
pub fn open(line: &[u8]) -> Option<Sealed> {
    let text = std::str::from_utf8(line).ok()?;
    let at = text.rfind(HASH_MARK)?;
    let (body, tail) = text.split_at(at);
    let hash = unhex(tail[HASH_MARK.len()..].strip_suffix("\"}")?)?;
    #[derive(serde::Deserialize)]
    struct Head {
        seq: u64,
        prev: String,
    }
    let head: Head = serde_json::from_str(text).ok()?;
    Some(Sealed { seq: head.seq, prev: unhex(&head.prev)?, hash, intact: sha256(body.as_bytes()) == hash })
}

/// The chain at the end of a file, and the length of its complete lines. A last line without its
/// newline was being written when the process died and was never acknowledged: the writer cuts
/// it off (`Resume::torn` says how many bytes) rather than chain onto half a record.
pub struct Resume {
    pub link: Link,
    pub len: u64,
    pub torn: u64,
}

/// The last complete record of `file`, read from its end (a trail is large; its tail is not).
pub fn resume(file: &mut std::fs::File) -> std::io::Result<Resume> {
    let size = file.seek(SeekFrom::End(0))?;
    let mut window = 4096u64;
    loop {
        let from = size.saturating_sub(window);
        file.seek(SeekFrom::Start(from))?;
        let mut tail = Vec::new();
        file.take(size - from).read_to_end(&mut tail)?;
        let complete = tail.iter().rposition(|&b| b == b'\n').map(|i| i + 1);
        let Some(end) = complete else {
            if from == 0 {
                return Ok(Resume { link: Link::default(), len: 0, torn: size });
            }
            window *= 4;
            continue;
        };
        let start = tail[..end - 1].iter().rposition(|&b| b == b'\n').map(|i| i + 1);
        if start.is_none() && from > 0 {
            window *= 4;
            continue;
        }
        let line = &tail[start.unwrap_or(0)..end - 1];
        let len = from + end as u64;
        let link = match open(line) {
            Some(r) => Link { seq: r.seq, head: r.hash },
            // A trail written before the chain (plain JSON lines): the chain starts after it.
            None => Link::default(),
        };
        return Ok(Resume { link, len, torn: size - len });
    }
}

/// The first sealed record of the file at `path` (lines before the chain began are skipped).
pub fn first(path: &std::path::Path) -> Option<Sealed> {
    use std::io::BufRead;
    let file = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    file.split(b'\n').map_while(Result::ok).find_map(|line| open(&line))
}

/// The hash of [`first`]: the id of the chain the file starts, or continues (a spool), that
/// checkpoints name.
pub fn first_hash(path: &std::path::Path) -> Option<[u8; 32]> {
    first(path).map(|r| r.hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_line_opens_intact_and_links_to_the_one_before() {
        let mut link = Link::default();
        let first = link.seal(r#"{"kind":"login"}"#);
        let second = link.seal(r#"{"kind":"logout"}"#);
        let a = open(first.trim_end().as_bytes()).unwrap();
        let b = open(second.trim_end().as_bytes()).unwrap();
        assert!(a.intact && b.intact);
        assert_eq!((a.seq, a.prev), (1, GENESIS));
        assert_eq!((b.seq, b.prev), (2, a.hash));
        assert_eq!(link, Link { seq: 2, head: b.hash });
        let v: serde_json::Value = serde_json::from_str(&second).unwrap();
        assert_eq!(v["kind"], "logout", "the event's fields stay at the top level");
    }

    #[test]
    fn a_record_reads_as_its_body_its_hash_in_lower_case_hex() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let line = Link::default().seal(r#"{"kind":"login"}"#);
        let body = format!("{{\"seq\":1,\"prev\":\"{}\",\"kind\":\"login\"", "0".repeat(64));
        assert_eq!(line, format!("{body}{HASH_MARK}{}\"}}\n", hex(&sha256(body.as_bytes()))));
    }

    #[test]
    fn an_edited_field_no_longer_matches_the_hash() {
        let line = Link::default().seal(r#"{"kind":"login","outcome":"failure"}"#);
        let edited = line.replace("failure", "success");
        assert!(!open(edited.trim_end().as_bytes()).unwrap().intact);
    }

    #[test]
    fn a_writer_resumes_after_the_last_complete_line_and_cuts_a_torn_one() {
        let path = std::env::temp_dir().join(format!("vigie-chain-resume-{}", std::process::id()));
        let mut link = Link::default();
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&link.seal(&format!(r#"{{"reason":"event {i} {}"}}"#, "x".repeat(40))));
        }
        let whole = text.len() as u64;
        text.push_str(r#"{"seq":301,"prev":"#);
        std::fs::write(&path, &text).unwrap();
        let r = resume(&mut std::fs::File::open(&path).unwrap()).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!((r.link, r.len, r.torn), (link, whole, text.len() as u64 - whole));
    }
}
