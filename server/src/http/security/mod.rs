//! MLflow 3's security middleware: the Host check against DNS rebinding, CORS (answers to
//! preflights, headers for allowed origins, and a refusal of cross-origin state changes), and
//! the `X-Content-Type-Options` / `X-Frame-Options` headers. Same flags, defaults, messages and
//! status codes as MLflow 3.17.2 (mlflow/server/security_utils.py, fastapi_security.py).
//! A refused request never reaches a handler, so it touches nothing.

mod glob;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::cli::network::NetworkArgs;
use crate::config::ConfigError;

const INVALID_HOST_MSG: &str = "Invalid Host header - possible DNS rebinding attack detected";
const CORS_BLOCKED_MSG: &str = "Cross-origin request blocked";
const ALLOWED_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS, PATCH";
const TRACE_RENDERER_ASSET_PATH: &str = "/static-files/lib/notebook-trace-renderer";

/// Names a browser may use for this machine itself (MLflow's `LOCALHOST_VARIANTS`).
const LOCALHOST_VARIANTS: [&str; 4] = ["localhost", "127.0.0.1", "[::1]", "0.0.0.0"];

/// The checks every request goes through; built once from the command line.
#[derive(Debug, Clone)]
pub struct SecurityPolicy {
    enabled: bool,
    /// Host patterns; `None` accepts any Host (`--allowed-hosts '*'`).
    allowed_hosts: Option<Vec<String>>,
    /// `--cors-allowed-origins` as given (patterns); empty: only localhost origins.
    allowed_origins: Vec<String>,
    /// `--cors-allowed-origins '*'`: every origin, without credentials and without the
    /// server-side refusal (as MLflow does).
    any_origin: bool,
    x_frame_options: Option<HeaderValue>,
    static_prefix: String,
}

impl SecurityPolicy {
    /// Reads the flags; the default Host list is MLflow's plus the address the server binds.
    pub fn from_args(
        args: &NetworkArgs,
        bind_host: &str,
        static_prefix: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let split = |list: &Option<String>| -> Option<Vec<String>> {
            list.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| s.split(',').map(|p| p.trim().to_string()).collect())
        };
        let allowed_hosts = match split(&args.allowed_hosts) {
            Some(hosts) if hosts.iter().any(|h| h == "*") => None,
            Some(hosts) => Some(hosts),
            None => Some(default_allowed_hosts(bind_host)),
        };
        let allowed_origins = split(&args.cors_allowed_origins).unwrap_or_default();
        let any_origin = allowed_origins.iter().any(|o| o == "*");
        let xfo = args.x_frame_options.trim().to_ascii_uppercase();
        let x_frame_options = if xfo.is_empty() || xfo == "NONE" {
            None
        } else {
            Some(HeaderValue::from_str(&xfo).map_err(|_| {
                ConfigError(format!(
                    "--x-frame-options must be SAMEORIGIN, DENY or NONE; got '{}'",
                    args.x_frame_options
                ))
            })?)
        };
        Ok(SecurityPolicy {
            enabled: !args.disable_security_middleware,
            allowed_hosts,
            allowed_origins,
            any_origin,
            x_frame_options,
            static_prefix: static_prefix.unwrap_or("").to_string(),
        })
    }

    /// One line for the startup log saying what is accepted.
    pub fn summary(&self) -> String {
        if !self.enabled {
            return "security middleware DISABLED: any Host and any origin are accepted".into();
        }
        let hosts = match &self.allowed_hosts {
            None => "any Host (vulnerable to DNS rebinding)".to_string(),
            Some(h) => format!("Host in [{}]", h.join(", ")),
        };
        let origins = if self.any_origin {
            "any origin (without credentials)".to_string()
        } else if self.allowed_origins.is_empty() {
            "localhost origins".to_string()
        } else {
            format!(
                "origins [{}] and localhost",
                self.allowed_origins.join(", ")
            )
        };
        format!("security middleware: {hosts}; CORS: {origins}")
    }

    fn host_allowed(&self, host: Option<&str>) -> bool {
        let Some(patterns) = &self.allowed_hosts else {
            return true;
        };
        let Some(host) = host.filter(|h| !h.is_empty()) else {
            return false;
        };
        patterns.iter().any(|p| {
            if p.contains('*') {
                glob::matches(p, host)
            } else {
                p == host
            }
        })
    }

    /// Whether an origin gets CORS headers (Starlette's CORSMiddleware: the exact list or
    /// MLflow's localhost patterns).
    fn origin_gets_cors(&self, origin: &str) -> bool {
        self.any_origin
            || self.allowed_origins.iter().any(|o| o == origin)
            || localhost_origin_pattern(origin)
    }

    /// MLflow's `should_block_cors_request`, for a state-changing method with an Origin.
    fn blocks_origin(&self, origin: &str) -> bool {
        if is_localhost_origin(origin) || self.any_origin {
            return false;
        }
        !self.allowed_origins.iter().any(|allowed| {
            if allowed.contains('*') {
                glob::matches(allowed, origin)
            } else {
                allowed == origin
            }
        })
    }

    fn is_health_endpoint(&self, path: &str) -> bool {
        path.strip_prefix(self.static_prefix.as_str())
            .is_some_and(|rest| rest == "/health" || rest == "/version")
    }

    fn is_api_endpoint(&self, path: &str) -> bool {
        let prefixed = path
            .strip_prefix(self.static_prefix.as_str())
            .is_some_and(|rest| rest.starts_with("/api/") || rest.starts_with("/ajax-api/"));
        prefixed
            || path.starts_with("/api/2.0/mlflow-artifacts/artifacts")
            || path.starts_with("/ajax-api/2.0/mlflow-artifacts/artifacts")
    }
}

/// MLflow's `get_default_allowed_hosts`, plus the address given to `--host` so that
/// `--host 10.1.2.3` (or a name) is reachable by that name without further flags.
fn default_allowed_hosts(bind_host: &str) -> Vec<String> {
    let mut hosts: Vec<String> = LOCALHOST_VARIANTS.iter().map(|h| h.to_string()).collect();
    let with_port = |h: &str| {
        // fnmatch reads '[' as a set; '[[]' is a literal bracket.
        match h.strip_prefix('[') {
            Some(rest) => format!("[[]{rest}:*"),
            None => format!("{h}:*"),
        }
    };
    let ports: Vec<String> = LOCALHOST_VARIANTS.iter().map(|h| with_port(h)).collect();
    hosts.extend(ports);
    hosts.extend(["192.168.*", "10.*"].map(String::from));
    hosts.extend((16..32).map(|i| format!("172.{i}.*")));
    hosts.extend(["fc00:*", "fd00:*"].map(String::from));
    let bind = bind_host.trim();
    if !bind.is_empty() && bind != "::" && !hosts.iter().any(|h| h == bind) {
        let bind = if bind.contains(':') && !bind.starts_with('[') {
            format!("[{bind}]")
        } else {
            bind.to_string()
        };
        hosts.push(bind.clone());
        hosts.push(with_port(&bind));
    }
    hosts
}

/// `^http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?$`, MLflow's LOCALHOST_ORIGIN_PATTERNS.
fn localhost_origin_pattern(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://") else {
        return false;
    };
    ["localhost", "127.0.0.1", "[::1]"].iter().any(|h| {
        rest.strip_prefix(h).is_some_and(|port| {
            port.is_empty()
                || port
                    .strip_prefix(':')
                    .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
    })
}

/// MLflow's `is_localhost_origin`: the origin's host name is a loopback name, any scheme.
fn is_localhost_origin(origin: &str) -> bool {
    let Some((_, rest)) = origin.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    matches!(
        host.to_ascii_lowercase().as_str(),
        "localhost" | "127.0.0.1" | "::1"
    )
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

fn is_state_changing(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    )
}

/// The middleware itself; see the module documentation.
pub async fn layer(
    State(policy): State<Arc<SecurityPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    if !policy.enabled {
        return next.run(request).await;
    }
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let headers = request.headers();
    if !policy.is_health_endpoint(&path) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        // HTTP/2 carries the host in the URI authority instead.
        let host = host.or_else(|| request.uri().authority().map(|a| a.as_str()));
        if !policy.host_allowed(host) {
            tracing::warn!(
                host = host.unwrap_or(""),
                "rejected a request with a foreign Host header"
            );
            return plain(StatusCode::FORBIDDEN, INVALID_HOST_MSG);
        }
    }
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    if let Some(origin) = &origin {
        if method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return preflight(&policy, origin, headers);
        }
        if policy.is_api_endpoint(&path)
            && is_state_changing(&method)
            && policy.blocks_origin(origin)
        {
            tracing::warn!(%origin, "blocked a cross-origin request");
            let mut response = plain(StatusCode::FORBIDDEN, CORS_BLOCKED_MSG);
            add_cors_headers(&policy, origin, response.headers_mut());
            return response;
        }
    }
    let mut response = next.run(request).await;
    // The Python server answers OPTIONS on an API route with 204 and no body.
    if method == Method::OPTIONS
        && policy.is_api_endpoint(&path)
        && matches!(
            response.status(),
            StatusCode::OK | StatusCode::METHOD_NOT_ALLOWED
        )
    {
        let allow = response.headers().get(header::ALLOW).cloned();
        response = StatusCode::NO_CONTENT.into_response();
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
    }
    let out = response.headers_mut();
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(xfo) = &policy.x_frame_options {
        if !path.starts_with(TRACE_RENDERER_ASSET_PATH) {
            out.insert(header::X_FRAME_OPTIONS, xfo.clone());
        }
    }
    match &origin {
        Some(origin) => add_cors_headers(&policy, origin, out),
        None => {
            out.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    response
}

/// Headers of an answer to a request that carried `Origin`.
fn add_cors_headers(policy: &SecurityPolicy, origin: &str, out: &mut HeaderMap) {
    if policy.any_origin {
        out.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    } else {
        if policy.origin_gets_cors(origin) {
            if let Ok(value) = HeaderValue::from_str(origin) {
                out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            }
        }
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        out.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    out.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("*"),
    );
}

/// A CORS preflight: 200 with the allowed methods and the requested headers for an allowed
/// origin and method, 400 otherwise (Starlette's wording).
fn preflight(policy: &SecurityPolicy, origin: &str, headers: &HeaderMap) -> Response {
    let requested = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| m.to_str().ok())
        .unwrap_or("");
    let mut failures = Vec::new();
    if !policy.origin_gets_cors(origin) {
        failures.push("origin");
    }
    if !policy.any_origin && !ALLOWED_METHODS.split(", ").any(|m| m == requested) {
        failures.push("method");
    }
    let body = if failures.is_empty() {
        "OK".to_string()
    } else {
        format!("Disallowed CORS {}", failures.join(", "))
    };
    let status = if failures.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    out.insert(
        header::VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(if policy.any_origin {
            "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
        } else {
            ALLOWED_METHODS
        }),
    );
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    if let Some(requested_headers) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            requested_headers.clone(),
        );
    }
    if policy.any_origin {
        out.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    } else {
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        if failures.is_empty() {
            if let Ok(value) = HeaderValue::from_str(origin) {
                out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            }
        }
    }
    response
}

#[cfg(test)]
mod tests;
