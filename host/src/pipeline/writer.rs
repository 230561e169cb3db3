//! The pipeline's one writer: every save of a series or book goes through it. A save that
//! arrives while the writer is idle is written at once; saves that arrive while a commit is
//! under way wait and go together in the next, through the library port's `save_all`
//! (each whole or not at all, one commit for all). So one item alone waits for nothing,
//! and a library run's items in flight share commits: the commit, not the rows, is what a
//! save costs (the pipeline bench).
//!
//! Written by hand: a standard channel drained after each commit is all that group commit
//! needs here; a batching crate would add a size or a timer to wait for, and a save must
//! never wait for either.

use std::sync::{Arc, mpsc};
use tokio::sync::oneshot;

use super::PipelineError;
use crate::library::{LibraryError, LibraryPort, Save};

/// The most saves one commit takes.
const MOST_AT_ONCE: usize = 64;

type Job = (Save, oneshot::Sender<Result<i64, LibraryError>>);

/// The queue to the writer thread, which ends when the last pipeline holding it is dropped.
pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(library: Arc<dyn LibraryPort>) -> Result<Self, std::io::Error> {
        let (queue, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("library-writer".into())
            .spawn(move || write_until_closed(library.as_ref(), &jobs))?;
        Ok(Self { queue })
    }

    /// Writes `save`; answers its new revision.
    pub async fn save(&self, save: Save) -> Result<i64, PipelineError> {
        self.queue(save)?.await
    }

    /// Queues `save` now; the future answers when it is written.
    fn queue(&self, save: Save) -> Result<impl Future<Output = Result<i64, PipelineError>>, PipelineError> {
        let (answer, answered) = oneshot::channel();
        let stopped = || PipelineError::Writer("has stopped; nothing more is written until the host restarts".into());
        self.queue.send((save, answer)).map_err(|_| stopped())?;
        Ok(async move {
            match answered.await {
                Ok(written) => Ok(written?),
                Err(_) => Err(PipelineError::Writer(
                    "stopped before it answered: this save may or may not have been written".into(),
                )),
            }
        })
    }
}

fn write_until_closed(library: &dyn LibraryPort, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MOST_AT_ONCE
            && let Ok(next) = jobs.try_recv()
        {
            batch.push(next);
        }
        // A job given up while it waited (its run stopped) is not written.
        batch.retain(|(_, answer)| !answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        let (saves, answers): (Vec<Save>, Vec<_>) = batch.into_iter().unzip();
        let results = library.save_all(&saves);
        if results.len() != saves.len() {
            tracing::error!("the library port answered {} of {} saves; the writer stops", results.len(), saves.len());
            return;
        }
        for (answer, result) in answers.into_iter().zip(results) {
            // A job dropped while waiting (an interrupted run) no longer wants its answer.
            let _ = answer.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::testing::WithSaveAll;
    use crate::library::{LibraryFile, SqliteLibrary};
    use std::sync::Mutex;
    use std::sync::mpsc::{Receiver, sync_channel};
    use std::time::Duration;

    fn sample() -> (tempfile::TempDir, SqliteLibrary) {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteLibrary::open(&dir.path().join("host.sqlite3")).unwrap();
        let sample = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/sample-library.json"));
        LibraryFile::parse(&sample.unwrap()).unwrap().import(&sqlite).unwrap();
        (dir, sqlite)
    }

    /// The sample library behind a port whose `save_all` notes each batch's size, and holds
    /// the first batch until `release` is sent.
    fn gated(batches: Arc<Mutex<Vec<usize>>>, release: Receiver<()>) -> (tempfile::TempDir, Arc<WithSaveAll>) {
        let (dir, sqlite) = sample();
        let release = Mutex::new(release);
        let save_all = move |saves: &[Save]| {
            let first = {
                let mut batches = batches.lock().unwrap();
                batches.push(saves.len());
                batches.len() == 1
            };
            if first {
                release.lock().unwrap().recv_timeout(Duration::from_secs(10)).expect("released");
            }
            saves
                .iter()
                .map(|save| match save {
                    Save::Series(series) => Ok(series.revision + 100),
                    Save::Book(book) => Ok(book.revision + 200),
                })
                .collect()
        };
        (dir, Arc::new(WithSaveAll::new(sqlite, Some(Box::new(save_all)))))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn saves_that_arrive_during_a_commit_share_the_next_and_each_gets_its_own_answer() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let (release, released) = sync_channel(1);
        let (_dir, port) = gated(batches.clone(), released);
        let writer = Arc::new(Writer::start(port.clone()).unwrap());
        let series = |id: &str, revision: i64| {
            let mut series = port.series(id).unwrap();
            series.revision = revision;
            Save::Series(series)
        };
        let first = writer.queue(series("manga-monster", 1)).unwrap();
        while batches.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The first commit is under way: these wait, then go together; one of them is
        // given up before that, and is not written.
        let mut waiting = Vec::new();
        for (index, id) in ["manga-naruto", "manga-berserk", "manga-monster"].into_iter().enumerate() {
            waiting.push(writer.queue(series(id, 10 * (index as i64 + 1))).unwrap());
        }
        drop(writer.queue(series("manga-akira", 50)).unwrap());
        let mut book = port.book("manga-monster-v01").unwrap();
        book.revision = 7;
        let book_save = writer.queue(Save::Book(book)).unwrap();
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), 101);
        for (index, save) in waiting.into_iter().enumerate() {
            assert_eq!(save.await.unwrap(), 10 * (index as i64 + 1) + 100);
        }
        assert_eq!(book_save.await.unwrap(), 207);
        assert_eq!(*batches.lock().unwrap(), vec![1, 4]);
    }

    #[tokio::test]
    async fn a_port_answering_the_wrong_count_stops_the_writer_with_a_clear_error() {
        let (_dir, sqlite) = sample();
        let series = sqlite.series("manga-monster").unwrap();
        let broken = WithSaveAll::new(sqlite, Some(Box::new(|_: &[Save]| Vec::new())));
        let writer = Writer::start(Arc::new(broken)).unwrap();
        let error = writer.save(Save::Series(series.clone())).await.unwrap_err();
        assert!(error.to_string().contains("may or may not have been written"), "{error}");
        // Refused at once, or as the stopping writer lets go of its queue.
        let error = writer.save(Save::Series(series)).await.unwrap_err();
        assert!(error.to_string().starts_with("the library writer"), "{error}");
    }
}
