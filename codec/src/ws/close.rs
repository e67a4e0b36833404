//! Close frames and codes (RFC 6455 §5.5.1, §7.4).

/// A received or sent close frame's code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: u16,
    /// The reason (UTF-8, at most 123 bytes).
    pub reason: String,
}

/// A WebSocket close status code (RFC 6455 §7.4), with the registered codes named. Any `u16`
/// can be held (a peer may send codes we do not know); [`CloseCode::is_sendable`] says whether
/// an endpoint may put it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: going away (a server stopping, a browser leaving the page).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present (reported, never sent).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection dropped without a close frame (reported, never sent).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: invalid payload data (e.g. text that is not UTF-8).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client needed an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: an internal error (the server sends it when a callback panics).
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1013: try again later (the server is overloaded, or the client is too slow).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);

    /// Whether an endpoint may send this code (see [`is_valid_close_code`]).
    pub fn is_sendable(self) -> bool {
        is_valid_close_code(self.0)
    }

    /// The number.
    pub fn as_u16(self) -> u16 {
        self.0
    }
}

impl From<CloseCode> for u16 {
    fn from(c: CloseCode) -> u16 {
        c.0
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether `code` may appear in a close frame on the wire: 1000–1003, 1007–1014 and 3000–4999.
/// (1004 is reserved; 1005, 1006 and 1015 are for reporting only.)
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}
