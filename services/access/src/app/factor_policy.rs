//! What a sign-in must include beyond the password: the tenant's policy and,
//! for stricter customers, the customer's (the stricter applies). A contact
//! whose enrolled factors fall short enrols one in the sign-in itself,
//! before any session; a session that falls short of a policy raised since
//! ends, so the next request signs in again.

use super::{App, AppError, Command, Unit};
use crate::domain::customer::{self, CustomerState};
use crate::domain::policy::Staff;
use crate::domain::tenant::{self, TenantState};
use crate::domain::values::{CustomerId, TenantId};
use crate::domain::{Change, DomainError, Reason, streams};
use crate::projections::{ContactRow, FactorKind, FactorRow};
use access_catalogue::catalogue::FactorRequirement;

/// `SetSecondFactorPolicy` as received.
#[derive(Clone, Debug)]
pub struct SetSecondFactorPolicy {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// One customer's policy; `None` for the tenant's.
    pub customer_id: Option<CustomerId>,
    /// What sign-ins must include.
    pub require: FactorRequirement,
}

impl Command for SetSecondFactorPolicy {
    type Reply = ();

    async fn decide(&self, app: &App, unit: &mut Unit<'_>) -> Result<(Vec<Change>, ()), AppError> {
        // A policy no contact could meet would lock every one of them out.
        if self.require == FactorRequirement::Passkey {
            app.webauthn(self.tenant.as_str())?;
        }
        let changes = match &self.customer_id {
            Some(id) => {
                let state: CustomerState = unit.load(&streams::customer(&self.tenant, id)).await?;
                customer::set_second_factor_policy(
                    &state,
                    (&self.tenant, id),
                    &self.by,
                    self.require,
                )?
            }
            None => {
                let state: TenantState = unit.load(&streams::tenant(&self.tenant)).await?;
                tenant::set_second_factor_policy(&state, &self.tenant, &self.by, self.require)?
            }
        };
        Ok((changes, ()))
    }
}

/// What a contact who proved the password must still do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondStep {
    /// Nothing: the password is enough.
    Nothing,
    /// Give an enrolled factor (a passkey, when that is what is required).
    Give,
    /// Enrol a factor first: the requirement the enrolled ones fall short of.
    Enrol(FactorRequirement),
}

/// The word a requirement to enrol has in a challenge and on the wire.
pub fn enrol_word(require: FactorRequirement) -> &'static str {
    match require {
        FactorRequirement::None => "",
        FactorRequirement::AnySecondFactor => "any",
        FactorRequirement::Passkey => "passkey",
    }
}

/// Whether enrolled `factors` meet `require`.
fn enrolled_meet(require: FactorRequirement, factors: &[FactorRow]) -> bool {
    match require {
        FactorRequirement::None => true,
        FactorRequirement::AnySecondFactor => !factors.is_empty(),
        FactorRequirement::Passkey => factors.iter().any(|f| f.kind == FactorKind::Passkey),
    }
}

/// Whether a sign-in that proved `amr` meets `require`.
pub fn amr_meets(require: FactorRequirement, amr: &[String]) -> bool {
    let has = |m: &str| amr.iter().any(|a| a == m);
    match require {
        FactorRequirement::None => true,
        FactorRequirement::AnySecondFactor => has("mfa"),
        FactorRequirement::Passkey => has("hwk") || has("swk"),
    }
}

impl App {
    /// What sign-ins of `contact` must include: the stricter of its
    /// tenant's policy and its customer's.
    pub fn factor_requirement(&self, tenant: &str, contact: &ContactRow) -> FactorRequirement {
        let of_tenant = self
            .models
            .tenant(tenant)
            .ok()
            .flatten()
            .map(|t| t.second_factor)
            .unwrap_or_default();
        let of_customer = self
            .models
            .customer(tenant, &contact.customer_id)
            .ok()
            .flatten()
            .map(|c| c.second_factor)
            .unwrap_or_default();
        of_tenant.max(of_customer)
    }

    /// What a contact who proved the password must still do. A contact
    /// with a factor always gives it first: a password (or a mailbox) alone
    /// never enrols one beside it; a stricter policy is met after it.
    pub(super) fn second_step(&self, tenant: &str, contact: &ContactRow) -> SecondStep {
        let factors = self.models.second_factors(tenant, &contact.contact_id);
        let require = self.factor_requirement(tenant, contact);
        match (factors.is_empty(), require) {
            (false, _) => SecondStep::Give,
            (true, FactorRequirement::None) => SecondStep::Nothing,
            (true, require) => SecondStep::Enrol(require),
        }
    }

    /// After an app's code: where a passkey is required and the contact has
    /// none, it adds one before any session (the step up).
    pub(super) fn step_up_after_code(&self, tenant: &str, contact: &ContactRow) -> bool {
        let factors = self.models.second_factors(tenant, &contact.contact_id);
        self.factor_requirement(tenant, contact) == FactorRequirement::Passkey
            && !enrolled_meet(FactorRequirement::Passkey, &factors)
    }

    /// Whether a session that proved `amr` still stands for the contact: it
    /// gave the second factor the contact has, and meets the policy now.
    pub(super) fn session_stands(&self, tenant: &str, contact_id: &str, amr: &[String]) -> bool {
        let factors = self.models.second_factors(tenant, contact_id);
        if !factors.is_empty() && !amr_meets(FactorRequirement::AnySecondFactor, amr) {
            return false;
        }
        match self.models.contact(tenant, contact_id).ok().flatten() {
            Some(contact) => amr_meets(self.factor_requirement(tenant, &contact), amr),
            // Whatever the session is for is gone; the caller's checks say so.
            None => true,
        }
    }

    /// Whether an app's code is asked for in the second step of
    /// `contact_id`: it has an app, and the policy takes one or the contact
    /// has no passkey to give instead (it adds one after the code).
    pub fn code_would_do(&self, tenant: &str, contact_id: &str) -> bool {
        let factors = self.models.second_factors(tenant, contact_id);
        let has = |kind| factors.iter().any(|f| f.kind == kind);
        let code = ["pwd", "otp", "mfa"].map(String::from);
        let taken = || {
            self.models
                .contact(tenant, contact_id)
                .ok()
                .flatten()
                .is_some_and(|c| amr_meets(self.factor_requirement(tenant, &c), &code))
        };
        has(FactorKind::Totp) && (!has(FactorKind::Passkey) || taken())
    }

    /// The refusal of a second step the policy does not accept: an app's
    /// code where a passkey is required and the contact has one to give.
    pub(super) fn check_second_step(
        &self,
        tenant: &str,
        contact: &ContactRow,
        amr: &[String],
    ) -> Result<(), AppError> {
        let require = self.factor_requirement(tenant, contact);
        if amr_meets(require, amr) || self.step_up_after_code(tenant, contact) {
            return Ok(());
        }
        Err(DomainError::precondition(
            Reason::SecondFactorRequired,
            "sign-ins here require a passkey: use one instead of the app's code",
        )
        .into())
    }
}
