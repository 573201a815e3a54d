//! Public events of the supplier's records: its settings and keys, its
//! customers, invitations and portal links, and logins staff create.

use super::*;

#[test]
fn tenants_customers_invitations_and_links() {
    let created = one(
        Aggregate::Tenant,
        "acme",
        Event::Tenant(TenantEvent::TenantCreated(TenantCreated {
            tenant_id: "acme".into(),
            name: "Acme".into(),
            sites: vec!["north".into()],
            default_order_site: "north".into(),
        })),
    );
    assert_eq!(created.r#type, "tenant.created");
    let settings = one(
        Aggregate::Tenant,
        "acme",
        Event::Tenant(TenantEvent::TenantSettingsChanged(TenantSettingsChanged {
            sites: vec!["north".into(), "south".into()],
            default_order_site: "south".into(),
            default_visibility: DefaultVisibility::OneSite("south".into()),
            inactive_customers_may_log_in: true,
        })),
    );
    assert_eq!(settings.r#type, "tenant.settings_changed");
    let Change::TenantSettingsChanged(s) = change(settings) else {
        panic!()
    };
    assert_eq!(s.default_visible_site, "south");
    let policy = one(
        Aggregate::Tenant,
        "acme",
        Event::Tenant(TenantEvent::ApprovalPolicySet(ApprovalPolicySet {
            approval_required: true,
        })),
    );
    assert_eq!(policy.r#type, "tenant.policy_changed");
    let Change::TenantPolicyChanged(p) = change(policy) else {
        panic!()
    };
    assert_eq!(p.policy, "approval");
    let revoked = one(
        Aggregate::Tenant,
        "acme",
        Event::Tenant(TenantEvent::ApiKeyRevoked(ApiKeyRevoked {
            key_id: "k1".into(),
        })),
    );
    assert_eq!(revoked.r#type, "api_key.revoked");

    let record = CustomerRecord {
        customer_id: "cust1".into(),
        name: "Shop".into(),
        sales_rep: Some("rep7".into()),
        ..Default::default()
    };
    let customer = one(
        Aggregate::Customer,
        "cust1",
        Event::Customer(CustomerEvent::CustomerCreated(CustomerCreated {
            record: record.clone(),
            status: CustomerStatus::Blacklisted,
        })),
    );
    assert_eq!(customer.r#type, "customer.created");
    let Change::CustomerCreated(c) = change(customer) else {
        panic!()
    };
    assert_eq!(
        (c.status.as_str(), c.sales_rep.as_str()),
        ("blacklisted", "rep7")
    );
    let updated = one(
        Aggregate::Customer,
        "cust1",
        Event::Customer(CustomerEvent::CustomerUpdated(CustomerUpdated { record })),
    );
    assert_eq!(updated.r#type, "customer.updated");
    let status = one(
        Aggregate::Customer,
        "cust1",
        Event::Customer(CustomerEvent::CustomerStatusChanged(
            CustomerStatusChanged {
                status: CustomerStatus::Inactive,
                reason: "dormant".into(),
            },
        )),
    );
    assert_eq!(status.r#type, "customer.status_changed");
    let Change::CustomerStatusChanged(s) = change(status) else {
        panic!()
    };
    assert_eq!(
        (s.customer_id.as_str(), s.status.as_str()),
        ("cust1", "inactive")
    );
    let documents = one(
        Aggregate::Customer,
        "cust1",
        Event::Customer(CustomerEvent::DocumentVisibilitySet(
            DocumentVisibilitySet {
                kinds: vec![DocumentKind::CreditNote],
            },
        )),
    );
    assert_eq!(documents.r#type, "customer.documents_changed");
    let Change::CustomerDocumentsChanged(d) = change(documents) else {
        panic!()
    };
    assert_eq!(d.kinds, ["credit_note"]);

    let resent = one(
        Aggregate::Invitation,
        "i1",
        Event::Invitation(InvitationEvent::InvitationResent(InvitationResent {
            generation: 2,
            expires_at_ms: 88,
        })),
    );
    assert_eq!(resent.r#type, "invitation.resent");
    let Change::InvitationResent(i) = change(resent) else {
        panic!()
    };
    assert_eq!(
        (
            i.contact_id.as_str(),
            i.customer_id.as_str(),
            i.expires_at_ms
        ),
        ("c1", "cust1", 88)
    );
    let cancelled = one(
        Aggregate::Invitation,
        "i1",
        Event::Invitation(InvitationEvent::InvitationCancelled(InvitationCancelled {
            reason: "revoked".into(),
        })),
    );
    assert_eq!(cancelled.r#type, "invitation.cancelled");

    let link = one(
        Aggregate::PortalLink,
        "l1",
        Event::PortalLink(PortalLinkEvent::PortalLinkCreated(PortalLinkCreated {
            link_id: "l1".into(),
            customer_id: "cust1".into(),
            kinds: vec![DocumentKind::SalesInvoice],
            expires_at_ms: None,
            token_sha256: [1; 32],
        })),
    );
    assert_eq!(link.r#type, "portal_link.created");
    let deleted = one(
        Aggregate::PortalLink,
        "l1",
        Event::PortalLink(PortalLinkEvent::PortalLinkDeleted(PortalLinkDeleted {
            reason: "sent in error".into(),
        })),
    );
    assert_eq!(deleted.r#type, "portal_link.deleted");
    let Change::PortalLinkDeleted(d) = change(deleted) else {
        panic!()
    };
    assert_eq!(
        (d.link_id.as_str(), d.customer_id.as_str()),
        ("l1", "cust1")
    );
}

#[test]
fn details_and_logins_created_by_staff() {
    let created = one(
        Aggregate::Contact,
        "c1",
        Event::Contact(ContactEvent::LoginCreated(LoginCreated {
            contact_id: "c1".into(),
            customer_id: "cust1".into(),
            username: "shopS".into(),
            email: None,
            identity_id: None,
            site_rule: SiteRule::TenantDefault,
            kind: LoginKind::Staff,
        })),
    );
    assert_eq!(created.r#type, "contact.login_created");
    let Change::ContactLoginCreated(c) = change(created) else {
        panic!()
    };
    assert_eq!((c.kind.as_str(), c.email), ("staff", None));
    let details = one(
        Aggregate::Contact,
        "c1",
        Event::Contact(ContactEvent::ContactDetailsChanged(ContactDetailsChanged {
            email: Some(email("new@shop.example")),
            identity_id: Some("id2".into()),
            username: None,
        })),
    );
    assert_eq!(details.r#type, "contact.details_changed");
    let Change::ContactDetailsChanged(d) = change(details) else {
        panic!()
    };
    assert_eq!(
        d.email.map(|p| p.value).as_deref(),
        Some("new@shop.example")
    );
}

#[test]
fn imported_logins_and_their_passwords() {
    let imported = one(
        Aggregate::Contact,
        "c2",
        Event::Contact(ContactEvent::ContactImported(ContactImported {
            contact_id: "c2".into(),
            customer_id: "cust1".into(),
            email: Some(email("anna@shop.example")),
            identity_id: Some("id3".into()),
            username: None,
            site_rule: SiteRule::AllSites,
            kind: LoginKind::Management,
            disabled: true,
            logged_in: true,
            import_id: "imp1".into(),
        })),
    );
    assert_eq!(imported.r#type, "contact.imported");
    let Change::ContactImported(c) = change(imported) else {
        panic!()
    };
    assert_eq!(
        (
            c.username.as_str(),
            c.disabled,
            c.logged_in,
            c.import_id.as_str()
        ),
        ("", true, true, "imp1")
    );
    assert_eq!(
        c.email.map(|p| p.value).as_deref(),
        Some("anna@shop.example")
    );
    let kept = one(
        Aggregate::Contact,
        "c2",
        Event::Contact(ContactEvent::PasswordImported(PasswordImported {
            password_hash: Personal::clear("$2b$04$secretish"),
            scheme: "bcrypt".into(),
            import_id: "imp1".into(),
        })),
    );
    assert_eq!(kept.r#type, "password.changed");
    assert!(!format!("{kept:?}").contains("secretish"), "never the hash");
    let rehashed = public_events(
        &envelope(Aggregate::Contact, "acme", "c2", staff()),
        &Event::Contact(ContactEvent::PasswordRehashed(PasswordRehashed {
            password_hash: "$argon2id$ours".into(),
        })),
        &known(),
        ALL,
    );
    assert!(rehashed.is_empty(), "bookkeeping: the same password");
}
