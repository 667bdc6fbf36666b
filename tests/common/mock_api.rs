//! A scripted stand-in for the API server: a `kube::Client` whose requests arrive here, one
//! at a time, so a test asserts each call (method, path, query, headers, body) and answers it.
//! Scenarios run under a 1 s timeout, so a call that never comes fails the test instead of
//! hanging it.

use std::future::Future;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{json, Value};
use tower_test::mock::{self, Handle, SendResponse};

/// The server side of the mock.
pub struct ApiServer(Handle<Request<Body>, Response<Body>>);

/// A client talking to a new [`ApiServer`].
pub fn pair() -> (kube::Client, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, "default"), ApiServer(handle))
}

/// One request received by the mock.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: String,
    /// The body as JSON (`Null` when empty).
    pub body: Value,
    respond: SendResponse<Response<Body>>,
}

impl ApiServer {
    /// Waits for the next request and checks its method and path.
    pub async fn expect(&mut self, method: Method, path: &str) -> Call {
        let call = self
            .next_call()
            .await
            .unwrap_or_else(|| panic!("expected {method} {path}, but the client went away"));
        assert_eq!(
            (&call.method, call.path.as_str()),
            (&method, path),
            "unexpected request"
        );
        call
    }

    /// The next request, whatever it is; `None` once the client went away.
    pub async fn next_call(&mut self) -> Option<Call> {
        let (request, respond) = self.0.next_request().await?;
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("request body");
        Some(Call {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            body: if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).expect("request body is JSON")
            },
            respond,
        })
    }

    /// Checks that no further request arrives: the client must have gone away.
    pub async fn expect_done(mut self) {
        if let Some((request, _)) = self.0.next_request().await {
            panic!(
                "unexpected extra request {} {}",
                request.method(),
                request.uri()
            );
        }
    }
}

impl Call {
    /// Whether the query string holds `key=value`.
    pub fn has_param(&self, key: &str, value: &str) -> bool {
        self.query
            .split('&')
            .any(|kv| kv == format!("{key}={value}"))
    }

    /// Answers with `status` and a JSON body.
    pub fn reply(self, status: StatusCode, body: &Value) {
        self.reply_with_headers(status, body, &[]);
    }

    /// Answers with `status`, a JSON body and extra headers (e.g. `Warning`).
    pub fn reply_with_headers(self, status: StatusCode, body: &Value, headers: &[(&str, &str)]) {
        let mut response = Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        let response = response
            .body(Body::from(serde_json::to_vec(body).expect("JSON")))
            .expect("response");
        self.respond.send_response(response);
    }

    /// Answers 200 with `body`.
    pub fn ok(self, body: &Value) {
        self.reply(StatusCode::OK, body);
    }

    /// Answers with a `Status` failure, as the API server does.
    pub fn fail(self, code: u16, reason: &str) {
        let status = StatusCode::from_u16(code).expect("status code");
        let body = status_body(code, reason);
        self.reply(status, &body);
    }
}

/// A `Status` failure body.
pub fn status_body(code: u16, reason: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": format!("mock: {reason}"),
        "reason": reason,
        "code": code,
    })
}

/// Runs `client_side` against `server_side` (which scripts the API server), each within 1 s.
/// The server side should end with [`ApiServer::expect_done`] where no extra call is allowed.
pub async fn run<C, S, T>(client_side: C, server_side: S) -> T
where
    C: Future<Output = T>,
    S: Future<Output = ()> + Send + 'static,
{
    let server = tokio::spawn(server_side);
    let out = tokio::time::timeout(Duration::from_secs(1), client_side).await;
    match tokio::time::timeout(Duration::from_secs(1), server).await {
        Ok(Ok(())) => {}
        // Show the script's own assertion rather than the client's resulting error.
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the API server script failed: {e}"),
        Err(_) => panic!("the API server script did not finish within 1 s"),
    }
    out.expect("the client side finished within 1 s")
}
