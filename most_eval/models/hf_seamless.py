"""``hf-seamless``: SeamlessM4T-v2 from a local folder (transcribe and synthesize).

``--model-args path=/models/seamless-m4t-v2-large``. ``transcribe`` is speech-to-text with ``tgt_lang`` (eng) through
``SeamlessM4Tv2ForSpeechToText``; ``synthesize`` is text-to-speech from ``src_lang`` to ``tgt_lang`` through
``SeamlessM4Tv2ForTextToSpeech`` with the vocoder voice ``speaker_id`` (0-199; speaker prompts are not used, the
model takes none). Each loads only its own sub-model's weights, on first use; the processor comes from the same folder.
Decoding is greedy (``num_beams``=1) unless asked otherwise; outputs are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np

from most_eval.core.adapter import Model
from most_eval.core.audio import Audio
from most_eval.core.hf_loading import ModelLoadError, load_pretrained
from most_eval.models.hf_tts import read_model_type


@dataclass(frozen=True)
class HFSeamlessArgs:
    """``--model-args`` of ``hf-seamless``."""

    path: str = ""  # local model folder (or a hub id where the network allows it)
    dtype: str = "float32"  # float32, float16 or bfloat16
    tgt_lang: str = "eng"  # language of transcripts and of synthesised speech (3-letter code)
    src_lang: str = "eng"  # language of the texts to synthesise
    speaker_id: int = 0  # vocoder voice
    num_beams: int = 1  # text decoding beam size (1 = greedy)
    max_new_tokens: int = 256  # longest text output in tokens


class HFSeamless(Model):
    name = "hf-seamless"
    description = "transformers SeamlessM4T-v2 from a local folder (transcribe: speech->text, synthesize: text->speech)"
    Args = HFSeamlessArgs

    def __init__(self, args=None, **kw):
        super().__init__(args, **kw)
        if not self.args.path:
            raise ValueError("hf-seamless needs path=<local model folder> in --model-args")
        model_type = read_model_type(self.args.path)
        if model_type and model_type != "seamless_m4t_v2":
            raise ModelLoadError(f"{self.args.path}: model_type {model_type} is not seamless_m4t_v2")
        # the processor is small and names the input rate: loaded now, so a bad path fails before any task runs
        self.sample_rate = self.processor.feature_extractor.sampling_rate

    @cached_property
    def processor(self):
        import transformers

        return load_pretrained(self.args.path, transformers.AutoProcessor.from_pretrained, "processor")

    def _load(self, cls_name: str):
        import torch
        import transformers

        model = load_pretrained(self.args.path, getattr(transformers, cls_name).from_pretrained, cls_name,
                                dtype=getattr(torch, self.args.dtype))
        return model.to(self.device).eval()

    @cached_property
    def speech_to_text(self):
        return self._load("SeamlessM4Tv2ForSpeechToText")

    @cached_property
    def text_to_speech(self):
        return self._load("SeamlessM4Tv2ForTextToSpeech")

    def deterministic(self, capability: str) -> bool:
        """Transcripts are beam or greedy decoded; speech goes through a unit decoder and vocoder that may sample,
        so ``synthesize`` runs once per seed."""
        return capability == "transcribe"

    def transcribe(self, audios: Sequence[Audio]) -> list[str]:
        import torch

        model = self.speech_to_text
        inputs = self.processor(audio=[a.samples for a in audios], sampling_rate=self.sample_rate,
                                return_tensors="pt").to(self.device)
        with torch.inference_mode():
            ids = model.generate(input_features=inputs.input_features.to(model.dtype),
                                 attention_mask=inputs.attention_mask, tgt_lang=self.args.tgt_lang,
                                 num_beams=self.args.num_beams, max_new_tokens=self.args.max_new_tokens)
        return [t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True)]

    def synthesize(self, texts: Sequence[str], prompts: Sequence[Audio | None] | None = None) -> list[Audio]:
        import torch

        model = self.text_to_speech
        rate = int(model.config.sampling_rate)
        out = []
        with torch.inference_mode():
            for text in texts:  # one at a time: an output does not depend on its batch-mates' padding
                torch.manual_seed(self.seed)
                inputs = self.processor(text=text, src_lang=self.args.src_lang, return_tensors="pt").to(self.device)
                wav, lengths = model.generate(**inputs, tgt_lang=self.args.tgt_lang, speaker_id=self.args.speaker_id,
                                              num_beams=self.args.num_beams, max_new_tokens=self.args.max_new_tokens)
                n = int(lengths.reshape(-1)[0])
                out.append(Audio(wav[0, :n].float().cpu().numpy().astype(np.float32), rate))
        return out
