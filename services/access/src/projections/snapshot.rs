//! Snapshots of the read models on disk, so that a start loads them and
//! replays only the log after them.
//!
//! A snapshot is written beside the live one (`snapshot.tmp`), synced and
//! renamed over it, so a crash leaves either the old snapshot or the new
//! one whole. Its header names the layout, the log position it was built
//! to and the hash of the event there (a snapshot ahead of the log is
//! refused like any read model). The rows follow in chunks (one tenant, or
//! one shard of global rows), each with its length and CRC-32, and an end
//! chunk counts them: a cut, a flipped byte or a lost chunk is found on
//! load, and the read models are then rebuilt from the log.

use super::tables::{GLOBAL_SHARDS, Globals, Ids, Tables, TenantTables};
use anyhow::{Context, bail, ensure};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

/// The snapshot's file name in the read models' directory.
pub(super) const FILE: &str = "snapshot";
/// Where a snapshot is written before it replaces the last one.
const TEMPORARY: &str = "snapshot.tmp";
/// The file's first bytes.
const MAGIC: &[u8; 8] = b"ACRMSNAP";
/// The header: magic, layout, checkpoint, whether a hash follows, the hash,
/// and the CRC-32 of what precedes it.
const HEADER_LEN: usize = 8 + 4 + 8 + 1 + 32 + 4;

const TENANT: u8 = 1;
const GLOBALS: u8 = 2;
const IDS: u8 = 3;
const END: u8 = 0xff;

/// The CRC-32 of a chunk's tag, length and bytes.
fn chunk_crc(head: &[u8], bytes: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(head);
    crc.update(bytes);
    crc.finalize()
}

/// Writes `bytes` as one chunk: tag, length, CRC-32 (of all three), bytes.
fn write_chunk(out: &mut impl Write, tag: u8, bytes: &[u8]) -> std::io::Result<()> {
    let mut head = [0u8; 9];
    head[0] = tag;
    head[1..].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.write_all(&head)?;
    out.write_all(&chunk_crc(&head, bytes).to_le_bytes())?;
    out.write_all(bytes)
}

/// Writes the ids chunk as postcard encodes a `Vec<Box<str>>` (a count,
/// then each name's length and bytes) without encoding it into memory
/// first: at a million contacts that buffer would be over 100 MB. The
/// checksum comes before the bytes, so the names are gone over twice.
fn write_names<'a>(
    out: &mut impl Write,
    names: impl ExactSizeIterator<Item = &'a str> + Clone,
) -> std::io::Result<()> {
    fn pieces<'a>(
        names: impl ExactSizeIterator<Item = &'a str>,
        mut emit: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut buffer = [0u8; 10];
        emit(varint(names.len(), &mut buffer)?)?;
        for name in names {
            emit(varint(name.len(), &mut buffer)?)?;
            emit(name.as_bytes())?;
        }
        Ok(())
    }
    let mut len = 0u64;
    pieces(names.clone(), |bytes| {
        len += bytes.len() as u64;
        Ok(())
    })?;
    let mut head = [0u8; 9];
    head[0] = IDS;
    head[1..].copy_from_slice(&len.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    pieces(names.clone(), |bytes| {
        crc.update(bytes);
        Ok(())
    })?;
    out.write_all(&head)?;
    out.write_all(&crc.finalize().to_le_bytes())?;
    pieces(names, |bytes| out.write_all(bytes))
}

/// `value` as postcard encodes a length (a varint), in `out`.
fn varint(value: usize, out: &mut [u8; 10]) -> std::io::Result<&[u8]> {
    postcard::to_slice(&value, out)
        .map(|written| &*written)
        .map_err(std::io::Error::other)
}

/// Writes `tables` as the snapshot in `dir`, replacing the last one once
/// the new one is durable.
#[cfg(test)]
pub(super) fn write(dir: &Path, layout: u32, tables: &Tables) -> anyhow::Result<()> {
    let stay = std::sync::atomic::AtomicBool::new(false);
    publish(dir, write_unsynced(dir, layout, tables, &stay)?)
}

/// Writes `tables` beside the snapshot in `dir`, not yet synced: the tables
/// are free again as soon as this returns, and [`publish`] makes it the
/// snapshot.
pub(super) fn write_unsynced(
    dir: &Path,
    layout: u32,
    tables: &Tables,
    abandon: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<File> {
    let abandoned = || abandon.load(std::sync::atomic::Ordering::Acquire);
    let temporary = dir.join(TEMPORARY);
    let file =
        File::create(&temporary).with_context(|| format!("creating {}", temporary.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&layout.to_le_bytes());
    header.extend_from_slice(&tables.checkpoint.to_le_bytes());
    header.push(u8::from(tables.checkpoint_hash.is_some()));
    header.extend_from_slice(&tables.checkpoint_hash.unwrap_or_default());
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    out.write_all(&header)?;
    write_names(&mut out, tables.ids.names())?;
    let mut buf = Vec::new();
    for (name, tenant) in &tables.tenants {
        // A stop does not wait for the rest: the next start replays it.
        anyhow::ensure!(!abandoned(), ABANDONED);
        buf.clear();
        buf = postcard::to_extend(&(name, tenant), buf).context("encoding a tenant's rows")?;
        write_chunk(&mut out, TENANT, &buf)?;
    }
    for shard in &tables.globals {
        anyhow::ensure!(!abandoned(), ABANDONED);
        buf.clear();
        buf = postcard::to_extend(shard, buf).context("encoding global rows")?;
        write_chunk(&mut out, GLOBALS, &buf)?;
    }
    let count = (tables.tenants.len() as u64, tables.globals.len() as u64);
    write_chunk(&mut out, END, &postcard::to_stdvec(&count)?)?;
    out.into_inner().map_err(|e| e.into_error().into())
}

/// Why [`write_unsynced`] stopped early.
pub(super) const ABANDONED: &str = "the snapshot was abandoned: the service is stopping";

/// Syncs a snapshot [`write_unsynced`] wrote and renames it over the last one.
pub(super) fn publish(dir: &Path, file: File) -> anyhow::Result<()> {
    file.sync_all()?;
    drop(file);
    std::fs::rename(dir.join(TEMPORARY), dir.join(FILE))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Reads one chunk into `buf`; its tag.
fn read_chunk(input: &mut impl Read, buf: &mut Vec<u8>, left: &mut u64) -> anyhow::Result<u8> {
    let mut head = [0u8; 13];
    input
        .read_exact(&mut head)
        .context("a chunk is cut short")?;
    let len = u64::from_le_bytes(head[1..9].try_into()?);
    let crc = u32::from_le_bytes(head[9..13].try_into()?);
    *left = left.saturating_sub(13);
    ensure!(
        len <= *left,
        "a chunk claims {len} bytes, more than the file holds"
    );
    *left -= len;
    buf.clear();
    buf.resize(len as usize, 0);
    input.read_exact(buf).context("a chunk is cut short")?;
    ensure!(
        chunk_crc(&head[..9], buf) == crc,
        "a chunk fails its checksum"
    );
    Ok(head[0])
}

/// Loads the snapshot in `dir`: `None` if there is none, an error naming
/// what is wrong with one that cannot be used.
pub(super) fn read(dir: &Path, layout: u32) -> anyhow::Result<Option<Tables>> {
    let path = dir.join(FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut left = file.metadata()?.len();
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut header = [0u8; HEADER_LEN];
    input
        .read_exact(&mut header)
        .context("the header is cut short")?;
    left -= HEADER_LEN as u64;
    let (body, crc) = header.split_at(HEADER_LEN - 4);
    ensure!(&body[..8] == MAGIC, "not a read-model snapshot");
    ensure!(
        crc32fast::hash(body).to_le_bytes() == crc,
        "the header fails its checksum"
    );
    let found = u32::from_le_bytes(body[8..12].try_into()?);
    if found != layout {
        bail!("layout {found}, this build writes {layout}");
    }
    let mut tables = Tables {
        checkpoint: u64::from_le_bytes(body[12..20].try_into()?),
        checkpoint_hash: (body[20] == 1)
            .then(|| body[21..53].try_into())
            .transpose()?,
        globals: Vec::with_capacity(GLOBAL_SHARDS),
        ..Tables::default()
    };
    let mut ids_bytes = Vec::new();
    ensure!(
        read_chunk(&mut input, &mut ids_bytes, &mut left)? == IDS,
        "the ids do not come first"
    );
    // The ids' index is built on a thread of its own while the rows are
    // read: at a million contacts each takes about a second.
    std::thread::scope(|scope| {
        let ids = scope.spawn(move || -> anyhow::Result<Ids> {
            let (text, ends) = read_names(&ids_bytes).context("the ids")?;
            drop(ids_bytes);
            Ids::from_parts(text, ends).context("an id comes twice")
        });
        let rows = read_rows(&mut input, &mut left, &mut tables);
        let ids = ids
            .join()
            .map_err(|_| anyhow::anyhow!("reading the ids failed"))??;
        rows?;
        tables.ids = ids;
        Ok(Some(tables))
    })
}

/// The names of the ids chunk (postcard's `Vec<Box<str>>`: a count, then
/// each name's length and bytes), one after another in one string, with
/// where each ends: no allocation per name, and vectors reserved at once
/// (read through serde they grow by doubling, which at four million names
/// touches twice the memory).
fn read_names(mut bytes: &[u8]) -> anyhow::Result<(String, Vec<usize>)> {
    let (count, rest) = postcard::take_from_bytes::<u64>(bytes).context("the count of ids")?;
    bytes = rest;
    // Each name takes at least its length's byte: a damaged count cannot
    // make this reserve more than the chunk could hold.
    let mut ends = Vec::with_capacity(usize::try_from(count)?.min(bytes.len()));
    let mut text = String::with_capacity(bytes.len());
    for _ in 0..count {
        let (name, rest) = postcard::take_from_bytes::<&str>(bytes).context("an id")?;
        text.push_str(name);
        ends.push(text.len());
        bytes = rest;
    }
    ensure!(bytes.is_empty(), "bytes follow the ids");
    Ok((text, ends))
}

/// Reads the tenants' and global rows into `tables`, up to the end chunk.
fn read_rows(input: &mut impl Read, left: &mut u64, tables: &mut Tables) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    loop {
        match read_chunk(input, &mut buf, left)? {
            TENANT => {
                let (name, rows): (Box<str>, TenantTables) =
                    postcard::from_bytes(&buf).context("a tenant's rows")?;
                tables.tenants.insert(name, rows);
            }
            GLOBALS => {
                let shard: Globals = postcard::from_bytes(&buf).context("global rows")?;
                tables.globals.push(shard);
            }
            END => {
                let (tenants, shards): (u64, u64) = postcard::from_bytes(&buf)?;
                ensure!(
                    tenants == tables.tenants.len() as u64
                        && shards == tables.globals.len() as u64
                        && shards == GLOBAL_SHARDS as u64,
                    "chunks are missing"
                );
                ensure!(*left == 0, "bytes follow the end");
                return Ok(());
            }
            tag => bail!("an unknown chunk ({tag})"),
        }
    }
}

/// Writes the resolve counts of portal links beside the snapshot (they are
/// not rebuilt from the log, so they outlive a rebuild).
pub(super) fn write_counts(dir: &Path, counts: &[(String, u64)]) -> anyhow::Result<()> {
    let bytes = postcard::to_stdvec(counts)?;
    let temporary = dir.join("resolves.tmp");
    let mut file = File::create(&temporary)?;
    write_chunk(&mut file, TENANT, &bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, dir.join("resolves"))?;
    Ok(())
}

/// Reads the resolve counts; none if there are none or they are damaged
/// (they are operational figures, not a record).
pub(super) fn read_counts(dir: &Path) -> Vec<(String, u64)> {
    let read = || -> anyhow::Result<Vec<(String, u64)>> {
        let mut file = File::open(dir.join("resolves"))?;
        let mut left = file.metadata()?.len();
        let mut buf = Vec::new();
        read_chunk(&mut file, &mut buf, &mut left)?;
        Ok(postcard::from_bytes(&buf)?)
    };
    match read() {
        Ok(counts) => counts,
        Err(e) => {
            if dir.join("resolves").exists() {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the portal links' resolve counts cannot be read; counting from zero"
                );
            }
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projections::rows::KeyRow;
    use crate::projections::tables::StoredIdentity;

    #[test]
    fn the_ids_chunk_is_written_without_a_buffer_byte_for_byte_as_postcard_encodes_it() {
        for count in [0usize, 1, 200, 20_000] {
            let names: Vec<Box<str>> = (0..count)
                .map(|i| "é".repeat(i % 300).into_boxed_str())
                .collect();
            let (mut streamed, mut buffered) = (Vec::new(), Vec::new());
            write_names(&mut streamed, names.iter().map(|n| &**n)).expect("written");
            let encoded = postcard::to_stdvec(&names).expect("encoded");
            write_chunk(&mut buffered, IDS, &encoded).expect("written");
            assert_eq!(streamed, buffered, "{count} names");
        }
    }

    fn sample() -> Tables {
        let mut tables = Tables {
            checkpoint: 42,
            checkpoint_hash: Some([7; 32]),
            ..Tables::default()
        };
        let (contact, identity) = (tables.ids.intern("c-1"), tables.ids.intern("i-1"));
        for t in ["acme", "globex"] {
            let tenant = tables.tenant_mut(t);
            tenant.usernames.insert("ann".into(), contact);
            tenant.memberships.insert(identity, contact);
            tenant.portal_link_ids.insert("l-1".into(), [3; 32]);
        }
        tables.globals_mut(b"i-1").identities.insert(
            identity,
            StoredIdentity {
                email: "ann@example.com".into(),
                password_hash: Some("$argon2id$...".into()),
            },
        );
        tables.globals_mut(b"k-1").api_keys.insert(
            "k-1".into(),
            KeyRow {
                tenant: "acme".into(),
                role: "admin".into(),
                key_sha256: [9; 32],
                name: "ops".into(),
                rep_id: None,
                revoked: false,
            },
        );
        tables
    }

    #[test]
    fn ids_read_as_postcard_writes_them() {
        let names: Vec<Box<str>> = ["", "a", &"ü".repeat(100), "019a-contact"]
            .into_iter()
            .map(Into::into)
            .collect();
        let bytes = postcard::to_stdvec(&names).expect("encoded");
        let (text, ends) = read_names(&bytes).expect("read");
        assert_eq!(text, names.concat());
        assert_eq!(ends, [0, 1, 201, 213]);
        for cut in 0..bytes.len() {
            assert!(read_names(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn an_abandoned_snapshot_stops_and_leaves_the_last_one_in_place() {
        let dir = tempfile::tempdir().expect("dir");
        let tables = sample();
        write(dir.path(), 1, &tables).expect("written");
        let abandon = std::sync::atomic::AtomicBool::new(true);
        let refused = write_unsynced(dir.path(), 1, &tables, &abandon).map(drop);
        assert!(refused.is_err_and(|e| e.to_string() == ABANDONED));
        assert_eq!(read(dir.path(), 1).expect("read"), Some(tables));
    }

    #[test]
    fn a_snapshot_loads_as_it_was_written() {
        let dir = tempfile::tempdir().expect("a directory");
        let tables = sample();
        write(dir.path(), 5, &tables).expect("written");
        let loaded = read(dir.path(), 5).expect("readable").expect("present");
        assert_eq!(loaded, tables);
        assert!(!dir.path().join(TEMPORARY).exists());
    }

    #[test]
    fn no_snapshot_is_none_and_another_layout_is_refused() {
        let dir = tempfile::tempdir().expect("a directory");
        assert!(read(dir.path(), 5).expect("no file is no error").is_none());
        write(dir.path(), 5, &sample()).expect("written");
        let error = read(dir.path(), 6).expect_err("another layout");
        assert!(error.to_string().contains("layout 5"), "{error}");
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_found() {
        let dir = tempfile::tempdir().expect("a directory");
        write(dir.path(), 5, &sample()).expect("written");
        let path = dir.path().join(FILE);
        let whole = std::fs::read(&path).expect("the file");
        for len in 0..whole.len() {
            std::fs::write(&path, &whole[..len]).expect("cut");
            assert!(read(dir.path(), 5).is_err(), "cut at {len} went unnoticed");
        }
        for at in 0..whole.len() {
            let mut damaged = whole.clone();
            damaged[at] ^= 0x10;
            std::fs::write(&path, &damaged).expect("flipped");
            assert!(
                read(dir.path(), 5).is_err(),
                "a flip at {at} went unnoticed"
            );
        }
        let mut longer = whole.clone();
        longer.extend_from_slice(&whole[HEADER_LEN..]);
        std::fs::write(&path, &longer).expect("extended");
        assert!(
            read(dir.path(), 5).is_err(),
            "bytes after the end went unnoticed"
        );
    }

    #[test]
    fn resolve_counts_survive_and_damaged_ones_read_as_none() {
        let dir = tempfile::tempdir().expect("a directory");
        let counts = vec![("l-1".to_owned(), 3), ("l-2".to_owned(), 1)];
        write_counts(dir.path(), &counts).expect("written");
        assert_eq!(read_counts(dir.path()), counts);
        let path = dir.path().join("resolves");
        let mut bytes = std::fs::read(&path).expect("the file");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).expect("flipped");
        assert!(read_counts(dir.path()).is_empty());
    }
}
