//! Given a record as it stands, when an import row names it, then it is
//! created, brought up to date with the commands' events, or left alone.

use super::*;
use crate::domain::policy::Role;
use access_catalogue::catalogue::ContactEvent;

const NOW: i64 = 1_700_000_000_000;
const BCRYPT: &str = "$2b$04$VoRRRugsA98reyI4dnnMNeMTwQcQ1cg9xQE6vNQ5SpDQc1XWhCb9a";

fn record(name: &str) -> CustomerRecord {
    CustomerRecord {
        customer_id: "C1".into(),
        name: name.into(),
        short_name: String::new(),
        default_department: String::new(),
        contact: Default::default(),
        billing: Default::default(),
        customer_type: String::new(),
        price_list: String::new(),
        sales_rep: None,
    }
}

fn customer_row(name: &str, status: CustomerStatus) -> ImportCustomer {
    ImportCustomer {
        tenant: TenantId::trusted("acme"),
        by: Staff::new(Role::Admin),
        customer_id: CustomerId::parse("C1").unwrap(),
        record: record(name),
        status,
        documents: None,
        import_id: "imp1".into(),
    }
}

fn apply<S: Aggregate>(state: S, changes: &[Change]) -> S {
    changes.iter().fold(state, |s, c| s.evolve(&c.event))
}

fn types(changes: &[Change]) -> Vec<&'static str> {
    changes.iter().map(|c| c.event.encode().0).collect()
}

#[test]
fn a_customer_is_created_then_left_alone_then_updated_field_by_field() {
    let row = customer_row("Acme Ltd", CustomerStatus::Inactive);
    let (created, outcome) = import_customer(&CustomerState::default(), row.clone()).unwrap();
    assert_eq!(outcome, RowOutcome::Created);
    assert_eq!(types(&created), ["CustomerCreated"]);
    let state = apply(CustomerState::default(), &created);
    let (again, outcome) = import_customer(&state, row).unwrap();
    assert_eq!((again.len(), outcome), (0, RowOutcome::Unchanged));
    let (renamed, outcome) =
        import_customer(&state, customer_row("Acme Limited", CustomerStatus::Active)).unwrap();
    assert_eq!(outcome, RowOutcome::Updated);
    assert_eq!(
        types(&renamed),
        ["CustomerUpdated", "CustomerStatusChanged"]
    );
    let kinds = ImportCustomer {
        documents: Some(vec![DocumentKind::SalesInvoice, DocumentKind::SalesOrder]),
        ..customer_row("Acme Ltd", CustomerStatus::Inactive)
    };
    let (shown, outcome) = import_customer(&state, kinds.clone()).unwrap();
    assert_eq!(
        (types(&shown), outcome),
        (vec!["DocumentVisibilitySet"], RowOutcome::Updated)
    );
    let (same, _) = import_customer(&apply(state, &shown), kinds).unwrap();
    assert!(
        same.is_empty(),
        "the same kinds in another order change nothing"
    );
}

fn contact_row(hash: Option<&str>) -> ImportContact {
    ImportContact {
        tenant: TenantId::trusted("acme"),
        by: Staff::new(Role::Admin),
        contact_id: GeneratedId::trusted("c1"),
        customer_id: CustomerId::parse("C1").unwrap(),
        email: Some(Email::parse("anna@acme.example").unwrap()),
        username: Some(Username::parse("ACME01").unwrap()),
        site_rule: SiteRule::TenantDefault,
        kind: LoginKind::Management,
        disabled: false,
        logged_in: true,
        password: hash.map(|h| (h.to_owned(), "bcrypt")),
        invite: false,
        now_ms: NOW,
        link_ttl_ms: 86_400_000,
        import_id: "imp1".into(),
    }
}

struct World {
    customer: CustomerState,
    contact: ContactState,
    invitation: InvitationState,
    email_slot: EmailSlotState,
    username_slot: EmailSlotState,
    sites: Vec<String>,
}

impl World {
    fn new() -> Self {
        World {
            customer: CustomerState {
                exists: true,
                ..CustomerState::default()
            },
            contact: ContactState::default(),
            invitation: InvitationState::default(),
            email_slot: EmailSlotState::default(),
            username_slot: EmailSlotState::default(),
            sites: vec!["Leeds".into()],
        }
    }

    fn decide(&self, row: ImportContact) -> Result<(Vec<Change>, RowOutcome, bool), DomainError> {
        import_contact(
            ImportContactState {
                sites: &self.sites,
                customer: &self.customer,
                contact: &self.contact,
                invitation: &self.invitation,
                email_slot: &self.email_slot,
                username_slot: &self.username_slot,
            },
            row,
        )
    }

    /// The world after `changes` (the contact's own, and its reservations).
    fn after(mut self, changes: &[Change]) -> Self {
        for change in changes {
            match &change.event {
                Event::Contact(_) => {
                    self.contact = std::mem::take(&mut self.contact).evolve(&change.event)
                }
                Event::EmailSlot(_) => {
                    self.email_slot = std::mem::take(&mut self.email_slot).evolve(&change.event)
                }
                Event::UsernameSlot(_) => {
                    self.username_slot =
                        std::mem::take(&mut self.username_slot).evolve(&change.event)
                }
                _ => {}
            }
        }
        self
    }
}

#[test]
fn a_login_is_created_with_its_reservations_and_its_hash_and_only_once() {
    let world = World::new();
    let (changes, outcome, invited) = world.decide(contact_row(Some(BCRYPT))).unwrap();
    assert_eq!((outcome, invited), (RowOutcome::Created, false));
    assert_eq!(
        types(&changes),
        [
            "EmailReserved",
            "UsernameReserved",
            "ContactImported",
            "PasswordImported"
        ]
    );
    let world = world.after(&changes);
    assert!(world.contact.password_imported);
    assert!(world.contact.logged_in);
    let (again, outcome, _) = world.decide(contact_row(Some(BCRYPT))).unwrap();
    assert_eq!((again.len(), outcome), (0, RowOutcome::Unchanged));
    // Re-hashed at a login: the same file still changes nothing.
    let mut rehashed = world;
    rehashed.contact.local_password = Some("$argon2id$ours".into());
    rehashed.contact.password_imported = false;
    let (again, _, _) = rehashed.decide(contact_row(Some(BCRYPT))).unwrap();
    assert!(again.is_empty(), "{:?}", types(&again));
    // The old system's hash changed since: kept anew.
    let other = "$2b$04$ABCDEFGHIJKLMNOPQRSTUuSpDQc1XWhCb9aVoRRRugsA98reyI4dn";
    let (changed, outcome, _) = rehashed.decide(contact_row(Some(other))).unwrap();
    assert_eq!(
        (types(&changed), outcome),
        (vec!["PasswordImported"], RowOutcome::Updated)
    );
}

#[test]
fn a_new_login_without_a_hash_is_sent_a_link_only_when_asked() {
    let world = World::new();
    let (changes, _, invited) = world.decide(contact_row(None)).unwrap();
    assert!(!invited);
    assert!(!types(&changes).contains(&"PasswordResetRequested"));
    let asked = ImportContact {
        invite: true,
        logged_in: false,
        ..contact_row(None)
    };
    let (changes, _, invited) = world.decide(asked.clone()).unwrap();
    assert!(invited);
    let Some(Event::Contact(ContactEvent::PasswordResetRequested(r))) =
        changes.last().map(|c| &c.event)
    else {
        panic!("{:?}", types(&changes));
    };
    assert!(r.first_time && r.by_staff);
    assert_eq!(r.expires_at_ms, NOW + 86_400_000);
    // Not for a blocked login, nor one without an email.
    let blocked = ImportContact {
        disabled: true,
        ..asked.clone()
    };
    assert!(!world.decide(blocked).unwrap().2);
    let nameless = ImportContact {
        email: None,
        ..asked
    };
    assert!(!world.decide(nameless).unwrap().2);
}

#[test]
fn the_commands_rules_hold_for_imported_logins() {
    let mut world = World::new();
    world.email_slot.holder = Some("someone-else".into());
    let taken = world.decide(contact_row(None)).unwrap_err();
    assert!(matches!(taken, DomainError::AlreadyExists(_)), "{taken:?}");
    let mut world = World::new();
    world.username_slot.holder = Some("someone-else".into());
    assert!(matches!(
        world.decide(contact_row(None)).unwrap_err(),
        DomainError::AlreadyExists(_)
    ));
    let world = World::new();
    let paris = ImportContact {
        site_rule: SiteRule::OneSite("Paris".into()),
        ..contact_row(None)
    };
    assert!(matches!(
        world.decide(paris).unwrap_err(),
        DomainError::Invalid(_)
    ));
    let nameless = ImportContact {
        email: None,
        username: None,
        ..contact_row(None)
    };
    assert!(matches!(
        world.decide(nameless).unwrap_err(),
        DomainError::Invalid(_)
    ));
    let mut world = World::new();
    world.customer.exists = false;
    assert!(matches!(
        world.decide(contact_row(None)).unwrap_err(),
        DomainError::NotFound("customer")
    ));
    let rep = ImportContact {
        by: Staff::rep("rep7"),
        ..contact_row(None)
    };
    assert!(matches!(
        World::new().decide(rep).unwrap_err(),
        DomainError::PermissionDenied { .. }
    ));
}

#[test]
fn an_existing_login_is_updated_as_the_commands_would_and_never_moved() {
    let world = World::new();
    let (created, _, _) = world.decide(contact_row(None)).unwrap();
    let world = world.after(&created);
    // Blocked, with a new email: the details change first, then the block.
    let changed = ImportContact {
        disabled: true,
        email: Some(Email::parse("anna@new.example").unwrap()),
        ..contact_row(None)
    };
    let mut moved = World::new();
    moved.contact = world.contact.clone();
    moved.username_slot = world.username_slot.clone();
    let (changes, outcome, _) = moved.decide(changed.clone()).unwrap();
    assert_eq!(outcome, RowOutcome::Updated);
    assert_eq!(
        types(&changes),
        [
            "EmailReleased",
            "EmailReserved",
            "ContactDetailsChanged",
            "AccessDisabled"
        ]
    );
    let moved = moved.after(&changes);
    // Restored with the old email again: the block lifts first.
    let back = ImportContact {
        disabled: false,
        ..contact_row(None)
    };
    let mut back_world = World::new();
    back_world.contact = moved.contact.clone();
    back_world.username_slot = moved.username_slot.clone();
    let (changes, _, _) = back_world.decide(back).unwrap();
    assert_eq!(
        types(&changes)[0],
        "AccessRestored",
        "{:?}",
        types(&changes)
    );
    let elsewhere = ImportContact {
        customer_id: CustomerId::parse("C2").unwrap(),
        ..contact_row(None)
    };
    let refused = world.decide(elsewhere).unwrap_err();
    assert!(
        format!("{refused}").contains("does not move logins"),
        "{refused}"
    );
    let staff = ImportContact {
        kind: LoginKind::Staff,
        ..contact_row(None)
    };
    assert!(
        world.decide(staff).is_err(),
        "a login's kind is not changed"
    );
    let mut revoked = world;
    revoked.contact.lifecycle = Some(Lifecycle::Revoked);
    assert!(matches!(
        revoked.decide(contact_row(None)).unwrap_err(),
        DomainError::FailedPrecondition {
            reason: Reason::Revoked,
            ..
        }
    ));
}
