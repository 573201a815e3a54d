//! An import's rows decided a chunk at a time and appended together: one
//! durable append for up to [`CHUNK_ROWS`](super::imports) rows instead of
//! one each. Each row is decided on the streams it read, with their
//! versions, exactly as its command would be; a row that writes a stream an
//! earlier row of the chunk writes waits for the next append (its decision
//! must see the other's events), and a conflict with a concurrent writer
//! decides the chunk again.

use super::imports::{ImportRow, Importer, Pending, refusal};
use super::{App, AppError, MAX_ATTEMPTS, Unit};
use crate::domain::customer::CustomerState;
use crate::domain::email_slot::EmailSlotState;
use crate::domain::imports::{self, ImportContactState, RowOutcome};
use crate::domain::invitation::InvitationState;
use crate::domain::values::GeneratedId;
use crate::domain::{Change, DomainError, Reason, streams};
use access_catalogue::StreamId;
use access_log::log::{AppendError, AppendRequest, StreamAppend};
use access_log::vault::seal;
use futures::StreamExt;
use std::collections::{HashMap, HashSet};

/// Rows of a chunk decided at once (each reads a few streams).
const DECIDING: usize = 16;

/// One row's decision, with the streams it read.
struct Decided<'a> {
    changes: Vec<Change>,
    outcome: RowOutcome,
    invited: bool,
    unit: Unit<'a>,
}

impl Importer {
    /// Decides `rows` and appends what they change, as few appends as the
    /// rows' streams allow. The last append of a chunk of new records is
    /// left in flight while the next chunk is decided (it reads none of
    /// what that append writes); any other chunk waits for it first.
    pub(super) async fn run_chunk(&mut self, rows: Vec<Pending>) -> Result<(), AppError> {
        let app = self.app.clone();
        let kind = rows.first().map(|p| std::mem::discriminant(&p.row));
        let mut chunks = std::collections::VecDeque::from([rows]);
        if self
            .in_flight
            .as_ref()
            .is_some_and(|f| !f.creates_only || Some(f.kind) != kind)
        {
            // Rows sent back by a conflict go first: they may be the
            // customers this chunk's logins name.
            chunks.push_front(self.settle().await?);
        }
        while let Some(rows) = chunks.pop_front() {
            self.decide_and_send(&app, rows).await?;
        }
        Ok(())
    }

    /// Decides one kind of rows and sends what they change.
    async fn decide_and_send(&mut self, app: &App, mut rows: Vec<Pending>) -> Result<(), AppError> {
        while !rows.is_empty() {
            // The read models hold everything written before the import,
            // where logins are looked up by email and username. Its own
            // earlier rows need no wait: a row naming the same login again
            // is refused as a repeat, and the streams a row reads (its
            // customer's, the reservations) are read from the log itself.
            if !self.caught_up {
                app.wait_for(app.head()).await?;
                self.caught_up = true;
            }
            let sites = app
                .models
                .tenant(self.tenant.as_str())
                .map_err(AppError::Internal)?
                .map(|t| t.sites)
                .unwrap_or_default();
            let facts = Facts {
                customers: self.customers_of(app, &rows).await?,
                sites,
            };
            let this = &*self;
            let decided: Vec<(Pending, Result<Decided<'_>, AppError>)> =
                futures::stream::iter(rows.into_iter().map(|p| async {
                    let decided = this.decide(app, &p.row, &facts).await;
                    (p, decided)
                }))
                .buffered(DECIDING)
                .collect()
                .await;
            // Appends of at most what one append of this log may carry
            // (JetStream's: a frame), each row's changes whole in one.
            let room = app.log.max_events_per_append();
            let mut batches: Vec<Vec<(Pending, Decided<'_>)>> = vec![Vec::new()];
            let mut events = 0;
            let mut later = Vec::new();
            let mut written: HashSet<StreamId> = HashSet::new();
            let mut settled = Vec::new();
            for (p, decided) in decided {
                match decided {
                    Err(e) if transient(&e) => return Err(e),
                    Err(e) => {
                        let (word, message) = refusal(&e);
                        settled.push((p, Err((word, message))));
                    }
                    Ok(d) if d.changes.is_empty() || self.options.dry_run => {
                        settled.push((p, Ok((d.outcome, d.invited))));
                    }
                    Ok(d) if d.changes.iter().any(|c| written.contains(&c.stream)) => {
                        later.push(p);
                    }
                    Ok(d) => {
                        written.extend(d.changes.iter().map(|c| c.stream.clone()));
                        if events > 0 && events + d.changes.len() > room {
                            batches.push(Vec::new());
                            events = 0;
                        }
                        events += d.changes.len();
                        if let Some(last) = batches.last_mut() {
                            last.push((p, d));
                        }
                    }
                }
            }
            for (p, result) in settled {
                match result {
                    Ok((outcome, invited)) => self.counted(&p.row, outcome, invited),
                    Err((word, message)) => self.refuse(p.place, word, message),
                }
            }
            for batch in batches.into_iter().filter(|b| !b.is_empty()) {
                let creates_only = batch.iter().all(|(_, d)| d.outcome == RowOutcome::Created);
                let (pending, decided): (Vec<Pending>, Vec<Decided<'_>>) =
                    batch.into_iter().unzip();
                let outcomes: Vec<(RowOutcome, bool)> =
                    decided.iter().map(|d| (d.outcome, d.invited)).collect();
                let request = self.prepare(app, decided).await?;
                // One append in flight at a time, in order.
                later.extend(self.settle().await?);
                let kind = std::mem::discriminant(&pending[0].row);
                let sent = tokio::spawn(send(app.clone(), request));
                self.in_flight = Some(InFlight {
                    sent,
                    rows: pending,
                    outcomes,
                    creates_only,
                    kind,
                });
            }
            if !later.is_empty() {
                // What waits may read what was just written.
                later.extend(self.settle().await?);
            }
            rows = later;
        }
        Ok(())
    }

    /// Waits for the append in flight, if any, and counts its rows; the
    /// rows to decide again when it met a concurrent change.
    pub(super) async fn settle(&mut self) -> Result<Vec<Pending>, AppError> {
        let Some(f) = self.in_flight.take() else {
            return Ok(Vec::new());
        };
        let sent = f
            .sent
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("an import's append: {e}")))?;
        match sent {
            Ok(position) => {
                self.report.position = self.report.position.max(position);
                for (p, (outcome, invited)) in f.rows.into_iter().zip(f.outcomes) {
                    self.counted(&p.row, outcome, invited);
                }
                Ok(Vec::new())
            }
            Err(AppError::Conflict(m)) => {
                // Each row is decided again a few times at most: another
                // writer of the same records (a second import of the same
                // file, say) wins some rounds, and then they are so.
                let mut again = Vec::new();
                for mut p in f.rows {
                    p.attempts += 1;
                    if (p.attempts as usize) < MAX_ATTEMPTS {
                        again.push(p);
                    } else {
                        self.refuse(p.place, Reason::Conflict.as_str(), m.clone());
                    }
                }
                Ok(again)
            }
            Err(e) => Err(e),
        }
    }

    /// Decides one row on the streams it needs, as they are now.
    /// The customers the chunk's logins name, each read once (a login
    /// reads its customer but never writes it).
    async fn customers_of(
        &self,
        app: &App,
        rows: &[Pending],
    ) -> Result<HashMap<String, CustomerState>, AppError> {
        let mut customers = HashMap::new();
        let mut scratch = Unit::new(app);
        for p in rows {
            let ImportRow::Contact(c) = &p.row else {
                continue;
            };
            let id = c.customer_id.as_str();
            if customers.contains_key(id) {
                continue;
            }
            let state = if self.dry_customers.contains(id) {
                // A dry run's customer from an earlier row.
                CustomerState {
                    exists: true,
                    ..CustomerState::default()
                }
            } else {
                scratch
                    .load(&streams::customer(&self.tenant, &c.customer_id))
                    .await?
            };
            customers.insert(id.to_owned(), state);
        }
        Ok(customers)
    }

    async fn decide<'a>(
        &self,
        app: &'a App,
        row: &ImportRow,
        facts: &Facts,
    ) -> Result<Decided<'a>, AppError> {
        let sites = &facts.sites;
        let mut unit = Unit::new(app);
        match row {
            ImportRow::Customer(c) => {
                let state: CustomerState = unit
                    .load(&streams::customer(&self.tenant, &c.customer_id))
                    .await?;
                let (changes, outcome) = imports::import_customer(&state, self.customer_row(c))?;
                Ok(Decided {
                    changes,
                    outcome,
                    invited: false,
                    unit,
                })
            }
            ImportRow::Contact(c) => {
                let named = self.login_named(app, c)?;
                let customer = facts
                    .customers
                    .get(c.customer_id.as_str())
                    .cloned()
                    .unwrap_or_default();
                let email_slot: EmailSlotState = match &c.email {
                    Some(e) => {
                        unit.load(&streams::email_slot(&self.tenant, &e.identity_id()))
                            .await?
                    }
                    None => EmailSlotState::default(),
                };
                let username_slot: EmailSlotState = match &c.username {
                    Some(u) => {
                        unit.load(&streams::username_slot(&self.tenant, &u.slot_id()))
                            .await?
                    }
                    None => EmailSlotState::default(),
                };
                // The reservations are the record: a login the read models
                // do not show yet (another replica's, another import's a
                // moment ago) is found by them, and brought up to date
                // rather than refused as a duplicate.
                let held = match (&email_slot.holder, &username_slot.holder) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(DomainError::AlreadyExists(
                            "the email names one login and the username another".into(),
                        )
                        .into());
                    }
                    (Some(id), _) | (None, Some(id)) => Some(GeneratedId::trusted(id)),
                    (None, None) => None,
                };
                let (contact_id, contact) = match named.or(held) {
                    Some(id) => {
                        let contact = unit.load(&streams::contact(&self.tenant, &id)).await?;
                        (id, contact)
                    }
                    None => (GeneratedId::generate(), Default::default()),
                };
                let contact: crate::domain::contact::ContactState = contact;
                // A changed email or username releases the old one: its
                // reservation is written too, at the version read here.
                let email_moves = !contact.identity_id.is_empty()
                    && c.email
                        .as_ref()
                        .map(|e| e.identity_id().to_string())
                        .as_deref()
                        != Some(contact.identity_id.as_str());
                if email_moves {
                    let old = GeneratedId::trusted(&contact.identity_id);
                    let _: EmailSlotState =
                        unit.load(&streams::email_slot(&self.tenant, &old)).await?;
                }
                let old_username = contact
                    .username
                    .as_deref()
                    .and_then(|u| crate::domain::values::Username::parse(u).ok())
                    .filter(|u| c.username.as_ref().map(|n| n.slot_id()) != Some(u.slot_id()));
                if let Some(old) = old_username {
                    let _: EmailSlotState = unit
                        .load(&streams::username_slot(&self.tenant, &old.slot_id()))
                        .await?;
                }
                let invitation: InvitationState = match contact.invitation_id.as_str() {
                    "" => InvitationState::default(),
                    id => {
                        unit.load(&streams::invitation(
                            &self.tenant,
                            &GeneratedId::trusted(id),
                        ))
                        .await?
                    }
                };
                let state = ImportContactState {
                    sites,
                    customer: &customer,
                    contact: &contact,
                    invitation: &invitation,
                    email_slot: &email_slot,
                    username_slot: &username_slot,
                };
                let (changes, outcome, invited) =
                    imports::import_contact(state, self.contact_row(c, contact_id))?;
                Ok(Decided {
                    changes,
                    outcome,
                    invited,
                    unit,
                })
            }
        }
    }

    /// The login a row's email or username names already, if any.
    fn login_named(
        &self,
        app: &App,
        c: &super::imports::ContactInput,
    ) -> Result<Option<GeneratedId>, AppError> {
        let tenant = self.tenant.as_str();
        let by_username = match &c.username {
            Some(u) => app
                .models
                .contact_by_username(tenant, u.as_str())
                .map_err(AppError::Internal)?
                .map(|row| row.contact_id),
            None => None,
        };
        let by_email = match &c.email {
            Some(e) => app
                .models
                .membership(tenant, e.identity_id().as_str())
                .map_err(AppError::Internal)?
                .map(|(row, _)| row.contact_id),
            None => None,
        };
        match (by_username, by_email) {
            (Some(a), Some(b)) if a != b => Err(DomainError::AlreadyExists(
                "the email names one login and the username another".into(),
            )
            .into()),
            (Some(id), _) | (None, Some(id)) => Ok(Some(GeneratedId::trusted(&id))),
            (None, None) => Ok(None),
        }
    }

    /// The decided rows' changes, sealed, as one append request.
    async fn prepare(
        &self,
        app: &App,
        decided: Vec<Decided<'_>>,
    ) -> Result<AppendRequest, AppError> {
        let mut streams: Vec<StreamAppend> = Vec::new();
        for d in decided {
            let mut changes = d.changes;
            for change in &mut changes {
                seal(
                    app.vault.as_ref(),
                    change.stream.as_str(),
                    &mut change.event,
                )
                .await
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            }
            streams.extend(d.unit.into_streams(changes));
        }
        let request_id = App::scoped_request_id(
            Some(&self.tenant),
            &format!(
                "import-{}-{}",
                self.options.import_id,
                uuid::Uuid::now_v7().simple()
            ),
        );
        Ok(AppendRequest {
            fingerprint: crate::secrets::sha256(&request_id),
            request_id,
            tenant: Some(self.tenant.to_string()),
            actor: self.actor.clone(),
            correlation_id: self.correlation_id,
            causation_id: None,
            occurred_at_ms: app.now_ms(),
            streams,
            reply: Vec::new(),
        })
    }
}

/// Appends one prepared request; its position.
async fn send(app: App, request: AppendRequest) -> Result<u64, AppError> {
    match app.log.append(request).await {
        Ok(committed) => Ok(committed.last_position),
        Err(AppendError::Conflict { stream, actual, .. }) => {
            app.until_readable(&stream, actual).await;
            Err(AppError::Conflict(format!(
                "{stream} changed while the import decided; import the file again"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// What every row of a chunk reads alike.
struct Facts {
    /// The customers its logins name.
    customers: HashMap<String, CustomerState>,
    /// The tenant's sites.
    sites: Vec<String>,
}

/// An append of an import sent and not yet answered, with what its rows did.
pub(super) struct InFlight {
    sent: tokio::task::JoinHandle<Result<u64, AppError>>,
    rows: Vec<Pending>,
    outcomes: Vec<(RowOutcome, bool)>,
    /// Only new records: the next chunk of the same kind reads none of them.
    creates_only: bool,
    kind: std::mem::Discriminant<ImportRow>,
}

/// A fault of the service or the log, not of the row: the import stops and
/// says so (its rows so far are recorded; importing again goes on from
/// there, each recorded row now unchanged).
fn transient(e: &AppError) -> bool {
    matches!(
        e,
        AppError::Unavailable(_) | AppError::Behind(_) | AppError::Internal(_) | AppError::Busy(_)
    )
}
