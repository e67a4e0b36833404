//! How a channel closed, as its `on_close` hears it: http-kit's close status keywords, plus
//! what http-kit cannot tell (an abnormal drop, a server stop, custom codes).

use httpkit_reactor::{CloseReason, WsClose};

/// The kind of a close, mirroring http-kit's close status keywords, plus what http-kit cannot
/// tell: an abnormal drop (1006), a server stop, and custom codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseKind {
    /// 1000: the client closed normally.
    Normal,
    /// 1001: the client is going away.
    GoingAway,
    /// 1002: a protocol error (by either side).
    ProtocolError,
    /// 1003: unsupported data.
    Unsupported,
    /// 1005: the client's close frame had no status code.
    NoStatusReceived,
    /// 1006: the TCP connection dropped without a close frame.
    Abnormal,
    /// 1007: invalid payload data (e.g. text that is not UTF-8).
    InvalidPayloadData,
    /// 1008: policy violation.
    PolicyViolation,
    /// 1009: a message was too big.
    MessageTooBig,
    /// 1010: the client needed an extension.
    MandatoryExtension,
    /// 1011: internal error (by either side; the server sends it when a callback panics).
    InternalServerError,
    /// The server closed the channel (`close`, or a send with close).
    ServerClose,
    /// The HTTP client went away.
    ClientClose,
    /// The server is stopping (WebSockets were sent 1001).
    ServerStop,
    /// A code in 3000–4999 (registered or private use); see [`CloseStatus::code`].
    Custom,
    /// Any other code (1012–1014, …); see [`CloseStatus::code`].
    Unknown,
}

/// How a channel closed: the kind, the WebSocket close code and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseStatus {
    kind: CloseKind,
    code: Option<u16>,
    reason: String,
}

impl CloseStatus {
    pub(crate) fn new(kind: CloseKind, code: Option<u16>, reason: impl Into<String>) -> Self {
        Self { kind, code, reason: reason.into() }
    }

    /// What happened.
    pub fn kind(&self) -> CloseKind {
        self.kind
    }

    /// The WebSocket close code, when there is one (1006 for an abnormal drop).
    pub fn code(&self) -> Option<u16> {
        self.code
    }

    /// The close reason text (empty when none was given).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    fn from_peer_code(code: u16, reason: String) -> Self {
        let kind = match code {
            1000 => CloseKind::Normal,
            1001 => CloseKind::GoingAway,
            1002 => CloseKind::ProtocolError,
            1003 => CloseKind::Unsupported,
            1005 => CloseKind::NoStatusReceived,
            1006 => CloseKind::Abnormal,
            1007 => CloseKind::InvalidPayloadData,
            1008 => CloseKind::PolicyViolation,
            1009 => CloseKind::MessageTooBig,
            1010 => CloseKind::MandatoryExtension,
            1011 => CloseKind::InternalServerError,
            3000..=4999 => CloseKind::Custom,
            _ => CloseKind::Unknown,
        };
        Self::new(kind, Some(code), reason)
    }

    /// Maps how the reactor closed a WebSocket connection.
    pub(crate) fn from_ws(reason: &CloseReason) -> Self {
        match reason {
            CloseReason::ServerStop => Self::new(CloseKind::ServerStop, Some(1001), "server stopping"),
            CloseReason::WebSocket(WsClose { code, reason, by_peer: true }) => {
                Self::from_peer_code(*code, reason.clone())
            }
            CloseReason::WebSocket(WsClose { code, reason, by_peer: false }) => match code {
                1002 | 1007 | 1009 | 1011 | 1013 => Self::from_peer_code(*code, reason.clone()),
                _ => Self::new(CloseKind::ServerClose, Some(*code), reason.clone()),
            },
            CloseReason::Timeout => Self::new(CloseKind::Abnormal, Some(1006), "timeout"),
            _ => Self::new(CloseKind::Abnormal, Some(1006), ""),
        }
    }
}
