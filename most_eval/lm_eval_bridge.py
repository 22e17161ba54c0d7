"""A most-eval model seen by lm-evaluation-harness: text benchmarks beside the speech ones.

:class:`MostEvalLM` is an ``lm_eval.api.model.LM`` registered in lm-eval's registry as ``most-eval``; it serves
lm-eval's requests with the model's ``score_text`` / ``generate_text`` capabilities. most-eval uses it for
``--tasks text:<lm-eval task>``; lm-eval users can also call it directly
(``lm_eval --model most-eval --model_args model=hf-causal-lm,path=/models/x``).
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from most_eval.adapter import GENERATE_TEXT, SCORE_TEXT, Model

DEFAULT_MAX_GEN_TOKS = 256


class MostEvalLM(LM):
    """lm-eval's three request types over a most-eval :class:`~most_eval.adapter.Model`."""

    #: arguments lm-eval passes to every model, which most-eval models do not take
    LM_EVAL_ARGS = ("batch_size", "max_batch_size", "device")

    def __init__(self, model: Model | str, **model_args: Any):
        super().__init__()
        if isinstance(model, str):  # built by lm-eval from --model_args model=NAME,key=value,...
            from most_eval.cli import build_model

            device = model_args.get("device") or "cpu"
            args = {k: str(v) for k, v in model_args.items() if k not in self.LM_EVAL_ARGS and v is not None}
            model = build_model(model, args, device=device)
        self.model = model

    def _require(self, capability: str) -> None:
        if capability not in self.model.capabilities():
            raise NotImplementedError(f"model {self.model.name} has no {capability} capability")

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        """(log p(continuation | context), is greedy) per request."""
        self._require(SCORE_TEXT)
        contexts, continuations = zip(*[r.args for r in requests]) if requests else ((), ())
        return [(float(lp), bool(g)) for lp, g in self.model.score_text(list(contexts), list(continuations))]

    def loglikelihood_rolling(self, requests) -> list[float]:
        """Log-likelihood of whole texts (perplexity tasks): the text given an empty context."""
        self._require(SCORE_TEXT)
        texts = [r.args[0] for r in requests]
        return [float(lp) for lp, _ in self.model.score_text([""] * len(texts), texts)]

    def generate_until(self, requests) -> list[str]:
        """Greedy generation per request, cut at the request's ``until`` strings."""
        self._require(GENERATE_TEXT)
        prompts, stops, limits = [], [], []
        for r in requests:
            context, kwargs = r.args
            until = kwargs.get("until") or []
            stops.append([until] if isinstance(until, str) else list(until))
            prompts.append(context)
            limits.append(int(kwargs.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS)))
        out = []
        for limit in sorted(set(limits)):  # one call per token budget
            idx = [i for i, lim in enumerate(limits) if lim == limit]
            texts = self.model.generate_text([prompts[i] for i in idx], [stops[i] for i in idx], limit)
            out.extend(zip(idx, texts))
        return [text for _, text in sorted(out)]


try:
    register_model("most-eval")(MostEvalLM)
except (AssertionError, ValueError):  # already registered (module imported twice)
    pass
