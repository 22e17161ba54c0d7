"""Loading transformers models from a local folder first; a hub id only where the network allows it.

Offline (no network, or ``HF_HUB_OFFLINE=1``), a name that is neither a local folder nor in the local Hugging Face
cache fails with :class:`ModelLoadError`: one line saying what to download and how to pass its local path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable


class ModelLoadError(RuntimeError):
    """A model that cannot be loaded; one line naming the path and the fix."""


def load_pretrained(name_or_path: str | os.PathLike, loader: Callable[..., Any], what: str, **kwargs) -> Any:
    """``loader(name_or_path, **kwargs)`` (a ``from_pretrained``), local folder first, then cache, then hub."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{path}: expected a model folder (config.json + weights), got a file")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path}: no config.json — not a transformers model folder")
        try:
            return loader(str(path), local_files_only=True, **kwargs)
        except Exception as exc:  # transformers raises OSError/ValueError with long texts
            raise ModelLoadError(f"{path}: cannot load {what} ({str(exc).splitlines()[0][:200]})") from None
    name = str(name_or_path)
    hint = (f"{name!r} is not a local folder and is not in the Hugging Face cache, and the hub cannot be reached: "
            f"on a machine with network run `hf download {name} --local-dir /models/{name.split('/')[-1]}`, "
            f"copy that folder here and pass its path (path=/models/{name.split('/')[-1]})")
    try:
        return loader(name, local_files_only=True, **kwargs)
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        raise ModelLoadError(hint)
    try:
        return loader(name, **kwargs)
    except Exception:
        raise ModelLoadError(hint) from None
