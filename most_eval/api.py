"""The Python API, as lm-eval's ``simple_evaluate``: score a model on tasks in one call, get the results document.

    import most_eval

    doc = most_eval.evaluate("offline-baseline", ["asr:librispeech-test-clean"], limit=2, output="runs/x")
    doc["results"]["asr:librispeech-test-clean"]["wer"]     # the same dict runs/x/results.json holds

``most-eval run`` is a thin layer over :func:`evaluate`; both give the same numbers for the same inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from most_eval.core.adapter import Model


def evaluate(model: str | Model, tasks: str | list[str], *, model_args: str | dict | None = None,
             output: str | Path | None = None, limit: int | None = None, batch_size: int = 8,
             data_root: str | Path | None = None, judge: str | None = None, seed: int = 0,
             **options: Any) -> dict | None:
    """Evaluate ``model`` on ``tasks`` and return the results document (the dict ``results.json`` holds).

    ``model``: a registry name (``most-eval list models``) with ``model_args`` (``"key=value,..."``, a JSON object
    text or a dict), or a built :class:`~most_eval.core.adapter.Model`. ``tasks``: task or family names, as a list
    or ``"asr,slm:swuggy-dev"``. ``output``: the run folder (``results.json``, ``samples/``, the cache; default
    ``runs/<model>``); a second call on the same folder resumes from its cache. ``data_root``: the folder holding
    each dataset under its official name (default: the bundled mini suite). ``judge``: the ASR model that
    transcribes generated speech (``"paper"``: each task's reference judge).

    ``options`` are the other ``most-eval run`` options under their Python names: ``seeds`` (a count, ``"0,1,2"``
    or a list of seeds), ``judge_args``, ``embedder``,
    ``task_args``, ``num_fewshot``, ``device`` (``"cpu"``), ``use_cache`` (True), ``max_audio_seconds`` (600),
    ``show_progress`` (False),
    ``verbose`` (False), ``console`` (a rich Console for progress), ``command`` (recorded in results.json) and
    ``note`` (a callable given each advisory line, e.g. which default judge was used).

    Bad input raises a one-line :class:`~most_eval.core.errors.MostEvalError` before any model is loaded. Launched
    under torchrun, ranks other than 0 return None (rank 0 writes and returns the document).
    """
    from most_eval.run.setup import run_evaluation

    if isinstance(model, str) and isinstance(model_args, dict):
        model_args = {k: str(v) for k, v in model_args.items()}
    if "command" not in options:
        options["command"] = f"most_eval.evaluate({model if isinstance(model, str) else model.name!r}, {tasks!r})"
    outcome = run_evaluation(model, tasks, model_args=model_args, output=Path(output) if output else None,
                             data_root=Path(data_root) if data_root else None, limit=limit, batch_size=batch_size,
                             judge=judge, seed=seed, **options)
    return None if outcome is None else outcome.document


def load_model(name: str, device: str = "cpu", seed: int = 0, **args: Any) -> Model:
    """A registered model built from its ``--model-args`` given as keywords: ``load_model("hf-whisper",
    path="/models/whisper-large-v3")``. Unknown names and keys raise one-line errors with the close matches."""
    from most_eval.registry import build_model

    return build_model(name, {k: str(v) for k, v in args.items()}, device=device, seed=seed)


def list_tasks(family: str | None = None) -> list[str]:
    """Every registered task name (of one family when ``family`` is given), sorted; ``text:<lm-eval task>`` names
    any lm-eval task and is not listed."""
    from most_eval.registry import families

    found = families()
    if family is not None and family not in found:
        from most_eval.registry import UnknownNameError

        raise UnknownNameError("task family", family, list(found))
    return sorted(name for fam in found.values() if family in (None, fam.name) for name in fam.tasks)
