//! The layers' rules that the compiler does not enforce, checked on the
//! sources: the domain is pure, the app reads time only from its clock, and
//! the transports reach the log, the vault and the keys only through `App`.

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)
        .expect("a source directory")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("a source file");
            out.push((path, text));
        }
    }
    out
}

fn src(part: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(part)
}

/// Every use of a forbidden word in the files under `parts`.
fn offences(parts: &[&str], forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for part in parts {
        let path = src(part);
        let files = if path.is_dir() {
            sources(&path)
        } else {
            vec![(
                path.clone(),
                std::fs::read_to_string(&path).expect("a file"),
            )]
        };
        for (file, text) in files {
            for (n, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for word in forbidden {
                    if line.contains(word) {
                        found.push(format!("{}:{}: {word}", file.display(), n + 1));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn the_domain_is_pure_and_knows_only_the_catalogue() {
    let found = offences(
        &["domain"],
        &[
            "access_log",
            "access_keyring",
            "access_runtime",
            "access_mailer",
            "access_proto",
            "tokio",
            "crate::app",
            "crate::grpc",
            "crate::projections",
            "crate::pages",
            "SystemTime",
            "Instant::now",
            "rand::",
            "std::fs",
        ],
    );
    assert!(found.is_empty(), "the domain reaches out: {found:#?}");
}

#[test]
fn the_app_reads_the_time_from_its_clock() {
    let found = offences(
        &["app"],
        &["SystemTime", "system_now_ms", "OffsetDateTime::now"],
    );
    assert!(
        found.is_empty(),
        "the app reads the machine's clock: {found:#?}"
    );
}

#[test]
fn the_transports_go_through_the_app() {
    let found = offences(
        &["grpc", "pages", "pages.rs", "oidc"],
        &[
            "access_log",
            "Keyring",
            "ReadModels",
            "Vault",
            "decode_open",
            "Unit::new",
        ],
    );
    assert!(
        found.is_empty(),
        "a transport reaches around the app: {found:#?}"
    );
}
