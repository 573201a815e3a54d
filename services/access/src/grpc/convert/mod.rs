//! Wire messages become domain commands here, through `TryFrom`-style parsing
//! that collects every field violation at once; `views` turns read-model
//! rows back into messages.

use super::status;
use crate::domain::values::{FieldViolation, GeneratedId};
use sha2::{Digest, Sha256};
use tonic::Status;

/// Collects violations while parsing the fields of one message.
#[derive(Default)]
pub struct Fields {
    violations: Vec<FieldViolation>,
}

impl Fields {
    /// Parses one field, remembering what is wrong with it.
    pub fn parse<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(description) => {
                self.violations
                    .push(FieldViolation::new(field, description));
                None
            }
        }
    }

    /// `INVALID_ARGUMENT` with every violation, if there was one.
    pub fn finish(self) -> Result<(), Status> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(status::invalid(&self.violations))
        }
    }

    /// Every violation in words (`field: what is wrong; ...`), if there was
    /// one: for a report that lists refusals rather than failing a call.
    pub fn finish_in_words(self) -> Result<(), String> {
        if self.violations.is_empty() {
            return Ok(());
        }
        Err(self
            .violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// `INVALID_ARGUMENT` with every violation, if there was one; else the
    /// parsed values (a tuple of what [`Fields::parse`] gave).
    pub fn finish_with<T: Parsed>(self, values: T) -> Result<T::Values, Status> {
        self.finish()?;
        // `parse` gives `None` only with a violation, so this is a fault.
        values.all().ok_or_else(|| {
            tracing::error!("a field parsed to nothing without a violation");
            status::internal()
        })
    }
}

/// A tuple of parsed fields, each `Some` unless its field was wrong.
pub trait Parsed {
    /// The values themselves.
    type Values;
    /// The values, if every one is there.
    fn all(self) -> Option<Self::Values>;
}

macro_rules! parsed_tuple {
    ($($t:ident),+) => {
        impl<$($t),+> Parsed for ($(Option<$t>,)+) {
            type Values = ($($t,)+);
            #[allow(non_snake_case)]
            fn all(self) -> Option<Self::Values> {
                let ($($t,)+) = self;
                Some(($($t?,)+))
            }
        }
    };
}
parsed_tuple!(A);
parsed_tuple!(A, B);
parsed_tuple!(A, B, C);
parsed_tuple!(A, B, C, D);
parsed_tuple!(A, B, C, D, E);
parsed_tuple!(A, B, C, D, E, F);
parsed_tuple!(A, B, C, D, E, F, G);
parsed_tuple!(A, B, C, D, E, F, G, H);

/// Unwraps values that `Fields::finish` has vouched for.
macro_rules! parsed {
    ($($v:ident),*) => {
        ($(match $v { Some(v) => v, None => return Err(status::internal()) }),*)
    };
}

mod contacts;
mod customers;
mod oidc;
mod tenants;
mod webhooks;

pub use contacts::*;
pub use customers::*;
pub use oidc::*;
pub use tenants::*;
pub use webhooks::*;

/// Digest of a request's payload without its request id, for idempotency.
pub fn fingerprint<M: prost::Message + Clone>(
    method: &str,
    message: &M,
    clear: impl FnOnce(&mut M),
) -> [u8; 32] {
    let mut m = message.clone();
    clear(&mut m);
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(m.encode_to_vec());
    h.finalize().into()
}

/// Free text of at most `max` characters, trimmed, without control characters.
fn text(value: &str, max: usize) -> Result<String, String> {
    let value = value.trim();
    if value.chars().count() > max {
        Err(format!("at most {max} characters"))
    } else if value.chars().any(|c| c.is_control() && c != '\n') {
        Err("control characters are not allowed".into())
    } else {
        Ok(value.to_owned())
    }
}

/// Parses a contact id of a query.
pub fn contact_id(s: &str) -> Result<GeneratedId, Status> {
    let mut f = Fields::default();
    let id = f.parse("contact_id", GeneratedId::parse(s));
    f.finish()?;
    id.ok_or_else(status::internal)
}

/// RFC 3339 text of Unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    rfc3339_ms(ms)
}

/// Unix milliseconds of an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| "use an RFC 3339 time such as 2027-01-31T18:00:00Z".to_owned())
}

fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
