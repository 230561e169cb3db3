//! One job per key at a time in this host: a second request for a key whose job runs
//! joins it and gets the same answer. The job runs on a task of its own, so it finishes
//! (and records what it did) even if everyone waiting for it goes away.

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A job's answer, as every waiter gets it.
pub type Answer<T> = Result<Arc<T>, Arc<str>>;
pub type Running<T> = Shared<BoxFuture<'static, Answer<T>>>;

/// Jobs in flight by (plugin, user).
pub struct SingleFlight<T> {
    running: Mutex<HashMap<(String, String), Running<T>>>,
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        Self { running: Mutex::new(HashMap::new()) }
    }
}

impl<T: Send + Sync + 'static> SingleFlight<T> {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), Running<T>>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The running job of `key`, or the one `start` makes (`start` may refuse).
    pub fn join_or_start<F, E>(
        self: &Arc<Self>,
        key: (String, String),
        start: impl FnOnce() -> Result<F, E>,
    ) -> Result<Running<T>, E>
    where
        F: Future<Output = Result<T, String>> + Send + 'static,
    {
        let mut running = self.lock();
        if let Some(job) = running.get(&key) {
            return Ok(job.clone());
        }
        let job = start()?;
        let (this, done) = (self.clone(), key.clone());
        // It removes itself once it ends; the map's lock, held here until it is inserted,
        // keeps that removal after the insertion.
        let task = tokio::spawn(async move {
            // Removed however the job ends, a panic included.
            let _done = Done(this, done);
            job.await.map(Arc::new).map_err(Arc::from)
        });
        let joined = async move { task.await.unwrap_or_else(|error| Err(Arc::from(format!("it stopped: {error}")))) }
            .boxed()
            .shared();
        running.insert(key, joined.clone());
        Ok(joined)
    }

    pub fn is_running(&self, key: &(String, String)) -> bool {
        self.lock().contains_key(key)
    }

    /// Every job running now.
    pub fn all(&self) -> Vec<Running<T>> {
        self.lock().values().cloned().collect()
    }
}

/// Removes its key from the map when dropped.
struct Done<T: Send + Sync + 'static>(Arc<SingleFlight<T>>, (String, String));

impl<T: Send + Sync + 'static> Drop for Done<T> {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}
