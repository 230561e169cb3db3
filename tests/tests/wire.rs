//! The wire both ways, with a Node plugin: every method's params reach it as the caller
//! sent them (apart from the changes the README lists) and every answer comes back as it
//! wrote it. `examples.rs` runs the same check with a Rust plugin on both transports.

use codex_plugin_host_tests::wire::{self, Writer};
use codex_plugin_host_tests::{TestHost, wire_recorder};

#[tokio::test]
async fn a_node_plugin_gets_every_field_and_number_as_sent_and_its_answers_come_back_as_written() {
    let host = TestHost::new();
    let script = wire_recorder();
    let mut record = None;
    let plugin = host
        .start("wire-recorder", "node", &[&script], |settings, spec| {
            record = Some(spec.sandbox.data_dir().join(wire::RECORD_FILE));
            settings.initialize = wire::initialize(settings.initialize.data_dir.take(), Writer::Node);
        })
        .await
        .expect("the recorder starts");
    wire::check_the_wire(plugin, &record.expect("the data directory is known"), Writer::Node).await;
}
