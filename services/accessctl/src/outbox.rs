//! Reads invitation links from the `.eml` files of embedded mode's outbox.

use anyhow::Context;
use std::path::Path;

/// The link in the newest mail to `email` in `outbox` (an invitation or a reset).
pub fn newest_link(outbox: &Path, email: &str) -> anyhow::Result<String> {
    let wanted = email.trim().to_ascii_lowercase();
    let mut newest: Option<(std::time::SystemTime, String)> = None;
    let entries =
        std::fs::read_dir(outbox).with_context(|| format!("reading {}", outbox.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("eml") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?
            .replace("=\r\n", "")
            .replace("=\n", "");
        let to = text
            .lines()
            .find_map(|l| l.strip_prefix("To: "))
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !to.contains(&wanted) {
            continue;
        }
        let Some(link) = link_in(&text) else { continue };
        let modified = std::fs::metadata(&path)?.modified()?;
        if newest.as_ref().is_none_or(|(t, _)| modified > *t) {
            newest = Some((modified, link));
        }
    }
    newest
        .map(|(_, link)| link)
        .with_context(|| format!("no mail with a link to {email} in {}", outbox.display()))
}

/// The first `http…/invite/…` or `http…/reset/…` URL in a mail's text.
pub fn link_in(text: &str) -> Option<String> {
    let at = text.find("/invite/").or_else(|| text.find("/reset/"))?;
    let start = text[..at].rfind("http")?;
    let end = text[at..]
        .find(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .map_or(text.len(), |i| at + i);
    Some(text[start..end].to_owned())
}
