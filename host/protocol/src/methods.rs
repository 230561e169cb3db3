//! Every host → plugin method: its name, the capability it needs, and its typed params and
//! result. [`MethodSpec`] is the typed view (one marker type per method); [`HostMethod`]
//! is the same table by name, for callers that hold raw JSON (the command line).
//!
//! The plugin → host methods are `storage/*`, for every plugin, and a release source's
//! `releases/*` ([`crate::types::releases::RELEASE_HOST_METHODS`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::{Capabilities, Manifest};
use crate::types::initialize::{HOST_ONLY_NAMESPACE, InitializeParams};
use crate::types::metadata::{
    BookMatchParams, BookMetadata, BookSearchParams, GetParams, MatchResponse, SearchResponse, SeriesMatchParams,
    SeriesMetadata, SeriesSearchParams,
};
use crate::types::recommendations::{self, AnyObject, DismissParams, DismissResponse};
use crate::types::releases;
use crate::types::sync::{PullParams, PullResponse, PushParams, PushResponse, StatusResponse, UserInfo};

/// What a plugin must declare in its manifest before the host sends it a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    SeriesMetadata,
    BookMetadata,
    ReadSync,
    Recommendations,
    ReleaseSource,
}

impl Capability {
    /// Whether these capabilities include this one.
    pub fn is_declared_in(self, capabilities: &Capabilities) -> bool {
        match self {
            Self::SeriesMetadata => capabilities.provides_series(),
            Self::BookMetadata => capabilities.provides_books(),
            Self::ReadSync => capabilities.user_read_sync,
            Self::Recommendations => capabilities.user_recommendation_provider,
            Self::ReleaseSource => capabilities.release_source.is_some(),
        }
    }

    /// How the manifest says it, for error messages.
    pub fn manifest_form(self) -> &'static str {
        match self {
            Self::SeriesMetadata => "metadataProvider: [\"series\"]",
            Self::BookMetadata => "metadataProvider: [\"book\"]",
            Self::ReadSync => "userReadSync: true",
            Self::Recommendations => "userRecommendationProvider: true",
            Self::ReleaseSource => "releaseSource: {…}",
        }
    }
}

/// A host → plugin method, typed.
pub trait MethodSpec {
    const METHOD: HostMethod;
    type Params: Serialize + DeserializeOwned + CheckParams;
    type Result: Serialize + DeserializeOwned;
}

/// Rules on params beyond their shape (a book search needs an ISBN or a query), and what
/// of a caller's params the plugin must not see.
pub trait CheckParams {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// Removes from raw params what only the host reads.
    fn remove_host_only(_params: &mut Value) {}
}

impl CheckParams for InitializeParams {
    fn remove_host_only(params: &mut Value) {
        for config in ["config", "adminConfig", "userConfig"] {
            if let Some(Value::Object(config)) = params.get_mut(config) {
                config.remove(HOST_ONLY_NAMESPACE);
            }
        }
    }
}

impl CheckParams for BookSearchParams {
    fn check(&self) -> Result<(), String> {
        BookSearchParams::check(self)
    }
}

macro_rules! no_extra_checks {
    ($($params:ty),+ $(,)?) => { $(impl CheckParams for $params {})+ };
}
no_extra_checks!(
    NoParams,
    EmptyParams,
    releases::PollParams,
    SeriesSearchParams,
    GetParams,
    SeriesMatchParams,
    BookMatchParams,
    PullParams,
    PushParams,
    recommendations::GetParams,
    DismissParams,
    AnyObject,
);

/// Params of a method that sends none (`ping`, `shutdown`): the member is left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoParams;

impl Serialize for NoParams {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for NoParams {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| NoParams)
    }
}

/// Params of a method that sends `{}` (`sync/getUserInfo`, `sync/status`, `recommendations/clear`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyParams {}

macro_rules! host_methods {
    ($( $method:ident = $name:literal, $capability:expr, optional: $optional:literal, $params:ty => $result:ty; )+) => {
        /// Every host → plugin method, by name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum HostMethod { $($method),+ }

        $(
            #[doc = concat!("`", $name, "`")]
            #[derive(Debug, Clone, Copy)]
            pub struct $method;

            impl MethodSpec for $method {
                const METHOD: HostMethod = HostMethod::$method;
                type Params = $params;
                type Result = $result;
            }
        )+

        impl HostMethod {
            pub const ALL: &'static [HostMethod] = &[$(HostMethod::$method),+];

            /// The method's name on the wire.
            pub fn name(self) -> &'static str {
                match self { $(Self::$method => $name),+ }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(Self::$method),)+ _ => None }
            }

            /// The capability the plugin must declare; `None` for lifecycle methods.
            pub fn capability(self) -> Option<Capability> {
                match self { $(Self::$method => $capability),+ }
            }

            /// Optional methods may be answered with -32601, meaning "not supported".
            pub fn is_optional(self) -> bool {
                match self { $(Self::$method => $optional),+ }
            }

            /// Checks a caller's raw params against this method's type and returns what
            /// the plugin gets: the caller's params with every field and every number as
            /// given, changed only as [`prepare_params`] lists (`None` for a method that
            /// sends no params).
            pub fn prepare_params(self, params: Value) -> Result<Option<Value>, String> {
                match self { $(Self::$method => prepare_params::<$params>(params)),+ }
            }

            /// Checks a plugin's raw result against this method's type; the result itself
            /// is the caller's to keep as the plugin wrote it. A `get` answer is checked
            /// only for what makes it an answer (an object with its `externalId`): a field
            /// of the wrong type in it is the reader's to leave out and report, not a fault
            /// of the plugin (a single bad `year` must not disable it).
            pub fn check_result(self, result: &Value) -> Result<(), serde_json::Error> {
                if matches!(self, Self::SeriesGet | Self::BookGet) {
                    return check_get_answer(result);
                }
                match self { $(Self::$method => <$result>::deserialize(result).map(drop)),+ }
            }
        }
    };
}

/// What makes a `get` answer an answer: an object whose `externalId` is a non-empty string.
fn check_get_answer(result: &Value) -> Result<(), serde_json::Error> {
    use serde::de::Error as _;
    match result.get("externalId") {
        _ if !result.is_object() => Err(serde_json::Error::custom("the answer is not an object")),
        Some(Value::String(id)) if !id.trim().is_empty() => Ok(()),
        Some(other) => Err(serde_json::Error::custom(format!("`externalId` is not an id: {other}"))),
        None => Err(serde_json::Error::custom("missing field `externalId`")),
    }
}

use Capability::{
    BookMetadata as Book, ReadSync as Sync, Recommendations as Recs, ReleaseSource as Releases,
    SeriesMetadata as Series,
};

host_methods! {
    Initialize = "initialize", None, optional: false, InitializeParams => Manifest;
    Ping = "ping", None, optional: false, NoParams => String;
    Shutdown = "shutdown", None, optional: false, NoParams => Value;
    SeriesSearch = "metadata/series/search", Some(Series), optional: false, SeriesSearchParams => SearchResponse;
    SeriesGet = "metadata/series/get", Some(Series), optional: false, GetParams => SeriesMetadata;
    SeriesMatch = "metadata/series/match", Some(Series), optional: true, SeriesMatchParams => MatchResponse;
    BookSearch = "metadata/book/search", Some(Book), optional: false, BookSearchParams => SearchResponse;
    BookGet = "metadata/book/get", Some(Book), optional: false, GetParams => BookMetadata;
    BookMatch = "metadata/book/match", Some(Book), optional: true, BookMatchParams => MatchResponse;
    SyncUserInfo = "sync/getUserInfo", Some(Sync), optional: false, EmptyParams => UserInfo;
    SyncPush = "sync/pushProgress", Some(Sync), optional: false, PushParams => PushResponse;
    SyncPull = "sync/pullProgress", Some(Sync), optional: false, PullParams => PullResponse;
    SyncStatus = "sync/status", Some(Sync), optional: true, EmptyParams => StatusResponse;
    RecommendationsGet = "recommendations/get", Some(Recs), optional: false, recommendations::GetParams => recommendations::GetResponse;
    RecommendationsDismiss = "recommendations/dismiss", Some(Recs), optional: true, DismissParams => DismissResponse;
    RecommendationsClear = "recommendations/clear", Some(Recs), optional: true, EmptyParams => AnyObject;
    RecommendationsUpdateProfile = "recommendations/updateProfile", Some(Recs), optional: true, AnyObject => AnyObject;
    ReleasesPoll = "releases/poll", Some(Releases), optional: false, releases::PollParams => releases::PollResponse;
}

/// The changes the host makes to a caller's params, and no others:
/// - a method that sends no params (`ping`, `shutdown`) sends none;
/// - an array the method's type requires, left out by the caller, is added as `[]`
///   (`recommendations/get`'s `library` and `excludeIds`, a library entry's `genres`…);
/// - `initialize` loses the host-only `_codex` namespace of its three configs.
fn prepare_params<P: Serialize + DeserializeOwned + CheckParams>(mut params: Value) -> Result<Option<Value>, String> {
    let typed = P::deserialize(&params).map_err(|error| error.to_string())?;
    typed.check()?;
    let normalized = serde_json::to_value(&typed).map_err(|error| error.to_string())?;
    if normalized.is_null() {
        return Ok(None);
    }
    add_left_out_arrays(&mut params, &normalized);
    P::remove_host_only(&mut params);
    Ok(Some(params))
}

/// Adds to `sent` every empty array `normalized` (the same params read through their type
/// and written back) has where `sent` has nothing.
fn add_left_out_arrays(sent: &mut Value, normalized: &Value) {
    match (sent, normalized) {
        (Value::Object(sent), Value::Object(normalized)) => {
            for (key, value) in normalized {
                match sent.get_mut(key) {
                    Some(given) => add_left_out_arrays(given, value),
                    None if value.as_array().is_some_and(Vec::is_empty) => {
                        sent.insert(key.clone(), Value::Array(Vec::new()));
                    }
                    None => {}
                }
            }
        }
        (Value::Array(sent), Value::Array(normalized)) if sent.len() == normalized.len() => {
            sent.iter_mut().zip(normalized).for_each(|(given, value)| add_left_out_arrays(given, value));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_method_has_a_unique_name_that_maps_back() {
        for &method in HostMethod::ALL {
            assert_eq!(HostMethod::from_name(method.name()), Some(method));
        }
        assert_eq!(HostMethod::from_name("releases/poll"), Some(HostMethod::ReleasesPoll));
        assert_eq!(HostMethod::from_name("releases/list_tracked"), None, "a plugin → host method");
        assert_eq!(HostMethod::ALL.len(), 18);
    }

    #[test]
    fn params_are_checked() {
        assert_eq!(HostMethod::Ping.prepare_params(Value::Null).unwrap(), None);
        assert_eq!(HostMethod::Ping.prepare_params(json!({"ignored": 1})).unwrap(), None);
        assert_eq!(HostMethod::SyncUserInfo.prepare_params(json!({})).unwrap(), Some(json!({})));
        let error = HostMethod::SeriesSearch.prepare_params(json!({"limit": 3})).unwrap_err();
        assert!(error.contains("query"), "{error}");
        let error = HostMethod::BookSearch.prepare_params(json!({"author": "x"})).unwrap_err();
        assert!(error.contains("isbn"), "{error}");
        let error = HostMethod::SyncPush.prepare_params(json!({"entries": [{"status": "reading"}]})).unwrap_err();
        assert!(error.contains("externalId"), "{error}");
    }

    #[test]
    fn params_keep_every_field_and_number_form_the_caller_gave() {
        let entry = json!({
            "externalId": "1", "status": "reading", "score": 80, "libraryId": "lib", "libraryName": "Manga",
            "genres": ["Drama"], "tags": ["Time Travel"], "futureField": {"nested": [1, 2.0, 2.5]},
            "metadata": {"summary": "s", "ageRating": 16, "authors": [{"name": "A", "role": "writer"}]},
            "customMetadata": {"anything": [true, null]},
            "progress": {"chapters": 12, "volumes": 2.0, "readBooks": [{"volume": 1, "completed": true}]},
        });
        let params = json!({"entries": [entry]});
        let sent = HostMethod::SyncPush.prepare_params(params.clone()).unwrap().unwrap();
        assert_eq!(sent, params);
        let progress = &sent["entries"][0]["progress"];
        assert!(progress["chapters"].is_u64() && progress["volumes"].is_f64());
        let search = json!({"query": "x", "limit": 5.0, "extra": 1});
        assert_eq!(HostMethod::SeriesSearch.prepare_params(search.clone()).unwrap(), Some(search));
    }

    #[test]
    fn required_arrays_left_out_are_added_and_nothing_else() {
        let library = json!({"library": [{"seriesId": "s", "title": "T", "booksRead": 2, "userRating": 7}]});
        let sent = HostMethod::RecommendationsGet.prepare_params(library).unwrap().unwrap();
        assert_eq!(
            sent,
            json!({"library": [{
                "seriesId": "s", "title": "T", "booksRead": 2, "userRating": 7,
                "alternateTitles": [], "genres": [], "tags": [], "externalIds": [],
            }], "excludeIds": []})
        );
        assert_eq!(HostMethod::SyncPush.prepare_params(json!({})).unwrap(), Some(json!({"entries": []})));
        let aliased = json!({"entries": [{"externalId": "1", "status": "reading", "rating": 7}]});
        assert_eq!(HostMethod::SyncPush.prepare_params(aliased.clone()).unwrap(), Some(aliased));
    }

    #[test]
    fn initialize_loses_only_the_host_namespace_of_its_configs() {
        let params = json!({
            "config": {"_codex": {"sendTags": false}, "region": "eu", "max": 10},
            "adminConfig": {"_codex": {"sendTags": false}, "region": "eu"},
            "userConfig": {"_codex": {"syncRatings": false}, "max": 10},
            "credentials": {"token": "t"}, "logLevel": "debug", "extra": 1.0,
        });
        let sent = HostMethod::Initialize.prepare_params(params).unwrap().unwrap();
        assert_eq!(sent["userConfig"], json!({"max": 10}));
        assert_eq!(sent["adminConfig"], json!({"region": "eu"}));
        assert_eq!(sent["config"], json!({"region": "eu", "max": 10}));
        assert_eq!(sent["extra"], json!(1.0));
    }

    #[test]
    fn results_are_checked_not_rewritten() {
        assert!(HostMethod::Ping.check_result(&json!("pong")).is_ok());
        assert!(HostMethod::Ping.check_result(&json!(1)).is_err());
        assert!(HostMethod::SeriesGet.check_result(&json!({"title": "no ids"})).is_err());
        // A get answer with a wrongly typed field is still an answer; the reader reports the field.
        assert!(HostMethod::SeriesGet.check_result(&json!({"externalId": "x", "year": "MCMXCIV"})).is_ok());
        assert!(HostMethod::BookGet.check_result(&json!({"externalId": "b", "externalUrl": 7, "isbns": "x"})).is_ok());
        assert!(HostMethod::BookGet.check_result(&json!(["externalId"])).is_err());
        assert!(HostMethod::BookGet.check_result(&json!({"externalId": ""})).is_err());
        assert!(HostMethod::Shutdown.check_result(&Value::Null).is_ok());
        assert!(HostMethod::SyncPush.check_result(&json!({"successes": ["1"], "failures": []})).is_ok());
    }
}
