"""Loading transformers models from a local folder first; the hub only when the user opted in to the network.

Order: a local folder (``path=/models/x``), then the local Hugging Face cache, then — only with ``HF_HUB_OFFLINE=0``
set explicitly — the hub. Without that opt-in a name that is neither a local folder nor in the cache fails at once
with :class:`ModelLoadError`: one line saying what to download and how to pass its local path; no network
connection is attempted (an offline machine would otherwise spend ~30 s in retries before the same answer).

Even a cache-only lookup can reach out: huggingface_hub (2.x) fetches an "agent harnesses" list from the hub when
it builds request headers unless its offline constant is set, and it reads that constant once, at import. So the CLI
calls :func:`offline_unless_opted_in` before anything imports it: ``HF_HUB_OFFLINE`` unset (or anything but an
explicit ``0``/``false``) becomes ``1`` for the run, which also keeps ``datasets`` (lm-eval's text tasks) on its
cache. ``HF_HUB_OFFLINE=0`` is the one switch that lets a run download models and datasets from the hub.

Output: transformers' progress bars ("Loading weights"), hub download bars and its repeated notices are quiet unless
``--verbose`` (:func:`configure_output`); under torchrun only rank 0 shows them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable
from most_eval.core.errors import ModelFilesError

#: the environment variable whose explicit value "0" lets a hub id be downloaded (the hub's own switch)
HUB_OPT_IN = "HF_HUB_OFFLINE"

_quiet = False  # transformers' bars and notices off: set by configure_output (the CLI); library use is untouched


class ModelLoadError(ModelFilesError, RuntimeError):
    """A model that cannot be loaded; one line naming the path and the fix."""


def hub_allowed() -> bool:
    """Whether a hub id may be fetched over the network: only when ``HF_HUB_OFFLINE=0`` (or false/no/off) is set
    explicitly and ``TRANSFORMERS_OFFLINE`` does not say 1. Offline-first: unset means offline."""
    return (os.environ.get(HUB_OPT_IN, "").strip().lower() in _FALSE
            and os.environ.get("TRANSFORMERS_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on"))


_FALSE = ("0", "false", "no", "off")


def offline_unless_opted_in() -> None:
    """Set ``HF_HUB_OFFLINE=1`` for this process unless the user opted in with ``HF_HUB_OFFLINE=0``; call it before
    huggingface_hub is imported (it reads the variable once, at import)."""
    if not hub_allowed() and os.environ.get(HUB_OPT_IN, "").strip().lower() not in _FALSE:
        os.environ[HUB_OPT_IN] = "1"


def configure_output(verbose: bool) -> None:
    """Quiet transformers / huggingface_hub (progress bars, warnings, advisories) unless ``verbose``.

    Environment settings are applied with ``setdefault`` (a value the user set wins) so they act on libraries
    imported later; libraries already imported are told through their own APIs.
    """
    global _quiet
    _quiet = not verbose
    if verbose:
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # hub downloads; transformers reads it at import
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    _quiet_loaded_libraries()


def _quiet_loaded_libraries() -> None:
    """Tell transformers and huggingface_hub, when already imported, to keep their bars and notices to themselves."""
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        if "TRANSFORMERS_VERBOSITY" not in os.environ or os.environ["TRANSFORMERS_VERBOSITY"] == "error":
            hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def load_pretrained(name_or_path: str | os.PathLike, loader: Callable[..., Any], what: str, *,
                    expect: str = "config.json", **kwargs) -> Any:
    """``loader(name_or_path, **kwargs)`` (a ``from_pretrained``): local folder first (it must hold ``expect``:
    ``tokenizer_config.json`` for a tokenizer folder), then cache, then — only with ``HF_HUB_OFFLINE=0`` — the hub."""
    if _quiet:
        _quiet_loaded_libraries()
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{path}: expected a model folder (config.json + weights), got a file")
        if not (path / expect).is_file():
            kind = "model" if expect == "config.json" else what
            raise ModelLoadError(f"{path}: no {expect} — not a transformers {kind} folder")
        try:
            return loader(str(path), local_files_only=True, **kwargs)
        except Exception as exc:  # transformers raises OSError/ValueError with long texts
            raise ModelLoadError(f"{path}: cannot load {what} ({str(exc).splitlines()[0][:200]})") from None
    name = str(name_or_path)
    short = name.rstrip("/").split("/")[-1]
    try:
        return loader(name, local_files_only=True, **kwargs)
    except Exception:
        pass
    if not hub_allowed():
        raise ModelLoadError(
            f"{name!r} is not a local folder and is not in the Hugging Face cache, and the hub is not contacted "
            f"unless {HUB_OPT_IN}=0 is set: on a machine with network run `hf download {name} --local-dir "
            f"/models/{short}`, copy that folder here and pass its path (path=/models/{short}), or set "
            f"{HUB_OPT_IN}=0 to download it")
    try:
        return loader(name, **kwargs)
    except Exception as exc:
        raise ModelLoadError(
            f"{name!r} is not a local folder and is not in the Hugging Face cache, and the hub could not serve it "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}): on a machine with "
            f"network run `hf download {name} --local-dir /models/{short}`, copy that folder here and pass its path "
            f"(path=/models/{short})") from None
