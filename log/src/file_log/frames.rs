//! The framing of the embedded log's `events` file: each record is
//! `[kind u8][length u32 LE][crc32 u32 LE][body]`, the checksum covering kind,
//! length and body, so a write torn by a crash is recognised on the next open.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Bytes before a frame's body.
pub const HEADER: usize = 9;

/// A frame holding one encoded [`access_catalogue::Envelope`].
pub const EVENT: u8 = b'E';

/// A frame closing one append: its request id and record (see `file_log`).
pub const COMMIT: u8 = b'C';

/// A frame of the log carrying keys made for the group after it, sealed
/// under a journal epoch (see `file_vault::journal`).
pub const KEYS: u8 = b'K';

/// A record of the key vault's file: a key ref and its key.
pub const VAULT_KEY: u8 = b'V';

/// A record of the key vault's file whose key was destroyed (erased in place).
pub const VAULT_ERASED: u8 = b'X';

/// A record of the embedded mailer's ledger (its checkpoint, mails handled,
/// outcomes to report).
pub const MAILER: u8 = b'M';

/// Whether `kind` names a frame some file of ours holds; each reader refuses
/// kinds that do not belong in its file.
fn known(kind: u8) -> bool {
    matches!(
        kind,
        EVENT | COMMIT | KEYS | VAULT_KEY | VAULT_ERASED | MAILER
    )
}

/// Largest body a reader accepts: a bound on what a damaged length can make
/// it allocate, far above any envelope or reply.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Appends one frame to `out`.
pub fn push(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(&len);
    crc.update(body);
    out.push(kind);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(body);
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The bytes are not a whole, intact frame (torn, cut off or damaged).
    #[error("bad frame at offset {offset}: {reason}")]
    Bad {
        /// Where the frame starts.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Reading the file failed.
    #[error("reading the log file: {0}")]
    Io(#[from] std::io::Error),
}

/// One frame as read.
#[derive(Debug)]
pub struct Frame<'a> {
    /// Where it starts in the file.
    pub offset: u64,
    /// [`EVENT`], [`COMMIT`], [`KEYS`], or a vault record.
    pub kind: u8,
    /// Its body.
    pub body: &'a [u8],
}

impl Frame<'_> {
    /// Where the next frame starts.
    pub fn end(&self) -> u64 {
        self.offset + (HEADER + self.body.len()) as u64
    }
}

/// Reads frames one after another from `offset` up to `end`, through a buffer
/// (one `pread` serves many small frames).
pub struct Frames<'f> {
    file: &'f File,
    offset: u64,
    end: u64,
    chunk: usize,
    buf: Vec<u8>,
    buf_at: u64,
}

impl<'f> Frames<'f> {
    /// A reader of `file` from `offset` to `end`, reading `chunk` bytes at a time.
    pub fn new(file: &'f File, offset: u64, end: u64, chunk: usize) -> Self {
        Frames {
            file,
            offset,
            end,
            chunk,
            buf: Vec::new(),
            buf_at: offset,
        }
    }

    /// Makes the buffer hold `need` bytes from the current offset; false if
    /// the file ends before.
    fn fill(&mut self, need: usize) -> std::io::Result<bool> {
        let from = (self.offset - self.buf_at) as usize;
        if self.buf.len() >= from + need {
            return Ok(true);
        }
        if self.offset + need as u64 > self.end {
            return Ok(false);
        }
        let want = (need.max(self.chunk) as u64).min(self.end - self.offset) as usize;
        self.buf.resize(want, 0);
        self.file.read_exact_at(&mut self.buf, self.offset)?;
        self.buf_at = self.offset;
        Ok(true)
    }

    /// The next frame, or `None` exactly at the end.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        if self.offset >= self.end {
            return Ok(None);
        }
        let offset = self.offset;
        let bad = |reason| FrameError::Bad { offset, reason };
        if !self.fill(HEADER)? {
            return Err(bad("the frame header is cut off"));
        }
        let at = (self.offset - self.buf_at) as usize;
        let header = &self.buf[at..at + HEADER];
        let kind = header[0];
        let len_bytes = [header[1], header[2], header[3], header[4]];
        let crc = u32::from_le_bytes([header[5], header[6], header[7], header[8]]);
        let len = u32::from_le_bytes(len_bytes) as usize;
        if !known(kind) {
            return Err(bad("unknown frame kind"));
        }
        if len > MAX_BODY {
            return Err(bad("frame length out of bounds"));
        }
        if !self.fill(HEADER + len)? {
            return Err(bad("the frame is cut off"));
        }
        let at = (self.offset - self.buf_at) as usize;
        let body = &self.buf[at + HEADER..at + HEADER + len];
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&[kind]);
        hasher.update(&len_bytes);
        hasher.update(body);
        if hasher.finalize() != crc {
            return Err(bad("checksum mismatch"));
        }
        self.offset += (HEADER + len) as u64;
        Ok(Some(Frame { offset, kind, body }))
    }
}

/// The length of the whole, intact frame that starts at `bytes[0]`, if one
/// does (kind known, length in bounds, checksum right): how a reader looks
/// for intact frames after a damaged one.
pub fn intact_at(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..HEADER)?;
    let kind = header[0];
    if !known(kind) {
        return None;
    }
    let len_bytes = [header[1], header[2], header[3], header[4]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_BODY {
        return None;
    }
    let body = bytes.get(HEADER..HEADER + len)?;
    let crc = u32::from_le_bytes([header[5], header[6], header[7], header[8]]);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind]);
    hasher.update(&len_bytes);
    hasher.update(body);
    (hasher.finalize() == crc).then_some(HEADER + len)
}

/// The body a frame header at `bytes[0]` claims, whether or not its checksum
/// holds: for naming what a damaged frame was.
pub fn claimed_body(bytes: &[u8]) -> Option<&[u8]> {
    let header = bytes.get(..HEADER)?;
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    bytes.get(HEADER..HEADER.checked_add(len)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("f");
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(bytes))
            .expect("write");
        (dir, File::open(&path).expect("open"))
    }

    #[test]
    fn frames_read_back_in_order_across_small_chunks() {
        let mut out = Vec::new();
        push(&mut out, EVENT, b"first");
        push(&mut out, COMMIT, &[7; 300]);
        push(&mut out, EVENT, b"");
        let (_d, f) = file_with(&out);
        let mut frames = Frames::new(&f, 0, out.len() as u64, 16);
        let a = frames.next_frame().expect("ok").expect("frame");
        assert_eq!((a.offset, a.kind, a.body), (0, EVENT, &b"first"[..]));
        let b = frames.next_frame().expect("ok").expect("frame");
        assert_eq!((b.kind, b.body.len()), (COMMIT, 300));
        let c = frames.next_frame().expect("ok").expect("frame");
        assert_eq!(c.body, b"");
        assert!(frames.next_frame().expect("ok").is_none());
    }

    #[test]
    fn a_torn_or_damaged_frame_is_refused_not_misread() {
        let mut out = Vec::new();
        push(&mut out, EVENT, b"whole");
        let whole = out.len();
        push(&mut out, EVENT, b"torn in half");
        // Cut the second frame short.
        let (_d, f) = file_with(&out[..out.len() - 4]);
        let mut frames = Frames::new(&f, 0, (out.len() - 4) as u64, 4096);
        assert!(frames.next_frame().expect("ok").is_some());
        assert!(matches!(
            frames.next_frame(),
            Err(FrameError::Bad { offset, .. }) if offset == whole as u64
        ));
        // One flipped bit in a body.
        let mut flipped = out.clone();
        flipped[HEADER + 1] ^= 1;
        let (_d, f) = file_with(&flipped);
        let mut frames = Frames::new(&f, 0, flipped.len() as u64, 4096);
        assert!(matches!(frames.next_frame(), Err(FrameError::Bad { .. })));
        assert_eq!(intact_at(&out[whole..]), Some(out.len() - whole));
        assert_eq!(intact_at(&flipped), None);
        assert_eq!(claimed_body(&flipped).map(|b| b.len()), Some(5));
        // Zeros where a crash left the file longer than what was written.
        let (_d, f) = file_with(&[0; 64]);
        let mut frames = Frames::new(&f, 0, 64, 4096);
        assert!(matches!(frames.next_frame(), Err(FrameError::Bad { .. })));
    }
}
