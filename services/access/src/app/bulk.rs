//! Bulk invitations: each customer is its own invitation with its own
//! request id derived from the bulk's, run concurrently so their appends
//! share group commits. A retried bulk answers each customer from its first
//! result.

use super::reports::{CustomerFilter, has_login};
use super::{App, AppError, CommandContext, Invite};
use crate::domain::policy::Staff;
use crate::domain::values::{CustomerId, Email, Message, RequestId, TenantId};
use crate::domain::{DomainError, Reason};
use access_catalogue::catalogue::SiteRule;
use futures::StreamExt;
use sha2::{Digest, Sha256};

/// How many of a bulk's invitations run at once.
const CONCURRENT: usize = 64;

/// Which customers a bulk invitation is for.
#[derive(Clone, Debug)]
pub enum BulkSelection {
    /// These customers, each at this address.
    Targets(Vec<(String, String)>),
    /// Every matching customer without a login, at its record's address.
    AllMatching(CustomerFilter),
}

/// A bulk invitation as received.
#[derive(Clone, Debug)]
pub struct BulkInvite {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The personal message of every invitation.
    pub message: Message,
    /// Visibility and routing of every login.
    pub site_rule: SiteRule,
    /// Who is invited.
    pub selection: BulkSelection,
}

/// A customer the bulk invited.
#[derive(Clone, Debug)]
pub struct BulkInvited {
    /// The customer.
    pub customer_id: String,
    /// Where the link went.
    pub email: String,
    /// The new contact.
    pub contact_id: String,
}

/// A customer the bulk did not invite, and why.
#[derive(Debug)]
pub struct BulkSkipped {
    /// The customer as given.
    pub customer_id: String,
    /// Why: the same error its own invitation would have had.
    pub error: AppError,
}

/// What a bulk invitation did, both lists in customer id order.
#[derive(Debug, Default)]
pub struct BulkOutcome {
    /// The position of the last invitation written.
    pub position: u64,
    /// Who was invited.
    pub invited: Vec<BulkInvited>,
    /// Who was not.
    pub skipped: Vec<BulkSkipped>,
}

fn skipped(customer_id: &str, reason: Reason, message: &str) -> BulkSkipped {
    BulkSkipped {
        customer_id: customer_id.to_owned(),
        error: DomainError::precondition(reason, message).into(),
    }
}

impl App {
    /// Invites each selected customer; `ctx` is the bulk's own context,
    /// from which each invitation's request id and fingerprint are derived.
    pub async fn bulk_invite(
        &self,
        ctx: &CommandContext,
        bulk: BulkInvite,
    ) -> Result<BulkOutcome, AppError> {
        self.wait_for(self.head()).await?;
        let tenant_row = self
            .models
            .tenant(bulk.tenant.as_str())
            .map_err(AppError::Internal)?
            .ok_or(DomainError::NotFound("tenant"))?;
        if tenant_row.username_administrators.is_empty() {
            return Err(DomainError::precondition(
                Reason::NoUsernameAdministrators,
                "set one to three username administrators before bulk invitations",
            )
            .into());
        }
        let bulk_key = hex::encode(&Sha256::digest(ctx.request_id.as_str().as_bytes())[..12]);
        let targets = match &bulk.selection {
            BulkSelection::Targets(targets) => targets
                .iter()
                .map(|(id, email)| (id.trim().to_owned(), email.trim().to_owned()))
                .collect(),
            BulkSelection::AllMatching(filter) => {
                self.all_matching(&bulk, filter, &bulk_key).await?
            }
        };
        let results = futures::stream::iter(targets.into_iter().map(|(customer_id, email)| {
            self.invite_one(ctx, &bulk, &bulk_key, customer_id, email)
        }))
        .buffer_unordered(CONCURRENT)
        .collect::<Vec<_>>()
        .await;
        let mut outcome = BulkOutcome::default();
        for result in results {
            match result {
                Ok((position, invited)) => {
                    outcome.position = outcome.position.max(position);
                    outcome.invited.push(invited);
                }
                Err(skip) => outcome.skipped.push(skip),
            }
        }
        outcome
            .invited
            .sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        outcome
            .skipped
            .sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        Ok(outcome)
    }

    /// "Select all filtered": the matching customers without a login, and,
    /// on a retry, those this bulk invited the first time.
    async fn all_matching(
        &self,
        bulk: &BulkInvite,
        filter: &CustomerFilter,
        bulk_key: &str,
    ) -> Result<Vec<(String, String)>, AppError> {
        let mut found = Vec::new();
        self.walk(&bulk.tenant, &bulk.by, "", usize::MAX, |customer| {
            if filter.matches(&customer.record) {
                let id = &customer.record.customer_id;
                let contacts = self.contacts_of(&bulk.tenant, id)?;
                found.push((
                    has_login(&contacts),
                    id.clone(),
                    customer.record.contact.email.clone(),
                ));
            }
            Ok(false)
        })?;
        let mut targets = Vec::new();
        for (has_login, customer_id, email) in found {
            let sub_request = sub_request(bulk_key, &customer_id);
            if !has_login || self.seen(&bulk.tenant, &sub_request).await? {
                targets.push((customer_id, email));
            }
        }
        Ok(targets)
    }

    /// Whether a request id of the tenant was answered before.
    async fn seen(&self, tenant: &TenantId, request_id: &str) -> Result<bool, AppError> {
        let scoped = App::scoped_request_id(Some(tenant), request_id);
        Ok(self.log.request(&scoped).await?.is_some())
    }

    async fn invite_one(
        &self,
        bulk_ctx: &CommandContext,
        bulk: &BulkInvite,
        bulk_key: &str,
        customer_id: String,
        email: String,
    ) -> Result<(u64, BulkInvited), BulkSkipped> {
        let not_a_customer = || skipped(&customer_id, Reason::NotFound, "not a customer id");
        let sub_id =
            RequestId::parse(&sub_request(bulk_key, &customer_id)).map_err(|_| not_a_customer())?;
        let id = CustomerId::parse(&customer_id).map_err(|_| not_a_customer())?;
        let seen = self
            .seen(&bulk.tenant, sub_id.as_str())
            .await
            .map_err(|error| BulkSkipped {
                customer_id: customer_id.clone(),
                error,
            })?;
        if !seen {
            self.may_invite(bulk, &id, &email)
                .map_err(|error| BulkSkipped {
                    customer_id: customer_id.clone(),
                    error,
                })?;
        }
        let email =
            Email::parse(&email).map_err(|m| skipped(&customer_id, Reason::InvalidEmail, &m))?;
        let cmd = Invite {
            tenant: bulk.tenant.clone(),
            by: bulk.by.clone(),
            customer_id: id,
            email: email.clone(),
            message: bulk.message.clone(),
            site_rule: bulk.site_rule.clone(),
        };
        let ctx = CommandContext {
            request_id: sub_id,
            fingerprint: Sha256::digest(
                format!("BulkInvite\0{bulk_key}\0{customer_id}\0{email}").as_bytes(),
            )
            .into(),
            ..bulk_ctx.clone()
        };
        match self.execute(&ctx, &cmd).await {
            Ok(outcome) => Ok((
                outcome.position,
                BulkInvited {
                    customer_id,
                    email: email.to_string(),
                    contact_id: outcome.reply.contact_id,
                },
            )),
            Err(error) => Err(BulkSkipped { customer_id, error }),
        }
    }

    /// What a first try checks before inviting: the customer exists and is
    /// the caller's (first, so a rep learns nothing of other reps'
    /// customers), has an address, and has no login yet.
    fn may_invite(&self, bulk: &BulkInvite, id: &CustomerId, email: &str) -> Result<(), AppError> {
        let customer = self
            .models
            .customer(bulk.tenant.as_str(), id.as_str())
            .map_err(AppError::Internal)?
            .ok_or_else(|| DomainError::precondition(Reason::NotFound, "customer not found"))?;
        bulk.by
            .may_manage_logins_of(customer.record.sales_rep.as_deref())?;
        if email.is_empty() {
            return Err(DomainError::precondition(
                Reason::NoEmail,
                "no invitation address: not invited",
            )
            .into());
        }
        if has_login(&self.contacts_of(&bulk.tenant, id.as_str())?) {
            return Err(DomainError::precondition(
                Reason::AlreadyHasLogin,
                "the customer already has a login",
            )
            .into());
        }
        Ok(())
    }
}

/// The request id of one customer's invitation within a bulk.
fn sub_request(bulk_key: &str, customer_id: &str) -> String {
    format!("bulk-{bulk_key}-{customer_id}")
}
