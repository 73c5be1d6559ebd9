"""Compute expected rendering outputs with Prefect's own code.

Run with the Prefect 3.9.1 venv's python:

    .venv/prefect3/bin/python tests/parity/generate.py [--check]

The script talks to the Prefect server at PREFECT_API_URL, or starts
`prefect server start` on a free 127.0.0.1 port with a temporary PREFECT_HOME
and stops it afterwards. It creates the blocks and variables that cases.json
declares, renders every case with `BaseJobConfiguration.resolve_for_flow_run`
(which calls `from_template_and_values`, `apply_values`,
`resolve_block_document_references` and `resolve_variables`), and writes
expected.json. With --check it prints the JSON to stdout instead.
"""

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# Seconds to wait for a fresh server: the first start creates and migrates its database.
SERVER_START_TIMEOUT = 120


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def prefect_server():
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    home = tempfile.mkdtemp(prefix="parity-prefect-home-")
    port = free_port()
    env = dict(os.environ, PREFECT_HOME=home, PREFECT_SERVER_ANALYTICS_ENABLED="false")
    prefect = str(Path(sys.executable).parent / "prefect")
    log = open(Path(home) / "server.log", "w")
    proc = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited early; see {home}/server.log")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server not healthy after {SERVER_START_TIMEOUT}s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def substitute_block_ids(value, ids):
    if isinstance(value, dict):
        return {k: substitute_block_ids(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_block_ids(v, ids) for v in value]
    if isinstance(value, str) and value.startswith("@block:"):
        return ids[value]
    return value


async def create_blocks(client, blocks):
    from prefect.client.schemas.actions import (
        BlockDocumentCreate, BlockSchemaCreate, BlockTypeCreate,
    )
    from prefect.exceptions import ObjectNotFound

    ids = {}
    for block in blocks:
        slug = block["slug"]
        try:
            block_type = await client.read_block_type_by_slug(slug)
            schema = await client.get_most_recent_block_schema_for_block_type(block_type.id)
        except ObjectNotFound:
            block_type = await client.create_block_type(BlockTypeCreate(name=slug, slug=slug))
            schema = None
        if schema is None:
            fields = {
                "title": slug, "type": "object", "properties": {},
                "secret_fields": block["secret_fields"], "block_schema_references": {},
                "block_type_slug": slug,
            }
            schema = await client.create_block_schema(
                BlockSchemaCreate(fields=fields, block_type_id=block_type.id, capabilities=[])
            )
        for document in block["documents"]:
            created = await client.create_block_document(
                BlockDocumentCreate(
                    name=document["name"], data=document["data"],
                    block_schema_id=schema.id, block_type_id=block_type.id,
                )
            )
            ids[f"@block:{slug}/{document['name']}"] = str(created.id)
    return ids


def load_template(spec, case):
    if "template_file" in case:
        return json.loads((ROOT / case["template_file"]).read_text())
    properties = {**spec["typed_variables"], **case.get("extra_variables", {})}
    return {
        "job_configuration": case["job_configuration"],
        "variables": {"type": "object", "properties": properties},
    }


def capture_class():
    """A stand-in configuration class: Prefect's own classmethods build it, and it
    keeps the rendered dict as it is instead of validating it into a model."""
    from prefect.workers.base import BaseJobConfiguration

    class Captured(dict):
        _get_base_config_defaults = staticmethod(BaseJobConfiguration._get_base_config_defaults)
        from_template_and_values = classmethod(
            BaseJobConfiguration.from_template_and_values.__func__
        )
        resolve_for_flow_run = classmethod(BaseJobConfiguration.resolve_for_flow_run.__func__)

        def prepare_for_flow_run(self, **kwargs):
            pass

    return Captured


async def render_case(client, flow_id, spec, case, ids):
    from prefect.client.schemas.objects import WorkPool

    template = substitute_block_ids(load_template(spec, case), ids)
    deployment_vars = substitute_block_ids(case.get("deployment"), ids)
    flow_run_vars = substitute_block_ids(case.get("flow_run"), ids)
    deployment_id = await client.create_deployment(
        flow_id=flow_id, name=f"case-{uuid.uuid4()}", job_variables=deployment_vars or {},
    )
    flow_run = await client.create_flow_run_from_deployment(
        deployment_id, job_variables=flow_run_vars,
    )
    pool = WorkPool(name="parity", type="azure-container-instance", base_job_template=template)
    saved_env = dict(os.environ)
    os.environ.update(case.get("worker_env", {}))
    try:
        rendered = await capture_class().resolve_for_flow_run(
            flow_run, client=client, work_pool=pool, worker_name="parity-worker",
        )
        return {"configuration": dict(rendered)}
    except Exception as exc:  # the exception class is the expected outcome
        return {"error": type(exc).__name__}
    finally:
        os.environ.clear()
        os.environ.update(saved_env)


async def generate(api_url):
    os.environ["PREFECT_API_URL"] = api_url
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import VariableCreate

    spec = json.loads((HERE / "cases.json").read_text())
    results = {}
    async with get_client() as client:
        ids = await create_blocks(client, spec["blocks"])
        for variable in spec["variables"]:
            await client.create_variable(VariableCreate(name=variable["name"], value=variable["value"]))
        flow_id = await client.create_flow_from_name(f"parity-{uuid.uuid4()}")
        for case in spec["cases"]:
            results[case["name"]] = await render_case(client, flow_id, spec, case, ids)
    return results


def main():
    with prefect_server() as api_url:
        results = asyncio.run(generate(api_url))
    text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    if "--check" in sys.argv:
        sys.stdout.write(text)
    else:
        (HERE / "expected.json").write_text(text)


if __name__ == "__main__":
    main()
