//! Every host → plugin method: its name, the capability it needs, and its typed params and
//! result. [`MethodSpec`] is the typed view (one marker type per method); [`HostMethod`]
//! is the same table by name, for callers that hold raw JSON (the command line).
//!
//! The only plugin → host methods are `storage/*`, served by [`crate::storage::handler`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::{Capabilities, Manifest};
use crate::types::initialize::InitializeParams;
use crate::types::metadata::{
    BookMatchParams, BookMetadata, BookSearchParams, GetParams, MatchResponse, SearchResponse, SeriesMatchParams,
    SeriesMetadata, SeriesSearchParams,
};
use crate::types::recommendations::{self, AnyObject, DismissParams, DismissResponse};
use crate::types::sync::{PullParams, PullResponse, PushParams, PushResponse, StatusResponse, UserInfo};

/// What a plugin must declare in its manifest before the host sends it a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    SeriesMetadata,
    BookMetadata,
    ReadSync,
    Recommendations,
}

impl Capability {
    /// Whether these capabilities include this one.
    pub fn is_declared_in(self, capabilities: &Capabilities) -> bool {
        match self {
            Self::SeriesMetadata => capabilities.provides_series(),
            Self::BookMetadata => capabilities.provides_books(),
            Self::ReadSync => capabilities.user_read_sync,
            Self::Recommendations => capabilities.user_recommendation_provider,
        }
    }

    /// How the manifest says it, for error messages.
    pub fn manifest_form(self) -> &'static str {
        match self {
            Self::SeriesMetadata => "metadataProvider: [\"series\"]",
            Self::BookMetadata => "metadataProvider: [\"book\"]",
            Self::ReadSync => "userReadSync: true",
            Self::Recommendations => "userRecommendationProvider: true",
        }
    }
}

/// A host → plugin method, typed.
pub trait MethodSpec {
    const METHOD: HostMethod;
    type Params: Serialize + DeserializeOwned + CheckParams;
    type Result: Serialize + DeserializeOwned;
}

/// Rules on params beyond their shape (a book search needs an ISBN or a query).
pub trait CheckParams {
    fn check(&self) -> Result<(), String> {
        Ok(())
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
    InitializeParams,
    NoParams,
    EmptyParams,
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

            /// Reads raw params as this method's type and writes them back in the one
            /// shape the plugin gets (`None` for a method that sends no params).
            pub fn normalize_params(self, params: Value) -> Result<Option<Value>, String> {
                match self { $(Self::$method => normalize_params::<$params>(params)),+ }
            }

            /// Reads a plugin's raw result as this method's type, normalized.
            pub fn normalize_result(self, result: Value) -> Result<Value, serde_json::Error> {
                match self { $(Self::$method => round_trip::<$result>(result)),+ }
            }
        }
    };
}

use Capability::{BookMetadata as Book, ReadSync as Sync, Recommendations as Recs, SeriesMetadata as Series};

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
}

fn normalize_params<P: Serialize + DeserializeOwned + CheckParams>(params: Value) -> Result<Option<Value>, String> {
    let typed: P = serde_json::from_value(params).map_err(|error| error.to_string())?;
    typed.check()?;
    let value = serde_json::to_value(&typed).map_err(|error| error.to_string())?;
    Ok((!value.is_null()).then_some(value))
}

fn round_trip<T: Serialize + DeserializeOwned>(value: Value) -> Result<Value, serde_json::Error> {
    serde_json::to_value(serde_json::from_value::<T>(value)?)
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
        assert_eq!(HostMethod::from_name("releases/poll"), None);
        assert_eq!(HostMethod::ALL.len(), 17);
    }

    #[test]
    fn params_are_checked_and_normalized() {
        assert_eq!(HostMethod::Ping.normalize_params(Value::Null).unwrap(), None);
        assert_eq!(HostMethod::SyncUserInfo.normalize_params(json!({})).unwrap(), Some(json!({})));
        let error = HostMethod::SeriesSearch.normalize_params(json!({"limit": 3})).unwrap_err();
        assert!(error.contains("query"), "{error}");
        let error = HostMethod::BookSearch.normalize_params(json!({"author": "x"})).unwrap_err();
        assert!(error.contains("isbn"), "{error}");
        let params = HostMethod::RecommendationsGet.normalize_params(json!({"library": []})).unwrap();
        assert_eq!(params, Some(json!({"library": [], "excludeIds": []})));
    }

    #[test]
    fn results_are_validated() {
        assert_eq!(HostMethod::Ping.normalize_result(json!("pong")).unwrap(), json!("pong"));
        assert!(HostMethod::Ping.normalize_result(json!(1)).is_err());
        assert!(HostMethod::SeriesGet.normalize_result(json!({"title": "no ids"})).is_err());
        assert_eq!(HostMethod::Shutdown.normalize_result(Value::Null).unwrap(), Value::Null);
    }
}
