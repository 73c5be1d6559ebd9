"""Create the demo deployment and its three flow runs, printing the run ids.

Usage: python deploy_flows.py POOL_NAME SUBSCRIPTION_ID RESOURCE_GROUP
Reads PREFECT_API_URL from the environment. The deployment pulls the flow from this
directory, which the emulator's local processes can read.
"""

import sys
from pathlib import Path

from prefect import flow
from prefect.deployments import run_deployment

HERE = Path(__file__).resolve().parent


def main() -> None:
    pool, subscription_id, resource_group = sys.argv[1:4]
    demo = flow.from_source(source=str(HERE), entrypoint="flows.py:aci_demo")
    deployment_id = demo.deploy(
        name="demo",
        work_pool_name=pool,
        build=False,
        push=False,
        print_next_steps=False,
        job_variables={
            "subscription_id": subscription_id,
            "resource_group_name": resource_group,
            "stream_output": True,
        },
    )
    print(f"deployment {deployment_id}", flush=True)
    for mode in ("complete", "fail", "exit"):
        run = run_deployment(
            name="aci-demo/demo",
            parameters={"mode": mode},
            timeout=0,
        )
        print(f"flow-run {mode} {run.id}", flush=True)


if __name__ == "__main__":
    main()
