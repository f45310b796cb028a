//! Where the tracking server is and how to reach it, read from the environment as the Python
//! client reads it: MLFLOW_TRACKING_URI (credentials in the URI moved out of it), the
//! username/password/token variables or `~/.mlflow/credentials`, TLS and retry settings.

use std::time::Duration;

use reqwest::Url;

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

pub(super) fn read_pem(variable: &str, path: &str) -> Result<Vec<u8>, ClientError> {
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
    fn credentials_file_section_is_read() {
        let text = "[other]\nmlflow_tracking_username = x\n[mlflow]\n\
                    mlflow_tracking_username = bob\nmlflow_tracking_password = pw\n";
        assert_eq!(
            parse_credentials(text),
            (Some("bob".into()), Some("pw".into()))
        );
    }
}
