//! A response that is not an HTTP body: a channel or a WebSocket upgrade takes the exchange over
//! and answers it its own way. A [`Response`](crate::Response) value only carries the takeover;
//! it knows nothing of the machinery behind it.

use http::HeaderMap;

use crate::exchange::Exchange;

/// Answers an exchange in its own way (see the module docs).
pub(crate) trait Takeover: Send {
    /// Takes the exchange over; `headers` are the response's (e.g. extra handshake headers).
    fn take_over(self: Box<Self>, ex: &Exchange, headers: &HeaderMap);

    /// Sets the WebSocket subprotocol of an upgrade (nothing for others).
    fn set_protocol(&mut self, _protocol: String) {}

    /// What it is, for `Debug`.
    fn kind(&self) -> &'static str;
}
