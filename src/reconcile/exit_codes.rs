//! Explanations of the flow container's exit codes, for the Crashed state message.
//!
//! The set of codes and the message prefix follow Prefect 3.9.1's worker, so a run crashed
//! by this worker reads like one crashed by Prefect's own workers.

/// The exit code this worker uses when the container group vanished before its flow container
/// reported an exit code, the value the Python ACI worker uses for that case.
pub const GROUP_VANISHED: i64 = -1;

/// Windows' STATUS_CONTROL_C_EXIT, reported when a process ends on Ctrl+C or Ctrl+Break.
const STATUS_CONTROL_C_EXIT: i64 = 0xC000_013A;

/// Explains an exit code in one sentence.
pub fn explain_exit_code(code: i64) -> &'static str {
    match normalize(code) {
        0 => "The process exited cleanly.",
        GROUP_VANISHED => {
            "The container group disappeared before its flow container reported an exit code."
        }
        1 => "The process ended with a general error; the flow run logs show the exception.",
        125 => {
            "The container runtime could not start the container; check the image and \
                entrypoint."
        }
        126 => "The command was found but could not be executed; check its permissions.",
        127 => "The command was not found in the image; check the entrypoint and PATH.",
        137 => {
            "The process was killed (SIGKILL), most likely because it ran out of memory; \
                raise the memory job variable."
        }
        143 => {
            "The process was stopped with SIGTERM, as on a cancellation or a stop of the \
                container group."
        }
        247 => {
            "The process was stopped for using too much memory; raise the memory job \
                variable."
        }
        STATUS_CONTROL_C_EXIT => "The process was stopped by Ctrl+C or Ctrl+Break.",
        _ => {
            "The exit code is not one this worker knows; check the flow run and container \
              logs."
        }
    }
}

/// Builds the Crashed state message for a non-zero exit code.
pub fn crash_message(code: i64) -> String {
    format!(
        "Flow run infrastructure exited with non-zero status code {code}. {}",
        explain_exit_code(code)
    )
}

/// Maps a Windows NTSTATUS reported as a negative 32-bit value to its unsigned form.
fn normalize(code: i64) -> i64 {
    if code == i64::from(STATUS_CONTROL_C_EXIT as u32 as i32) {
        STATUS_CONTROL_C_EXIT
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_code_and_cause() {
        let message = crash_message(137);
        assert!(
            message.starts_with("Flow run infrastructure exited with non-zero status code 137. ")
        );
        assert!(message.contains("out of memory"));
    }

    #[test]
    fn known_codes_have_own_explanations() {
        let unknown = explain_exit_code(42);
        for code in [1, 125, 126, 127, 137, 143, 247, 0xC000_013A, GROUP_VANISHED] {
            assert_ne!(explain_exit_code(code), unknown, "code {code}");
        }
    }

    #[test]
    fn signed_ctrl_c_status_is_known() {
        let signed = i64::from(0xC000_013Au32 as i32);
        assert_eq!(explain_exit_code(signed), explain_exit_code(0xC000_013A));
    }

    #[test]
    fn sigterm_mentions_sigterm() {
        assert!(explain_exit_code(143).contains("SIGTERM"));
    }
}
