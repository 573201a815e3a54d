//! The `access.v1` gRPC protocol: generated messages, clients and servers, and
//! the encoded descriptor set that server reflection serves.
#![forbid(unsafe_code)]

/// Messages and services of the `access.v1` package.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("access.v1");

    /// The public events other services subscribe to (`access.v1.events`).
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod events {
        tonic::include_proto!("access.v1.events");
    }
}

pub mod codec;
pub mod limits;

/// The encoded `FileDescriptorSet` of `access.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/access_v1_descriptor.bin"));
