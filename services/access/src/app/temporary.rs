//! Staff commands whose reply shows a generated temporary password once:
//! the password is derived again from the request each time it is shown,
//! so a retry shows the same one and none is ever stored.

use super::{
    AddPortalUserCommand, App, AppError, CommandContext, Outcome, PortalUserAdded,
    SetTemporaryPasswordCommand, TemporaryPassword,
};

/// A portal user pair as created, with the passwords to show.
#[derive(Clone)]
pub struct PortalUsersShown {
    /// The logins.
    pub added: PortalUserAdded,
    /// The management login's generated password; empty if it was typed.
    pub management_password: String,
    /// The staff login's generated password; empty if it was typed.
    pub staff_password: String,
}

impl std::fmt::Debug for PortalUsersShown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PortalUsersShown({:?}, <redacted>)", self.added)
    }
}

impl App {
    /// Adds a customer's management and staff logins.
    pub async fn add_portal_user(
        &self,
        ctx: &CommandContext,
        cmd: &AddPortalUserCommand,
    ) -> Result<Outcome<PortalUsersShown>, AppError> {
        let outcome = self.execute(ctx, cmd).await?;
        let shown = |p: &TemporaryPassword, label| self.shown(p, cmd, &cmd.request_id, label);
        let management_password = shown(&cmd.management_password, "management");
        let staff_password = shown(&cmd.staff_password, "staff");
        Ok(outcome.map(|added| PortalUsersShown {
            added,
            management_password,
            staff_password,
        }))
    }

    /// Sets a temporary password; the reply is the generated one, or empty
    /// if it was typed.
    pub async fn set_temporary_password(
        &self,
        ctx: &CommandContext,
        cmd: &SetTemporaryPasswordCommand,
    ) -> Result<Outcome<String>, AppError> {
        let outcome = self.execute(ctx, cmd).await?;
        let shown = if cmd.password.generated() {
            cmd.password
                .text(self, &cmd.tenant, &cmd.request_id, "temporary")
        } else {
            String::new()
        };
        Ok(outcome.map(|_| shown))
    }

    fn shown(
        &self,
        password: &TemporaryPassword,
        cmd: &AddPortalUserCommand,
        request_id: &str,
        label: &str,
    ) -> String {
        if password.generated() {
            password.text(self, &cmd.tenant, request_id, label)
        } else {
            String::new()
        }
    }
}
