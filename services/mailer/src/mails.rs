//! Each kind of mail: who it goes to, what it says, and its link.

use crate::compose;
use crate::facts::{InvitationFacts, TenantFacts};
use crate::state::{Core, Step};
use crate::templates::{Kind, Rendered, Vars};
use access_catalogue::Envelope;
use access_catalogue::catalogue::PasswordResetRequested;
use access_keyring::LinkClaims;

impl Core {
    /// Tells the username administrators of a registration awaiting approval
    /// (`to_admins`), or the contact that it was approved.
    pub(crate) async fn send_approval_notice(
        &self,
        e: &Envelope,
        to_admins: bool,
        step: &mut Step,
    ) -> anyhow::Result<bool> {
        let event_id = e.event_id.simple().to_string();
        if self.handled(&event_id) {
            return Ok(false);
        }
        let tenant = e.stream.tenant();
        let Some(contact) = self
            .facts
            .contact(tenant, e.stream.id(), e.position)
            .await?
        else {
            return Ok(false);
        };
        let facts = self.facts.tenant(tenant, e.position).await?;
        let customer_name = self
            .facts
            .customer_name(tenant, &contact.customer_id, e.position)
            .await?;
        let (recipients, kind) = if to_admins {
            (facts.admins.clone(), Kind::ApprovalRequest)
        } else {
            (vec![contact.email.clone()], Kind::Approved)
        };
        let recipients: Vec<String> = recipients.into_iter().filter(|r| !r.is_empty()).collect();
        if recipients.is_empty() {
            return Ok(false);
        }
        let vars = Vars {
            tenant_name: facts.name.clone(),
            customer_name,
            contact_email: contact.email.clone(),
            ..Vars::default()
        };
        let recipients: Vec<&str> = recipients
            .iter()
            .map(String::as_str)
            .filter(|r| !r.is_empty())
            .collect();
        if recipients.is_empty() {
            tracing::warn!(tenant, "an approval notice with no recipient; nothing sent");
            return Ok(false);
        }
        let rendered = self.render(&facts, kind, &vars)?;
        let message = compose::message(&self.config.from, &recipients, &rendered, &event_id)?;
        if !self
            .deliver(
                &event_id,
                &message,
                (
                    tenant,
                    e.stream.id(),
                    if to_admins {
                        "approval_request"
                    } else {
                        "approved"
                    },
                ),
                step,
            )
            .await?
        {
            return Ok(false);
        }
        tracing::info!(tenant, to_admins, "approval notice sent");
        Ok(true)
    }

    /// Renders `kind` with the tenant's template, or the built-in one if the
    /// tenant has none (or, which setting it prevents, one that fails).
    pub(crate) fn render(
        &self,
        tenant: &TenantFacts,
        kind: Kind,
        vars: &Vars,
    ) -> anyhow::Result<Rendered> {
        match compose::render(kind, tenant.templates.get(kind.as_str()), vars) {
            Ok(rendered) => Ok(rendered),
            Err(e) => {
                tracing::warn!(tenant = tenant.name, kind = kind.as_str(), error = %e, "tenant template failed; using the built-in one");
                Ok(compose::render(kind, None, vars)?)
            }
        }
    }

    /// Tells a contact something without a link (a temporary password was set,
    /// never the password itself; access was disabled; a second factor was
    /// added or removed). `extra` is the generated temporary password for
    /// that notice, and staff's reason for the others.
    pub(crate) async fn send_notice(
        &self,
        e: &Envelope,
        kind: Kind,
        extra: Option<String>,
        step: &mut Step,
    ) -> anyhow::Result<bool> {
        let event_id = e.event_id.simple().to_string();
        if self.handled(&event_id) {
            return Ok(false);
        }
        let tenant = e.stream.tenant();
        let contact_id = e.stream.id();
        let email = self
            .facts
            .contact(tenant, contact_id, e.position)
            .await?
            .map(|c| c.email)
            .filter(|e| !e.is_empty());
        let Some(email) = email else {
            // A login without an email (a staff login, say): nobody to tell.
            return Ok(false);
        };
        let facts = self.facts.tenant(tenant, e.position).await?;
        let vars = Vars {
            tenant_name: facts.name.clone(),
            contact_email: email.clone(),
            temporary_password: extra
                .clone()
                .filter(|_| kind == Kind::TemporaryPassword)
                .unwrap_or_default(),
            message: extra
                .filter(|_| kind != Kind::TemporaryPassword)
                .unwrap_or_default(),
            ..Vars::default()
        };
        let rendered = self.render(&facts, kind, &vars)?;
        let message = compose::message(&self.config.from, &[&email], &rendered, &event_id)?;
        if !self
            .deliver(
                &event_id,
                &message,
                (tenant, contact_id, kind.as_str()),
                step,
            )
            .await?
        {
            return Ok(false);
        }
        tracing::info!(tenant, contact_id, kind = kind.as_str(), "notice sent");
        Ok(true)
    }

    pub(crate) async fn send_reset(
        &self,
        e: &Envelope,
        r: &PasswordResetRequested,
        step: &mut Step,
    ) -> anyhow::Result<bool> {
        let event_id = e.event_id.simple().to_string();
        if self.handled(&event_id) {
            return Ok(false);
        }
        let tenant = e.stream.tenant();
        let contact_id = e.stream.id();
        let email = self
            .facts
            .contact(tenant, contact_id, e.position)
            .await?
            .map(|c| c.email)
            .filter(|e| !e.is_empty());
        let Some(email) = email else {
            // The service refuses resets for logins without an email.
            tracing::warn!(
                tenant,
                contact_id,
                "a reset for a login with no email; nothing sent"
            );
            return Ok(false);
        };
        let facts = self.facts.tenant(tenant, e.position).await?;
        let token = self.keyring.reset_token(&LinkClaims {
            tenant: tenant.to_owned(),
            subject_id: contact_id.to_owned(),
            generation: r.generation,
        });
        let link = format!(
            "{}/reset/{token}",
            self.config.public_base_url.trim_end_matches('/')
        );
        let vars = Vars {
            tenant_name: facts.name.clone(),
            contact_email: email.clone(),
            link,
            expiry: compose::expiry_words(r.expires_at_ms),
            ..Vars::default()
        };
        let kind = if r.first_time {
            Kind::Welcome
        } else {
            Kind::PasswordReset
        };
        let rendered = self.render(&facts, kind, &vars)?;
        let message = compose::message(&self.config.from, &[&email], &rendered, &event_id)?;
        if !self
            .deliver(
                &event_id,
                &message,
                (
                    tenant,
                    contact_id,
                    if r.first_time {
                        "welcome"
                    } else {
                        "password_reset"
                    },
                ),
                step,
            )
            .await?
        {
            return Ok(false);
        }
        tracing::info!(
            tenant,
            contact_id,
            generation = r.generation,
            "password-reset email sent"
        );
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send_invitation(
        &self,
        e: &Envelope,
        info: &InvitationFacts,
        invitation_id: &str,
        generation: u32,
        expires_at_ms: i64,
        resent: bool,
        step: &mut Step,
    ) -> anyhow::Result<bool> {
        let event_id = e.event_id.simple().to_string();
        if self.handled(&event_id) {
            return Ok(false);
        }
        if info.email.is_empty() {
            // The person was forgotten: there is nobody to write to.
            return Ok(false);
        }
        let tenant = e.stream.tenant();
        let facts = self.facts.tenant(tenant, e.position).await?;
        let customer_name = self
            .facts
            .customer_name(tenant, &info.customer_id, e.position)
            .await?;
        let token = self.keyring.invitation_token(&LinkClaims {
            tenant: tenant.to_owned(),
            subject_id: invitation_id.to_owned(),
            generation,
        });
        let link = format!(
            "{}/invite/{token}",
            self.config.public_base_url.trim_end_matches('/')
        );
        let vars = Vars {
            tenant_name: facts.name.clone(),
            customer_name,
            contact_email: info.email.clone(),
            message: info.message.clone(),
            link,
            expiry: compose::expiry_words(expires_at_ms),
            ..Vars::default()
        };
        let kind = if resent {
            Kind::InvitationResent
        } else {
            Kind::Invitation
        };
        let rendered = self.render(&facts, kind, &vars)?;
        let message = compose::message(&self.config.from, &[&info.email], &rendered, &event_id)?;
        if !self
            .deliver(
                &event_id,
                &message,
                (tenant, &info.contact_id, kind.as_str()),
                step,
            )
            .await?
        {
            return Ok(false);
        }
        tracing::info!(tenant, invitation_id, generation, "invitation email sent");
        Ok(true)
    }
}
