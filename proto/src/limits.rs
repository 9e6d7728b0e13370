//! Message size limits. gRPC's default decode limit is 4 MiB; Temper raises it to
//! [`DEFAULT_MAX_MESSAGE_BYTES`] and applies one limit to both directions on both sides, so a
//! message that one side may send the other side may receive.

/// The default limit on one encoded message, either direction: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 << 20;

/// The limits a client or server applies to the messages it encodes and decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimits {
    /// The largest encoded message, in bytes, sent or accepted.
    pub max_message_bytes: usize,
}

impl Default for MessageLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

impl MessageLimits {
    /// Limits of `max_message_bytes` both ways.
    pub fn new(max_message_bytes: usize) -> Self {
        Self { max_message_bytes }
    }
}
