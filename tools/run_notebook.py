"""Execute a notebook top to bottom with nbclient and save it with its outputs.

Usage: ``python tools/run_notebook.py NOTEBOOK [OUTPUT]`` (OUTPUT defaults to NOTEBOOK).
The kernel runs in the current folder; parameters come from the environment
(``ECG_QUICK=1`` for a smoke run, ``ECG_OUT`` for the output folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ecg_utils._io import atomic_open  # noqa: E402


def execute(path: Path, out: Path, timeout: int = 3600) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={})
    client.execute(cwd=str(Path.cwd()))
    with atomic_open(out, "w", encoding="utf-8") as handle:
        nbformat.write(nb, handle)


if __name__ == "__main__":
    src = Path(sys.argv[1])
    execute(src, Path(sys.argv[2]) if len(sys.argv) > 2 else src)
