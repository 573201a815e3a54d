//! What the emails say. Every email is multipart: plain text and HTML.

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use time::OffsetDateTime;
use time::macros::format_description;

/// Everything an invitation email needs.
#[derive(Clone, Debug)]
pub struct InvitationMail<'a> {
    /// Sender.
    pub from: &'a Mailbox,
    /// Recipient address.
    pub to: &'a str,
    /// The supplier's name.
    pub tenant_name: &'a str,
    /// The customer's name.
    pub customer_name: &'a str,
    /// Staff's personal message.
    pub message: &'a str,
    /// The set-password link.
    pub link: &'a str,
    /// When the link dies, Unix milliseconds.
    pub expires_at_ms: i64,
    /// True for a resent link.
    pub resent: bool,
    /// Stable id of the email (the event id), for the Message-ID header.
    pub message_id: &'a str,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn format_expiry(ms: i64) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| "in 24 hours".into())
}

/// Builds the invitation email.
pub fn invitation(mail: &InvitationMail<'_>) -> anyhow::Result<Message> {
    let expiry = format_expiry(mail.expires_at_ms);
    let subject = if mail.resent {
        format!("Your new link to {}'s ordering portal", mail.tenant_name)
    } else {
        format!("{} invites you to its ordering portal", mail.tenant_name)
    };
    let text = format!(
        "Hello,\n\n{tenant} has invited you to order online for {customer}.\n\n{message}\n\n\
         Set your password to get started:\n{link}\n\n\
         This link works once and expires {expiry}.{resent}\n\
         If you did not expect this email, you can ignore it.\n",
        tenant = mail.tenant_name,
        customer = mail.customer_name,
        message = mail.message,
        link = mail.link,
        resent = if mail.resent {
            " Links sent earlier no longer work."
        } else {
            ""
        },
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\">\
         <p>Hello,</p>\
         <p>{tenant} has invited you to order online for {customer}.</p>\
         <blockquote>{message}</blockquote>\
         <p><a href=\"{link}\">Set your password</a> to get started.</p>\
         <p>This link works once and expires {expiry}.{resent}</p>\
         <p>If you did not expect this email, you can ignore it.</p>\
         </body></html>",
        tenant = escape_html(mail.tenant_name),
        customer = escape_html(mail.customer_name),
        message = escape_html(mail.message).replace('\n', "<br>"),
        link = escape_html(mail.link),
        expiry = escape_html(&expiry),
        resent = if mail.resent {
            " Links sent earlier no longer work."
        } else {
            ""
        },
    );
    let to: Mailbox = mail.to.parse()?;
    Ok(Message::builder()
        .from(mail.from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{}@portal-access>", mail.message_id)))
        .multipart(MultiPart::alternative_plain_html(text, html))?)
}

/// Everything a password-reset or welcome email needs.
#[derive(Clone, Debug)]
pub struct ResetMail<'a> {
    /// Sender.
    pub from: &'a Mailbox,
    /// Recipient address.
    pub to: &'a str,
    /// The supplier's name.
    pub tenant_name: &'a str,
    /// The set-password link.
    pub link: &'a str,
    /// When the link dies, Unix milliseconds.
    pub expires_at_ms: i64,
    /// True when the contact never logged in: a welcome rather than a reset.
    pub first_time: bool,
    /// Stable id of the email (the event id), for the Message-ID header.
    pub message_id: &'a str,
}

/// Builds the password-reset (or welcome) email.
pub fn reset(mail: &ResetMail<'_>) -> anyhow::Result<Message> {
    let expiry = format_expiry(mail.expires_at_ms);
    let (subject, opening, action) = if mail.first_time {
        (
            format!("Your login to {}'s ordering portal", mail.tenant_name),
            format!(
                "{} has set up a login for you on its ordering portal.",
                mail.tenant_name
            ),
            "Set your password to get started",
        )
    } else {
        (
            format!(
                "Set a new password for {}'s ordering portal",
                mail.tenant_name
            ),
            format!(
                "Someone asked to set a new password for your login to {}'s ordering portal.",
                mail.tenant_name
            ),
            "Set a new password",
        )
    };
    let text = format!(
        "Hello,\n\n{opening}\n\n{action}:\n{link}\n\n\
         This link works once and expires {expiry}. Links sent earlier no longer work.\n\
         If you did not ask for this, you can ignore this email: your password stays as it is.\n",
        link = mail.link,
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\">\
         <p>Hello,</p><p>{opening}</p>\
         <p><a href=\"{link}\">{action}</a>.</p>\
         <p>This link works once and expires {expiry}. Links sent earlier no longer work.</p>\
         <p>If you did not ask for this, you can ignore this email: your password stays as it is.</p>\
         </body></html>",
        opening = escape_html(&opening),
        link = escape_html(mail.link),
        action = escape_html(action),
        expiry = escape_html(&expiry),
    );
    let to: Mailbox = mail.to.parse()?;
    Ok(Message::builder()
        .from(mail.from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{}@portal-access>", mail.message_id)))
        .multipart(MultiPart::alternative_plain_html(text, html))?)
}

/// A short notice without a link: a subject and paragraphs, to one or more
/// recipients.
pub fn notice(
    from: &Mailbox,
    to: &[&str],
    subject: &str,
    paragraphs: &[String],
    message_id: &str,
) -> anyhow::Result<Message> {
    let text = format!("Hello,\n\n{}\n", paragraphs.join("\n\n"));
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><p>Hello,</p>{}</body></html>",
        paragraphs
            .iter()
            .map(|p| format!("<p>{}</p>", escape_html(p)))
            .collect::<String>()
    );
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject)
        .message_id(Some(format!("<{message_id}@portal-access>")));
    for address in to {
        builder = builder.to(address.parse::<Mailbox>()?);
    }
    Ok(builder.multipart(MultiPart::alternative_plain_html(text, html))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitations_are_multipart_and_escape_html() {
        let from: Mailbox = "Portal <no-reply@portal.example>".parse().unwrap();
        let message = invitation(&InvitationMail {
            from: &from,
            to: "bob@hardware.example",
            tenant_name: "Acme & Sons",
            customer_name: "Bob's <Hardware>",
            message: "Welcome!",
            link: "https://portal.example/invite/abc",
            expires_at_ms: 1_800_000_000_000,
            resent: false,
            message_id: "0192",
        })
        .unwrap();
        // Undo quoted-printable soft line breaks so phrases can be searched.
        let text = String::from_utf8(message.formatted())
            .unwrap()
            .replace("=\r\n", "");
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("Bob&#39;s &lt;Hardware&gt;"), "{text}");
        assert!(text.contains("https://portal.example/invite/abc"));
        assert!(text.contains("Message-ID: <0192@portal-access>"));
        assert!(text.contains("2027-01-15 08:00 UTC"));
    }
}
