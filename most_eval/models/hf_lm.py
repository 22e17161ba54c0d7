"""``hf-causal-lm``: a transformers causal LM from a local folder, for text benchmarks through lm-eval.

``--model hf-causal-lm --model-args path=/models/DeepSeek-V2-Lite --tasks text:<lm-eval task>`` reports a text
benchmark beside the speech ones (text-ability retention of a speech-text LLM's backbone).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

from most_eval.adapter import Model
from most_eval.models.hf_loading import load_pretrained


@dataclass(frozen=True)
class HFCausalLMArgs:
    """``--model-args`` of the causal-LM adapter."""

    path: str = ""  # local model folder (or a hub id where the network allows it)
    dtype: str = "float32"  # float32, float16 or bfloat16
    trust_remote_code: bool = False  # only when you trust the folder's code


class HFCausalLM(Model):
    name = "hf-causal-lm"
    description = "transformers AutoModelForCausalLM from a local folder (score_text, generate_text for lm-eval)"
    Args = HFCausalLMArgs

    def __init__(self, args=None, **kw):
        super().__init__(args, **kw)
        if not self.args.path:
            raise ValueError("hf-causal-lm needs path=<local model folder> in --model-args")
        self.model  # load now: a bad path fails before any task runs

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

    def score_text(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[tuple[float, bool]]:
        import torch

        out = []
        for context, continuation in zip(contexts, continuations):
            ctx = self.tokenizer(context, add_special_tokens=False).input_ids
            cont = self.tokenizer(continuation, add_special_tokens=False).input_ids
            if not ctx:  # lm-eval's convention: an empty context is conditioned on the BOS/EOS token
                ctx = [self.tokenizer.bos_token_id or self.tokenizer.eos_token_id]
            ids = torch.tensor([ctx + cont], device=self.device)
            with torch.inference_mode():
                logits = self.model(ids).logits[0, len(ctx) - 1:-1].float()  # (len(cont), vocab)
            logp = torch.log_softmax(logits, dim=-1)
            target = torch.tensor(cont, device=self.device)
            total = logp.gather(1, target[:, None]).sum().item()
            greedy = bool((logp.argmax(-1) == target).all().item())
            out.append((total, greedy))
        return out

    def generate_text(self, prompts: Sequence[str], until: Sequence[Sequence[str]], max_tokens: int) -> list[str]:
        import torch

        out = []
        for prompt, stops in zip(prompts, until):
            ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids.to(self.device)
            with torch.inference_mode():
                gen = self.model.generate(ids, max_new_tokens=max_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.eos_token_id)
            text = self.tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True)
            for stop in stops:
                if stop and stop in text:
                    text = text[:text.index(stop)]
            out.append(text)
        return out
