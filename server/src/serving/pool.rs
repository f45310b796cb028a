//! The pool of Python worker processes that run `python_function` models (`worker.py`).
//!
//! Requests wait in one queue. A worker that becomes free takes every request waiting, up
//! to `max_batch_rows` rows, and sends them to its process as one message, so concurrent
//! requests are predicted together (micro-batching) without any request waiting for a timer.
//! A process that dies is restarted; the requests it held are retried one at a time on the
//! new process, and a request that kills its worker again is answered with an error: none
//! is dropped without an answer. A batch that overruns the request timeout is answered 504
//! and its process replaced.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot, Mutex};

use super::error::ScoringError;
use super::input::Payload;

/// The worker script, written next to the model cache when the pool starts.
const WORKER_PY: &str = include_str!("worker.py");

/// A scoring answer: status, content type and body, passed through as the model gave them.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl From<ScoringError> for Answer {
    fn from(e: ScoringError) -> Self {
        Answer {
            status: e.status,
            content_type: "application/json".into(),
            body: e.to_json(),
        }
    }
}

struct Job {
    message: Value,
    rows: usize,
    reply: oneshot::Sender<Answer>,
}

/// How the pool runs.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub python: PathBuf,
    pub model_dir: PathBuf,
    pub workers: usize,
    pub max_batch_rows: usize,
    pub timeout: Duration,
    /// Where worker.py is written.
    pub script_dir: PathBuf,
}

/// A handle to the pool; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    queue: mpsc::Sender<Job>,
}

impl Pool {
    /// Starts the workers and waits until each has loaded the model; a model that fails to
    /// load fails here, with the Python error on stderr.
    pub async fn start(config: PoolConfig) -> Result<Pool, String> {
        let script = write_script(&config.script_dir)?;
        let config = Arc::new(config);
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let rx = Arc::new(Mutex::new(rx));
        let mut procs = Vec::new();
        for _ in 0..config.workers {
            procs.push(Worker::spawn(&config, &script));
        }
        for (i, proc) in futures::future::join_all(procs)
            .await
            .into_iter()
            .enumerate()
        {
            let proc =
                proc.map_err(|e| format!("the model's Python worker failed to start: {e}"))?;
            let (config, script, rx) = (config.clone(), script.clone(), rx.clone());
            tokio::spawn(run_worker(i, proc, config, script, rx));
        }
        Ok(Pool { queue: tx })
    }

    /// Scores one request.
    pub async fn score(&self, payload: Payload) -> Answer {
        let (message, rows) = match payload {
            Payload::Frame { frame, params } => {
                let rows = frame.rows.len().max(1);
                (
                    json!({"kind": "frame", "columns": frame.columns, "data": frame.rows, "params": params}),
                    rows,
                )
            }
            Payload::Json { body, .. } => (
                json!({"kind": "text", "body": body, "content_type": "application/json"}),
                1,
            ),
            Payload::Csv { body } => (
                json!({"kind": "text", "body": body, "content_type": "text/csv"}),
                1,
            ),
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            message,
            rows,
            reply,
        };
        if self.queue.send(job).await.is_err() {
            return ScoringError::internal("the model's worker pool has stopped").into();
        }
        answer.await.unwrap_or_else(|_| {
            ScoringError::internal("the model's worker pool dropped the request").into()
        })
    }
}

/// worker.py under a name of its contents, written atomically: concurrent servers share it.
fn write_script(dir: &Path) -> Result<PathBuf, String> {
    let hash = super::cache::sha256_hex(WORKER_PY.as_bytes());
    let script = dir.join(format!("worker-{}.py", &hash[..12]));
    if script.exists() {
        return Ok(script);
    }
    let tmp = dir.join(format!("worker.py.{}", std::process::id()));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, WORKER_PY))
        .and_then(|()| std::fs::rename(&tmp, &script))
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    Ok(script)
}

/// One worker process and its pipes.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl Worker {
    async fn spawn(config: &PoolConfig, script: &Path) -> Result<Worker, String> {
        let mut child = Command::new(&config.python)
            .arg("-u")
            .arg(script)
            .arg(&config.model_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", config.python.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the worker has no pipes".into());
        };
        let mut worker = Worker {
            child,
            stdin,
            stdout,
        };
        // Loading a large model can take minutes; a dead process answers at once.
        match tokio::time::timeout(Duration::from_secs(1800), worker.receive()).await {
            Ok(Ok(msg)) if msg["ready"] == json!(true) => Ok(worker),
            Ok(Ok(msg)) => Err(format!("unexpected first message {msg}")),
            Ok(Err(_)) => Err(format!(
                "it exited ({}) while loading the model; its error is above",
                worker.exit_status().await
            )),
            Err(_) => Err("it did not load the model within 30 minutes".into()),
        }
    }

    async fn send(&mut self, msg: &Value) -> std::io::Result<()> {
        let data = serde_json::to_vec(msg)?;
        let len =
            u32::try_from(data.len()).map_err(|_| std::io::Error::other("a batch over 4 GiB"))?;
        self.stdin.write_all(&len.to_be_bytes()).await?;
        self.stdin.write_all(&data).await?;
        self.stdin.flush().await
    }

    async fn receive(&mut self) -> std::io::Result<Value> {
        let mut len = [0u8; 4];
        self.stdout.read_exact(&mut len).await?;
        let mut data = vec![0u8; u32::from_be_bytes(len) as usize];
        self.stdout.read_exact(&mut data).await?;
        Ok(serde_json::from_slice(&data)?)
    }

    /// One batch round trip.
    async fn exchange(&mut self, jobs: &[Value]) -> std::io::Result<Vec<Value>> {
        self.send(&json!({ "jobs": jobs })).await?;
        let reply = self.receive().await?;
        match reply.get("results").and_then(Value::as_array) {
            Some(results) if results.len() == jobs.len() => Ok(results.clone()),
            _ => Err(std::io::Error::other("a reply without one result per job")),
        }
    }

    async fn exit_status(&mut self) -> String {
        let _ = self.child.start_kill();
        match self.child.wait().await {
            Ok(status) => status.to_string(),
            Err(e) => format!("status unknown: {e}"),
        }
    }
}

/// Why a round trip gave no answers.
enum Failure {
    Died(String),
    Timeout,
}

async fn run_worker(
    index: usize,
    first: Worker,
    config: Arc<PoolConfig>,
    script: PathBuf,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
) {
    let mut proc = Some(first);
    loop {
        let jobs = {
            let mut rx = queue.lock().await;
            let Some(job) = rx.recv().await else {
                return;
            };
            let mut rows = job.rows;
            let mut jobs = vec![job];
            while rows < config.max_batch_rows {
                match rx.try_recv() {
                    Ok(job) => {
                        rows += job.rows;
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            jobs
        };
        match round_trip(index, &mut proc, &config, &script, &jobs).await {
            Ok(answers) => deliver(jobs, answers),
            Err(Failure::Timeout) => {
                for job in jobs {
                    let _ = job.reply.send(Answer {
                        status: 504,
                        content_type: "application/json".into(),
                        body: "Request processing time exceeded limit".into(),
                    });
                }
            }
            Err(Failure::Died(why)) if jobs.len() == 1 => {
                for job in jobs {
                    let _ = job.reply.send(died(&why));
                }
            }
            Err(Failure::Died(_)) => {
                // Find the request that killed it: each alone on a fresh process.
                for job in jobs {
                    let answer = match round_trip(
                        index,
                        &mut proc,
                        &config,
                        &script,
                        std::slice::from_ref(&job),
                    )
                    .await
                    {
                        Ok(mut answers) => answers.pop().unwrap_or_else(|| died("no answer")),
                        Err(Failure::Timeout) => Answer {
                            status: 504,
                            content_type: "application/json".into(),
                            body: "Request processing time exceeded limit".into(),
                        },
                        Err(Failure::Died(why)) => died(&why),
                    };
                    let _ = job.reply.send(answer);
                }
            }
        }
    }
}

fn died(why: &str) -> Answer {
    ScoringError::internal(format!(
        "The model's Python worker process died while predicting this request ({why}); it \
         has been restarted."
    ))
    .into()
}

/// Sends `jobs` to the worker, (re)starting its process first when needed.
async fn round_trip(
    index: usize,
    proc: &mut Option<Worker>,
    config: &PoolConfig,
    script: &Path,
    jobs: &[Job],
) -> Result<Vec<Answer>, Failure> {
    if proc.is_none() {
        tracing::warn!(worker = index, "starting a new Python worker");
        match Worker::spawn(config, script).await {
            Ok(w) => *proc = Some(w),
            Err(e) => {
                // Do not spin on a model that no longer loads.
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Err(Failure::Died(format!("a new worker failed to start: {e}")));
            }
        }
    }
    let Some(worker) = proc.as_mut() else {
        return Err(Failure::Died("no worker".into()));
    };
    let messages: Vec<Value> = jobs.iter().map(|j| j.message.clone()).collect();
    match tokio::time::timeout(config.timeout, worker.exchange(&messages)).await {
        Ok(Ok(results)) => Ok(results.iter().map(answer_of).collect()),
        Ok(Err(e)) => {
            let status = worker.exit_status().await;
            tracing::error!(worker = index, %status, error = %e, requests = jobs.len(),
                "a Python worker died; restarting it");
            *proc = None;
            Err(Failure::Died(status))
        }
        Err(_) => {
            let _ = worker.exit_status().await;
            tracing::error!(worker = index, timeout = ?config.timeout, requests = jobs.len(),
                "a batch overran the request timeout; its Python worker is replaced");
            *proc = None;
            Err(Failure::Timeout)
        }
    }
}

fn answer_of(result: &Value) -> Answer {
    Answer {
        status: result["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(500),
        content_type: result["content_type"]
            .as_str()
            .unwrap_or("application/json")
            .to_string(),
        body: result["body"].as_str().unwrap_or_default().to_string(),
    }
}

fn deliver(jobs: Vec<Job>, answers: Vec<Answer>) {
    for (job, answer) in jobs.into_iter().zip(answers) {
        let _ = job.reply.send(answer);
    }
}
