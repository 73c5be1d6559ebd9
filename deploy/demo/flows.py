"""The example flow that `make demo` runs on the ACI emulator.

One flow with a `mode` parameter covers the three outcomes the worker must report:
`complete` finishes normally, `fail` raises so the engine reports Failed, and `exit`
kills the container's main process with SIGKILL, as the out-of-memory killer would.
The container then exits with code 137 before the engine can report anything, so the
worker marks the run Crashed. (`prefect flow-run execute` runs the flow in a child
process and reports Crashed itself when only that child exits, so a plain `sys.exit`
in the flow would not reach the worker.)
"""

import os
import signal
import sys

from prefect import flow, get_run_logger


@flow(name="aci-demo")
def aci_demo(mode: str = "complete") -> str:
    logger = get_run_logger()
    logger.info("Running in mode %r on %s", mode, sys.platform)
    print(f"hello from the container, mode={mode}")
    if mode == "fail":
        raise RuntimeError("the demo flow raised on purpose")
    if mode == "exit":
        sys.stdout.flush()
        os.kill(os.getppid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
    return f"finished in mode {mode}"
