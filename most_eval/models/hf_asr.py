"""Hugging Face ASR adapters from local folders: ``hf-whisper`` (seq2seq) and ``hf-ctc`` (``*ForCTC``).

``--model-args path=/models/whisper-large-v3,device=cuda,dtype=float16``. Whisper decodes English transcription
greedily by default (``language=en``, ``task=transcribe``), as Seed-TTS-eval's judge does; CTC takes the argmax path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

from most_eval.core.adapter import Model
from most_eval.core.audio import Audio
from most_eval.core.hf_loading import load_pretrained


@dataclass(frozen=True)
class HFASRArgs:
    """``--model-args`` of the Hugging Face ASR adapters."""

    path: str = ""  # local model folder (or a hub id where the network allows it)
    dtype: str = "float32"  # float32, float16 or bfloat16
    language: str | None = "en"  # Whisper: forced language (None = detect)
    num_beams: int = 1  # Whisper: beam size (1 = greedy)
    max_new_tokens: int = 440  # Whisper: longest transcript in tokens


class _HFASR(Model):
    Args = HFASRArgs
    auto_class = ""

    def __init__(self, args=None, **kw):
        super().__init__(args, **kw)
        if not self.args.path:
            raise ValueError(f"{self.name} needs path=<local model folder> in --model-args")
        self.model  # load eagerly: a bad path fails before any task runs

    @cached_property
    def processor(self):
        """The feature extractor + tokenizer of the model folder."""
        import transformers

        return load_pretrained(self.args.path, transformers.AutoProcessor.from_pretrained, "processor")

    @cached_property
    def model(self):
        """The transformers model, on the chosen device and dtype, in eval mode."""
        import torch
        import transformers

        cls = getattr(transformers, self.auto_class)
        model = load_pretrained(self.args.path, cls.from_pretrained, self.name, dtype=getattr(torch, self.args.dtype))
        self.sample_rate = self.processor.feature_extractor.sampling_rate
        return model.to(self.device).eval()

    def deterministic(self, capability: str) -> bool:
        """Greedy (or CTC argmax) decoding: the seed does not enter."""
        return True

    def identity(self) -> dict:
        return {**super().identity(), "model_config": self.model.config.to_dict().get("_name_or_path", "")}


class HFWhisper(_HFASR):
    name = "hf-whisper"
    description = "transformers WhisperForConditionalGeneration from a local folder (transcribe)"
    auto_class = "WhisperForConditionalGeneration"

    #: Whisper's window; longer audio goes through transformers' long-form (sequential, timestamped) decoding
    WINDOW_SECONDS = 30.0

    def transcribe(self, audios: Sequence[Audio]) -> list[str]:
        import torch

        long_form = any(a.duration > self.WINDOW_SECONDS for a in audios)
        # the feature extractor truncates to 30 s by default: long audio must keep its tail (else: deletions)
        extra = {"truncation": False, "padding": "longest"} if long_form else {}
        feats = self.processor.feature_extractor([a.samples for a in audios], sampling_rate=self.sample_rate,
                                                 return_tensors="pt", return_attention_mask=True, **extra)
        # the decoder's window holds the 4 prompt tokens (start, language, task, no-timestamps) and the transcript: a
        # longer max_new_tokens is refused by generate, so it is capped to the window (448 - 4 for every released
        # Whisper, above the 440 default)
        window = getattr(self.model.config, "max_target_positions", None)
        max_new = min(self.args.max_new_tokens, window - 4) if window else self.args.max_new_tokens
        kwargs = {"task": "transcribe", "num_beams": self.args.num_beams, "max_new_tokens": max_new}
        if long_form:
            kwargs["return_timestamps"] = True  # transformers' long-form generation needs timestamp tokens
        if self.args.language:
            kwargs["language"] = self.args.language
        with torch.inference_mode():
            ids = self.model.generate(feats.input_features.to(self.device, self.model.dtype),
                                      attention_mask=feats.attention_mask.to(self.device), **kwargs)
        return [t.strip() for t in self.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)]


class HFCTC(_HFASR):
    name = "hf-ctc"
    description = "transformers *ForCTC (wav2vec2, HuBERT, ...) from a local folder, greedy CTC (transcribe)"
    auto_class = "AutoModelForCTC"

    def transcribe(self, audios: Sequence[Audio]) -> list[str]:
        import torch

        inputs = self.processor.feature_extractor([a.samples for a in audios], sampling_rate=self.sample_rate,
                                                  return_tensors="pt", padding=True, return_attention_mask=True)
        # the feature extractor's whole output: input_values (wav2vec2, HuBERT) or input_features (wav2vec2-BERT,
        # Parakeet), with whatever masks it makes; floating tensors in the model's dtype
        batch = {k: v.to(self.device, self.model.dtype) if v.is_floating_point() else v.to(self.device)
                 for k, v in inputs.items()}
        with torch.inference_mode():
            logits = self.model(**batch).logits
        return [t.strip() for t in self.processor.tokenizer.batch_decode(logits.argmax(-1))]
