//! The codec every `access.v1` server and client uses: prost's, with a
//! request's encoded bytes checked against its limits first
//! ([`crate::limits`]), and any decoding failure answered as the caller's
//! error (`INVALID_ARGUMENT`) rather than the server's (`INTERNAL`).

use crate::limits::{Limits, Violation};
use bytes::Buf;
use prost::Message;
use std::marker::PhantomData;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::{Code, Status};
use tonic_prost::{ProstDecoder, ProstEncoder};
use tonic_types::{ErrorDetails, StatusExt};

/// Prost's codec with the request limits checked before decoding.
#[derive(Debug, Clone)]
pub struct BoundedCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for BoundedCodec<T, U> {
    fn default() -> Self {
        BoundedCodec { _pd: PhantomData }
    }
}

impl<T, U> Codec for BoundedCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + prost::Name + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = BoundedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        BoundedDecoder {
            _pd: PhantomData,
            inner: ProstDecoder::new(BufferSettings::default()),
        }
    }
}

/// The decoding half of [`BoundedCodec`].
#[derive(Debug)]
pub struct BoundedDecoder<U> {
    _pd: PhantomData<U>,
    inner: ProstDecoder<U>,
}

/// `INVALID_ARGUMENT` with one field violation per problem.
pub fn invalid_request(violations: &[Violation]) -> Status {
    let mut details = ErrorDetails::new();
    for v in violations {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    let message = violations
        .iter()
        .map(|v| {
            if v.field.is_empty() {
                v.description.clone()
            } else {
                format!("{}: {}", v.field, v.description)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    Status::with_error_details(Code::InvalidArgument, message, details)
}

impl<U> Decoder for BoundedDecoder<U>
where
    U: Message + Default + prost::Name,
{
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let limits = Limits::access_v1();
        let name = format!("{}.{}", U::PACKAGE, U::NAME);
        if !limits.covers(&name) {
            // A reply, decoded by a client: prost's own answer stands.
            return self.inner.decode(buf);
        }
        // A DecodeBuf is one contiguous buffer holding the whole message.
        limits
            .check(&name, buf.chunk())
            .map_err(|v| invalid_request(&v))?;
        self.inner.decode(buf).map_err(|e| {
            invalid_request(&[Violation {
                field: String::new(),
                description: format!("not a valid protobuf {name}: {}", e.message()),
            }])
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}
