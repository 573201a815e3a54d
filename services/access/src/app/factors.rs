//! A contact's second factor: enrolling an authenticator app from a
//! session, and the second step of a sign-in. A wrong code passes the same
//! gate as a wrong password (per login and per address), and a code or
//! recovery code is taken once, through the contact's stream.

use super::factor_policy::{SecondStep, enrol_word};
use super::queries::LoginOutcome;
use super::throttle::Account;
use super::{App, AppError, Command, CommandContext, Outcome, Unit};
use crate::domain::contact::ContactState;
use crate::domain::factors::{self, Enrolment, Of, recovery_digest};
use crate::domain::totp;
use crate::domain::values::{GeneratedId, TenantId};
use crate::domain::{Change, DomainError, Reason, streams};
use crate::projections::{ContactRow, FactorKind, FactorRow};
use access_catalogue::Actor;
use access_keyring::ChallengeClaims;

/// An enrolment begun: what the contact's app needs, and the token that
/// confirms it.
#[derive(Clone)]
pub struct TotpEnrolmentStart {
    /// The shared secret, base32 (what an app takes typed in).
    pub secret: String,
    /// The `otpauth://` URI (what an app takes from a QR code).
    pub uri: String,
    /// Sent back with the first code.
    pub enrolment_token: String,
}

impl std::fmt::Debug for TotpEnrolmentStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolmentStart(<redacted>)")
    }
}

/// Add the app whose secret an enrolment token carries.
#[derive(Clone, Debug)]
struct AddTotp {
    tenant: TenantId,
    contact_id: GeneratedId,
    enrolment: Enrolment,
    guard: Guard,
}

/// What an enrolment with a sign-in's challenge may add, checked on the
/// contact's stream as it is decided: a challenge is good for five minutes
/// and may be sent again, but adds one factor, only where the policy asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Guard {
    /// From a session: whatever the contact adds.
    Session,
    /// A first factor: the contact has none.
    FirstFactor,
    /// A first passkey, after the contact gave its app's code.
    FirstPasskey,
}

impl Guard {
    /// The guard of an enrolment with `challenge` (none: a session's).
    pub(super) fn of(challenge: &Option<ChallengeClaims>) -> Guard {
        match challenge {
            None => Guard::Session,
            Some(c) if c.gave_factor => Guard::FirstPasskey,
            Some(_) => Guard::FirstFactor,
        }
    }

    /// Refuses what the guard does not let through, for `state`.
    pub(super) fn check(self, state: &ContactState) -> Result<(), AppError> {
        let taken = match self {
            Guard::Session => false,
            Guard::FirstFactor => state.totp.is_some() || !state.passkeys.is_empty(),
            Guard::FirstPasskey => !state.passkeys.is_empty(),
        };
        if taken {
            return Err(challenge_refused());
        }
        Ok(())
    }
}

impl Command for AddTotp {
    /// The factor's id.
    type Reply = String;

    async fn decide(
        &self,
        _app: &App,
        unit: &mut Unit<'_>,
    ) -> Result<(Vec<Change>, String), AppError> {
        let state: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        self.guard.check(&state)?;
        let of = Of {
            tenant: &self.tenant,
            contact_id: &self.contact_id,
        };
        let changes = factors::add_totp(&state, of, self.enrolment.clone())?;
        Ok((changes, self.enrolment.factor_id.to_string()))
    }
}

/// Take a code or recovery code for a sign-in's second step.
#[derive(Clone, Debug)]
struct UseSecondFactor {
    tenant: TenantId,
    contact_id: GeneratedId,
    code: String,
    now_ms: i64,
}

impl Command for UseSecondFactor {
    type Reply = ();

    async fn decide(&self, _app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        let state: ContactState = unit
            .load(&streams::contact(&self.tenant, &self.contact_id))
            .await?;
        let of = Of {
            tenant: &self.tenant,
            contact_id: &self.contact_id,
        };
        Ok((
            factors::use_second_factor(&state, of, &self.code, self.now_ms)?,
            (),
        ))
    }
}

/// How recent a session's sign-in must be to add a factor with it.
const FRESH_SIGN_IN_MS: i64 = 15 * 60_000;

/// Who enrols a factor: the contact of a session, or of a sign-in whose
/// challenge requires one (the tenant or customer requires a factor the
/// contact has not enrolled).
#[derive(Clone, Copy, Debug)]
pub enum Enroller<'a> {
    /// A session's token.
    Session(&'a str),
    /// A sign-in's second-factor challenge.
    Challenge(&'a str),
}

fn challenge_refused() -> AppError {
    DomainError::Unauthenticated {
        reason: Reason::SessionInvalid,
        message:
            "the sign-in took too long, or its challenge does not enrol a factor; sign in again"
                .into(),
    }
    .into()
}

pub(super) fn session_refused() -> AppError {
    DomainError::Unauthenticated {
        reason: Reason::SessionInvalid,
        message: "the session is not valid; log in again".into(),
    }
    .into()
}

impl App {
    /// The second factors of a contact (never their secrets).
    pub fn second_factors(&self, tenant: &str, contact_id: &str) -> Vec<FactorRow> {
        self.models.second_factors(tenant, contact_id)
    }

    /// The challenge a right password earns a contact with a second step
    /// to take.
    pub(super) fn second_factor_challenge(
        &self,
        tenant: &str,
        contact: &ContactRow,
        step: SecondStep,
    ) -> String {
        let must_enrol = match step {
            SecondStep::Enrol(require) => enrol_word(require),
            SecondStep::Nothing | SecondStep::Give => "",
        };
        self.challenge_for(tenant, contact, (must_enrol, false))
    }

    fn challenge_for(
        &self,
        tenant: &str,
        contact: &ContactRow,
        (must_enrol, gave_factor): (&str, bool),
    ) -> String {
        self.keyring.second_factor_challenge(&ChallengeClaims {
            tenant: tenant.to_owned(),
            contact_id: contact.contact_id.clone(),
            identity_id: contact.identity_id.clone(),
            expires_at_ms: self.now_ms() + access_keyring::CHALLENGE_TTL_MS,
            must_change_password: contact.temporary,
            must_enrol: must_enrol.to_owned(),
            gave_factor,
        })
    }

    /// Whether a session was signed in recently enough to add a factor.
    pub fn fresh_enough(&self, claims: &access_keyring::SessionClaims) -> bool {
        let signed_in_at = claims.expires_at_ms - self.settings.session_ttl.as_millis() as i64;
        self.now_ms() - signed_in_at <= FRESH_SIGN_IN_MS
    }

    /// A challenge to enrol a first factor, for a contact signed in with
    /// the password alone whose client asked for more (`acr_values=mfa`);
    /// `None` when the contact has a factor (then it signs in with it).
    pub fn step_up_challenge(&self, tenant: &str, contact: &ContactRow) -> Option<String> {
        if !self
            .models
            .second_factors(tenant, &contact.contact_id)
            .is_empty()
        {
            return None;
        }
        let any = access_catalogue::catalogue::FactorRequirement::AnySecondFactor;
        Some(self.second_factor_challenge(tenant, contact, SecondStep::Enrol(any)))
    }

    /// What a challenge says must be enrolled: `any`, `passkey`, or empty.
    pub fn challenge_must_enrol(&self, challenge: &str) -> String {
        self.keyring
            .verify_second_factor_challenge(challenge, self.now_ms())
            .map(|c| c.must_enrol)
            .unwrap_or_default()
    }

    /// The contact enrolling a factor of `kind`, and the challenge it
    /// enrols with (none for a session).
    pub(super) fn enrolling(
        &self,
        tenant: &TenantId,
        who: Enroller<'_>,
        kind: FactorKind,
    ) -> Result<(String, Option<ChallengeClaims>), AppError> {
        let found = self.enrolling_contact(tenant, who, kind)?;
        // A contact who may not sign in (disabled, revoked) adds nothing.
        let contact = self
            .models
            .contact(tenant.as_str(), &found.0)
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
        Ok(found)
    }

    fn enrolling_contact(
        &self,
        tenant: &TenantId,
        who: Enroller<'_>,
        kind: FactorKind,
    ) -> Result<(String, Option<ChallengeClaims>), AppError> {
        match who {
            Enroller::Session(token) => {
                let claims = self.session(tenant, token).ok_or_else(session_refused)?;
                // A session found on a desk adds no factor of its own.
                if !self.fresh_enough(&claims) {
                    return Err(DomainError::Unauthenticated {
                        reason: Reason::SessionInvalid,
                        message: "sign in again to add a way to sign in: the sign-in must be \
                                  less than 15 minutes old"
                            .into(),
                    }
                    .into());
                }
                if claims.must_change_password {
                    return Err(DomainError::precondition(
                        Reason::PasswordChangeRequired,
                        "change the temporary password first",
                    )
                    .into());
                }
                Ok((claims.contact_id, None))
            }
            Enroller::Challenge(challenge) => {
                let claims = self
                    .keyring
                    .verify_second_factor_challenge(challenge, self.now_ms())
                    .filter(|c| c.tenant == tenant.as_str())
                    .ok_or_else(challenge_refused)?;
                match (claims.must_enrol.as_str(), kind) {
                    // A password alone never adds a factor beside one the
                    // contact has.
                    ("", _) => Err(challenge_refused()),
                    ("passkey", FactorKind::Totp) => Err(DomainError::precondition(
                        Reason::SecondFactorRequired,
                        "sign-ins here require a passkey: add one instead of an app",
                    )
                    .into()),
                    _ => Ok((claims.contact_id.clone(), Some(claims))),
                }
            }
        }
    }

    /// Signs in a contact who just enrolled a factor with a sign-in's
    /// challenge, with `amr`.
    pub(super) async fn signed_in_enrolled(
        &self,
        tenant: &TenantId,
        contact_id: &str,
        amr: Vec<String>,
    ) -> Result<LoginOutcome, AppError> {
        let contact = self
            .models
            .contact(tenant.as_str(), contact_id)
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
        self.signed_in(tenant.as_str(), contact, amr).await
    }

    /// Begins enrolling an authenticator app for the contact of a session
    /// or of a challenge that requires enrolment.
    pub fn begin_totp_enrolment(
        &self,
        tenant: &TenantId,
        who: Enroller<'_>,
    ) -> Result<TotpEnrolmentStart, AppError> {
        let (contact_id, _) = self.enrolling(tenant, who, FactorKind::Totp)?;
        let contact = self
            .models
            .contact(tenant.as_str(), &contact_id)
            .map_err(AppError::Internal)?
            .ok_or(DomainError::NotFound("contact"))?;
        let issuer = self
            .models
            .tenant(tenant.as_str())
            .map_err(AppError::Internal)?
            .map_or_else(|| tenant.to_string(), |t| t.name);
        let account = match (&contact.username, contact.email.is_empty()) {
            (Some(name), _) => name.clone(),
            (None, false) => contact.email.clone(),
            (None, true) => contact.contact_id.clone(),
        };
        let (token, secret) =
            self.keyring
                .totp_enrolment(tenant.as_str(), &contact_id, self.now_ms());
        let secret = data_encoding::BASE32_NOPAD.encode(&secret);
        Ok(TotpEnrolmentStart {
            uri: totp::otpauth_uri(&issuer, &account, &secret),
            secret,
            enrolment_token: token,
        })
    }

    /// Confirms an enrolment with the app's first code; the reply holds the
    /// ten recovery codes (shown once, and again to a retry), and, for an
    /// enrolment with a sign-in's challenge, the session it opens.
    pub async fn confirm_totp_enrolment(
        &self,
        ctx: &CommandContext,
        tenant: &TenantId,
        who: Enroller<'_>,
        enrolment_token: &str,
        code: &str,
    ) -> Result<Outcome<(Vec<String>, Option<LoginOutcome>)>, AppError> {
        let (contact_id, challenge) = self.enrolling(tenant, who, FactorKind::Totp)?;
        let (enrolment, secret) = self
            .keyring
            .open_totp_enrolment(enrolment_token, self.now_ms())
            .filter(|(e, _)| e.tenant == tenant.as_str() && e.contact_id == contact_id)
            .ok_or_else(|| {
                DomainError::invalid(
                    "enrolment_token",
                    "not an enrolment of this contact, or older than ten minutes; begin again",
                )
            })?;
        let codes = self.keyring.recovery_codes(&enrolment);
        let id = GeneratedId::parse(&contact_id).map_err(|_| session_refused())?;
        let cmd = AddTotp {
            guard: Guard::of(&challenge),
            tenant: tenant.clone(),
            contact_id: id,
            enrolment: Enrolment {
                // The nonce names the factor: a retry adds the same one.
                factor_id: GeneratedId::parse(&enrolment.nonce).map_err(|_| session_refused())?,
                secret: data_encoding::BASE32_NOPAD.encode(&secret),
                code: code.to_owned(),
                now_ms: self.now_ms(),
                recovery_codes_sha256: codes.iter().map(|c| recovery_digest(c)).collect(),
            },
        };
        let outcome = self.execute(ctx, &cmd).await?;
        self.wait_for(outcome.position).await?;
        let session = match challenge {
            Some(_) => {
                let amr = vec!["pwd".into(), "otp".into(), "mfa".into()];
                Some(self.signed_in_enrolled(tenant, &contact_id, amr).await?)
            }
            None => None,
        };
        Ok(outcome.map(|_| (codes, session)))
    }

    /// The second step of a sign-in: the challenge a right password gave
    /// and a code of the contact's app, or one of its recovery codes.
    pub async fn complete_second_factor(
        &self,
        tenant: &str,
        challenge: &str,
        code: &str,
        client_address: &str,
    ) -> Result<LoginOutcome, AppError> {
        let claims = self
            .keyring
            .verify_second_factor_challenge(challenge, self.now_ms())
            .filter(|c| c.tenant == tenant)
            .ok_or_else(|| DomainError::Unauthenticated {
                reason: Reason::SessionInvalid,
                message: "the sign-in took too long or the challenge is not valid; sign in again"
                    .into(),
            })?;
        let (Ok(tenant_id), Ok(contact_id)) = (
            TenantId::parse(tenant),
            GeneratedId::parse(&claims.contact_id),
        ) else {
            return Err(session_refused());
        };
        // A recovery code is a one-time password too.
        let amr = vec!["pwd".into(), "otp".into(), "mfa".into()];
        // Where a passkey is required, a code is not taken (nor spent).
        if let Some(contact) = self
            .models
            .contact(tenant, &claims.contact_id)
            .map_err(AppError::Internal)?
        {
            self.check_second_step(tenant, &contact, &amr)?;
        }
        let durable = || {
            self.models
                .contact(tenant, &claims.contact_id)
                .ok()
                .flatten()
                .map_or((Vec::new(), 0), |row| {
                    (row.failed_logins, row.locked_until_ms)
                })
        };
        let gate = Account::Known {
            tenant,
            contact_id: &claims.contact_id,
            durable: &durable,
        };
        let ticket = self
            .throttle
            .admit(gate, client_address, self.now_ms())
            .map_err(DomainError::from)?;
        let cmd = UseSecondFactor {
            tenant: tenant_id.clone(),
            contact_id,
            code: code.to_owned(),
            now_ms: self.now_ms(),
        };
        let request_id = format!("second-factor:{}", uuid::Uuid::now_v7());
        let actor = Actor::Contact {
            contact_id: claims.contact_id.clone(),
        };
        match self
            .execute_derived(&request_id, &tenant_id, actor, &cmd)
            .await
        {
            Ok(outcome) => {
                drop(ticket);
                self.wait_for(outcome.position).await?;
            }
            Err(AppError::Domain(DomainError::Unauthenticated { .. })) => {
                metrics::counter!("access_logins_total", "outcome" => "bad_second_factor")
                    .increment(1);
                self.login_failed(tenant, Some(claims.contact_id), client_address, ticket);
                return Err(DomainError::Unauthenticated {
                    reason: Reason::BadCredentials,
                    message: "the code is wrong or was used already".into(),
                }
                .into());
            }
            Err(e) => return Err(e),
        }
        let contact = self
            .models
            .contact(tenant, &claims.contact_id)
            .map_err(AppError::Internal)?
            .ok_or(DomainError::NotFound("contact"))?;
        // What may have changed since the password: a block, a revocation.
        let decision = self.check(tenant, &contact, &crate::domain::access::Action::Login)?;
        if !decision.allowed {
            return Err(super::queries::login_refusal(decision).into());
        }
        // The app's code was given where a passkey is required: the contact
        // adds one now, before any session.
        if self.step_up_after_code(tenant, &contact) {
            let challenge = self.challenge_for(tenant, &contact, ("passkey", true));
            return Ok(LoginOutcome {
                token: String::new(),
                expires_at_ms: 0,
                must_change_password: contact.temporary,
                contact,
                second_factor_challenge: Some(challenge),
                amr,
            });
        }
        self.signed_in(tenant, contact, amr).await
    }
}
