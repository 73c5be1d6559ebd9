//! Signal handling: the first SIGTERM or SIGINT makes the worker drain, and a second one
//! ends the process at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Exit code used when a second signal ends the process without draining (128 + SIGTERM).
pub const FORCED_EXIT_CODE: i32 = 143;

/// A cheap, cloneable view of whether shutdown was requested.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    receiver: watch::Receiver<bool>,
}

/// The sending side, held by the signal listener (or by tests).
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

/// Creates a connected trigger and signal.
pub fn channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, ShutdownSignal { receiver })
}

impl ShutdownTrigger {
    /// Requests shutdown. Later calls do nothing.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

impl ShutdownSignal {
    /// Returns whether shutdown was requested.
    pub fn is_requested(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Completes once shutdown is requested (at once if it already was).
    pub async fn requested(&mut self) {
        // An error means every trigger is gone, so no request can come any more.
        if self
            .receiver
            .wait_for(|requested| *requested)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }
}

/// Listens for SIGTERM and SIGINT: the first triggers a drain, the second exits the process
/// with [`FORCED_EXIT_CODE`]. Returns an error if the handlers cannot be installed.
pub fn listen(trigger: ShutdownTrigger) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!(
            "shutdown requested: no new flow runs are claimed; a second signal exits at once"
        );
        trigger.trigger();
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::warn!("second signal received, exiting without draining");
        std::process::exit(FORCED_EXIT_CODE);
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signal_starts_unrequested() {
        let (_trigger, signal) = channel();
        assert!(!signal.is_requested());
    }

    #[tokio::test]
    async fn trigger_wakes_waiters() {
        let (trigger, mut signal) = channel();
        let waiter = tokio::spawn(async move { signal.requested().await });
        trigger.trigger();
        waiter.await.expect("waiter finishes");
    }

    #[tokio::test]
    async fn requested_returns_at_once_after_trigger() {
        let (trigger, mut signal) = channel();
        trigger.trigger();
        signal.requested().await;
        assert!(signal.is_requested());
    }
}
