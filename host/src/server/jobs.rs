//! Long jobs started over HTTP (a library's auto-match, a sync, a poll): each runs on a
//! task of its own under an id; its state (running, its latest progress, its result or
//! error) can be read at any time or followed as it changes. A job belongs to whoever
//! started it: a user sees only their own, an admin every job.

use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

use super::error::ApiError;
use crate::access::Principal;

/// Finished jobs kept for reading per owner, the owner's oldest forgotten first: a user
/// who starts job after job forgets only their own.
const FINISHED_KEPT_PER_OWNER: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
}

/// A job as a reader sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobState {
    pub id: String,
    pub kind: &'static str,
    pub status: JobStatus,
    /// What it works on (the plugin and user of a sync, the library of an auto-match).
    pub subject: Value,
    /// Its latest progress, as its kind reports it.
    pub progress: Option<Value>,
    /// How many progress reports it made.
    pub updates: u64,
    pub result: Option<Value>,
    pub error: Option<String>,
    /// Microseconds since the epoch.
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

struct Job {
    owner: Principal,
    state: watch::Sender<JobState>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Tells a job's readers how far it got.
#[derive(Clone)]
pub struct Progress(watch::Sender<JobState>);

impl Progress {
    pub fn report(&self, progress: Value) {
        self.0.send_modify(|state| {
            state.progress = Some(progress);
            state.updates += 1;
        });
    }
}

/// This server's jobs.
#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    /// Finished jobs' ids by owner, oldest first.
    finished: Mutex<HashMap<Principal, std::collections::VecDeque<String>>>,
}

impl Jobs {
    /// Starts `work` as a job of `kind` owned by `owner`; answers its first state.
    pub fn start<F, W>(self: &Arc<Self>, kind: &'static str, owner: &Principal, subject: Value, work: W) -> JobState
    where
        W: FnOnce(Progress) -> F,
        F: Future<Output = Result<Value, ApiError>> + Send + 'static,
    {
        let state = JobState {
            id: uuid::Uuid::new_v4().simple().to_string(),
            kind,
            status: JobStatus::Running,
            subject,
            progress: None,
            updates: 0,
            result: None,
            error: None,
            started_at: chrono::Utc::now().timestamp_micros(),
            finished_at: None,
        };
        let first = state.clone();
        let (sender, _) = watch::channel(state);
        let job = Arc::new(Job { owner: owner.clone(), state: sender.clone(), task: Mutex::new(None) });
        self.lock().insert(first.id.clone(), job.clone());
        let work = work(Progress(sender.clone()));
        let jobs = Arc::downgrade(self);
        let (id, owner) = (first.id.clone(), owner.clone());
        let task = tokio::spawn(async move {
            // A job that panics ends failed, not running for ever.
            let outcome =
                futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(work)).await.unwrap_or_else(|_| {
                    Err(ApiError::internal("the job stopped on an internal error (the server's log says where)"))
                });
            sender.send_modify(|state| {
                state.finished_at = Some(chrono::Utc::now().timestamp_micros());
                match outcome {
                    Ok(result) => (state.status, state.result) = (JobStatus::Succeeded, Some(result)),
                    Err(error) => (state.status, state.error) = (JobStatus::Failed, Some(error.message)),
                }
            });
            if let Some(jobs) = jobs.upgrade() {
                jobs.forget_old(owner, id);
            }
        });
        *job.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
        first
    }

    /// The job `id` as `caller` may see it: another user's job is as unknown as a missing one.
    pub fn watch(&self, id: &str, caller: &Principal) -> Result<watch::Receiver<JobState>, ApiError> {
        let job = self.lock().get(id).cloned();
        match job {
            Some(job) if caller.is_admin() || job.owner == *caller => Ok(job.state.subscribe()),
            _ => Err(ApiError::not_found(format!("no job `{id}` of yours; `GET /api/v1/jobs` lists them"))),
        }
    }

    /// The jobs `caller` may see, newest first.
    pub fn list(&self, caller: &Principal) -> Vec<JobState> {
        let mut jobs: Vec<JobState> = self
            .lock()
            .values()
            .filter(|job| caller.is_admin() || job.owner == *caller)
            .map(|job| job.state.borrow().clone())
            .collect();
        jobs.sort_by_key(|job| std::cmp::Reverse(job.started_at));
        jobs
    }

    /// Waits up to `grace` for running jobs to end, then stops the rest (what they
    /// committed stays; a sync's lease is given back by the shutdown).
    pub async fn stop(&self, grace: Duration) {
        let running: Vec<Arc<Job>> = self.lock().values().cloned().collect();
        let deadline = tokio::time::Instant::now() + grace;
        for job in running {
            let task = job.task.lock().unwrap_or_else(PoisonError::into_inner).take();
            let Some(mut task) = task else { continue };
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                tracing::warn!(job = job.state.borrow().id, "a job did not end within the grace period; stopped");
                task.abort();
                let _ = task.await;
            }
        }
    }

    fn forget_old(&self, owner: Principal, finished: String) {
        let mut by_owner = self.finished.lock().unwrap_or_else(PoisonError::into_inner);
        let order = by_owner.entry(owner).or_default();
        order.push_back(finished);
        while order.len() > FINISHED_KEPT_PER_OWNER {
            if let Some(oldest) = order.pop_front() {
                self.lock().remove(&oldest);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_job_reports_progress_then_its_result_to_its_owner_only() {
        let jobs = Arc::new(Jobs::default());
        let alice = Principal::User("alice".into());
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let started = jobs.start("sync", &alice, json!({"user": "alice"}), |progress| async move {
            progress.report(json!({"pages": 1}));
            released.await.map_err(|_| ApiError::internal("dropped"))?;
            Ok(json!({"pulled": 3}))
        });
        assert_eq!(started.status, JobStatus::Running);
        let mut state = jobs.watch(&started.id, &alice).expect("the owner sees it");
        state.wait_for(|state| state.updates == 1).await.expect("progress");
        assert_eq!(state.borrow().progress, Some(json!({"pages": 1})));
        release.send(()).expect("the job waits");
        let done = state.wait_for(|state| state.status != JobStatus::Running).await.expect("an end").clone();
        assert_eq!((done.status, done.result), (JobStatus::Succeeded, Some(json!({"pulled": 3}))));
        assert!(jobs.watch(&started.id, &Principal::User("bob".into())).is_err(), "bob does not see alice's job");
        assert!(jobs.watch(&started.id, &Principal::Admin).is_ok());
        assert_eq!(jobs.list(&Principal::User("bob".into())).len(), 0);
    }

    #[tokio::test]
    async fn a_failed_job_keeps_its_error() {
        let jobs = Arc::new(Jobs::default());
        let started = jobs
            .start("poll", &Principal::Admin, Value::Null, |_| async { Err(ApiError::bad_request("no such source")) });
        let mut state = jobs.watch(&started.id, &Principal::Admin).expect("visible");
        let done = state.wait_for(|state| state.status != JobStatus::Running).await.expect("an end").clone();
        assert_eq!((done.status, done.error.as_deref()), (JobStatus::Failed, Some("no such source")));
    }

    #[tokio::test]
    async fn a_job_that_panics_ends_failed() {
        let jobs = Arc::new(Jobs::default());
        let started = jobs.start("poll", &Principal::Admin, Value::Null, |_| async { panic!("a bug in the job") });
        let mut state = jobs.watch(&started.id, &Principal::Admin).expect("visible");
        let done = state.wait_for(|state| state.status != JobStatus::Running).await.expect("an end").clone();
        assert_eq!(done.status, JobStatus::Failed, "{done:?}");
        assert!(done.error.unwrap().contains("internal error"));
    }

    #[tokio::test]
    async fn a_user_starting_job_after_job_forgets_only_their_own() {
        let jobs = Arc::new(Jobs::default());
        let (alice, mallory) = (Principal::User("alice".into()), Principal::User("mallory".into()));
        let finished = |jobs: &Arc<Jobs>, owner: &Principal| {
            let started = jobs.start("sync", owner, Value::Null, |_| async { Ok(Value::Null) });
            let mut state = jobs.watch(&started.id, owner).expect("visible");
            async move {
                state.wait_for(|state| state.status != JobStatus::Running).await.expect("an end");
                started.id
            }
        };
        let alices = finished(&jobs, &alice).await;
        let mut mallorys = Vec::new();
        for _ in 0..FINISHED_KEPT_PER_OWNER + 5 {
            mallorys.push(finished(&jobs, &mallory).await);
        }
        // The forgetting happens after the state turns; let it.
        tokio::task::yield_now().await;
        for _ in 0..100 {
            if jobs.list(&mallory).len() == FINISHED_KEPT_PER_OWNER {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(jobs.watch(&alices, &alice).is_ok(), "alice's result outlives mallory's flood");
        assert_eq!(jobs.list(&mallory).len(), FINISHED_KEPT_PER_OWNER);
        assert!(jobs.watch(&mallorys[0], &mallory).is_err(), "mallory's oldest is forgotten");
        assert!(jobs.watch(mallorys.last().unwrap(), &mallory).is_ok());
    }
}
