"""The training recipe's run log: OUTPUT/train_log.jsonl, TensorBoard and OUTPUT/run_info.json.

What a run writes about itself, kept apart from the recipe (train.py) that decides when to write it. `step_record`
turns the global sums of one optimizer step (Recipe._step) into its train_log.jsonl record (the fields are listed in
train.py's module docstring, item 3); `TrainLog` writes records on the main process: a JSON line, a log line and,
when the tensorboard package is installed, TensorBoard scalars. It also writes run_info.json and, on resume, drops the
lines of steps that are about to be redone.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger("most_reference.train")  # the recipe's logger: these are the recipe's lines


def step_record(stats: dict, step: int, stage_name: str, lr: float, tasks, seconds: float, expert_load) -> dict:
    """The train_log.jsonl record of one optimizer step from its global sums (Recipe._step): the token-mean LM loss,
    the mean balance loss, their sum (the objective), per-task token-mean LM loss and micro-batch count over `tasks`,
    lr, grad norm, target tokens, seconds, and the expert load when `expert_load` (an ExpertLoad) is given."""
    n, tokens = stats["n"], stats["tokens"]
    lm_loss = stats["lm"] / tokens if tokens else None
    aux_loss = stats["aux"] / n if n else None
    record = {
        "step": step,
        "stage": stage_name,
        "loss": lm_loss + aux_loss if n and tokens else None,
        "lm_loss": lm_loss,
        "aux_loss": aux_loss,
        "task_loss": {t: stats[f"task/{t}"] / stats[f"tokens/{t}"] for t in tasks if stats.get(f"tokens/{t}")},
        "task_micro_batches": {t: int(stats[f"count/{t}"]) for t in tasks if stats.get(f"count/{t}")},
        "lr": lr,
        "grad_norm": stats["grad_norm"],
        "tokens": int(tokens),
        "seconds": round(seconds, 4),
    }
    if expert_load:
        record["expert_load"] = expert_load.summary(stats["expert_counts"])
    return record


class TrainLog:
    """The run's files under OUTPUT: train_log.jsonl (one JSON line per logged step), tensorboard/ and run_info.json.
    Only the main process calls its methods (close aside, which does nothing where TensorBoard never opened)."""

    def __init__(self, out: Path):
        self.out = out
        self.path = out / "train_log.jsonl"
        self.tb = None

    def drop_steps_after(self, step: int) -> None:
        """On resume at `step`: a crashed run may have logged steps past its last checkpoint; they are about to be
        redone, so their lines go."""
        if self.path.is_file():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= step]
            self.path.write_text("".join(line + "\n" for line in kept))

    def open_tensorboard(self) -> str:
        """Starts the TensorBoard writer, or says it is skipped (no tensorboard package); returns that status."""
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.out / "tensorboard"))
            tb_status = f"writing {self.out / 'tensorboard'}"
        except ImportError:
            tb_status = "skipped: the tensorboard package is not installed (pip install tensorboard)"
        logger.info("TensorBoard: %s", tb_status)
        return tb_status

    def write_run_info(self, info: dict) -> None:
        """OUTPUT/run_info.json: what the run is (config, processes, batch geometry, parameters, resume point)."""
        (self.out / "run_info.json").write_text(json.dumps(info, indent=2, default=str))

    def write(self, record: dict, seconds: float) -> None:
        """One logged step (a `step_record`): its JSON line, a log line (`seconds` unrounded) and its TensorBoard
        scalars (loss, lr, grad norm, per-task loss, the expert load's max-over-mean)."""
        step = record["step"]
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        tasks = " ".join(f"{t}={v:.3f}" for t, v in record["task_loss"].items())
        logger.info("step %d [%s] loss %.4f (%s) lr %.2e %.2fs", step, record["stage"],
                    record["loss"] or float("nan"), tasks, record["lr"], seconds)
        if self.tb is not None:
            self.tb.add_scalar("loss", record["loss"] or 0.0, step)
            self.tb.add_scalar("lr", record["lr"], step)
            if record["grad_norm"] is not None:
                self.tb.add_scalar("grad_norm", record["grad_norm"], step)
            for t, v in record["task_loss"].items():
                self.tb.add_scalar(f"task_loss/{t}", v, step)
            for key, value in record.get("expert_load", {}).items():
                if key.endswith("max_over_mean"):
                    self.tb.add_scalar(f"expert_load/{key}", value, step)

    def close(self) -> None:
        """Closes the TensorBoard writer, if one was opened."""
        if self.tb is not None:
            self.tb.close()
