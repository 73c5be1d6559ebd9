"""HTTP steps of demo.sh against Prefect, the ACI emulator and the worker (stdlib only).

Usage:
  demo_client.py wait-http URL SECONDS [PID]
  demo_client.py create-resource-group ARM_URL IDENTITY_ENDPOINT IDENTITY_HEADER SUBSCRIPTION GROUP LOCATION
  demo_client.py watch API_URL SECONDS LABEL=FLOW_RUN_ID...
  demo_client.py wait-no-groups ADMIN_URL SECONDS
  demo_client.py groups ADMIN_URL

`wait-http` exits 1 if URL does not return 200 within SECONDS, or as soon as process PID
has exited. `watch` prints each state change and, at the end, one line `final LABEL TYPE NAME: MESSAGE`
per run. It exits 1 if a run is not final within SECONDS. `wait-no-groups` exits 1 if
container groups remain after SECONDS.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
POLL_SECONDS = 1.0


def request(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as response:
        text = response.read().decode()
    return json.loads(text) if text else None


def process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_http(url, seconds, pid=None):
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        if pid is not None and not process_exists(int(pid)):
            print(f"process {pid} exited before {url} returned 200", file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return 0
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    print(f"{url} did not return 200 within {seconds} s", file=sys.stderr)
    return 1


def create_resource_group(arm, identity_endpoint, identity_header, subscription, group, location):
    query = urllib.parse.urlencode(
        {"api-version": "2019-08-01", "resource": "https://management.azure.com"}
    )
    token = request(
        "GET", f"{identity_endpoint}?{query}", headers={"x-identity-header": identity_header}
    )["access_token"]
    request(
        "PUT",
        f"{arm}/subscriptions/{subscription}/resourcegroups/{group}?api-version=2021-04-01",
        {"location": location},
        {"authorization": f"Bearer {token}"},
    )
    return 0


def watch(api_url, seconds, labelled_ids):
    runs = dict(item.split("=", 1) for item in labelled_ids)
    last = {label: None for label in runs}
    deadline = time.monotonic() + float(seconds)
    while True:
        states = {}
        for label, run_id in runs.items():
            state = request("GET", f"{api_url}/flow_runs/{run_id}")["state"] or {}
            states[label] = state
            name = state.get("name")
            if name != last[label]:
                print(f"    {label:<9} -> {name}", flush=True)
                last[label] = name
        if all(s.get("type") in FINAL_STATES for s in states.values()):
            break
        if time.monotonic() > deadline:
            print(f"runs not final within {seconds} s", file=sys.stderr)
            return 1
        time.sleep(POLL_SECONDS)
    for label, state in states.items():
        message = (state.get("message") or "").replace("\n", " ")
        print(f"final {label} {state['type']} {state['name']}: {message}")
    return 0


def group_names(admin):
    return [g["name"] for g in request("GET", f"{admin}/groups")]


def wait_no_groups(admin, seconds):
    deadline = time.monotonic() + float(seconds)
    while group_names(admin):
        if time.monotonic() > deadline:
            return 1
        time.sleep(POLL_SECONDS)
    return 0


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "wait-http":
        return wait_http(*args)
    if command == "create-resource-group":
        return create_resource_group(*args)
    if command == "watch":
        return watch(args[0], args[1], args[2:])
    if command == "wait-no-groups":
        return wait_no_groups(*args)
    if command == "groups":
        for name in group_names(args[0]):
            print(name)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:
        sys.exit(130)
