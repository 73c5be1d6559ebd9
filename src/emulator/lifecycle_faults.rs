//! Faults that act on a running container: the group vanishing, and the Unhealthy and
//! Repairing provisioning loop.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::lifecycle::{kill_in_background, with_group};
use super::state::{GroupKey, Shared};

/// Starts the tasks of the running-container faults that are set.
pub fn start_running_faults(shared: &Arc<Shared>, key: &GroupKey, instance: Uuid) {
    let faults = shared
        .faults
        .lock()
        .expect("fault lock poisoned")
        .faults
        .clone();
    if let Some(seconds) = faults.vanish_after_seconds {
        let delay = Duration::from_secs_f64(seconds.max(0.0));
        tokio::spawn(vanish_after(shared.clone(), key.clone(), instance, delay));
    }
    if let Some(cycles) = faults.unhealthy_loop_cycles {
        tokio::spawn(unhealthy_loop(
            shared.clone(),
            key.clone(),
            instance,
            cycles,
        ));
    }
}

async fn vanish_after(shared: Arc<Shared>, key: GroupKey, instance: Uuid, delay: Duration) {
    tokio::time::sleep(delay).await;
    let removed = {
        let mut store = shared.lock_store();
        match store.groups.get(&key) {
            Some(group) if group.instance == instance => store.groups.remove(&key),
            _ => None,
        }
    };
    if let Some(group) = removed {
        tracing::info!(container_group = %group.name, "container group vanished by fault");
        kill_in_background(&shared, group.pid);
    }
}

/// Cycles Unhealthy, Repairing, Succeeded while the container runs; `cycles` 0 means until
/// it stops running.
async fn unhealthy_loop(shared: Arc<Shared>, key: GroupKey, instance: Uuid, cycles: u32) {
    let step = Duration::from_millis(shared.config.creating_ms.max(1));
    let mut done = 0;
    while cycles == 0 || done < cycles {
        for state in ["Unhealthy", "Repairing", "Succeeded"] {
            tokio::time::sleep(step).await;
            let running = with_group(&shared, &key, instance, |g| {
                let running = g.state.as_deref() == Some("Running");
                if running {
                    g.provisioning_state = state.to_string();
                } else {
                    g.provisioning_state = "Succeeded".to_string();
                }
                running
            });
            if running != Some(true) {
                return;
            }
        }
        done += 1;
    }
}
