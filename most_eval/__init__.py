"""most-eval: evaluation harness and reference implementation for speech-text LLMs built around MoST.

The Python API (:mod:`most_eval.api`)::

    import most_eval
    doc = most_eval.evaluate("offline-baseline", ["asr:librispeech-test-clean"], limit=2, output="runs/x")

Start reading with :mod:`most_eval.core.adapter` (the model contract) and :mod:`most_eval.core.task` (the task
contract); the layers, lowest first: ``core``, ``data``, ``scoring``, ``models``, ``results``, ``registry``, ``run``,
``report``, ``api``, ``cli``.
"""

__version__ = "0.1.0"

#: the API, imported on first use so that ``import most_eval`` stays light
_API = {"evaluate": "most_eval.api", "load_model": "most_eval.api", "list_tasks": "most_eval.api",
        "MostEvalError": "most_eval.core.errors"}

__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'most_eval' has no attribute {name!r}")
