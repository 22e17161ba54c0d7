"""A most-eval model seen by lm-evaluation-harness: text benchmarks beside the speech ones.

:class:`MostEvalLM` is an ``lm_eval.api.model.TemplateLM`` over a built :class:`~most_eval.core.adapter.Model`; it
serves lm-eval's requests with the model's text capabilities. most-eval uses it for ``--tasks text:<lm-eval task>``.
Built from a registry name instead (what lm-eval's ``--model most-eval --model_args model=NAME,...`` does), it is
:class:`most_eval.run.lm_eval_model.NamedMostEvalLM`, registered in lm-eval's registry as ``most-eval``.

Two paths, chosen per model (:attr:`MostEvalLM.token_level`):

* **Token path** — the model has ``score_tokens(context_ids, continuation_ids)`` and the attributes ``tokenizer``
  (a transformers tokenizer: ``encode``/``decode``/``eos_token_id``), ``max_length`` (tokens per forward pass) and
  ``prefix_token_id`` (``hf-causal-lm`` has them). Then lm-eval's own code does what its ``HFLM`` does, so scores
  equal ``lm_eval --model hf``'s (tests/test_lm_eval_parity.py checks it to 1e-4):

  - ``loglikelihood``: ``TemplateLM.loglikelihood`` → ``_encode_pair`` (trailing spaces of the context move to the
    continuation; the pair is encoded whole and split at the context's length; an empty context becomes
    ``[prefix_token_id]``) → :meth:`MostEvalLM._loglikelihood_tokens`, which left-truncates each
    context + continuation to its last ``max_length + 1`` tokens before calling ``score_tokens``.
  - ``loglikelihood_rolling`` (perplexity tasks): the document's tokens cut into lm-eval's rolling windows
    (``lm_eval.utils.get_rolling_token_windows`` + ``make_disjoint_window``, ``max_seq_len = max_length``, the first
    window conditioned on ``prefix_token_id``), every window scored, the log-likelihoods summed.
  - ``tok_encode`` uses the tokenizer's own special-token default (Llama-style tokenizers add BOS), except for text
    that already starts with the prefix token — as ``HFLM.tok_encode``.

* **Text path** — the model has only ``score_text(contexts, continuations)`` (the adapter contract, text in):
  lm-eval's ``(context, continuation)`` strings go to ``score_text`` as they are, and a rolling-perplexity document
  goes as ``("", document)``. Tokenisation, the empty-context prefix and any length limit are then the model's
  business; no windows are cut, so a model with a context limit should offer the token path.

``generate_until`` always goes through ``generate_text`` (greedy, cut at the request's ``until`` strings).
"""

from __future__ import annotations

from lm_eval.api.model import TemplateLM
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from most_eval.core.adapter import GENERATE_TEXT, SCORE_TEXT, Model

DEFAULT_MAX_GEN_TOKS = 256

#: what a model needs for the token path, besides ``score_text``
TOKEN_LEVEL = ("score_tokens", "tokenizer", "max_length", "prefix_token_id")


class MostEvalLM(TemplateLM):
    """lm-eval's three request types over a most-eval :class:`~most_eval.core.adapter.Model` (see the module docstring)."""

    def __init__(self, model: Model):
        super().__init__()
        self.model = model
        self.token_level = all(hasattr(model, name) for name in TOKEN_LEVEL)
        # lm-eval logs tokenizer facts (and TemplateLM reads chat templates) from ``self.tokenizer``
        self.tokenizer = model.tokenizer if self.token_level else None

    def _require(self, capability: str) -> None:
        if capability not in self.model.capabilities():
            raise NotImplementedError(f"model {self.model.name} has no {capability} capability")

    # ---- the token path: what TemplateLM needs ----------------------------------------------------------
    @property
    def eot_token_id(self) -> int:
        return self.model.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        """The token an empty context (and the first rolling window) is conditioned on: the model's BOS, else EOS."""
        return self.model.prefix_token_id

    @property
    def max_length(self) -> int:
        """Tokens per forward pass: longer inputs are left-truncated (loglikelihood) or windowed (rolling)."""
        return self.model.max_length

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        """Token ids of ``string`` as ``HFLM.tok_encode`` makes them (``None``: the tokenizer's default)."""
        special = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        if add_special_tokens is None and string.startswith(self.tokenizer.decode(self.prefix_token_id)):
            special = {"add_special_tokens": False}  # the text already starts with the prefix token
        return self.tokenizer.encode(string, **special)

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        """Score ``(request strings | None, context ids, continuation ids)`` triples with ``score_tokens``.

        As ``HFLM._loglikelihood_tokens``: the model reads the last ``max_length`` tokens of context + continuation
        (minus the continuation's last token), so a long context loses its left end.
        """
        if not requests:
            return []
        limit = self.max_length + 1
        contexts, continuations = [], []
        for _, context_enc, continuation_enc in requests:
            if not context_enc or not continuation_enc:
                raise ValueError("loglikelihood needs a non-empty context and continuation (in tokens)")
            if len(continuation_enc) > self.max_length:
                raise ValueError(f"continuation of {len(continuation_enc)} tokens is longer than the model's "
                                 f"maximum length {self.max_length}")
            keep = limit - len(continuation_enc)  # >= 1: context tokens that fit beside the continuation
            contexts.append(list(context_enc)[-keep:])
            continuations.append(list(continuation_enc))
        scores = self.model.score_tokens(contexts, continuations)
        out = []
        for (request_str, _, _), (logp, greedy) in zip(requests, scores):
            answer = (float(logp), bool(greedy))
            if request_str is not None:  # rolling windows are cached per document, below
                self.cache_hook.add_partial("loglikelihood", request_str, answer)
            out.append(answer)
        return out

    # ---- lm-eval's request types --------------------------------------------------------------------------
    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """(log p(continuation | context), is greedy) per request."""
        self._require(SCORE_TEXT)
        if self.token_level:
            return super().loglikelihood(requests, disable_tqdm=disable_tqdm)
        contexts, continuations = zip(*[r.args for r in requests]) if requests else ((), ())
        return [(float(lp), bool(g)) for lp, g in self.model.score_text(list(contexts), list(continuations))]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Log-likelihood of whole documents (perplexity tasks): summed over rolling windows of ``max_length``."""
        self._require(SCORE_TEXT)
        texts = [r.args[0] for r in requests]
        if not self.token_level:
            return [float(lp) for lp, _ in self.model.score_text([""] * len(texts), texts)]
        windows, owner = [], []
        for i, text in enumerate(texts):
            for context_enc, continuation_enc in map(make_disjoint_window, get_rolling_token_windows(
                    token_list=self.tok_encode(text), prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length, context_len=1)):
                windows.append((None, context_enc, continuation_enc))
                owner.append(i)
        totals = [0.0] * len(texts)
        for i, (logp, _) in zip(owner, self._loglikelihood_tokens(windows)):
            totals[i] += logp
        for text, total in zip(texts, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), total)
        return totals

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
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
