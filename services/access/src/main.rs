//! `accessd`: the customer portal access service.
#![forbid(unsafe_code)]

use access_service::config::ServeConfig;
use access_service::startup::{Application, shutdown_signal};
use access_service::telemetry;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

// glibc's allocator took a fifth of a busy server's time (its bins and
// consolidation under many threads' short-lived buffers).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The customer portal access service.
#[derive(Parser)]
#[command(name = "accessd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Runs the service (embedded mode: the log, read models and mailer in
    /// this process; with --nats-url, one replica on NATS JetStream).
    Serve(Box<ServeConfig>),
    /// Creates the deployment's keys (`server.key`, `operator.key`, mode 0600)
    /// in a directory if they are not there yet, for replicas and mailer
    /// workers to share; existing keys are never replaced.
    Keys {
        /// Where to create them.
        #[arg(long, env = "ACCESS_KEY_DIR")]
        key_dir: std::path::PathBuf,
        /// Make a new current server key; links and sessions made with the
        /// previous ones keep working. Restart replicas and mailers after.
        #[arg(long)]
        rotate: bool,
        /// Make a new audit key (`audit.key`), which signs the log's
        /// checkpoints from the next start on; the old one is kept as
        /// `audit.key.<n>`, and checkpoints it signed still verify with its
        /// public key. Auditors pin the new public key printed.
        #[arg(long)]
        rotate_audit: bool,
    },
    /// Checks a stopped data directory and changes nothing: the log's
    /// frames, commits, hash chains, synced mark and index; the key vault;
    /// the read models' and the mailer's checkpoints. Lists every damage
    /// found; exits 0 when intact, 65 when damaged.
    Check {
        /// The data directory.
        #[arg(long, env = "ACCESS_DATA_DIR")]
        data_dir: std::path::PathBuf,
    },
    /// Repairs a stopped data directory that `accessd check` found damaged,
    /// as an explicit act recorded in the log (`LogRepaired`): with
    /// --from-archive, the damaged events are taken back from a whole-log
    /// backup and nothing is lost; with --quarantine, everything from the
    /// append holding the first damage on is moved aside (kept beside the
    /// log) and the log is cut there.
    #[command(group(clap::ArgGroup::new("method").required(true).args(["quarantine", "from_archive"])))]
    Repair {
        /// The data directory.
        #[arg(long, env = "ACCESS_DATA_DIR")]
        data_dir: std::path::PathBuf,
        /// Accept losing the damaged part of the log.
        #[arg(long)]
        quarantine: bool,
        /// A whole-log backup (`accessctl backup`) to take the damaged
        /// events back from.
        #[arg(long)]
        from_archive: Option<std::path::PathBuf>,
        /// Why, for the record.
        #[arg(long)]
        reason: String,
    },
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Restores a backup (`accessctl backup`) into an empty data directory:
    /// the archive is verified, its events written as they are, the persons'
    /// keys put back. Start `accessd serve` on it: the read models are
    /// rebuilt from the log. Copy the deployment's key files separately.
    Restore {
        /// The archive `accessctl backup` wrote.
        #[arg(long)]
        archive: std::path::PathBuf,
        /// The persons' keys written next to it (`<archive>.keys`).
        #[arg(long)]
        keys: Option<std::path::PathBuf>,
        /// The empty data directory to fill (embedded mode).
        #[arg(long, required_unless_present = "nats_url")]
        data_dir: Option<std::path::PathBuf>,
        /// Or the empty stream on NATS to seed (distributed mode): the path
        /// a deployment takes when it outgrows one machine.
        #[command(flatten)]
        nats: access_runtime::cli::NatsArgs,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validates a configuration (`--config FILE` with the environment and
    /// any flags) and prints the effective settings, secrets masked.
    Check(Box<ServeConfig>),
}

/// The command line with the config file's settings layered in: defaults <
/// file < environment < flags. `None` when there is nothing to add.
fn layered_args(
    argv: &[std::ffi::OsString],
    sub: &str,
) -> anyhow::Result<Option<(Vec<std::ffi::OsString>, String)>> {
    use clap::CommandFactory;
    let cli = Cli::command();
    let matches = cli.clone().try_get_matches_from(argv)?;
    let (command, matches) = match (sub, matches.subcommand()) {
        ("serve", Some(("serve", m))) => (cli.find_subcommand("serve").cloned(), m.clone()),
        ("check", Some(("config", m))) => match m.subcommand() {
            Some(("check", m)) => (
                cli.find_subcommand("config")
                    .and_then(|c| c.find_subcommand("check"))
                    .cloned(),
                m.clone(),
            ),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let Some(command) = command else {
        return Ok(None);
    };
    let Some(path) = access_service::config_file::named(&matches) else {
        let described = access_service::config_file::describe(
            &command,
            &matches,
            &matches,
            &Default::default(),
        );
        return Ok(Some((argv.to_vec(), described)));
    };
    let file = access_service::config_file::read(&path, &command)?;
    let argv = access_service::config_file::layered(argv.to_vec(), &command, &matches, &file);
    let given = matches;
    let matches = cli.try_get_matches_from(&argv)?;
    let inner = match sub {
        "serve" => matches.subcommand_matches("serve").cloned(),
        _ => matches
            .subcommand_matches("config")
            .and_then(|m| m.subcommand_matches("check"))
            .cloned(),
    };
    let described = inner
        .map(|m| access_service::config_file::describe(&command, &given, &m, &file))
        .unwrap_or_default();
    Ok(Some((argv, described)))
}

#[tokio::main]
async fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let sub = match argv.get(1).and_then(|a| a.to_str()) {
        Some("serve") => "serve",
        Some("config") => "check",
        _ => "",
    };
    let mut described = String::new();
    let argv = match layered_args(&argv, sub) {
        Ok(Some((argv, text))) => {
            described = text;
            argv
        }
        Ok(None) => argv,
        Err(e) => {
            if let Some(clap) = e.downcast_ref::<clap::Error>() {
                clap.exit();
            }
            eprintln!("accessd: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let Cli { command } = Cli::parse_from(argv);
    match command {
        Command::Config(ConfigCommand::Check(config)) => {
            println!("{described}");
            match config.tls.load() {
                Ok(_) => {
                    println!("# configuration is valid");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("accessd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(config) => {
            telemetry::init(&config.log_format);
            match serve(*config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("accessd: {e:#}");
                    if access_service::integrity::damage_of(&e).is_some() {
                        tracing::error!(error = ?e, "stored history is damaged");
                        eprintln!("accessd: {}", access_service::integrity::WHAT_TO_DO);
                    }
                    ExitCode::from(access_service::integrity::exit_code(&e))
                }
            }
        }
        Command::Restore {
            archive,
            keys,
            data_dir,
            nats,
        } => match restore(&archive, keys.as_deref(), data_dir.as_deref(), &nats).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("accessd: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Check { data_dir } => match access_service::check::check_data_dir(&data_dir).await
        {
            Ok(report) if report.damage.is_empty() => {
                println!(
                    "accessd: {} is intact: {} events in {} streams, head at position {}",
                    data_dir.display(),
                    report.log.events,
                    report.log.streams,
                    report.log.head
                );
                ExitCode::SUCCESS
            }
            Ok(report) => {
                for d in &report.damage {
                    println!("damage: {d}");
                }
                println!(
                    "accessd: {} is damaged ({} found; {} events read whole, head at position {})",
                    data_dir.display(),
                    report.damage.len(),
                    report.log.events,
                    report.log.head
                );
                ExitCode::from(access_catalogue::damage::DAMAGE_EXIT_CODE)
            }
            Err(e) => {
                eprintln!("accessd: {e:#}");
                ExitCode::from(access_service::integrity::exit_code(&e))
            }
        },
        Command::Repair {
            data_dir,
            quarantine: _,
            from_archive,
            reason,
        } => {
            let repaired = match &from_archive {
                Some(archive) => {
                    access_service::repair::from_archive(&data_dir, archive, &reason).await
                }
                None => access_service::repair::quarantine(&data_dir, &reason).await,
            };
            match repaired {
                Ok(summary) => {
                    println!("accessd: {summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("accessd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Keys {
            key_dir,
            rotate,
            rotate_audit,
        } => match keys(&key_dir, rotate, rotate_audit) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("accessd: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn restore(
    archive: &std::path::Path,
    keys: Option<&std::path::Path>,
    dir: Option<&std::path::Path>,
    nats: &access_runtime::cli::NatsArgs,
) -> anyhow::Result<()> {
    use access_log::archive;
    use anyhow::Context;
    let open = || {
        std::fs::File::open(archive)
            .map(std::io::BufReader::new)
            .with_context(|| format!("opening {}", archive.display()))
    };
    let report = archive::verify(open()?).context("the archive does not verify")?;
    anyhow::ensure!(
        report.header.scope == "log",
        "this archive holds {}, not a whole log (export it with the operator key)",
        report.header.scope
    );
    let envelopes = archive::envelopes(open()?, report.trailer.events)?;
    let pairs = match keys {
        Some(keys) => read_keys(keys)?,
        None => Vec::new(),
    };
    // Every sealed value must stay readable, or be erased by an erasure the
    // log records: a restore without its keys is refused (checked once the
    // destination is known to be empty, so that is what a second try hears).
    let mut keys = access_service::integrity::KeyUse::default();
    envelopes.iter().for_each(|e| keys.add(e));
    let have: std::collections::HashSet<String> = pairs.iter().map(|(r, _)| r.clone()).collect();
    let check_keys = || match keys.first_missing(&have) {
        Some((key_ref, position, stream)) => Err(anyhow::anyhow!(
            "the archive's personal values need keys the keys file lacks (first: {key_ref:?} at position {position}, stream {stream}); give the keys written with the backup (--keys <archive>.keys)"
        )),
        None => Ok(()),
    };
    let destroyed: Vec<String> = keys.destroyed.iter().cloned().collect();
    let settings = nats
        .settings("accessd-restore")
        .map_err(|e| anyhow::anyhow!(e))?;
    let (written, place) = match (settings, dir) {
        (Some(settings), _) => {
            let client = access_log::nats::connect_client(&settings).await?;
            let log =
                access_log::nats::JetStreamLog::with_client(client.clone(), &settings).await?;
            let vault = access_log::nats::KvVault::open(
                &async_nats::jetstream::new(client),
                &settings.stream,
                settings.replicas,
            )
            .await?;
            if access_log::log::EventLog::latest(&log).await? > 0 {
                anyhow::bail!(
                    "stream {} is not empty: a restore only goes into an empty stream",
                    settings.stream
                );
            }
            check_keys()?;
            // Keys first: no event is readable without its key; an erased
            // person's key is marked destroyed, not missing.
            vault.restore(&pairs).await?;
            for key_ref in &destroyed {
                access_log::vault::Vault::destroy(&vault, key_ref).await?;
            }
            let written = log.import(envelopes).await?;
            (written, format!("stream {}", settings.stream))
        }
        (None, Some(dir)) => {
            if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
                anyhow::bail!(
                    "{} is not empty: restore into an empty directory",
                    dir.display()
                );
            }
            check_keys()?;
            std::fs::create_dir_all(dir)?;
            access_service::datadir::check_format(dir)?;
            let vault = access_log::file_vault::FileVault::open(&dir.join("vault"))?;
            let entries: Vec<_> = pairs
                .iter()
                .map(|(r, k)| (r.clone(), Some(*k)))
                .chain(destroyed.iter().map(|r| (r.clone(), None)))
                .collect();
            vault.restore(&entries)?;
            let written = access_log::file_log::FileLog::import(&dir.join("log"), envelopes)?;
            (written, dir.display().to_string())
        }
        (None, None) => anyhow::bail!("give --data-dir or --nats-url"),
    };
    println!(
        "accessd: restored {written} events and {} keys into {place}",
        pairs.len()
    );
    Ok(())
}

/// A backup's keys file: `<ref> <hex key>` per line.
fn read_keys(keys: &std::path::Path) -> anyhow::Result<Vec<(String, [u8; 32])>> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(keys).with_context(|| format!("reading {}", keys.display()))?;
    let mut pairs = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let (key_ref, hex_key) = line.split_once(' ').with_context(|| {
            format!(
                "{} line {}: expected '<ref> <hex key>'",
                keys.display(),
                n + 1
            )
        })?;
        let key: [u8; 32] = hex::decode(hex_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("{} line {}: not a 32-byte hex key", keys.display(), n + 1))?;
        pairs.push((key_ref.to_owned(), key));
    }
    Ok(pairs)
}

fn keys(dir: &std::path::Path, rotate: bool, rotate_audit: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let secrets = access_service::secrets::DataDirSecrets::load_or_create(dir)?;
    if rotate_audit {
        let old = hex::encode(secrets.audit_key.verifying_key().to_bytes());
        let kept = (1..)
            .map(|n| dir.join(format!("audit.key.{n}")))
            .find(|p| !p.exists())
            .context("naming the old audit key")?;
        std::fs::rename(dir.join("audit.key"), &kept)
            .with_context(|| format!("keeping the old audit key as {}", kept.display()))?;
        let new = access_service::secrets::DataDirSecrets::load_or_create(dir)?;
        println!(
            "accessd: new audit key in {}, public key {} (the old one, {old}, kept as {}); restart replicas to sign with it",
            dir.display(),
            hex::encode(new.audit_key.verifying_key().to_bytes()),
            kept.display()
        );
        return Ok(());
    }
    if rotate {
        let id = access_service::secrets::DataDirSecrets::rotate(dir)?;
        println!(
            "accessd: new server key {id} in {} (key {} and older still verify)",
            dir.display(),
            secrets.keyring.current().id()
        );
        return Ok(());
    }
    println!(
        "accessd: keys in {} (operator key in {})",
        dir.display(),
        secrets.operator_key_path.display()
    );
    Ok(())
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let app = Application::build(&config).await?;
    // One stable stdout line for people and scripts; the key itself is never printed.
    println!(
        "accessd: operator key in {}",
        app.operator_key_path().display()
    );
    let metrics = app
        .metrics_addr()?
        .map(|a| format!(" metrics={a}"))
        .unwrap_or_default();
    println!(
        "accessd: listening grpc={} http={}{metrics}",
        app.grpc_addr()?,
        app.http_addr()?
    );
    let models = app.read_models();
    let stopped = app.run_until_stopped(shutdown_signal()).await;
    // Everything is closed and synced; the read models' memory goes with
    // the process rather than be freed row by row.
    std::mem::forget(models);
    stopped
}
