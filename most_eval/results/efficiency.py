"""What a task cost, beside what it scored: the ``efficiency`` block of results.json.

Per task: wall seconds, samples per second (samples the model actually ran, cached ones excluded), seconds of audio
the model consumed or produced, the real-time factor (model seconds per audio second), and the peak resident memory
of the process (and of the GPU when one is used) while the task ran. Peaks are per task: Linux's peak-RSS counter is
reset at the start of each task (``/proc/self/clear_refs``), as is torch's CUDA peak.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    """Peak resident memory since the last reset (VmHWM), else since the process started (ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cuda():
    """torch.cuda when torch is already imported and a GPU is in use, else None (never imports torch itself)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda
    return None


class TaskMeter:
    """Measures one task: start it before the task, feed it each model call, read :meth:`result` at the end."""

    def __init__(self):
        _reset_peak_rss()
        cuda = _cuda()
        if cuda is not None:
            cuda.reset_peak_memory_stats()
        self.started = time.perf_counter()
        self.model_seconds = 0.0
        self.audio_seconds = 0.0
        self.samples = 0

    def model_call(self, seconds: float, samples: int, audio_seconds: float) -> None:
        """One batch: model time, samples in it, seconds of audio it consumed or produced."""
        self.model_seconds += seconds
        self.samples += samples
        self.audio_seconds += audio_seconds

    def add_ranks(self, dist) -> None:
        """Under torchrun: sum samples, model and audio seconds over every rank (a collective: call it on all)."""
        if dist.world_size > 1:
            self.samples, self.model_seconds, self.audio_seconds = dist.all_sum(
                [self.samples, self.model_seconds, self.audio_seconds])
            self.samples = int(self.samples)

    def result(self) -> dict:
        """The task's efficiency entry (values rounded for reading; None where not measured)."""
        wall = time.perf_counter() - self.started
        cuda = _cuda()
        return {
            "wall_seconds": round(wall, 3),
            "samples_run": self.samples,
            "samples_per_second": round(self.samples / wall, 3) if self.samples and wall > 0 else None,
            "model_seconds": round(self.model_seconds, 3),
            "audio_seconds": round(self.audio_seconds, 3) if self.audio_seconds else None,
            "rtf": round(self.model_seconds / self.audio_seconds, 4) if self.audio_seconds else None,
            "peak_rss_mb": round(_peak_rss_mb(), 1),
            "peak_gpu_mb": round(cuda.max_memory_allocated() / 2**20, 1) if cuda is not None else None,
        }


def summary_line(task: str, entry: dict) -> str:
    """One terminal line: throughput, real-time factor and memory of a task."""
    parts = [f"{entry['wall_seconds']:.1f} s"]
    if entry.get("samples_per_second"):
        parts.append(f"{entry['samples_per_second']:.1f} samples/s")
    if entry.get("rtf") is not None:
        parts.append(f"RTF {entry['rtf']:.3f}")
    parts.append(f"peak RSS {entry['peak_rss_mb']:.0f} MB")
    if entry.get("peak_gpu_mb") is not None:
        parts.append(f"peak GPU {entry['peak_gpu_mb']:.0f} MB")
    return f"{task}: " + ", ".join(parts)
