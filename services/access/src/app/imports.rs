//! Moving in from the system a supplier leaves: customers and logins, with
//! their password hashes, streamed in by an admin and decided row by row as
//! the commands would, but appended many rows at once (`import_batch.rs`).
//! Every refused row is reported with where it came from and why; a dry run
//! decides everything and records nothing.

use super::{App, AppError};
use crate::domain::imports::{ImportContact, ImportCustomer, RowOutcome};
use crate::domain::policy::Staff;
use crate::domain::values::{CustomerId, Email, TenantId, Username};
use crate::domain::{DomainError, Reason};
use access_catalogue::Actor;
use access_catalogue::catalogue::{
    CustomerRecord, CustomerStatus, DocumentKind, LoginKind, SiteRule,
};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// Rows one import may carry.
pub const MAX_IMPORT_ROWS: u64 = 1_000_000;
/// Refused rows reported one by one (all are counted).
pub const MAX_REPORTED_REFUSALS: usize = 1_000;
/// Rows decided and appended together.
pub(super) const CHUNK_ROWS: usize = 512;

/// How an import runs.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Names the import in every record's history.
    pub import_id: String,
    /// Decide everything, record nothing.
    pub dry_run: bool,
    /// Send new logins without a password hash a link to set one.
    pub invite_without_password: bool,
}

/// Where a row came from: a file and its line, as the client names them.
#[derive(Clone, Debug, Default)]
pub struct RowPlace {
    /// The file (or any name the client gives).
    pub source: String,
    /// The line in it.
    pub line: u32,
}

/// A customer row, its fields checked.
#[derive(Clone, Debug)]
pub struct CustomerInput {
    /// The record.
    pub record: CustomerRecord,
    /// Its id, parsed.
    pub customer_id: CustomerId,
    /// Its status.
    pub status: CustomerStatus,
    /// The document kinds its contacts may view (`None`: left as they are).
    pub documents: Option<Vec<DocumentKind>>,
}

/// A login row, its fields checked.
#[derive(Clone, Debug)]
pub struct ContactInput {
    /// Its customer.
    pub customer_id: CustomerId,
    /// Its email, if any.
    pub email: Option<Email>,
    /// Its username, if any.
    pub username: Option<Username>,
    /// Visibility and routing.
    pub site_rule: SiteRule,
    /// Management or staff login.
    pub kind: LoginKind,
    /// Blocked in the old system.
    pub disabled: bool,
    /// Had logged in there.
    pub logged_in: bool,
    /// The old system's hash, already read, with its scheme.
    pub password: Option<(String, &'static str)>,
}

/// One row as the transport parsed it.
#[derive(Clone, Debug)]
pub enum ImportRow {
    /// A customer.
    Customer(Box<CustomerInput>),
    /// A login.
    Contact(ContactInput),
}

/// What happened to the rows of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// New records.
    pub created: u32,
    /// Records brought up to date.
    pub updated: u32,
    /// Records already so.
    pub unchanged: u32,
}

impl ImportCounts {
    fn count(&mut self, outcome: RowOutcome) {
        match outcome {
            RowOutcome::Created => self.created += 1,
            RowOutcome::Updated => self.updated += 1,
            RowOutcome::Unchanged => self.unchanged += 1,
        }
    }
}

/// A row that was not imported, and why.
#[derive(Clone, Debug)]
pub struct RefusedRow {
    /// Where it came from.
    pub place: RowPlace,
    /// Why, as a stable word (a reason, `invalid_argument`, `not_found`, ...).
    pub reason: String,
    /// Why, in words.
    pub message: String,
}

/// What an import did (or, dry, would do).
#[derive(Clone, Debug, Default)]
pub struct ImportReport {
    /// The import's id.
    pub import_id: String,
    /// Nothing was recorded.
    pub dry_run: bool,
    /// Customer rows.
    pub customers: ImportCounts,
    /// Login rows.
    pub contacts: ImportCounts,
    /// Links to set a password sent.
    pub invitations: u32,
    /// The first refused rows, in the order they came.
    pub refused: Vec<RefusedRow>,
    /// Every refused row, counted.
    pub refused_total: u32,
    /// The position of the last event written (0: none).
    pub position: u64,
}

/// A row waiting in the current chunk.
pub(super) struct Pending {
    pub place: RowPlace,
    pub row: ImportRow,
    /// Appends of its decision that met a concurrent change.
    pub attempts: u8,
}

/// An import under way: rows come in, chunks are decided and appended.
pub struct Importer {
    pub(super) app: App,
    pub(super) tenant: TenantId,
    pub(super) by: Staff,
    pub(super) actor: Actor,
    pub(super) options: ImportOptions,
    pub(super) report: ImportReport,
    /// Every append of the import carries it.
    pub(super) correlation_id: uuid::Uuid,
    pending: Vec<Pending>,
    rows: u64,
    /// Keys of the rows seen (customer id, email, username), each with the
    /// line that named it first: a file naming one record twice is refused
    /// at the second row, not applied twice.
    seen: HashMap<[u8; 16], u32>,
    /// Customers a dry run would have created: its later logins may name them.
    pub(super) dry_customers: HashSet<String>,
    /// The read models have reached what was written before the import.
    pub(super) caught_up: bool,
    /// The last append, still being written.
    pub(super) in_flight: Option<super::import_batch::InFlight>,
}

impl App {
    /// Starts an import into `tenant` by an admin.
    pub fn importer(
        &self,
        tenant: TenantId,
        by: Staff,
        actor: Actor,
        options: ImportOptions,
    ) -> Result<Importer, AppError> {
        by.may_manage_customers()?;
        let report = ImportReport {
            import_id: options.import_id.clone(),
            dry_run: options.dry_run,
            ..ImportReport::default()
        };
        Ok(Importer {
            app: self.clone(),
            tenant,
            by,
            actor,
            options,
            report,
            correlation_id: uuid::Uuid::new_v4(),
            pending: Vec::new(),
            rows: 0,
            seen: HashMap::new(),
            dry_customers: HashSet::new(),
            caught_up: false,
            in_flight: None,
        })
    }
}

impl Importer {
    /// Takes one row: refused at once when its fields were wrong (`Err`),
    /// else queued and decided with its chunk.
    pub async fn add(
        &mut self,
        place: RowPlace,
        row: Result<ImportRow, String>,
    ) -> Result<(), AppError> {
        self.rows += 1;
        if self.rows > MAX_IMPORT_ROWS {
            // Counted, never decided: the report still says what the rows
            // before the limit did.
            let message = format!(
                "an import carries at most {MAX_IMPORT_ROWS} rows; import the rest separately"
            );
            self.refuse(place, Reason::TooLarge.as_str(), message);
            return Ok(());
        }
        let row = match row {
            Ok(row) => row,
            Err(message) => {
                self.refuse(place, "invalid_argument", message);
                return Ok(());
            }
        };
        if let Some(first) = self.first_seen(&place, &row) {
            let message = format!("line {first} of this import names the same record");
            self.refuse(place, Reason::AlreadyExists.as_str(), message);
            return Ok(());
        }
        // A chunk holds one kind of row, so that logins are decided after
        // the customers before them are recorded.
        let kind_changes = self
            .pending
            .last()
            .is_some_and(|p| std::mem::discriminant(&p.row) != std::mem::discriminant(&row));
        if kind_changes || self.pending.len() >= CHUNK_ROWS {
            self.flush().await?;
        }
        self.pending.push(Pending {
            place,
            row,
            attempts: 0,
        });
        Ok(())
    }

    /// Decides and appends what is left; the report.
    pub async fn finish(mut self) -> Result<ImportReport, AppError> {
        self.flush().await?;
        // Rows a last conflict sent back are decided again, until none are.
        loop {
            let again = self.settle().await?;
            if again.is_empty() {
                return Ok(self.report);
            }
            self.run_chunk(again).await?;
        }
    }

    async fn flush(&mut self) -> Result<(), AppError> {
        let rows = std::mem::take(&mut self.pending);
        if !rows.is_empty() {
            self.run_chunk(rows).await?;
        }
        Ok(())
    }

    /// The line that first named this row's record, if one did.
    fn first_seen(&mut self, place: &RowPlace, row: &ImportRow) -> Option<u32> {
        let keys: Vec<String> = match row {
            ImportRow::Customer(c) => vec![format!("customer\0{}", c.customer_id)],
            ImportRow::Contact(c) => c
                .email
                .iter()
                .map(|e| format!("email\0{}", e.as_str().to_lowercase()))
                .chain(
                    c.username
                        .iter()
                        .map(|u| format!("username\0{}", u.as_str().to_lowercase())),
                )
                .collect(),
        };
        let digests: Vec<[u8; 16]> = keys
            .iter()
            .map(|k| {
                let d = Sha256::digest(k.as_bytes());
                let mut key = [0u8; 16];
                key.copy_from_slice(&d[..16]);
                key
            })
            .collect();
        if let Some(first) = digests.iter().find_map(|d| self.seen.get(d)) {
            return Some(*first);
        }
        for d in digests {
            self.seen.insert(d, place.line);
        }
        None
    }

    /// Counts a refused row, and lists it while the list has room.
    pub(super) fn refuse(&mut self, place: RowPlace, reason: &str, message: String) {
        self.report.refused_total += 1;
        if self.report.refused.len() < MAX_REPORTED_REFUSALS {
            self.report.refused.push(RefusedRow {
                place,
                reason: reason.to_owned(),
                message,
            });
        }
    }

    /// Counts a row decided (and, unless dry, recorded).
    pub(super) fn counted(&mut self, row: &ImportRow, outcome: RowOutcome, invited: bool) {
        match row {
            ImportRow::Customer(c) => {
                if self.options.dry_run && outcome == RowOutcome::Created {
                    self.dry_customers.insert(c.customer_id.to_string());
                }
                self.report.customers.count(outcome);
            }
            ImportRow::Contact(_) => self.report.contacts.count(outcome),
        }
        if invited {
            self.report.invitations += 1;
        }
    }

    /// The domain's row for a customer input.
    pub(super) fn customer_row(&self, c: &CustomerInput) -> ImportCustomer {
        ImportCustomer {
            tenant: self.tenant.clone(),
            by: self.by.clone(),
            customer_id: c.customer_id.clone(),
            record: c.record.clone(),
            status: c.status,
            documents: c.documents.clone(),
            import_id: self.options.import_id.clone(),
        }
    }

    /// The domain's row for a login input, for `contact_id`.
    pub(super) fn contact_row(
        &self,
        c: &ContactInput,
        contact_id: crate::domain::values::GeneratedId,
    ) -> ImportContact {
        ImportContact {
            tenant: self.tenant.clone(),
            by: self.by.clone(),
            contact_id,
            customer_id: c.customer_id.clone(),
            email: c.email.clone(),
            username: c.username.clone(),
            site_rule: c.site_rule.clone(),
            kind: c.kind,
            disabled: c.disabled,
            logged_in: c.logged_in,
            password: c.password.clone(),
            invite: self.options.invite_without_password,
            now_ms: self.app.now_ms(),
            link_ttl_ms: self.app.settings.link_ttl.as_millis() as i64,
            import_id: self.options.import_id.clone(),
        }
    }
}

/// A refusal as the report words it: a stable word and the message.
pub(super) fn refusal(e: &AppError) -> (&'static str, String) {
    let word = match e {
        AppError::Domain(d) => match d {
            DomainError::Invalid(_) => "invalid_argument",
            DomainError::NotFound(_) => Reason::NotFound.as_str(),
            DomainError::AlreadyExists(_) => Reason::AlreadyExists.as_str(),
            DomainError::FailedPrecondition { reason, .. }
            | DomainError::PermissionDenied { reason, .. }
            | DomainError::Unauthenticated { reason, .. } => reason.as_str(),
            _ => "refused",
        },
        AppError::Conflict(_) => Reason::Conflict.as_str(),
        AppError::TooLarge(_) => Reason::TooLarge.as_str(),
        AppError::Damaged(_) => Reason::HistoryDamaged.as_str(),
        _ => "internal",
    };
    (word, e.to_string())
}
