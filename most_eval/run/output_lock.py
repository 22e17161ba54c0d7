"""One writer per output folder: an advisory ``flock`` on the output folder itself.

Two runs appending to one cache and rewriting one results.json could lose records; the second run is refused
instead, with a message naming the folder and (on Linux, from ``/proc/locks``) the pid holding it. The lock is taken
on the folder's own descriptor, so it writes nothing: a refused run leaves an earlier run's folder byte for byte as it
was. The kernel releases the lock when its holder dies, however it dies, so a dead run's lock is simply taken over.
Under torchrun, rank 0 takes it once for the whole job.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from most_eval.core.errors import MostEvalError


class OutputBusy(MostEvalError):
    """Another live run holds the output folder; ``str()`` is one line."""


def lock_holder(path: Path) -> str:
    """The pid holding a ``flock`` on ``path``, from ``/proc/locks`` (``"unknown"`` where that cannot be read)."""
    try:
        st = os.stat(path)
        inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "FLOCK" in fields and inode in fields:
                return fields[fields.index(inode) - 1]
    except OSError:
        pass
    return "unknown"


class OutputLock:
    """Context manager holding the advisory lock of an output folder (created if needed)."""

    def __init__(self, output_dir: str | os.PathLike):
        self.output_dir = Path(output_dir)
        self._fd: int | None = None

    def acquire(self) -> "OutputLock":
        """Take the lock without waiting; OutputBusy if a live process holds it."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.output_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusy(f"{self.output_dir}: another most-eval run (pid {lock_holder(self.output_dir)}) is "
                             f"writing to this output folder; wait for it to finish or pass another --output") from None
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
