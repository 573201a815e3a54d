//! Settings in layers: built-in defaults < a TOML file (`--config`, or
//! `ACCESS_CONFIG`) < `ACCESS_*` environment variables < flags.
//!
//! The file's keys are the flags' names (`grpc_addr` or `grpc-addr`). An
//! unknown key is an error, not silence; secrets are never keys (they come
//! from files named by `*_file` keys, or from the environment).

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, Command};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Environment variables that carry secrets: shown as set or not, never shown.
const SECRET_ENV: [&str; 3] = [
    "ACCESS_SMTP_URL",
    "ACCESS_NATS_PASSWORD",
    "ACCESS_NATS_TOKEN",
];

/// The settings of a TOML file, as flag values by long name.
pub fn read(path: &Path, serve: &Command) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let known: Vec<&str> = serve
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "config")
        .collect();
    let mut out = BTreeMap::new();
    for (key, value) in table {
        let long = key.replace('_', "-");
        if !known.contains(&long.as_str()) {
            let hint = if key.contains("password") || key.contains("token") || key == "smtp_url" {
                " (secrets are not settings: name a file with the matching *_file key, or use the environment)"
            } else {
                ""
            };
            anyhow::bail!("{}: unknown key `{key}`{hint}", path.display());
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => anyhow::bail!(
                "{}: `{key}` must be a string, number or boolean, not {}",
                path.display(),
                other.type_str()
            ),
        };
        out.insert(long, value);
    }
    Ok(out)
}

/// The command line with the file's settings added for every flag that
/// neither the command line nor the environment set.
pub fn layered(
    args: Vec<OsString>,
    serve: &Command,
    matches: &ArgMatches,
    file: &BTreeMap<String, String>,
) -> Vec<OsString> {
    let mut out = args;
    for arg in serve.get_arguments() {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        let Some(value) = file.get(long) else {
            continue;
        };
        let given = matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if given {
            continue;
        }
        if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
            // A switch: present or not.
            if value == "true" {
                out.push(format!("--{long}").into());
            }
        } else {
            out.push(format!("--{long}={value}").into());
        }
    }
    out
}

/// The config file named on the command line or in `ACCESS_CONFIG`.
pub fn named(matches: &ArgMatches) -> Option<PathBuf> {
    matches.get_one::<PathBuf>("config").cloned()
}

/// The effective settings, one per line, with where each came from; secrets
/// are only said to be set.
pub fn describe(
    serve: &Command,
    given: &ArgMatches,
    matches: &ArgMatches,
    file: &BTreeMap<String, String>,
) -> String {
    let mut lines = Vec::new();
    for arg in serve.get_arguments() {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        if long == "config" {
            continue;
        }
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        // What the command line and environment said before the file was
        // layered in decides; the file only fills what they left.
        let source = match (given.value_source(id), matches.value_source(id)) {
            (Some(ValueSource::CommandLine), _) => "flag",
            (Some(ValueSource::EnvVariable), _) => "environment",
            (_, Some(ValueSource::CommandLine)) if file.contains_key(long) => "file",
            (_, Some(ValueSource::DefaultValue)) => "default",
            _ => "unset",
        };
        let shown = if values.is_empty() {
            "(none)".to_owned()
        } else {
            values.join(", ")
        };
        lines.push(format!("{} = {shown}  # {source}", long.replace('-', "_")));
    }
    for env in SECRET_ENV {
        let state = if std::env::var_os(env).is_some() {
            "set (not shown)"
        } else {
            "not set"
        };
        lines.push(format!("# {env}: {state}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

    fn serve() -> Command {
        crate::config::ServeConfig::augment_args(Command::new("serve"))
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("accessd.toml");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    fn parse(args: &[&str], file_text: &str) -> anyhow::Result<crate::config::ServeConfig> {
        let (_dir, path) = file(file_text);
        let settings = read(&path, &serve())?;
        let argv: Vec<OsString> = std::iter::once("serve")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        let first = serve().try_get_matches_from(argv.clone())?;
        let argv = layered(argv, &serve(), &first, &settings);
        let matches = serve().try_get_matches_from(argv)?;
        Ok(crate::config::ServeConfig::from_arg_matches(&matches)?)
    }

    #[test]
    fn the_file_overrides_defaults_and_flags_override_the_file() {
        let c = parse(&[], "lockout_attempts = 9\nlink-ttl = \"2h\"\n").expect("valid");
        assert_eq!(c.lockout_attempts, 9);
        assert_eq!(c.link_ttl, std::time::Duration::from_secs(7200));
        let c = parse(&["--lockout-attempts", "3"], "lockout_attempts = 9\n").expect("valid");
        assert_eq!(c.lockout_attempts, 3);
        let c = parse(&[], "").expect("valid");
        assert_eq!(c.lockout_attempts, 5, "the built-in default");
    }

    #[test]
    fn unknown_keys_and_secrets_are_errors() {
        let e = parse(&[], "lockout_attempt = 9\n")
            .expect_err("typo")
            .to_string();
        assert!(e.contains("unknown key `lockout_attempt`"), "{e}");
        let e = parse(&[], "smtp_url = \"smtp://u:p@relay\"\n")
            .expect_err("secret")
            .to_string();
        assert!(e.contains("secrets are not settings"), "{e}");
        assert!(parse(&[], "lockout_attempts = [1]\n").is_err());
        assert!(
            parse(&[], "lockout_attempts = \"many\"\n").is_err(),
            "values are checked as flags are"
        );
    }
}
