//! Routing with the `matchit` crate: path parameters, `404` for an unknown path, `405` (with
//! `Allow`) for a known path and another method. httpkit has no router of its own: a handler is
//! a function from `Request` to `Response`, and any router that maps a path to a value fits.
//!
//! * `GET /` → the routes
//! * `GET /users/{id}` → `user {id}`
//! * `POST /users/{id}` with a form body `name=…` → `renamed {id} to {name}`
//! * `GET /search?q=…` → the query, decoded
//!
//! `cargo run --example router [PORT]` (default 8080).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use httpkit::{run_server, Method, Options, Request, Response};

/// A route's handler, given the request and the path parameters.
type Route = fn(&Request, &matchit::Params<'_, '_>) -> Response;

struct Router {
    paths: matchit::Router<HashMap<Method, Route>>,
}

impl Router {
    fn new() -> Self {
        Self { paths: matchit::Router::new() }
    }

    /// Adds a route; a route table that is wrong (a path given twice for a method, an invalid
    /// pattern) is an error at start-up.
    fn route(mut self, method: Method, path: &str, f: Route) -> Result<Self, String> {
        match self.paths.at_mut(path) {
            Ok(m) if m.value.contains_key(&method) => return Err(format!("route {method} {path} given twice")),
            Ok(m) => {
                m.value.insert(method, f);
            }
            Err(_) => {
                let mut methods = HashMap::new();
                methods.insert(method, f);
                self.paths.insert(path, methods).map_err(|e| format!("route {path}: {e}"))?;
            }
        }
        Ok(self)
    }

    fn handle(&self, req: &Request) -> Response {
        let Ok(m) = self.paths.at(req.path()) else {
            return Response::not_found();
        };
        match m.value.get(req.method()) {
            Some(f) => f(req, &m.params),
            None => {
                let mut allow: Vec<&str> = m.value.keys().map(Method::as_str).collect();
                allow.sort_unstable();
                Response::status_code(405).header("allow", allow.join(", "))
            }
        }
    }
}

fn app() -> Result<Router, String> {
    Router::new()
        .route(Method::GET, "/", |_, _| Response::ok("GET /users/{id}, POST /users/{id}, GET /search?q=…"))?
        .route(Method::GET, "/users/{id}", |_, p| Response::ok(format!("user {}", p.get("id").unwrap_or(""))))?
        .route(Method::POST, "/users/{id}", |req, p| {
            let name = req.form_field("name").unwrap_or_default();
            Response::ok(format!("renamed {} to {name}", p.get("id").unwrap_or("")))
        })?
        .route(Method::GET, "/search", |req, _| Response::ok(format!("q={}", req.query("q").unwrap_or_default())))
}

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let router = app().map_err(std::io::Error::other)?;
    let signals = common::Signals::install()?;
    let server = run_server(move |req: Request| router.handle(&req), Options::default().port(port))?;
    println!("router: listening on http://127.0.0.1:{}/", server.port().unwrap_or(port));
    common::serve_until_signal(&signals, &server, Duration::from_millis(100));
    Ok(())
}
