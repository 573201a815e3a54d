//! Capability links: a per-customer, unguessable URL that shows chosen
//! document kinds, view only. The token is a bearer secret: only its SHA-256
//! is recorded, and deleting the link kills it at once.

use super::customer::CustomerState;
use super::policy::Staff;
use super::values::{GeneratedId, TenantId};
use super::{Aggregate, Change, DomainError, streams};
use crate::domain::Reason;
use access_catalogue::catalogue::{
    DocumentKind, Event, PortalLinkCreated, PortalLinkDeleted, PortalLinkEvent,
};

/// What the log says about one portal link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortalLinkState {
    /// False until `PortalLinkCreated`.
    pub exists: bool,
    /// The customer it shows.
    pub customer_id: String,
    /// Deleted links never work again.
    pub deleted: bool,
}

impl Aggregate for PortalLinkState {
    fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::PortalLink(PortalLinkEvent::PortalLinkCreated(e)) => {
                self.exists = true;
                self.customer_id = e.customer_id.clone();
            }
            Event::PortalLink(PortalLinkEvent::PortalLinkDeleted(_)) => self.deleted = true,
            _ => {}
        }
        self
    }
}

/// Create a portal link for a customer.
#[derive(Clone, Debug)]
pub struct CreatePortalLink {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The new link's id.
    pub link_id: GeneratedId,
    /// The document kinds it shows.
    pub kinds: Vec<DocumentKind>,
    /// When it stops working, if ever.
    pub expires_at_ms: Option<i64>,
    /// Now, Unix milliseconds.
    pub now_ms: i64,
    /// SHA-256 of the token.
    pub token_sha256: [u8; 32],
}

/// Decides `CreatePortalLink`.
pub fn create(
    customer: &CustomerState,
    link: &PortalLinkState,
    mut cmd: CreatePortalLink,
) -> Result<Vec<Change>, DomainError> {
    if cmd.kinds.is_empty() {
        return Err(DomainError::invalid(
            "kinds",
            "choose at least one document kind",
        ));
    }
    if cmd.expires_at_ms.is_some_and(|t| t <= cmd.now_ms) {
        return Err(DomainError::invalid(
            "expires_at",
            "the expiry must be in the future",
        ));
    }
    if !customer.exists {
        return Err(DomainError::NotFound("customer"));
    }
    cmd.by.may_manage_logins_of(customer.sales_rep())?;
    if link.exists {
        return Err(DomainError::AlreadyExists("that link id exists".into()));
    }
    cmd.kinds.sort_unstable();
    cmd.kinds.dedup();
    Ok(vec![Change::new(
        streams::portal_link(&cmd.tenant, &cmd.link_id),
        Event::PortalLink(PortalLinkEvent::PortalLinkCreated(PortalLinkCreated {
            link_id: cmd.link_id.to_string(),
            customer_id: customer.record.customer_id.clone(),
            kinds: cmd.kinds,
            expires_at_ms: cmd.expires_at_ms,
            token_sha256: cmd.token_sha256,
        })),
    )])
}

/// Decides `DeletePortalLink`.
pub fn delete(
    link: &PortalLinkState,
    customer: &CustomerState,
    tenant: &TenantId,
    link_id: &GeneratedId,
    by: &Staff,
) -> Result<Vec<Change>, DomainError> {
    if !link.exists {
        return Err(DomainError::NotFound("portal link"));
    }
    by.may_manage_logins_of(customer.sales_rep())?;
    if link.deleted {
        return Err(DomainError::precondition(
            Reason::AlreadyDeleted,
            "the link is already deleted",
        ));
    }
    Ok(vec![Change::new(
        streams::portal_link(tenant, link_id),
        Event::PortalLink(PortalLinkEvent::PortalLinkDeleted(PortalLinkDeleted {
            reason: String::new(),
        })),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::invitation::tests::customer;
    use crate::domain::policy::Role;
    use crate::domain::test_support::*;

    fn cmd(by: Staff, kinds: Vec<DocumentKind>, expires: Option<i64>) -> CreatePortalLink {
        CreatePortalLink {
            tenant: TenantId::parse("acme").unwrap(),
            by,
            link_id: GeneratedId::generate(),
            kinds,
            expires_at_ms: expires,
            now_ms: 1_000,
            token_sha256: [3; 32],
        }
    }

    #[test]
    fn a_link_shows_chosen_kinds_until_deleted() {
        let c = cmd(
            Staff::new(Role::InHouse),
            vec![DocumentKind::SalesInvoice, DocumentKind::SalesQuote],
            Some(5_000),
        );
        let (tenant, id) = (c.tenant.clone(), c.link_id.clone());
        let link = then(
            PortalLinkState::default(),
            &create(&customer(), &PortalLinkState::default(), c).unwrap(),
        );
        assert!(link.exists && !link.deleted);
        let by = Staff::new(Role::Admin);
        let link = then(
            link.clone(),
            &delete(&link, &customer(), &tenant, &id, &by).unwrap(),
        );
        assert!(link.deleted);
        assert!(matches!(
            delete(&link, &customer(), &tenant, &id, &by),
            Err(DomainError::FailedPrecondition {
                reason: Reason::AlreadyDeleted,
                ..
            })
        ));
    }

    #[test]
    fn a_link_needs_kinds_a_future_expiry_a_customer_and_the_right_to_manage_it() {
        let none = PortalLinkState::default();
        assert!(matches!(
            create(
                &customer(),
                &none,
                cmd(Staff::new(Role::Admin), vec![], None)
            ),
            Err(DomainError::Invalid(_))
        ));
        assert!(matches!(
            create(&customer(), &none, cmd(Staff::new(Role::Admin), vec![DocumentKind::CreditNote], Some(500))),
            Err(DomainError::Invalid(v)) if v[0].field == "expires_at"
        ));
        assert!(matches!(
            create(
                &CustomerState::default(),
                &none,
                cmd(
                    Staff::new(Role::Admin),
                    vec![DocumentKind::CreditNote],
                    None
                )
            ),
            Err(DomainError::NotFound("customer"))
        ));
        assert!(matches!(
            create(
                &customer(),
                &none,
                cmd(Staff::rep("bert"), vec![DocumentKind::CreditNote], None)
            ),
            Err(DomainError::PermissionDenied { .. })
        ));
    }
}
