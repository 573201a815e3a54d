//! Passkeys (WebAuthn, user verification required): registered from a
//! session, and a sign-in of their own or the second step after a password.
//! The relying party is the host of the service's public address, shared
//! by every tenant; a credential is bound to its contact, so to one tenant.
//! A ceremony's state rides in a MAC'd token (`access_keyring::passkeys`),
//! so any replica finishes what another began. A refused answer passes the
//! same gate as a wrong password; each challenge lets a contact in once.

use super::factors::{Enroller, Guard};
use super::queries::LoginOutcome;
use super::throttle::Account;
use super::{App, AppError, Command, CommandContext, Outcome, Unit};
use crate::domain::contact::ContactState;
use crate::domain::factors::Of;
use crate::domain::passkeys::{self, Registration};
use crate::domain::values::{GeneratedId, TenantId};
use crate::domain::{Change, DomainError, Reason, streams};
use crate::projections::FactorKind;
use access_catalogue::Actor;
use access_keyring::CeremonyClaims;
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

/// A ceremony begun: the options for the browser, and the token that
/// finishes it.
#[derive(Clone, Debug)]
pub struct PasskeyCeremony {
    /// `{"publicKey": …}` for `navigator.credentials.create()` or `.get()`.
    pub options_json: String,
    /// Sent back with the browser's answer.
    pub ceremony_token: String,
}

/// Record a passkey the ceremony accepted.
#[derive(Clone, Debug)]
struct AddPasskey {
    tenant: TenantId,
    contact_id: GeneratedId,
    registration: Registration,
    /// The credential's id, which no passkey of the contact may have.
    credential_id: Vec<u8>,
    guard: Guard,
}

impl Command for AddPasskey {
    /// The factor's id.
    type Reply = String;

    async fn decide(
        &self,
        _: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let state: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        self.guard.check(&state)?;
        // The same answer sent twice (a form posted again) registers once.
        if usable(&state)
            .iter()
            .any(|(_, key)| key.cred_id().as_slice() == self.credential_id.as_slice())
        {
            return Err(
                DomainError::AlreadyExists("the passkey is registered already".into()).into(),
            );
        }
        let of = Of {
            tenant: &self.tenant,
            contact_id: &self.contact_id,
        };
        let changes = passkeys::add(&state, of, self.registration.clone())?;
        Ok((changes, self.registration.factor_id.clone()))
    }
}

/// Record a sign-in with a passkey whose assertion was verified.
#[derive(Clone, Debug)]
struct UsePasskey {
    tenant: TenantId,
    contact_id: GeneratedId,
    factor_id: String,
    challenge_at_ms: i64,
    updated: Option<String>,
}

impl Command for UsePasskey {
    type Reply = ();

    async fn decide(&self, _: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let state: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        let of = Of {
            tenant: &self.tenant,
            contact_id: &self.contact_id,
        };
        let changes = passkeys::used(
            &state,
            of,
            &self.factor_id,
            self.challenge_at_ms,
            self.updated.clone(),
        )?;
        Ok((changes, ()))
    }
}

fn refused() -> AppError {
    DomainError::Unauthenticated {
        reason: Reason::BadCredentials,
        message: "the passkey was not accepted; try again or sign in another way".into(),
    }
    .into()
}

fn stale() -> AppError {
    DomainError::Unauthenticated {
        reason: Reason::SessionInvalid,
        message: "the passkey step took too long or its token is not valid; begin again".into(),
    }
    .into()
}

fn bad_json(field: &str, e: serde_json::Error) -> AppError {
    DomainError::invalid(
        field,
        format!("not a WebAuthn credential in JSON form: {e}"),
    )
    .into()
}

/// A contact's passkeys as the WebAuthn library reads them, with their
/// factor ids (an erased or unreadable one is left out).
fn usable(state: &ContactState) -> Vec<(String, Passkey)> {
    state
        .passkeys
        .iter()
        .filter_map(|p| {
            let key = serde_json::from_str::<Passkey>(&p.credential).ok()?;
            Some((p.factor_id.clone(), key))
        })
        .collect()
}

/// Options as the browser's `PublicKeyCredential.parse…OptionsFromJSON`
/// take them: absent members left out rather than `null` (which they
/// refuse).
fn options_json(options: &impl serde::Serialize) -> Result<String, AppError> {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.retain(|_, v| !v.is_null());
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(options).map_err(|e| AppError::Internal(e.into()))?;
    strip(&mut value);
    Ok(value.to_string())
}

/// The WebAuthn user handle of a contact: its id, which is a UUID's hex.
fn user_handle(contact_id: &str) -> Option<Uuid> {
    Uuid::try_parse(contact_id).ok()
}

impl App {
    /// The relying party: the host of the public address, for `tenant`.
    pub(super) fn webauthn(&self, tenant: &str) -> Result<Webauthn, AppError> {
        let unavailable = || {
            DomainError::precondition(
                Reason::NotFound,
                "passkeys are not offered: the service's public address must name a host \
                 (--public-base-url https://portal.example.com), not an IP address",
            )
        };
        let base = Url::parse(&self.settings.public_base_url).map_err(|_| unavailable())?;
        let host = base.domain().ok_or_else(unavailable)?.to_owned();
        let origin = Url::parse(&base.origin().ascii_serialization()).map_err(|_| unavailable())?;
        let name = self
            .models
            .tenant(tenant)
            .map_err(AppError::Internal)?
            .map_or_else(|| tenant.to_owned(), |t| t.name);
        WebauthnBuilder::new(&host, &origin)
            .and_then(|b| b.rp_name(&name).build())
            .map_err(|_| unavailable().into())
    }

    /// Loads a contact's stream as it stands (for its passkeys).
    async fn contact_state(
        &self,
        tenant: &TenantId,
        contact_id: &GeneratedId,
    ) -> Result<ContactState, AppError> {
        Unit::new(self)
            .load(&streams::contact(tenant, contact_id))
            .await
    }

    /// Begins registering a passkey for the contact of a session or of a
    /// challenge that requires enrolment.
    pub async fn begin_passkey_registration(
        &self,
        tenant: &TenantId,
        who: Enroller<'_>,
    ) -> Result<PasskeyCeremony, AppError> {
        let (enrolling, _) = self.enrolling(tenant, who, FactorKind::Passkey)?;
        let webauthn = self.webauthn(tenant.as_str())?;
        let (Ok(contact_id), Some(handle)) =
            (GeneratedId::parse(&enrolling), user_handle(&enrolling))
        else {
            return Err(super::factors::session_refused());
        };
        let state = self.contact_state(tenant, &contact_id).await?;
        // Refused before the browser makes a credential it could not keep.
        if state.passkeys.len() >= passkeys::MAX_PASSKEYS {
            return Err(DomainError::precondition(
                Reason::LimitReached,
                format!(
                    "a contact holds at most {} passkeys; remove one first",
                    passkeys::MAX_PASSKEYS
                ),
            )
            .into());
        }
        let exclude = usable(&state)
            .into_iter()
            .map(|(_, key)| key.cred_id().clone())
            .collect::<Vec<_>>();
        let account = state
            .username
            .clone()
            .unwrap_or_else(|| state.email.clone());
        let (options, registration): (CreationChallengeResponse, PasskeyRegistration) = webauthn
            .start_passkey_registration(handle, &account, &account, Some(exclude))
            .map_err(|e| AppError::Internal(anyhow::anyhow!("passkey options: {e}")))?;
        let mut options =
            serde_json::to_value(&options).map_err(|e| AppError::Internal(e.into()))?;
        // A passkey signs in without a login name: the authenticator must
        // keep the credential (a discoverable one).
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(serde_json::Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "required".into());
            selection.insert("requireResidentKey".into(), true.into());
        }
        let token = self.keyring.passkey_registration(&CeremonyClaims {
            tenant: tenant.to_string(),
            contact_id: enrolling.clone(),
            made_at_ms: self.now_ms(),
            after_password: false,
            must_change_password: false,
            state: serde_json::to_string(&registration)
                .map_err(|e| AppError::Internal(e.into()))?,
        });
        Ok(PasskeyCeremony {
            options_json: options_json(&options)?,
            ceremony_token: token,
        })
    }

    /// Finishes a registration with the browser's answer; the reply is the
    /// new factor's id and, for a registration with a sign-in's challenge,
    /// the session it opens.
    pub async fn finish_passkey_registration(
        &self,
        ctx: &CommandContext,
        tenant: &TenantId,
        (who, token): (Enroller<'_>, &str),
        credential_json: &str,
        name: &str,
    ) -> Result<Outcome<(String, Option<LoginOutcome>)>, AppError> {
        let (enrolling, challenge) = self.enrolling(tenant, who, FactorKind::Passkey)?;
        let ceremony = self
            .keyring
            .open_passkey_registration(token, self.now_ms())
            .filter(|c| c.tenant == tenant.as_str() && c.contact_id == enrolling)
            .ok_or_else(stale)?;
        let credential: RegisterPublicKeyCredential =
            serde_json::from_str(credential_json).map_err(|e| bad_json("credential_json", e))?;
        let state: PasskeyRegistration =
            serde_json::from_str(&ceremony.state).map_err(|_| stale())?;
        let passkey = self
            .webauthn(tenant.as_str())?
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| {
                DomainError::invalid(
                    "credential_json",
                    format!("the browser's answer does not register a passkey: {e}"),
                )
            })?;
        let contact_id =
            GeneratedId::parse(&enrolling).map_err(|_| super::factors::session_refused())?;
        let cmd = AddPasskey {
            credential_id: passkey.cred_id().to_vec(),
            guard: Guard::of(&challenge),
            tenant: tenant.clone(),
            contact_id,
            registration: Registration {
                factor_id: GeneratedId::generate().to_string(),
                name: name.to_owned(),
                credential: serde_json::to_string(&passkey)
                    .map_err(|e| AppError::Internal(e.into()))?,
            },
        };
        let outcome = self.execute(ctx, &cmd).await?;
        self.wait_for(outcome.position).await?;
        let session = match challenge {
            // The registration was made with user verification, by whoever
            // gave the password: as a sign-in, that is a key and the user.
            Some(_) => {
                let amr = ["pwd", "swk", "user", "mfa"].map(String::from).to_vec();
                Some(self.signed_in_enrolled(tenant, &enrolling, amr).await?)
            }
            None => None,
        };
        Ok(outcome.map(|factor_id| (factor_id, session)))
    }

    /// Begins a sign-in with a passkey: any of the tenant's, or, after a
    /// right password (`challenge`), only that contact's. The browser
    /// offers the passkeys it holds for the service, so no login name is
    /// asked for or disclosed; whose it is, the answer says.
    pub fn begin_passkey_login(
        &self,
        tenant: &TenantId,
        challenge: Option<&str>,
    ) -> Result<PasskeyCeremony, AppError> {
        let webauthn = self.webauthn(tenant.as_str())?;
        let mut claims = CeremonyClaims {
            tenant: tenant.to_string(),
            contact_id: String::new(),
            made_at_ms: self.now_ms(),
            after_password: false,
            must_change_password: false,
            state: String::new(),
        };
        if let Some(challenge) = challenge {
            let after = self
                .keyring
                .verify_second_factor_challenge(challenge, self.now_ms())
                .filter(|c| c.tenant == tenant.as_str())
                .ok_or_else(stale)?;
            claims.contact_id = after.contact_id;
            claims.after_password = true;
            claims.must_change_password = after.must_change_password;
        }
        let (mut options, state): (_, DiscoverableAuthentication) = webauthn
            .start_discoverable_authentication()
            .map_err(|e| AppError::Internal(anyhow::anyhow!("passkey options: {e}")))?;
        // Asked for by a button, not offered in a field's autofill.
        options.mediation = None;
        claims.state = serde_json::to_string(&state).map_err(|e| AppError::Internal(e.into()))?;
        Ok(PasskeyCeremony {
            options_json: options_json(&options)?,
            ceremony_token: self.keyring.passkey_login(&claims),
        })
    }

    /// The contact a genuine, unexpired challenge of `tenant` is for.
    pub fn verify_challenge_contact(&self, tenant: &str, challenge: &str) -> Option<String> {
        self.keyring
            .verify_second_factor_challenge(challenge, self.now_ms())
            .filter(|c| c.tenant == tenant)
            .map(|c| c.contact_id)
    }

    /// A passkey sign-in to offer on a page: `None` where passkeys are not
    /// offered, or, after a password, when the contact has none.
    pub fn passkey_offer(
        &self,
        tenant: &TenantId,
        challenge: Option<&str>,
    ) -> Option<PasskeyCeremony> {
        if let Some(challenge) = challenge {
            let after = self
                .keyring
                .verify_second_factor_challenge(challenge, self.now_ms())?;
            let has_passkey = self
                .models
                .second_factors(tenant.as_str(), &after.contact_id)
                .iter()
                .any(|f| f.kind == crate::projections::FactorKind::Passkey);
            if !has_passkey {
                return None;
            }
        }
        self.begin_passkey_login(tenant, challenge).ok()
    }

    /// Finishes a passkey sign-in with the browser's answer: a session, or
    /// a refusal that counts as a failed login.
    pub async fn finish_passkey_login(
        &self,
        tenant: &TenantId,
        token: &str,
        credential_json: &str,
        client_address: &str,
    ) -> Result<LoginOutcome, AppError> {
        let ceremony = self
            .keyring
            .open_passkey_login(token, self.now_ms())
            .filter(|c| c.tenant == tenant.as_str())
            .ok_or_else(stale)?;
        let credential: PublicKeyCredential =
            serde_json::from_str(credential_json).map_err(|e| bad_json("credential_json", e))?;
        // Whose passkey: the authenticator names the contact (its user
        // handle is the contact's id); after a password, it must be that
        // password's contact.
        let named = credential
            .get_user_unique_id()
            .and_then(|b| Uuid::from_slice(b).ok())
            .map(|u| u.simple().to_string())
            .unwrap_or_default();
        let contact_id = if ceremony.contact_id.is_empty() {
            named.clone()
        } else {
            ceremony.contact_id.clone()
        };
        let row = self
            .models
            .contact(tenant.as_str(), &contact_id)
            .map_err(AppError::Internal)?;
        let durable = || {
            self.models
                .contact(tenant.as_str(), &contact_id)
                .ok()
                .flatten()
                .map_or((Vec::new(), 0), |r| (r.failed_logins, r.locked_until_ms))
        };
        let unknown = format!("passkey:{contact_id}");
        let gate = match &row {
            Some(_) => Account::Known {
                tenant: tenant.as_str(),
                contact_id: &contact_id,
                durable: &durable,
            },
            None => Account::Unknown {
                tenant: tenant.as_str(),
                name: &unknown,
            },
        };
        let ticket = self
            .throttle
            .admit(gate, client_address, self.now_ms())
            .map_err(DomainError::from)?;
        let mut held: Vec<Vec<u8>> = Vec::new();
        let verified = match (&row, GeneratedId::parse(&contact_id)) {
            (Some(_), Ok(id)) if named == contact_id => {
                let state = self.contact_state(tenant, &id).await?;
                held = usable(&state)
                    .iter()
                    .map(|(_, key)| key.cred_id().to_vec())
                    .collect();
                self.verify_assertion(tenant, &ceremony, &credential, &state)
                    .map(|found| (id, found))
            }
            _ => None,
        };
        let Some((id, (factor_id, updated, amr))) = verified else {
            metrics::counter!("access_logins_total", "outcome" => "bad_passkey").increment(1);
            // A credential the contact does not hold (one left on a device by
            // a registration that never finished, say) counts against the
            // address only: it must not lock the contact's login.
            let known = row
                .filter(|_| held.contains(&credential.get_credential_id().to_vec()))
                .map(|r| r.contact_id);
            self.login_failed(tenant.as_str(), known, client_address, ticket);
            return Err(refused());
        };
        // Whether the contact may sign in at all is asked before anything is
        // recorded of it (and again after, for what changed meanwhile).
        if let Some(contact) = &row {
            let decision = self.check(
                tenant.as_str(),
                contact,
                &crate::domain::access::Action::Login,
            )?;
            if !decision.allowed {
                drop(ticket);
                return Err(super::queries::login_refusal(decision).into());
            }
        }
        let cmd = UsePasskey {
            tenant: tenant.clone(),
            contact_id: id,
            factor_id,
            challenge_at_ms: ceremony.made_at_ms,
            updated,
        };
        let request_id = format!("passkey:{}", uuid::Uuid::now_v7());
        let actor = Actor::Contact {
            contact_id: contact_id.clone(),
        };
        match self.execute_derived(&request_id, tenant, actor, &cmd).await {
            Ok(outcome) => {
                drop(ticket);
                self.wait_for(outcome.position).await?;
            }
            Err(AppError::Domain(DomainError::Unauthenticated { .. })) => {
                metrics::counter!("access_logins_total", "outcome" => "bad_passkey").increment(1);
                self.login_failed(tenant.as_str(), Some(contact_id), client_address, ticket);
                return Err(refused());
            }
            Err(e) => return Err(e),
        }
        let contact = self
            .models
            .contact(tenant.as_str(), &contact_id)
            .map_err(AppError::Internal)?
            .ok_or(DomainError::NotFound("contact"))?;
        let decision = self.check(
            tenant.as_str(),
            &contact,
            &crate::domain::access::Action::Login,
        )?;
        if !decision.allowed {
            return Err(super::queries::login_refusal(decision).into());
        }
        let amr = if ceremony.after_password {
            std::iter::once("pwd".to_owned()).chain(amr).collect()
        } else {
            amr
        };
        self.signed_in(tenant.as_str(), contact, amr).await
    }

    /// Checks an assertion against the contact's passkeys: the factor it
    /// came from, the credential to record when it moved, and the methods
    /// it proves (RFC 8176: a key, `hwk` unless it is synced, `user`
    /// verification, so `mfa`).
    fn verify_assertion(
        &self,
        tenant: &TenantId,
        ceremony: &CeremonyClaims,
        credential: &PublicKeyCredential,
        state: &ContactState,
    ) -> Option<(String, Option<String>, Vec<String>)> {
        let webauthn = self.webauthn(tenant.as_str()).ok()?;
        let (factor_id, mut key) = usable(state)
            .into_iter()
            .find(|(_, key)| key.cred_id().as_slice() == credential.get_credential_id())?;
        let auth: DiscoverableAuthentication = serde_json::from_str(&ceremony.state).ok()?;
        let result = webauthn
            .finish_discoverable_authentication_v2(credential, auth, &key)
            .ok()?;
        if !result.user_verified() {
            return None;
        }
        let updated = match key.update_credential(&result) {
            Some(true) => serde_json::to_string(&key).ok(),
            _ => None,
        };
        let kind = if result.backup_eligible() {
            "swk"
        } else {
            "hwk"
        };
        Some((
            factor_id,
            updated,
            vec![kind.into(), "user".into(), "mfa".into()],
        ))
    }
}
