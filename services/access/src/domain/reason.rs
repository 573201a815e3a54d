//! Every reason the service gives for a refusal, as one list: the stable
//! word a client matches on (`ErrorInfo.reason`, `CheckAccess.reason`),
//! one word for each state whichever call meets it.

/// Why the answer is no (or, for `CheckAccess`, that it is yes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The contact's access was revoked.
    Revoked,
    /// The contact's access is disabled for now.
    Disabled,
    /// The contact has not accepted the invitation yet.
    InvitationPending,
    /// The contact waits for approval by a username administrator.
    PendingApproval,
    /// The contact must set a new password before anything else.
    PasswordChangeRequired,
    /// A staff login does not see costs, balances or other sensitive figures.
    StaffLogin,
    /// The customer account is inactive.
    CustomerInactive,
    /// The customer account is blocked from ordering.
    CustomerBlacklisted,
    /// The contact does not see this site.
    SiteNotVisible,
    /// The contact does not see this kind of document.
    DocumentNotVisible,
    /// Payments and reports are never shown in the portal.
    DocumentKindNotViewable,
    /// CheckAccess: it is allowed.
    Allowed,
    /// The email or password is wrong (the one answer that reveals nothing).
    BadCredentials,
    /// The one-time login code is wrong, used or expired.
    BadLoginCode,
    /// Too many failed logins: wait as the retry info says.
    TooManyAttempts,
    /// The session token is not valid, or has expired.
    SessionInvalid,
    /// The link has expired.
    LinkExpired,
    /// The link was used already.
    LinkUsed,
    /// A newer link replaced this one.
    LinkSuperseded,
    /// The link was withdrawn.
    LinkRevoked,
    /// The portal link was deleted.
    LinkDeleted,
    /// The contact has no invitation to act on.
    NoInvitation,
    /// The invitation was accepted already.
    AlreadyAccepted,
    /// The person has a login elsewhere: the existing password is needed.
    ExistingPasswordRequired,
    /// The login has no email address to write to.
    NoEmail,
    /// Bulk invitations: the customer has a login already.
    AlreadyHasLogin,
    /// Bulk invitations: the target's address is not an email address.
    InvalidEmail,
    /// Access is disabled already.
    AlreadyDisabled,
    /// Access is not disabled.
    NotDisabled,
    /// The contact does not wait for approval.
    NotPendingApproval,
    /// Revoked already.
    AlreadyRevoked,
    /// Deleted already.
    AlreadyDeleted,
    /// The login is not locked.
    NotLocked,
    /// The command would change nothing.
    Unchanged,
    /// The tenant has no username administrators to approve registrations.
    NoUsernameAdministrators,
    /// No API key was sent, or not as `authorization: Bearer <key>`.
    ApiKeyRequired,
    /// The API key is not one this service issued.
    ApiKeyInvalid,
    /// The API key was revoked.
    ApiKeyRevoked,
    /// Only the operator key may do this.
    OperatorKeyRequired,
    /// The operator key does not act within a tenant: use the tenant's key.
    TenantKeyRequired,
    /// The caller's role may not do this.
    Role,
    /// A sales rep may act only on the customers assigned to them.
    NotAssignedRep,
    /// What the request names does not exist (for this caller).
    NotFound,
    /// What the request would create exists already.
    AlreadyExists,
    /// Concurrent changes kept winning; send the command again.
    Conflict,
    /// The request id was used for a different command.
    RequestIdReused,
    /// The command's events would be too large to store.
    TooLarge,
    /// `min_position` is beyond the log's head.
    PositionBeyondLog,
    /// This replica has not reached `min_position` yet; retry.
    ReadModelBehind,
    /// The event log is out of reach for now; retry.
    LogUnavailable,
    /// The service is busy with work of this kind (rendering previews, say); retry shortly.
    Busy,
    /// The stored history this needs is damaged; an operator must repair it.
    HistoryDamaged,
    /// A limit on how many of these one holder may have is reached; remove one first.
    LimitReached,
    /// The tenant or customer requires a second factor (or a passkey) the login lacks; enrol one.
    SecondFactorRequired,
}

impl Reason {
    /// Every reason, in the order the API documents them.
    pub const ALL: &'static [Reason] = &[
        Reason::Revoked,
        Reason::Disabled,
        Reason::InvitationPending,
        Reason::PendingApproval,
        Reason::PasswordChangeRequired,
        Reason::StaffLogin,
        Reason::CustomerInactive,
        Reason::CustomerBlacklisted,
        Reason::SiteNotVisible,
        Reason::DocumentNotVisible,
        Reason::DocumentKindNotViewable,
        Reason::Allowed,
        Reason::BadCredentials,
        Reason::BadLoginCode,
        Reason::TooManyAttempts,
        Reason::SessionInvalid,
        Reason::LinkExpired,
        Reason::LinkUsed,
        Reason::LinkSuperseded,
        Reason::LinkRevoked,
        Reason::LinkDeleted,
        Reason::NoInvitation,
        Reason::AlreadyAccepted,
        Reason::ExistingPasswordRequired,
        Reason::NoEmail,
        Reason::AlreadyHasLogin,
        Reason::InvalidEmail,
        Reason::AlreadyDisabled,
        Reason::NotDisabled,
        Reason::NotPendingApproval,
        Reason::AlreadyRevoked,
        Reason::AlreadyDeleted,
        Reason::NotLocked,
        Reason::Unchanged,
        Reason::NoUsernameAdministrators,
        Reason::ApiKeyRequired,
        Reason::ApiKeyInvalid,
        Reason::ApiKeyRevoked,
        Reason::OperatorKeyRequired,
        Reason::TenantKeyRequired,
        Reason::Role,
        Reason::NotAssignedRep,
        Reason::NotFound,
        Reason::AlreadyExists,
        Reason::Conflict,
        Reason::RequestIdReused,
        Reason::TooLarge,
        Reason::PositionBeyondLog,
        Reason::ReadModelBehind,
        Reason::LogUnavailable,
        Reason::Busy,
        Reason::HistoryDamaged,
        Reason::LimitReached,
        Reason::SecondFactorRequired,
    ];

    /// The stable word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Revoked => "revoked",
            Reason::Disabled => "disabled",
            Reason::InvitationPending => "invitation_pending",
            Reason::PendingApproval => "pending_approval",
            Reason::PasswordChangeRequired => "password_change_required",
            Reason::StaffLogin => "staff_login",
            Reason::CustomerInactive => "customer_inactive",
            Reason::CustomerBlacklisted => "customer_blacklisted",
            Reason::SiteNotVisible => "site_not_visible",
            Reason::DocumentNotVisible => "document_not_visible",
            Reason::DocumentKindNotViewable => "document_kind_not_viewable",
            Reason::Allowed => "allowed",
            Reason::BadCredentials => "bad_credentials",
            Reason::BadLoginCode => "bad_login_code",
            Reason::TooManyAttempts => "too_many_attempts",
            Reason::SessionInvalid => "session_invalid",
            Reason::LinkExpired => "link_expired",
            Reason::LinkUsed => "link_used",
            Reason::LinkSuperseded => "link_superseded",
            Reason::LinkRevoked => "link_revoked",
            Reason::LinkDeleted => "link_deleted",
            Reason::NoInvitation => "no_invitation",
            Reason::AlreadyAccepted => "already_accepted",
            Reason::ExistingPasswordRequired => "existing_password_required",
            Reason::NoEmail => "no_email",
            Reason::AlreadyHasLogin => "already_has_login",
            Reason::InvalidEmail => "invalid_email",
            Reason::AlreadyDisabled => "already_disabled",
            Reason::NotDisabled => "not_disabled",
            Reason::NotPendingApproval => "not_pending_approval",
            Reason::AlreadyRevoked => "already_revoked",
            Reason::AlreadyDeleted => "already_deleted",
            Reason::NotLocked => "not_locked",
            Reason::Unchanged => "unchanged",
            Reason::NoUsernameAdministrators => "no_username_administrators",
            Reason::ApiKeyRequired => "api_key_required",
            Reason::ApiKeyInvalid => "api_key_invalid",
            Reason::ApiKeyRevoked => "api_key_revoked",
            Reason::OperatorKeyRequired => "operator_key_required",
            Reason::TenantKeyRequired => "tenant_key_required",
            Reason::Role => "role",
            Reason::NotAssignedRep => "not_assigned_rep",
            Reason::NotFound => "not_found",
            Reason::AlreadyExists => "already_exists",
            Reason::Conflict => "conflict",
            Reason::RequestIdReused => "request_id_reused",
            Reason::TooLarge => "too_large",
            Reason::PositionBeyondLog => "position_beyond_log",
            Reason::ReadModelBehind => "read_model_behind",
            Reason::LogUnavailable => "log_unavailable",
            Reason::Busy => "busy",
            Reason::HistoryDamaged => "history_damaged",
            Reason::LimitReached => "limit_reached",
            Reason::SecondFactorRequired => "second_factor_required",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_word() {
        let words: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(words.len(), Reason::ALL.len());
        assert!(
            words
                .iter()
                .all(|w| w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
    }

    #[test]
    fn the_proto_documents_every_reason() {
        let proto = include_str!("../../../../proto/access/v1/access.proto");
        for reason in Reason::ALL {
            let line = format!("//   {}: ", reason.as_str());
            assert!(
                proto.contains(&line),
                "access.proto does not document {reason}"
            );
        }
    }
}
