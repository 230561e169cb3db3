//! Recommendations end to end (orchestration.md §8): the sample library in a real database
//! file, recommendations-echo as a wasm component and a native process, the wire recorder
//! to see what a plugin is sent; seeds, excluded ids, the cache answering at once while one
//! refresh runs, dismissals, two plugins merged, series already owned left out.

use codex_plugin_host::integrations::IntegrationError;
use codex_plugin_host::library::{LibraryPort, SeriesRating};
use codex_plugin_host::protocol::types::recommendations::DismissReason;
use codex_plugin_host_tests::integrations::{IntegrationHost, Mode, example, finished, recorder, sample_library};
use codex_plugin_host_tests::on_both_modes;
use serde_json::{Value, json};

/// Ann read the first book of One Piece (rated 90), Monster (rated 40) and Berserk.
fn reader(host: &IntegrationHost) {
    finished(host.library.as_ref(), "ann", &["manga-one-piece-v01", "manga-monster-v01", "manga-berserk-v01"]);
    for (series, rating) in [("manga-one-piece", 90), ("manga-monster", 40)] {
        let rating = SeriesRating { series_id: series.into(), rating, notes: None, updated_at: 1 };
        host.library.save_rating("ann", &rating).unwrap();
    }
}

fn echo_host(mode: Mode, plugins: &[&str]) -> IntegrationHost {
    let host = IntegrationHost::new(&sample_library());
    for plugin in plugins {
        host.add(plugin, example("recommendations-echo", mode), json!({}), &["library:read"]);
        host.connect(plugin, "ann", json!({"_codex": {"dropThreshold": 5}}), "t0ken");
    }
    reader(&host);
    host
}

fn ids(list: &codex_plugin_host::integrations::RecommendationList) -> Vec<&str> {
    list.recommendations.iter().map(|merged| merged.recommendation.external_id.as_str()).collect()
}

on_both_modes! {
    recommendations_are_cached_refreshed_and_dismissed => echo_flow;
}

async fn echo_flow(mode: Mode) {
    let host = echo_host(mode, &["recs"]);
    let first = host.integrations.recommendations("ann", false).await.unwrap();
    assert!(first.recommendations.is_empty(), "nothing cached yet: {first:?}");
    assert!(first.sources[0].stale && first.sources[0].refreshing, "{first:?}");
    host.integrations.refreshes_ended().await;
    let list = host.integrations.recommendations("ann", false).await.unwrap();
    // Seeds: rated at least 50 first (One Piece), then by last read (Berserk, Monster);
    // echo scores a seed by its rating (unrated 0.5).
    assert_eq!(ids(&list), ["more-manga-one-piece", "more-manga-berserk", "more-manga-monster"]);
    assert!(!list.sources[0].stale && !list.sources[0].refreshing, "{list:?}");
    assert_eq!(list.recommendations[0].plugins, ["recs"]);

    let dismissed =
        host.integrations.dismiss("ann", "more-manga-berserk", Some(DismissReason::NotInterested)).await.unwrap();
    assert_eq!(
        (dismissed.recommended_by.clone(), dismissed.told.clone()),
        (vec!["recs".to_owned()], vec!["recs".to_owned()])
    );
    let list = host.integrations.recommendations("ann", false).await.unwrap();
    assert_eq!(ids(&list), ["more-manga-one-piece", "more-manga-monster"], "gone at once");
    let list = host.integrations.recommendations("ann", true).await.unwrap();
    assert_eq!(ids(&list), ["more-manga-one-piece", "more-manga-monster"], "and after a refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_plugins_merge_into_one_list() {
    let host = echo_host(Mode::Wasm, &["recs-a", "recs-b"]);
    let list = host.integrations.recommendations("ann", true).await.unwrap();
    assert_eq!(list.sources.len(), 2);
    assert_eq!(list.recommendations.len(), 3, "{list:?}");
    for merged in &list.recommendations {
        assert_eq!(merged.plugins, ["recs-a", "recs-b"]);
        assert_eq!(merged.recommendation.based_on.len(), 1, "basedOn joined without repeats");
    }
}

/// The recorder as a recommendation plugin with api:echo ids, answering `answer`.
fn recorder_host(answer: Value, admin: Value, permissions: &[&str]) -> IntegrationHost {
    let host = IntegrationHost::new(&sample_library());
    let mut config = json!({
        "answers": {"recommendations/get": answer, "recommendations/clear": {"cleared": true}},
        "capabilities": {"externalIdSource": "api:echo", "userRecommendationProvider": true, "userReadSync": false}
    });
    config.as_object_mut().unwrap().extend(admin.as_object().cloned().unwrap());
    host.add("rec", recorder(), config, permissions);
    host.connect("rec", "ann", json!({"_codex": {"maxRecommendations": 7, "maxSeeds": 2}}), "t0ken");
    reader(&host);
    host
}

fn answer(ids: &[&str]) -> Value {
    json!({"recommendations": ids.iter().map(|id| json!({"externalId": id, "title": id, "score": 0.5})).collect::<Vec<_>>()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_is_sent_seeds_limits_and_excluded_ids_and_owned_series_are_left_out() {
    let host = recorder_host(answer(&["series-01", "fresh-1"]), json!({}), &["library:read"]);
    let list = host.integrations.recommendations("ann", true).await.unwrap();
    assert_eq!(ids(&list), ["fresh-1"], "series-01 (Naruto) is in the library");
    let sent = host.recorded("rec", "recommendations/get");
    assert_eq!(sent.len(), 1);
    let seeds: Vec<&str> =
        sent[0]["library"].as_array().unwrap().iter().map(|e| e["seriesId"].as_str().unwrap()).collect();
    assert_eq!(seeds, ["manga-one-piece", "manga-monster"], "two seeds: rated (threshold 0) before unrated");
    assert_eq!(sent[0]["limit"], json!(7));
    // Read and mapped to api:echo ids: One Piece (series-00), Monster (03), Berserk (02).
    let mut excluded: Vec<&str> =
        sent[0]["excludeIds"].as_array().unwrap().iter().map(|id| id.as_str().unwrap()).collect();
    excluded.sort();
    assert_eq!(excluded, ["series-00", "series-02", "series-03"]);
    assert_eq!(host.recorded("rec", "recommendations/clear").len(), 1, "cleared first, as the reference");

    let blind = recorder_host(answer(&["fresh-1"]), json!({}), &[]);
    blind.integrations.recommendations("ann", true).await.unwrap();
    let sent = blind.recorded("rec", "recommendations/get");
    assert_eq!((sent[0]["library"].clone(), sent[0]["excludeIds"].clone()), (json!([]), json!([])), "no library:read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_cache_answers_at_once_while_one_refresh_runs() {
    let admin = json!({"recommendations_max_age_hours": 0, "delays": {"recommendations/get": 600}});
    let host = recorder_host(answer(&["fresh-1"]), admin, &["library:read"]);
    host.integrations.refresh_recommendations("rec", "ann").await.unwrap();
    let started = std::time::Instant::now();
    let (a, b) =
        tokio::join!(host.integrations.recommendations("ann", false), host.integrations.recommendations("ann", false));
    assert!(started.elapsed() < std::time::Duration::from_millis(500), "a stale read waited for the refresh");
    for list in [a.unwrap(), b.unwrap()] {
        assert_eq!(ids(&list), ["fresh-1"], "the cached answer, at once");
        assert!(list.sources[0].stale && list.sources[0].refreshing);
    }
    host.integrations.refreshes_ended().await;
    assert_eq!(host.recorded("rec", "recommendations/get").len(), 2, "one refresh for both reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_clear_errors() {
    let host = echo_host(Mode::Wasm, &["recs"]);
    let error = host.integrations.recommendations("bo", false).await.unwrap_err();
    assert!(matches!(error, IntegrationError::NoRecommenders(_)), "{error}");
    assert!(error.to_string().contains("connected to no recommendation plugin"), "{error}");
    let error = host.integrations.dismiss("ann", " ", None).await.unwrap_err();
    assert!(error.to_string().contains("empty"), "{error}");
    host.add("sync", example("sync-echo", Mode::Wasm), json!({}), &[]);
    host.connect("sync", "ann", json!({}), "t0ken");
    let error = host.integrations.refresh_recommendations("sync", "ann").await.unwrap_err();
    assert!(error.to_string().contains("capabilities.userRecommendationProvider"), "{error}");
    let list = host.integrations.recommendations("ann", true).await.unwrap();
    assert_eq!(list.sources.len(), 1, "a sync plugin is no source: {list:?}");
}
