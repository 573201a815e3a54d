//! A portable, self-verifying export of (part of) the log.
//!
//! Text, one record per line, so it survives mail, tickets and diff tools:
//!
//! ```text
//! access-archive v1
//! {"scope":"tenant acme","exported_at_ms":…,"source_head":…}
//! <base64 of one envelope in its canonical encoding>
//! …
//! {"events":N,"heads":{"<stream>":{"version":V,"hash":"<hex>"}},"sha256":"<hex>"}
//! ```
//!
//! The last line names the chain head of every stream in the archive and the
//! SHA-256 of every line before it; a whole-log export adds a checkpoint the
//! service signed over exactly its events (`"checkpoint":"access-checkpoint
//! v1 …"`), which binds the archive to the service's audit key. Verifying needs nothing but the file:
//! each envelope's hash and link to its predecessor are checked (positions
//! must increase; a tenant's export skips other tenants' positions), the heads
//! must be the ones the walk ends on, and the digest must match. The heads
//! can also be compared with a later export or the live log: a history
//! rewritten after the export cannot end on the same heads.

use crate::checkpoint::{Checkpoint, LogDigest};
use access_catalogue::chain::{ChainBreak, ChainVerifier};
use access_catalogue::envelope::Envelope;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};

/// The first line of every archive.
pub const MAGIC: &str = "access-archive v1";

/// What the second line says about where the archive comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// `log` for a whole log, `tenant <id>` for one tenant's streams.
    pub scope: String,
    /// When the export was taken, Unix milliseconds.
    pub exported_at_ms: i64,
    /// The source log's head position when the export started.
    pub source_head: u64,
}

/// One stream's last event in the archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Its stream version.
    pub version: u64,
    /// Its hash, hex.
    pub hash: String,
}

/// The last line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trailer {
    /// How many events the archive holds.
    pub events: u64,
    /// Every stream's head.
    pub heads: BTreeMap<String, Head>,
    /// SHA-256 of every line before this one (each with its newline), hex.
    pub sha256: String,
    /// For a whole-log export: a checkpoint the service signed over exactly
    /// the events exported (see [`crate::checkpoint`]); empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub checkpoint: String,
}

/// What a verified archive holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Where it came from.
    pub header: Header,
    /// Its last line.
    pub trailer: Trailer,
}

/// Why an archive is not what was exported, with the line it was found on.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading or writing the file failed.
    #[error("archive i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A line is not what the format says.
    #[error("line {line}: {what}")]
    Malformed {
        /// 1-based line number.
        line: u64,
        /// In words.
        what: String,
    },
    /// An event breaks its stream's chain.
    #[error("line {line}: {source}")]
    Break {
        /// 1-based line number.
        line: u64,
        /// The break.
        source: ChainBreak,
    },
}

/// Writes an archive, checking the chains as events go in.
pub struct Writer<W: Write> {
    out: W,
    digest: Sha256,
    verifier: ChainVerifier,
    heads: Heads,
    line: u64,
    /// The log digest of the events pushed, for the checkpoint's check.
    log_digest: LogDigest,
}

impl<W: Write> Writer<W> {
    /// Starts an archive with its header.
    pub fn new(out: W, header: &Header) -> Result<Self, ArchiveError> {
        let mut w = Writer {
            out,
            digest: Sha256::new(),
            verifier: ChainVerifier::allowing_gaps(),
            heads: Heads::default(),
            log_digest: LogDigest::default(),
            line: 0,
        };
        w.line(MAGIC)?;
        let header = serde_json::to_string(header).map_err(|e| ArchiveError::Malformed {
            line: 2,
            what: e.to_string(),
        })?;
        w.line(&header)?;
        Ok(w)
    }

    fn line(&mut self, text: &str) -> Result<(), ArchiveError> {
        self.line += 1;
        self.digest.update(text.as_bytes());
        self.digest.update(b"\n");
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Adds one envelope (its canonical encoding, `Envelope::encode`). A break
    /// is refused: an archive of a broken log would verify as broken anyway.
    pub fn push(&mut self, stored: &[u8]) -> Result<(), ArchiveError> {
        let line = self.line + 1;
        let envelope = Envelope::decode(stored).map_err(|e| ArchiveError::Malformed {
            line,
            what: format!("undecodable envelope: {e}"),
        })?;
        self.verifier
            .check(&envelope)
            .map_err(|source| ArchiveError::Break { line, source })?;
        self.heads.note(&envelope);
        self.log_digest.add(&envelope);
        self.line(&STANDARD.encode(stored))
    }

    /// Writes the trailer and returns it.
    pub fn finish(self) -> Result<Trailer, ArchiveError> {
        self.finish_signed(None)
    }

    /// Writes the trailer with the service's `checkpoint` line, which must
    /// cover exactly the events pushed; returns it.
    pub fn finish_signed(mut self, checkpoint: Option<&str>) -> Result<Trailer, ArchiveError> {
        let (events, _) = self.verifier.counts();
        if let Some(line) = checkpoint {
            check_signature(line, &self.log_digest, self.line + 1)?;
        }
        let trailer = Trailer {
            events,
            heads: self.heads.by_name(),
            sha256: hex::encode(self.digest.clone().finalize()),
            checkpoint: checkpoint.unwrap_or_default().to_owned(),
        };
        let text = serde_json::to_string(&trailer).map_err(|e| ArchiveError::Malformed {
            line: self.line + 1,
            what: e.to_string(),
        })?;
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(trailer)
    }
}

/// A checkpoint line that must be signed (under the key it names) over
/// exactly the events `digest` took in.
fn check_signature(line: &str, digest: &LogDigest, at: u64) -> Result<(), ArchiveError> {
    let bad = |what: String| ArchiveError::Malformed { line: at, what };
    let checkpoint = Checkpoint::parse(line).map_err(|e| bad(e.to_string()))?;
    checkpoint
        .verify_signature(None)
        .map_err(|e| bad(e.to_string()))?;
    if checkpoint.state.events != digest.events || checkpoint.state.digest != digest.digest {
        return Err(bad(
            "the signed checkpoint does not cover exactly the archive's events".into(),
        ));
    }
    Ok(())
}

/// The last event of every stream, by name: what the trailer lists (the
/// verifier keeps heads by a folded key, without names).
#[derive(Default)]
struct Heads(HashMap<String, (u64, [u8; 32])>);

impl Heads {
    fn note(&mut self, e: &Envelope) {
        match self.0.get_mut(e.stream.as_str()) {
            Some(head) => *head = (e.stream_version, e.hash),
            None => {
                self.0
                    .insert(e.stream.to_string(), (e.stream_version, e.hash));
            }
        }
    }

    fn by_name(&self) -> BTreeMap<String, Head> {
        self.0
            .iter()
            .map(|(stream, (version, hash))| {
                (
                    stream.clone(),
                    Head {
                        version: *version,
                        hash: hex::encode(hash),
                    },
                )
            })
            .collect()
    }
}

/// Verifies an archive offline; the first problem is named with its line.
pub fn verify(input: impl BufRead) -> Result<Report, ArchiveError> {
    let mut lines = input.lines();
    let mut digest = Sha256::new();
    let mut verifier = ChainVerifier::allowing_gaps();
    let mut heads = Heads::default();
    let mut log_digest = LogDigest::default();
    let malformed = |line: u64, what: &str| ArchiveError::Malformed {
        line,
        what: what.to_owned(),
    };
    let first = lines.next().transpose()?.unwrap_or_default();
    if first != MAGIC {
        return Err(malformed(1, "not an access archive (first line)"));
    }
    digest.update(first.as_bytes());
    digest.update(b"\n");
    let second = lines
        .next()
        .transpose()?
        .ok_or_else(|| malformed(2, "the header is missing"))?;
    let header: Header =
        serde_json::from_str(&second).map_err(|e| malformed(2, &format!("header: {e}")))?;
    digest.update(second.as_bytes());
    digest.update(b"\n");
    let mut number = 2;
    let mut previous: Option<String> = None;
    for line in lines {
        let line = line?;
        number += 1;
        if let Some(event_line) = previous.replace(line) {
            let at = number - 1;
            let bytes = STANDARD
                .decode(event_line.trim())
                .map_err(|_| malformed(at, "not base64"))?;
            let envelope = Envelope::decode(&bytes)
                .map_err(|e| malformed(at, &format!("undecodable envelope: {e}")))?;
            verifier
                .check(&envelope)
                .map_err(|source| ArchiveError::Break { line: at, source })?;
            heads.note(&envelope);
            log_digest.add(&envelope);
            digest.update(event_line.as_bytes());
            digest.update(b"\n");
        }
    }
    let last = previous.ok_or_else(|| malformed(number + 1, "the trailer is missing"))?;
    let trailer: Trailer = serde_json::from_str(&last)
        .map_err(|e| malformed(number, &format!("trailer (was the file cut short?): {e}")))?;
    let (events, _) = verifier.counts();
    if trailer.events != events {
        return Err(malformed(
            number,
            &format!(
                "the trailer counts {} events, the archive holds {events}",
                trailer.events
            ),
        ));
    }
    if trailer.heads != heads.by_name() {
        return Err(malformed(
            number,
            "the chain heads in the trailer are not the ones the events end on",
        ));
    }
    if trailer.sha256 != hex::encode(digest.finalize()) {
        return Err(malformed(
            number,
            "the digest does not match the lines before it",
        ));
    }
    if !trailer.checkpoint.is_empty() {
        check_signature(&trailer.checkpoint, &log_digest, number)?;
    }
    Ok(Report { header, trailer })
}

/// The first `count` envelopes of an archive (lines 3 on), decoded; for an
/// archive that [`verify`] accepted.
pub fn envelopes(input: impl BufRead, count: u64) -> Result<Vec<Envelope>, ArchiveError> {
    let mut out = Vec::new();
    for (i, line) in input.lines().skip(2).take(count as usize).enumerate() {
        let line = line?;
        let number = i as u64 + 3;
        let bytes = STANDARD
            .decode(line.trim())
            .map_err(|e| ArchiveError::Malformed {
                line: number,
                what: format!("not base64: {e}"),
            })?;
        out.push(
            Envelope::decode(&bytes).map_err(|e| ArchiveError::Malformed {
                line: number,
                what: format!("not an envelope: {e}"),
            })?,
        );
    }
    Ok(out)
}
