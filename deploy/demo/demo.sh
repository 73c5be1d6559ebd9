#!/usr/bin/env bash
# Runs the example flow three times through prefect-aci-worker on this machine: a real
# Prefect server, the ACI emulator in place of Azure, and the worker, all on loopback
# ports. Expects Completed, Failed and Crashed, and no container group left afterwards.
#
# Environment:
#   PREFECT_ACI_TEST_VENV3  venv with prefect and prefect-azure (default .venv/prefect3)
#   DEMO_KEEP_SECONDS       keep everything running this long at the end (default 0)
#   DEMO_TIMEOUT_SECONDS    time allowed for the three runs to finish (default 300)
#   CARGO_TARGET_DIR        cargo's target directory (default ./target)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${PREFECT_ACI_TEST_VENV3:-$ROOT/.venv/prefect3}
PY=$VENV/bin/python
CLIENT=$ROOT/deploy/demo/demo_client.py
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
KEEP_SECONDS=${DEMO_KEEP_SECONDS:-0}
RUN_TIMEOUT=${DEMO_TIMEOUT_SECONDS:-300}
# Prefect's first start runs database migrations: about 15 s, longer on a busy machine.
SERVER_TIMEOUT=180
POOL=aci-demo
WORKER_NAME=demo-worker
SUBSCRIPTION=00000000-0000-4000-8000-000000000de0
RESOURCE_GROUP=rg-prefect-demo
LOCATION=westeurope

WORK=$(mktemp -d "${TMPDIR:-/tmp}/prefect-aci-demo.XXXXXX")
PIDS=()

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }

# Stops every process this script started, newest first: SIGTERM to its process group,
# SIGKILL after 10 s.
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if ((${#PIDS[@]})); then
    step "Stopping the worker, the emulator and the Prefect server"
    local i pid
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
      pid=${PIDS[i]}
      kill -TERM -- "-$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.5
      done
      kill -KILL -- "-$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
  fi
  if ((status != 0)); then
    for log in worker emulator server; do
      if [[ -s $WORK/$log.log ]]; then
        printf '\n--- last lines of %s.log ---\n' "$log"
        tail -n 25 "$WORK/$log.log"
      fi
    done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts "$@" in its own process group with output to $WORK/$1.log and records its pid.
start_logged() {
  local name=$1
  shift
  setsid "$@" >"$WORK/$name.log" 2>&1 </dev/null &
  PIDS+=("$!")
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [[ ! -x $PY ]]; then
  echo "no Python venv at $VENV: run 'make demo' or 'make venv' first" >&2
  exit 1
fi

step "Building prefect-aci-worker and aci-emulator"
cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --bin prefect-aci-worker --bin aci-emulator
WORKER_BIN=$TARGET_DIR/debug/prefect-aci-worker
EMULATOR_BIN=$TARGET_DIR/debug/aci-emulator

PREFECT_PORT=$(free_port)
EMULATOR_PORT=$(free_port)
WORKER_PORT=$(free_port)
IDENTITY_HEADER=$("$PY" -c 'import secrets; print(secrets.token_hex(16))')
export PREFECT_HOME=$WORK/prefect-home
export PREFECT_API_URL=http://127.0.0.1:$PREFECT_PORT/api
export PREFECT_SERVER_ANALYTICS_ENABLED=false
unset PREFECT_API_KEY PREFECT_PROFILE
ARM=http://127.0.0.1:$EMULATOR_PORT
ADMIN=$ARM/admin

step "Starting a Prefect server on 127.0.0.1:$PREFECT_PORT (PREFECT_HOME in $WORK)"
start_logged server "$VENV/bin/prefect" server start --host 127.0.0.1 --port "$PREFECT_PORT"
"$PY" "$CLIENT" wait-http "$PREFECT_API_URL/health" "$SERVER_TIMEOUT" "${PIDS[-1]}"

step "Starting the ACI emulator on $ARM"
start_logged emulator "$EMULATOR_BIN" --listen "127.0.0.1:$EMULATOR_PORT" \
  --identity-header "$IDENTITY_HEADER" --path-prepend "$VENV/bin" \
  --pending-ms 200 --creating-ms 300
"$PY" "$CLIENT" wait-http "$ADMIN/counters" 30 "${PIDS[-1]}"
"$PY" "$CLIENT" create-resource-group "$ARM" "$ARM/msi/token" "$IDENTITY_HEADER" \
  "$SUBSCRIPTION" "$RESOURCE_GROUP" "$LOCATION"
note "resource group $RESOURCE_GROUP in subscription $SUBSCRIPTION ($LOCATION)"

step "Creating work pool $POOL of type azure-container-instance"
"$VENV/bin/prefect" --no-prompt work-pool create "$POOL" --type azure-container-instance >/dev/null

step "Starting the worker (health, readiness and metrics on 127.0.0.1:$WORKER_PORT)"
export IDENTITY_ENDPOINT=$ARM/msi/token IDENTITY_HEADER
start_logged worker "$WORKER_BIN" start --pool "$POOL" --name "$WORKER_NAME" \
  --http-addr "127.0.0.1:$WORKER_PORT" --arm-endpoint "$ARM" \
  --azure-auth managed-identity --query-seconds 2 --heartbeat-seconds 10 \
  --read-interval-running-seconds 3 --log-interval-seconds 2
"$PY" "$CLIENT" wait-http "http://127.0.0.1:$WORKER_PORT/readyz" 60 "${PIDS[-1]}"
note "ready"

step "Deploying deploy/demo/flows.py and creating three flow runs"
declare -A RUN_IDS=()
while read -r kind label id; do
  case $kind in
    deployment) note "deployment aci-demo/demo: $label" ;;
    flow-run)
      RUN_IDS[$label]=$id
      note "flow run $label: $id"
      ;;
  esac
done < <(cd "$WORK" && "$PY" "$ROOT/deploy/demo/deploy_flows.py" "$POOL" "$SUBSCRIPTION" "$RESOURCE_GROUP")
if ((${#RUN_IDS[@]} != 3)); then
  echo "deploy_flows.py created ${#RUN_IDS[@]} flow runs, expected 3" >&2
  exit 1
fi

step "Waiting for the runs to finish (at most $RUN_TIMEOUT s)"
WATCH_ARGS=()
for mode in complete fail exit; do
  WATCH_ARGS+=("$mode=${RUN_IDS[$mode]}")
done
WATCH_OUTPUT=$WORK/watch.out
"$PY" "$CLIENT" watch "$PREFECT_API_URL" "$RUN_TIMEOUT" "${WATCH_ARGS[@]}" | tee "$WATCH_OUTPUT" | grep -v '^final '

step "Final states"
declare -A EXPECTED=([complete]=COMPLETED [fail]=FAILED [exit]=CRASHED)
OUTCOME_OK=true
while read -r _ label type rest; do
  if [[ $type == "${EXPECTED[$label]}" ]]; then
    mark=ok
  else
    mark="UNEXPECTED (wanted ${EXPECTED[$label]})"
    OUTCOME_OK=false
  fi
  note "$(printf '%-9s %-10s %s' "$label" "$type" "$mark")"
  message=${rest#*:}
  message=${message# }
  if [[ -n $message ]]; then
    note "          $message"
  fi
done < <(grep '^final ' "$WATCH_OUTPUT")

step "Container groups left in the emulator"
if ! "$PY" "$CLIENT" wait-no-groups "$ADMIN" 60; then
  OUTCOME_OK=false
fi
LEFT=$("$PY" "$CLIENT" groups "$ADMIN")
if [[ -z $LEFT ]]; then
  note "none"
else
  note "$LEFT"
fi

step "Where to look"
note "Prefect UI:      http://127.0.0.1:$PREFECT_PORT/runs (work pool $POOL)"
note "Worker metrics:  http://127.0.0.1:$WORKER_PORT/metrics"
note "Worker log:      $WORK/worker.log (removed on exit)"
if ((KEEP_SECONDS > 0)); then
  note "keeping everything up for $KEEP_SECONDS s (DEMO_KEEP_SECONDS); Ctrl-C stops it"
  sleep "$KEEP_SECONDS"
else
  note "everything stops now; set DEMO_KEEP_SECONDS=600 to keep it up for browsing"
fi

if [[ $OUTCOME_OK != true ]]; then
  echo "demo FAILED: outcomes differ from Completed, Failed, Crashed with no groups left" >&2
  exit 1
fi
step "Demo passed: Completed, Failed and Crashed as expected, no container group left"
