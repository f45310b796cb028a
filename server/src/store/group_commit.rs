//! Group commit for the writer.
//!
//! Small writes (log-metric, log-param, set-tag, log-batch, OTLP span batches) queue here;
//! one task takes
//! whatever has queued up, applies it in one transaction and commits once, then answers
//! every request. Each request is still acknowledged only after its data is committed.
//! Within a group, plain metric writes are merged into one run check, one insert and one
//! latest-metric upsert, and span batches of one experiment with distinct traces are
//! written as one batch; the others are applied one after the other.
//! If any write in a group fails (a changed param, a deleted run), the group is rolled
//! back and every write is retried in a transaction of its own, so one bad request never
//! affects another and a rejected batch writes nothing. On PostgreSQL and MySQL a group can
//! also lose a deadlock against another server process: it is then retried the same way, and
//! each single write retries its own conflicts.

use tokio::sync::{mpsc, oneshot};

use super::runs::{Batch, MetricRow};
use super::traces::SpanBatch;
use super::Store;
use crate::error::{ErrorCode, MlflowError, Result};

/// Most entities (metrics + params + tags) committed in one group.
const MAX_GROUP_ENTITIES: usize = 20_000;
const QUEUE_DEPTH: usize = 4096;

/// One queued write.
enum Write {
    /// A log-batch (log-metric, log-param and set-tag are batches of one) of a run.
    Batch { run_id: String, batch: Batch },
    /// An OTLP span batch.
    Spans(SpanBatch),
}

struct Pending {
    write: Write,
    done: oneshot::Sender<Result<()>>,
}

impl Pending {
    /// The run batch, when it holds only metrics, none of them a logged model's: the writes
    /// a group can merge.
    fn plain_metrics(&self) -> Option<(&str, &Batch)> {
        match &self.write {
            Write::Batch { run_id, batch }
                if batch.params.is_empty()
                    && batch.tags.is_empty()
                    && batch.metrics.iter().all(|m| m.model_id.is_none()) =>
            {
                Some((run_id, batch))
            }
            _ => None,
        }
    }

    fn size(&self) -> usize {
        match &self.write {
            Write::Batch { batch, .. } => {
                1 + batch.metrics.len() + batch.params.len() + batch.tags.len()
            }
            Write::Spans(spans) => 1 + spans.len(),
        }
    }
}

/// Handle for submitting writes to the group-commit task.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Pending>,
}

fn stopped() -> MlflowError {
    MlflowError::new(
        ErrorCode::TemporarilyUnavailable,
        "The server is shutting down; the write was not applied.",
    )
}

impl GroupCommit {
    /// Starts the task; `store` must not itself route through a queue.
    pub fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(store, rx));
        GroupCommit { tx }
    }

    /// Queues a run's batch and waits until it is committed (or rejected).
    pub async fn submit(&self, run_id: String, batch: Batch) -> Result<()> {
        self.queue(Write::Batch { run_id, batch }).await
    }

    /// Queues a span batch and waits until it is committed (or rejected).
    pub async fn submit_spans(&self, spans: SpanBatch) -> Result<()> {
        self.queue(Write::Spans(spans)).await
    }

    async fn queue(&self, write: Write) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending { write, done })
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut size = first.size();
        let mut group = vec![first];
        while size < MAX_GROUP_ENTITIES {
            match rx.try_recv() {
                Ok(next) => {
                    size += next.size();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        commit_group(&store, group).await;
    }
}

async fn commit_group(store: &Store, group: Vec<Pending>) {
    if group.len() > 1 {
        match apply_all(store, &group).await {
            Ok(()) => {
                for p in group {
                    let _ = p.done.send(Ok(()));
                }
                return;
            }
            // The database is out of reach (not a conflict, not a bad write): retrying each
            // write alone would make every queued request wait out the pool timeout again, one
            // after the other. Answer them all with the 503 now.
            Err(err)
                if err.code == ErrorCode::TemporarilyUnavailable
                    && !super::is_conflict_error(&err) =>
            {
                for p in group {
                    let _ = p.done.send(Err(err.clone()));
                }
                return;
            }
            Err(err) => {
                tracing::debug!(error = %err, size = group.len(), "group rolled back; retrying one by one");
            }
        }
    }
    for p in group {
        let result = apply_one(store, &p).await;
        let _ = p.done.send(result);
    }
}

async fn apply_all(store: &Store, group: &[Pending]) -> Result<()> {
    let mut plain: Vec<(&str, &Batch)> = Vec::new();
    let mut spans: Vec<&SpanBatch> = Vec::new();
    // Begun like every write transaction, but not retried as a whole: a failed group is
    // answered write by write.
    let mut tx = store.begin_write().await?;
    for p in group {
        if let Some(metrics) = p.plain_metrics() {
            plain.push(metrics);
            continue;
        }
        match &p.write {
            Write::Batch { run_id, batch } => store.apply_batch(&mut tx, run_id, batch).await?,
            Write::Spans(batch) => spans.push(batch),
        }
    }
    // Plain metric writes (log-metric, metric-only log-batch) are merged: one run check, one
    // insert and one latest-metric upsert for the whole group, so a hundred requests logging
    // one key cost three statements and one latest-row update, not three hundred and a
    // hundred. Any rejected write fails the group, and the one-by-one retry answers it.
    if !plain.is_empty() {
        let mut run_ids: Vec<&str> = plain.iter().map(|(run_id, _)| *run_id).collect();
        run_ids.sort_unstable();
        run_ids.dedup();
        store.check_active_runs(&mut tx, &run_ids).await?;
        let rows: Vec<MetricRow> = plain
            .iter()
            .flat_map(|(run_id, batch)| {
                batch
                    .metrics
                    .iter()
                    .map(move |metric| MetricRow { run_id, metric })
            })
            .collect();
        store.insert_metrics(&mut tx, &rows).await?;
    }
    if !spans.is_empty() {
        store.log_span_batches(&mut tx, &spans).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn apply_one(store: &Store, p: &Pending) -> Result<()> {
    store
        .write(|tx, _| {
            Box::pin(async move {
                match &p.write {
                    Write::Batch { run_id, batch } => store.apply_batch(tx, run_id, batch).await,
                    Write::Spans(spans) => store.log_span_batches(tx, &[spans]).await,
                }
            })
        })
        .await
}
