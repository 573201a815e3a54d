//! Who among a tenant's staff may do what.
//!
//! | role | tenant settings, keys | customers | logins | reads, reports | access checks |
//! |---|---|---|---|---|---|
//! | `admin` | yes | yes | any customer | yes | yes |
//! | `in_house` | no | yes | any customer | yes | yes |
//! | `rep` | no | no | customers assigned to the rep | those customers | no |
//! | `service` | no | yes | any customer | yes | yes |
//! | `auditor` | no | no | no | yes (read-only) | no |
//!
//! The audit history (`Audit`) is for `admin` and `auditor` keys only.

use super::{DomainError, Reason};

/// The role of an API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything within the tenant.
    Admin,
    /// Supplier staff: customers and logins of any customer.
    InHouse,
    /// A sales rep: logins of the customers assigned to them.
    Rep,
    /// Another microservice: the whole tenant, no key or settings management.
    Service,
    /// Read-only: audit and reports.
    Auditor,
    /// Another service following the tenant's public events, and nothing else.
    Subscriber,
}

impl Role {
    /// The stored name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::InHouse => "in_house",
            Role::Rep => "rep",
            Role::Service => "service",
            Role::Auditor => "auditor",
            Role::Subscriber => "subscriber",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "admin" => Role::Admin,
            "in_house" => Role::InHouse,
            "rep" => Role::Rep,
            "service" => Role::Service,
            "auditor" => Role::Auditor,
            "subscriber" => Role::Subscriber,
            _ => {
                return Err(
                    "the role must be admin, in_house, rep, service, auditor or subscriber".into(),
                );
            }
        })
    }
}

/// An authenticated member of a tenant's staff (or a service).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staff {
    /// The key's role.
    pub role: Role,
    /// For reps: which sales rep.
    pub rep_id: Option<String>,
}

fn denied(reason: Reason, message: impl Into<String>) -> DomainError {
    DomainError::PermissionDenied {
        reason,
        message: message.into(),
    }
}

impl Staff {
    /// Staff with a role and no rep id.
    pub fn new(role: Role) -> Self {
        Staff { role, rep_id: None }
    }

    /// A sales rep.
    pub fn rep(rep_id: &str) -> Self {
        Staff {
            role: Role::Rep,
            rep_id: Some(rep_id.to_owned()),
        }
    }

    fn role_denied(&self, what: &str) -> DomainError {
        denied(
            Reason::Role,
            format!("a {} key may not {what}", self.role.as_str()),
        )
    }

    /// Tenant settings and API keys: admins only.
    pub fn may_manage_tenant(&self) -> Result<(), DomainError> {
        match self.role {
            Role::Admin => Ok(()),
            _ => Err(self.role_denied("manage tenant settings or API keys")),
        }
    }

    /// Creating and changing customer records.
    pub fn may_manage_customers(&self) -> Result<(), DomainError> {
        match self.role {
            Role::Admin | Role::InHouse | Role::Service => Ok(()),
            _ => Err(self.role_denied("change customer records")),
        }
    }

    /// Invitations and access of the contacts of a customer with `sales_rep`.
    pub fn may_manage_logins_of(&self, sales_rep: Option<&str>) -> Result<(), DomainError> {
        match self.role {
            Role::Admin | Role::InHouse | Role::Service => Ok(()),
            Role::Rep if self.rep_id.is_some() && self.rep_id.as_deref() == sales_rep => Ok(()),
            Role::Rep => Err(denied(
                Reason::NotAssignedRep,
                "this customer is not assigned to this sales rep",
            )),
            Role::Auditor | Role::Subscriber => Err(self.role_denied("change logins")),
        }
    }

    /// Reading a customer with `sales_rep` and its contacts.
    pub fn may_read_customer(&self, sales_rep: Option<&str>) -> Result<(), DomainError> {
        match self.role {
            Role::Auditor => Ok(()),
            _ => self.may_manage_logins_of(sales_rep),
        }
    }

    /// The tenant's history: replay, access at a past moment, verification.
    pub fn may_audit(&self) -> Result<(), DomainError> {
        match self.role {
            Role::Admin | Role::Auditor => Ok(()),
            _ => Err(self.role_denied("read the audit history")),
        }
    }

    /// Logins and access checks on behalf of the portal.
    pub fn may_check_access(&self) -> Result<(), DomainError> {
        match self.role {
            Role::Admin | Role::InHouse | Role::Service => Ok(()),
            _ => Err(self.role_denied("log contacts in or check access")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(r: Result<(), DomainError>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(DomainError::PermissionDenied { reason, .. }) => reason.as_str(),
            Err(_) => "other",
        }
    }

    #[test]
    fn only_admins_manage_the_tenant() {
        assert_eq!(reason(Staff::new(Role::Admin).may_manage_tenant()), "ok");
        for role in [Role::InHouse, Role::Rep, Role::Service, Role::Auditor] {
            assert_eq!(reason(Staff::new(role).may_manage_tenant()), "role");
        }
    }

    #[test]
    fn in_house_staff_manage_any_customers_logins_and_reps_only_their_own() {
        assert_eq!(
            reason(Staff::new(Role::InHouse).may_manage_logins_of(Some("anna"))),
            "ok"
        );
        assert_eq!(
            reason(Staff::new(Role::InHouse).may_manage_logins_of(None)),
            "ok"
        );
        assert_eq!(
            reason(Staff::rep("anna").may_manage_logins_of(Some("anna"))),
            "ok"
        );
        assert_eq!(
            reason(Staff::rep("anna").may_manage_logins_of(Some("bert"))),
            "not_assigned_rep"
        );
        assert_eq!(
            reason(Staff::rep("anna").may_manage_logins_of(None)),
            "not_assigned_rep"
        );
        assert_eq!(
            reason(Staff::new(Role::Rep).may_manage_logins_of(None)),
            "not_assigned_rep"
        );
        assert_eq!(
            reason(Staff::new(Role::Auditor).may_manage_logins_of(None)),
            "role"
        );
    }

    #[test]
    fn auditors_read_but_never_change() {
        let auditor = Staff::new(Role::Auditor);
        assert_eq!(reason(auditor.may_read_customer(Some("anna"))), "ok");
        assert_eq!(reason(auditor.may_manage_customers()), "role");
        assert_eq!(reason(auditor.may_check_access()), "role");
        assert_eq!(
            reason(Staff::rep("anna").may_read_customer(Some("bert"))),
            "not_assigned_rep"
        );
        assert_eq!(reason(Staff::rep("anna").may_manage_customers()), "role");
        assert_eq!(reason(Staff::new(Role::Service).may_check_access()), "ok");
    }
}
