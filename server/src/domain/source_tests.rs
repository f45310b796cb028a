//! Expectations recorded from MLflow 3.17.2's own functions (handlers.py and host_policy.py
//! called from Python on the same inputs).

use super::*;

#[test]
fn relative_path_references_as_mlflow_sees_them() {
    let cases = [
        ("s3://bucket/model", true),
        ("s3://bucket", false),
        ("s3://bucket/", false),
        ("gs://b/a/./b", false),
        ("gs://b/a//b", true),
        ("gs://b/a/../b", false),
        ("s3://b/%2e%2e/x", false),
        ("s3://b/%252e%252e/x", false),
        ("s3://b/a+b", true),
        ("runs:/abc/model", true),
        ("runs:/abc/../x", false),
        ("models:/m/1", true),
        ("mlflow-artifacts:/0/r/artifacts/model", true),
        ("mlflow-artifacts:/models///", true),
        ("mlflow-artifacts:/models/foo///bar", true),
        ("wasbs://c@a.blob.core.windows.net/p", true),
        ("dbfs:/x/y", true),
        ("C:\\Windows\\win.ini", false),
        ("\\\\server\\share", false),
        ("s3://b/x%00y", false),
        ("s3://b/x?y=../..", false),
        ("s3://b/x#../..", false),
        ("s3://b/x;p", true),
        ("hdfs:///tmp/model", true),
        ("s3://b/%c0%ae%c0%ae/x", true),
        ("x:/..%2fetc", false),
    ];
    for (source, accepted) in cases {
        assert_eq!(!has_relative_path_references(source), accepted, "{source}");
    }
}

#[test]
fn containment_and_proxied_sources() {
    let root = "mlflow-artifacts:/0/r/artifacts";
    for (source, inside) in [
        ("mlflow-artifacts:/0/r/artifacts/m", true),
        ("mlflow-artifacts:/0/r/artifactsX", false),
        ("mlflow-artifacts:/0/r/%61rtifacts/m", true),
        ("MLFLOW-ARTIFACTS:/0/r/artifacts", true),
        ("mlflow-artifacts:/models", false),
        ("mlflow-artifacts://h/0/r/artifacts", false),
    ] {
        assert_eq!(is_uri_within_root(source, root), inside, "{source}");
    }
    for (source, proxied) in [
        ("mlflow-artifacts:/x", true),
        ("http://h/api/2.0/mlflow-artifacts/artifacts/x", true),
        ("https://h/p/api/2.0/mlflow-artifacts%2Fartifacts/x", false),
        ("http://h/api/2.0/mlflow-artifacts/x", false),
        ("MLFLOW-ARTIFACTS:/x", true),
    ] {
        assert_eq!(
            is_mlflow_artifacts(&UriParts::parse(source)),
            proxied,
            "{source}"
        );
    }
}

#[test]
fn host_addressed_schemes_are_refused_unless_trusted() {
    let policy = HostPolicy::new(&["mlflow-artifacts:/", "/srv/mlartifacts"], "");
    for (uri, refused) in [
        ("http://example.com/x", true),
        ("mlflow-artifacts:/x", false),
        ("mlflow-artifacts://h/x", true),
        ("s3://b/x", false),
        ("ftp://h/x", true),
        ("hdfs:///tmp/x", true),
        ("https://h:99999/x", true),
        ("http://h\\@x/", true),
        ("abfss://fs@acct.dfs.core.windows.net/x", true),
        ("wasbs://c@a.blob.core.windows.net/p", false),
    ] {
        assert_eq!(policy.check(uri, "source").is_err(), refused, "{uri}");
    }
    let trusted = HostPolicy::new(&["http://store.internal:8080/artifacts"], "ftp, HDFS");
    assert!(trusted
        .check("http://store.internal:8080/other", "source")
        .is_ok());
    assert!(trusted
        .check("mlflow-artifacts://store.internal:8080/x", "source")
        .is_ok());
    assert!(trusted.check("http://store.internal/x", "source").is_err());
    assert!(trusted.check("ftp://anywhere/x", "source").is_ok());
    assert!(trusted.check("hdfs://nn/x", "source").is_ok());
    let message = policy
        .check("http://example.com/x", "source")
        .unwrap_err()
        .message;
    assert!(
        message.starts_with("'source' cannot use the 'http' scheme"),
        "{message}"
    );
}

#[test]
fn models_uris() {
    assert_eq!(
        parse_model_uri("models:/m-abc"),
        Some(ModelUri::LoggedModel("m-abc".into()))
    );
    assert_eq!(
        parse_model_uri("models:/anything"),
        Some(ModelUri::LoggedModel("anything".into()))
    );
    assert_eq!(
        parse_model_uri("models:/my model/3"),
        Some(ModelUri::Version {
            name: "my model".into(),
            version: "3".into()
        })
    );
    assert_eq!(
        parse_model_uri("models:/m/Production"),
        Some(ModelUri::Stage {
            name: "m".into(),
            stage: "Production".into()
        })
    );
    assert_eq!(
        parse_model_uri("models:/m/LATEST"),
        Some(ModelUri::Latest { name: "m".into() })
    );
    assert_eq!(
        parse_model_uri("models:/m@champion"),
        Some(ModelUri::Alias {
            name: "m".into(),
            alias: "champion".into()
        })
    );
    for bad in [
        "models:/",
        "models:",
        "models:/a/b/c",
        "models:/m/ ",
        "models:/m@",
        "runs:/x",
    ] {
        assert_eq!(parse_model_uri(bad), None, "{bad}");
    }
}

#[test]
fn uri_parts_follow_urlsplit() {
    let p = UriParts::parse("S3://Bucket/a/b?q#f");
    assert_eq!(p.scheme, "s3");
    assert_eq!(p.netloc.as_deref(), Some("Bucket"));
    assert_eq!(p.path, "/a/b");
    let p = UriParts::parse("/plain/path");
    assert_eq!((p.scheme.as_str(), p.netloc.clone()), ("", None));
    let p = UriParts::parse("http://user@[::1]:8080/x");
    assert_eq!(p.hostname().as_deref(), Some("::1"));
    assert_eq!(p.port(), Ok(Some(8080)));
    assert_eq!(UriParts::parse("http://h:x/").port(), Err(BadPort));
    assert_eq!(UriParts::parse("http://h/").port(), Ok(None));
    assert_eq!(
        runs_uri_run_id(&UriParts::parse("runs:/abc/model")).as_deref(),
        Some("abc")
    );
}

#[test]
fn local_sources() {
    let local = |s: &str| is_local(s, &UriParts::parse(s));
    assert!(local("/srv/x").unwrap());
    assert!(local("relative/x").unwrap());
    assert!(local("file:///srv/x").unwrap());
    assert!(local("file://localhost/srv/x").unwrap());
    assert!(!local("s3://b/x").unwrap());
    assert!(local("file://remote.host/x").is_err());
    assert_eq!(
        local_path("file:///srv/a%20b/../c", "/cwd"),
        Some(vec!["srv".to_string(), "c".to_string()])
    );
    assert_eq!(
        local_path("rel/./x", "/cwd"),
        Some(vec!["cwd".to_string(), "rel".to_string(), "x".to_string()])
    );
    assert_eq!(local_path("/../../x", "/"), None);
}
