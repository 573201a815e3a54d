//! How each event changes the rows: the projection itself, the same code
//! for live read models and for replays into temporary ones.

use super::keys;
use super::rows::*;
use crate::domain::contact::Lifecycle;
use crate::domain::lockout::remember_failure;
use crate::domain::password_policy::PasswordPolicy;
use access_catalogue::Envelope;
use access_catalogue::catalogue::{
    ContactEvent, CustomerEvent, DefaultVisibility, Event, IdentityEvent, InvitationEvent,
    LoginKind, OidcClientEvent, OidcGrantEvent, PortalLinkEvent, TenantEvent,
};
use serde::{Deserialize, Serialize};

/// Reads and writes rows during one batch.
pub(super) trait Rows {
    fn get<T: for<'a> Deserialize<'a>>(&mut self, key: &[u8]) -> anyhow::Result<Option<T>>;
    fn put<T: Serialize>(&mut self, key: Vec<u8>, row: &T);
    fn del(&mut self, key: Vec<u8>);

    /// Changes the row at `key` with `change`, if there is one.
    fn update<T: Serialize + for<'a> Deserialize<'a>>(
        &mut self,
        key: Vec<u8>,
        change: impl FnOnce(&mut T),
    ) -> anyhow::Result<()> {
        if let Some(mut row) = self.get::<T>(&key)? {
            change(&mut row);
            self.put(key, &row);
        }
        Ok(())
    }
}

fn set_invitation_expiry(
    rows: &mut impl Rows,
    tenant: &str,
    contact_id: &str,
    expires_at_ms: i64,
) -> anyhow::Result<()> {
    rows.update(keys::contact(tenant, contact_id), |row: &mut ContactRow| {
        row.invitation_expires_at_ms = expires_at_ms;
    })
}

/// Applies one event to the rows.
pub(super) fn apply(rows: &mut impl Rows, envelope: &Envelope, event: Event) -> anyhow::Result<()> {
    let tenant = envelope.stream.tenant();
    let id = envelope.stream.id();
    match event {
        Event::Tenant(TenantEvent::TenantCreated(e)) => rows.put(
            keys::tenant(tenant),
            &TenantRow {
                name: e.name,
                sites: e.sites,
                default_order_site: e.default_order_site,
                default_visibility: DefaultVisibility::AllSites,
                inactive_customers_may_log_in: true,
                approval_required: false,
                username_administrators: Vec::new(),
                password_policy: PasswordPolicy::default(),
                branding: Branding::default(),
            },
        ),
        Event::Tenant(TenantEvent::SigningKeyAdded(e)) => rows.put(
            keys::signing_key(tenant, &e.key_id),
            &SigningKeyRow {
                key_id: e.key_id,
                algorithm: e.algorithm,
                public_key: e.public_key,
                server_key_id: e.server_key_id,
                retired_until_ms: None,
            },
        ),
        Event::Tenant(TenantEvent::SigningKeyRetired(e)) => {
            rows.update(
                keys::signing_key(tenant, &e.key_id),
                |row: &mut SigningKeyRow| {
                    row.retired_until_ms = Some(e.published_until_ms);
                },
            )?;
        }
        Event::Tenant(TenantEvent::BrandingSet(e)) => {
            rows.update(keys::tenant(tenant), |row: &mut TenantRow| {
                row.branding = Branding {
                    logo_url: e.logo_url,
                    accent_colour: e.accent_colour,
                    portal_url: e.portal_url,
                };
            })?;
        }
        Event::Tenant(TenantEvent::PasswordPolicySet(e)) => {
            rows.update(keys::tenant(tenant), |row: &mut TenantRow| {
                row.password_policy = PasswordPolicy {
                    min_length: e.min_length,
                    require_mixed_case: e.require_mixed_case,
                    require_symbol: e.require_symbol,
                };
            })?;
        }
        Event::Tenant(TenantEvent::ApprovalPolicySet(e)) => {
            rows.update(keys::tenant(tenant), |row: &mut TenantRow| {
                row.approval_required = e.approval_required;
            })?;
        }
        Event::Tenant(TenantEvent::UsernameAdministratorsSet(e)) => {
            rows.update(keys::tenant(tenant), |row: &mut TenantRow| {
                row.username_administrators = e.emails;
            })?;
        }
        Event::Tenant(TenantEvent::TenantSettingsChanged(e)) => {
            rows.update(keys::tenant(tenant), |row: &mut TenantRow| {
                row.sites = e.sites;
                row.default_order_site = e.default_order_site;
                row.default_visibility = e.default_visibility;
                row.inactive_customers_may_log_in = e.inactive_customers_may_log_in;
            })?;
        }
        Event::Tenant(TenantEvent::ApiKeyIssued(e)) => rows.put(
            keys::key(&e.key_id),
            &KeyRow {
                tenant: tenant.to_owned(),
                role: e.role,
                key_sha256: e.key_sha256,
                name: e.name,
                rep_id: e.rep_id,
                revoked: false,
            },
        ),
        Event::Tenant(TenantEvent::ApiKeyRevoked(e)) => {
            rows.update(keys::key(&e.key_id), |row: &mut KeyRow| {
                row.revoked = true;
            })?;
        }
        Event::Customer(CustomerEvent::CustomerCreated(e)) => rows.put(
            keys::customer(tenant, &e.record.customer_id),
            &CustomerRow {
                record: e.record,
                status: e.status,
                documents: None,
            },
        ),
        Event::Customer(change) => {
            rows.update(
                keys::customer(tenant, id),
                |row: &mut CustomerRow| match change {
                    CustomerEvent::CustomerUpdated(e) => row.record = e.record,
                    CustomerEvent::CustomerStatusChanged(e) => row.status = e.status,
                    CustomerEvent::DocumentVisibilitySet(e) => row.documents = Some(e.kinds),
                    CustomerEvent::CustomerCreated(_) => {}
                },
            )?;
        }
        Event::Contact(ContactEvent::ContactInvited(e)) => {
            rows.put(keys::membership(tenant, &e.identity_id), &e.contact_id);
            rows.put(
                keys::customer_contact(tenant, &e.customer_id, &e.contact_id),
                &(),
            );
            rows.put(
                keys::contact(tenant, &e.contact_id),
                &ContactRow {
                    contact_id: e.contact_id.clone(),
                    customer_id: e.customer_id,
                    email: e.email.text().to_owned(),
                    identity_id: e.identity_id,
                    site_rule: e.site_rule,
                    lifecycle: Lifecycle::Invited,
                    disabled: false,
                    invitation_id: e.invitation_id,
                    username: None,
                    kind: LoginKind::Management,
                    local_password_hash: None,
                    temporary: false,
                    logged_in: false,
                    invitation_expires_at_ms: 0,
                    last_email: None,
                    failed_logins: Vec::new(),
                    locked_until_ms: 0,
                },
            );
        }
        Event::Contact(ContactEvent::LoginCreated(e)) => {
            rows.put(
                keys::customer_contact(tenant, &e.customer_id, &e.contact_id),
                &(),
            );
            if let Some(identity) = &e.identity_id {
                rows.put(keys::membership(tenant, identity), &e.contact_id);
            }
            rows.put(keys::username(tenant, &e.username), &e.contact_id);
            rows.put(
                keys::contact(tenant, &e.contact_id),
                &ContactRow {
                    contact_id: e.contact_id.clone(),
                    customer_id: e.customer_id,
                    email: e.email.map(|e| e.text().to_owned()).unwrap_or_default(),
                    identity_id: e.identity_id.unwrap_or_default(),
                    site_rule: e.site_rule,
                    lifecycle: Lifecycle::Active,
                    disabled: false,
                    invitation_id: String::new(),
                    username: Some(e.username),
                    kind: e.kind,
                    local_password_hash: None,
                    temporary: false,
                    logged_in: false,
                    invitation_expires_at_ms: 0,
                    last_email: None,
                    failed_logins: Vec::new(),
                    locked_until_ms: 0,
                },
            );
        }
        Event::Contact(change) => {
            let key = keys::contact(tenant, id);
            if let Some(mut row) = rows.get::<ContactRow>(&key)? {
                match change {
                    ContactEvent::ContactActivated(_) => row.lifecycle = Lifecycle::Active,
                    ContactEvent::AccessDisabled(_) => row.disabled = true,
                    ContactEvent::AccessRestored(_) => row.disabled = false,
                    ContactEvent::AccessRevoked(_) => row.lifecycle = Lifecycle::Revoked,
                    ContactEvent::LocalPasswordSet(e) => {
                        row.local_password_hash = Some(e.password_hash);
                        row.temporary = e.temporary;
                    }
                    ContactEvent::FirstLogin(_) => row.logged_in = true,
                    ContactEvent::EmailSent(e) => {
                        row.last_email = Some(LastEmail {
                            kind: e.kind,
                            sent: true,
                            reason: String::new(),
                        });
                    }
                    ContactEvent::EmailDeliveryFailed(e) => {
                        row.last_email = Some(LastEmail {
                            kind: e.kind,
                            sent: false,
                            reason: e.reason,
                        });
                    }
                    ContactEvent::ContactDetailsChanged(e) => {
                        if !row.identity_id.is_empty() {
                            rows.del(keys::membership(tenant, &row.identity_id));
                        }
                        if let Some(old) = &row.username {
                            rows.del(keys::username(tenant, old));
                        }
                        if let Some(identity) = &e.identity_id {
                            rows.put(keys::membership(tenant, identity), &row.contact_id);
                        }
                        if let Some(username) = &e.username {
                            rows.put(keys::username(tenant, username), &row.contact_id);
                        }
                        row.email = e.email.map(|e| e.text().to_owned()).unwrap_or_default();
                        row.identity_id = e.identity_id.unwrap_or_default();
                        row.username = e.username;
                    }
                    ContactEvent::ContactAwaitingApproval(_) => {
                        row.lifecycle = Lifecycle::PendingApproval
                    }
                    ContactEvent::ContactApproved(_) => row.lifecycle = Lifecycle::Active,
                    ContactEvent::ContactRejected(_) => row.lifecycle = Lifecycle::Revoked,
                    ContactEvent::LocalPasswordCleared(_) => {
                        row.local_password_hash = None;
                        row.temporary = false;
                    }
                    ContactEvent::LoginFailed(e) => {
                        remember_failure(&mut row.failed_logins, e.at_ms)
                    }
                    ContactEvent::LoginLocked(e) => row.locked_until_ms = e.until_ms,
                    ContactEvent::LoginFailuresCleared(_) => {
                        row.failed_logins.clear();
                        row.locked_until_ms = 0;
                    }
                    ContactEvent::LoginCodeExchanged(_) => row.logged_in = true,
                    ContactEvent::PasswordResetRequested(_)
                    | ContactEvent::PasswordResetCompleted(_) => {}
                    ContactEvent::ContactInvited(_) | ContactEvent::LoginCreated(_) => {}
                }
                rows.put(key, &row);
            }
        }
        Event::Identity(IdentityEvent::IdentityRegistered(e)) => rows.put(
            keys::identity(id),
            &IdentityRow {
                email: e.email.text().to_owned(),
                password_hash: None,
            },
        ),
        Event::Identity(IdentityEvent::IdentityForgotten(f)) => {
            // What the rows hold of the person goes with the key.
            rows.del(keys::identity(id));
            for (tenant, contact_id) in &f.contacts {
                rows.update(keys::contact(tenant, contact_id), |row: &mut ContactRow| {
                    row.email = access_catalogue::personal::ERASED.to_owned();
                })?;
            }
        }
        Event::Identity(IdentityEvent::PasswordSet(e)) => {
            rows.update(keys::identity(id), |row: &mut IdentityRow| {
                row.password_hash = Some(e.password_hash);
            })?;
        }
        Event::OidcClient(e) => apply_client(rows, tenant, id, e)?,
        Event::OidcGrant(e) => apply_grant(rows, tenant, id, e)?,
        Event::PortalLink(PortalLinkEvent::PortalLinkCreated(e)) => {
            rows.put(keys::portal_link_id(tenant, &e.link_id), &e.token_sha256);
            rows.put(
                keys::portal_link(&e.token_sha256),
                &PortalLinkRow {
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
            if let Some(hash) = rows.get::<[u8; 32]>(&keys::portal_link_id(tenant, id))? {
                rows.update(keys::portal_link(&hash), |row: &mut PortalLinkRow| {
                    row.deleted = true;
                })?;
            }
        }
        // The log's own record: nothing any read model answers from.
        Event::System(_) => {}
        Event::Invitation(InvitationEvent::InvitationIssued(e)) => {
            rows.put(keys::invitation(tenant, &e.invitation_id), &e.contact_id);
            set_invitation_expiry(rows, tenant, &e.contact_id, e.expires_at_ms)?;
        }
        Event::Invitation(InvitationEvent::InvitationResent(e)) => {
            if let Some(contact_id) = rows.get::<String>(&keys::invitation(tenant, id))? {
                set_invitation_expiry(rows, tenant, &contact_id, e.expires_at_ms)?;
            }
        }
        Event::Invitation(
            InvitationEvent::InvitationAccepted(_) | InvitationEvent::InvitationCancelled(_),
        ) => {
            if let Some(contact_id) = rows.get::<String>(&keys::invitation(tenant, id))? {
                set_invitation_expiry(rows, tenant, &contact_id, 0)?;
            }
        }
        Event::EmailSlot(_)
        | Event::UsernameSlot(_)
        | Event::Tenant(
            TenantEvent::EmailTemplateSet(_)
            | TenantEvent::EmailTemplateReset(_)
            | TenantEvent::NotificationPolicySet(_),
        ) => {}
    }
    Ok(())
}

/// A client's row follows its events; a removed client has none.
fn apply_client(
    rows: &mut impl Rows,
    tenant: &str,
    id: &str,
    event: OidcClientEvent,
) -> anyhow::Result<()> {
    let key = keys::oidc_client(tenant, id);
    match event {
        OidcClientEvent::OidcClientRegistered(e) => rows.put(
            key,
            &OidcClientRow {
                client_id: e.client_id,
                kind: e.kind,
                settings: e.settings,
                secret_generation: u32::from(e.secret_sha256.is_some()),
                secret_sha256: e.secret_sha256,
            },
        ),
        OidcClientEvent::OidcClientUpdated(e) => {
            if let Some(mut row) = rows.get::<OidcClientRow>(&key)? {
                row.settings = e.settings;
                rows.put(key, &row);
            }
        }
        OidcClientEvent::OidcClientSecretRotated(e) => {
            if let Some(mut row) = rows.get::<OidcClientRow>(&key)? {
                row.secret_sha256 = Some(e.secret_sha256);
                row.secret_generation = e.generation;
                rows.put(key, &row);
            }
        }
        OidcClientEvent::OidcClientRemoved(_) => rows.del(key),
    }
    Ok(())
}

/// A grant's row follows its events; the contact's index lists it.
fn apply_grant(
    rows: &mut impl Rows,
    tenant: &str,
    id: &str,
    event: OidcGrantEvent,
) -> anyhow::Result<()> {
    let key = keys::oidc_grant(tenant, id);
    match event {
        // A grant is live (listed by contact) once its code is redeemed: a
        // code never redeemed gives nothing to end.
        OidcGrantEvent::AuthorizationCodeIssued(e) => {
            rows.put(
                key,
                &OidcGrantRow {
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
            if let Some(mut row) = rows.get::<OidcGrantRow>(&key)? {
                if row.ended.is_none() {
                    rows.put(keys::contact_grant(tenant, &row.contact_id, id), &());
                }
                row.generation = 1;
                row.refresh_expires_at_ms = e.refresh_expires_at_ms;
                rows.put(key, &row);
            }
        }
        OidcGrantEvent::RefreshTokenRotated(e) => {
            rows.update(key, |row: &mut OidcGrantRow| {
                row.generation = e.generation;
                row.refresh_expires_at_ms = e.refresh_expires_at_ms;
            })?;
        }
        OidcGrantEvent::GrantRevoked(e) => {
            if let Some(mut row) = rows.get::<OidcGrantRow>(&key)? {
                rows.del(keys::contact_grant(tenant, &row.contact_id, id));
                let client =
                    rows.get::<OidcClientRow>(&keys::oidc_client(tenant, &row.client_id))?;
                let uri = client.and_then(|c| c.settings.backchannel_logout_uri);
                if let Some(uri) =
                    uri.filter(|_| crate::domain::oidc_grants::tells_client(e.reason))
                {
                    rows.put(
                        keys::pending_logout(tenant, id),
                        &PendingLogout {
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
                rows.put(key, &row);
            }
        }
        OidcGrantEvent::BackchannelLogoutDelivered(_)
        | OidcGrantEvent::BackchannelLogoutAbandoned(_) => {
            rows.del(keys::pending_logout(tenant, id));
        }
    }
    Ok(())
}
