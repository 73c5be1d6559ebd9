#!/usr/bin/env bash
# Deploys prefect-aci-worker into one Azure resource group and points its work pool at it.
#
# Steps: resource group, container registry, user-assigned identity, custom role, role
# assignments, worker image (built in ACR, so no local Docker), the worker's container
# group, and the work pool's job variable defaults through the Prefect API.
# Every step is safe to run again: each one creates what is missing and updates the rest.
#
# Usage: deploy.sh [--dry-run] [--config FILE]
#   --config FILE  shell file of KEY=VALUE lines (see sample.env); the environment also works
#   --dry-run      print every command instead of running it; needs only bash

# The jq programs below are single-quoted on purpose: jq, not the shell, expands their $names.
# shellcheck disable=SC2016
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
DRY_RUN=0
CONFIG=""

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

die() {
  echo "deploy.sh: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --config)
      [[ $# -ge 2 ]] || die "--config needs a file path"
      CONFIG="$2"
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown argument '$1'; run deploy.sh --help" ;;
  esac
  shift
done

if [[ -n "$CONFIG" ]]; then
  [[ -r "$CONFIG" ]] || die "config file '$CONFIG' is missing or unreadable"
  # shellcheck source=/dev/null
  source "$CONFIG"
fi

missing=()
for name in SUBSCRIPTION_ID RESOURCE_GROUP LOCATION ACR_NAME WORK_POOL PREFECT_API_URL PREFECT_API_KEY; do
  [[ -n "${!name:-}" ]] || missing+=("$name")
done
[[ ${#missing[@]} -eq 0 ]] || die "missing settings: ${missing[*]}; set them in the environment or in --config FILE"
export PREFECT_API_KEY

IDENTITY_NAME="${IDENTITY_NAME:-prefect-aci-worker}"
WORKER_GROUP="${WORKER_GROUP:-prefect-aci-worker}"
WORKER_NAME="${WORKER_NAME:-$WORKER_GROUP}"
IMAGE_TAG="${IMAGE_TAG:-latest}"
IMAGE_REPOSITORY="${IMAGE_REPOSITORY:-prefect-aci-worker}"
BUILD_IMAGE="${BUILD_IMAGE:-1}"
HTTP_PORT="${HTTP_PORT:-8080}"
WORKER_CPU="${WORKER_CPU:-0.5}"
WORKER_MEMORY_GB="${WORKER_MEMORY_GB:-0.5}"
SUBNET_ID="${SUBNET_ID:-}"
ROLE_NAME="${ROLE_NAME:-Prefect ACI Worker ($RESOURCE_GROUP)}"
ACR_SERVER="$ACR_NAME.azurecr.io"
IMAGE="${IMAGE:-$ACR_SERVER/$IMAGE_REPOSITORY:$IMAGE_TAG}"
RG_SCOPE="/subscriptions/$SUBSCRIPTION_ID/resourceGroups/$RESOURCE_GROUP"
POOL_URL="${PREFECT_API_URL%/}/work_pools/$WORK_POOL"
[[ "$HTTP_PORT" =~ ^[0-9]+$ ]] || die "HTTP_PORT '$HTTP_PORT' is not a port number"

WORK_DIR="$(mktemp -d)"
trap 'rm -rf "$WORK_DIR"' EXIT
chmod 700 "$WORK_DIR"

# Prints a command the way a shell would read it back.
show() {
  local quoted
  printf -v quoted '%q ' "$@"
  echo "+ ${quoted% }"
}

# Runs a command, or only prints it in dry-run mode.
run() {
  show "$@"
  if [[ $DRY_RUN -eq 0 ]]; then
    "$@"
  fi
}

# Runs a command and stores its output in the variable named $1. In dry-run mode the
# variable gets the placeholder $2, so later commands print with a readable stand-in.
capture() {
  local var="$1" placeholder="$2"
  shift 2
  show "$@"
  if [[ $DRY_RUN -eq 0 ]]; then
    local output
    output="$("$@")"
    printf -v "$var" '%s' "$output"
  else
    printf -v "$var" '%s' "$placeholder"
  fi
}

# Succeeds when a read-only query finds the resource. In dry-run mode it prints the
# query and reports "missing", so the output shows the full create sequence.
exists() {
  show "$@"
  [[ $DRY_RUN -eq 0 ]] && "$@" >/dev/null 2>&1
}

# Runs a command with its output going to a file readable only by this user, or only
# prints it in dry-run mode.
run_into() {
  local path="$1"
  shift
  echo "$(show "$@") > $path"
  if [[ $DRY_RUN -eq 0 ]]; then
    (umask 077 && "$@" >"$path")
  fi
}

# Writes stdin to a file readable only by this user. Dry-run prints a notice instead, and
# never the content, because the content contains PREFECT_API_KEY.
write_private() {
  local path="$1"
  if [[ $DRY_RUN -eq 1 ]]; then
    echo "+ write $path (mode 600, content not shown)"
    cat >/dev/null
  else
    (umask 077 && cat >"$path")
  fi
}

# Retries a command that can fail for a minute after a new role or identity, because
# Microsoft Entra ID replicates new objects with a delay.
run_retrying() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if run "$@"; then
      return 0
    fi
    echo "attempt $attempt failed; retrying in 20 s" >&2
    sleep 20
  done
  die "command failed 5 times: $*"
}

step() {
  echo "== $*"
}

step "subscription"
run az account set --subscription "$SUBSCRIPTION_ID"

step "resource group"
run az group create --name "$RESOURCE_GROUP" --location "$LOCATION" --output none

step "container registry"
if ! exists az acr show --name "$ACR_NAME" --resource-group "$RESOURCE_GROUP"; then
  run az acr create --name "$ACR_NAME" --resource-group "$RESOURCE_GROUP" \
    --location "$LOCATION" --sku Basic --output none
fi
capture ACR_ID "<acr-id>" az acr show --name "$ACR_NAME" --query id --output tsv

step "managed identity"
run az identity create --name "$IDENTITY_NAME" --resource-group "$RESOURCE_GROUP" \
  --location "$LOCATION" --output none
capture IDENTITY_ID "<identity-id>" az identity show --name "$IDENTITY_NAME" \
  --resource-group "$RESOURCE_GROUP" --query id --output tsv
capture IDENTITY_PRINCIPAL_ID "<identity-principal-id>" az identity show \
  --name "$IDENTITY_NAME" --resource-group "$RESOURCE_GROUP" --query principalId --output tsv
capture IDENTITY_CLIENT_ID "<identity-client-id>" az identity show \
  --name "$IDENTITY_NAME" --resource-group "$RESOURCE_GROUP" --query clientId --output tsv

step "custom role"
ROLE_FILE="$WORK_DIR/role-definition.json"
run_into "$ROLE_FILE" jq --arg name "$ROLE_NAME" --arg scope "$RG_SCOPE" \
  '.Name = $name | .AssignableScopes = [$scope]' "$HERE/role-definition.json"
capture ROLE_ID "" az role definition list --name "$ROLE_NAME" --scope "$RG_SCOPE" \
  --query '[0].name' --output tsv
if [[ -n "$ROLE_ID" ]]; then
  run az role definition update --role-definition "@$ROLE_FILE" --output none
else
  run az role definition create --role-definition "@$ROLE_FILE" --output none
fi

step "role assignments"
run_retrying az role assignment create --assignee-object-id "$IDENTITY_PRINCIPAL_ID" \
  --assignee-principal-type ServicePrincipal --role "$ROLE_NAME" --scope "$RG_SCOPE" --output none
run_retrying az role assignment create --assignee-object-id "$IDENTITY_PRINCIPAL_ID" \
  --assignee-principal-type ServicePrincipal --role AcrPull --scope "$ACR_ID" --output none

step "worker image"
if [[ "$BUILD_IMAGE" == 1 ]]; then
  run az acr build --registry "$ACR_NAME" --image "$IMAGE_REPOSITORY:$IMAGE_TAG" \
    --file "$REPO_ROOT/deploy/docker/Dockerfile" "$REPO_ROOT"
else
  echo "skipped: BUILD_IMAGE=$BUILD_IMAGE, using $IMAGE"
fi

step "worker container group"
PARAMS_FILE="$WORK_DIR/worker.parameters.json"
# jq reads the API key from its environment, so the key never appears in a command line.
run_into "$PARAMS_FILE" jq --null-input \
  --arg group "$WORKER_GROUP" --arg worker "$WORKER_NAME" --arg image "$IMAGE" \
  --arg server "$ACR_SERVER" --arg identity "$IDENTITY_ID" --arg client "$IDENTITY_CLIENT_ID" \
  --arg url "$PREFECT_API_URL" --arg pool "$WORK_POOL" --argjson port "$HTTP_PORT" \
  --arg cpu "$WORKER_CPU" --arg memory "$WORKER_MEMORY_GB" --arg subnet "$SUBNET_ID" \
  '{containerGroupName: $group, workerName: $worker, image: $image, registryServer: $server,
    identityId: $identity, identityClientId: $client, prefectApiUrl: $url,
    prefectApiKey: env.PREFECT_API_KEY, workPool: $pool, httpPort: $port, cpu: $cpu,
    memoryInGB: $memory, subnetId: $subnet} | map_values({value: .})'
run az deployment group create --resource-group "$RESOURCE_GROUP" --name "$WORKER_GROUP" \
  --template-file "$HERE/worker.json" --parameters "@$PARAMS_FILE" --output none

step "work pool defaults"
# The API key goes in a header file, so it never shows in the process list.
HEADER_FILE="$WORK_DIR/prefect-headers"
write_private "$HEADER_FILE" <<EOF
Authorization: Bearer $PREFECT_API_KEY
Content-Type: application/json
EOF
POOL_FILE="$WORK_DIR/pool.json"
PATCH_FILE="$WORK_DIR/pool-patch.json"
CURL=(curl --fail-with-body --silent --show-error --header "@$HEADER_FILE")
if ! exists "${CURL[@]}" --output /dev/null "$POOL_URL"; then
  # Prefect fills in the default base job template of a known pool type.
  run "${CURL[@]}" --request POST --output /dev/null \
    --data "{\"name\": \"$WORK_POOL\", \"type\": \"azure-container-instance\"}" \
    "${PREFECT_API_URL%/}/work_pools/"
fi
run_into "$POOL_FILE" "${CURL[@]}" "$POOL_URL"
run_into "$PATCH_FILE" jq --arg identity "$IDENTITY_ID" --arg server "$ACR_SERVER" \
  --arg subscription "$SUBSCRIPTION_ID" --arg group "$RESOURCE_GROUP" \
  '{base_job_template: (.base_job_template
    | .variables.properties.identities.default = [$identity]
    | .variables.properties.image_registry.default = {registry_url: $server, identity: $identity}
    | .variables.properties.subscription_id.default = $subscription
    | .variables.properties.resource_group_name.default = $group)}' "$POOL_FILE"
run "${CURL[@]}" --request PATCH --data "@$PATCH_FILE" "$POOL_URL"

step "done"
echo "worker group $WORKER_GROUP in $RESOURCE_GROUP serves work pool $WORK_POOL"
