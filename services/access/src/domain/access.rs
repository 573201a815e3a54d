//! "May this contact do this?": the answer other services ask for, with a
//! machine-readable reason when the answer is no.

use super::contact::Lifecycle;
use crate::domain::Reason;
use access_catalogue::catalogue::{CustomerStatus, DocumentKind, LoginKind};

/// What a contact wants to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Log in to the portal.
    Login,
    /// Place an order.
    PlaceOrder,
    /// View a document.
    ViewDocument(DocumentRequest),
    /// See a site's stock.
    ViewSite(String),
    /// See costs and other sensitive figures.
    ViewCosts,
    /// See the account balance.
    ViewBalance,
}

/// Which kind of document is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentRequest {
    /// A viewable kind.
    Kind(DocumentKind),
    /// Payments: never viewable through the portal.
    Payment,
    /// Reports: never viewable through the portal.
    Report,
}

/// What is known about the contact, its customer and its tenant.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    /// The contact's lifecycle.
    pub lifecycle: Lifecycle,
    /// Blocked by staff.
    pub disabled: bool,
    /// The customer's status.
    pub customer_status: CustomerStatus,
    /// Tenant setting: contacts of inactive or blacklisted customers may log in and look.
    pub inactive_customers_may_log_in: bool,
    /// The sites the contact sees.
    pub visible_sites: &'a [String],
    /// Document kinds the customer's contacts may view (`None`: all).
    pub documents: Option<&'a [DocumentKind]>,
    /// Management or staff login.
    pub kind: LoginKind,
    /// The login has a temporary password that must be changed first.
    pub must_change_password: bool,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether it is allowed.
    pub allowed: bool,
    /// [`Reason::Allowed`], or why not.
    pub reason: Reason,
    /// In words.
    pub message: String,
}

fn deny(reason: Reason, message: &str) -> Decision {
    Decision {
        allowed: false,
        reason,
        message: message.to_owned(),
    }
}

/// Decides whether the contact may do `action`.
pub fn check(facts: &Facts<'_>, action: &Action) -> Decision {
    match facts.lifecycle {
        Lifecycle::Revoked => return deny(Reason::Revoked, "access for this contact was revoked"),
        _ if facts.disabled => {
            return deny(Reason::Disabled, "access for this contact is disabled");
        }
        Lifecycle::Invited => {
            return deny(
                Reason::InvitationPending,
                "the contact has not accepted the invitation yet",
            );
        }
        Lifecycle::PendingApproval => {
            return deny(
                Reason::PendingApproval,
                "the contact waits for approval by a username administrator",
            );
        }
        Lifecycle::Active => {}
    }
    if facts.must_change_password && *action != Action::Login {
        return deny(
            Reason::PasswordChangeRequired,
            "the contact must set a new password before anything else",
        );
    }
    let customer = match facts.customer_status {
        CustomerStatus::Active => None,
        CustomerStatus::Inactive => Some(deny(
            Reason::CustomerInactive,
            "the customer account is inactive",
        )),
        CustomerStatus::Blacklisted => Some(deny(
            Reason::CustomerBlacklisted,
            "the customer account is blocked from ordering",
        )),
    };
    if let Some(refusal) = customer
        && (*action == Action::PlaceOrder || !facts.inactive_customers_may_log_in)
    {
        return refusal;
    }
    match action {
        Action::ViewCosts | Action::ViewBalance if facts.kind == LoginKind::Staff => deny(
            Reason::StaffLogin,
            "staff logins do not see costs, balances or other sensitive figures",
        ),
        Action::ViewSite(site) if !facts.visible_sites.iter().any(|s| s == site) => {
            deny(Reason::SiteNotVisible, "the contact does not see this site")
        }
        Action::ViewDocument(DocumentRequest::Payment | DocumentRequest::Report) => deny(
            Reason::DocumentKindNotViewable,
            "payments and reports are never shown in the portal",
        ),
        Action::ViewDocument(DocumentRequest::Kind(kind))
            if facts.documents.is_some_and(|kinds| !kinds.contains(kind)) =>
        {
            deny(
                Reason::DocumentNotVisible,
                "this customer's contacts may not view this kind of document",
            )
        }
        _ => Decision {
            allowed: true,
            reason: Reason::Allowed,
            message: "allowed".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(sites: &[String]) -> Facts<'_> {
        Facts {
            lifecycle: Lifecycle::Active,
            disabled: false,
            customer_status: CustomerStatus::Active,
            inactive_customers_may_log_in: true,
            visible_sites: sites,
            documents: None,
            kind: LoginKind::Management,
            must_change_password: false,
        }
    }

    fn reason(f: &Facts<'_>, a: Action) -> &'static str {
        check(f, &a).reason.as_str()
    }

    #[test]
    fn an_active_contact_of_an_active_customer_may_do_everything_it_sees() {
        let sites = vec!["York".to_string()];
        let f = facts(&sites);
        for a in [
            Action::Login,
            Action::PlaceOrder,
            Action::ViewCosts,
            Action::ViewBalance,
            Action::ViewSite("York".into()),
        ] {
            assert_eq!(reason(&f, a), "allowed");
        }
        assert_eq!(
            reason(&f, Action::ViewSite("Leeds".into())),
            "site_not_visible"
        );
    }

    #[test]
    fn the_contacts_state_comes_first() {
        let sites = vec![];
        let mut f = facts(&sites);
        f.disabled = true;
        assert_eq!(reason(&f, Action::Login), "disabled");
        f.lifecycle = Lifecycle::Revoked;
        assert_eq!(reason(&f, Action::Login), "revoked");
        let mut f = facts(&sites);
        f.lifecycle = Lifecycle::Invited;
        assert_eq!(reason(&f, Action::Login), "invitation_pending");
    }

    #[test]
    fn blacklisted_and_inactive_customers_may_look_but_not_order_unless_the_tenant_says_otherwise()
    {
        let sites = vec![];
        let mut f = facts(&sites);
        f.customer_status = CustomerStatus::Blacklisted;
        assert_eq!(reason(&f, Action::Login), "allowed");
        assert_eq!(reason(&f, Action::PlaceOrder), "customer_blacklisted");
        f.customer_status = CustomerStatus::Inactive;
        assert_eq!(reason(&f, Action::PlaceOrder), "customer_inactive");
        f.inactive_customers_may_log_in = false;
        assert_eq!(reason(&f, Action::Login), "customer_inactive");
    }

    #[test]
    fn documents_follow_the_customers_choice_and_payments_and_reports_never_show() {
        let sites = vec![];
        let kinds = [DocumentKind::SalesInvoice];
        let mut f = facts(&sites);
        assert_eq!(
            reason(
                &f,
                Action::ViewDocument(DocumentRequest::Kind(DocumentKind::CreditNote))
            ),
            "allowed"
        );
        f.documents = Some(&kinds);
        assert_eq!(
            reason(
                &f,
                Action::ViewDocument(DocumentRequest::Kind(DocumentKind::SalesInvoice))
            ),
            "allowed"
        );
        assert_eq!(
            reason(
                &f,
                Action::ViewDocument(DocumentRequest::Kind(DocumentKind::CreditNote))
            ),
            "document_not_visible"
        );
        assert_eq!(
            reason(&f, Action::ViewDocument(DocumentRequest::Payment)),
            "document_kind_not_viewable"
        );
        assert_eq!(
            reason(&f, Action::ViewDocument(DocumentRequest::Report)),
            "document_kind_not_viewable"
        );
    }

    #[test]
    fn staff_logins_see_no_costs_or_balances() {
        let sites = vec!["York".to_string()];
        let mut f = facts(&sites);
        f.kind = LoginKind::Staff;
        assert_eq!(reason(&f, Action::ViewCosts), "staff_login");
        assert_eq!(reason(&f, Action::ViewBalance), "staff_login");
        assert_eq!(reason(&f, Action::PlaceOrder), "allowed");
    }

    #[test]
    fn a_temporary_password_allows_only_the_login_that_changes_it() {
        let sites = vec!["York".to_string()];
        let mut f = facts(&sites);
        f.must_change_password = true;
        assert_eq!(reason(&f, Action::Login), "allowed");
        assert_eq!(reason(&f, Action::PlaceOrder), "password_change_required");
        assert_eq!(
            reason(&f, Action::ViewSite("York".into())),
            "password_change_required"
        );
    }
}
