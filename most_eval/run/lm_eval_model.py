"""``lm_eval --model most-eval --model_args model=NAME,key=value,...``: lm-eval's registry entry that builds a
most-eval model by its registry name and serves it through :class:`most_eval.core.lm_eval_bridge.MostEvalLM`.

Importing this module registers it with lm-eval (``import most_eval.run.lm_eval_model`` before calling
``lm_eval.simple_evaluate(model="most-eval", model_args="model=hf-causal-lm,path=/models/x")``).
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.registry import register_model

from most_eval.core.lm_eval_bridge import MostEvalLM


class NamedMostEvalLM(MostEvalLM):
    """:class:`MostEvalLM` over the model lm-eval names: ``model=NAME`` and that model's ``--model-args``."""

    #: arguments lm-eval passes to every model, which most-eval models do not take
    LM_EVAL_ARGS = ("batch_size", "max_batch_size", "device")

    def __init__(self, model: str, **model_args: Any):
        from most_eval import registry

        device = model_args.get("device") or "cpu"
        args = {k: str(v) for k, v in model_args.items() if k not in self.LM_EVAL_ARGS and v is not None}
        super().__init__(registry.build_model(model, args, device=device))


try:
    register_model("most-eval")(NamedMostEvalLM)
except (AssertionError, ValueError):  # already registered (module imported twice)
    pass
