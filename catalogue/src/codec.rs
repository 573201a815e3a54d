//! Payload encoding: postcard bytes behind an `(event_type, schema_version)` pair.
//!
//! postcard is not self-describing, so a payload's layout is frozen once written.
//! A changed layout gets a new schema version and a new Rust type; the old type
//! stays, is decoded as itself and upcast to the current type on read. Stored
//! bytes are never rewritten.

/// Why bytes could not be turned into an event.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes do not match the layout their type and version name.
    #[error("malformed payload: {0}")]
    Malformed(#[from] postcard::Error),
    /// A type or version this build does not know (written by a newer build?).
    #[error("unknown event {event_type} v{schema_version}")]
    UnknownEvent {
        /// The stored event type.
        event_type: String,
        /// The stored schema version.
        schema_version: u16,
    },
    /// An envelope layout this build does not know.
    #[error("unknown envelope version {0}")]
    UnknownEnvelope(u16),
}

/// A payload enum of one aggregate: knows its type names, versions and upcasts.
pub trait Payload: Sized {
    /// The stored type name of this value.
    fn event_type(&self) -> &'static str;
    /// The current schema version of this value's type.
    fn schema_version(&self) -> u16;
    /// Encodes the value in its current layout.
    fn encode(&self) -> Vec<u8>;
    /// Decodes any known version of any of this aggregate's types, upcasting old ones.
    fn decode(event_type: &str, schema_version: u16, bytes: &[u8]) -> Result<Self, CodecError>;
}

/// Declares an aggregate's payload enum with its current and legacy versions.
///
/// Current variants are `Variant(Type) = version`; legacy entries are
/// `"Type" vN => OldType`, where `OldType: Into<Enum>` is the upcast.
macro_rules! payload_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty) = $version:literal ),* $(,)?
        }
        legacy { $( $lname:ident v $lver:literal => $lty:ty ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($ty), )*
        }

        impl $crate::codec::Payload for $name {
            fn event_type(&self) -> &'static str {
                match self { $( $name::$variant(_) => stringify!($variant), )* }
            }

            fn schema_version(&self) -> u16 {
                match self { $( $name::$variant(_) => $version, )* }
            }

            fn encode(&self) -> Vec<u8> {
                // Serializing owned plain data into a Vec cannot fail.
                match self { $( $name::$variant(p) => postcard::to_stdvec(p).unwrap_or_default(), )* }
            }

            fn decode(
                event_type: &str,
                schema_version: u16,
                bytes: &[u8],
            ) -> Result<Self, $crate::codec::CodecError> {
                $(
                    if event_type == stringify!($variant) && schema_version == $version {
                        return Ok($name::$variant(postcard::from_bytes::<$ty>(bytes)?));
                    }
                )*
                $(
                    if event_type == stringify!($lname) && schema_version == $lver {
                        return Ok(postcard::from_bytes::<$lty>(bytes)?.into());
                    }
                )*
                Err($crate::codec::CodecError::UnknownEvent {
                    event_type: event_type.to_owned(),
                    schema_version,
                })
            }
        }
    };
}

pub(crate) use payload_enum;
