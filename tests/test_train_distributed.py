"""Two processes (torchrun, gloo on CPU) with grad_accum A train exactly like one process with 2A: the recipe
deals the same micro-batches to the pair as to the single process (mixing.MixturePlan), so per-step losses and the
final weights agree within float tolerance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from test_train_recipe import SMALL_DATA, TINY

STEPS = 4
RTOL = 1e-5


def run(out: Path, nproc: int, grad_accum: int) -> None:
    sets = {**SMALL_DATA, "training.grad_accum": grad_accum, "training.threads": 1, "training.micro_batch_size": 4,
            "logging.every": 1, "checkpointing.every": 0, "export.enabled": False}
    args = ["-m", "most_reference.train", "--config", str(TINY), "--output", str(out), "--max-steps", str(STEPS)]
    for key, value in sets.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    if nproc == 1:
        cmd = [sys.executable] + args
    else:  # torchrun of this interpreter, never whichever one is first on PATH
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)] + args
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_processes_match_one_process_with_doubled_accumulation(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    run(two, nproc=2, grad_accum=1)
    run(one, nproc=1, grad_accum=2)
    assert json.loads((two / "run_info.json").read_text())["world_size"] == 2
    logs = [[json.loads(line) for line in (d / "train_log.jsonl").read_text().splitlines()] for d in (two, one)]
    assert [r["step"] for r in logs[0]] == [r["step"] for r in logs[1]] == list(range(1, STEPS + 1))
    for a, b in zip(*logs):
        assert a["tokens"] == b["tokens"] and a["task_micro_batches"] == b["task_micro_batches"]
        assert a["loss"] == pytest.approx(b["loss"], rel=RTOL)
        for task, loss in a["task_loss"].items():
            assert loss == pytest.approx(b["task_loss"][task], rel=RTOL)
    wa = load_file(str(two / "checkpoints" / f"step_{STEPS}" / "model.safetensors"))
    wb = load_file(str(one / "checkpoints" / f"step_{STEPS}" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert (wa[key] - wb[key]).abs().max() <= 1e-5, key
