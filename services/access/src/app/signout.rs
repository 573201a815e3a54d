//! Sign-ins that end: a contact who may no longer sign in loses every live
//! grant, and each client that asked to be told gets a logout token
//! (OpenID Connect Back-Channel Logout 1.0), recorded once delivered. The
//! worker that drives this is `crate::signout`; these are its steps.

use super::{App, AppError, Command, Unit};
use crate::domain::oidc_grants::{self, GrantState, GrantStream};
use crate::domain::values::{GeneratedId, TenantId};
use crate::domain::{Change, streams};
use crate::projections::{LiveGrant, OidcGrantRow, PendingLogout};
use access_catalogue::catalogue::{
    ContactEvent, CustomerEvent, Event, GrantEnd, IdentityEvent, TenantEvent,
};
use access_catalogue::envelope::Aggregate;
use access_catalogue::{Actor, Envelope};
use serde_json::json;

/// How long a logout token is good for.
const LOGOUT_TOKEN_TTL_S: i64 = 120;

/// What is done to one ended grant.
#[derive(Clone, Debug)]
enum Step {
    End(GrantEnd),
    Settle(Option<String>),
}

/// One step on one grant's stream.
#[derive(Clone, Debug)]
struct GrantStep {
    tenant: TenantId,
    grant_id: GeneratedId,
    step: Step,
}

impl Command for GrantStep {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let state: GrantState = unit
            .load(&streams::oidc_grant(&self.tenant, &self.grant_id))
            .await?;
        let stream = GrantStream {
            tenant: &self.tenant,
            grant_id: &self.grant_id,
        };
        let changes = match &self.step {
            Step::End(reason) => oidc_grants::revoke(&stream, &state, *reason),
            Step::Settle(abandoned) => {
                oidc_grants::settle_logout(&stream, &state, abandoned.clone())
            }
        };
        Ok((changes, ()))
    }
}

impl App {
    /// Runs a step on a grant under a request id derived from it, so every
    /// replica doing the same records it once.
    async fn grant_step(&self, tenant: &str, grant_id: &str, step: Step) -> Result<u64, AppError> {
        let (Ok(tenant), Ok(grant_id)) = (TenantId::parse(tenant), GeneratedId::parse(grant_id))
        else {
            return Ok(0);
        };
        let label = match step {
            Step::End(_) => "end",
            Step::Settle(_) => "logout",
        };
        let request_id = format!("grant-{label}:{tenant}:{grant_id}");
        let actor = Actor::System {
            component: "sign-out".into(),
        };
        let cmd = GrantStep {
            tenant: tenant.clone(),
            grant_id,
            step,
        };
        Ok(self
            .execute_derived(&request_id, &tenant, actor, &cmd)
            .await?
            .position)
    }

    /// Ends one grant for `reason` (once, whoever asks).
    pub async fn end_grant(
        &self,
        tenant: &str,
        grant_id: &str,
        reason: GrantEnd,
    ) -> Result<u64, AppError> {
        self.grant_step(tenant, grant_id, Step::End(reason)).await
    }

    /// Ends every live grant of a contact who may no longer sign in; the
    /// number ended.
    pub async fn end_grants_if_access_lost(
        &self,
        tenant: &str,
        contact_id: &str,
    ) -> Result<usize, AppError> {
        let grants = self
            .models
            .live_grants_of(tenant, contact_id)
            .map_err(AppError::Internal)?;
        if grants.is_empty() || self.may_sign_in(tenant, contact_id)?.is_ok() {
            return Ok(0);
        }
        self.end_live_grants(tenant, contact_id, GrantEnd::AccessLost, |_| true)
            .await
    }

    /// Ends the live grants of a contact for which `which` holds, for
    /// `reason`, and waits until that can be read; the number ended.
    async fn end_live_grants(
        &self,
        tenant: &str,
        contact_id: &str,
        reason: GrantEnd,
        which: impl Fn(&OidcGrantRow) -> bool,
    ) -> Result<usize, AppError> {
        let mut ended = 0;
        let mut last = 0;
        for grant in self
            .models
            .live_grants_of(tenant, contact_id)
            .map_err(AppError::Internal)?
        {
            let chosen = self
                .models
                .oidc_grant(tenant, &grant)
                .map_err(AppError::Internal)?
                .is_some_and(|g| which(&g));
            if chosen {
                last = self.end_grant(tenant, &grant, reason).await?;
                ended += 1;
            }
        }
        self.wait_for(last).await?;
        Ok(ended)
    }

    /// Ends the live grants of a contact signed in before `at_ms`, when their
    /// password changed then; the number ended.
    pub async fn end_grants_signed_in_before(
        &self,
        tenant: &str,
        contact_id: &str,
        (at_ms, why): (i64, GrantEnd),
    ) -> Result<usize, AppError> {
        let before = |g: &OidcGrantRow| g.auth_time_ms < at_ms;
        self.end_live_grants(tenant, contact_id, why, before).await
    }

    /// Live grants of every tenant, after the index key `after`, at most
    /// `limit`.
    pub fn live_grants_after(
        &self,
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<LiveGrant>, AppError> {
        self.models
            .live_grants_after(after, limit)
            .map_err(AppError::Internal)
    }

    /// Clients still to be told that a sign-in ended, of those `due` picks
    /// (at most `limit`).
    pub fn pending_logouts(
        &self,
        due: impl Fn(&PendingLogout) -> bool,
        limit: usize,
    ) -> Result<Vec<PendingLogout>, AppError> {
        self.models
            .pending_logouts(due, limit)
            .map_err(AppError::Internal)
    }

    /// The logout token for a pending logout (OpenID Connect Back-Channel
    /// Logout 1.0 §2.4), explicitly typed `logout+jwt`.
    pub fn logout_token(&self, p: &PendingLogout) -> Result<String, AppError> {
        // Signed as the client's tokens are, so its library checks it.
        let algorithm = self
            .models
            .oidc_client(&p.tenant, &p.client_id)
            .map_err(AppError::Internal)?
            .map_or_else(|| "EdDSA".to_owned(), |c| c.settings.token_signing_alg);
        let signer = self.token_signer(&p.tenant, &algorithm)?;
        let now_s = self.now_ms() / 1000;
        let claims = json!({
            "iss": self.issuer(&p.tenant),
            "aud": p.client_id,
            "iat": now_s,
            "exp": now_s + LOGOUT_TOKEN_TTL_S,
            "jti": uuid::Uuid::new_v4().to_string(),
            "sub": p.contact_id,
            "sid": p.session_id,
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        });
        Ok(signer.sign("logout+jwt", &claims))
    }

    /// Records that the client was told (`None`) or that telling it was
    /// given up (`Some(why)`).
    pub async fn settle_logout(
        &self,
        p: &PendingLogout,
        abandoned: Option<String>,
    ) -> Result<u64, AppError> {
        self.grant_step(&p.tenant, &p.grant_id, Step::Settle(abandoned))
            .await
    }

    /// The contact (tenant, contact) whose password an event changed, or
    /// one of whose second factors it removed, when, and why: their earlier
    /// sign-ins end. (A reset changes the identity's password too; that
    /// identity's logins at other tenants keep theirs.)
    pub fn credentials_changed(
        &self,
        envelope: &Envelope,
    ) -> Option<(String, String, (i64, GrantEnd))> {
        if envelope.stream.aggregate() != Aggregate::Contact {
            return None;
        }
        let why = match Event::decode(envelope).ok()? {
            Event::Contact(
                ContactEvent::LocalPasswordSet(_)
                | ContactEvent::PasswordImported(_)
                | ContactEvent::PasswordResetCompleted(_)
                | ContactEvent::LocalPasswordCleared(_),
            ) => GrantEnd::PasswordChanged,
            Event::Contact(ContactEvent::SecondFactorRemoved(_)) => GrantEnd::FactorRemoved,
            _ => return None,
        };
        Some((
            envelope.stream.tenant().to_owned(),
            envelope.stream.id().to_owned(),
            (envelope.occurred_at_ms, why),
        ))
    }

    /// The contacts (tenant, contact) whose access an event may have ended,
    /// among those with live grants.
    pub fn contacts_touched(&self, envelope: &Envelope) -> Result<Vec<(String, String)>, AppError> {
        let tenant = envelope.stream.tenant();
        let id = envelope.stream.id();
        let relevant = matches!(
            envelope.stream.aggregate(),
            Aggregate::Contact | Aggregate::Customer | Aggregate::Identity | Aggregate::Tenant
        );
        if !relevant {
            return Ok(Vec::new());
        }
        let Ok(event) = Event::decode(envelope) else {
            return Ok(Vec::new());
        };
        let with_grants = |tenant: &str, contact: &str| -> Result<bool, AppError> {
            Ok(!self
                .models
                .live_grants_of(tenant, contact)
                .map_err(AppError::Internal)?
                .is_empty())
        };
        let mut touched = Vec::new();
        match event {
            Event::Contact(
                ContactEvent::LoginFailed(_)
                | ContactEvent::FirstLogin(_)
                | ContactEvent::LoginCodeExchanged(_)
                | ContactEvent::LoginFailuresCleared(_),
            ) => {}
            Event::Contact(_) => touched.push((tenant.to_owned(), id.to_owned())),
            Event::Customer(CustomerEvent::CustomerStatusChanged(_)) => {
                for contact in self
                    .models
                    .contacts_of(tenant, id)
                    .map_err(AppError::Internal)?
                {
                    touched.push((tenant.to_owned(), contact.contact_id));
                }
            }
            Event::Identity(IdentityEvent::IdentityForgotten(f)) => touched.extend(f.contacts),
            Event::Tenant(TenantEvent::TenantSettingsChanged(_)) => {
                for contact in self
                    .models
                    .contacts_with_live_grants(tenant)
                    .map_err(AppError::Internal)?
                {
                    touched.push((tenant.to_owned(), contact));
                }
            }
            _ => {}
        }
        touched.sort();
        touched.dedup();
        let mut out = Vec::with_capacity(touched.len());
        for (tenant, contact) in touched {
            if with_grants(&tenant, &contact)? {
                out.push((tenant, contact));
            }
        }
        Ok(out)
    }
}

/// What a genuine ID token given back at sign-out names.
#[derive(Clone, Debug)]
pub struct IdTokenHint {
    /// The client it was issued to.
    pub client_id: String,
    /// The contact.
    pub contact_id: String,
    /// The provider session.
    pub session_id: String,
}

impl App {
    /// The client, contact and session of an ID token this tenant issued
    /// (expired ones too: a sign-out often comes after the token's life).
    pub fn id_token_hint(
        &self,
        tenant: &str,
        token: &str,
    ) -> Result<Option<IdTokenHint>, AppError> {
        let key = |kid: &str| self.published_signing_key(tenant, kid);
        let Some(claims) = super::jwt::verify(token, "JWT", key) else {
            return Ok(None);
        };
        let text = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        if text("iss").as_deref() != Some(self.issuer(tenant).as_str()) {
            return Ok(None);
        }
        Ok(match (text("aud"), text("sub"), text("sid")) {
            (Some(client_id), Some(contact_id), Some(session_id)) => Some(IdTokenHint {
                client_id,
                contact_id,
                session_id,
            }),
            _ => None,
        })
    }

    /// Ends the live grants of one provider session (the contact signed
    /// out); their clients are told. The number ended.
    pub async fn end_session(
        &self,
        tenant: &str,
        contact_id: &str,
        session_id: &str,
    ) -> Result<usize, AppError> {
        let in_session = |g: &OidcGrantRow| g.session_id == session_id;
        self.end_live_grants(tenant, contact_id, GrantEnd::LoggedOut, in_session)
            .await
    }
}
