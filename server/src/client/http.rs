//! The HTTP side of the client commands: MLflow's REST conventions (JSON bodies,
//! `{error_code, message}` errors, retries, paging) over the [`Settings`] of `settings.rs`.

use std::time::Duration;

use reqwest::blocking::{Client as HttpClient, RequestBuilder};
use reqwest::Method;
use serde_json::{Map, Value};

use super::settings::{read_pem, Auth, Settings};
use super::ClientError;

/// A connection to one tracking server.
pub struct Client {
    http: HttpClient,
    settings: Settings,
}

impl Client {
    pub fn new(settings: Settings) -> Result<Self, ClientError> {
        let mut builder = HttpClient::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("mlflow-rust-cli/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(settings.insecure_tls);
        // As the Python client passes them to `requests`: a CA bundle to trust, and one PEM
        // file holding the client's certificate and key.
        if let Some(path) = &settings.server_cert_path {
            let certs = reqwest::Certificate::from_pem_bundle(&read_pem(
                "MLFLOW_TRACKING_SERVER_CERT_PATH",
                path,
            )?)
            .map_err(|e| {
                ClientError::Config(format!(
                    "MLFLOW_TRACKING_SERVER_CERT_PATH {path}: {}",
                    root_cause(&e)
                ))
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(path) = &settings.client_cert_path {
            let identity =
                reqwest::Identity::from_pem(&read_pem("MLFLOW_TRACKING_CLIENT_CERT_PATH", path)?)
                    .map_err(|e| {
                    ClientError::Config(format!(
                        "MLFLOW_TRACKING_CLIENT_CERT_PATH {path}: {}",
                        root_cause(&e)
                    ))
                })?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Config(format!("cannot set up HTTP: {}", root_cause(&e))))?;
        Ok(Client { http, settings })
    }

    /// Items to ask for per page of a list.
    pub fn page_size(&self) -> u64 {
        self.settings.page_size
    }

    /// The server's address as shown in messages (never with credentials).
    pub fn base_url(&self) -> &str {
        self.settings.base.as_str().trim_end_matches('/')
    }

    /// GET `/api/2.0/mlflow/<endpoint>` with a query string.
    pub fn get(&self, endpoint: &str, query: &[(&str, String)]) -> Result<Value, ClientError> {
        self.call(Method::GET, endpoint, query, None)
    }

    /// POST a JSON body.
    pub fn post(&self, endpoint: &str, body: Value) -> Result<Value, ClientError> {
        self.call(Method::POST, endpoint, &[], Some(body))
    }

    /// DELETE with a JSON body (MLflow's registry deletes carry their arguments in the body).
    pub fn delete(&self, endpoint: &str, body: Value) -> Result<Value, ClientError> {
        self.call(Method::DELETE, endpoint, &[], Some(body))
    }

    fn endpoint_url(&self, endpoint: &str) -> String {
        format!("{}/api/2.0/mlflow/{endpoint}", self.base_url())
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.settings.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
        }
    }

    /// GET a path under the server's base URL that is not under `/api/2.0/mlflow/`, such as
    /// `api/2.0/mlflow-artifacts/artifacts` (the artifact proxy's listing).
    pub fn get_path(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ClientError> {
        let url = format!("{}/{}", self.base_url(), path.trim_start_matches('/'));
        self.call_url(Method::GET, &url, path, query, None)
    }

    /// GET a file under the server's base URL as a stream (artifact downloads), with the same
    /// retries and error mapping as the JSON calls.
    pub fn download(&self, path: &str) -> Result<reqwest::blocking::Response, ClientError> {
        let url = format!("{}/{}", self.base_url(), path.trim_start_matches('/'));
        let mut attempt = 0;
        loop {
            // No overall timeout: a large model may take longer than one API call.
            let request = self.http.get(&url).timeout(Duration::from_secs(24 * 3600));
            let response = self
                .authorize(request)
                .send()
                .map_err(|e| self.send_error(&e))?;
            let status = response.status().as_u16();
            if attempt < self.settings.retry.max_retries && is_transient(&Method::GET, status) {
                attempt += 1;
                std::thread::sleep(self.settings.retry.delay(attempt, retry_after(&response)));
                continue;
            }
            if (200..300).contains(&status) {
                return Ok(response);
            }
            let text = response.text().unwrap_or_default();
            return Err(self
                .auth_error(status, &Method::GET, path, &text)
                .unwrap_or_else(|| error_from_body(status, &url, &text)));
        }
    }

    /// One clear line for a 401, or for a 403 of the server's authorization (a 403 of the
    /// Host or CORS guard keeps its own text).
    fn auth_error(
        &self,
        status: u16,
        method: &Method,
        what: &str,
        body: &str,
    ) -> Option<ClientError> {
        let url = self.base_url().to_string();
        match status {
            401 => Some(ClientError::Unauthorized {
                url,
                what: match &self.settings.auth {
                    Auth::None => "the server requires a login; set MLFLOW_TRACKING_USERNAME and \
                                   MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
                        .to_string(),
                    Auth::Basic { username, .. } => format!(
                        "the password of user '{username}' was not accepted (check \
                         MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
                    ),
                    Auth::Bearer(_) => {
                        "the token in MLFLOW_TRACKING_TOKEN was not accepted".to_string()
                    }
                },
            }),
            403 if body.trim() == "Permission denied" || body.contains("PERMISSION_DENIED") => {
                Some(ClientError::Forbidden {
                    url,
                    who: match &self.settings.auth {
                        Auth::Basic { username, .. } => format!("user '{username}'"),
                        Auth::Bearer(_) => "the MLFLOW_TRACKING_TOKEN user".to_string(),
                        Auth::None => "an anonymous client".to_string(),
                    },
                    action: format!("{method} {what}"),
                })
            }
            _ => None,
        }
    }

    fn send_error(&self, e: &reqwest::Error) -> ClientError {
        if e.is_timeout() {
            ClientError::Timeout {
                url: self.base_url().to_string(),
                seconds: self.settings.timeout.as_secs(),
            }
        } else {
            let reason = root_cause(e);
            ClientError::Connect {
                hint: connect_hint(&reason),
                url: self.base_url().to_string(),
                reason,
            }
        }
    }

    fn call(
        &self,
        method: Method,
        endpoint: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        self.call_url(method, &self.endpoint_url(endpoint), endpoint, query, body)
    }

    fn call_url(
        &self,
        method: Method,
        url: &str,
        endpoint: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let mut attempt = 0;
        loop {
            let mut request = self.http.request(method.clone(), url).query(query);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = self
                .authorize(request)
                .send()
                .map_err(|e| self.send_error(&e))?;
            let status = response.status().as_u16();
            if attempt < self.settings.retry.max_retries && is_transient(&method, status) {
                attempt += 1;
                std::thread::sleep(self.settings.retry.delay(attempt, retry_after(&response)));
                continue;
            }
            let text = response.text().map_err(|e| ClientError::Connect {
                url: self.base_url().to_string(),
                reason: format!("the answer broke off: {}", root_cause(&e)),
                hint: "",
            })?;
            if (200..300).contains(&status) {
                if text.trim().is_empty() {
                    return Ok(Value::Object(Map::new()));
                }
                return match serde_json::from_str::<Value>(&text) {
                    Ok(value @ Value::Object(_)) => Ok(value),
                    _ => Err(ClientError::Decode {
                        endpoint: endpoint.to_string(),
                        reason: format!("expected a JSON object, got {}", excerpt(&text)),
                    }),
                };
            }
            return Err(self
                .auth_error(status, &method, endpoint, &text)
                .unwrap_or_else(|| error_from_body(status, url, &text)));
        }
    }

    /// Follows `next_page_token` until the last page and returns the items under `key` of
    /// every page. `fetch` makes one request given the page token; `limit` stops early.
    pub fn collect_pages(
        &self,
        key: &str,
        limit: Option<usize>,
        mut fetch: impl FnMut(Option<&str>) -> Result<Value, ClientError>,
    ) -> Result<Vec<Value>, ClientError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut page = fetch(token.as_deref())?;
            if let Some(Value::Array(batch)) = page.get_mut(key).map(Value::take) {
                items.extend(batch);
            }
            if let Some(limit) = limit.filter(|l| items.len() >= *l) {
                items.truncate(limit);
                return Ok(items);
            }
            let next = page
                .get("next_page_token")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            match next {
                // A server repeating its token would loop forever.
                Some(next) if token.as_deref() == Some(next.as_str()) => {
                    return Err(ClientError::Decode {
                        endpoint: format!("the list of {key}"),
                        reason: "the server returned the same page token twice".into(),
                    })
                }
                Some(next) => token = Some(next),
                None => return Ok(items),
            }
        }
    }
}

/// Whether an answer says "try again later". 429 and 503 mean the request was not
/// processed, so any method is retried; gateway errors only for reads. Never 500: MLflow
/// also answers lasting errors (INVALID_STATE) with it.
fn is_transient(method: &Method, status: u16) -> bool {
    matches!(status, 429 | 503) || (*method == Method::GET && matches!(status, 408 | 502 | 504))
}

fn retry_after(response: &reqwest::blocking::Response) -> Option<Duration> {
    retry_after_header(response.headers())
}

/// A `Retry-After` given in seconds.
pub(crate) fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?;
    value
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// An MLflow error body becomes `Api`; anything else (a proxy's HTML page, a server that
/// does not serve the endpoint) `Http`, naming the URL.
fn error_from_body(status: u16, url: &str, text: &str) -> ClientError {
    if let Ok(Value::Object(body)) = serde_json::from_str::<Value>(text) {
        let code = body.get("error_code").and_then(Value::as_str);
        let message = body.get("message").and_then(Value::as_str);
        if code.is_some() || message.is_some() {
            return ClientError::Api {
                status,
                code: code.unwrap_or("INTERNAL_ERROR").to_string(),
                message: one_line(message.unwrap_or("")),
            };
        }
    }
    ClientError::Http {
        status,
        url: url.to_string(),
        body: excerpt(text),
    }
}

/// What to check, judged from the innermost cause of a failed connection.
fn connect_hint(reason: &str) -> &'static str {
    let reason = reason.to_ascii_lowercase();
    if reason.contains("certificate") || reason.contains("tls") || reason.contains("handshake") {
        " (MLFLOW_TRACKING_SERVER_CERT_PATH names a CA bundle to trust; \
         MLFLOW_TRACKING_INSECURE_TLS=true skips verification)"
    } else {
        " (is `mlflow server` running there? MLFLOW_TRACKING_URI sets the address)"
    }
}

/// The innermost cause of an error (such as "Connection refused (os error 111)"); reqwest's
/// own top-level message repeats the URL, which we print once ourselves.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn excerpt(text: &str) -> String {
    let line = one_line(text);
    if line.is_empty() {
        return "an empty body".into();
    }
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Retry;

    #[test]
    fn retries_back_off_like_the_python_client() {
        let retry = Retry::default();
        let waits: Vec<u64> = (1..=8).map(|a| retry.delay(a, None).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 120, 120]);
        assert_eq!(
            retry.delay(1, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert!(is_transient(&Method::POST, 503) && !is_transient(&Method::POST, 502));
        assert!(is_transient(&Method::GET, 502) && !is_transient(&Method::GET, 500));
    }

    #[test]
    fn mlflow_error_bodies_become_one_line() {
        let err = error_from_body(
            404,
            "http://h/api/2.0/mlflow/registered-models/get",
            r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Registered Model with name=x\nnot found"}"#,
        );
        assert_eq!(
            err.to_string(),
            "RESOURCE_DOES_NOT_EXIST: Registered Model with name=x not found"
        );
        let err = error_from_body(
            502,
            "http://h/api/2.0/mlflow/runs/get",
            "<html>Bad\n gateway</html>",
        );
        assert_eq!(
            err.to_string(),
            "HTTP 502 from http://h/api/2.0/mlflow/runs/get: <html>Bad gateway</html>"
        );
        assert!(matches!(err, ClientError::Http { status: 502, .. }));
    }
}
