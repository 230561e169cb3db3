//! Stopping a command when its operator asks: SIGINT, SIGTERM, SIGHUP or SIGQUIT.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGINT, SIGTERM, SIGHUP and SIGQUIT, listened for from the start. A process plugin leads
/// its own process group, so a terminal's Ctrl-C never reaches it: the command must stop it
/// itself.
pub struct Termination {
    signals: Vec<(&'static str, Signal)>,
}

impl Termination {
    const SIGNALS: [(&'static str, SignalKind); 4] = [
        ("SIGINT", SignalKind::interrupt()),
        ("SIGTERM", SignalKind::terminate()),
        ("SIGHUP", SignalKind::hangup()),
        ("SIGQUIT", SignalKind::quit()),
    ];

    pub fn listen() -> Self {
        let mut signals = Vec::new();
        for (name, kind) in Self::SIGNALS {
            match signal(kind) {
                Ok(listener) => signals.push((name, listener)),
                Err(error) => tracing::warn!("could not listen for {name}: {error}"),
            }
        }
        Self { signals }
    }

    /// The name of the next signal received.
    pub async fn recv(&mut self) -> &'static str {
        if self.signals.is_empty() {
            return std::future::pending().await;
        }
        std::future::poll_fn(|context| {
            for (name, listener) in &mut self.signals {
                if listener.poll_recv(context).is_ready() {
                    return std::task::Poll::Ready(*name);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}
