//! How each event changes the rows: the projection itself, the same code
//! for live read models and for replays into temporary ones.

use super::rows::*;
use super::tables::{
    FactorKind, FactorRow, Id, Ids, StoredContact, StoredEmail, StoredIdentity, Tables,
    TenantTables, tenant_mut,
};
use crate::domain::contact::Lifecycle;
use crate::domain::lockout::remember_failure;
use crate::domain::password_policy::PasswordPolicy;
use access_catalogue::Envelope;
use access_catalogue::catalogue::{
    ContactEvent, CustomerEvent, DefaultVisibility, Event, IdentityEvent, InvitationEvent,
    OidcClientEvent, OidcGrantEvent, PortalLinkEvent, TenantEvent,
};

/// Whether applying `event` reads a personal value (an email): only those
/// events are opened, the others' sealed values are never read here.
pub(crate) fn reads_personal(event: &Event) -> bool {
    matches!(
        event,
        Event::Identity(IdentityEvent::IdentityRegistered(_))
            | Event::Contact(
                ContactEvent::ContactInvited(_)
                    | ContactEvent::LoginCreated(_)
                    | ContactEvent::ContactImported(_)
                    | ContactEvent::PasswordImported(_)
                    | ContactEvent::ContactDetailsChanged(_)
            )
    )
}

/// Applies one event to the rows and moves the checkpoint to it.
pub(super) fn apply(tables: &mut Tables, envelope: &Envelope, event: Event) {
    let tenant = envelope.stream.tenant();
    let id = envelope.stream.id();
    match event {
        Event::Tenant(e) => apply_tenant(tables, tenant, e),
        Event::Customer(CustomerEvent::CustomerCreated(e)) => {
            tables.tenant_mut(tenant).customers.insert(
                e.record.customer_id.as_str().into(),
                CustomerRow {
                    record: e.record,
                    status: e.status,
                    documents: None,
                    second_factor: Default::default(),
                },
            );
        }
        Event::Customer(change) => {
            if let Some(row) = tables.tenant_mut(tenant).customers.get_mut(id) {
                match change {
                    CustomerEvent::CustomerUpdated(e) => row.record = e.record,
                    CustomerEvent::CustomerStatusChanged(e) => row.status = e.status,
                    CustomerEvent::DocumentVisibilitySet(e) => row.documents = Some(e.kinds),
                    CustomerEvent::SecondFactorPolicySet(e) => row.second_factor = e.require,
                    CustomerEvent::CustomerCreated(_) => {}
                }
            }
        }
        Event::Contact(e) => {
            let t = tenant_mut(&mut tables.tenants, tenant);
            apply_contact(t, &mut tables.ids, id, (e, envelope.occurred_at_ms));
        }
        Event::Identity(IdentityEvent::IdentityRegistered(e)) => {
            let key = tables.ids.intern(id);
            tables.globals_mut(id.as_bytes()).identities.insert(
                key,
                StoredIdentity {
                    email: e.email.text().into(),
                    password_hash: None,
                },
            );
        }
        Event::Identity(IdentityEvent::IdentityForgotten(f)) => {
            // What the rows hold of the person goes with the key.
            if let Some(key) = tables.ids.find(id) {
                tables.globals_mut(id.as_bytes()).identities.remove(&key);
            }
            for (tenant, contact_id) in &f.contacts {
                let contact = tables.ids.find(contact_id);
                if let Some(row) = tables
                    .tenants
                    .get_mut(tenant.as_str())
                    .zip(contact)
                    .and_then(|(t, c)| t.contacts.get_mut(&c))
                {
                    row.email = access_catalogue::personal::ERASED.into();
                }
            }
        }
        Event::Identity(IdentityEvent::PasswordSet(e)) => {
            let key = tables.ids.find(id);
            if let Some(row) =
                key.and_then(|key| tables.globals_mut(id.as_bytes()).identities.get_mut(&key))
            {
                row.password_hash = Some(e.password_hash.into());
            }
        }
        Event::OidcClient(e) => apply_client(tables.tenant_mut(tenant), id, e),
        Event::Webhook(e) => super::webhooks::apply_webhook(
            tables.tenant_mut(tenant),
            id,
            e,
            envelope.occurred_at_ms,
        ),
        Event::OidcGrant(e) => apply_grant(tables.tenant_mut(tenant), tenant, id, e),
        Event::PortalLink(PortalLinkEvent::PortalLinkCreated(e)) => {
            tables
                .tenant_mut(tenant)
                .portal_link_ids
                .insert(e.link_id.as_str().into(), e.token_sha256);
            tables.globals_mut(&e.token_sha256).portal_links.insert(
                e.token_sha256,
                PortalLinkRow {
                    tenant: tenant.to_owned(),
                    link_id: e.link_id,
                    customer_id: e.customer_id,
                    kinds: e.kinds,
                    expires_at_ms: e.expires_at_ms,
                    deleted: false,
                },
            );
        }
        Event::PortalLink(PortalLinkEvent::PortalLinkDeleted(_)) => {
            let hash = tables
                .tenant(tenant)
                .and_then(|t| t.portal_link_ids.get(id).copied());
            if let Some(hash) = hash
                && let Some(row) = tables.globals_mut(&hash).portal_links.get_mut(&hash)
            {
                row.deleted = true;
            }
        }
        // The log's own record: nothing any read model answers from.
        Event::System(_) => {}
        Event::Invitation(e) => {
            let t = tenant_mut(&mut tables.tenants, tenant);
            apply_invitation(t, &mut tables.ids, id, e);
        }
        Event::EmailSlot(_) | Event::UsernameSlot(_) => {}
    }
    tables.checkpoint = envelope.position;
    tables.checkpoint_hash = Some(envelope.hash);
}

fn apply_tenant(tables: &mut Tables, tenant: &str, event: TenantEvent) {
    if let TenantEvent::ApiKeyIssued(e) = event {
        tables.globals_mut(e.key_id.as_bytes()).api_keys.insert(
            e.key_id.as_str().into(),
            KeyRow {
                tenant: tenant.to_owned(),
                role: e.role,
                key_sha256: e.key_sha256,
                name: e.name,
                rep_id: e.rep_id,
                revoked: false,
            },
        );
        return;
    }
    if let TenantEvent::ApiKeyRevoked(e) = event {
        if let Some(row) = tables
            .globals_mut(e.key_id.as_bytes())
            .api_keys
            .get_mut(e.key_id.as_str())
        {
            row.revoked = true;
        }
        return;
    }
    let t = tables.tenant_mut(tenant);
    match event {
        TenantEvent::TenantCreated(e) => {
            t.row = Some(TenantRow {
                name: e.name,
                sites: e.sites,
                default_order_site: e.default_order_site,
                default_visibility: DefaultVisibility::AllSites,
                inactive_customers_may_log_in: true,
                approval_required: false,
                username_administrators: Vec::new(),
                password_policy: PasswordPolicy::default(),
                second_factor: Default::default(),
                branding: Branding::default(),
            });
        }
        TenantEvent::SigningKeyAdded(e) => {
            t.signing_keys.insert(
                e.key_id.as_str().into(),
                SigningKeyRow {
                    key_id: e.key_id,
                    algorithm: e.algorithm,
                    public_key: e.public_key,
                    server_key_id: e.server_key_id,
                    retired_until_ms: None,
                },
            );
        }
        TenantEvent::SigningKeyRetired(e) => {
            if let Some(row) = t.signing_keys.get_mut(e.key_id.as_str()) {
                row.retired_until_ms = Some(e.published_until_ms);
            }
        }
        change => {
            let Some(row) = t.row.as_mut() else { return };
            match change {
                TenantEvent::BrandingSet(e) => {
                    row.branding = Branding {
                        logo_url: e.logo_url,
                        accent_colour: e.accent_colour,
                        portal_url: e.portal_url,
                    };
                }
                TenantEvent::SecondFactorPolicySet(e) => row.second_factor = e.require,
                TenantEvent::PasswordPolicySet(e) => {
                    row.password_policy = PasswordPolicy {
                        min_length: e.min_length,
                        require_mixed_case: e.require_mixed_case,
                        require_symbol: e.require_symbol,
                    };
                }
                TenantEvent::ApprovalPolicySet(e) => row.approval_required = e.approval_required,
                TenantEvent::UsernameAdministratorsSet(e) => {
                    row.username_administrators = e.emails;
                }
                TenantEvent::TenantSettingsChanged(e) => {
                    row.sites = e.sites;
                    row.default_order_site = e.default_order_site;
                    row.default_visibility = e.default_visibility;
                    row.inactive_customers_may_log_in = e.inactive_customers_may_log_in;
                }
                TenantEvent::TenantCreated(_)
                | TenantEvent::SigningKeyAdded(_)
                | TenantEvent::SigningKeyRetired(_)
                | TenantEvent::ApiKeyIssued(_)
                | TenantEvent::ApiKeyRevoked(_)
                | TenantEvent::EmailTemplateSet(_)
                | TenantEvent::EmailTemplateReset(_)
                | TenantEvent::NotificationPolicySet(_) => {}
            }
        }
    }
}

/// Lists a contact under its customer, keeping the id order.
fn list_under_customer(t: &mut TenantTables, ids: &Ids, customer: Id, contact: Id) {
    let listed = t.customer_contacts.entry(customer).or_default();
    let name = ids.name(contact);
    if let Err(at) = listed.binary_search_by(|c| ids.name(*c).cmp(name)) {
        listed.insert(at, contact);
    }
}

fn apply_contact(
    t: &mut TenantTables,
    ids: &mut Ids,
    id: &str,
    (event, at_ms): (ContactEvent, i64),
) {
    match event {
        ContactEvent::ContactInvited(e) => {
            let contact = ids.intern(&e.contact_id);
            let identity = ids.intern(&e.identity_id);
            let customer = ids.intern(&e.customer_id);
            t.memberships.insert(identity, contact);
            list_under_customer(t, ids, customer, contact);
            let mut row = StoredContact::new(customer, e.site_rule);
            row.email = e.email.text().into();
            row.identity = Some(identity);
            row.invitation = Some(ids.intern(&e.invitation_id));
            t.contacts.insert(contact, row);
        }
        ContactEvent::LoginCreated(e) => {
            let contact = ids.intern(&e.contact_id);
            let customer = ids.intern(&e.customer_id);
            list_under_customer(t, ids, customer, contact);
            let identity = e.identity_id.as_deref().map(|i| ids.intern(i));
            if let Some(identity) = identity {
                t.memberships.insert(identity, contact);
            }
            t.usernames
                .insert(e.username.to_lowercase().into(), contact);
            let mut row = StoredContact::new(customer, e.site_rule);
            row.email = e.email.map(|e| e.text().into()).unwrap_or_default();
            row.identity = identity;
            row.lifecycle = Lifecycle::Active;
            row.username = Some(e.username.into());
            row.kind = e.kind;
            t.contacts.insert(contact, row);
        }
        ContactEvent::ContactImported(e) => {
            let contact = ids.intern(&e.contact_id);
            let customer = ids.intern(&e.customer_id);
            list_under_customer(t, ids, customer, contact);
            let identity = e.identity_id.as_deref().map(|i| ids.intern(i));
            if let Some(identity) = identity {
                t.memberships.insert(identity, contact);
            }
            if let Some(username) = &e.username {
                t.usernames.insert(username.to_lowercase().into(), contact);
            }
            let mut row = StoredContact::new(customer, e.site_rule);
            row.email = e.email.map(|e| e.text().into()).unwrap_or_default();
            row.identity = identity;
            row.lifecycle = Lifecycle::Active;
            row.username = e.username.map(Into::into);
            row.kind = e.kind;
            row.disabled = e.disabled;
            row.logged_in = e.logged_in;
            t.contacts.insert(contact, row);
        }
        ContactEvent::ContactDetailsChanged(e) => {
            let Some(contact) = ids.find(id) else { return };
            let identity = e.identity_id.as_deref().map(|i| ids.intern(i));
            let Some(row) = t.contacts.get_mut(&contact) else {
                return;
            };
            if let Some(old) = row.identity {
                t.memberships.remove(&old);
            }
            if let Some(old) = &row.username {
                t.usernames.remove(old.to_lowercase().as_str());
            }
            if let Some(identity) = identity {
                t.memberships.insert(identity, contact);
            }
            if let Some(username) = &e.username {
                t.usernames.insert(username.to_lowercase().into(), contact);
            }
            row.email = e.email.map(|e| e.text().into()).unwrap_or_default();
            row.identity = identity;
            row.username = e.username.map(Into::into);
        }
        change => {
            let Some(row) = ids.find(id).and_then(|c| t.contacts.get_mut(&c)) else {
                return;
            };
            match change {
                ContactEvent::ContactActivated(_) => row.lifecycle = Lifecycle::Active,
                ContactEvent::AccessDisabled(_) => row.disabled = true,
                ContactEvent::AccessRestored(_) => row.disabled = false,
                ContactEvent::AccessRevoked(_) => row.lifecycle = Lifecycle::Revoked,
                ContactEvent::LocalPasswordSet(e) => {
                    row.local_password_hash = Some(e.password_hash.into());
                    row.temporary = e.temporary;
                    row.password_imported = false;
                }
                ContactEvent::PasswordImported(e) => {
                    row.local_password_hash = Some(e.password_hash.text().into());
                    row.temporary = false;
                    row.password_imported = true;
                }
                ContactEvent::PasswordRehashed(e) => {
                    row.local_password_hash = Some(e.password_hash.into());
                    row.password_imported = false;
                }
                ContactEvent::FirstLogin(_) | ContactEvent::LoginCodeExchanged(_) => {
                    row.logged_in = true;
                }
                ContactEvent::SecondFactorUsed(_) | ContactEvent::PasskeyUsed(_) => {}
                ContactEvent::TotpAdded(e) => {
                    if let Some(key) = ids.find(id) {
                        t.second_factors.entry(key).or_default().push(FactorRow {
                            factor_id: e.factor_id.into(),
                            kind: FactorKind::Totp,
                            name: "".into(),
                        });
                    }
                }
                ContactEvent::PasskeyAdded(e) => {
                    if let Some(key) = ids.find(id) {
                        t.second_factors.entry(key).or_default().push(FactorRow {
                            factor_id: e.factor_id.into(),
                            kind: FactorKind::Passkey,
                            name: e.name.into(),
                        });
                    }
                }
                ContactEvent::SecondFactorRemoved(e) => {
                    if let Some(key) = ids.find(id) {
                        t.factors_removed_at.insert(key, at_ms);
                        if let Some(factors) = t.second_factors.get_mut(&key) {
                            factors.retain(|f| *f.factor_id != *e.factor_id);
                            if factors.is_empty() {
                                t.second_factors.remove(&key);
                            }
                        }
                    }
                }
                ContactEvent::EmailSent(e) => {
                    row.last_email = Some(StoredEmail::new(LastEmail {
                        kind: e.kind,
                        sent: true,
                        reason: String::new(),
                    }));
                }
                ContactEvent::EmailDeliveryFailed(e) => {
                    row.last_email = Some(StoredEmail::new(LastEmail {
                        kind: e.kind,
                        sent: false,
                        reason: e.reason,
                    }));
                }
                ContactEvent::ContactAwaitingApproval(_) => {
                    row.lifecycle = Lifecycle::PendingApproval;
                }
                ContactEvent::ContactApproved(_) => row.lifecycle = Lifecycle::Active,
                ContactEvent::ContactRejected(_) => row.lifecycle = Lifecycle::Revoked,
                ContactEvent::LocalPasswordCleared(_) => {
                    row.local_password_hash = None;
                    row.temporary = false;
                    row.password_imported = false;
                }
                ContactEvent::LoginFailed(e) => remember_failure(&mut row.failed_logins, e.at_ms),
                ContactEvent::LoginLocked(e) => row.locked_until_ms = e.until_ms,
                ContactEvent::LoginFailuresCleared(_) => {
                    row.failed_logins.clear();
                    row.locked_until_ms = 0;
                }
                ContactEvent::PasswordResetRequested(_)
                | ContactEvent::PasswordResetCompleted(_)
                | ContactEvent::ContactDetailsChanged(_)
                | ContactEvent::ContactInvited(_)
                | ContactEvent::ContactImported(_)
                | ContactEvent::LoginCreated(_) => {}
            }
        }
    }
}

fn apply_invitation(t: &mut TenantTables, ids: &mut Ids, id: &str, event: InvitationEvent) {
    let (contact, expires_at_ms) = match event {
        InvitationEvent::InvitationIssued(e) => {
            let contact = ids.intern(&e.contact_id);
            t.invitations.insert(ids.intern(&e.invitation_id), contact);
            (Some(contact), e.expires_at_ms)
        }
        InvitationEvent::InvitationResent(e) => (None, e.expires_at_ms),
        InvitationEvent::InvitationAccepted(_) | InvitationEvent::InvitationCancelled(_) => {
            (None, 0)
        }
    };
    let contact = contact.or_else(|| t.invitations.get(&ids.find(id)?).copied());
    if let Some(row) = contact.and_then(|c| t.contacts.get_mut(&c)) {
        row.invitation_expires_at_ms = expires_at_ms;
    }
}

/// A client's row follows its events; a removed client has none.
fn apply_client(t: &mut TenantTables, id: &str, event: OidcClientEvent) {
    match event {
        OidcClientEvent::OidcClientRegistered(e) => {
            t.oidc_clients.insert(
                id.into(),
                OidcClientRow {
                    client_id: e.client_id,
                    kind: e.kind,
                    settings: e.settings,
                    secret_generation: u32::from(e.secret_sha256.is_some()),
                    secret_sha256: e.secret_sha256,
                },
            );
        }
        OidcClientEvent::OidcClientUpdated(e) => {
            if let Some(row) = t.oidc_clients.get_mut(id) {
                row.settings = e.settings;
            }
        }
        OidcClientEvent::OidcClientSecretRotated(e) => {
            if let Some(row) = t.oidc_clients.get_mut(id) {
                row.secret_sha256 = Some(e.secret_sha256);
                row.secret_generation = e.generation;
            }
        }
        OidcClientEvent::OidcClientRemoved(_) => {
            t.oidc_clients.remove(id);
        }
    }
}

/// A grant's row follows its events; the contact's index lists it.
fn apply_grant(t: &mut TenantTables, tenant: &str, id: &str, event: OidcGrantEvent) {
    match event {
        // A grant is live (listed by contact) once its code is redeemed: a
        // code never redeemed gives nothing to end.
        OidcGrantEvent::AuthorizationCodeIssued(e) => {
            t.grants.insert(
                id.into(),
                OidcGrantRow {
                    grant_id: id.to_owned(),
                    client_id: e.client_id,
                    contact_id: e.contact_id,
                    session_id: e.session_id,
                    auth_time_ms: e.auth_time_ms,
                    generation: 0,
                    refresh_expires_at_ms: 0,
                    ended: None,
                },
            );
        }
        OidcGrantEvent::AuthorizationCodeRedeemed(e) => {
            if let Some(row) = t.grants.get_mut(id) {
                if row.ended.is_none() {
                    t.live_grants
                        .insert((row.contact_id.as_str().into(), id.into()));
                }
                row.generation = 1;
                row.refresh_expires_at_ms = e.refresh_expires_at_ms;
            }
        }
        OidcGrantEvent::RefreshTokenRotated(e) => {
            if let Some(row) = t.grants.get_mut(id) {
                row.generation = e.generation;
                row.refresh_expires_at_ms = e.refresh_expires_at_ms;
            }
        }
        OidcGrantEvent::GrantRevoked(e) => {
            let Some(row) = t.grants.get_mut(id) else {
                return;
            };
            t.live_grants
                .remove(&(row.contact_id.as_str().into(), id.into()));
            let uri = t
                .oidc_clients
                .get(row.client_id.as_str())
                .and_then(|c| c.settings.backchannel_logout_uri.clone());
            if let Some(uri) = uri.filter(|_| crate::domain::oidc_grants::tells_client(e.reason)) {
                t.pending_logouts.insert(
                    id.into(),
                    PendingLogout {
                        tenant: tenant.to_owned(),
                        grant_id: id.to_owned(),
                        client_id: row.client_id.clone(),
                        contact_id: row.contact_id.clone(),
                        session_id: row.session_id.clone(),
                        uri,
                    },
                );
            }
            row.ended = Some(e.reason);
        }
        OidcGrantEvent::BackchannelLogoutDelivered(_)
        | OidcGrantEvent::BackchannelLogoutAbandoned(_) => {
            t.pending_logouts.remove(id);
        }
    }
}
