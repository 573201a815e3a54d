//! The data directory's format version, in `<data dir>/FORMAT`.
//!
//! A newer binary upgrades an older directory (read models whose layout
//! changed are rebuilt from the log on their own; a log in an earlier layout
//! is converted with its stored bytes unchanged, see
//! `access_log::file_log`, which converts it on open).
//!
//! An older binary refuses a directory written by a newer one, with a message
//! that says so, instead of misreading it.
//!
//! Formats: 1, a log without sealed personal data; 2, sealed personal data;
//! 3, the log's envelopes in a file of their own beside a derived index;
//! 4, the log's synced mark, a vault that records erasures, and the log's
//! own stream (repairs), which a format-3 binary would misread.

use anyhow::Context;
use std::path::Path;

/// The format this binary writes and reads.
pub const FORMAT: u32 = 4;

/// The oldest format this binary upgrades.
const OLDEST: u32 = 1;

const FILE: &str = "FORMAT";

/// Checks (and records) the directory's format before anything is opened.
pub fn check_format(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join(FILE);
    let found = match std::fs::read_to_string(&path) {
        Ok(text) => {
            Some(parse(&text).with_context(|| format!("{} is unreadable", path.display()))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    match found {
        Some(v) if v > FORMAT => anyhow::bail!(
            "{} holds data format {v}, written by a newer accessd; this binary reads formats {OLDEST} to {FORMAT}. Run the newer binary (or restore a backup made for this one)",
            dir.display()
        ),
        Some(v) if v < OLDEST => anyhow::bail!(
            "{} holds data format {v}, too old for this binary (it upgrades {OLDEST} and later); upgrade through an intermediate release",
            dir.display()
        ),
        Some(FORMAT) => Ok(()),
        Some(v) => {
            tracing::info!(dir = %dir.display(), from = v, to = FORMAT, "upgrading the data directory's format");
            write(dir)
        }
        // A new directory, or one from before the format was recorded
        // (format 1: a log without sealed personal data).
        None => write(dir),
    }
}

fn parse(text: &str) -> anyhow::Result<u32> {
    let value = text
        .trim()
        .strip_prefix("access-data ")
        .context("expected 'access-data <n>'")?;
    Ok(value.parse()?)
}

fn write(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join(FILE);
    let partial = dir.join("FORMAT.new");
    std::fs::write(&partial, format!("access-data {FORMAT}\n"))
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_or_unversioned_directory_gets_the_current_format() {
        let dir = tempfile::tempdir().expect("dir");
        check_format(dir.path()).expect("fresh");
        let text = std::fs::read_to_string(dir.path().join(FILE)).expect("written");
        assert_eq!(text, format!("access-data {FORMAT}\n"));
        check_format(dir.path()).expect("again");
    }

    #[test]
    fn an_older_format_is_upgraded_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join(FILE), "access-data 1\n").expect("old");
        check_format(dir.path()).expect("upgraded");
        assert_eq!(
            parse(&std::fs::read_to_string(dir.path().join(FILE)).expect("read")).expect("n"),
            FORMAT
        );
        std::fs::write(
            dir.path().join(FILE),
            format!("access-data {}\n", FORMAT + 1),
        )
        .expect("new");
        let e = check_format(dir.path()).expect_err("refused").to_string();
        assert!(e.contains("newer accessd"), "{e}");
        std::fs::write(dir.path().join(FILE), "garbage").expect("bad");
        assert!(check_format(dir.path()).is_err());
    }
}
