"""Sharding an evaluation across processes with torch.distributed (torchrun / accelerate launch set the env).

``torchrun --nproc-per-node N -m most_eval run ...``: every rank reads the same sample list and the same cache,
takes every N-th not-yet-done sample, appends its records to its own cache file, and rank 0 merges the files and
writes the results — the same records, hence the same numbers, as one process. gloo on CPU, NCCL on GPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (rank 0 of 1 when not launched distributed)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes results and shows progress."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def all_agree(self, ok: bool) -> bool:
        """True when ``ok`` holds on every rank (so a refusal on rank 0 stops every rank, not just one)."""
        if self.world_size == 1:
            return ok
        import torch
        import torch.distributed as dist

        device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
        flag = torch.tensor([1 if ok else 0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def all_sum(self, values: list[float]) -> list[float]:
        """Each value summed over every rank (identity in a single process)."""
        if self.world_size == 1:
            return list(values)
        import torch
        import torch.distributed as dist

        device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def shard(self, items: list) -> list:
        """This rank's share of ``items`` (round-robin, so long and short samples spread evenly)."""
        return items[self.rank::self.world_size]


def init_distributed(device: str) -> tuple[Dist, str]:
    """Join the process group when launched with WORLD_SIZE > 1; returns the Dist and this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend, timeout=timedelta(hours=2))
    if device == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    return Dist(dist.get_rank(), dist.get_world_size()), device


def finish_distributed() -> None:
    """Leave the process group cleanly."""
    try:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    except ImportError:  # pragma: no cover
        pass
