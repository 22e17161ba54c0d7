"""`most` model adapter: MoST behind the harness's contract (most_eval/core/adapter.py), loaded from `checkpoint=PATH`.

No trained MoST checkpoint has been released (announced with the paper, not released). This adapter runs a checkpoint
*you* built: DeepSeek-V2-Lite imported with import_weights.py and trained with the paper's two stages (train.py).
Without `checkpoint=` it loads the bundled *tiny* checkpoint (`checkpoints/tiny`, stage "tiny-mini-suite": a ~0.5 M
parameter model trained for a few CPU minutes on the mini suite only, see its README.md) and says so: its numbers are
plumbing checks, not MoST's. It never falls back to untrained weights unless asked (`allow_untrained=true`).

Checkpoint folder layout (write it with `save_checkpoint`):

    PATH/most.json                     {"stage": "imported" | "stage1" | "stage2", "prompt_format": NAME,
                                        "prompts": {...}}
    PATH/config.json, model*.safetensors   MoSTForCausalLM.save_pretrained (per-expert DeepSeek-V2 layout)
    PATH/tokenizer files               the DeepSeek-V2 tokenizer (AutoTokenizer)
    PATH/hubert/                       HubertModel.save_pretrained (safetensors)
    PATH/speech_projection.safetensors {"weight", "bias"}: HuBERT features -> LM hidden size
    PATH/quantizer.safetensors         LinearQuantizer (`encoder.*`) or k-means (`centroids`)
    PATH/vocoder/generator.safetensors + PATH/vocoder/config.json   unit HiFi-GAN (fairseq key layout)

Prompts are templates with `{audio}` (a continuous audio span: begin marker, projected HuBERT frames, end marker),
`{units}` (the utterance's deduplicated HuBERT unit tokens) and `{text}`, one named prompt format per checkpoint
(prompt_formats.py: `release`, the MoST release's instruction frame and the default; `tiny`, the bundled checkpoint's
tags; or a YAML file). They belong to the training recipe, so they are read from most.json (`prompt_format=` on the
model args overrides it), and results record the format.

A folder saved by the MoST release itself (config.json `model_type: "MoST"`) is converted once into this layout
(release_checkpoint.py; `quantizer=` and `vocoder=` add what a release checkpoint lacks) and evaluated from the
converted copy; `model.facts` in results.json holds the conversion report.

The unit stream is the release's: units are deduplicated before they become tokens (SpiritLM's `encode_string`;
`UnitExtractor`), speech targets are `<boa> units <eoa> <eos>` (mixing.py), and the vocoder's duration predictor
restores timing. So:
- `score_audio` scores the units in the context training showed them in: the `score` template, with the
  begin-of-audio marker right before the units (inserted when the template does not end in it), and only the unit
  tokens' log-probabilities are summed (not the marker's);
- speech generation stops at end-of-audio or end-of-sentence, and the units are cut at the first end-of-audio;
- the vocoder voice defaults to speaker 2 / style 8, SpiritLM's base defaults.

Capabilities: transcribe (speech in, greedy text out), synthesize (text in, unit tokens out, vocoder), score_audio
(summed log-likelihood of the utterance's unit tokens, AudioScore), respond (speech question, text or speech answer),
and the text-LM contract (score_text, generate_text, lm-eval's token level) from `CausalTextLM`, so
`--tasks text:<lm-eval task>` measures the text ability MoST keeps from DeepSeek-V2-Lite.
All of them run a whole batch at once: HuBERT batched exactly (`SpeechEncoder.hubert_features_batch`), prompts
left-padded for greedy generation with the KV cache, sequences right-padded for scoring; outputs equal batch 1's.
With `do_sample=true` text and unit tokens are sampled at `temperature` instead, torch seeded by the run's seed before
each batch, so `--seeds N` gives N different outputs per sample (greedy decoding gives one, whatever the seed).
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

from most_eval.core.adapter import AudioScore, Model
from most_eval.core.audio import Audio
from most_eval.models.causal_text_lm import CausalTextLM

from .import_weights import (CheckpointError, read_json, import_hubert, import_quantizer, import_vocoder,
                             safetensors_files, tensor_shapes)
from .mixing import AUDIO_PLACEHOLDER, audio_markers
from .prompt_formats import checkpoint_format
from .release_checkpoint import converted_checkpoint, is_release_checkpoint
from .model import MoSTForCausalLM
from .speech_encoder import SpeechEncoder, UnitExtractor, token_ids_to_units, units_to_token_ids
from .vocoder import SAMPLE_RATE

logger = logging.getLogger(__name__)

#: the bundled tiny checkpoint (scripts/make_tiny_checkpoint.sh), used when `checkpoint=` is empty
BUNDLED_TINY = Path(__file__).resolve().parent / "checkpoints" / "tiny"
NO_CHECKPOINT = (
    "no trained MoST checkpoint{where}: MoST's weights were announced but not released, so this adapter needs one "
    "you built (import DeepSeek-V2-Lite with most_reference.import_weights, train stages 1-2, save_checkpoint) and "
    "passed as checkpoint=PATH"
)


def training_export(folder: Path) -> Path | None:
    """The exported model of the `most-eval train` run that ``folder`` is (its output folder), or is inside of
    (``checkpoints/step_N``), when that export exists (``export/most.json``); else None."""
    for run in (folder, *folder.parents[:2]):
        if (run / "train_log.jsonl").is_file() or (run / "checkpoints").is_dir():
            export = run / "export"
            return export if (export / "most.json").is_file() else None
    return None


@dataclass(frozen=True)
class MoSTArgs:
    """`--model-args` of the MoST adapter."""

    checkpoint: str = ""  # MoST checkpoint folder (layout in the module docstring); "" = the bundled tiny one
    dtype: str = "bfloat16"  # LM weights: bfloat16 or float32
    max_new_tokens: int = 256  # longest text output (transcript, answer)
    max_new_units: int = 1500  # longest speech output in unit tokens (60 s at 25 Hz)
    speaker: int = 2  # vocoder speaker id (SpiritLM's base default)
    style: int = 8  # vocoder style id (SpiritLM's base default)
    text_batch_size: int = 8  # sequences per forward pass for text tasks (score_tokens)
    allow_untrained: bool = False  # accept stage "imported" (DeepSeek-V2-Lite + fresh projection): plumbing only
    prompt_format: str = ""  # release | tiny | a YAML file; "" = the format the checkpoint records (else release)
    quantizer: str = ""  # release checkpoints: the unit quantizer file to add (SpiritLM's); "" = none (no speech out)
    vocoder: str = ""  # release checkpoints: the unit vocoder folder to add; "" = none (no speech out)
    hubert_heads: int = 0  # release checkpoints: HuBERT attention heads (0 = hidden size / 64, fairseq's models)
    do_sample: bool = False  # sample text and unit tokens (torch seeded per batch by the seed) instead of greedy
    temperature: float = 1.0  # sampling temperature when do_sample


@dataclass
class RenderedPrompt:
    """One prompt as token ids, the projected features of its `{audio}` span (or None), and where its `{units}`
    span lies (`units_at`: [start, end) in `ids`, or None)."""

    ids: list[int]
    features: torch.Tensor | None = None
    units_at: tuple[int, int] | None = None


class MoSTModel(CausalTextLM, Model):
    name = "most"
    description = "MoST (DeepSeek-V2-Lite + modality-aware MoE, HuBERT in, unit HiFi-GAN out) from a local checkpoint"
    Args = MoSTArgs
    score_reduction = "sum"
    code_modules = ("most_reference.model", "most_reference.speech_encoder", "most_reference.vocoder",
                    "most_eval.models.causal_text_lm")

    def __init__(self, args=None, **kw):
        super().__init__(args, **kw)
        self.sample_rate = SAMPLE_RATE
        if not self.args.temperature > 0:
            raise ValueError(f"most: temperature must be above 0, got {self.args.temperature}")
        self.root = Path(self.args.checkpoint).expanduser() if self.args.checkpoint else BUNDLED_TINY
        if not self.args.checkpoint:
            logger.warning("most: no checkpoint= given, using the bundled TINY checkpoint (%s), trained only on the "
                           "mini suite: its numbers test plumbing, they say nothing about MoST", BUNDLED_TINY)
        if self.root is None or not self.root.is_dir():
            raise CheckpointError(self.args.checkpoint or "checkpoint=", NO_CHECKPOINT.format(where=""))
        self.release_source, self.conversion = None, None
        if is_release_checkpoint(self.root):  # saved by the MoST release: converted once, then read as ours
            self.release_source = self.root
            self.root, self.conversion = converted_checkpoint(
                self.root, quantizer=self.args.quantizer, vocoder=self.args.vocoder,
                hubert_heads=self.args.hubert_heads)
        elif self.args.quantizer or self.args.vocoder or self.args.hubert_heads:
            raise ValueError("most: quantizer=, vocoder= and hubert_heads= are for a MoST release checkpoint; "
                             f"{self.root} is not one (its config.json is not model_type MoST)")
        manifest = self.root / "most.json"
        if not manifest.is_file():
            export = training_export(self.root)
            if export is not None:  # a training output folder, or one of its step checkpoints
                raise CheckpointError(manifest, f"{self.root} is a training run's folder, not its exported model: "
                                                f"pass checkpoint={export}")
            raise CheckpointError(manifest, NO_CHECKPOINT.format(where=" here (most.json is missing)"))
        self.manifest = read_json(manifest)
        read_json(self.root / "config.json")  # without it from_pretrained would build the full-size default model
        self.weight_files = safetensors_files(self.root)  # no pickle, no missing shard, headers readable
        tensor_shapes(self.weight_files)
        if self.manifest.get("stage") == "imported" and not self.args.allow_untrained:
            raise CheckpointError(manifest, "stage 'imported': DeepSeek-V2-Lite weights with an untrained speech "
                                  "projection, not a trained MoST; pass allow_untrained=true only to test plumbing")
        if self.args.text_batch_size < 1:
            raise ValueError(f"most: text_batch_size must be at least 1, got {self.args.text_batch_size}")
        try:
            self.prompt_format = checkpoint_format(self.manifest, self.args.prompt_format)
            self.prompt_format.check_tokenizer(self.tokenizer, str(self.root / "tokenizer.json"))
        except ValueError as exc:
            raise CheckpointError(manifest, str(exc)) from None
        self.prompts = dict(self.prompt_format.templates)
        self.lm  # load eagerly: a bad checkpoint fails before any task runs

    # ---- loading ---------------------------------------------------------------------------------------------
    @cached_property
    def lm(self) -> MoSTForCausalLM:
        """The MoST language model in eval mode."""
        model = MoSTForCausalLM.from_pretrained(self.root, dtype=getattr(torch, self.args.dtype), use_safetensors=True)
        return model.to(self.device).eval()

    @property
    def model(self) -> MoSTForCausalLM:
        """The causal LM the text-LM contract (`CausalTextLM`) scores with: the MoST LM itself."""
        return self.lm

    @property
    def text_batch_size(self) -> int:
        """`text_batch_size=` of the model args."""
        return self.args.text_batch_size

    @cached_property
    def tokenizer(self):
        """The checkpoint's tokenizer."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.root)

    @cached_property
    def speech_encoder(self) -> SpeechEncoder:
        """Frozen HuBERT + the trained projection (continuous speech input)."""
        hubert, normalize = import_hubert(self.root / "hubert")
        cfg = self.lm.config
        encoder = SpeechEncoder(hubert, cfg.hidden_size, cfg.speech_feature_layer, normalize_waveform=normalize)
        encoder.proj.load_state_dict(load_file(str(self.root / "speech_projection.safetensors")))
        return encoder.to(self.device).eval()

    @cached_property
    def unit_extractor(self) -> UnitExtractor:
        """HuBERT units as the LM saw them in training (deduplicated unless the config says otherwise)."""
        quantizer = import_quantizer(self.root / "quantizer.safetensors")
        cfg = self.lm.config
        return UnitExtractor(self.speech_encoder, quantizer, cfg.unit_feature_layer,
                             deduplicate=cfg.deduplicate_units).to(self.device)

    @cached_property
    def vocoder(self):
        """The unit HiFi-GAN; the configured speaker / style must exist in its tables."""
        vocoder = import_vocoder(self.root / "vocoder" / "generator.safetensors").to(self.device)
        for field, table in (("speaker", vocoder.spkr), ("style", vocoder.style)):
            value = getattr(self.args, field)
            if table is not None and not 0 <= value < table.num_embeddings:
                raise CheckpointError(self.root / "vocoder", f"{field}={value} is not one of the vocoder's "
                                      f"{table.num_embeddings} {field} ids")
        return vocoder

    @property
    def audio_markers(self) -> tuple[int, int]:
        """Discrete begin / end-of-audio ids of this checkpoint (mixing.audio_markers)."""
        return audio_markers(self.lm.config)

    def identity(self) -> dict:
        # the checkpoint's files by name, size and modification time: a retrained checkpoint never reuses the cache
        files = sorted(p for p in self.root.rglob("*") if p.is_file())
        stamp = [(p.relative_to(self.root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        identity = {**super().identity(), "stage": self.manifest.get("stage"),
                    "prompt_format": self.prompt_format.name, "prompts": self.prompts,
                    "checkpoint": str(self.root), "files": stamp}
        if self.release_source is not None:
            identity["release_checkpoint"] = str(self.release_source)
        return identity

    def facts(self) -> dict:
        """The prompt format, and for a release checkpoint where it came from and what its conversion did."""
        facts = {"prompt_format": self.prompt_format.name}
        if self.release_source is not None:
            facts.update(release_checkpoint=str(self.release_source), converted_to=str(self.root),
                         conversion=self.conversion)
        return facts

    def supports(self, task: str, capability: str) -> bool:
        """Unit scoring needs the quantizer and speech out the vocoder, which a release checkpoint may lack."""
        if capability == "score_audio" and not (self.root / "quantizer.safetensors").is_file():
            return False
        if capability == "synthesize" and not (self.root / "vocoder").is_dir():
            return False
        return super().supports(task, capability)

    # ---- prompt building -------------------------------------------------------------------------------------
    def _waveforms(self, audios: Sequence[Audio]) -> list[torch.Tensor]:
        return [torch.from_numpy(np.asarray(a.samples, dtype=np.float32)) for a in audios]

    def _render_batch(self, template: str, audios: Sequence[Audio] | None = None,
                      texts: Sequence[str] | None = None) -> list[RenderedPrompt]:
        """Renders `template` for each audio (or text): HuBERT features and units computed once for the batch."""
        n = len(audios) if audios is not None else len(texts)
        features = units = [None] * n
        if "{audio}" in template:
            features = self.speech_encoder.encode(self._waveforms(audios))  # [(frames_i, H)]
        if "{units}" in template:
            units = self.unit_extractor.batch(self._waveforms(audios))  # [(T_i,)]
        return [self._render(template, text=texts[i] if texts is not None else "", features=features[i],
                             units=units[i]) for i in range(n)]

    def _render(self, template: str, text: str = "", features: torch.Tensor | None = None,
                units: torch.Tensor | None = None) -> RenderedPrompt:
        """Token ids of a template: bos (unless the prompt format writes its own start), literal text through the
        tokenizer (`{text}` substituted first), an
        `{audio}` span with one placeholder per feature row, and `{units}` as unit tokens after a begin-of-audio
        marker (inserted when the text before does not end with it: the context training gave units)."""
        cfg = self.lm.config
        bos = self.tokenizer.bos_token_id
        ids = [bos] if bos is not None and self.prompt_format.bos else []
        units_at = None
        for part in re.split(r"(\{audio\}|\{units\})", template):  # literal text and the two audio fields
            if part == "{audio}":
                ids += [cfg.audio_span_begin_id] + [AUDIO_PLACEHOLDER] * features.shape[0] + [cfg.audio_span_end_id]
            elif part == "{units}":
                boa, _ = self.audio_markers
                if not ids or ids[-1] != boa:
                    ids.append(boa)
                start = len(ids)
                ids += units_to_token_ids(units.cpu(), cfg.unit_token_offset).tolist()
                units_at = (start, len(ids))
            elif part:
                ids += self.tokenizer(part.replace("{text}", text), add_special_tokens=False).input_ids
        return RenderedPrompt(ids, features, units_at)

    def _prompt(self, template: str, audio: Audio | None = None, text: str = "") -> tuple[torch.Tensor, torch.Tensor | None]:
        """Token ids (1, T) for a template, plus the projected audio frames for its `{audio}` span (or None)."""
        rendered = self._render_batch(template, [audio] if audio is not None else None, [text])[0]
        return torch.tensor([rendered.ids], device=self.device), rendered.features

    @property
    def pad_id(self) -> int:
        """Id written at padded positions (masked out): the tokenizer's pad, else eos."""
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.lm.config.eos_token_id

    def deterministic(self, capability: str) -> bool:
        """Greedy decoding and scoring draw no random numbers; with ``do_sample`` text and speech are sampled."""
        return not self.args.do_sample or capability not in ("transcribe", "synthesize", "respond")

    @torch.no_grad()
    def _generate(self, prompts: list[RenderedPrompt], max_new_tokens: int, stop_ids: list[int]) -> list[list[int]]:
        """Continuations of a batch of prompts (greedy; sampled at ``temperature`` with torch seeded by the seed
        when ``do_sample``), left-padded, with the KV cache; generation of a row ends at the first of `stop_ids`.
        Returns each row's new ids up to (not including) its first stop id."""
        width = max(len(p.ids) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):
            ids[row, width - len(p.ids):] = torch.tensor(p.ids)
            mask[row, width - len(p.ids):] = 1
        features = [p.features for p in prompts if p.features is not None]  # row-major span order
        extra = {"audio_features": torch.cat(features).to(self.lm.dtype)} if features else {}
        if self.args.do_sample:  # seeded per batch: a batch's samples repeat whatever ran before it
            torch.manual_seed(self.seed)
            extra.update(do_sample=True, temperature=self.args.temperature, top_k=0, top_p=1.0)
        else:
            extra["do_sample"] = False
        if self.prompt_format.stop:  # texts that end an answer (the release's "<|end_of_sentence|>")
            extra.update(stop_strings=list(self.prompt_format.stop), tokenizer=self.tokenizer)
        out = self.lm.generate(ids.to(self.device), attention_mask=mask.to(self.device), max_new_tokens=max_new_tokens,
                               eos_token_id=stop_ids, pad_token_id=self.pad_id, **extra)
        rows = []
        for new in out[:, width:].tolist():
            cut = next((i for i, t in enumerate(new) if t in stop_ids), len(new))
            rows.append(new[:cut])
        return rows

    def _generate_text(self, prompts: list[RenderedPrompt]) -> list[str]:
        first, _ = self.lm.config.audio_token_range
        out = []
        for new in self._generate(prompts, self.args.max_new_tokens, [self.lm.config.eos_token_id]):
            kept = [i for i in new if i < first]  # drop audio and span tokens
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            for stop in self.prompt_format.stop:  # the answer ends where the format's stop text begins
                text = text.split(stop, 1)[0]
            out.append(text.strip())
        return out

    def _generate_speech(self, prompts: list[RenderedPrompt]) -> list[Audio]:
        cfg = self.lm.config
        _, eoa = self.audio_markers
        out = []
        for new in self._generate(prompts, self.args.max_new_units, [eoa, cfg.eos_token_id]):
            units = token_ids_to_units(torch.tensor(new, dtype=torch.long), cfg.unit_token_offset, cfg.num_units)
            if units.numel() == 0:
                out.append(Audio(np.zeros(0, dtype=np.float32), SAMPLE_RATE))
                continue
            wav = self.vocoder(units, speaker=self.args.speaker, style=self.args.style)
            out.append(Audio(wav.float().cpu().numpy(), SAMPLE_RATE))
        return out

    # ---- capabilities ----------------------------------------------------------------------------------------
    def transcribe(self, audios: Sequence[Audio]) -> list[str]:
        """Speech -> text: the `asr` prompt, greedy decoding of text tokens, the whole batch at once."""
        return self._generate_text(self._render_batch(self.prompts["asr"], audios))

    def synthesize(self, texts: Sequence[str], prompts=None) -> list[Audio]:
        """Text -> unit tokens (greedy or sampled, up to end-of-audio) -> vocoder. Speaker prompts are ignored (module
        docstring)."""
        return self._generate_speech(self._render_batch(self.prompts["tts"], texts=texts))

    @torch.no_grad()
    def score_audio(self, audios: Sequence[Audio]) -> list[AudioScore]:
        """Summed natural-log probability of each utterance's unit tokens, each predicted from its prefix (the
        `score` template, begin-of-audio marker first); right-padded batch, only unit positions counted."""
        rendered = self._render_batch(self.prompts["score"], audios)
        width = max(len(r.ids) for r in rendered)
        ids = torch.full((len(rendered), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rendered), width), dtype=torch.long)
        for row, r in enumerate(rendered):
            ids[row, :len(r.ids)] = torch.tensor(r.ids)
            mask[row, :len(r.ids)] = 1
        features = [r.features for r in rendered if r.features is not None]
        extra = {"audio_features": torch.cat(features).to(self.lm.dtype)} if features else {}
        ids = ids.to(self.device)
        logits = self.lm(ids, attention_mask=mask.to(self.device), **extra).logits  # (B, T, V)
        scores = []
        for row, r in enumerate(rendered):
            start, end = r.units_at
            logprobs = torch.log_softmax(logits[row, start - 1:end - 1].float(), dim=-1)  # predicts start..end-1
            scores.append(AudioScore(float(logprobs.gather(-1, ids[row, start:end, None]).sum()), end - start))
        return scores

    def respond(self, audios: Sequence[Audio], modality: str = "text"):
        """Spoken question -> text answer, or unit tokens through the vocoder for `modality="speech"`."""
        if modality == "speech":
            return self._generate_speech(self._render_batch(self.prompts["respond_speech"], audios))
        return self._generate_text(self._render_batch(self.prompts["respond_text"], audios))


def save_checkpoint(path, lm, tokenizer, speech_encoder, quantizer, vocoder_dir, stage: str, prompts=None,
                    prompt_format=None) -> Path:
    """Writes a checkpoint folder in the layout above. `vocoder_dir` holds generator.safetensors + config.json
    (convert a SpiritLM generator.pt with import_vocoder + `save_file(speechbrain_to_fairseq(state))` first);
    `prompt_format` (a prompt_formats.PromptFormat) is recorded instead of bare `prompts`: its name, templates, bos
    and stop texts."""
    import shutil

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    lm.save_pretrained(path)
    tokenizer.save_pretrained(path)
    speech_encoder.hubert.save_pretrained(path / "hubert")
    save_file({k: v.contiguous() for k, v in speech_encoder.proj.state_dict().items()}, str(path / "speech_projection.safetensors"))
    save_file({k: v.contiguous() for k, v in quantizer.state_dict().items()}, str(path / "quantizer.safetensors"))
    shutil.copytree(vocoder_dir, path / "vocoder", dirs_exist_ok=True)
    manifest = {"stage": stage, **(prompt_format.record() if prompt_format is not None else {"prompts": prompts or {}})}
    (path / "most.json").write_text(json.dumps(manifest, indent=2))
    return path
