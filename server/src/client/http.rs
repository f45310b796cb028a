//! The HTTP side of the client commands: where the server is, how to authenticate, and
//! MLflow's REST conventions (JSON bodies, `{error_code, message}` errors, paging).

use std::time::Duration;

use reqwest::blocking::{Client as HttpClient, RequestBuilder};
use reqwest::{Method, Url};
use serde_json::{Map, Value};

use super::ClientError;

/// Where the client goes when MLFLOW_TRACKING_URI is unset (as the Python client's server).
pub const DEFAULT_TRACKING_URI: &str = "http://127.0.0.1:5000";

/// Within every list endpoint's limit on both servers (registered models allow ≤ 1000).
pub const DEFAULT_PAGE_SIZE: u64 = 1000;

/// Credentials sent with every request. Never printed: `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic { username: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "Auth::None",
            Auth::Basic { .. } => "Auth::Basic(<redacted>)",
            Auth::Bearer(_) => "Auth::Bearer(<redacted>)",
        })
    }
}

/// What the client reads from the environment, as the Python client does.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The server's base URL without credentials (userinfo is moved into `auth`).
    pub base: Url,
    pub auth: Auth,
    pub timeout: Duration,
    pub insecure_tls: bool,
    pub server_cert_path: Option<String>,
    pub client_cert_path: Option<String>,
    /// Items requested per page of a list; every page is fetched regardless.
    pub page_size: u64,
    pub retry: Retry,
}

/// Retries of answers that say "try again later", with the Python client's settings:
/// MLFLOW_HTTP_REQUEST_MAX_RETRIES (default 7, at most 10) and
/// MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR (default 2: waits 2, 4, 8... s, each at most 120 s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    pub max_retries: u32,
    pub backoff_factor: f64,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_retries: 7,
            backoff_factor: 2.0,
        }
    }
}

impl Retry {
    /// The wait before retry number `attempt` (1-based); a server's Retry-After wins.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        const MAX: f64 = 120.0;
        let backoff = self.backoff_factor * 2f64.powi(attempt.saturating_sub(1).min(16) as i32);
        let seconds = retry_after.map_or(backoff, |r| r.as_secs_f64());
        Duration::from_secs_f64(seconds.clamp(0.0, MAX))
    }
}

impl Settings {
    /// Reads MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME/PASSWORD (then
    /// `~/.mlflow/credentials`), MLFLOW_TRACKING_TOKEN, MLFLOW_HTTP_REQUEST_TIMEOUT,
    /// MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
    /// MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH and
    /// MLFLOW_TRACKING_CLIENT_CERT_PATH, plus our MLFLOW_CLI_PAGE_SIZE.
    pub fn from_env() -> Result<Self, ClientError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let uri = var("MLFLOW_TRACKING_URI").unwrap_or_else(|| DEFAULT_TRACKING_URI.to_string());
        let file_creds = read_credentials_file();
        let username = var("MLFLOW_TRACKING_USERNAME").or(file_creds.0);
        let password = var("MLFLOW_TRACKING_PASSWORD").or(file_creds.1);
        let token = var("MLFLOW_TRACKING_TOKEN");
        let timeout = match var("MLFLOW_HTTP_REQUEST_TIMEOUT") {
            Some(t) => t.trim().parse::<u64>().map_err(|_| {
                ClientError::Config(format!(
                    "MLFLOW_HTTP_REQUEST_TIMEOUT must be a number of seconds, got {t:?}"
                ))
            })?,
            None => 120,
        };
        // Small pages exercise the paging loop in tests without thousands of entities.
        let page_size = match var("MLFLOW_CLI_PAGE_SIZE") {
            Some(p) => p
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|p| (1..=DEFAULT_PAGE_SIZE).contains(p))
                .ok_or_else(|| {
                    ClientError::Config(format!(
                        "MLFLOW_CLI_PAGE_SIZE must be 1 to {DEFAULT_PAGE_SIZE}, got {p:?}"
                    ))
                })?,
            None => DEFAULT_PAGE_SIZE,
        };
        let number = |name: &str, default: f64, max: f64| -> Result<f64, ClientError> {
            match var(name) {
                Some(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| (0.0..=max).contains(n))
                    .ok_or_else(|| {
                        ClientError::Config(format!(
                            "{name} must be a number from 0 to {max}, got {v:?}"
                        ))
                    }),
                None => Ok(default),
            }
        };
        let retry = Retry {
            max_retries: number("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 7.0, 10.0)? as u32,
            backoff_factor: number("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 2.0, 120.0)?,
        };
        let insecure_tls = var("MLFLOW_TRACKING_INSECURE_TLS")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1"));
        let mut settings = Self::new(&uri, username, password, token)?;
        settings.timeout = Duration::from_secs(timeout);
        settings.insecure_tls = insecure_tls;
        settings.server_cert_path = var("MLFLOW_TRACKING_SERVER_CERT_PATH");
        settings.client_cert_path = var("MLFLOW_TRACKING_CLIENT_CERT_PATH");
        settings.page_size = page_size;
        settings.retry = retry;
        Ok(settings)
    }

    /// Settings for `uri` with these credentials and every other setting at its default.
    pub fn new(
        uri: &str,
        username: Option<String>,
        password: Option<String>,
        token: Option<String>,
    ) -> Result<Self, ClientError> {
        let (base, url_user, url_password) = parse_tracking_uri(uri)?;
        // The Python client prefers username+password over a token when both are set.
        let auth = match (username.or(url_user), password.or(url_password), token) {
            (Some(username), Some(password), _) => Auth::Basic { username, password },
            (_, _, Some(token)) => Auth::Bearer(token),
            _ => Auth::None,
        };
        Ok(Settings {
            base,
            auth,
            timeout: Duration::from_secs(120),
            insecure_tls: false,
            server_cert_path: None,
            client_cert_path: None,
            page_size: DEFAULT_PAGE_SIZE,
            retry: Retry::default(),
        })
    }
}

/// Splits a tracking URI into a base URL without userinfo and the userinfo's credentials,
/// so that no secret ends up in a message that shows the URL.
fn parse_tracking_uri(uri: &str) -> Result<(Url, Option<String>, Option<String>), ClientError> {
    let invalid = |reason: &str| {
        ClientError::Config(format!(
            "MLFLOW_TRACKING_URI must be the http(s):// address of a tracking server ({reason})"
        ))
    };
    let mut url = Url::parse(uri.trim()).map_err(|_| invalid("it is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(&format!("the scheme is {}:", url.scheme())));
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = Some(decode(url.username())).filter(|u| !u.is_empty());
    let password = url.password().map(decode);
    // Both setters only fail for URLs that cannot have credentials, which http(s) can.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    Ok((url, user, password))
}

fn read_pem(variable: &str, path: &str) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path)
        .map_err(|e| ClientError::Config(format!("cannot read {variable} {path}: {e}")))
}

/// Username and password from `~/.mlflow/credentials` (section `[mlflow]`), as the Python
/// client reads them; anything unreadable counts as absent.
fn read_credentials_file() -> (Option<String>, Option<String>) {
    let Some(home) = std::env::var_os("HOME") else {
        return (None, None);
    };
    let path = std::path::Path::new(&home)
        .join(".mlflow")
        .join("credentials");
    match std::fs::read_to_string(path) {
        Ok(text) => parse_credentials(&text),
        Err(_) => (None, None),
    }
}

fn parse_credentials(text: &str) -> (Option<String>, Option<String>) {
    let (mut section, mut user, mut password) = (String::new(), None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].trim().to_string();
        } else if section == "mlflow" {
            if let Some((key, value)) = line.split_once(['=', ':']) {
                let value = Some(value.trim().to_string()).filter(|v| !v.is_empty());
                match key.trim().to_ascii_lowercase().as_str() {
                    "mlflow_tracking_username" => user = value,
                    "mlflow_tracking_password" => password = value,
                    _ => {}
                }
            }
        }
    }
    (user, password)
}

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

/// A `Retry-After` given in seconds.
fn retry_after(response: &reqwest::blocking::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
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

    fn settings(
        uri: &str,
        user: Option<&str>,
        pass: Option<&str>,
        token: Option<&str>,
    ) -> Settings {
        Settings::new(
            uri,
            user.map(String::from),
            pass.map(String::from),
            token.map(String::from),
        )
        .expect("valid settings")
    }

    #[test]
    fn userinfo_moves_into_basic_auth_and_out_of_the_url() {
        let s = settings("http://alice:s%40cret@host:5000/prefix/", None, None, None);
        assert_eq!(s.base.as_str(), "http://host:5000/prefix/");
        assert_eq!(
            s.auth,
            Auth::Basic {
                username: "alice".into(),
                password: "s@cret".into()
            }
        );
        assert!(!format!("{s:?}").contains("cret"));
    }

    #[test]
    fn basic_wins_over_token_like_the_python_client() {
        let s = settings("http://h", Some("u"), Some("p"), Some("t"));
        assert!(matches!(s.auth, Auth::Basic { .. }));
        let s = settings("http://h", Some("u"), None, Some("t"));
        assert_eq!(s.auth, Auth::Bearer("t".into()));
    }

    #[test]
    fn non_http_uris_are_refused() {
        for uri in [
            "sqlite:///mlflow.db",
            "file:///tmp/mlruns",
            "databricks",
            "./mlruns",
        ] {
            let err = Settings::new(uri, None, None, None);
            assert!(matches!(err, Err(ClientError::Config(_))), "{uri}");
        }
    }

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
    fn credentials_file_section_is_read() {
        let text = "[other]\nmlflow_tracking_username = x\n[mlflow]\n\
                    mlflow_tracking_username = bob\nmlflow_tracking_password = pw\n";
        assert_eq!(
            parse_credentials(text),
            (Some("bob".into()), Some("pw".into()))
        );
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
