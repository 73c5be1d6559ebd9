//! The reconcile loop: snapshot, plan, and apply the actions concurrently with a bounded
//! number in flight and never two at once for one flow run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::reconcile::{Action, Phase, plan};

use super::shutdown::ShutdownSignal;
use super::snapshot;
use super::state::{InFlightGuard, Shared};
use super::{submit, watch};

/// Jitter applied to the query interval, as Prefect's worker loops use (±30 %).
const INTERVAL_JITTER: f64 = 0.3;

/// Runs ticks until shutdown (or, with `--run-once`, until the runs of the first tick are
/// done), then waits for the actions in flight.
pub async fn run(shared: Arc<Shared>, mut shutdown: ShutdownSignal) {
    let semaphore = Arc::new(Semaphore::new(shared.config.max_concurrent_actions));
    let mut tasks = JoinSet::new();
    let mut ticks: u64 = 0;
    loop {
        let stop_claiming = shutdown.is_requested() || (shared.config.run_once && ticks > 0);
        tick(&shared, &semaphore, &mut tasks, stop_claiming).await;
        ticks += 1;
        reap(&mut tasks);
        if shutdown.is_requested() {
            break;
        }
        if shared.config.run_once && ticks > 1 && run_once_done(&shared, &tasks) {
            tracing::info!("--run-once: every flow run of the first pass is done");
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(jittered(shared.config.query_interval)) => {}
            _ = shutdown.requested() => {}
        }
    }
    drain(&mut tasks).await;
}

fn run_once_done(shared: &Shared, tasks: &JoinSet<()>) -> bool {
    tasks.is_empty() && shared.state().memory.runs.is_empty()
}

/// Waits for every action in flight, so a create that was sent is recorded before exit.
async fn drain(tasks: &mut JoinSet<()>) {
    if !tasks.is_empty() {
        tracing::info!(
            in_flight = tasks.len(),
            "waiting for actions in flight before exit"
        );
    }
    while let Some(result) = tasks.join_next().await {
        report_join(result);
    }
}

fn reap(tasks: &mut JoinSet<()>) {
    while let Some(result) = tasks.try_join_next() {
        report_join(result);
    }
}

fn report_join(result: Result<(), tokio::task::JoinError>) {
    if let Err(error) = result
        && error.is_panic()
    {
        tracing::error!(%error, "an action panicked; its flow run is planned again next tick");
    }
}

fn jittered(interval: Duration) -> Duration {
    let factor = rand::rng().random_range((1.0 - INTERVAL_JITTER)..=(1.0 + INTERVAL_JITTER));
    interval.mul_f64(factor)
}

/// Runs one pass: snapshot, plan, spawn the actions. The actions may outlive the tick, and
/// later ticks skip their runs until they finish.
async fn tick(
    shared: &Arc<Shared>,
    semaphore: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
    stop_claiming: bool,
) {
    let started = Instant::now();
    let snapshot = match snapshot::gather(shared, stop_claiming).await {
        Ok(snapshot) => snapshot,
        Err(error) => {
            tracing::warn!(%error, "skipping this reconcile pass");
            shared
                .metrics
                .record_reconcile(started.elapsed(), Err(error.metric_label()));
            shared.health.record_tick();
            return;
        }
    };
    shared.health.set_prefect_answered();
    shared.health.set_pool_read();
    let actions = {
        let mut state = shared.state();
        let in_flight = state.in_flight.clone();
        for (id, run) in state.memory.runs.iter_mut() {
            run.in_flight = in_flight.contains(id);
        }
        let planned = plan(&snapshot, &state.memory, &shared.config.planner);
        state.memory.orphans = planned.orphans;
        planned.actions
    };
    for action in actions {
        let Some(guard) = InFlightGuard::acquire(shared, action.flow_run_id()) else {
            continue;
        };
        let shared = shared.clone();
        let semaphore = semaphore.clone();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let _guard = guard;
            apply(&shared, action).await;
        });
    }
    update_gauges(shared, snapshot.now);
    shared.metrics.record_reconcile(started.elapsed(), Ok(()));
    shared.health.record_tick();
    shared.health.set_reconciled();
}

/// Applies one action inside a span naming it and its flow run.
async fn apply(shared: &Arc<Shared>, action: Action) {
    let span =
        tracing::info_span!("action", kind = action.kind(), flow_run.id = %action.flow_run_id());
    dispatch(shared, action).instrument(span).await;
}

async fn dispatch(shared: &Arc<Shared>, action: Action) {
    match action {
        Action::Claim(claim) => submit::claim(shared, claim).await,
        Action::CreateGroup(create) => submit::create_group(shared, create).await,
        Action::Adopt(adopt) => submit::adopt(shared, adopt).await,
        Action::ReadGroup(read) => {
            let arm = watch::client_for(shared, read.flow_run_id, &read.group);
            watch::read_group(shared, read.flow_run_id, &arm, &read.group).await
        }
        Action::FetchLogs(fetch) => watch::fetch_logs(shared, fetch).await,
        Action::SetInfrastructurePid { flow_run_id, value } => {
            watch::set_infrastructure_pid(shared, flow_run_id, value).await
        }
        Action::CrashRun(crash) => watch::crash(shared, crash).await,
        Action::CancelRun(cancel) => watch::cancel(shared, cancel).await,
        Action::DeleteGroup(cleanup) => watch::cleanup(shared, cleanup, false).await,
        Action::StopGroup(cleanup) => watch::cleanup(shared, cleanup, true).await,
        Action::ReleaseSlot { flow_run_id } => watch::release(shared, flow_run_id),
    }
}

/// Phases exported by the container groups gauge, each always present (zero when empty).
const PHASES: [&str; 7] = [
    "claimed",
    "creating",
    "provisioning",
    "running",
    "terminated",
    "cleaning",
    "gone",
];

fn phase_label(phase: &Phase) -> &'static str {
    match phase {
        Phase::Claimed { .. } => "claimed",
        Phase::Creating { .. } => "creating",
        Phase::Provisioning { .. } => "provisioning",
        Phase::Running { .. } => "running",
        Phase::Terminated { .. } => "terminated",
        Phase::Cleaning { .. } | Phase::Cancelling { .. } => "cleaning",
        Phase::Gone { .. } => "gone",
    }
}

fn update_gauges(shared: &Shared, now: OffsetDateTime) {
    let state = shared.state();
    let mut counts: Vec<(&'static str, i64)> = PHASES.iter().map(|p| (*p, 0)).collect();
    let mut oldest_wait = Duration::ZERO;
    for (id, run) in &state.memory.runs {
        let label = phase_label(&run.phase);
        if let Some(entry) = counts.iter_mut().find(|(p, _)| *p == label) {
            entry.1 += 1;
        }
        let waiting = matches!(
            run.phase,
            Phase::Claimed { .. } | Phase::Creating { .. } | Phase::Provisioning { .. }
        );
        if waiting && let Some(scheduled) = state.scheduled_at.get(id) {
            let wait = Duration::try_from(now - *scheduled).unwrap_or_default();
            oldest_wait = oldest_wait.max(wait);
        }
    }
    counts.push(("orphaned", state.memory.orphans.len() as i64));
    shared.metrics.set_groups_by_phase(&counts);
    shared.metrics.set_oldest_waiting(oldest_wait);
}
