//! Flow run states and the orchestration result of a state proposal.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The type of a Prefect state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StateType {
    Scheduled,
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
    Crashed,
    Paused,
    Cancelling,
}

impl StateType {
    /// Every state type, in Prefect's declaration order.
    pub const ALL: [StateType; 9] = [
        Self::Scheduled,
        Self::Pending,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Crashed,
        Self::Paused,
        Self::Cancelling,
    ];

    /// True for the terminal types: COMPLETED, FAILED, CANCELLED and CRASHED.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::Crashed
        )
    }

    /// Returns the name Prefect gives a state of this type by default, for example `Cancelled`.
    pub fn default_name(self) -> &'static str {
        match self {
            Self::Scheduled => "Scheduled",
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
            Self::Crashed => "Crashed",
            Self::Paused => "Paused",
            Self::Cancelling => "Cancelling",
        }
    }
}

/// Details attached to a state. Only the fields a worker reads or sets are typed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StateDetails {
    pub flow_run_id: Option<Uuid>,
    pub task_run_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub scheduled_time: Option<OffsetDateTime>,
    pub transition_id: Option<Uuid>,
    pub pause_key: Option<String>,
    pub retriable: Option<bool>,
}

/// A state as the server returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub id: Option<Uuid>,
    #[serde(rename = "type")]
    pub state_type: StateType,
    pub name: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub timestamp: Option<OffsetDateTime>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub state_details: StateDetails,
}

impl State {
    /// True if the state is terminal.
    pub fn is_final(&self) -> bool {
        self.state_type.is_final()
    }

    /// True if the state is PENDING, whatever its name.
    pub fn is_pending(&self) -> bool {
        self.state_type == StateType::Pending
    }
}

/// A proposed state: the `state` member of a `set_state` request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateCreate {
    #[serde(rename = "type")]
    pub state_type: StateType,
    pub name: String,
    pub message: Option<String>,
    pub state_details: StateDetails,
}

impl StateCreate {
    /// Builds a state of `state_type` with its default name and a fresh `transition_id`.
    pub fn new(state_type: StateType, flow_run_id: Uuid) -> Self {
        Self::named(state_type, state_type.default_name(), flow_run_id)
    }

    /// Builds a state of `state_type` named `name`, for example PENDING named `Submitting`.
    pub fn named(state_type: StateType, name: impl Into<String>, flow_run_id: Uuid) -> Self {
        Self {
            state_type,
            name: name.into(),
            message: None,
            state_details: StateDetails {
                flow_run_id: Some(flow_run_id),
                transition_id: Some(Uuid::new_v4()),
                ..StateDetails::default()
            },
        }
    }

    /// Sets the message shown with the state in the Prefect UI.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// The server's decision on a state proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrchestrationStatus {
    Accept,
    Reject,
    Abort,
    Wait,
}

/// The reason for the server's decision. `delay_seconds` is set for WAIT.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrchestrationDetails {
    /// `accept_details`, `reject_details`, `abort_details` or `wait_details`.
    #[serde(rename = "type")]
    pub details_type: Option<String>,
    pub reason: Option<String>,
    /// Seconds to wait before proposing again (WAIT only).
    pub delay_seconds: Option<f64>,
}

/// The body of a `set_state` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrchestrationResult {
    pub status: OrchestrationStatus,
    #[serde(default)]
    pub details: OrchestrationDetails,
    /// The run's state after the call: the new state on ACCEPT, the current one otherwise.
    #[serde(default)]
    pub state: Option<State>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_types_round_trip() {
        for state_type in StateType::ALL {
            let text = serde_json::to_string(&state_type).unwrap();
            assert_eq!(
                text,
                format!("\"{}\"", state_type.default_name().to_uppercase())
            );
            let back: StateType = serde_json::from_str(&text).unwrap();
            assert_eq!(back, state_type);
        }
    }

    #[test]
    fn final_types() {
        let finals: Vec<_> = StateType::ALL
            .into_iter()
            .filter(|t| t.is_final())
            .collect();
        assert_eq!(
            finals,
            [
                StateType::Completed,
                StateType::Failed,
                StateType::Cancelled,
                StateType::Crashed
            ]
        );
    }

    #[test]
    fn wait_result_decodes() {
        let body = r#"{"status":"WAIT","details":{"type":"wait_details","delay_seconds":3,
            "reason":"Scheduled time is in the future"},"state":null}"#;
        let result: OrchestrationResult = serde_json::from_str(body).unwrap();
        assert_eq!(result.status, OrchestrationStatus::Wait);
        assert_eq!(result.details.delay_seconds, Some(3.0));
        assert!(result.state.is_none());
    }

    #[test]
    fn state_decodes_both_timestamp_forms() {
        for ts in [
            "2026-12-04T06:22:56.089604Z",
            "2026-12-04T06:22:56.089604+00:00",
        ] {
            let body = format!(
                r#"{{"id":null,"type":"PENDING","name":"Pending","timestamp":"{ts}",
                "message":null,"data":null,"state_details":{{"pause_timeout":null}}}}"#
            );
            let state: State = serde_json::from_str(&body).unwrap();
            assert!(state.is_pending());
            assert_eq!(state.timestamp.unwrap().microsecond(), 89604);
        }
    }
}
