//! What the emails say: a template (the tenant's, or the built-in one)
//! rendered with the email's values, sent as multipart text + HTML.

use crate::templates::{self, Kind, Rendered, Template, TemplateError, Vars};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use time::OffsetDateTime;
use time::macros::format_description;

/// When a link dies, in words (`2027-01-31 18:00 UTC`).
pub fn expiry_words(ms: i64) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| "in 24 hours".into())
}

/// Renders `kind` with the tenant's template when it has one.
pub fn render(
    kind: Kind,
    custom: Option<&Template>,
    vars: &Vars,
) -> Result<Rendered, TemplateError> {
    match custom {
        Some(t) => templates::render(t, vars),
        None => templates::render(&templates::default_template(kind), vars),
    }
}

/// Builds a multipart email from a rendered template.
pub fn message(
    from: &Mailbox,
    to: &[&str],
    rendered: &Rendered,
    message_id: &str,
) -> anyhow::Result<Message> {
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(rendered.subject.clone())
        .message_id(Some(format!("<{message_id}@portal-access>")));
    for address in to {
        builder = builder.to(address.parse::<Mailbox>()?);
    }
    Ok(builder.multipart(MultiPart::alternative_plain_html(
        rendered.text.clone(),
        rendered.html.clone(),
    ))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitations_are_multipart_and_escape_html() {
        let from: Mailbox = "Portal <no-reply@portal.example>".parse().unwrap();
        let vars = Vars {
            tenant_name: "Acme & Sons".into(),
            customer_name: "Bob's <Hardware>".into(),
            contact_email: "bob@hardware.example".into(),
            message: "Welcome!".into(),
            link: "https://portal.example/invite/abc".into(),
            expiry: expiry_words(1_800_000_000_000),
            ..Vars::default()
        };
        let rendered = render(Kind::Invitation, None, &vars).unwrap();
        let message = message(&from, &["bob@hardware.example"], &rendered, "0192").unwrap();
        // Undo quoted-printable soft line breaks so phrases can be searched.
        let text = String::from_utf8(message.formatted())
            .unwrap()
            .replace("=\r\n", "");
        assert!(text.contains("multipart/alternative"));
        assert!(
            text.contains("Bob&#39;s &lt;Hardware&gt;")
                || text.contains("Bob&#x27;s &lt;Hardware&gt;"),
            "{text}"
        );
        assert!(text.contains("https://portal.example/invite/abc"));
        assert!(text.contains("Message-ID: <0192@portal-access>"));
        assert!(text.contains("2027-01-15 08:00 UTC"));
    }
}
