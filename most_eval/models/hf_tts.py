"""``hf-tts``: transformers text-to-speech models from a local folder (synthesize).

``--model-args path=/models/mms-tts-eng`` — the family is read from the folder's ``config.json`` ``model_type``:

=======================  ==================================================  =====================================
model_type               classes                                             family args
=======================  ==================================================  =====================================
vits (VITS, MMS-TTS)     ``VitsModel`` + its tokenizer                       noise_scale, noise_scale_duration,
                                                                             speaking_rate (None = the config's)
speecht5                 ``SpeechT5ForTextToSpeech`` + ``SpeechT5HifiGan``   vocoder=DIR (required),
                                                                             speaker_embedding=FILE.npy (required),
                                                                             min/max_length_ratio, stop_threshold
=======================  ==================================================  =====================================

FastSpeech2Conformer (its tokenizer needs ``g2p_en``, not installed here, so it could not be tested), Bark and CSM
are not supported yet: a one-line error names the supported types. Neither supported family takes a speaker prompt
(SpeechT5's voice is the fixed ``speaker_embedding`` x-vector, VITS/MMS-TTS is single-speaker), so ``prompts`` are
ignored. Each text is synthesised on its own with torch seeded by ``seed``
before it, so an output does not depend on its batch-mates (VITS samples noise; SpeechT5 is deterministic).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from most_eval.adapter import Model
from most_eval.audio import Audio
from most_eval.models.hf_loading import ModelLoadError, load_pretrained

SUPPORTED = ("vits", "speecht5")


@dataclass(frozen=True)
class HFTTSArgs:
    """``--model-args`` of ``hf-tts``; family args are ignored by the other families."""

    path: str = ""  # local model folder (or a hub id where the network allows it)
    dtype: str = "float32"  # float32, float16 or bfloat16
    vocoder: str = ""  # SpeechT5: SpeechT5HifiGan folder (e.g. microsoft/speecht5_hifigan)
    speaker_embedding: str = ""  # SpeechT5: .npy speaker x-vector, shape (speaker_embedding_dim,) = (512,)
    noise_scale: float | None = None  # VITS: prior noise (None = config's, 0.667 for MMS-TTS)
    noise_scale_duration: float | None = None  # VITS: duration-predictor noise (None = config's)
    speaking_rate: float | None = None  # VITS: >1 speaks faster (None = config's)
    min_length_ratio: float = 0.0  # SpeechT5: fewest output frames per input token
    max_length_ratio: float = 20.0  # SpeechT5: most output frames per input token
    stop_threshold: float = 0.5  # SpeechT5: stop-token probability that ends generation


def read_model_type(path: str) -> str:
    """``model_type`` of a local folder's config.json ("" when there is no local folder: the hub path decides)."""
    config = Path(path).expanduser() / "config.json"
    if not config.is_file():
        return ""
    try:
        return str(json.loads(config.read_text()).get("model_type", ""))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{config}: unreadable config.json ({exc})") from None


class HFTTS(Model):
    """transformers TTS from a local folder; family from ``model_type``. No supported family uses speaker prompts."""

    name = "hf-tts"
    description = "transformers text-to-speech (VITS/MMS-TTS, SpeechT5) from a local folder"
    Args = HFTTSArgs

    def __init__(self, args=None, **kw):
        super().__init__(args, **kw)
        if not self.args.path:
            raise ValueError("hf-tts needs path=<local model folder> in --model-args")
        model_type = read_model_type(self.args.path)
        if not model_type:  # a hub id: its config decides
            import transformers

            model_type = load_pretrained(self.args.path, transformers.AutoConfig.from_pretrained, "config").model_type
        if model_type not in SUPPORTED:
            raise ModelLoadError(f"model_type {model_type} is not supported by hf-tts; "
                                 f"supported: {', '.join(SUPPORTED)}")
        self.model_type = model_type
        self.parts  # load eagerly: a bad path, vocoder or speaker embedding fails before any task runs

    @cached_property
    def parts(self) -> dict:
        """The loaded pieces of the family: model, and tokenizer/processor, vocoder, speaker embedding as needed."""
        import torch
        import transformers

        a, dtype = self.args, getattr(torch, self.args.dtype)

        def load(cls: str, path: str, what: str, **kw):
            return load_pretrained(path, getattr(transformers, cls).from_pretrained, what, **kw)

        parts = {}
        if self.model_type == "vits":
            parts["model"] = load("VitsModel", a.path, "VITS model", dtype=dtype)
            parts["tokenizer"] = load("AutoTokenizer", a.path, "tokenizer")
            for key in ("noise_scale", "noise_scale_duration", "speaking_rate"):  # copied from config at init
                if getattr(a, key) is not None:
                    setattr(parts["model"], key, getattr(a, key))
                    setattr(parts["model"].config, key, getattr(a, key))
        else:  # speecht5
            if not a.vocoder or not a.speaker_embedding:
                raise ModelLoadError("SpeechT5 needs vocoder=<SpeechT5HifiGan folder> and "
                                     "speaker_embedding=<x-vector .npy> in --model-args")
            parts["model"] = load("SpeechT5ForTextToSpeech", a.path, "SpeechT5 model", dtype=dtype)
            parts["processor"] = load("SpeechT5Processor", a.path, "processor")
            parts["vocoder"] = load("SpeechT5HifiGan", a.vocoder, "vocoder", dtype=dtype).to(self.device).eval()
            speaker = self._speaker_embedding(parts["model"].config.speaker_embedding_dim)  # (1, dim)
            parts["speaker"] = speaker.to(self.device, dtype)
        parts["model"] = parts["model"].to(self.device).eval()
        self.sample_rate = self._output_rate(parts)
        return parts

    def _speaker_embedding(self, dim: int):
        import torch

        path = Path(self.args.speaker_embedding).expanduser()
        try:
            vec = np.load(path)
        except Exception as exc:
            raise ModelLoadError(f"{path}: cannot read speaker embedding ({str(exc).splitlines()[0][:120]})") from None
        vec = np.asarray(vec, dtype=np.float32).reshape(-1)
        if vec.shape != (dim,):
            raise ModelLoadError(f"{path}: speaker embedding has {vec.size} values, the model wants {dim}")
        return torch.from_numpy(vec)[None]  # (1, dim)

    def _output_rate(self, parts: dict) -> int:
        return int((parts.get("vocoder") or parts["model"]).config.sampling_rate)

    def identity(self) -> dict:
        return {**super().identity(), "model_type": self.model_type, "sample_rate": self.sample_rate}

    def synthesize(self, texts: Sequence[str], prompts: Sequence[Audio | None] | None = None) -> list[Audio]:
        import torch

        out = []
        with torch.inference_mode():
            for text in texts:
                torch.manual_seed(self.seed)  # per text: outputs do not depend on batch composition
                wav = self._one(text)
                samples = wav.detach().float().cpu().numpy().reshape(-1).astype(np.float32)
                out.append(Audio(samples, self.sample_rate))
        return out

    def _one(self, text: str):
        """Waveform tensor of one text."""
        p, a = self.parts, self.args
        model = p["model"]
        if self.model_type == "vits":
            inputs = p["tokenizer"](text, return_tensors="pt").to(self.device)
            return model(**inputs).waveform[0]
        ids = p["processor"](text=text, return_tensors="pt").input_ids.to(self.device)  # speecht5
        return model.generate_speech(ids, p["speaker"], vocoder=p["vocoder"], threshold=a.stop_threshold,
                                     minlenratio=a.min_length_ratio, maxlenratio=a.max_length_ratio)
