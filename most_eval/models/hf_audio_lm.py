"""``hf-audio-lm``: audio-text-to-text chat models (speech in, text out) through their processor and chat template.

``--model-args path=/models/Qwen2-Audio-7B-Instruct,max_new_tokens=256`` serves ``transcribe`` (ASR with the family's
documented prompt, or ``prompt=...``) and ``respond`` (spoken question -> text answer; speech answers are a
per-sample "text output only" failure). The family comes from ``model_type`` in the folder's config.json; its
transformers class, ASR prompt and the prompt's source live in :data:`FAMILIES`, one row each.

Decoding: one chat per audio (an optional system turn, then a user turn = the audio, then the instruction text),
rendered by the processor's chat template with the generation prompt, batched with *left* padding, greedy,
``max_new_tokens``; only the new tokens are decoded (special tokens skipped, whitespace stripped). Families whose
template takes typed content parts get ``[{"type": "audio"}, {"type": "text"}]``; families whose documented usage writes
the audio placeholder into the text (Granite: ``"<|audio|>" + instruction``) get that string.

Supported (each tested on a tiny random model built through its own transformers classes):
  qwen2_audio     Qwen2-Audio(-Instruct), ``Qwen2AudioForConditionalGeneration``.
  granite_speech  Granite Speech 3.x, ``GraniteSpeechForConditionalGeneration``.
Not yet supported (no tiny-model test, so kept out rather than shipped untested); their prompts and what blocked a
test are in :data:`UNTESTED_PROMPTS`: Voxtral (needs ``mistral_common``), Phi-4-multimodal (needs ``peft`` for its
speech LoRA and an image processor), Qwen2.5-Omni thinker (its processor needs ``torchvision``).

Limits:
  * Qwen2-Audio's processor pads or cuts every clip to 30 s (Whisper's window); longer audio loses its tail.
  * Granite Speech checkpoints ship a LoRA adapter (``has_lora_adapter`` in config.json) that transformers enables
    only through ``peft``; without ``peft`` installed transformers warns and the model runs *without* its LoRA, which
    degrades it. Its conformer encoder has no padding mask: in a batch, a short clip's last attention block also
    sees the zero-padded frames up to the longest clip, so batched outputs can differ slightly from one-at-a-time
    decoding (IBM's own Open ASR Leaderboard script batches the same way). Granite is built for ASR/AST (the model
    card's "two-pass design"); ``respond`` answers to the audio alone and is not a use its authors document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

from most_eval.adapter import Model, SampleFailure
from most_eval.audio import Audio
from most_eval.hf_loading import ModelLoadError, load_pretrained


@dataclass(frozen=True)
class Family:
    """How one ``model_type`` is loaded and prompted."""

    model_class: str  # transformers class that loads the checkpoint (as transformers 5 registers it)
    asr_prompt: str  # instruction text after the audio in the user turn, for ``transcribe``
    respond_prompt: str | None  # instruction text for ``respond``; None = the audio alone (voice-chat mode)
    source: str  # where the ASR prompt comes from
    audio_marker: str | None = None  # None: typed content parts; else the user turn is this text + the instruction
    system_prompt: str | None = None  # system turn before the user turn; None = none (or the template's default)


#: model_type -> family. Prompts as their authors document them; see ``source`` per row.
FAMILIES: dict[str, Family] = {
    # QwenLM/Qwen2-Audio eval_audio/evaluate_asr.py + EVALUATION.md (LibriSpeech rows of the eval jsonl): the
    # official eval prompts the *base* model with "<|audio_bos|><|AUDIO|><|audio_eos|>" + this text, no chat template.
    # Unconfirmed for the Instruct chat model: its model card shows voice chat (audio alone) and audio analysis
    # ("What's that sound?"), no ASR prompt; here the same text goes after the audio in the user turn.
    # Voice chat = the audio with no text (Instruct model card, "Voice Chat Inference"), used by ``respond``.
    "qwen2_audio": Family("Qwen2AudioForConditionalGeneration",
                          "Detect the language and recognize the speech: <|en|>", None,
                          "QwenLM/Qwen2-Audio eval_audio/evaluate_asr.py (base model); unconfirmed for Instruct"),
    # ibm-granite/granite-speech-3.3-{2b,8b} model cards and IBM's huggingface/open_asr_leaderboard granite/run_eval.py:
    # system turn as below, user turn "<|audio|>can you transcribe the speech into a written format?". The system text
    # is the leaderboard script's fixed one (the Granite template would otherwise insert today's date, so outputs
    # would change from day to day). Granite has no documented spoken-QA prompt: ``respond`` sends the audio alone.
    "granite_speech": Family("GraniteSpeechForConditionalGeneration",
                             "can you transcribe the speech into a written format?", None,
                             "ibm-granite/granite-speech-3.3 model cards; open_asr_leaderboard granite/run_eval.py",
                             audio_marker="<|audio|>",
                             system_prompt="Knowledge Cutoff Date: April 2024.\nToday's Date: December 19, 2024.\n"
                                           "You are Granite, developed by IBM. You are a helpful AI assistant"),
}

#: Documented ASR prompts of families not supported yet (no tiny-model test); not used by the code. Each comment says
#: what kept the family out (checked with transformers 5.24, in an environment without the packages named).
UNTESTED_PROMPTS = {
    # QwenLM/Qwen2.5-Omni cookbooks/universal_audio_understanding.ipynb (ASR cell), as quoted by third-party eval code;
    # not re-read at the source. Blocked: Qwen2_5OmniProcessor includes Qwen2VLVideoProcessor, which needs
    # torchvision (not installed), so neither a tiny folder nor a real checkpoint loads through AutoProcessor here.
    # Text-only use would load Qwen2_5OmniForConditionalGeneration with enable_audio_output=False and call .thinker.
    "qwen2_5_omni": "Transcribe the English audio into text without any punctuation marks.",
    # microsoft/Phi-4-multimodal-instruct model card, speech prompts (ASR): "<|audio_1|>" + this. UNCONFIRMED.
    # Blocked: transformers' docs load the "speech-lora" subfolder with model.load_adapter (needs peft, not
    # installed) and say the base model "will very likely not work well" without it; Phi4MultimodalProcessor also
    # needs an image processor.
    "phi4_multimodal": "Transcribe the audio clip into text.",
    # Voxtral: transformers' VoxtralProcessor.apply_transcription_request (dedicated transcription mode, no free-text
    # prompt; language optional). Blocked: that method is decorated @requires(backends=("mistral-common",)) and
    # Voxtral's tokenizer is MistralCommonBackend (tekken.json), both needing mistral_common, which is on PyPI
    # (1.13.1 resolves) but not installed here; whether it loads tekken.json fully offline is unchecked.
    "voxtral": "",
}


@dataclass(frozen=True)
class HFAudioLMArgs:
    """``--model-args`` of ``hf-audio-lm``."""

    path: str = ""  # local model folder (or a hub id where the network allows it)
    dtype: str = "float32"  # float32, float16 or bfloat16
    max_new_tokens: int = 256  # longest answer or transcript, in tokens
    prompt: str | None = None  # transcribe instruction; None = the family's documented one (FAMILIES)
    respond_prompt: str | None = None  # respond instruction; None = the family's (Qwen2-Audio: audio alone)


def model_type(path: str) -> str:
    """``model_type`` from the folder's config.json (through AutoConfig for a hub id or cache entry)."""
    config = Path(path).expanduser() / "config.json"
    if config.is_file():
        return json.loads(config.read_text()).get("model_type", "")
    import transformers

    return load_pretrained(path, transformers.AutoConfig.from_pretrained, "config").model_type


class HFAudioLM(Model):
    name = "hf-audio-lm"
    description = ("transformers audio-text-to-text chat model (Qwen2-Audio, Granite Speech) from a local folder, "
                   "through its chat template (transcribe, respond with text)")
    Args = HFAudioLMArgs

    def __init__(self, args=None, **kw):
        super().__init__(args, **kw)
        if not self.args.path:
            raise ValueError("hf-audio-lm needs path=<local model folder> in --model-args")
        if self.args.max_new_tokens < 1:
            raise ValueError(f"hf-audio-lm: max_new_tokens must be at least 1, got {self.args.max_new_tokens}")
        kind = model_type(self.args.path)
        if kind not in FAMILIES:
            raise ModelLoadError(f"{self.args.path}: model_type {kind!r} is not supported by hf-audio-lm "
                                 f"(supported: {', '.join(sorted(FAMILIES))})")
        self.family = FAMILIES[kind]
        self.model  # load now: a bad path fails before any task runs

    @cached_property
    def processor(self):
        """Feature extractor + tokenizer + chat template of the folder; the tokenizer pads on the left."""
        import transformers

        processor = load_pretrained(self.args.path, transformers.AutoProcessor.from_pretrained, "processor")
        processor.tokenizer.padding_side = "left"  # generation continues every row from its last real token
        return processor

    @property
    def feature_extractor(self):
        """The processor's audio part (``feature_extractor`` in most families, ``audio_processor`` in Granite)."""
        return getattr(self.processor, "feature_extractor", None) or self.processor.audio_processor

    @cached_property
    def model(self):
        """The family's transformers model, on the chosen device and dtype, in eval mode."""
        import torch
        import transformers

        cls = getattr(transformers, self.family.model_class)
        model = load_pretrained(self.args.path, cls.from_pretrained, self.name, dtype=getattr(torch, self.args.dtype))
        self.sample_rate = self.feature_extractor.sampling_rate
        return model.to(self.device).eval()

    def identity(self) -> dict:
        return {**super().identity(), "family": self.family.model_class, "asr_prompt": self.asr_prompt}

    @property
    def asr_prompt(self) -> str:
        """The instruction ``transcribe`` sends after the audio."""
        return self.args.prompt if self.args.prompt is not None else self.family.asr_prompt

    # ---- capabilities ----------------------------------------------------------------------------------
    def transcribe(self, audios: Sequence[Audio]) -> list[str]:
        return self.generate(audios, self.asr_prompt)

    def respond(self, audios: Sequence[Audio], modality: str = "text") -> list:
        if modality != "text":
            return [SampleFailure("text output only")] * len(audios)
        prompt = self.args.respond_prompt if self.args.respond_prompt is not None else self.family.respond_prompt
        return self.generate(audios, prompt)

    # ---- decoding --------------------------------------------------------------------------------------
    def chat_text(self, prompt: str | None) -> str:
        """The family's system turn (if any) and one user turn (the audio, then ``prompt`` if any), rendered by the
        chat template with the generation prompt on."""
        if self.family.audio_marker is not None:
            content = self.family.audio_marker + (prompt or "")
        else:
            content = [{"type": "audio", "audio": "<audio>"}]  # a placeholder: the template only emits audio tokens
            if prompt:
                content.append({"type": "text", "text": prompt})
        chat = [{"role": "user", "content": content}]
        if self.family.system_prompt is not None:
            chat.insert(0, {"role": "system", "content": self.family.system_prompt})
        return self.processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    def generate(self, audios: Sequence[Audio], prompt: str | None) -> list[str]:
        """Greedy answers to one chat per audio, batched with left padding; only the new tokens are decoded."""
        import torch

        text = self.chat_text(prompt)
        inputs = self.processor(text=[text] * len(audios), audio=[a.samples for a in audios],
                                sampling_rate=self.sample_rate, return_tensors="pt", padding=True)
        inputs = {k: v.to(self.device, self.model.dtype) if v.is_floating_point() else v.to(self.device)
                  for k, v in inputs.items()}
        with torch.inference_mode():
            ids = self.model.generate(**inputs, do_sample=False, num_beams=1,
                                      max_new_tokens=self.args.max_new_tokens)
        new = ids[:, inputs["input_ids"].shape[1]:]  # (B, new tokens): left padding aligns every prompt's end
        return [t.strip() for t in self.processor.tokenizer.batch_decode(new, skip_special_tokens=True)]
