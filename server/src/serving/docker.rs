//! `mlflow models generate-dockerfile` and `build-docker`: a build context that serves a
//! model with this binary on port 8080 (the model, its Python environment when it needs one,
//! and the binary itself), plus Kubernetes manifests with `--kubernetes`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::mlmodel::MlModel;
use super::python::PythonEnv;
use super::ServingError;
use crate::cli::serving::{BuildDockerArgs, DockerArgs, DockerfileArgs, EnvManager};
use crate::projects::spec::shell_quote;

/// Where things live in the image.
const MODEL_DIR: &str = "/opt/ml/model";
const ENV_DIR: &str = "/opt/ml/env";
const PORT: u16 = 8080;

/// `mlflow models generate-dockerfile`.
pub fn generate_dockerfile(args: &DockerfileArgs) -> Result<(), ServingError> {
    let image = args.docker.image.as_deref().unwrap_or(DEFAULT_IMAGE);
    write_context(&args.docker, &args.output_directory, image)?;
    eprintln!(
        "Wrote a Dockerfile and the model to {} (build it with: docker build -t {image} {})",
        args.output_directory.display(),
        args.output_directory.display()
    );
    Ok(())
}

/// The image name manifests use when none is given.
const DEFAULT_IMAGE: &str = "mlflow-model-server:latest";

/// `mlflow models build-docker`: the context in a temporary directory, then `docker build`
/// (or `podman build`).
pub fn build_docker(args: &BuildDockerArgs) -> Result<(), ServingError> {
    let Some(engine) = ["docker", "podman"]
        .into_iter()
        .find_map(super::python::which)
    else {
        return Err(ServingError::Unsupported(format!(
            "build-docker needs a container engine and neither docker nor podman is on PATH; \
             `mlflow models generate-dockerfile -m {} -d DIR` writes the build context to build \
             elsewhere",
            args.docker.model_uri
        )));
    };
    let context = std::env::temp_dir().join(format!(
        "mlflow-docker-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    let image = args.docker.image.as_deref().unwrap_or(&args.name);
    let result = (|| {
        write_context(&args.docker, &context, image)?;
        eprintln!("Building the image {} with {}", args.name, engine.display());
        let status = Command::new(&engine)
            .args(["build", "-t", &args.name])
            .arg(&context)
            .status()
            .map_err(|e| {
                ServingError::Unsupported(format!("cannot run {}: {e}", engine.display()))
            })?;
        if !status.success() {
            return Err(ServingError::Unsupported(format!(
                "{} build exited with {status}; the build context was {}",
                engine.display(),
                context.display()
            )));
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&context);
    result?;
    if args.docker.kubernetes {
        // The context is gone; the manifests are what is kept, in ./kubernetes.
        let dir = PathBuf::from("kubernetes");
        write_manifests(&dir, image, args.docker.replicas)?;
        eprintln!("Wrote Kubernetes manifests to {}", dir.display());
    }
    Ok(())
}

/// Writes Dockerfile, model_dir/, the binary and (with --kubernetes) the manifests into
/// `dir`.
fn write_context(args: &DockerArgs, dir: &Path, image: &str) -> Result<(), ServingError> {
    if args.env_manager == EnvManager::Conda {
        return Err(ServingError::Unsupported(
            "--env-manager conda is not supported; use virtualenv (the default) or local".into(),
        ));
    }
    let local = super::fetch_model(&args.model_uri)?;
    std::fs::create_dir_all(dir).map_err(|e| ServingError::io(dir, e))?;
    let model_dir = dir.join("model_dir");
    let _ = std::fs::remove_dir_all(&model_dir);
    copy_tree(&local.model.dir, &model_dir)?;
    let exe = std::env::current_exe().map_err(|e| ServingError::io(Path::new("mlflow"), e))?;
    let target = dir.join("mlflow");
    let _ = std::fs::remove_file(&target);
    if std::fs::hard_link(&exe, &target).is_err() {
        std::fs::copy(&exe, &target).map_err(|e| ServingError::io(&target, e))?;
    }
    let text = dockerfile(&local.model)?;
    let path = dir.join("Dockerfile");
    std::fs::write(&path, text).map_err(|e| ServingError::io(&path, e))?;
    if args.kubernetes {
        write_manifests(dir, image, args.replicas)?;
    }
    Ok(())
}

fn write_manifests(dir: &Path, image: &str, replicas: u32) -> Result<(), ServingError> {
    std::fs::create_dir_all(dir).map_err(|e| ServingError::io(dir, e))?;
    for (name, text) in manifests(image, replicas) {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| ServingError::io(&path, e))?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), ServingError> {
    std::fs::create_dir_all(to).map_err(|e| ServingError::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| ServingError::io(from, e))? {
        let entry = entry.map_err(|e| ServingError::io(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else if entry.file_name() != ".manifest.json" {
            std::fs::copy(&src, &dst).map_err(|e| ServingError::io(&src, e))?;
        }
    }
    Ok(())
}

/// The Dockerfile for `model`: a Python base with the model's environment for
/// `python_function` models, a plain Debian base for models served natively.
pub fn dockerfile(model: &MlModel) -> Result<String, ServingError> {
    let entry = format!(
        "ENTRYPOINT [\"/usr/local/bin/mlflow\", \"models\", \"serve\", \"--model-uri\", \
         \"{MODEL_DIR}\", \"--env-manager\", \"local\", \"--host\", \"0.0.0.0\", \"--port\", \
         \"{PORT}\"]\n"
    );
    let head = "# Serves the MLflow model in model_dir/ on port 8080 with `mlflow models serve`: \
                the Rust\n# binary copied next to this file (built for this machine's C library; \
                rebuild the\n# context on a similar system). Written by `mlflow models \
                generate-dockerfile`.\n";
    if super::serves_natively(model) {
        return Ok(format!(
            "{head}FROM debian:bookworm-slim\n\nCOPY model_dir {MODEL_DIR}\nCOPY mlflow \
             /usr/local/bin/mlflow\n\nEXPOSE {PORT}\n{entry}"
        ));
    }
    if model.flavor("python_function").is_none() {
        return Err(ServingError::Unsupported(format!(
            "the model in {} has no python_function or onnx flavor (it has {}): it cannot be \
             served",
            model.dir.display(),
            model.flavor_names()
        )));
    }
    let env = model_env(model)?;
    let python = env
        .python
        .as_deref()
        .map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."))
        .unwrap_or_else(|| "3.11".into());
    let pip = format!("{ENV_DIR}/bin/pip install --no-cache-dir");
    let quoted = |deps: &[String]| -> String {
        deps.iter()
            .flat_map(|d| match d.strip_prefix("-r ") {
                Some(file) => vec!["-r".to_string(), shell_quote(file.trim())],
                None => vec![shell_quote(d)],
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut install = format!("RUN python -m venv {ENV_DIR}");
    if !env.build_dependencies.is_empty() {
        install.push_str(&format!(
            " \\\n    && {pip} {}",
            quoted(&env.build_dependencies)
        ));
    }
    let mut deps = env.dependencies.clone();
    if !deps.iter().any(|d| d.starts_with("-r ")) && !deps.iter().any(|d| d.starts_with("mlflow")) {
        deps.push(format!(
            "mlflow=={}",
            model
                .mlflow_version
                .as_deref()
                .unwrap_or(crate::MLFLOW_COMPAT_VERSION)
        ));
    }
    if !deps.is_empty() {
        install.push_str(&format!(
            " \\\n    && cd {MODEL_DIR} && {pip} {}",
            quoted(&deps)
        ));
    }
    Ok(format!(
        "{head}FROM python:{python}-slim\n\nCOPY model_dir {MODEL_DIR}\n# The model's \
         environment, from its python_env.yaml and requirements.txt.\n{install}\nENV \
         MLFLOW_PYTHON={ENV_DIR}/bin/python\nCOPY mlflow /usr/local/bin/mlflow\n\nEXPOSE \
         {PORT}\n{entry}"
    ))
}

/// The model's `python_env.yaml`, else its requirements.txt alone.
fn model_env(model: &MlModel) -> Result<PythonEnv, ServingError> {
    let path = model.dir.join("python_env.yaml");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_saphyr::from_str(&text)
            .map_err(|e| ServingError::Model(format!("{} is not valid: {e}", path.display()))),
        Err(_) if model.dir.join("requirements.txt").exists() => Ok(PythonEnv {
            dependencies: vec!["-r requirements.txt".into()],
            ..PythonEnv::default()
        }),
        Err(_) => Ok(PythonEnv::default()),
    }
}

/// A DNS-1123 label from an image reference: `registry/team/churn-model:1.2` → `churn-model`.
pub fn app_name(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let base = last.split([':', '@']).next().unwrap_or(last);
    let mut name: String = base
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.truncate(63);
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "mlflow-model".into()
    } else {
        name
    }
}

/// `deployment.yaml` and `service.yaml`: the image on port 8080 with readiness and
/// liveness probes on /ping, behind a ClusterIP Service.
pub fn manifests(image: &str, replicas: u32) -> [(&'static str, String); 2] {
    let name = app_name(image);
    let probe = |kind: &str, delay: u32, period: u32| {
        format!(
            "          {kind}:\n            httpGet:\n              path: /ping\n              \
             port: http\n            initialDelaySeconds: {delay}\n            periodSeconds: \
             {period}\n"
        )
    };
    let deployment = format!(
        "# The model server as a Kubernetes Deployment (written by `mlflow models \
         generate-dockerfile --kubernetes`).\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  \
         name: {name}\n  labels:\n    app: {name}\nspec:\n  replicas: {replicas}\n  selector:\n    \
         matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: \
         {name}\n    spec:\n      containers:\n        - name: {name}\n          image: \
         \"{image}\"\n          ports:\n            - name: http\n              containerPort: \
         {PORT}\n              protocol: TCP\n          env:\n            - name: \
         MLFLOW_MODELS_WORKERS\n              value: \"2\"\n{}{}          resources:\n            \
         requests:\n              cpu: 250m\n              memory: 512Mi\n",
        probe("readinessProbe", 5, 5),
        probe("livenessProbe", 30, 10),
    );
    let service = format!(
        "# Routes port 80 of the Service to the model server's port 8080.\napiVersion: v1\nkind: \
         Service\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\nspec:\n  type: \
         ClusterIP\n  selector:\n    app: {name}\n  ports:\n    - name: http\n      port: 80\n      \
         targetPort: http\n      protocol: TCP\n"
    );
    [("deployment.yaml", deployment), ("service.yaml", service)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_are_dns_labels() {
        assert_eq!(
            app_name("registry.io:5000/team/Churn_Model:1.2"),
            "churn-model"
        );
        assert_eq!(app_name("mlflow-pyfunc-servable"), "mlflow-pyfunc-servable");
        assert_eq!(app_name("___"), "mlflow-model");
        assert!(app_name(&"x".repeat(100)).len() <= 63);
    }

    #[test]
    fn manifests_name_the_image_and_probe_ping() {
        let [(_, deployment), (_, service)] = manifests("repo/churn:2", 3);
        assert!(deployment.contains("replicas: 3"));
        assert!(deployment.contains("image: \"repo/churn:2\""));
        assert_eq!(deployment.matches("path: /ping").count(), 2);
        assert!(service.contains("name: churn"));
    }
}
