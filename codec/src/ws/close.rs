//! Close frames and codes (RFC 6455 §5.5.1, §7.4).

/// A received or sent close frame's code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: u16,
    /// The reason (UTF-8, at most 123 bytes).
    pub reason: String,
}

/// Whether `code` may appear in a close frame on the wire: 1000–1003, 1007–1014 and 3000–4999.
/// (1004 is reserved; 1005, 1006 and 1015 are for reporting only.)
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}
