"""`most` model adapter: MoST behind the harness's contract (most_eval/adapter.py), loaded from `checkpoint=PATH`.

No trained MoST checkpoint has been released (README §1: announced, not released). This adapter runs a checkpoint
*you* built: DeepSeek-V2-Lite imported with import_weights.py and trained with the paper's two stages (train.py).
Without `checkpoint=` it loads the bundled *tiny* checkpoint (`checkpoints/tiny`, stage "tiny-mini-suite": a ~0.5 M
parameter model trained for a few CPU minutes on the mini suite only, see its README.md) and says so: its numbers are
plumbing checks, not MoST's. It never falls back to untrained weights unless asked (`allow_untrained=true`).

Checkpoint folder layout (write it with `save_checkpoint`):

    PATH/most.json                     {"stage": "imported" | "stage1" | "stage2", "prompts": {...}}
    PATH/config.json, model*.safetensors   MoSTForCausalLM.save_pretrained (per-expert DeepSeek-V2 layout)
    PATH/tokenizer files               the DeepSeek-V2 tokenizer (AutoTokenizer)
    PATH/hubert/                       HubertModel.save_pretrained (safetensors)
    PATH/speech_projection.safetensors {"weight", "bias"}: HuBERT features -> LM hidden size
    PATH/quantizer.safetensors         LinearQuantizer (`encoder.*`) or k-means (`centroids`)
    PATH/vocoder/generator.safetensors + PATH/vocoder/config.json   unit HiFi-GAN (fairseq key layout)

Prompts are templates with `{audio}` (a continuous audio span: begin marker, projected HuBERT frames, end marker),
`{units}` (the utterance's HuBERT unit tokens) and `{text}`. They belong to the training recipe, so they are read
from most.json; the defaults below are ours, not the release's (its templates were not verified).

Capabilities: transcribe (speech in, greedy text out), synthesize (text in, unit tokens out, vocoder), score_audio
(summed log-likelihood of the utterance's unit tokens, AudioScore), respond (speech question, text or speech answer).
The speaker prompt of `synthesize` is not used: the voice is the vocoder's `speaker` / `style` id.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from most_eval.adapter import AudioScore, Model
from most_eval.audio import Audio

from .import_weights import (CheckpointError, read_json, import_hubert, import_quantizer, import_vocoder,
                             safetensors_files, tensor_shapes)
from .model import MoSTForCausalLM
from .speech_encoder import SpeechEncoder, UnitExtractor, token_ids_to_units, units_to_token_ids
from .vocoder import SAMPLE_RATE

logger = logging.getLogger(__name__)

DEFAULT_PROMPTS = {
    "asr": "{audio}",  # followed by the transcript
    "tts": "{text}",  # followed by unit tokens
    "score": "{units}",
    "respond_text": "{audio}",
    "respond_speech": "{audio}",
}
#: the bundled tiny checkpoint (scripts/make_tiny_checkpoint.sh), used when `checkpoint=` is empty
BUNDLED_TINY = Path(__file__).resolve().parent / "checkpoints" / "tiny"
NO_CHECKPOINT = (
    "no trained MoST checkpoint{where}: MoST's weights were announced but not released, so this adapter needs one "
    "you built (import DeepSeek-V2-Lite with most_reference.import_weights, train stages 1-2, save_checkpoint) and "
    "passed as checkpoint=PATH"
)


@dataclass(frozen=True)
class MoSTArgs:
    """`--model-args` of the MoST adapter."""

    checkpoint: str = ""  # MoST checkpoint folder (layout in the module docstring); "" = the bundled tiny one
    dtype: str = "bfloat16"  # LM weights: bfloat16 or float32
    max_new_tokens: int = 256  # longest text output (transcript, answer)
    max_new_units: int = 1500  # longest speech output in unit tokens (60 s at 25 Hz)
    speaker: int = 0  # vocoder speaker id
    style: int = 0  # vocoder style id
    allow_untrained: bool = False  # accept stage "imported" (DeepSeek-V2-Lite + fresh projection): plumbing only


class MoSTModel(Model):
    name = "most"
    description = "MoST (DeepSeek-V2-Lite + modality-aware MoE, HuBERT in, unit HiFi-GAN out) from a local checkpoint"
    Args = MoSTArgs
    score_reduction = "sum"
    code_modules = ("most_reference.model", "most_reference.speech_encoder", "most_reference.vocoder")

    def __init__(self, args=None, **kw):
        super().__init__(args, **kw)
        self.sample_rate = SAMPLE_RATE
        self.root = Path(self.args.checkpoint).expanduser() if self.args.checkpoint else BUNDLED_TINY
        if not self.args.checkpoint:
            logger.warning("most: no checkpoint= given, using the bundled TINY checkpoint (%s), trained only on the "
                           "mini suite: its numbers test plumbing, they say nothing about MoST", BUNDLED_TINY)
        if self.root is None or not self.root.is_dir():
            raise CheckpointError(self.args.checkpoint or "checkpoint=", NO_CHECKPOINT.format(where=""))
        manifest = self.root / "most.json"
        if not manifest.is_file():
            raise CheckpointError(manifest, NO_CHECKPOINT.format(where=" here (most.json is missing)"))
        self.manifest = read_json(manifest)
        read_json(self.root / "config.json")  # without it from_pretrained would build the full-size default model
        self.weight_files = safetensors_files(self.root)  # no pickle, no missing shard, headers readable
        tensor_shapes(self.weight_files)
        if self.manifest.get("stage") == "imported" and not self.args.allow_untrained:
            raise CheckpointError(manifest, "stage 'imported': DeepSeek-V2-Lite weights with an untrained speech "
                                  "projection, not a trained MoST; pass allow_untrained=true only to test plumbing")
        self.prompts = {**DEFAULT_PROMPTS, **self.manifest.get("prompts", {})}
        self.lm  # load eagerly: a bad checkpoint fails before any task runs

    # ---- loading ---------------------------------------------------------------------------------------------
    @cached_property
    def lm(self) -> MoSTForCausalLM:
        model = MoSTForCausalLM.from_pretrained(self.root, dtype=getattr(torch, self.args.dtype), use_safetensors=True)
        return model.to(self.device).eval()

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.root)

    @cached_property
    def speech_encoder(self) -> SpeechEncoder:
        hubert, normalize = import_hubert(self.root / "hubert")
        cfg = self.lm.config
        encoder = SpeechEncoder(hubert, cfg.hidden_size, cfg.speech_feature_layer, normalize_waveform=normalize)
        encoder.proj.load_state_dict(load_file(str(self.root / "speech_projection.safetensors")))
        return encoder.to(self.device).eval()

    @cached_property
    def unit_extractor(self) -> UnitExtractor:
        quantizer = import_quantizer(self.root / "quantizer.safetensors")
        return UnitExtractor(self.speech_encoder, quantizer, self.lm.config.unit_feature_layer).to(self.device)

    @cached_property
    def vocoder(self):
        return import_vocoder(self.root / "vocoder" / "generator.safetensors").to(self.device)

    def identity(self) -> dict:
        # the checkpoint's files by name, size and modification time: a retrained checkpoint never reuses the cache
        files = sorted(p for p in self.root.rglob("*") if p.is_file())
        stamp = [(p.relative_to(self.root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        return {**super().identity(), "stage": self.manifest.get("stage"), "prompts": self.prompts,
                "checkpoint": str(self.root), "files": stamp}

    # ---- prompt building -------------------------------------------------------------------------------------
    def _prompt(self, template: str, audio: Audio | None = None, text: str = "") -> tuple[torch.Tensor, torch.Tensor | None]:
        """Token ids (1, T) for a template, plus the projected audio frames for its `{audio}` span (or None)."""
        cfg = self.lm.config
        ids = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        features = None
        for part in re.split(r"(\{audio\}|\{units\})", template):  # literal text and the two audio fields
            if part == "{audio}":
                wav = torch.from_numpy(np.asarray(audio.samples, dtype=np.float32))
                with torch.no_grad():
                    features = self.speech_encoder(wav[None])[0]  # (frames, H)
                ids += [cfg.audio_span_begin_id] + [0] * features.shape[0] + [cfg.audio_span_end_id]
            elif part == "{units}":
                wav = torch.from_numpy(np.asarray(audio.samples, dtype=np.float32))
                ids += units_to_token_ids(self.unit_extractor(wav), cfg.unit_token_offset).tolist()
            elif part:
                ids += self.tokenizer(part.replace("{text}", text), add_special_tokens=False).input_ids
        return torch.tensor([ids], device=self.device), features

    @torch.no_grad()
    def _generate(self, ids: torch.Tensor, features: torch.Tensor | None, max_new_tokens: int) -> torch.Tensor:
        """Greedy continuation of `ids`; returns the new token ids (n,)."""
        extra = {"audio_features": features.to(self.lm.dtype)} if features is not None else {}
        out = self.lm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                               do_sample=False, eos_token_id=self.lm.config.eos_token_id, **extra)
        return out[0, ids.shape[1]:]

    def _text(self, new_ids: torch.Tensor) -> str:
        first, _ = self.lm.config.audio_token_range
        kept = [i for i in new_ids.tolist() if i < first]  # drop audio and span tokens
        return self.tokenizer.decode(kept, skip_special_tokens=True).strip()

    def _speech(self, new_ids: torch.Tensor) -> Audio:
        cfg = self.lm.config
        units = token_ids_to_units(new_ids, cfg.unit_token_offset, cfg.num_units)
        if units.numel() == 0:
            return Audio(np.zeros(0, dtype=np.float32), SAMPLE_RATE)
        wav = self.vocoder(units, speaker=self.args.speaker, style=self.args.style)
        return Audio(wav.float().cpu().numpy(), SAMPLE_RATE)

    # ---- capabilities ----------------------------------------------------------------------------------------
    def transcribe(self, audios: Sequence[Audio]) -> list[str]:
        """Speech -> text: the `asr` prompt, greedy decoding of text tokens."""
        return [self._text(self._generate(*self._prompt(self.prompts["asr"], a), self.args.max_new_tokens)) for a in audios]

    def synthesize(self, texts: Sequence[str], prompts=None) -> list[Audio]:
        """Text -> unit tokens (greedy) -> vocoder. Speaker prompts are ignored (see module docstring)."""
        return [self._speech(self._generate(*self._prompt(self.prompts["tts"], text=t), self.args.max_new_units)) for t in texts]

    @torch.no_grad()
    def score_audio(self, audios: Sequence[Audio]) -> list[AudioScore]:
        """Summed natural-log probability of the utterance's unit tokens (each predicted from its prefix)."""
        scores = []
        first, last = self.lm.config.audio_token_range
        for audio in audios:
            ids, _ = self._prompt(self.prompts["score"], audio)
            logprobs = torch.log_softmax(self.lm(ids).logits[0, :-1].float(), dim=-1)  # (T-1, V)
            targets = ids[0, 1:]
            token_lp = logprobs.gather(-1, targets[:, None])[:, 0]
            is_unit = (targets >= first) & (targets <= last)
            scores.append(AudioScore(float(token_lp[is_unit].sum()), int(is_unit.sum())))
        return scores

    def respond(self, audios: Sequence[Audio], modality: str = "text"):
        """Spoken question -> text answer, or unit tokens through the vocoder for `modality="speech"`."""
        if modality == "speech":
            return [self._speech(self._generate(*self._prompt(self.prompts["respond_speech"], a), self.args.max_new_units)) for a in audios]
        return [self._text(self._generate(*self._prompt(self.prompts["respond_text"], a), self.args.max_new_tokens)) for a in audios]


def save_checkpoint(path, lm, tokenizer, speech_encoder, quantizer, vocoder_dir, stage: str, prompts=None) -> Path:
    """Writes a checkpoint folder in the layout above. `vocoder_dir` holds generator.safetensors + config.json
    (convert a SpiritLM generator.pt with import_vocoder + `save_file(speechbrain_to_fairseq(state))` first)."""
    import shutil

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    lm.save_pretrained(path)
    tokenizer.save_pretrained(path)
    speech_encoder.hubert.save_pretrained(path / "hubert")
    save_file({k: v.contiguous() for k, v in speech_encoder.proj.state_dict().items()}, str(path / "speech_projection.safetensors"))
    save_file({k: v.contiguous() for k, v in quantizer.state_dict().items()}, str(path / "quantizer.safetensors"))
    shutil.copytree(vocoder_dir, path / "vocoder", dirs_exist_ok=True)
    (path / "most.json").write_text(json.dumps({"stage": stage, "prompts": prompts or {}}, indent=2))
    return path
