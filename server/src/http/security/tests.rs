use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceExt;

use super::*;

fn policy(hosts: Option<&str>, origins: Option<&str>, bind: &str) -> SecurityPolicy {
    let args = NetworkArgs {
        allowed_hosts: hosts.map(String::from),
        cors_allowed_origins: origins.map(String::from),
        x_frame_options: "SAMEORIGIN".into(),
        ..NetworkArgs::default()
    };
    SecurityPolicy::from_args(&args, bind, None).expect("valid policy")
}

/// A router whose handlers count how often they ran, behind the middleware.
fn app(policy: SecurityPolicy) -> (Router, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let (h1, h2) = (hits.clone(), hits.clone());
    let router = Router::new()
        .route("/health", get(|| async { "OK" }))
        .route(
            "/api/2.0/mlflow/experiments/create",
            post(move || async move {
                h1.fetch_add(1, Ordering::SeqCst);
                "{}"
            }),
        )
        .route(
            "/api/2.0/mlflow/experiments/get",
            get(move || async move {
                h2.fetch_add(1, Ordering::SeqCst);
                "{}"
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(policy),
            super::layer,
        ));
    (router, hits)
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn request(method: &str, path: &str, host: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host)
}

#[test]
fn default_hosts_are_mlflows_plus_the_bind_address() {
    let p = policy(None, None, "127.0.0.1");
    for ok in [
        "localhost",
        "localhost:5000",
        "127.0.0.1:5000",
        "[::1]:5000",
        "0.0.0.0:5000",
        "192.168.1.20:5000",
        "10.0.0.1",
        "172.20.1.1:80",
    ] {
        assert!(p.host_allowed(Some(ok)), "{ok}");
    }
    for bad in [
        "evil.com",
        "evil.com:5000",
        "localhost.evil.com",
        "172.32.0.1",
        "",
    ] {
        assert!(!p.host_allowed(Some(bad)), "{bad}");
    }
    assert!(!p.host_allowed(None));
    let p = policy(None, None, "mlflow.internal");
    assert!(p.host_allowed(Some("mlflow.internal:5000")));
    assert!(p.host_allowed(Some("mlflow.internal")));
    let p = policy(None, None, "fe80::1");
    assert!(p.host_allowed(Some("[fe80::1]:5000")));
}

#[test]
fn explicit_hosts_replace_the_defaults_and_star_allows_all() {
    let p = policy(Some("mlflow.example.com, *.corp.net"), None, "0.0.0.0");
    assert!(p.host_allowed(Some("mlflow.example.com")));
    assert!(p.host_allowed(Some("a.corp.net")));
    assert!(!p.host_allowed(Some("a.corp.net:443")));
    assert!(!p.host_allowed(Some("localhost:5000")));
    let p = policy(Some("*"), None, "0.0.0.0");
    assert!(p.host_allowed(Some("anything")));
    assert!(p.host_allowed(None));
}

#[test]
fn origins_follow_mlflows_rules() {
    assert!(is_localhost_origin("http://localhost:3000"));
    assert!(is_localhost_origin("https://127.0.0.1"));
    assert!(is_localhost_origin("http://[::1]:8080"));
    assert!(!is_localhost_origin("http://localhost.evil.com"));
    assert!(!is_localhost_origin("null"));
    assert!(localhost_origin_pattern("http://localhost:3000"));
    assert!(!localhost_origin_pattern("https://localhost:3000"));
    assert!(!localhost_origin_pattern("http://localhost:"));
    let p = policy(
        None,
        Some("https://app.example.com,https://*.corp.net"),
        "127.0.0.1",
    );
    assert!(!p.blocks_origin("https://app.example.com"));
    assert!(!p.blocks_origin("https://x.corp.net"));
    assert!(p.blocks_origin("https://evil.com"));
    assert!(p.origin_gets_cors("https://app.example.com"));
    // Starlette compares the list exactly: a pattern is not echoed in CORS headers.
    assert!(!p.origin_gets_cors("https://x.corp.net"));
}

#[tokio::test]
async fn foreign_host_is_refused_before_any_handler_runs() {
    let (router, hits) = app(policy(None, None, "127.0.0.1"));
    let (status, _, body) = send(
        &router,
        request("POST", "/api/2.0/mlflow/experiments/create", "evil.com")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, INVALID_HOST_MSG);
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    // /health stays reachable for load balancers that send their own Host.
    let (status, _, _) = send(
        &router,
        request("GET", "/health", "evil.com")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn cross_origin_writes_are_refused_and_reads_get_no_cors_grant() {
    let (router, hits) = app(policy(None, None, "127.0.0.1"));
    let (status, headers, body) = send(
        &router,
        request(
            "POST",
            "/api/2.0/mlflow/experiments/create",
            "localhost:5000",
        )
        .header(header::ORIGIN, "http://evil.com")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::FORBIDDEN, CORS_BLOCKED_MSG)
    );
    assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    let (status, headers, _) = send(
        &router,
        request("GET", "/api/2.0/mlflow/experiments/get", "localhost:5000")
            .header(header::ORIGIN, "http://evil.com")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "SAMEORIGIN");

    let (status, headers, _) = send(
        &router,
        request(
            "POST",
            "/api/2.0/mlflow/experiments/create",
            "localhost:5000",
        )
        .header(header::ORIGIN, "http://localhost:3000")
        .body(Body::from("{}"))
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:3000"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn preflights_are_answered_by_the_middleware() {
    let (router, hits) = app(policy(None, Some("https://app.example.com"), "127.0.0.1"));
    let preflight = |origin: &'static str| {
        request(
            "OPTIONS",
            "/api/2.0/mlflow/experiments/create",
            "localhost:5000",
        )
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .body(Body::empty())
        .expect("request")
    };
    let (status, headers, _) = send(&router, preflight("https://app.example.com")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example.com"
    );
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_HEADERS],
        "content-type"
    );
    let (status, headers, body) = send(&router, preflight("https://evil.com")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "Disallowed CORS origin")
    );
    assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    // A plain OPTIONS on an API route: 204, as the Python server answers.
    let (status, _, body) = send(
        &router,
        request("OPTIONS", "/api/2.0/mlflow/experiments/create", "localhost")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::NO_CONTENT, ""));
}

#[tokio::test]
async fn wildcard_origin_and_disabled_middleware() {
    let (router, _) = app(policy(Some("*"), Some("*"), "0.0.0.0"));
    let (status, headers, _) = send(
        &router,
        request(
            "POST",
            "/api/2.0/mlflow/experiments/create",
            "anything.example",
        )
        .header(header::ORIGIN, "https://elsewhere.example")
        .body(Body::from("{}"))
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));

    let mut off = policy(None, None, "127.0.0.1");
    off.enabled = false;
    let (router, hits) = app(off);
    let (status, headers, _) = send(
        &router,
        request("POST", "/api/2.0/mlflow/experiments/create", "evil.com")
            .header(header::ORIGIN, "http://evil.com")
            .body(Body::from("{}"))
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key(header::X_FRAME_OPTIONS));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn x_frame_options_none_drops_the_header_and_garbage_is_refused() {
    let mut args = NetworkArgs {
        x_frame_options: "none".into(),
        ..NetworkArgs::default()
    };
    let p = SecurityPolicy::from_args(&args, "127.0.0.1", None).expect("valid");
    assert!(p.x_frame_options.is_none());
    args.x_frame_options = "deny".into();
    let p = SecurityPolicy::from_args(&args, "127.0.0.1", None).expect("valid");
    assert_eq!(
        p.x_frame_options.as_ref().map(|v| v.as_bytes()),
        Some(&b"DENY"[..])
    );
    args.x_frame_options = "bad\nvalue".into();
    assert!(SecurityPolicy::from_args(&args, "127.0.0.1", None).is_err());
}
