//! `TenantAdmin.Import`: rows streamed in by an admin, each parsed here
//! (a row with a wrong field is reported, not fatal) and handed to the
//! app's importer, which decides and appends them a chunk at a time.

use super::Shared;
use super::convert::{Fields, customer_record, site_rule, viewable_kind};
use super::status::{invalid, to_status};
use crate::app::{
    ContactInput, CustomerInput, ImportCounts, ImportOptions, ImportReport, ImportRow, RowPlace,
};
use crate::domain::values::{CustomerId, Email, FieldViolation, Username};
use crate::passwords::foreign::ForeignHash;
use access_catalogue::catalogue::{CustomerStatus, LoginKind};
use access_proto::v1 as pb;
use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};

/// `s`, unless it is blank.
fn optional(s: &str) -> Option<&str> {
    (!s.trim().is_empty()).then_some(s)
}

/// Runs one import from its stream of rows.
pub async fn import(
    shared: &Shared,
    request: Request<Streaming<pb::ImportRequest>>,
) -> Result<Response<pb::ImportReply>, Status> {
    let (principal, tenant, staff) = shared.auth.staff(&request).await?;
    let mut rows = request.into_inner();
    let mut first = rows.next().await.transpose()?;
    let options = match first.as_ref().and_then(|m| m.item.as_ref()) {
        Some(pb::import_request::Item::Options(o)) => {
            let options = options(o)?;
            first = None;
            options
        }
        _ => options(&pb::ImportOptions::default())?,
    };
    let mut importer = shared
        .app
        .importer(tenant, staff, principal.actor(), options)
        .map_err(to_status)?;
    let mut next = first;
    loop {
        let message = match next.take() {
            Some(m) => m,
            None => match rows.next().await.transpose()? {
                Some(m) => m,
                None => break,
            },
        };
        let (place, row) = match message.item {
            Some(pb::import_request::Item::Customer(c)) => (place(&c.place), customer(&c)),
            Some(pb::import_request::Item::Contact(c)) => (place(&c.place), contact(&c)),
            Some(pb::import_request::Item::Options(_)) => {
                return Err(invalid(&[FieldViolation::new(
                    "options",
                    "the options come first, once",
                )]));
            }
            None => {
                return Err(invalid(&[FieldViolation::new(
                    "item",
                    "a row or the options",
                )]));
            }
        };
        importer.add(place, row).await.map_err(to_status)?;
    }
    let report = importer.finish().await.map_err(to_status)?;
    Ok(Response::new(reply(report)))
}

fn options(o: &pb::ImportOptions) -> Result<ImportOptions, Status> {
    let id = o.import_id.trim();
    let import_id = if id.is_empty() {
        uuid::Uuid::now_v7().simple().to_string()
    } else if id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        id.to_owned()
    } else {
        return Err(invalid(&[FieldViolation::new(
            "options.import_id",
            "use at most 64 letters, digits, '-', '_' or '.'",
        )]));
    };
    Ok(ImportOptions {
        import_id,
        dry_run: o.dry_run,
        invite_without_password: o.invite_without_password,
    })
}

fn place(p: &Option<pb::RowPlace>) -> RowPlace {
    let p = p.clone().unwrap_or_default();
    RowPlace {
        source: p.source,
        line: p.line,
    }
}

/// A customer row, or what is wrong with it in words.
fn customer(c: &pb::ImportedCustomer) -> Result<ImportRow, String> {
    let mut f = Fields::default();
    let record = customer_record(&mut f, &c.customer);
    let status = f.parse(
        "status",
        match pb::CustomerStatus::try_from(c.status) {
            Ok(pb::CustomerStatus::Unspecified | pb::CustomerStatus::Active) => {
                Ok(CustomerStatus::Active)
            }
            Ok(pb::CustomerStatus::Inactive) => Ok(CustomerStatus::Inactive),
            Ok(pb::CustomerStatus::Blacklisted) => Ok(CustomerStatus::Blacklisted),
            Err(_) => Err("ACTIVE, INACTIVE or BLACKLISTED".to_owned()),
        },
    );
    let kinds: Vec<_> = c
        .document_kinds
        .iter()
        .filter_map(|k| f.parse("document_kinds", viewable_kind(*k)))
        .collect();
    f.finish_in_words()?;
    let (Some((customer_id, record)), Some(status)) = (record, status) else {
        return Err("the row could not be read".into());
    };
    Ok(ImportRow::Customer(Box::new(CustomerInput {
        record,
        customer_id,
        status,
        documents: (!c.document_kinds.is_empty()).then_some(kinds),
    })))
}

/// A login row, or what is wrong with it in words.
fn contact(c: &pb::ImportedContact) -> Result<ImportRow, String> {
    let mut f = Fields::default();
    let customer_id = f.parse("customer_id", CustomerId::parse(&c.customer_id));
    let email = optional(&c.email).and_then(|e| f.parse("email", Email::parse(e)));
    let username = optional(&c.username).and_then(|u| f.parse("username", Username::parse(u)));
    let rule = site_rule(&mut f, &c.site_rule);
    let kind = f.parse(
        "kind",
        match c.kind.trim().to_ascii_lowercase().as_str() {
            "" | "management" => Ok(LoginKind::Management),
            "staff" => Ok(LoginKind::Staff),
            other => Err(format!("{other:?}: management or staff")),
        },
    );
    let disabled = f.parse(
        "status",
        match c.status.trim().to_ascii_lowercase().as_str() {
            "" | "active" => Ok(false),
            "disabled" => Ok(true),
            other => Err(format!("{other:?}: active or disabled")),
        },
    );
    let password = optional(&c.password_hash).and_then(|h| {
        f.parse(
            "password_hash",
            ForeignHash::parse(h.trim())
                .map(|parsed| (h.trim().to_owned(), parsed.scheme().name())),
        )
    });
    if email.is_none()
        && username.is_none()
        && c.email.trim().is_empty()
        && c.username.trim().is_empty()
    {
        f.parse::<()>("email", Err("a login needs an email or a username".into()));
    }
    f.finish_in_words()?;
    let (Some(customer_id), Some(site_rule), Some(kind), Some(disabled)) =
        (customer_id, rule, kind, disabled)
    else {
        return Err("the row could not be read".into());
    };
    Ok(ImportRow::Contact(ContactInput {
        customer_id,
        email,
        username,
        site_rule,
        kind,
        disabled,
        logged_in: c.has_logged_in,
        password,
    }))
}

fn counts(c: ImportCounts) -> Option<pb::ImportCounts> {
    Some(pb::ImportCounts {
        created: c.created,
        updated: c.updated,
        unchanged: c.unchanged,
    })
}

fn reply(r: ImportReport) -> pb::ImportReply {
    pb::ImportReply {
        import_id: r.import_id,
        dry_run: r.dry_run,
        customers: counts(r.customers),
        contacts: counts(r.contacts),
        invitations: r.invitations,
        refused: r
            .refused
            .into_iter()
            .map(|row| pb::RefusedRow {
                place: Some(pb::RowPlace {
                    source: row.place.source,
                    line: row.place.line,
                }),
                reason: row.reason,
                message: row.message,
            })
            .collect(),
        refused_total: r.refused_total,
        position: r.position,
    }
}
