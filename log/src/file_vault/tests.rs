use super::*;
use crate::log::EventLog;

fn block<T>(f: BoxFuture<'_, T>) -> T {
    futures::executor::block_on(f)
}

#[test]
fn an_erased_key_reads_as_erased_and_a_missing_one_as_damage() {
    let dir = tempfile::tempdir().expect("dir");
    let vault = FileVault::open(dir.path()).expect("open");
    let key = block(vault.get_or_create("alice")).expect("made");
    assert_eq!(block(vault.get("alice")).expect("get"), Some(key));
    assert_eq!(block(vault.get_or_create("alice")).expect("again"), key);
    block(vault.destroy("alice")).expect("destroy");
    assert_eq!(block(vault.get("alice")).expect("erased"), None);
    assert!(matches!(
        block(vault.get("bob")),
        Err(VaultError::Missing(r)) if r == "bob"
    ));
    assert!(block(vault.all()).expect("all").is_empty());
    // The key's bytes left the file.
    let bytes = std::fs::read(dir.path().join(KEYS_FILE)).expect("read");
    assert!(!bytes.windows(32).any(|w| w == key));
    // Invited again after the erasure: a new key, kept across a reopen.
    let again = block(vault.get_or_create("alice")).expect("made again");
    assert_ne!(again, key);
    drop(vault);
    let vault = FileVault::open(dir.path()).expect("reopen");
    assert_eq!(block(vault.get("alice")).expect("get"), Some(again));
    assert_eq!(
        block(vault.all()).expect("all"),
        vec![("alice".into(), again)]
    );
}

/// A closed vault holding the keys of `person-0` to `person-{n-1}`: its
/// directory, its file and the file's bytes.
fn vault_with_keys(n: usize) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().expect("dir");
    let vault = FileVault::open(dir.path()).expect("open");
    for i in 0..n {
        block(vault.get_or_create(&format!("person-{i}"))).expect("made");
    }
    drop(vault);
    let path = dir.path().join(KEYS_FILE);
    let bytes = std::fs::read(&path).expect("read");
    (dir, path, bytes)
}

#[test]
fn a_torn_tail_is_cut_and_damage_below_it_is_named() {
    let (dir, path, bytes) = vault_with_keys(5);
    // A torn last record (never synced as far as the journal knows) is cut.
    std::fs::write(&path, &bytes[..bytes.len() - 3]).expect("cut");
    let vault = FileVault::open(dir.path()).expect("open after a tear");
    assert!(block(vault.get("person-4")).is_err());
    assert!(block(vault.get("person-3")).expect("kept").is_some());
    drop(vault);
    // A flipped byte with intact records after it is damage, at every byte.
    let bytes = std::fs::read(&path).expect("read");
    for i in 0..bytes.len() - frames::HEADER - 40 {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0x40;
        std::fs::write(&path, &flipped).expect("write");
        assert!(
            matches!(FileVault::open(dir.path()), Err(VaultError::Damaged(_))),
            "flip at {i}"
        );
    }
}

#[test]
fn reading_a_vault_changes_nothing_until_it_is_opened() {
    let (dir, path, bytes) = vault_with_keys(3);
    let torn = &bytes[..bytes.len() - 3];
    std::fs::write(&path, torn).expect("tear");
    // Read while a start checks the log: the torn tail stays where it is,
    // and a second reader is refused while the first holds the lock.
    let read = FileVault::read(dir.path()).expect("read");
    assert!(matches!(
        FileVault::read(dir.path()),
        Err(VaultError::Unavailable(_))
    ));
    assert_eq!(std::fs::read(&path).expect("read"), torn);
    // A start the log refuses drops it: still nothing changed.
    drop(read);
    assert_eq!(std::fs::read(&path).expect("read"), torn);
    // Opened once the log is accepted: cut, and the whole records serve.
    let vault = FileVault::read(dir.path())
        .and_then(ReadVault::open)
        .expect("opened");
    assert!(std::fs::read(&path).expect("read").len() < torn.len());
    assert!(block(vault.get("person-1")).expect("kept").is_some());
    assert!(block(vault.get("person-2")).is_err());
    block(vault.get_or_create("person-3")).expect("writes go on");
}

fn invite(log: &FileLog, vault: &FileVault, n: usize) {
    let key_ref = format!("person-{n}");
    block(vault.get_or_create(&key_ref)).expect("key");
    let stream = crate::conformance::stream(&format!("c{n}"));
    let request = crate::conformance::request(&format!("r{n}"), &stream, 0, 1);
    futures::executor::block_on(log.append(request)).expect("append");
}

#[test]
fn keys_whose_records_a_crash_lost_come_back_from_the_log() {
    let dir = tempfile::tempdir().expect("dir");
    let (log_dir, vault_dir) = (dir.path().join("log"), dir.path().join("keys"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _enter = rt.enter();
    let made = invite_then_crash(&log_dir, &vault_dir, 20);
    assert_eq!(made.len(), 20);
    let log = reopen(&log_dir);
    let vault = Arc::new(FileVault::open(&vault_dir).expect("vault"));
    vault.attach(&log).expect("attach");
    for (key_ref, key) in &made {
        assert_eq!(block(vault.get(key_ref)).expect("back"), Some(*key));
    }
    // Once the vault has synced them, the log's copies are sealed for ever.
    vault.close().expect("close");
    let journal = KeyJournal::open(&vault_dir).expect("journal");
    let bytes = std::fs::read(log_dir.join("events")).expect("events");
    let (mut opened, mut sealed) = (0, 0);
    let mut at = 0;
    while at < bytes.len() {
        let Some(len) = frames::intact_at(&bytes[at..]) else {
            break;
        };
        if bytes[at] == frames::KEYS {
            let body = frames::claimed_body(&bytes[at..]).expect("body");
            opened += journal.open_frame(body).map_or(0, |k| k.len());
            sealed += 1;
        }
        at += len;
    }
    assert!(sealed > 0, "the keys rode in the log's groups");
    assert_eq!(opened, 0);
    // Synced records cut off are missing keys, never a torn tail.
    drop(vault);
    let keys = vault_dir.join(KEYS_FILE);
    let len = std::fs::metadata(&keys).expect("keys").len();
    File::options()
        .write(true)
        .open(&keys)
        .and_then(|f| f.set_len(len - 1))
        .expect("cut");
    assert!(matches!(
        FileVault::open(&vault_dir),
        Err(VaultError::Damaged(_))
    ));
}

/// Makes `n` keys, each with an append, then crashes as if none of the
/// vault's unsynced records had reached the disk; returns the keys made.
fn invite_then_crash(log_dir: &Path, vault_dir: &Path, n: usize) -> Vec<(String, Key)> {
    let log = FileLog::open(log_dir).expect("log");
    let vault = Arc::new(FileVault::open(vault_dir).expect("vault"));
    vault.attach(&log).expect("attach");
    for i in 0..n {
        invite(&log, &vault, i);
    }
    let made = block(vault.all()).expect("all");
    let synced = vault.journal.synced_len();
    drop(vault);
    drop(log);
    File::options()
        .write(true)
        .open(vault_dir.join(KEYS_FILE))
        .and_then(|f| f.set_len(synced))
        .expect("lose the unsynced records");
    made
}

/// Opens the log once its writer threads have let go of the last one.
fn reopen(dir: &Path) -> FileLog {
    for _ in 0..250 {
        match FileLog::open(dir) {
            Ok(log) => return log,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    FileLog::open(dir).expect("log")
}

#[test]
fn a_repaired_log_keeps_the_keys_it_carries_between_appends() {
    let dir = tempfile::tempdir().expect("dir");
    let (log_dir, vault_dir) = (dir.path().join("log"), dir.path().join("keys"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _enter = rt.enter();
    let made = invite_then_crash(&log_dir, &vault_dir, 30);
    // Wait for the writer to let go, then rewrite the log as a repair does.
    drop(reopen(&log_dir));
    let mut envelopes = Vec::new();
    for _ in 0..250 {
        match FileLog::salvage(&log_dir) {
            Ok(e) => {
                envelopes = e;
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    assert_eq!(envelopes.len(), 30);
    FileLog::replace(&log_dir, envelopes).expect("replaced");
    let log = reopen(&log_dir);
    let vault = Arc::new(FileVault::open(&vault_dir).expect("vault"));
    vault.attach(&log).expect("attach");
    for (key_ref, key) in &made {
        assert_eq!(block(vault.get(key_ref)).expect("back"), Some(*key));
    }
}
