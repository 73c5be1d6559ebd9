//! A container group's life: the provisioning walk, running the first container (as a
//! process or simulated), restarts by policy, and removal.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};
use uuid::Uuid;

use super::config::glob_matches;
use super::state::{ContainerGroup, ContainerState, Event, GroupKey, Shared, now_rfc3339};
use super::{process, simulate};

/// Wait before a container is restarted under restartPolicy Always or OnFailure.
const RESTART_DELAY: Duration = Duration::from_millis(500);

/// Runs `f` on the group if it still exists as incarnation `instance`.
pub fn with_group<R>(
    shared: &Shared,
    key: &GroupKey,
    instance: Uuid,
    f: impl FnOnce(&mut ContainerGroup) -> R,
) -> Option<R> {
    let mut store = shared.lock_store();
    let group = store
        .groups
        .get_mut(key)
        .filter(|g| g.instance == instance)?;
    Some(f(group))
}

/// Records that the first container is being killed, if it runs.
pub fn add_killing_event(group: &mut ContainerGroup) {
    let Some(first) = group.containers.first_mut() else {
        return;
    };
    if first.current.state == "Running" {
        let message = format!("Killing container {}", first.name);
        first.events.push(Event::normal("Killing", message));
    }
}

/// Removes a group at once and kills its process. Returns the removed group.
pub fn remove_group(shared: &Arc<Shared>, key: &GroupKey) -> Option<ContainerGroup> {
    let group = shared.lock_store().groups.remove(key)?;
    kill_in_background(shared, group.pid);
    Some(group)
}

/// Removes the group after `delay`, unless it was replaced meanwhile.
pub async fn remove_after(shared: Arc<Shared>, key: GroupKey, instance: Uuid, delay: Duration) {
    tokio::time::sleep(delay).await;
    let mut store = shared.lock_store();
    if store
        .groups
        .get(&key)
        .is_some_and(|g| g.instance == instance)
    {
        store.groups.remove(&key);
    }
}

/// Terminates a process group in a task: SIGTERM, then SIGKILL after the grace period.
pub fn kill_in_background(shared: &Shared, pid: Option<i32>) {
    let Some(pid) = pid else { return };
    let grace = Duration::from_millis(shared.config.stop_grace_ms);
    tokio::spawn(process::terminate(pid, grace));
}

fn set_provisioning(shared: &Shared, key: &GroupKey, instance: Uuid, state: &str) -> bool {
    with_group(shared, key, instance, |g| {
        g.provisioning_state = state.to_string()
    })
    .is_some()
}

fn add_container_event(shared: &Shared, key: &GroupKey, instance: Uuid, event: Event) -> bool {
    with_group(shared, key, instance, |g| {
        if let Some(first) = g.containers.first_mut() {
            first.events.push(event);
        }
    })
    .is_some()
}

/// Drives a new group from Pending to a finished container. Ends early when the group is
/// deleted or replaced.
pub async fn run(shared: Arc<Shared>, key: GroupKey, instance: Uuid) {
    if !provision(&shared, &key, instance).await {
        return;
    }
    let image = match with_group(&shared, &key, instance, |g| g.run.image.clone()) {
        Some(image) => image,
        None => return,
    };
    let pulled = Event::normal("Pulled", format!("Successfully pulled image \"{image}\""));
    if !add_container_event(&shared, &key, instance, pulled)
        || !set_provisioning(&shared, &key, instance, "Succeeded")
    {
        return;
    }
    run_container(&shared, &key, instance).await;
}

/// Walks Pending, Creating (with the repairing fault's loop) and the image pull. Returns
/// false when the group is gone or the pull failed.
async fn provision(shared: &Shared, key: &GroupKey, instance: Uuid) -> bool {
    let step = Duration::from_millis(shared.config.creating_ms);
    tokio::time::sleep(Duration::from_millis(shared.config.pending_ms)).await;
    if !set_provisioning(shared, key, instance, "Creating") {
        return false;
    }

    let Some(image) = with_group(shared, key, instance, |g| g.run.image.clone()) else {
        return false;
    };
    let pulling = Event::normal("Pulling", format!("pulling image \"{image}\""));
    if !add_container_event(shared, key, instance, pulling) {
        return false;
    }
    tokio::time::sleep(step).await;

    let faults = shared
        .faults
        .lock()
        .expect("fault lock poisoned")
        .faults
        .clone();
    if let Some(cycles) = faults.repairing_loop_cycles
        && !repairing_loop(shared, key, instance, cycles, step).await
    {
        return false;
    }

    let pull_fails = faults.image_pull_failure.as_deref();
    if pull_fails.is_some_and(|pattern| glob_matches(pattern, &image)) {
        fail_pull(shared, key, instance, &image);
        return false;
    }
    true
}

/// Cycles Repairing and Creating `cycles` times (0: until the group is gone). Returns false
/// when the group is gone.
async fn repairing_loop(
    shared: &Shared,
    key: &GroupKey,
    instance: Uuid,
    cycles: u32,
    step: Duration,
) -> bool {
    let mut done = 0;
    while cycles == 0 || done < cycles {
        for state in ["Repairing", "Creating"] {
            if !set_provisioning(shared, key, instance, state) {
                return false;
            }
            tokio::time::sleep(step).await;
        }
        done += 1;
    }
    true
}

fn fail_pull(shared: &Shared, key: &GroupKey, instance: Uuid, image: &str) {
    with_group(shared, key, instance, |g| {
        let message = format!(
            "The image '{image}' in container group '{}' is not accessible. Please check the image and registry credential.",
            g.name
        );
        g.provisioning_state = "Failed".to_string();
        g.state = Some("Failed".to_string());
        g.events.push(Event::warning("InaccessibleImage", message));
        if let Some(first) = g.containers.first_mut() {
            let failed = format!(
                "Failed to pull image \"{image}\": repository does not exist or may require authorization"
            );
            first.events.push(Event::warning("Failed", failed));
            first.current = ContainerState::waiting("ErrImagePull");
        }
    });
}

/// Runs the first container until it ends for good under its restart policy.
async fn run_container(shared: &Arc<Shared>, key: &GroupKey, instance: Uuid) {
    loop {
        let Some((run, stopped)) =
            with_group(shared, key, instance, |g| (g.run.clone(), g.stop_requested))
        else {
            return;
        };
        if stopped {
            return;
        }
        let exit_code = if run.simulated {
            mark_running(shared, key, instance, None);
            simulate::run(shared, key, instance, &run).await
        } else {
            match process::run(shared, key, instance, &run).await {
                Ok(code) => code,
                Err(message) => {
                    warn!(container_group = %key.name, error = %message, "container did not start");
                    let code = process::START_FAILURE_EXIT_CODE;
                    finish(shared, key, instance, code, &message, true);
                    return;
                }
            }
        };
        debug!(container_group = %key.name, exit_code, "container exited");
        let again = restarts(&run.restart_policy, exit_code);
        let detail = if exit_code == 0 { "Completed" } else { "Error" };
        let Some(stopped) = finish(shared, key, instance, exit_code, detail, !again) else {
            return;
        };
        if stopped || !again {
            return;
        }
        tokio::time::sleep(RESTART_DELAY).await;
        let restarted = with_group(shared, key, instance, |g| {
            if let Some(first) = g.containers.first_mut() {
                first.restart_count += 1;
                first.previous = Some(first.current.clone());
            }
        });
        if restarted.is_none() {
            return;
        }
    }
}

fn restarts(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Always" => true,
        "OnFailure" => exit_code != 0,
        _ => false,
    }
}

/// Marks the first container Running, with a Started event and the process id.
pub fn mark_running(shared: &Arc<Shared>, key: &GroupKey, instance: Uuid, pid: Option<i32>) {
    let started = with_group(shared, key, instance, |g| {
        g.pid = pid;
        g.state = Some("Running".to_string());
        if let Some(first) = g.containers.first_mut() {
            first.current = ContainerState {
                state: "Running".to_string(),
                start_time: Some(now_rfc3339()),
                exit_code: None,
                finish_time: None,
                detail_status: String::new(),
            };
            first
                .events
                .push(Event::normal("Started", "Started container"));
        }
    });
    if started.is_some() {
        super::lifecycle_faults::start_running_faults(shared, key, instance);
    }
}

/// Records the container's end; `last` means no restart follows. Returns whether a stop
/// was requested, or `None` when the group is gone.
fn finish(
    shared: &Shared,
    key: &GroupKey,
    instance: Uuid,
    exit_code: i32,
    detail: &str,
    last: bool,
) -> Option<bool> {
    with_group(shared, key, instance, |g| {
        g.pid = None;
        let stopped = g.stop_requested;
        if let Some(first) = g.containers.first_mut() {
            first.current = ContainerState {
                state: "Terminated".to_string(),
                start_time: first.current.start_time.clone(),
                exit_code: Some(exit_code),
                finish_time: Some(now_rfc3339()),
                detail_status: if stopped {
                    "Killed".to_string()
                } else {
                    detail.to_string()
                },
            };
        }
        let state = match (stopped, last, exit_code) {
            (true, _, _) => "Stopped",
            (false, false, _) => "Running",
            (false, true, 0) => "Succeeded",
            (false, true, _) => "Failed",
        };
        g.state = Some(state.to_string());
        stopped
    })
}
