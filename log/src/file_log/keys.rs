//! The index's keys and values: which key holds what (see the layout in the
//! module above), and the codec of its values.

use super::BLOCK;
use crate::log::LogError;
use access_catalogue::envelope::{Envelope, StreamId};
use serde::{Deserialize, Serialize};

pub(super) fn stream_prefix(stream: &StreamId) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.as_str().len() + 10);
    k.push(b's');
    k.extend_from_slice(stream.as_str().as_bytes());
    k.push(0);
    k
}

pub(super) fn stream_key(stream: &StreamId, version: u64) -> Vec<u8> {
    let mut k = stream_prefix(stream);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// The first byte of every stream head's key.
pub(super) const HEAD_PREFIX: &[u8] = b"h";

pub(super) fn head_key(stream: &StreamId) -> Vec<u8> {
    let mut k = HEAD_PREFIX.to_vec();
    k.extend_from_slice(stream.as_str().as_bytes());
    k
}

pub(super) fn request_key(request_id: &str) -> Vec<u8> {
    let mut k = vec![b'r'];
    k.extend_from_slice(request_id.as_bytes());
    k
}

pub(super) fn block_key(position: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'o';
    k[1..].copy_from_slice(&((position - 1) / BLOCK).to_be_bytes());
    k
}

pub(super) fn is_block_start(position: u64) -> bool {
    (position - 1).is_multiple_of(BLOCK)
}

pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain owned data into a Vec cannot fail.
    postcard::to_stdvec(value).unwrap_or_default()
}

pub(super) fn decode<T: for<'a> Deserialize<'a>>(
    bytes: &[u8],
    position: u64,
) -> Result<T, LogError> {
    postcard::from_bytes(bytes).map_err(|e| LogError::Corrupt {
        position,
        reason: e.to_string(),
    })
}

pub(super) fn offset_of(bytes: &[u8], position: u64) -> Result<u64, LogError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| LogError::Corrupt {
            position,
            reason: "index entry is not an offset".into(),
        })
}

/// One event's index entries (stream entry, block offset), given to `put`;
/// stream heads are written once per batch by the caller (a batch may not
/// hold one key twice).
pub(super) fn index_event(e: &Envelope, offset: u64, mut put: impl FnMut(Vec<u8>, Vec<u8>)) {
    put(
        stream_key(&e.stream, e.stream_version),
        offset.to_be_bytes().to_vec(),
    );
    if is_block_start(e.position) {
        put(
            block_key(e.position).to_vec(),
            offset.to_be_bytes().to_vec(),
        );
    }
}
