//! The pages' form extractor: axum's `Form`, except that a value which is
//! not UTF-8 once percent-decoded is refused instead of having its bad bytes
//! replaced with U+FFFD. Replaced, a password would silently become another
//! one, which its owner could never type again.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// A form body, decoded only if every name and value is UTF-8.
pub struct StrictForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for StrictForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let urlencoded = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !urlencoded {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a form must be application/x-www-form-urlencoded",
            )
                .into_response());
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !decodes_as_utf8(&body) {
            return Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                "a form value is not UTF-8 text",
            )
                .into_response());
        }
        serde_urlencoded::from_bytes(&body)
            .map(StrictForm)
            .map_err(|e| {
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("the form could not be read: {e}"),
                )
                    .into_response()
            })
    }
}

/// Whether every `name=value` pair of `body` is UTF-8 after percent-decoding
/// (`+` decodes to a space, which is UTF-8 either way).
fn decodes_as_utf8(body: &[u8]) -> bool {
    body.split(|&b| b == b'&').all(|pair| {
        let decoded: std::borrow::Cow<'_, [u8]> = percent_encoding::percent_decode(pair).into();
        std::str::from_utf8(&decoded).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodies_that_decode_to_utf8_pass() {
        assert!(decodes_as_utf8(b"csrf=abc&password=s%C3%BCnlit7"));
        assert!(decodes_as_utf8(b"a=%E2%80%AE&b=+x+&&="));
        assert!(decodes_as_utf8(b""));
        assert!(!decodes_as_utf8(b"password=%FF%FEabc1"));
        assert!(!decodes_as_utf8(b"password=%C3%28"));
        assert!(!decodes_as_utf8(b"csrf=x&login=\xff"));
        // A lone, unfinished escape stays as it is: plain ASCII.
        assert!(decodes_as_utf8(b"login=%E"));
    }
}
