"""``hf-causal-lm``: a transformers causal LM from a local folder, for text benchmarks through lm-eval.

``--model hf-causal-lm --model-args path=/models/DeepSeek-V2-Lite --tasks text:<lm-eval task>`` reports a text
benchmark beside the speech ones (text-ability retention of a speech-text LLM's backbone).

Besides the text-level contract (``score_text``, ``generate_text``) it offers the token level the lm-eval bridge uses
(:mod:`most_eval.core.lm_eval_bridge`): ``score_tokens`` with ``tokenizer``, ``max_length`` and ``prefix_token_id``, which
reproduce lm-eval's own ``HFLM`` (``lm_eval --model hf``) — same tokenisation, prefix token, left truncation, and
rolling windows in the bridge. ``score_text`` encodes a pair the way lm-eval does and then calls ``score_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from most_eval.core.adapter import Model
from most_eval.core.hf_loading import load_pretrained
from most_eval.models.causal_text_lm import CausalTextLM


@dataclass(frozen=True)
class HFCausalLMArgs:
    """``--model-args`` of the causal-LM adapter."""

    path: str = ""  # local model folder (or a hub id where the network allows it)
    dtype: str = "float32"  # float32, float16 or bfloat16
    trust_remote_code: bool = False  # only when you trust the folder's code
    max_length: int = 0  # tokens per forward pass; 0: from the config as lm-eval's HFLM reads it (else 2048)
    batch_size: int = 1  # sequences per forward pass in score_tokens (right-padded; 1 as lm-eval's default)


class HFCausalLM(CausalTextLM, Model):
    name = "hf-causal-lm"
    description = "transformers AutoModelForCausalLM from a local folder (score_text, generate_text for lm-eval)"
    Args = HFCausalLMArgs

    def __init__(self, args=None, **kw):
        super().__init__(args, **kw)
        if not self.args.path:
            raise ValueError("hf-causal-lm needs path=<local model folder> in --model-args")
        if self.args.batch_size < 1:
            raise ValueError(f"hf-causal-lm: batch_size must be at least 1, got {self.args.batch_size}")
        self.model  # load now: a bad path fails before any task runs

    def deterministic(self, capability: str) -> bool:
        """Log-probabilities and greedy continuations: the seed does not enter."""
        return True

    @property
    def text_batch_size(self) -> int:
        """``batch_size=`` of the model args."""
        return self.args.batch_size

    @property
    def text_max_length_override(self) -> int:
        """``max_length=`` of the model args (0: from the config)."""
        return self.args.max_length

    @cached_property
    def tokenizer(self):
        """The folder's tokenizer."""
        import transformers

        return load_pretrained(self.args.path, transformers.AutoTokenizer.from_pretrained, "tokenizer",
                               trust_remote_code=self.args.trust_remote_code)

    @cached_property
    def model(self):
        """The causal LM in eval mode on the chosen device."""
        import torch
        import transformers

        model = load_pretrained(self.args.path, transformers.AutoModelForCausalLM.from_pretrained, "causal LM",
                                dtype=getattr(torch, self.args.dtype), trust_remote_code=self.args.trust_remote_code)
        return model.to(self.device).eval()

