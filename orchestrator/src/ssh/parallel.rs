//! Fan a step out over many nodes with bounded concurrency, one result per node.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Error, Target};

/// Nodes worked on at once by `up`, `status` and `down`: enough that a lab of a hundred
/// starts every handshake at once (they wait on the network and the nodes' sshd more
/// than on us).
pub const PARALLEL: usize = 100;

/// Runs `f` on every target, at most `limit` at a time, and returns `(node, result)` in
/// the order of `targets`. A failing (or panicking) node never stops the others.
pub async fn run_parallel<T, F, Fut>(targets: &[Target], limit: usize, f: F) -> Vec<(String, Result<T, Error>)>
where
    T: Send + 'static,
    F: Fn(Target) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, Error>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let f = Arc::new(f);
    let mut tasks = JoinSet::new();
    let mut ids = std::collections::HashMap::new();
    for (index, target) in targets.iter().cloned().enumerate() {
        let (permits, f) = (permits.clone(), f.clone());
        let handle = tasks.spawn(async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = permits.acquire_owned().await.ok();
            (index, f(target).await)
        });
        ids.insert(handle.id(), index);
    }
    let mut results: Vec<Option<Result<T, Error>>> = targets.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, (index, result))) => results[index] = Some(result),
            Err(e) => {
                let index = ids[&e.id()];
                results[index] = Some(Err(Error::Panicked { node: targets[index].node.clone() }));
            }
        }
    }
    targets
        .iter()
        .zip(results)
        .map(|(target, result)| {
            let result = result.unwrap_or_else(|| Err(Error::Panicked { node: target.node.clone() }));
            (target.node.clone(), result)
        })
        .collect()
}
