//! The handler trait: what the server calls for each request.

use crate::{Request, Response};

/// Answers requests. Implemented for every `Fn(Request) -> Response + Send + Sync + 'static`,
/// so a closure or a function is a handler.
///
/// A handler runs on the worker pool, never on the reactor thread (unless the
/// [`Inline`](crate::Inline) pool is chosen). A panic in a handler answers `500` (the panic
/// message goes to the error logger, not to the client) and the server keeps serving.
pub trait Handler: Send + Sync + 'static {
    /// Produces the response to `req`.
    fn call(&self, req: Request) -> Response;
}

impl<F> Handler for F
where
    F: Fn(Request) -> Response + Send + Sync + 'static,
{
    fn call(&self, req: Request) -> Response {
        self(req)
    }
}
