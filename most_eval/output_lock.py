"""One writer per output folder: an advisory lock on ``OUTPUT/.most-eval.lock``.

Two runs appending to one cache and rewriting one results.json could lose records; the second run is refused
instead, with a message naming the folder and the pid holding it. The lock is ``flock``: the kernel releases it
when its holder dies, however it dies, so a stale lock of a dead pid is simply taken over (the pid in the file is
only for the message). Under torchrun, rank 0 takes it once for the whole job.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = ".most-eval.lock"


class OutputBusy(Exception):
    """Another live run holds the output folder; ``str()`` is one line."""


class OutputLock:
    """Context manager holding the advisory lock of an output folder (created if needed)."""

    def __init__(self, output_dir: str | os.PathLike):
        self.output_dir = Path(output_dir)
        self.path = self.output_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "OutputLock":
        """Take the lock without waiting; OutputBusy if a live process holds it."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputBusy(f"{self.output_dir}: another most-eval run (pid {holder}) is writing to this output "
                             f"folder; wait for it to finish or pass another --output") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (closing the descriptor releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
