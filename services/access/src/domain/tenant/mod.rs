//! A tenant: a supplier with its sites, default order site and API keys.

use super::password_policy::PasswordPolicy;
use super::policy::{Role, Staff};
use super::values::{FieldViolation, GeneratedId, Name, SiteName, TenantId};
use super::{Aggregate, Change, DomainError, streams};
use access_catalogue::catalogue::{
    ApiKeyIssued, DefaultVisibility, EmailTemplateSet, Event, TenantCreated, TenantEvent,
    TenantSettingsChanged,
};
use std::collections::BTreeMap;

mod keys;
mod policies;
mod signing;

pub use keys::*;
pub use policies::*;
pub use signing::*;

/// What the log says about one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantState {
    /// False until `TenantCreated`.
    pub exists: bool,
    /// Display name.
    pub name: String,
    /// Stock sites.
    pub sites: Vec<String>,
    /// Default order site.
    pub default_order_site: String,
    /// What "tenant default" contacts see.
    pub default_visibility: DefaultVisibility,
    /// Whether contacts of inactive or blacklisted customers may log in and look.
    pub inactive_customers_may_log_in: bool,
    /// API keys by id.
    pub keys: BTreeMap<String, KeyState>,
    /// Registrations wait for approval.
    pub approval_required: bool,
    /// Who is told of registrations (one to three emails, once set).
    pub username_administrators: Vec<String>,
    /// The tenant's own email templates, by kind.
    pub templates: BTreeMap<String, EmailTemplateSet>,
    /// Rules for new passwords.
    pub password_policy: PasswordPolicy,
    /// What its contacts' sign-ins must include.
    pub second_factor: access_catalogue::catalogue::FactorRequirement,
    /// The keys its OpenID Connect tokens are signed with, oldest first.
    pub signing_keys: Vec<SigningKeyState>,
}

/// What the log says about one API key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyState {
    /// Its role.
    pub role: String,
    /// Revoked keys fail at once.
    pub revoked: bool,
    /// Who holds it.
    pub name: String,
    /// For rep keys: the sales rep.
    pub rep_id: Option<String>,
}

impl Default for TenantState {
    fn default() -> Self {
        TenantState {
            exists: false,
            name: String::new(),
            sites: Vec::new(),
            default_order_site: String::new(),
            default_visibility: DefaultVisibility::AllSites,
            inactive_customers_may_log_in: true,
            keys: BTreeMap::new(),
            approval_required: false,
            username_administrators: Vec::new(),
            templates: BTreeMap::new(),
            password_policy: PasswordPolicy::default(),
            second_factor: Default::default(),
            signing_keys: Vec::new(),
        }
    }
}

impl Aggregate for TenantState {
    fn evolve(mut self, event: &Event) -> Self {
        let Event::Tenant(event) = event else {
            return self;
        };
        match event {
            TenantEvent::SecondFactorPolicySet(e) => self.second_factor = e.require,
            TenantEvent::TenantCreated(e) => {
                self.exists = true;
                self.name = e.name.clone();
                self.sites = e.sites.clone();
                self.default_order_site = e.default_order_site.clone();
            }
            TenantEvent::ApiKeyIssued(k) => {
                self.keys.insert(
                    k.key_id.clone(),
                    KeyState {
                        role: k.role.clone(),
                        revoked: false,
                        name: k.name.clone(),
                        rep_id: k.rep_id.clone(),
                    },
                );
            }
            TenantEvent::ApiKeyRevoked(k) => {
                if let Some(key) = self.keys.get_mut(&k.key_id) {
                    key.revoked = true;
                }
            }
            TenantEvent::TenantSettingsChanged(e) => {
                self.sites = e.sites.clone();
                self.default_order_site = e.default_order_site.clone();
                self.default_visibility = e.default_visibility.clone();
                self.inactive_customers_may_log_in = e.inactive_customers_may_log_in;
            }
            TenantEvent::ApprovalPolicySet(e) => self.approval_required = e.approval_required,
            TenantEvent::EmailTemplateSet(e) => {
                self.templates.insert(e.kind.clone(), e.clone());
            }
            TenantEvent::EmailTemplateReset(e) => {
                self.templates.remove(&e.kind);
            }
            TenantEvent::NotificationPolicySet(_) => {}
            TenantEvent::PasswordPolicySet(e) => {
                self.password_policy = PasswordPolicy {
                    min_length: e.min_length,
                    require_mixed_case: e.require_mixed_case,
                    require_symbol: e.require_symbol,
                }
            }
            TenantEvent::UsernameAdministratorsSet(e) => {
                self.username_administrators = e.emails.clone();
            }
            TenantEvent::BrandingSet(_) => {}
            TenantEvent::SigningKeyAdded(_) | TenantEvent::SigningKeyRetired(_) => {
                self.evolve_signing(event)
            }
        }
        self
    }
}

impl TenantState {
    /// Whether `site` is one of the tenant's sites.
    pub fn has_site(&self, site: &str) -> bool {
        self.sites.iter().any(|s| s == site)
    }
}

/// Checks a site list and a default order site.
fn check_sites(sites: &[SiteName], default_order_site: &SiteName) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    if sites.is_empty() {
        violations.push(FieldViolation::new(
            "sites",
            "a tenant needs at least one site",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for site in sites {
        if !seen.insert(site.as_str()) {
            violations.push(FieldViolation::new(
                "sites",
                format!("site {site:?} is listed twice"),
            ));
        }
    }
    if !sites.is_empty() && !sites.contains(default_order_site) {
        violations.push(FieldViolation::new(
            "default_order_site",
            "the default order site must be one of the tenant's sites",
        ));
    }
    violations
}

/// Create a tenant (operator only).
#[derive(Clone, Debug)]
pub struct CreateTenant {
    /// The new tenant's slug.
    pub tenant_id: TenantId,
    /// Display name.
    pub name: Name,
    /// Stock sites, at least one.
    pub sites: Vec<SiteName>,
    /// One of `sites`.
    pub default_order_site: SiteName,
    /// The admin key's public id.
    pub admin_key_id: GeneratedId,
    /// SHA-256 of the admin key's full text.
    pub admin_key_sha256: [u8; 32],
}

/// Decides `CreateTenant`.
pub fn create(state: &TenantState, cmd: CreateTenant) -> Result<Vec<Change>, DomainError> {
    let violations = check_sites(&cmd.sites, &cmd.default_order_site);
    if !violations.is_empty() {
        return Err(DomainError::Invalid(violations));
    }
    if state.exists {
        return Err(DomainError::AlreadyExists(format!(
            "tenant {} already exists",
            cmd.tenant_id
        )));
    }
    let stream = streams::tenant(&cmd.tenant_id);
    Ok(vec![
        Change::new(
            stream.clone(),
            Event::Tenant(TenantEvent::TenantCreated(TenantCreated {
                tenant_id: cmd.tenant_id.to_string(),
                name: cmd.name.to_string(),
                sites: cmd.sites.iter().map(ToString::to_string).collect(),
                default_order_site: cmd.default_order_site.to_string(),
            })),
        ),
        Change::new(
            stream,
            Event::Tenant(TenantEvent::ApiKeyIssued(ApiKeyIssued {
                key_id: cmd.admin_key_id.to_string(),
                role: Role::Admin.as_str().into(),
                key_sha256: cmd.admin_key_sha256,
                name: "admin".into(),
                rep_id: None,
            })),
        ),
    ])
}

/// Replace the tenant's settings (admins).
#[derive(Clone, Debug)]
pub struct ChangeSettings {
    /// The tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// Stock sites.
    pub sites: Vec<SiteName>,
    /// Default order site.
    pub default_order_site: SiteName,
    /// The catalogue default.
    pub default_visibility: DefaultVisibility,
    /// Whether contacts of inactive or blacklisted customers may log in.
    pub inactive_customers_may_log_in: bool,
}

/// Decides `UpdateTenantSettings`.
pub fn change_settings(cmd: ChangeSettings) -> Result<Vec<Change>, DomainError> {
    cmd.by.may_manage_tenant()?;
    let mut violations = check_sites(&cmd.sites, &cmd.default_order_site);
    if let DefaultVisibility::OneSite(site) = &cmd.default_visibility
        && !cmd.sites.iter().any(|s| s.as_str() == site)
    {
        violations.push(FieldViolation::new(
            "default_visibility.one_site",
            "the default site must be one of the tenant's sites",
        ));
    }
    if !violations.is_empty() {
        return Err(DomainError::Invalid(violations));
    }
    Ok(vec![Change::new(
        streams::tenant(&cmd.tenant),
        Event::Tenant(TenantEvent::TenantSettingsChanged(TenantSettingsChanged {
            sites: cmd.sites.iter().map(ToString::to_string).collect(),
            default_order_site: cmd.default_order_site.to_string(),
            default_visibility: cmd.default_visibility,
            inactive_customers_may_log_in: cmd.inactive_customers_may_log_in,
        })),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Reason;
    use crate::domain::test_support::*;
    use crate::domain::values::Email;

    fn cmd(sites: &[&str], default: &str) -> CreateTenant {
        CreateTenant {
            tenant_id: TenantId::parse("acme").unwrap(),
            name: Name::parse("Acme Supplies").unwrap(),
            sites: sites.iter().map(|s| SiteName::parse(s).unwrap()).collect(),
            default_order_site: SiteName::parse(default).unwrap(),
            admin_key_id: GeneratedId::generate(),
            admin_key_sha256: [1; 32],
        }
    }

    #[test]
    fn given_nothing_when_created_then_tenant_and_admin_key_are_recorded() {
        let changes = create(&given(&[]), cmd(&["Leeds", "York"], "Leeds")).unwrap();
        let state: TenantState = given(&events(&changes));
        assert!(state.exists);
        assert_eq!(state.sites, vec!["Leeds", "York"]);
        assert_eq!(state.default_order_site, "Leeds");
        assert!(matches!(
            &changes[1].event,
            Event::Tenant(TenantEvent::ApiKeyIssued(k)) if k.role == "admin" && k.key_sha256 == [1; 32]
        ));
    }

    #[test]
    fn the_default_order_site_must_be_a_site_and_sites_are_needed() {
        let err = create(&given(&[]), cmd(&["Leeds"], "York")).unwrap_err();
        assert!(matches!(err, DomainError::Invalid(v) if v[0].field == "default_order_site"));
        let err = create(&given(&[]), cmd(&[], "York")).unwrap_err();
        assert!(matches!(err, DomainError::Invalid(v) if v[0].field == "sites"));
        let err = create(&given(&[]), cmd(&["Leeds", "Leeds"], "Leeds")).unwrap_err();
        assert!(matches!(err, DomainError::Invalid(_)));
    }

    #[test]
    fn given_a_tenant_when_created_again_then_already_exists() {
        let first = create(&given(&[]), cmd(&["Leeds"], "Leeds")).unwrap();
        let state: TenantState = given(&events(&first));
        assert!(matches!(
            create(&state, cmd(&["Leeds"], "Leeds")),
            Err(DomainError::AlreadyExists(_))
        ));
    }

    fn created() -> TenantState {
        given(&events(
            &create(&given(&[]), cmd(&["Leeds", "York"], "Leeds")).unwrap(),
        ))
    }

    fn key(by: Staff, role: Role, rep: Option<&str>) -> IssueApiKey {
        IssueApiKey {
            tenant: TenantId::parse("acme").unwrap(),
            by,
            key_id: GeneratedId::generate(),
            key_sha256: [2; 32],
            role,
            name: Name::parse("Anna's laptop").unwrap(),
            rep_id: rep.map(str::to_owned),
        }
    }

    #[test]
    fn admins_issue_and_revoke_keys_and_nobody_else_does() {
        let admin = Staff::new(Role::Admin);
        let issue = key(admin.clone(), Role::Rep, Some("anna"));
        let key_id = issue.key_id.to_string();
        let state = created();
        let state = events(&issue_key(&state, issue).unwrap())
            .iter()
            .fold(state, |s, e| s.evolve(e));
        assert_eq!(
            state
                .keys
                .get(&key_id)
                .map(|k| (k.role.as_str(), k.revoked)),
            Some(("rep", false))
        );
        let tenant = TenantId::parse("acme").unwrap();
        let state = events(&revoke_key(&state, &tenant, &admin, &key_id).unwrap())
            .iter()
            .fold(state, |s, e| s.evolve(e));
        assert_eq!(
            state
                .keys
                .get(&key_id)
                .map(|k| (k.role.as_str(), k.revoked)),
            Some(("rep", true))
        );
        assert!(matches!(
            revoke_key(&state, &tenant, &admin, &key_id),
            Err(DomainError::FailedPrecondition {
                reason: Reason::AlreadyRevoked,
                ..
            })
        ));
        assert!(matches!(
            issue_key(&state, key(Staff::new(Role::InHouse), Role::Admin, None)),
            Err(DomainError::PermissionDenied {
                reason: Reason::Role,
                ..
            })
        ));
        assert!(matches!(
            revoke_key(&state, &tenant, &admin, "nope"),
            Err(DomainError::NotFound(_))
        ));
    }

    #[test]
    fn rep_keys_name_their_rep_and_only_they_do() {
        let admin = Staff::new(Role::Admin);
        assert!(matches!(
            issue_key(&created(), key(admin.clone(), Role::Rep, None)),
            Err(DomainError::Invalid(v)) if v[0].field == "rep_id"
        ));
        assert!(matches!(
            issue_key(&created(), key(admin, Role::Service, Some("anna"))),
            Err(DomainError::Invalid(v)) if v[0].field == "rep_id"
        ));
    }

    #[test]
    fn approval_needs_one_to_three_username_administrators_first() {
        let tenant = TenantId::parse("acme").unwrap();
        let admin = Staff::new(Role::Admin);
        let state = created();
        assert!(matches!(
            set_approval_policy(&state, &tenant, &admin, true),
            Err(DomainError::FailedPrecondition {
                reason: Reason::NoUsernameAdministrators,
                ..
            })
        ));
        let email = |s: &str| Email::parse(s).unwrap();
        assert!(set_username_administrators(&tenant, &admin, vec![]).is_err());
        assert!(
            set_username_administrators(
                &tenant,
                &admin,
                vec![email("a@x.example"), email("A@x.example")]
            )
            .is_err()
        );
        let four = ["a", "b", "c", "d"]
            .map(|n| email(&format!("{n}@x.example")))
            .to_vec();
        assert!(set_username_administrators(&tenant, &admin, four).is_err());
        assert!(matches!(
            set_username_administrators(
                &tenant,
                &Staff::new(Role::InHouse),
                vec![email("a@x.example")]
            ),
            Err(DomainError::PermissionDenied { .. })
        ));
        let state = then(
            state,
            &set_username_administrators(&tenant, &admin, vec![email("a@x.example")]).unwrap(),
        );
        let state = then(
            state.clone(),
            &set_approval_policy(&state, &tenant, &admin, true).unwrap(),
        );
        assert!(state.approval_required);
        assert_eq!(state.username_administrators, vec!["a@x.example"]);
    }

    #[test]
    fn settings_keep_the_default_sites_among_the_sites() {
        let change = |visibility: DefaultVisibility, default: &str| ChangeSettings {
            tenant: TenantId::parse("acme").unwrap(),
            by: Staff::new(Role::Admin),
            sites: vec![
                SiteName::parse("Leeds").unwrap(),
                SiteName::parse("Hull").unwrap(),
            ],
            default_order_site: SiteName::parse(default).unwrap(),
            default_visibility: visibility,
            inactive_customers_may_log_in: false,
        };
        let changes =
            change_settings(change(DefaultVisibility::OneSite("Hull".into()), "Hull")).unwrap();
        let state = events(&changes).iter().fold(created(), |s, e| s.evolve(e));
        assert_eq!(state.sites, vec!["Leeds", "Hull"]);
        assert!(!state.inactive_customers_may_log_in);
        assert!(
            change_settings(change(DefaultVisibility::OneSite("York".into()), "Hull")).is_err()
        );
        assert!(change_settings(change(DefaultVisibility::AllSites, "York")).is_err());
    }
}
