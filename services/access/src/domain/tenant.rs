//! A tenant: a supplier with its sites, default order site and API keys.

use super::values::{FieldViolation, GeneratedId, Name, SiteName, TenantId};
use super::{Aggregate, Change, DomainError, streams};
use access_events::catalogue::{ApiKeyIssued, Event, TenantCreated, TenantEvent};

/// What the log says about one tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantState {
    /// False until `TenantCreated`.
    pub exists: bool,
    /// Display name.
    pub name: String,
    /// Stock sites.
    pub sites: Vec<String>,
    /// Default order site.
    pub default_order_site: String,
}

impl Aggregate for TenantState {
    fn evolve(mut self, event: &Event) -> Self {
        if let Event::Tenant(TenantEvent::TenantCreated(e)) = event {
            self.exists = true;
            self.name = e.name.clone();
            self.sites = e.sites.clone();
            self.default_order_site = e.default_order_site.clone();
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

/// The role of an API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything within the tenant.
    Admin,
}

impl Role {
    /// The stored name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
        }
    }

    /// Parses a stored role name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
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
    let mut violations = Vec::new();
    if cmd.sites.is_empty() {
        violations.push(FieldViolation::new(
            "sites",
            "a tenant needs at least one site",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for site in &cmd.sites {
        if !seen.insert(site.as_str()) {
            violations.push(FieldViolation::new(
                "sites",
                format!("site {site:?} is listed twice"),
            ));
        }
    }
    if !cmd.sites.is_empty() && !cmd.sites.contains(&cmd.default_order_site) {
        violations.push(FieldViolation::new(
            "default_order_site",
            "the default order site must be one of the tenant's sites",
        ));
    }
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
            })),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::*;

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
}
