//! The one request API: [`TestApp::send`] builds and sends every JSON request of the
//! helpers; [`read`] decodes a response into status and JSON body.

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use super::app::TestApp;

impl TestApp {
    /// Sends `method path`, with a bearer `token` and a JSON `body` when given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request")
    }

    /// [`TestApp::send`], then the status code and the JSON body (`Null` if empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, json) = read(self.send(method, path, token, body).await).await;
        (status.as_u16(), json)
    }
}

/// Status and JSON body (`Null` if empty); panics on a body that is not JSON.
pub async fn read(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.expect("body");
    if text.is_empty() {
        return (status, Value::Null);
    }
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {text}"));
    (status, body)
}

pub async fn post(app: &TestApp, path: &str, body: Value) -> Response {
    app.send(Method::POST, path, None, Some(body)).await
}

pub async fn post_auth(app: &TestApp, path: &str, token: &str, body: Value) -> Response {
    app.send(Method::POST, path, Some(token), Some(body)).await
}

pub async fn get_auth(app: &TestApp, path: &str, token: &str) -> Response {
    app.send(Method::GET, path, Some(token), None).await
}

/// Asserts the error envelope and returns the message.
pub fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) -> String {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"]
        .as_str()
        .expect("error message")
        .to_string()
}
