//! Models in production: `mlflow models serve` and `mlflow models predict`.
//!
//! A model URI is resolved through the tracking server ([`resolve`]), downloaded once into a
//! checksummed cache ([`cache`]), and its `MLmodel` read ([`mlmodel`], [`schema`]). Requests
//! are decoded and checked against the signature in Rust ([`input`], [`http`]) and scored by
//! a pool of Python worker processes for `python_function` models ([`pool`], [`python`]).

pub mod cache;
pub mod docker;
pub mod error;
pub mod http;
pub mod input;
pub mod mlmodel;
pub mod numeric;
#[cfg(feature = "onnx")]
pub mod onnx;
#[cfg(feature = "onnx")]
pub mod plans;
pub mod pool;
#[cfg(feature = "onnx")]
pub mod predictions;
pub mod python;
pub mod resolve;
pub mod schema;
#[cfg(feature = "onnx")]
pub mod threads;
pub mod uri;

use std::net::ToSocketAddrs;
use std::time::Duration;

pub use error::{ScoringError, ServingError};

use crate::cli::serving::{ModelSourceArgs, PredictArgs, ServeArgs};
use crate::client::{Client, Settings};
use input::Payload;
use mlmodel::MlModel;
use numeric::NumericFrame;
use pool::{Answer, Pool, PoolConfig};
use resolve::Location;
use schema::Schema;
use uri::ModelUri;

/// A model on local disk, ready to load.
pub struct LocalModel {
    pub uri: String,
    pub model: MlModel,
}

/// Resolves, downloads (or finds in the cache) and reads a model.
pub fn fetch_model(uri: &str) -> Result<LocalModel, ServingError> {
    let parsed = ModelUri::parse(uri)?;
    let connect = || -> Result<Client, ServingError> { Ok(Client::new(Settings::from_env()?)?) };
    let dir = match resolve::resolve(&parsed, connect)? {
        Location::Local(path) => {
            if !path.is_dir() {
                return Err(ServingError::Model(format!(
                    "{} is not a directory (a model URI: models:/NAME/STAGE, runs:/RUN_ID/PATH, \
                     mlflow-artifacts:/PATH, or a local model directory)",
                    path.display()
                )));
            }
            path
        }
        Location::Proxied(path) => cache::fetch(&connect()?, &path)?,
    };
    Ok(LocalModel {
        uri: uri.to_string(),
        model: MlModel::load(&dir)?,
    })
}

/// Whether `model` is scored in this process, without Python: models with an onnx flavor,
/// when this binary has the `onnx` feature.
pub fn serves_natively(model: &MlModel) -> bool {
    cfg!(feature = "onnx") && model.flavor("onnx").is_some()
}

/// What scores requests for a served model.
#[derive(Clone)]
pub enum Scorer {
    Python {
        pool: Pool,
        schema: Option<Schema>,
    },
    #[cfg(feature = "onnx")]
    Onnx {
        model: std::sync::Arc<onnx::OnnxModel>,
        schema: Option<Schema>,
        threads: threads::Threads,
    },
}

impl Scorer {
    pub fn input_schema(&self) -> Option<&Schema> {
        match self {
            Scorer::Python { schema, .. } => schema.as_ref(),
            #[cfg(feature = "onnx")]
            Scorer::Onnx { schema, .. } => schema.as_ref(),
        }
    }

    pub async fn score(&self, payload: Payload) -> Answer {
        match self {
            Scorer::Python { pool, .. } => pool.score(payload).await,
            #[cfg(feature = "onnx")]
            Scorer::Onnx { model, threads, .. } => {
                let model = model.clone();
                threads.run(move || model.score(&payload)).await
            }
        }
    }

    /// A JSON body as a frame of numbers, for a scorer that has a fast path for it (the
    /// native ONNX one); `None` sends the body down the generic path.
    pub fn numeric_frame(&self, body: &str) -> Option<NumericFrame> {
        match self {
            Scorer::Python { .. } => None,
            #[cfg(feature = "onnx")]
            Scorer::Onnx { .. } => numeric::parse_split(body),
        }
    }

    /// Scores a frame from [`Scorer::numeric_frame`].
    pub async fn score_numeric(&self, frame: NumericFrame) -> Answer {
        match self {
            // Not reached: the Python scorer has no numeric frames.
            Scorer::Python { .. } => {
                ScoringError::internal("no fast path for Python models").into()
            }
            #[cfg(feature = "onnx")]
            Scorer::Onnx { model, threads, .. } => {
                let model = model.clone();
                threads.run(move || model.score_numeric(&frame)).await
            }
        }
    }
}

/// How a scorer runs.
pub struct ScorerOptions {
    pub workers: usize,
    pub max_batch_rows: usize,
    pub timeout: Duration,
}

/// Starts what runs `model`: its Python worker pool.
pub async fn start_scorer(
    local: &LocalModel,
    source: &ModelSourceArgs,
    options: &ScorerOptions,
) -> Result<Scorer, ServingError> {
    let model = &local.model;
    #[cfg(feature = "onnx")]
    if serves_natively(model) {
        let loaded = onnx::OnnxModel::load(model)?;
        eprintln!("Scoring the ONNX model natively (tract)");
        // One scoring thread per core: measured against tokio's blocking pool, 100-row
        // requests took half the CPU time (fewer thread switches, warm run states).
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        return Ok(Scorer::Onnx {
            model: std::sync::Arc::new(loaded),
            schema: model.signature.inputs.clone(),
            threads: threads::Threads::start(cores),
        });
    }
    if model.flavor("python_function").is_none() {
        return Err(ServingError::Unsupported(format!(
            "{} has no python_function or onnx flavor (it has {}): it cannot be served",
            local.uri,
            model.flavor_names()
        )));
    }
    let manager = source.env_manager();
    let dir = model.dir.clone();
    let python = tokio::task::spawn_blocking({
        let model = model.clone();
        move || python::python_for(&model, manager)
    })
    .await
    .map_err(|e| ServingError::Python(e.to_string()))??;
    let pool = Pool::start(PoolConfig {
        python,
        model_dir: dir,
        workers: options.workers,
        max_batch_rows: options.max_batch_rows,
        timeout: options.timeout,
        script_dir: cache::cache_root().join("worker"),
    })
    .await
    .map_err(ServingError::Python)?;
    Ok(Scorer::Python {
        pool,
        schema: model.signature.inputs.clone(),
    })
}

/// `mlflow models serve`.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let local = fetch_model(&args.source.model_uri)?;
    let addr = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("cannot resolve --host {}: {e}", args.host))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("--host {} resolves to no address", args.host))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let options = ScorerOptions {
            workers: args.workers as usize,
            max_batch_rows: args.max_batch_rows as usize,
            timeout: Duration::from_secs(args.timeout.max(1)),
        };
        let scorer = start_scorer(&local, &args.source, &options).await?;
        eprintln!("Serving {} from {}", local.uri, local.model.dir.display());
        http::serve(http::router(scorer, options.timeout), addr).await?;
        Ok(())
    })
}

/// `mlflow models predict`: the predictions of one input file, as `/invocations` would
/// answer it; an error answer fails the command with MLflow's message.
pub fn predict(args: PredictArgs) -> anyhow::Result<()> {
    let local = fetch_model(&args.source.model_uri)?;
    let input = match &args.input_path {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
        None => std::io::read_to_string(std::io::stdin())?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime.block_on(async {
        let options = ScorerOptions {
            workers: 1,
            max_batch_rows: usize::MAX,
            timeout: Duration::from_secs(24 * 3600),
        };
        let scorer = start_scorer(&local, &args.source, &options).await?;
        let payload = if args.content_type == "csv" {
            Payload::Csv { body: input }
        } else {
            match input::decode_json(&input, scorer.input_schema()) {
                Ok(p) => p,
                Err(e) => return Ok::<_, anyhow::Error>(Answer::from(e)),
            }
        };
        if let (Payload::Frame { frame, .. }, Some(schema)) = (&payload, scorer.input_schema()) {
            if let Err(e) = schema.check_frame(frame) {
                return Ok(e.into());
            }
        }
        Ok(scorer.score(payload).await)
    })?;
    if answer.status != 200 {
        let message = serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or(answer.body);
        anyhow::bail!("the model could not predict: {message}");
    }
    match &args.output_path {
        Some(path) => std::fs::write(path, &answer.body)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
        None => println!("{}", answer.body),
    }
    Ok(())
}
