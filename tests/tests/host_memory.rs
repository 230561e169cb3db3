//! What a wasm guest can take of the host outside its own memory. A wasm guest that hoards memory on the host's side (`wasi:http` `fields` it never
//! drops, the `memory-hog` example's `fields:BYTES` search) is stopped at the host's budget
//! for it, far below what it asks for, and another guest in the same host goes on. Alone in
//! its test binary, so the host's resident memory is this test's.

use codex_plugin_host::plugin::PluginError;
use codex_plugin_host::protocol::methods::{NoParams, Ping, SeriesSearch};
use codex_plugin_host::protocol::types::metadata::SeriesSearchParams;
use codex_plugin_host::transport::wasm::disk_quota::DiskLimits;
use codex_plugin_host_tests::{Grants, TestHost, Transport};

/// This process's resident memory, in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("a VmRSS line");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("a number");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_hoarding_host_resources_is_stopped_at_a_fixed_bound() {
    let host = TestHost::new();
    let bystander = host.example("metadata-echo", Transport::Wasm, |_| {}).await.expect("metadata-echo starts");
    // The attack as reported: headers of 120 KB, and below the per-header bound, 15 KB
    // (without the budget, 12,000 of the first took the host from 26 MB to 1.44 GB).
    for bytes in [120_000, 15_000] {
        let hog = host.example("memory-hog", Transport::Wasm, |_| {}).await.expect("memory-hog starts");
        let before = resident_bytes();
        let query = SeriesSearchParams { query: format!("fields:{bytes}"), limit: None, cursor: None };
        let error = hog.call::<SeriesSearch>(&query).await.expect_err("the hoarder is stopped");
        let grown = resident_bytes().saturating_sub(before);
        assert!(matches!(error, PluginError::Closed { .. }), "{bytes}-byte headers: the guest traps: {error}");
        assert!(error.to_string().contains("over the host's budget"), "{error}");
        assert!(grown < 64 << 20, "{bytes}-byte headers grew the host by {} MiB, over the 64 MiB bound", grown >> 20);
        hog.shutdown().await;
        assert_eq!(bystander.call::<Ping>(&NoParams).await.expect("the other guest answers"), "pong");
    }
    bystander.shutdown().await;
}

/// A guest filling its `/data` is refused past its quota, of bytes and of entries, and
/// runs on; the directory holds no more than the quota.
#[tokio::test]
async fn a_guest_filling_its_data_directory_is_stopped_at_its_quota() {
    let host = TestHost::new();
    let disk = DiskLimits { bytes: 4 << 20, entries: 50 };
    let grants = Grants { disk, ..Grants::default() };
    let hog = host.example_granted("memory-hog", Transport::Wasm, grants, |_| {}).await.expect("memory-hog starts");
    let fill = |mode: &str| SeriesSearchParams { query: mode.into(), limit: None, cursor: None };
    let answer = hog.call::<SeriesSearch>(&fill("disk-bytes")).await.expect("the guest answers");
    let title = &answer.results[0].title;
    // A refused stream write reaches Rust's std as an I/O error (wasi-libc reads no code
    // from a file stream's failure); the host's log says which quota it was.
    assert!(title.starts_with("4 files, then:") && title.contains("error"), "{title}");
    let answer = hog.call::<SeriesSearch>(&fill("disk-entries")).await.expect("the guest answers");
    let title = &answer.results[0].title;
    assert!(title.contains("then:") && title.contains("No space left"), "{title}");
    let dir = host.data_dir().join("plugins/memory-hog/plugin");
    let (mut bytes, mut entries) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        bytes += entry.unwrap().metadata().unwrap().len();
        entries += 1;
    }
    assert!(bytes <= disk.bytes, "{bytes} bytes in /data");
    assert!(entries <= disk.entries, "{entries} entries in /data");
    assert_eq!(hog.call::<Ping>(&NoParams).await.expect("the guest runs on"), "pong");
    hog.shutdown().await;
}
