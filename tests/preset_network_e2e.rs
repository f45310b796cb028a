//! The mlflow preset's network settings applied for real, with the real `mlflow` binary next to
//! `preset` in a temporary install on a free port: HTTPS with a certificate the test makes
//! (`tls_cert`/`tls_key`), only the Host it names (`allowed_hosts`), the playbook's own
//! `assert: http:` trusting that certificate through `ca:`, and the official MLflow client
//! with MLFLOW_TRACKING_SERVER_CERT_PATH. A second apply changes nothing.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{server_binary, Install};

/// A client that trusts only `cert`.
fn client(cert: &Path) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(cert).expect("read the certificate");
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).expect("PEM"))
        .build()
        .expect("http client")
}

#[test]
fn https_and_allowed_hosts() {
    server_binary();
    let inst = Install::new().https();
    let Some((cert, key)) = common::self_signed(inst.dir.path()) else {
        common::cannot_run("the openssl CLI cannot make a certificate (Debian's openssl package)");
        return;
    };
    let host = format!("localhost:{}", inst.port);
    let playbook = common::write(
        inst.dir.path(),
        "network.yml",
        &format!(
            "- preset: mlflow\n  with:\n    tls_cert: {cert}\n    tls_key: {key}\n    allowed_hosts: [\"{host}\"]\n\n- name: the API answers over https\n  assert:\n    http:\n      url: https://{host}/api/2.0/mlflow/experiments/search?max_results=1\n      ca: {cert}\n",
            cert = cert.display(),
            key = key.display()
        ),
    );
    let playbook = playbook.display().to_string();

    // 1. Installed and started with TLS; the health check and the playbook's assert hold.
    let run = inst.apply(&playbook, &[]);
    assert_eq!(run.code, 0, "{}", run.raw);
    let started = run.step("run the tracking server")["message"].to_string();
    assert!(started.contains("healthy at https://"), "{}", run.raw);
    assert_eq!(
        run.step("the API answers over https")["status"],
        "ok",
        "{}",
        run.raw
    );
    let env = std::fs::read_to_string(inst.path("etc/mlflow.env")).expect("env file");
    assert!(
        env.contains(&format!("MLFLOW_TLS_CERT={}\n", cert.display())),
        "{env}"
    );
    assert!(
        env.contains(&format!("MLFLOW_SERVER_ALLOWED_HOSTS={host}\n")),
        "{env}"
    );

    // 2. Only the named Host is served; the others get 403 (and /health answers anyway).
    let https = client(&cert);
    let search = format!("https://{host}/api/2.0/mlflow/experiments/search?max_results=1");
    let status = |url: &str, host_header: Option<&str>| {
        let mut req = https.get(url);
        if let Some(h) = host_header {
            req = req.header("host", h);
        }
        req.send()
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    };
    assert_eq!(status(&search, None), Ok(200));
    assert_eq!(status(&search, Some("evil.example.com")), Ok(403));
    assert_eq!(
        status(&format!("https://{host}/health"), Some("evil.example.com")),
        Ok(200)
    );
    // Plain HTTP is not served on that port.
    assert!(common::http("GET", &format!("http://{host}/health"), None).0 != 200);

    // 3. The official client, trusting the certificate as MLflow users do.
    let name = format!("preset-network-{}", inst.port);
    let uri = format!("https://{host}");
    let env = [
        ("MLFLOW_TRACKING_URI", Path::new(&uri)),
        ("MLFLOW_TRACKING_SERVER_CERT_PATH", cert.as_path()),
    ];
    let create = "import mlflow, sys; print(mlflow.create_experiment(sys.argv[1]))";
    if let Some(id) = common::official_client(create, &[&name], &env) {
        assert!(!id.is_empty());
    }

    // 4. A second apply changes nothing and keeps the process.
    let pid = inst.pid().expect("pid file");
    let run = inst.apply(&playbook, &[]);
    assert_eq!(run.code, 0, "{}", run.raw);
    assert_eq!(run.count("changed"), 0, "{}", run.raw);
    assert_eq!(inst.pid(), Some(pid));
}
