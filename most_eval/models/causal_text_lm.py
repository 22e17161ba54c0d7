"""A library class for adapters built on a causal LM: the text-LM capabilities (``score_text``, ``generate_text``)
and lm-eval's token level (``score_tokens``, ``max_length``, ``prefix_token_id``), computed as lm-eval's own
``HFLM`` computes them (``lm_eval --model hf``). ``hf-causal-lm`` and the MoST reference adapter mix it in."""

from __future__ import annotations

from functools import cached_property
from typing import Sequence


#: lm-eval's fallback context length when neither the config nor the tokenizer names one
DEFAULT_MAX_LENGTH = 2048


#: transformers' "no limit" value of ``tokenizer.model_max_length``
TOKENIZER_INFINITY = 1000000000000000019884624838656


class CausalTextLM:
    """The text-LM capabilities (``score_text``, ``generate_text``) and lm-eval's token level (``score_tokens``,
    ``max_length``, ``prefix_token_id``) for any adapter that has a causal LM as ``self.model``, its tokenizer as
    ``self.tokenizer``, ``self.device`` and ``text_batch_size``. Mixed into ``hf-causal-lm`` and the ``most``
    adapter, so both score text exactly as lm-eval's ``HFLM`` does.
    """

    text_batch_size: int = 1  # sequences per forward pass in score_tokens
    text_max_length_override: int = 0  # tokens per forward pass; 0: read from the config (``max_length``)

    @cached_property
    def max_length(self) -> int:
        """Tokens the model reads per forward pass: ``text_max_length_override`` if set, else the config's context
        length (``text_config`` first; ``n_positions``, ``max_position_embeddings``, ``n_ctx``), else the tokenizer's
        ``model_max_length``, else 2048 — the order lm-eval's HFLM uses."""
        if self.text_max_length_override:
            return self.text_max_length_override
        config = getattr(self.model.config, "text_config", None) or self.model.config
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            if getattr(config, attr, None) is not None:
                return int(getattr(config, attr))
        limit = getattr(self.tokenizer, "model_max_length", None)
        return int(limit) if limit is not None and limit != TOKENIZER_INFINITY else DEFAULT_MAX_LENGTH

    @property
    def prefix_token_id(self) -> int:
        """What an empty context is conditioned on: BOS, else EOS (``is None``, not falsiness: BOS may be id 0)."""
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.tokenizer.eos_token_id

    def _encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        """Token ids as lm-eval's HFLM makes them: the tokenizer's special-token default (``None``), unless the text
        already starts with the prefix token."""
        special = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        if add_special_tokens is None and text.startswith(self.tokenizer.decode(self.prefix_token_id)):
            special = {"add_special_tokens": False}
        return self.tokenizer.encode(text, **special)

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """(context ids, continuation ids) as lm-eval's ``TemplateLM.loglikelihood`` makes them."""
        if not context:  # conditioned on the prefix token, unless the continuation starts with it
            cont = self._encode(continuation, add_special_tokens=False)
            if cont and cont[0] == self.prefix_token_id:
                return cont[:1], cont[1:]
            return [self.prefix_token_id], cont
        n_spaces = len(context) - len(context.rstrip())  # trailing spaces belong to the continuation
        if n_spaces:
            context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
        whole, ctx = self._encode(context + continuation), self._encode(context)
        return ctx, whole[len(ctx):]

    def score_text(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[tuple[float, bool]]:
        """(summed log p(continuation | context), greedy) per pair, encoded as lm-eval encodes a loglikelihood
        request (so equal to the bridge's token path), then scored by :meth:`score_tokens`."""
        pairs = [self._encode_pair(c, x) for c, x in zip(contexts, continuations)]
        return self.score_tokens([c for c, _ in pairs], [x for _, x in pairs])

    def score_tokens(self, contexts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]]
                     ) -> list[tuple[float, bool]]:
        """Token-level ``score_text``: (summed natural-log probability of each continuation's tokens given its
        context's, whether greedy decoding yields exactly them). Contexts must be non-empty (an empty text context
        is ``[prefix_token_id]``); the model reads the last ``max_length`` tokens of context + continuation[:-1],
        so a long context loses its left end (as lm-eval's HFLM). An empty continuation scores (0.0, True)."""
        import torch

        limit = self.max_length + 1
        out: list[tuple[float, bool] | None] = [None] * len(contexts)
        todo = []
        for i, (ctx, cont) in enumerate(zip(contexts, continuations)):
            if not cont:
                out[i] = (0.0, True)
                continue
            if not ctx:
                raise ValueError("score_tokens needs at least one context token (use prefix_token_id)")
            if len(cont) > self.max_length:
                raise ValueError(f"continuation of {len(cont)} tokens exceeds max_length {self.max_length}")
            todo.append((i, (list(ctx) + list(cont))[-limit:][:-1], list(cont)))
        todo.sort(key=lambda t: -len(t[1]))  # longest first: each batch is padded to its first row
        for start in range(0, len(todo), self.text_batch_size):
            batch = todo[start:start + self.text_batch_size]
            width = len(batch[0][1])
            # right padding with id 0: causal attention keeps padding out of every real position
            ids = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
            for row, (_, inp, _) in enumerate(batch):
                ids[row, :len(inp)] = torch.tensor(inp)
            with torch.inference_mode():
                logp = torch.log_softmax(self.model(ids.to(self.device)).logits.float(), dim=-1)  # (B, T, vocab)
            for row, (i, inp, cont) in enumerate(batch):
                picked = logp[row, len(inp) - len(cont):len(inp)]  # (len(cont), vocab): the continuation's positions
                target = torch.tensor(cont, device=picked.device)
                out[i] = (picked.gather(1, target[:, None]).sum().item(),
                          bool((picked.argmax(-1) == target).all().item()))
        return out

    def generate_text(self, prompts: Sequence[str], until: Sequence[Sequence[str]], max_tokens: int) -> list[str]:
        """Greedy continuation; the prompt is encoded as lm-eval's HFLM does and left-truncated to
        ``max_length - max_tokens`` tokens so that the generation fits."""
        import torch

        keep = self.max_length - max_tokens
        if keep < 1:
            raise ValueError(f"cannot generate {max_tokens} tokens within max_length {self.max_length}")
        out = []
        for prompt, stops in zip(prompts, until):
            ids = torch.tensor([self._encode(prompt)[-keep:] or [self.prefix_token_id]], device=self.device)
            with torch.inference_mode():
                gen = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                          do_sample=False, pad_token_id=self.tokenizer.eos_token_id)
            text = self.tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True)
            for stop in stops:
                if stop and stop in text:
                    text = text[:text.index(stop)]
            out.append(text)
        return out
