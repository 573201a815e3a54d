//! What a mail needs besides its own event (the tenant's name, templates and
//! settings, the customer's name, the contact's address), read from the log
//! when a mail calls for it, as it stood at the mail's event.
//!
//! The mailer keeps no copy of anyone's address: a person's values are read
//! sealed and opened with their key, so once the person is forgotten their
//! address is unreadable here as everywhere else, and no mail goes to them.
//! Only the tenants' settings are remembered between mails, and only by the
//! embedded worker, which sees every event in order and so knows when a
//! tenant changes (see [`Facts::saw`]).

use crate::templates::Template;
use access_catalogue::Envelope;
use access_catalogue::catalogue::{
    ContactEvent, CustomerCreated, CustomerEvent, CustomerUpdated, Event, InvitationEvent,
    TenantEvent,
};
use access_catalogue::envelope::{Aggregate, StreamId};
use access_catalogue::personal::Personal;
use access_log::log::EventLog;
use access_log::vault::{DecodeOpenError, Vault, open_where};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A tenant as its mails need it.
#[derive(Clone, Debug, Default)]
pub(crate) struct TenantFacts {
    pub(crate) name: String,
    /// The tenant's own templates, by kind.
    pub(crate) templates: HashMap<String, Template>,
    /// Whether contacts are told when their access is disabled.
    pub(crate) notify_disabled: bool,
    /// Whether generated temporary passwords are mailed.
    pub(crate) mail_temporary: bool,
    /// Who approves registrations.
    pub(crate) admins: Vec<String>,
}

/// A contact as its mails need it.
#[derive(Clone, Debug, Default)]
pub(crate) struct ContactFacts {
    /// Empty when it has none, or its person was forgotten.
    pub(crate) email: String,
    pub(crate) customer_id: String,
}

/// An invitation as its resend needs it.
#[derive(Clone, Debug, Default)]
pub(crate) struct InvitationFacts {
    /// Where it goes: the contact's address now (empty once forgotten).
    pub(crate) email: String,
    pub(crate) customer_id: String,
    pub(crate) message: String,
    pub(crate) contact_id: String,
}

/// A tenant as read, and the position before which the reading holds
/// (`None`: until the tenant's next event is seen).
type Remembered = (Option<u64>, Arc<TenantFacts>);

/// Tenants remembered at most; beyond, the memory starts over.
const TENANTS_REMEMBERED: usize = 10_000;

/// Reads the facts mails need from the log.
pub(crate) struct Facts {
    log: Arc<dyn EventLog>,
    vault: Arc<dyn Vault>,
    /// Tenants read before, with the position before which each reading
    /// holds (`None`: until the tenant's next event is seen). Only a worker
    /// that sees every event keeps it.
    tenants: Option<Mutex<HashMap<String, Remembered>>>,
}

impl Facts {
    /// Facts from `log`; `remember` when the caller sees every event in
    /// order and tells of each through [`Facts::saw`].
    pub(crate) fn new(log: Arc<dyn EventLog>, vault: Arc<dyn Vault>, remember: bool) -> Self {
        Facts {
            log,
            vault,
            tenants: remember.then(Default::default),
        }
    }

    /// Told of every event in log order: a tenant's event ends what was
    /// remembered of it.
    pub(crate) fn saw(&self, e: &Envelope) {
        if let (Some(tenants), Aggregate::Tenant) = (&self.tenants, e.stream.aggregate()) {
            tenants
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(e.stream.tenant());
        }
    }

    /// The events of `stream` up to position `at`, decoded and opened; an
    /// event this build cannot read is left out.
    async fn read(&self, stream: &StreamId, at: u64) -> anyhow::Result<(Vec<Event>, Option<u64>)> {
        let all = self.log.read_stream_upto(stream, at).await?;
        let next = all.iter().find(|e| e.position > at).map(|e| e.position);
        let upto: Vec<Envelope> = all.into_iter().filter(|e| e.position <= at).collect();
        let events = match decode_for_mail(self.vault.as_ref(), &upto).await {
            Ok(events) => events,
            Err(DecodeOpenError::Codec(_)) => {
                let mut events = Vec::new();
                for e in &upto {
                    match decode_for_mail(self.vault.as_ref(), std::slice::from_ref(e)).await {
                        Ok(mut one) => events.append(&mut one),
                        Err(DecodeOpenError::Codec(_)) => {}
                        Err(DecodeOpenError::Vault(v)) => return Err(v.into()),
                        Err(DecodeOpenError::Missing(d)) => return Err(d.into()),
                    }
                }
                events
            }
            Err(DecodeOpenError::Vault(v)) => return Err(v.into()),
            Err(DecodeOpenError::Missing(d)) => return Err(d.into()),
        };
        Ok((events, next))
    }

    /// Checks that the log's copy of `e`'s stream holds `e` itself: a mail
    /// goes out only for an event its stream's verified chain holds (a
    /// replica behind is retried later).
    pub(crate) async fn holds(&self, e: &Envelope) -> anyhow::Result<()> {
        let all = self.log.read_stream_upto(&e.stream, e.position).await?;
        if all
            .iter()
            .any(|s| s.position == e.position && s.hash == e.hash)
        {
            return Ok(());
        }
        anyhow::bail!(
            "the log's copy of {} does not hold position {} yet; trying again",
            e.stream,
            e.position
        )
    }

    /// The tenant as it stood at position `at`.
    pub(crate) async fn tenant(&self, tenant: &str, at: u64) -> anyhow::Result<Arc<TenantFacts>> {
        if let Some(tenants) = &self.tenants {
            let known = tenants.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((until, facts)) = known.get(tenant)
                && until.is_none_or(|u| at < u)
            {
                return Ok(facts.clone());
            }
        }
        let stream = StreamId::new(Aggregate::Tenant, tenant, tenant)?;
        let (events, next) = self.read(&stream, at).await?;
        let mut facts = TenantFacts {
            name: tenant.to_owned(),
            ..TenantFacts::default()
        };
        for event in events {
            let Event::Tenant(t) = event else { continue };
            match t {
                TenantEvent::TenantCreated(t) => facts.name = t.name,
                TenantEvent::EmailTemplateSet(t) => {
                    facts.templates.insert(
                        t.kind,
                        Template {
                            subject: t.subject,
                            text: t.text,
                            html: t.html,
                        },
                    );
                }
                TenantEvent::EmailTemplateReset(t) => {
                    facts.templates.remove(&t.kind);
                }
                TenantEvent::NotificationPolicySet(p) => {
                    facts.notify_disabled = p.access_disabled;
                    facts.mail_temporary = p.email_temporary_password;
                }
                TenantEvent::UsernameAdministratorsSet(a) => facts.admins = a.emails,
                _ => {}
            }
        }
        let facts = Arc::new(facts);
        if let Some(tenants) = &self.tenants {
            let mut known = tenants.lock().unwrap_or_else(|p| p.into_inner());
            if known.len() >= TENANTS_REMEMBERED {
                known.clear();
            }
            known.insert(tenant.to_owned(), (next, facts.clone()));
        }
        Ok(facts)
    }

    /// The customer's name as it stood at `at` (its id if it has none).
    pub(crate) async fn customer_name(
        &self,
        tenant: &str,
        customer_id: &str,
        at: u64,
    ) -> anyhow::Result<String> {
        let mut name = customer_id.to_owned();
        let Ok(stream) = StreamId::new(Aggregate::Customer, tenant, customer_id) else {
            return Ok(name);
        };
        for event in self.read(&stream, at).await?.0 {
            if let Event::Customer(
                CustomerEvent::CustomerCreated(CustomerCreated { record, .. })
                | CustomerEvent::CustomerUpdated(CustomerUpdated { record }),
            ) = event
            {
                name = record.name;
            }
        }
        Ok(name)
    }

    /// The contact as it stood at `at`, if it existed.
    pub(crate) async fn contact(
        &self,
        tenant: &str,
        contact_id: &str,
        at: u64,
    ) -> anyhow::Result<Option<ContactFacts>> {
        let stream = StreamId::new(Aggregate::Contact, tenant, contact_id)?;
        let mut contact = None;
        for event in self.read(&stream, at).await?.0 {
            let Event::Contact(c) = event else { continue };
            match c {
                ContactEvent::ContactInvited(c) => {
                    contact = Some(ContactFacts {
                        email: readable(&c.email),
                        customer_id: c.customer_id,
                    });
                }
                ContactEvent::LoginCreated(c) => {
                    contact = Some(ContactFacts {
                        email: c.email.as_ref().map(readable).unwrap_or_default(),
                        customer_id: c.customer_id,
                    });
                }
                ContactEvent::ContactImported(c) => {
                    contact = Some(ContactFacts {
                        email: c.email.as_ref().map(readable).unwrap_or_default(),
                        customer_id: c.customer_id,
                    });
                }
                ContactEvent::ContactDetailsChanged(d) => {
                    if let Some(contact) = &mut contact {
                        contact.email = d.email.as_ref().map(readable).unwrap_or_default();
                    }
                }
                _ => {}
            }
        }
        Ok(contact)
    }

    /// The invitation as it stood at `at`, going to its contact's address
    /// then, if it was issued.
    pub(crate) async fn invitation(
        &self,
        tenant: &str,
        invitation_id: &str,
        at: u64,
    ) -> anyhow::Result<Option<InvitationFacts>> {
        let stream = StreamId::new(Aggregate::Invitation, tenant, invitation_id)?;
        let mut found = None;
        for event in self.read(&stream, at).await?.0 {
            if let Event::Invitation(InvitationEvent::InvitationIssued(i)) = event {
                found = Some(InvitationFacts {
                    email: readable(&i.email),
                    customer_id: i.customer_id,
                    message: readable(&i.message),
                    contact_id: i.contact_id,
                });
            }
        }
        let Some(mut invitation) = found else {
            return Ok(None);
        };
        // Later links go to the contact's address of the time.
        if let Some(contact) = self.contact(tenant, &invitation.contact_id, at).await? {
            invitation.email = contact.email;
        }
        Ok(Some(invitation))
    }
}

/// A personal value as mails use it: empty once its person is forgotten.
/// `envelopes` decoded, with the personal values a mail may need opened:
/// every one but a second factor's secret or credential, which are no
/// mail's business and are never opened in the mailer.
pub(crate) async fn decode_for_mail(
    vault: &dyn Vault,
    envelopes: &[Envelope],
) -> Result<Vec<Event>, DecodeOpenError> {
    let mut events = envelopes
        .iter()
        .map(Event::decode)
        .collect::<Result<Vec<_>, _>>()?;
    open_where(vault, envelopes, &mut events, |e| {
        !matches!(
            e,
            Event::Contact(
                access_catalogue::catalogue::ContactEvent::TotpAdded(_)
                    | access_catalogue::catalogue::ContactEvent::PasskeyAdded(_)
                    | access_catalogue::catalogue::ContactEvent::PasskeyUsed(_)
                    | access_catalogue::catalogue::ContactEvent::PasswordImported(_)
            )
        )
    })
    .await?;
    Ok(events)
}

pub(crate) fn readable(p: &Personal) -> String {
    if p.is_erased() {
        String::new()
    } else {
        p.text().to_owned()
    }
}
