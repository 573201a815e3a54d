//! Email templates: built-in defaults, overridable per tenant, rendered with
//! minijinja. HTML bodies are auto-escaped; unknown variables are errors, so
//! a template that cannot render is refused when it is set, not when sending.
//!
//! A tenant's template is untrusted input, so rendering is bounded: only
//! `if`/`elif`/`else` blocks (no loops, assignments or macros, which could
//! build values of any size), a handful of text filters, a fuel limit on the
//! engine's instructions and a cap on what each part renders to.

use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};
use serde::{Deserialize, Serialize};

/// Which email.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// The first invitation.
    Invitation,
    /// A new link for an invitation.
    InvitationResent,
    /// A password-reset link.
    PasswordReset,
    /// A set-password link for a login that never logged in.
    Welcome,
    /// To the username administrators: a registration waits.
    ApprovalRequest,
    /// To the contact: the registration was approved.
    Approved,
    /// To the contact: staff set a temporary password (never in the email).
    TemporaryPassword,
    /// To the contact: access was disabled (if the tenant sends it).
    AccessDisabled,
    /// To the contact: a second factor was added to their login.
    SecondFactorAdded,
    /// To the contact: a second factor was removed from their login.
    SecondFactorRemoved,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 10] = [
        Kind::Invitation,
        Kind::InvitationResent,
        Kind::PasswordReset,
        Kind::Welcome,
        Kind::ApprovalRequest,
        Kind::Approved,
        Kind::TemporaryPassword,
        Kind::AccessDisabled,
        Kind::SecondFactorAdded,
        Kind::SecondFactorRemoved,
    ];

    /// The kind's name in the API and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Invitation => "invitation",
            Kind::InvitationResent => "invitation_resent",
            Kind::PasswordReset => "password_reset",
            Kind::Welcome => "welcome",
            Kind::ApprovalRequest => "approval_request",
            Kind::Approved => "approved",
            Kind::TemporaryPassword => "temporary_password",
            Kind::AccessDisabled => "access_disabled",
            Kind::SecondFactorAdded => "second_factor_added",
            Kind::SecondFactorRemoved => "second_factor_removed",
        }
    }

    /// Parses a kind's name.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A template: subject, plain-text body and HTML body, with the variables
/// `tenant_name`, `customer_name`, `contact_email`, `message`, `link`, `expiry`,
/// `temporary_password`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// One line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body (values are escaped).
    pub html: String,
}

/// The values a template is rendered with.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Vars {
    /// The supplier.
    pub tenant_name: String,
    /// The customer company.
    pub customer_name: String,
    /// The contact's email.
    pub contact_email: String,
    /// Staff's personal message (invitations).
    pub message: String,
    /// The link to follow, if any.
    pub link: String,
    /// When the link dies, in words.
    pub expiry: String,
    /// A generated temporary password, only in the temporary-password notice
    /// of a tenant that chose to mail it; empty otherwise.
    pub temporary_password: String,
}

impl Vars {
    /// Values for previews and for checking a template when it is set.
    pub fn sample() -> Vars {
        Vars {
            tenant_name: "Acme Supplies".into(),
            customer_name: "Bob's Hardware".into(),
            contact_email: "bob@hardware.example".into(),
            message: "Welcome to our ordering portal.".into(),
            link: "https://portal.example/invite/TOKEN".into(),
            expiry: "2027-01-31 18:00 UTC".into(),
            temporary_password: "abcD3fgh7jkm".into(),
        }
    }
}

/// A rendered email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

/// What is wrong with a template: the part (`subject`, `text`, `html`) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{part}: {message}")]
pub struct TemplateError {
    /// Which part.
    pub part: &'static str,
    /// What the engine said.
    pub message: String,
}

/// The longest part accepted, in bytes (the protocol's limits on a template
/// are tighter per part; this is the engine's own guard).
pub const MAX_PART_BYTES: usize = 128 * 1024;
/// The most a part may render to, in bytes.
pub const MAX_RENDERED_BYTES: usize = 512 * 1024;
/// The engine's instructions a part may use.
pub const FUEL: u64 = 50_000;
/// The block tags a template may use.
const ALLOWED_BLOCKS: &[&str] = &["if", "elif", "else", "endif", "raw", "endraw"];

/// The first block tag of `source` that is not allowed, if any. Conservative:
/// a `{%` inside a comment or a raw block counts too.
fn forbidden_block(source: &str) -> Option<String> {
    let mut rest = source;
    while let Some(at) = rest.find("{%") {
        rest = &rest[at + 2..];
        let tag: String = rest
            .trim_start_matches(['-', '+'])
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !ALLOWED_BLOCKS.contains(&tag.as_str()) {
            return Some(tag);
        }
    }
    None
}

/// Writes into a string until it holds `MAX_RENDERED_BYTES`, then fails.
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_RENDERED_BYTES {
            return Err(std::io::Error::other("too long"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::empty();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(32);
    env.add_filter("upper", minijinja::filters::upper);
    env.add_filter("lower", minijinja::filters::lower);
    env.add_filter("capitalize", minijinja::filters::capitalize);
    env.add_filter("title", minijinja::filters::title);
    env.add_filter("trim", minijinja::filters::trim);
    env.add_filter("default", minijinja::filters::default);
    env.add_filter("d", minijinja::filters::default);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env
}

/// Renders a template with `vars`.
pub fn render(template: &Template, vars: &Vars) -> Result<Rendered, TemplateError> {
    let env = environment();
    let part = |part: &'static str,
                name: &'static str,
                source: &str|
     -> Result<String, TemplateError> {
        if source.len() > MAX_PART_BYTES {
            return Err(TemplateError {
                part,
                message: format!("longer than {MAX_PART_BYTES} bytes"),
            });
        }
        if let Some(tag) = forbidden_block(source) {
            return Err(TemplateError {
                part,
                message: format!(
                    "the block '{{% {tag} %}}' is not allowed; templates may use {{{{ variables }}}}, filters and {{% if %}} blocks"
                ),
            });
        }
        let fail = |e: minijinja::Error| TemplateError {
            part,
            message: match e.kind() {
                minijinja::ErrorKind::OutOfFuel => {
                    format!("takes more than {FUEL} steps to render")
                }
                minijinja::ErrorKind::WriteFailure => {
                    format!("renders to more than {MAX_RENDERED_BYTES} bytes")
                }
                _ => e.to_string(),
            },
        };
        let mut env = env.clone();
        env.add_template_owned(name, source.to_owned())
            .map_err(fail)?;
        let mut out = Capped(Vec::new());
        env.get_template(name)
            .map_err(fail)?
            .render_captured_to(
                context! { ..minijinja::Value::from_serialize(vars) },
                &mut out,
            )
            .map_err(fail)?;
        String::from_utf8(out.0).map_err(|_| TemplateError {
            part,
            message: "renders to text that is not UTF-8".into(),
        })
    };
    let subject = part("subject", "subject.txt", &template.subject)?;
    if subject.trim().is_empty() || subject.contains(['\r', '\n']) {
        return Err(TemplateError {
            part: "subject",
            message: "the subject must render to one non-empty line".into(),
        });
    }
    Ok(Rendered {
        subject: subject.trim().to_owned(),
        text: part("text", "body.txt", &template.text)?,
        html: part("html", "body.html", &template.html)?,
    })
}

/// Checks that a template renders; for refusing bad templates when they are set.
pub fn validate(template: &Template) -> Result<(), TemplateError> {
    render(template, &Vars::sample()).map(|_| ())
}

const FOOTER_TEXT: &str = "If you did not expect this email, you can ignore it.\n";
const FOOTER_HTML: &str = "<p>If you did not expect this email, you can ignore it.</p>";

fn html(body: &str) -> String {
    format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><p>Hello,</p>{body}{FOOTER_HTML}</body></html>"
    )
}

/// The built-in template of a kind.
pub fn default_template(kind: Kind) -> Template {
    let (subject, text, body) = match kind {
        Kind::Invitation => (
            "{{ tenant_name }} invites you to its ordering portal",
            "{{ tenant_name }} has invited you to order online for {{ customer_name }}.\n\n{{ message }}\n\nSet your password to get started:\n{{ link }}\n\nThis link works once and expires {{ expiry }}.\n",
            "<p>{{ tenant_name }} has invited you to order online for {{ customer_name }}.</p><blockquote>{{ message }}</blockquote><p><a href=\"{{ link }}\">Set your password</a> to get started.</p><p>This link works once and expires {{ expiry }}.</p>",
        ),
        Kind::InvitationResent => (
            "Your new link to {{ tenant_name }}'s ordering portal",
            "{{ tenant_name }} has invited you to order online for {{ customer_name }}.\n\n{{ message }}\n\nSet your password to get started:\n{{ link }}\n\nThis link works once and expires {{ expiry }}. Links sent earlier no longer work.\n",
            "<p>{{ tenant_name }} has invited you to order online for {{ customer_name }}.</p><blockquote>{{ message }}</blockquote><p><a href=\"{{ link }}\">Set your password</a> to get started.</p><p>This link works once and expires {{ expiry }}. Links sent earlier no longer work.</p>",
        ),
        Kind::PasswordReset => (
            "Set a new password for {{ tenant_name }}'s ordering portal",
            "Someone asked to set a new password for your login to {{ tenant_name }}'s ordering portal.\n\nSet a new password:\n{{ link }}\n\nThis link works once and expires {{ expiry }}. Links sent earlier no longer work.\nIf you did not ask for this, your password stays as it is.\n",
            "<p>Someone asked to set a new password for your login to {{ tenant_name }}'s ordering portal.</p><p><a href=\"{{ link }}\">Set a new password</a>.</p><p>This link works once and expires {{ expiry }}. Links sent earlier no longer work.</p><p>If you did not ask for this, your password stays as it is.</p>",
        ),
        Kind::Welcome => (
            "Your login to {{ tenant_name }}'s ordering portal",
            "{{ tenant_name }} has set up a login for you on its ordering portal.\n\nSet your password to get started:\n{{ link }}\n\nThis link works once and expires {{ expiry }}.\n",
            "<p>{{ tenant_name }} has set up a login for you on its ordering portal.</p><p><a href=\"{{ link }}\">Set your password</a> to get started.</p><p>This link works once and expires {{ expiry }}.</p>",
        ),
        Kind::ApprovalRequest => (
            "New registration awaiting approval: {{ contact_email }}",
            "{{ contact_email }} ({{ customer_name }}) completed registration for {{ tenant_name }}'s ordering portal and waits for approval.\n\nApprove or reject it in your back office; until then the contact cannot log in.\n",
            "<p>{{ contact_email }} ({{ customer_name }}) completed registration for {{ tenant_name }}'s ordering portal and waits for approval.</p><p>Approve or reject it in your back office; until then the contact cannot log in.</p>",
        ),
        Kind::Approved => (
            "Your access to {{ tenant_name }}'s ordering portal is approved",
            "Your registration for {{ customer_name }} was approved: you can log in to {{ tenant_name }}'s ordering portal now.\n",
            "<p>Your registration for {{ customer_name }} was approved: you can log in to {{ tenant_name }}'s ordering portal now.</p>",
        ),
        Kind::TemporaryPassword => (
            "A temporary password for {{ tenant_name }}'s ordering portal",
            "{{ tenant_name }} set a temporary password for your login to its ordering portal. {% if temporary_password %}It is: {{ temporary_password }}\n\nLog in with it soon: you will choose a new password at once.{% else %}Use the one their staff gave you: it is never sent by email. When you log in with it you will choose a new password.{% endif %}\n\nIf you did not expect this, contact {{ tenant_name }}.\n",
            "<p>{{ tenant_name }} set a temporary password for your login to its ordering portal. {% if temporary_password %}It is: <code>{{ temporary_password }}</code></p><p>Log in with it soon: you will choose a new password at once.{% else %}Use the one their staff gave you: it is never sent by email. When you log in with it you will choose a new password.{% endif %}</p><p>If you did not expect this, contact {{ tenant_name }}.</p>",
        ),
        Kind::AccessDisabled => (
            "Your access to {{ tenant_name }}'s ordering portal is disabled",
            "{{ tenant_name }} has disabled your login to its ordering portal. Nothing about your account is lost; if this is a mistake, contact {{ tenant_name }}.\n",
            "<p>{{ tenant_name }} has disabled your login to its ordering portal. Nothing about your account is lost; if this is a mistake, contact {{ tenant_name }}.</p>",
        ),
        Kind::SecondFactorAdded => (
            "A way to sign in was added to your login to {{ tenant_name }}'s ordering portal",
            "{{ message }} was added to your login to {{ tenant_name }}'s ordering portal: from now on, signing in asks for it.\n\nIf you did not do this, contact {{ tenant_name }} at once.\n",
            "<p>{{ message }} was added to your login to {{ tenant_name }}'s ordering portal: from now on, signing in asks for it.</p><p>If you did not do this, contact {{ tenant_name }} at once.</p>",
        ),
        Kind::SecondFactorRemoved => (
            "A way to sign in was removed from your login to {{ tenant_name }}'s ordering portal",
            "An authenticator app or a passkey was removed from your login to {{ tenant_name }}'s ordering portal{% if message %} ({{ message }}){% endif %}: it no longer signs you in.\n\nIf you did not ask for this, contact {{ tenant_name }} at once.\n",
            "<p>An authenticator app or a passkey was removed from your login to {{ tenant_name }}'s ordering portal{% if message %} ({{ message }}){% endif %}: it no longer signs you in.</p><p>If you did not ask for this, contact {{ tenant_name }} at once.</p>",
        ),
    };
    Template {
        subject: subject.into(),
        text: format!("Hello,\n\n{text}\n{FOOTER_TEXT}"),
        html: html(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(text: &str) -> Template {
        Template {
            subject: "Hi".into(),
            text: text.into(),
            html: "<p>hi</p>".into(),
        }
    }

    #[test]
    fn hostile_templates_are_refused_quickly_and_cheaply() {
        let started = std::time::Instant::now();
        let cases = [
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
            "{% set s = message %}{% set s = s ~ s %}{{ s }}",
            "{%- macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
            "{% include 'body.txt' %}",
            "{{ message * 100000 }}",
            "{{ link|safe }}",
            "{{ range(10) }}",
        ];
        for (i, source) in cases.iter().enumerate() {
            let err = validate(&part(source)).expect_err(source);
            assert_eq!(err.part, "text", "case {i}: {err}");
        }
        // Within every limit of the source, too much once a long message is in.
        let mut vars = Vars::sample();
        vars.message = "m".repeat(4000);
        let wide = "{{ message ~ message ~ message ~ message }}".repeat(1000);
        let err = render(&part(&wide), &vars).expect_err("renders to 16 MB");
        assert!(err.message.contains("renders to more than"), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_template_within_the_limits_renders_with_its_filters() {
        let t = part(
            "{{ tenant_name|upper }} {% if message %}{{ message|trim|default('none') }}{% else %}-{% endif %}",
        );
        let rendered = validate(&t);
        assert!(rendered.is_ok(), "{rendered:?}");
        let big = render(&part(&"{{ message }}".repeat(100)), &Vars::sample());
        assert!(big.is_ok());
    }

    #[test]
    fn every_default_renders_and_html_values_are_escaped() {
        for kind in Kind::ALL {
            assert!(validate(&default_template(kind)).is_ok(), "{kind:?}");
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        let vars = Vars {
            customer_name: "<script>x</script>".into(),
            ..Vars::sample()
        };
        let r = render(&default_template(Kind::Invitation), &vars).unwrap();
        assert!(r.html.contains("&lt;script&gt;"), "{}", r.html);
        assert!(r.text.contains("<script>"), "plain text is not escaped");
    }

    #[test]
    fn a_template_that_cannot_render_is_refused_with_its_part() {
        let mut t = default_template(Kind::Invitation);
        t.html = "<p>{{ custmer_name }}</p>".into();
        assert_eq!(validate(&t).unwrap_err().part, "html");
        let mut t = default_template(Kind::Invitation);
        t.subject = "{% if %}".into();
        assert_eq!(validate(&t).unwrap_err().part, "subject");
        let mut t = default_template(Kind::Invitation);
        t.subject = "two\nlines".into();
        assert_eq!(validate(&t).unwrap_err().part, "subject");
    }
}
