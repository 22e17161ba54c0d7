"""``python -m most_reference.train`` with rank 1 late to look for its final checkpoint (run by torchrun in
tests/test_train_distributed.py).

On rank 1, checking ``checkpoints/step_N/recipe_state.json`` first waits, at most 10 s, until the main process has
written that file: the order a loaded machine can produce, when the main process finishes its last step and saves
before rank 1 gets to look. Every other rank, and every other file, is checked as usual.
"""

from __future__ import annotations

import os
import pathlib
import runpy
import time

_is_file = pathlib.Path.is_file


def _late_is_file(path: pathlib.Path) -> bool:
    if path.name == "recipe_state.json":
        deadline = time.monotonic() + 10
        while not _is_file(path) and time.monotonic() < deadline:
            time.sleep(0.05)
    return _is_file(path)


if __name__ == "__main__":
    if os.environ.get("RANK") == "1":
        pathlib.Path.is_file = _late_is_file
    runpy.run_module("most_reference.train", run_name="__main__", alter_sys=True)
