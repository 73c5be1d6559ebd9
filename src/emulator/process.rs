//! Running a container's command as a local process group: the image-to-command mapping,
//! the environment, log capture and termination.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::unix::pipe;
use tokio::process::Command;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::config::{EmulatorConfig, glob_matches};
use super::lifecycle::{mark_running, with_group};
use super::state::{GroupKey, RunSpec, Shared};

/// Exit code reported when the command cannot be started, as a shell reports a command
/// that is not found.
pub const START_FAILURE_EXIT_CODE: i32 = 127;
/// PATH used when the emulator's own environment has none.
const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Time to wait for the output pipes to close after the process exited; a background
/// grandchild can keep them open.
const PIPE_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Interval at which termination checks whether the process group is gone.
const TERMINATE_POLL: Duration = Duration::from_millis(50);

/// Maps a container to the local command line: a leading entrypoint shim is dropped, and
/// the program of the first `--image-command` whose glob matches the image goes in front.
pub fn local_command(config: &EmulatorConfig, run: &RunSpec) -> Result<Vec<String>, String> {
    let mut command = run.command.clone();
    if command
        .first()
        .is_some_and(|first| config.entrypoint_shim.contains(first))
    {
        command.remove(0);
    }
    let mapping = config
        .image_command
        .iter()
        .find(|m| glob_matches(&m.pattern, &run.image));
    if let Some(mapping) = mapping {
        command.splice(0..0, mapping.program.iter().cloned());
    }
    if command.is_empty() {
        return Err(format!(
            "image '{}' has no local command: the container sets no command and no \
             --image-command pattern matches the image",
            run.image
        ));
    }
    Ok(command)
}

/// PATH for container processes: the --path-prepend directories, then the emulator's PATH.
fn container_path(config: &EmulatorConfig) -> String {
    let inherited = std::env::var("PATH").unwrap_or_else(|_| FALLBACK_PATH.to_string());
    let mut parts: Vec<String> = config
        .path_prepend
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    parts.push(inherited);
    parts.join(":")
}

fn working_directory(shared: &Shared, key: &GroupKey, instance: Uuid) -> std::io::Result<PathBuf> {
    let directory = shared
        .work_root
        .join(&key.subscription)
        .join(&key.resource_group)
        .join(format!(
            "{}-{}",
            key.name,
            &instance.simple().to_string()[..8]
        ));
    std::fs::create_dir_all(&directory)?;
    Ok(directory)
}

/// Runs the container's command and waits for it. Returns its exit code (128 plus the
/// signal number when a signal ended it), or why it could not start.
pub async fn run(
    shared: &Arc<Shared>,
    key: &GroupKey,
    instance: Uuid,
    run: &RunSpec,
) -> Result<i32, String> {
    let argv = local_command(&shared.config, run)?;
    let directory = working_directory(shared, key, instance)
        .map_err(|e| format!("cannot create the working directory: {e}"))?;
    // One pipe for stdout and stderr keeps their lines in the order they were written.
    let (reader, writer) = std::io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    let writer_copy = writer
        .try_clone()
        .map_err(|e| format!("cannot create a pipe: {e}"))?;
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .env_clear()
        .env("PATH", container_path(&shared.config))
        .env("HOME", &directory)
        .envs(run.environment.iter().map(|(k, v)| (k, v)))
        .current_dir(&directory)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_copy)
        .process_group(0)
        .kill_on_drop(true);
    let spawned = command.spawn();
    // The command keeps the pipe's write ends; dropping it lets the reader see the end.
    drop(command);
    let mut child = spawned.map_err(|e| format!("cannot start {:?}: {e}", argv[0]))?;
    let receiver = pipe::Receiver::from_owned_fd(OwnedFd::from(reader))
        .map_err(|e| format!("cannot read the output pipe: {e}"))?;
    let output = capture(shared.clone(), key.clone(), instance, receiver);
    mark_running(shared, key, instance, child.id().map(|id| id as i32));
    let status = child
        .wait()
        .await
        .map_err(|e| format!("cannot wait for the process: {e}"))?;
    let _ = tokio::time::timeout(PIPE_DRAIN_TIMEOUT, output).await;
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1)
}

/// Appends each line the stream produces to the group's log.
fn capture(
    shared: Arc<Shared>,
    key: GroupKey,
    instance: Uuid,
    stream: impl AsyncRead + Unpin + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if with_group(&shared, &key, instance, |g| g.logs.push(line)).is_none() {
                break;
            }
        }
    })
}

/// Sends SIGTERM to the process group, then SIGKILL if it is still there after `grace`.
pub async fn terminate(pid: i32, grace: Duration) {
    signal_group(pid, libc::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if !group_exists(pid) {
            return;
        }
        tokio::time::sleep(TERMINATE_POLL).await;
    }
    signal_group(pid, libc::SIGKILL);
}

/// Sends `signal` to every process of group `pid`.
pub fn signal_group(pid: i32, signal: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of this process.
    unsafe {
        libc::kill(-pid, signal);
    }
}

fn group_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process group exists.
    unsafe { libc::kill(-pid, 0) == 0 }
}
