//! Keyed tamper evidence: a checkpoint signed before a rewrite proves the
//! rewrite, even one that recomputes every hash and checksum, which the
//! chains alone cannot.

use access_proto::v1 as pb;
use access_proto::v1::audit_client::AuditClient;
use access_tests::{TestApp, binary};
use std::os::unix::fs::FileExt;

/// Rewrites one event of `stream` in the stored log as an attacker who knows
/// the format would: a changed payload, then a fresh hash for it and every
/// later event of its stream, and fresh frame checksums; the index is
/// removed so it is rebuilt from the rewritten file.
fn rewrite_stream(dir: &std::path::Path, stream_prefix: &str) {
    let victims: Vec<_> = access_tests::stored_events(dir)
        .into_iter()
        .filter(|(_, e)| e.stream.as_str().starts_with(stream_prefix))
        .collect();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("log").join("events"))
        .expect("open the stored log");
    let mut prev = None;
    for (i, (offset, mut e)) in victims.into_iter().enumerate() {
        if i == 0 {
            let last = e.payload.len() - 1;
            e.payload[last] ^= 0x20;
        }
        if let Some(p) = prev {
            e.prev_hash = p;
        }
        e.hash = access_catalogue::chain::hash_of(&e);
        prev = Some(e.hash);
        let mut rewritten = Vec::new();
        access_log::file_log::frames::push(
            &mut rewritten,
            access_log::file_log::frames::EVENT,
            &e.encode(),
        );
        file.write_all_at(&rewritten, offset).expect("write");
    }
    file.sync_all().expect("sync");
    std::fs::remove_dir_all(dir.join("log").join("index")).expect("index");
    // The stores that remember the old hashes go too.
    let _ = std::fs::remove_dir_all(dir.join("readmodels"));
    let _ = std::fs::remove_dir_all(dir.join("mailer"));
}

#[tokio::test]
async fn a_signed_checkpoint_finds_a_rewrite_the_chains_cannot() {
    let mut app = TestApp::spawn().await;
    let admin = app.create_tenant("acme").await;
    app.create_customer(&admin, "C001").await;
    app.invite(&admin, "C001", "bob@acme.example").await;
    let head = app.settled_head().await;

    // Arrange: the operator and a tenant's admin each take a checkpoint.
    let operator = AuditClient::new(app.channel.clone())
        .get_checkpoint(app.req(&app.operator_key, pb::GetCheckpointRequest {}))
        .await
        .expect("checkpoint")
        .into_inner();
    assert!(operator.position >= head);
    let tenant = AuditClient::new(app.channel.clone())
        .get_checkpoint(app.req(&admin, pb::GetCheckpointRequest {}))
        .await
        .expect("a tenant's checkpoint")
        .into_inner();
    assert_eq!(tenant.public_key, operator.public_key);
    let dir = tempfile::tempdir().expect("dir");
    let kept = dir.path().join("checkpoints");
    std::fs::write(&kept, format!("{}\n", operator.checkpoint)).expect("keep");
    let verify = |app: &TestApp| {
        app.accessctl(
            &app.operator_key,
            &[
                "audit".as_ref(),
                "verify".as_ref(),
                "--checkpoint".as_ref(),
                kept.as_os_str(),
                "--trusted-key".as_ref(),
                operator.public_key.as_ref(),
            ],
        )
    };
    let before = verify(&app);
    assert!(
        before.status.success(),
        "{}{}",
        String::from_utf8_lossy(&before.stdout),
        String::from_utf8_lossy(&before.stderr)
    );

    // A whole-log export carries the service's signature over its events.
    let archive = dir.path().join("log.archive");
    let export = app.accessctl(
        &app.operator_key,
        &[
            "audit".as_ref(),
            "export".as_ref(),
            "--out".as_ref(),
            archive.as_os_str(),
        ],
    );
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let offline = std::process::Command::new(binary("accessctl"))
        .args(["audit", "verify", "--archive"])
        .arg(&archive)
        .args(["--trusted-key", &operator.public_key])
        .output()
        .expect("accessctl runs");
    let out = String::from_utf8_lossy(&offline.stdout);
    assert!(offline.status.success(), "{out}");
    assert!(
        out.contains(&format!("signed: by key {}", operator.public_key)),
        "{out}"
    );

    // Act: the contact's stream rewritten with every hash recomputed.
    app.terminate().await;
    rewrite_stream(&app.dir, "contact.acme.");
    let app = app.start_again().await;

    // Assert: the chains hold, the checkpoint does not.
    assert!(app.verify().await.ok, "the rewrite recomputed every hash");
    let after = verify(&app);
    let out = String::from_utf8_lossy(&after.stdout);
    assert!(!after.status.success(), "{out}");
    assert!(out.contains("DOES NOT MATCH"), "{out}");
}

#[tokio::test]
async fn the_audit_key_rotates_and_old_checkpoints_still_verify() {
    let dir = tempfile::tempdir().expect("dir");
    let keys = |extra: &[&str]| {
        std::process::Command::new(binary("accessd"))
            .args(["keys", "--key-dir"])
            .arg(dir.path())
            .args(extra)
            .output()
            .expect("accessd runs")
    };
    assert!(keys(&[]).status.success());
    let seed = |name: &str| {
        let text = std::fs::read_to_string(dir.path().join(name)).expect("key file");
        let bytes: [u8; 32] = hex_seed(text.trim());
        access_log::checkpoint::signing_key(&bytes)
    };
    let old = seed("audit.key");
    let signed = access_log::checkpoint::Checkpoint::sign(Default::default(), 1, &old);
    let rotated = keys(&["--rotate-audit"]);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let new = seed("audit.key");
    assert_ne!(new.verifying_key(), old.verifying_key());
    assert_eq!(seed("audit.key.1").verifying_key(), old.verifying_key());
    let line = signed.to_line();
    let parsed = access_log::checkpoint::Checkpoint::parse(&line).expect("parse");
    assert!(
        parsed
            .verify_signature(Some(&old.verifying_key().to_bytes()))
            .is_ok()
    );
    assert!(
        parsed
            .verify_signature(Some(&new.verifying_key().to_bytes()))
            .is_err()
    );
}

fn hex_seed(text: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect();
    bytes.try_into().expect("32 bytes")
}
