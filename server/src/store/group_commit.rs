//! Group commit for the writer.
//!
//! Small writes (log-metric, log-param, set-tag, log-batch) queue here; one task takes
//! whatever has queued up, applies it in one transaction and commits once, then answers
//! every request. Each request is still acknowledged only after its data is committed.
//! Within a group, plain metric writes are merged into one run check, one insert and one
//! latest-metric upsert; the others are applied one after the other.
//! If any write in a group fails (a changed param, a deleted run), the group is rolled
//! back and every write is retried in a transaction of its own, so one bad request never
//! affects another and a rejected batch writes nothing. On PostgreSQL and MySQL a group can
//! also lose a deadlock against another server process: it is then retried the same way, and
//! each single write retries its own conflicts.

use tokio::sync::{mpsc, oneshot};

use super::runs::{Batch, MetricRow};
use super::Store;
use crate::error::{ErrorCode, MlflowError, Result};

/// Most entities (metrics + params + tags) committed in one group.
const MAX_GROUP_ENTITIES: usize = 20_000;
const QUEUE_DEPTH: usize = 4096;

struct Pending {
    run_id: String,
    batch: Batch,
    done: oneshot::Sender<Result<()>>,
}

impl Pending {
    /// Only metrics, none of them a logged model's: the writes a group can merge.
    fn metrics_only(&self) -> bool {
        self.batch.params.is_empty()
            && self.batch.tags.is_empty()
            && self.batch.metrics.iter().all(|m| m.model_id.is_none())
    }

    fn size(&self) -> usize {
        1 + self.batch.metrics.len() + self.batch.params.len() + self.batch.tags.len()
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

    /// Queues a batch and waits until it is committed (or rejected).
    pub async fn submit(&self, run_id: String, batch: Batch) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending {
                run_id,
                batch,
                done,
            })
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
    let (plain, other): (Vec<&Pending>, Vec<&Pending>) =
        group.iter().partition(|p| p.metrics_only());
    // Begun like every write transaction, but not retried as a whole: a failed group is
    // answered write by write.
    let mut tx = store.begin_write().await?;
    for p in other {
        store.apply_batch(&mut tx, &p.run_id, &p.batch).await?;
    }
    // Plain metric writes (log-metric, metric-only log-batch) are merged: one run check, one
    // insert and one latest-metric upsert for the whole group, so a hundred requests logging
    // one key cost three statements and one latest-row update, not three hundred and a
    // hundred. Any rejected write fails the group, and the one-by-one retry answers it.
    let mut run_ids: Vec<&str> = plain.iter().map(|p| p.run_id.as_str()).collect();
    run_ids.sort_unstable();
    run_ids.dedup();
    store.check_active_runs(&mut tx, &run_ids).await?;
    let rows: Vec<MetricRow> = plain
        .iter()
        .flat_map(|p| {
            p.batch.metrics.iter().map(|metric| MetricRow {
                run_id: &p.run_id,
                metric,
            })
        })
        .collect();
    store.insert_metrics(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(())
}

async fn apply_one(store: &Store, p: &Pending) -> Result<()> {
    store
        .write(|tx, _| Box::pin(store.apply_batch(tx, &p.run_id, &p.batch)))
        .await
}
