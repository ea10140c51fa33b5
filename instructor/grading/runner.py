"""Inside the sandbox: execute one notebook in a kernel, then run the hidden tests' probes in that kernel.

Started by `instructor.grading.sandbox` with the job as JSON on stdin (so it is never on disk for the notebook to read
before the probes run). Writes `status.json` next to the notebook: informational only (which cells failed or timed
out, whether the kernel died); the submission could overwrite it, so the judge never awards points from it.

A cell (or a probe) that runs past `cell_seconds` is interrupted. If the kernel does not answer within
`INTERRUPT_GRACE` seconds after the interrupt (e.g. a `while True: pass` that the pinned ipykernel cannot
interrupt), the kernel is killed and a fresh one started; the cells that ran before are run again in it (the
notebook's state is rebuilt; the cell that ran out of time is skipped, as are earlier ones that did), and the rest
of the notebook and the probes run as usual, so later exercises are still graded. At most `MAX_RESTARTS` restarts;
the total time limit, enforced from outside, still bounds it all.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

INTERRUPT_GRACE = 10  # seconds a kernel has to answer after an interrupt before it is killed
MAX_RESTARTS = 3
MEMORY_WORDS = ("can't allocate memory", "out of memory", "cannot allocate memory")


@dataclass
class Step:
    """One cell to execute (its index in the notebook): a notebook cell, the probes' setup or one probe."""

    index: int
    kind: str  # "notebook", "setup" or "probe"


@dataclass
class Status:
    """What the runner reports (status.json)."""

    cells: int = 0
    errors: list = field(default_factory=list)  # [cell index, exception name]
    timeouts: list = field(default_factory=list)  # cell indexes (probes: index past the notebook's last cell)
    restarts: int = 0
    memory_errors: int = 0
    kernel_died: bool = False
    probes_ran: bool = False
    runner_error: str = ""


def _error(cell) -> tuple[str, str] | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output.get("ename") or "Error", str(output.get("evalue", ""))[:500]
    return None


class Kernel:
    """One kernel life: run cells with a deadline each; `run` says whether a cell finished, was interrupted or hung."""

    def __init__(self, nb, cell_seconds: int, work: Path, on_death: Callable[[], None]) -> None:
        from jupyter_client.manager import AsyncKernelManager
        from nbclient import NotebookClient

        self.cell_seconds = cell_seconds
        # The async manager, as nbclient expects: with the blocking one, nbclient's output reader blocks its event
        # loop, so no cell timeout ever fires (a `while True: pass` ran to the total limit).
        self.km = AsyncKernelManager(kernel_name="python3", transport="ipc")
        self.client = NotebookClient(nb, km=self.km, timeout=cell_seconds, allow_errors=True,
                                     interrupt_on_timeout=False, record_timing=False,
                                     resources={"metadata": {"path": str(work)}})
        self.on_death = on_death
        self.closing = False
        self.client.start_new_kernel()
        self.client.start_new_kernel_client()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        """nbclient can wait forever on a kernel that died mid-cell (os._exit): notice it and end the run."""
        process = getattr(self.km.provisioner, "process", None)
        while not self.closing and process is not None:
            if process.poll() is not None and not self.closing:
                self.on_death()
            time.sleep(0.5)

    def run(self, cell, index: int, store_history: bool = True) -> str:
        """Execute `cell`: "done", "interrupted" (ran out of time, the kernel survived) or "hung" (kill it)."""
        from nbclient.exceptions import CellTimeoutError

        try:
            self.client.execute_cell(cell, index, store_history=store_history)
            return "done"
        except CellTimeoutError:
            pass
        import nbformat
        from jupyter_core.utils import run_sync

        run_sync(self.km.interrupt_kernel)()
        self.client.timeout = INTERRUPT_GRACE
        try:
            self.client.execute_cell(nbformat.v4.new_code_cell("pass"), index, store_history=False)
            return "interrupted"
        except CellTimeoutError:
            return "hung"
        finally:
            self.client.timeout = self.cell_seconds

    def close(self) -> None:
        """Kill the kernel (it may be hung) and close the channels."""
        from jupyter_core.utils import run_sync

        self.closing = True
        try:
            if self.client.kc is not None:
                self.client.kc.stop_channels()
            if self.km.has_kernel:
                run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001, S110 - a kernel that is already gone is fine
            pass


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


def run_steps(nb, steps: list[Step], cell_seconds: int, work: Path, status: Status,
              on_death: Callable[[], None]) -> None:
    """Execute the steps in order, restarting a hung kernel and replaying what had run (see the module docstring)."""
    ran: list[Step] = []  # steps that finished (or were interrupted): replayed in a fresh kernel
    position = 0
    while position < len(steps):
        kernel = Kernel(nb, cell_seconds, work, on_death)
        try:
            for step in ran:  # rebuild the state in the new kernel; a probe's results are already written
                if step.kind != "probe" and kernel.run(nb.cells[step.index], step.index,
                                                       step.kind == "notebook") == "hung":
                    status.timeouts.append(step.index)
            while position < len(steps):
                step = steps[position]
                cell = nb.cells[step.index]
                outcome = kernel.run(cell, step.index, store_history=step.kind == "notebook")
                position += 1
                status.cells += step.kind == "notebook"
                if outcome != "done":
                    status.timeouts.append(step.index)
                    if outcome == "hung":
                        break
                    continue
                ran.append(step)
                if (error := _error(cell)) is not None:
                    status.errors.append([step.index, error[0]])
                    status.memory_errors += error[0] == "MemoryError" or any(w in error[1] for w in MEMORY_WORDS)
        finally:
            kernel.close()
        if position < len(steps):
            status.restarts += 1
            if status.restarts > MAX_RESTARTS:
                return


def main() -> int:
    """Run the job read from stdin; exit status 0 when the probes ran, 3 when they did not."""
    job = json.loads(sys.stdin.read())
    import nbformat
    from nbclient.exceptions import DeadKernelError

    base = Path(job["base"])
    work = base / "work"
    os.chdir(work)
    nb = nbformat.read(work / job["notebook"], as_version=4)
    status = Status()
    status_path = base / "status.json"
    steps = [Step(i, "notebook") for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    probes = probe_cells(job, base)
    steps += [Step(len(nb.cells) + i, "setup" if i == 0 else "probe") for i in range(len(probes))]
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in probes)

    def on_death() -> None:
        status.kernel_died = True
        write_status(status_path, status)
        os._exit(3)

    try:
        run_steps(nb, steps, job["cell_seconds"], work, status, on_death)
        status.probes_ran = status.restarts <= MAX_RESTARTS
    except DeadKernelError:
        status.kernel_died = True
    except Exception as exc:  # noqa: BLE001 - reported to the trusted side, which decides the status
        status.runner_error = f"{type(exc).__name__}: {str(exc)[:500]}"
    write_status(status_path, status)
    return 0 if status.probes_ran else 3


def write_status(path: Path, status: Status) -> None:
    """Write status.json through a new file of an unguessable name, then rename it over whatever the notebook left
    at `path` (opening a FIFO planted there would block)."""
    part = path.with_name(f"{path.name}.{os.urandom(8).hex()}")
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(status.__dict__))
        os.replace(part, path)
    except OSError:  # e.g. a full disk or a folder planted at `path`: the grader then reports a crash
        pass


if __name__ == "__main__":
    sys.exit(main())
