"""What a notebook needs on a hosted service (Colab, Kaggle): the course's requirements that are missing there.

Every notebook's first cell, on Colab or Kaggle, clones the course when `utils` cannot be imported and then calls
`prepare_hosted()`. On your own machine (`make lab`) nothing here runs.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# requirements.txt name -> the module that shows it is installed. Only what the notebooks import: the hosted
# services bring their own Jupyter, and their own torch build (CUDA), which must not be replaced.
RUNTIME_MODULES = {"torch": "torch", "numpy": "numpy", "matplotlib": "matplotlib", "ipywidgets": "ipywidgets",
                   "tqdm": "tqdm"}


def missing_requirements(requirements: Path | None = None) -> list[str]:
    """Pinned requirements (`name==version`) whose module cannot be found in this Python."""
    requirements = requirements or ROOT / "requirements.txt"
    missing = []
    for line in requirements.read_text().splitlines():
        name = line.split("#")[0].split("==")[0].strip()
        module = RUNTIME_MODULES.get(name.lower())
        if module and importlib.util.find_spec(module) is None:
            missing.append(line.split("#")[0].strip())
    return missing


def prepare_hosted(run=subprocess.run) -> list[str]:
    """On a hosted service: pip-install the missing requirements, turn on Colab's widget support; returns what it
    installed. `run` is subprocess.run (a test passes a stand-in)."""
    missing = missing_requirements()
    if missing:
        print("installing", ", ".join(missing), flush=True)
        run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
        importlib.invalidate_caches()
    if "google.colab" in sys.modules:  # ipywidgets 8 sliders need Colab's custom widget manager
        try:
            from google.colab import output  # type: ignore[import-not-found]

            output.enable_custom_widget_manager()
        except Exception as exc:  # noqa: BLE001 - the course runs without sliders too
            print(f"note: interactive widgets may not show ({type(exc).__name__})")
    print(f"course ready: {ROOT}")
    return missing
