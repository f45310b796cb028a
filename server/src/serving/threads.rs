//! The threads that score natively: a fixed few, fed by one queue, so that concurrent
//! requests are scored one after the other on warm threads instead of each waking a thread
//! of tokio's blocking pool.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use super::pool::Answer;
use super::ScoringError;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct Threads {
    queue: Sender<Job>,
}

impl Threads {
    pub fn start(count: usize) -> Self {
        let (queue, jobs) = channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..count {
            let jobs = jobs.clone();
            // A thread that cannot start leaves the others; with none, run() answers 500.
            let _ = std::thread::Builder::new()
                .name(format!("scoring-{i}"))
                .spawn(move || work(&jobs));
        }
        Threads { queue }
    }

    /// Runs `score` on one of the threads.
    pub async fn run(&self, score: impl FnOnce() -> Answer + Send + 'static) -> Answer {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if let Ok(answer) = catch_unwind(AssertUnwindSafe(score)) {
                let _ = tx.send(answer);
            }
        });
        if self.queue.send(job).is_err() {
            return ScoringError::internal("the ONNX model failed: no scoring thread").into();
        }
        rx.await.unwrap_or_else(|_| {
            ScoringError::internal("the ONNX model failed: the scoring thread panicked").into()
        })
    }
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        job();
    }
}
