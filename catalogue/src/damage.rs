//! Damage to stored history, named the way an operator and an auditor need it:
//! which file or store, where in it, which event and stream, and what is wrong.
//!
//! Damage is never repaired silently: whoever finds it refuses to go on with
//! what it would have read, and says where it is.

use std::fmt;

/// The exit code of a process that refused to start on damaged data
/// (`EX_DATAERR` of `sysexits.h`), so scripts and supervisors can tell it
/// from a bad flag or an unreachable server.
pub const DAMAGE_EXIT_CODE: u8 = 65;

/// One piece of damage found in stored data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The file or store it was found in (a path, or a store's name).
    pub place: String,
    /// Byte offset in that file, when it has one.
    pub offset: Option<u64>,
    /// Global position of the event concerned, when known.
    pub position: Option<u64>,
    /// Its stream, when it could be read.
    pub stream: Option<String>,
    /// What is wrong, in words.
    pub what: String,
}

impl Damage {
    /// Damage in `place`, described by `what`, with no location yet.
    pub fn new(place: impl Into<String>, what: impl Into<String>) -> Self {
        Damage {
            place: place.into(),
            offset: None,
            position: None,
            stream: None,
            what: what.into(),
        }
    }

    /// The same damage at byte `offset`.
    pub fn at_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// The same damage at global position `position`.
    pub fn at_position(mut self, position: u64) -> Self {
        self.position = Some(position);
        self
    }

    /// The same damage, naming its stream when known.
    pub fn in_stream(mut self, stream: Option<String>) -> Self {
        self.stream = stream.filter(|s| !s.is_empty());
        self
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}", self.what, self.place)?;
        if let Some(offset) = self.offset {
            write!(f, " at byte offset {offset}")?;
        }
        if let Some(position) = self.position {
            write!(f, ", position {position}")?;
        }
        if let Some(stream) = &self.stream {
            write!(f, ", stream {stream}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Damage {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_names_its_place_offset_position_and_stream() {
        let d = Damage::new("/data/log/events", "checksum mismatch")
            .at_offset(4096)
            .at_position(17)
            .in_stream(Some("contact.t1.c9".into()));
        assert_eq!(
            d.to_string(),
            "checksum mismatch in /data/log/events at byte offset 4096, position 17, stream contact.t1.c9"
        );
        let bare = Damage::new("vault", "missing").in_stream(Some(String::new()));
        assert_eq!(bare.to_string(), "missing in vault");
    }
}
