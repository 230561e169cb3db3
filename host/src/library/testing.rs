//! A port for tests: a [`SqliteLibrary`] whose `save_all` is the trait's default, or a
//! test's own.

use super::{
    Book, BookProgress, Library, LibraryError, LibraryPort, Page, ReadingChanges, Save, Series, SeriesRating,
    SqliteLibrary, save_one_by_one,
};

type SaveAll = Box<dyn Fn(&[Save]) -> Vec<Result<i64, LibraryError>> + Send + Sync>;

pub struct WithSaveAll {
    inner: SqliteLibrary,
    save_all: Option<SaveAll>,
}

impl WithSaveAll {
    pub fn new(inner: SqliteLibrary, save_all: Option<SaveAll>) -> Self {
        Self { inner, save_all }
    }
}

impl LibraryPort for WithSaveAll {
    fn libraries(&self) -> Result<Vec<Library>, LibraryError> {
        self.inner.libraries()
    }
    fn library(&self, id: &str) -> Result<Library, LibraryError> {
        self.inner.library(id)
    }
    fn save_library(&self, library: &Library) -> Result<(), LibraryError> {
        self.inner.save_library(library)
    }
    fn series_page(&self, library: &str, after: Option<&str>, limit: usize) -> Result<Page, LibraryError> {
        self.inner.series_page(library, after, limit)
    }
    fn series(&self, id: &str) -> Result<Series, LibraryError> {
        self.inner.series(id)
    }
    fn series_by_external_id(&self, source: &str, external_id: &str) -> Result<Vec<String>, LibraryError> {
        self.inner.series_by_external_id(source, external_id)
    }
    fn save_series(&self, series: &Series) -> Result<i64, LibraryError> {
        self.inner.save_series(series)
    }
    fn books(&self, series: &str) -> Result<Vec<Book>, LibraryError> {
        self.inner.books(series)
    }
    fn book(&self, id: &str) -> Result<Book, LibraryError> {
        self.inner.book(id)
    }
    fn save_book(&self, book: &Book) -> Result<i64, LibraryError> {
        self.inner.save_book(book)
    }
    fn save_all(&self, saves: &[Save]) -> Vec<Result<i64, LibraryError>> {
        match &self.save_all {
            Some(save_all) => save_all(saves),
            None => save_one_by_one(self, saves),
        }
    }
    fn progress(&self, user: &str, series: &str) -> Result<Vec<BookProgress>, LibraryError> {
        self.inner.progress(user, series)
    }
    fn save_progress(&self, user: &str, progress: &BookProgress) -> Result<(), LibraryError> {
        self.inner.save_progress(user, progress)
    }
    fn rating(&self, user: &str, series: &str) -> Result<Option<SeriesRating>, LibraryError> {
        self.inner.rating(user, series)
    }
    fn save_rating(&self, user: &str, rating: &SeriesRating) -> Result<(), LibraryError> {
        self.inner.save_rating(user, rating)
    }
    fn series_with_source(&self, source: &str) -> Result<Vec<(String, String)>, LibraryError> {
        self.inner.series_with_source(source)
    }
    fn series_read_by(&self, user: &str) -> Result<Vec<String>, LibraryError> {
        self.inner.series_read_by(user)
    }
    fn apply_reading(&self, user: &str, changes: &ReadingChanges) -> Result<(), LibraryError> {
        self.inner.apply_reading(user, changes)
    }
    fn tracked_series(&self, offset: u64, limit: usize) -> Result<Vec<Series>, LibraryError> {
        self.inner.tracked_series(offset, limit)
    }
    fn count_tracked(&self) -> Result<u64, LibraryError> {
        self.inner.count_tracked()
    }
    fn raise_latest_known(&self, series: &str, chapter: Option<f64>, volume: Option<f64>) -> Result<(), LibraryError> {
        self.inner.raise_latest_known(series, chapter, volume)
    }
    fn set_latest_known(&self, series: &str, chapter: Option<f64>, volume: Option<f64>) -> Result<(), LibraryError> {
        self.inner.set_latest_known(series, chapter, volume)
    }
}
