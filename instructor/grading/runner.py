"""Inside the sandbox: execute one notebook in a kernel, then run the hidden tests' probes in that kernel.

Started by `instructor.grading.sandbox` with the job as JSON on stdin (so it is never on disk for the notebook to read
before the probes run). Writes `status.json` next to the notebook: informational only (which cells failed or timed
out, whether the kernel died); the submission could overwrite it, so the judge never awards points from it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path


def _error_name(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output.get("ename") or "Error"
    return None


MODULE = "_vae_grade_kernel_side"  # where the probes' harness lives in the kernel: sys.modules, not the user namespace


def probe_cells(job: dict, base: Path) -> list[str]:
    """The exact sources the runner executes in the student's kernel after the notebook: set up, then one per probe.

    Each is a single ``exec(...)`` statement with its own globals (its value None, so nothing reaches ``_`` or
    ``Out``); the only hidden-test code in them is the assignment's probes (``job["probes_source"]``).
    """
    kernel_side = Path(__file__).with_name("kernel_side.py").read_text()
    boot = (
        "import sys, types\n"
        "from IPython import get_ipython\n"
        f"module = types.ModuleType({MODULE!r})\n"
        f"exec(compile({kernel_side!r}, '<grader>', 'exec'), module.__dict__)\n"
        f"sys.modules[{MODULE!r}] = module\n"
        f"module.setup({job['probes_source']!r}, {str(base / job['out_dir'])!r}, {job['nonce']!r}, "
        f"get_ipython().user_ns, {job['probe_seconds']})\n"
    )
    calls = [f"import sys\nsys.modules[{MODULE!r}].probe({gid!r})\n" for gid in job["probes"]]
    return [f"exec({source!r}, {{}})" for source in (boot, *calls)]


def main() -> int:
    """Run the job read from stdin; exit status 0 when the probes ran, 3 when the kernel died first."""
    job = json.loads(sys.stdin.read())
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    base = Path(job["base"])
    work = base / "work"
    os.chdir(work)
    nb = nbformat.read(work / job["notebook"], as_version=4)
    status: dict = {"cells": 0, "errors": [], "timeouts": [], "kernel_died": False, "probes_ran": False}
    km = KernelManager(kernel_name="python3", transport="ipc")
    client = NotebookClient(nb, km=km, timeout=job["cell_seconds"], allow_errors=True, interrupt_on_timeout=True,
                            record_timing=False, resources={"metadata": {"path": str(work)}})
    status_path = base / "status.json"
    finished = threading.Event()

    def watchdog() -> None:
        """nbclient can wait forever on a kernel that died mid-cell (os._exit): notice it and end the run."""
        while not finished.wait(0.5):
            if km.has_kernel and not km.is_alive() and not finished.is_set():
                status["kernel_died"] = True
                status_path.write_text(json.dumps(status))
                os._exit(3)

    try:
        with client.setup_kernel():
            threading.Thread(target=watchdog, daemon=True).start()
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                status["cells"] += 1
                started = time.monotonic()
                client.execute_cell(cell, index)
                if not km.is_alive():  # os._exit(), a segfault or a kill: nothing left to grade
                    raise DeadKernelError(f"the kernel died in cell {index}")
                if time.monotonic() - started >= job["cell_seconds"]:
                    status["timeouts"].append(index)
                elif (name := _error_name(cell)) is not None:
                    status["errors"].append([index, name])
            cells = [nbformat.v4.new_code_cell(source) for source in probe_cells(job, base)]
            nb.cells.extend(cells)
            first = len(nb.cells) - len(cells)
            for offset, cell in enumerate(cells):  # not in In/_ih, no execution count, nothing in the notebook's names
                client.execute_cell(cell, first + offset, store_history=False)
            status["probes_ran"] = True
            finished.set()  # the kernel's shutdown below is not a death
    except DeadKernelError:
        status["kernel_died"] = True
    except Exception as exc:  # noqa: BLE001 - reported to the trusted side, which decides the status
        status["runner_error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
    finished.set()
    status_path.write_text(json.dumps(status))
    return 0 if status["probes_ran"] else 3


if __name__ == "__main__":
    sys.exit(main())
