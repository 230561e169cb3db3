//! What only wasm mode does: many guests in one host, and a deadline that counts execution,
//! not waiting.

use codex_plugin_host::limits::Timeouts;
use codex_plugin_host::protocol::methods::{NoParams, Ping};
use codex_plugin_host_tests::{TestHost, Transport};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_idle_instances_live_at_once_in_one_host() {
    let host = TestHost::new();
    let mut guests = Vec::with_capacity(500);
    for _ in 0..500 {
        let guest = host.example("metadata-echo", Transport::Wasm, |_| {}).await.expect("a guest starts");
        guests.push(guest);
    }
    // All of them are alive at once, and each still answers.
    for guest in &guests {
        assert_eq!(guest.call::<Ping>(&NoParams).await.unwrap(), "pong");
    }
    for guest in guests {
        guest.kill().await;
    }
}

#[tokio::test]
async fn time_spent_waiting_for_input_does_not_count_against_the_deadline() {
    let host = TestHost::new();
    let guest = host
        .example("metadata-echo", Transport::Wasm, |settings| {
            settings.timeouts = Timeouts::new(Duration::from_millis(300));
        })
        .await
        .unwrap();
    // Idle for three times the deadline: the guest waits on its stdin, executing nothing.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(guest.call::<Ping>(&NoParams).await.unwrap(), "pong");
    assert!(guest.closed_reason().is_none(), "the guest was not interrupted");
    guest.shutdown().await;
}
