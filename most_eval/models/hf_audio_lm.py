"""``hf-audio-lm``: audio-text-to-text chat models (speech in, text out) through their processor and chat template.

``--model-args path=/models/Qwen2-Audio-7B-Instruct,max_new_tokens=256`` serves ``transcribe`` (ASR with the family's
documented prompt, or ``prompt=...``) and ``respond`` (spoken question -> text answer; speech answers are a
per-sample "text output only" failure). The family comes from ``model_type`` in the folder's config.json; its
transformers class, ASR prompt and the prompt's source live in :data:`MODEL_TYPES`, one row each.

Decoding: one chat per audio (an optional system turn, then a user turn = the audio and the instruction text),
rendered by the processor's chat template with the generation prompt, batched with *left* padding, greedy,
``max_new_tokens``; only the new tokens are decoded (special tokens skipped, whitespace stripped). Families whose
template takes typed content parts get ``[{"type": "audio"}, {"type": "text"}]``; families whose documented usage writes
the audio placeholder into the text (Granite: ``"<|audio|>" + instruction``) get that string.

Supported (each tested on a tiny random model built through its own transformers classes):
  qwen2_audio      Qwen2-Audio(-Instruct), ``Qwen2AudioForConditionalGeneration``.
  granite_speech   Granite Speech 3.x, ``GraniteSpeechForConditionalGeneration``.
  qwen2_5_omni     Qwen2.5-Omni, text output: ``Qwen2_5OmniThinkerForConditionalGeneration`` loaded alone from the
                   full checkpoint; the cookbook's ASR turn (system "You are a speech recognition model.", the
                   instruction before the audio); ``respond`` = voice chat (default system prompt, audio alone).
  phi4_multimodal  Phi-4-multimodal (transformers-native), ``Phi4MultimodalForCausalLM`` + its ``speech-lora/``
                   adapter through peft.
  voxtral          Voxtral, ``VoxtralForConditionalGeneration``: ``transcribe`` is the processor's transcription
                   request (``language=en``; ``prompt=`` switches to the instruct mode with that text); ``respond``
                   sends the audio alone through the chat template (mistral_common tokenizer).
Where torchvision is missing, Qwen2.5-Omni's and Phi-4's processors are built with their audio parts only
(:func:`audio_only_processor`); audio preprocessing and placeholder expansion stay transformers' own.

Limits:
  * Qwen2-Audio's processor pads or cuts every clip to 30 s (Whisper's window); longer audio loses its tail.
  * Granite Speech checkpoints ship a LoRA adapter (``has_lora_adapter`` in config.json) that transformers enables
    through ``peft`` (a dependency of most-eval, so the LoRA is on). Its conformer encoder has no padding mask: in a
    batch, a short clip's last attention block also sees the zero-padded frames up to the longest clip, so batched
    outputs can differ slightly from one-at-a-time decoding (IBM's own Open ASR Leaderboard script batches the same
    way). Granite is built for ASR/AST (the model card's "two-pass design"); ``respond`` answers to the audio alone
    and is not a use its authors document.
  * Phi-4-multimodal's audio encoder (transformers 5.24) adds its padding mask to the attention bias instead of
    masking padded frames, so in a batch a shorter clip's frames also see the zero padding: batched answers can
    differ from one-at-a-time ones (``--batch-size 1`` avoids it). The speech LoRA is loaded with
    ``load_adapter``; transformers' ``set_adapter`` needs peft >= 0.22, but the only adapter is active once loaded.
  * Voxtral pads every clip to whole 30 s windows; its transcription request writes the clip as 16-bit WAV first
    (transformers' own step), while ``respond`` passes 32-bit float WAV (no rounding).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Sequence

from most_eval.core.adapter import Model, SampleFailure
from most_eval.core.audio import Audio
from most_eval.core.hf_loading import ModelLoadError, load_pretrained


@dataclass(frozen=True)
class ModelTypeRecipe:
    """How one ``model_type`` is loaded and prompted."""

    model_class: str  # transformers class that loads the checkpoint (as transformers 5 registers it)
    asr_prompt: str  # instruction text after the audio in the user turn, for ``transcribe``
    respond_prompt: str | None  # instruction text for ``respond``; None = the audio alone (voice-chat mode)
    source: str  # where the ASR prompt comes from
    audio_marker: str | None = None  # None: typed content parts; else the user turn is this text + the instruction
    system_prompt: str | None = None  # transcribe's system turn; None = none (or the template's default)
    respond_system_prompt: str | None = None  # respond's system turn; None = none (or the template's default)
    prompt_first: bool = False  # the instruction before the audio in the user turn (Qwen2.5-Omni's ASR cookbook)
    #: how a batch becomes model inputs: "chat" = the chat template rendered to text, then ``processor(text, audio)``;
    #: "mistral" = Voxtral's processor (mistral_common tokenizer): its transcription request for ``transcribe``
    #: (``asr_prompt`` empty) and its tokenizing chat template, audio inline, for ``respond`` / a custom prompt
    inputs: str = "chat"
    #: peft adapter folder inside the checkpoint, loaded (and active) when present: Phi-4-multimodal's speech LoRA
    lora_subfolder: str | None = None
    #: the processor class rebuilt from the folder's tokenizer and feature extractor when AutoProcessor cannot build
    #: it because its image/video parts need torchvision (audio-only use never calls them); None: AutoProcessor only
    audio_only_processor: str | None = None
    #: tokens that end an answer, passed to ``generate`` (with the tokenizer's pad token) where the checkpoint's
    #: generation config names none (Qwen2.5-Omni's thinker); empty: the checkpoint's own
    stop_tokens: tuple[str, ...] = ()


GRANITE_SYSTEM = ("Knowledge Cutoff Date: April 2024.\nToday's Date: December 19, 2024.\n"
                  "You are Granite, developed by IBM. You are a helpful AI assistant")
#: Qwen2.5-Omni's default system prompt (QwenLM/Qwen2.5-Omni README, "Prompt for audio output"; the voice-chatting
#: cookbook sends it with the audio alone)
QWEN_OMNI_SYSTEM = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
                    "auditory and visual inputs, as well as generating text and speech.")

#: model_type -> its recipe (transformers class, prompts, inputs). Prompts as their authors document them; see ``source`` per row.
MODEL_TYPES: dict[str, ModelTypeRecipe] = {
    # QwenLM/Qwen2-Audio eval_audio/evaluate_asr.py + EVALUATION.md (LibriSpeech rows of the eval jsonl): the
    # official eval prompts the *base* model with "<|audio_bos|><|AUDIO|><|audio_eos|>" + this text, no chat template.
    # Unconfirmed for the Instruct chat model: its model card shows voice chat (audio alone) and audio analysis
    # ("What's that sound?"), no ASR prompt; here the same text goes after the audio in the user turn.
    # Voice chat = the audio with no text (Instruct model card, "Voice Chat Inference"), used by ``respond``.
    "qwen2_audio": ModelTypeRecipe("Qwen2AudioForConditionalGeneration",
                          "Detect the language and recognize the speech: <|en|>", None,
                          "QwenLM/Qwen2-Audio eval_audio/evaluate_asr.py (base model); unconfirmed for Instruct"),
    # ibm-granite/granite-speech-3.3-{2b,8b} model cards and IBM's huggingface/open_asr_leaderboard granite/run_eval.py:
    # system turn as below, user turn "<|audio|>can you transcribe the speech into a written format?". The system text
    # is the leaderboard script's fixed one (the Granite template would otherwise insert today's date, so outputs
    # would change from day to day). Granite has no documented spoken-QA prompt: ``respond`` sends the audio alone.
    "granite_speech": ModelTypeRecipe("GraniteSpeechForConditionalGeneration",
                             "can you transcribe the speech into a written format?", None,
                             "ibm-granite/granite-speech-3.3 model cards; open_asr_leaderboard granite/run_eval.py",
                             audio_marker="<|audio|>", system_prompt=GRANITE_SYSTEM,
                             respond_system_prompt=GRANITE_SYSTEM),
    # QwenLM/Qwen2.5-Omni cookbooks/universal_audio_understanding.ipynb, "Speech Recognition": system "You are a
    # speech recognition model.", user turn = this instruction, then the audio. Voice chat (cookbooks/
    # voice_chatting.ipynb): the default system prompt and the audio alone, used by ``respond``. Text output only: the
    # thinker loads alone from the full checkpoint (transformers maps its ``thinker.*`` weights; the talker and
    # token2wav are not loaded). Its generation config names no end token: generation stops at <|im_end|>.
    "qwen2_5_omni": ModelTypeRecipe("Qwen2_5OmniThinkerForConditionalGeneration",
                           "Transcribe the English audio into text without any punctuation marks.", None,
                           "QwenLM/Qwen2.5-Omni cookbooks/universal_audio_understanding.ipynb; voice_chatting.ipynb",
                           system_prompt="You are a speech recognition model.",
                           respond_system_prompt=QWEN_OMNI_SYSTEM, prompt_first=True,
                           audio_only_processor="Qwen2_5OmniProcessor", stop_tokens=("<|im_end|>",)),
    # microsoft/Phi-4-multimodal-instruct model card, "Speech-Language Format": ASR = "<|user|><|audio_1|>Transcribe
    # the audio clip into text.<|end|><|assistant|>", spoken-query QA = the audio alone. transformers' native
    # processor writes the audio as one <|audio|> placeholder from typed content parts (its chat template). The
    # checkpoint's speech LoRA (``speech-lora/``) is loaded with peft, as transformers' phi4_multimodal docs do.
    "phi4_multimodal": ModelTypeRecipe("Phi4MultimodalForCausalLM", "Transcribe the audio clip into text.", None,
                              "microsoft/Phi-4-multimodal-instruct model card (speech-language format); transformers "
                              "docs model_doc/phi4_multimodal.md (speech-lora)",
                              lora_subfolder="speech-lora", audio_only_processor="Phi4MultimodalProcessor"),
    # mistralai/Voxtral-Mini-3B-2507 / -Small-24B-2507 through transformers (docs/source/en/model_doc/voxtral.md):
    # "Transcription Mode" = VoxtralProcessor.apply_transcription_request(language="en", audio=..., model_id=...),
    # which renders "<s>[INST][BEGIN_AUDIO][AUDIO]...[/INST]lang:en[TRANSCRIBE]" and takes no instruction text;
    # "Audio Instruct Mode" = the chat template with an audio content part (+ an optional text part), which is what
    # ``respond`` sends (the audio alone). The model card: temperature 0.0 for transcription; no system prompt yet.
    # The tokenizer is mistral_common's (tekken.json, loaded offline by MistralCommonBackend).
    "voxtral": ModelTypeRecipe("VoxtralForConditionalGeneration", "", None,
                      "transformers docs model_doc/voxtral.md (Transcription Mode, Audio Instruct Mode)",
                      inputs="mistral"),
}


@dataclass(frozen=True)
class HFAudioLMArgs:
    """``--model-args`` of ``hf-audio-lm``."""

    path: str = ""  # local model folder (or a hub id where the network allows it)
    dtype: str = "float32"  # float32, float16 or bfloat16
    max_new_tokens: int = 256  # longest answer or transcript, in tokens
    prompt: str | None = None  # transcribe instruction; None = the family's documented one (MODEL_TYPES)
    respond_prompt: str | None = None  # respond instruction; None = the family's (Qwen2-Audio: audio alone)
    language: str = "en"  # Voxtral's transcription mode: the language code it is told ("" = let it detect)
    do_sample: bool = False  # sample answers and transcripts (seeded by --seed / --seeds) instead of greedy decoding
    temperature: float = 1.0  # sampling temperature when do_sample


def model_type(path: str) -> str:
    """``model_type`` from the folder's config.json (through AutoConfig for a hub id or cache entry)."""
    config = Path(path).expanduser() / "config.json"
    if config.is_file():
        return json.loads(config.read_text()).get("model_type", "")
    import transformers

    return load_pretrained(path, transformers.AutoConfig.from_pretrained, "config").model_type


class HFAudioLM(Model):
    name = "hf-audio-lm"
    description = ("transformers audio-text-to-text chat model (Qwen2-Audio, Granite Speech, Qwen2.5-Omni, "
                   "Phi-4-multimodal, Voxtral) from a local folder, "
                   "through its chat template (transcribe, respond with text)")
    Args = HFAudioLMArgs

    def __init__(self, args=None, **kw):
        super().__init__(args, **kw)
        if not self.args.path:
            raise ValueError("hf-audio-lm needs path=<local model folder> in --model-args")
        if self.args.max_new_tokens < 1:
            raise ValueError(f"hf-audio-lm: max_new_tokens must be at least 1, got {self.args.max_new_tokens}")
        if not self.args.temperature > 0:
            raise ValueError(f"hf-audio-lm: temperature must be above 0, got {self.args.temperature}")
        kind = model_type(self.args.path)
        if kind not in MODEL_TYPES:
            raise ModelLoadError(f"{self.args.path}: model_type {kind!r} is not supported by hf-audio-lm "
                                 f"(supported: {', '.join(sorted(MODEL_TYPES))})")
        self.recipe = MODEL_TYPES[kind]
        self.model  # load now: a bad path fails before any task runs

    @cached_property
    def processor(self):
        """Feature extractor + tokenizer + chat template of the folder; the tokenizer pads on the left."""
        import transformers

        try:
            processor = load_pretrained(self.args.path, transformers.AutoProcessor.from_pretrained, "processor")
        except ModelLoadError:
            if self.recipe.audio_only_processor is None:
                raise
            # its image/video processors need torchvision: the same processor class with only its audio parts
            processor = load_pretrained(self.args.path, audio_only_processor(self.recipe.audio_only_processor).
                                        from_pretrained, "processor (audio parts)")
        if getattr(processor, "chat_template", None) is None and getattr(processor.tokenizer, "chat_template", None):
            processor.chat_template = processor.tokenizer.chat_template
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

        cls = getattr(transformers, self.recipe.model_class)
        model = load_pretrained(self.args.path, cls.from_pretrained, self.name, dtype=getattr(torch, self.args.dtype))
        lora = self.recipe.lora_subfolder
        if lora and (Path(self.args.path).expanduser() / lora).is_dir():  # one adapter: active once loaded
            model.load_adapter(str(Path(self.args.path).expanduser()), adapter_name=lora,
                               adapter_kwargs={"subfolder": lora})
        self.sample_rate = self.feature_extractor.sampling_rate
        return model.to(self.device).eval()

    def identity(self) -> dict:
        identity = {**super().identity(), "family": self.recipe.model_class, "asr_prompt": self.asr_prompt}
        if self.transcription_mode:
            identity["asr_mode"] = f"transcription request, language {self.args.language or 'detected'}"
        return identity

    def deterministic(self, capability: str) -> bool:
        """Greedy decoding unless ``do_sample``."""
        return not self.args.do_sample

    @property
    def transcription_mode(self) -> bool:
        """Whether ``transcribe`` uses the family's dedicated transcription request (Voxtral) instead of a prompt."""
        return self.recipe.inputs == "mistral" and not self.asr_prompt

    @property
    def asr_prompt(self) -> str:
        """The instruction ``transcribe`` sends after the audio."""
        return self.args.prompt if self.args.prompt is not None else self.recipe.asr_prompt

    # ---- capabilities ----------------------------------------------------------------------------------
    def transcribe(self, audios: Sequence[Audio]) -> list[str]:
        return self.generate(audios, self.asr_prompt, self.recipe.system_prompt, self.transcription_mode)

    def respond(self, audios: Sequence[Audio], modality: str = "text") -> list:
        if modality != "text":
            return [SampleFailure("text output only")] * len(audios)
        prompt = self.args.respond_prompt if self.args.respond_prompt is not None else self.recipe.respond_prompt
        return self.generate(audios, prompt, self.recipe.respond_system_prompt)

    @cached_property
    def stop_arguments(self) -> dict:
        """``eos_token_id``/``pad_token_id`` for ``generate`` from the family's stop tokens (none: the checkpoint's
        own generation config)."""
        if not self.recipe.stop_tokens:
            return {}
        tokenizer = self.processor.tokenizer
        return {"eos_token_id": [tokenizer.convert_tokens_to_ids(t) for t in self.recipe.stop_tokens],
                "pad_token_id": tokenizer.pad_token_id}

    # ---- decoding --------------------------------------------------------------------------------------
    def chat_text(self, prompt: str | None, system: str | None = None) -> str:
        """``system`` as a system turn (if any) and one user turn (the audio, then ``prompt`` if any; the prompt
        first where the family says so), rendered by the chat template with the generation prompt on."""
        if self.recipe.audio_marker is not None:
            content = self.recipe.audio_marker + (prompt or "")
        else:
            content = [{"type": "audio", "audio": "<audio>"}]  # a placeholder: the template only emits audio tokens
            if prompt:
                content.insert(0 if self.recipe.prompt_first else 1, {"type": "text", "text": prompt})
        chat = [{"role": "user", "content": content}]
        if system is not None:
            chat.insert(0, {"role": "system", "content": system})
        return self.processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    def model_inputs(self, audios: Sequence[Audio], prompt: str | None, system: str | None = None,
                     transcription: bool = False) -> dict:
        """The processor's batch for one chat per audio (or Voxtral's transcription request), left-padded."""
        if self.recipe.inputs == "mistral":
            if transcription:
                return dict(self.processor.apply_transcription_request(
                    language=self.args.language or None, audio=[a.samples for a in audios], model_id=self.args.path,
                    sampling_rate=self.sample_rate, format=["wav"] * len(audios)))
            conversations = [[{"role": "user", "content": [{"type": "audio", "base64": wav_base64(a)},
                                                           *([{"type": "text", "text": prompt}] if prompt else [])]}]
                             for a in audios]
            return dict(self.processor.apply_chat_template(conversations, tokenize=True, return_dict=True,
                                                           return_tensors="pt"))
        text = self.chat_text(prompt, system)
        return dict(self.processor(text=[text] * len(audios), audio=[a.samples for a in audios],
                                   sampling_rate=self.sample_rate, return_tensors="pt", padding=True))

    def generate(self, audios: Sequence[Audio], prompt: str | None, system: str | None = None,
                 transcription: bool = False) -> list[str]:
        """Answers to one chat per audio (greedy, or sampled with torch seeded by the model's seed when
        ``do_sample``), batched with left padding; only the new tokens are decoded."""
        import torch

        inputs = self.model_inputs(audios, prompt, system, transcription)
        inputs = {k: v.to(self.device, self.model.dtype) if v.is_floating_point() else v.to(self.device)
                  for k, v in inputs.items()}
        sampling = {"do_sample": True, "temperature": self.args.temperature} if self.args.do_sample \
            else {"do_sample": False}
        if self.args.do_sample:
            torch.manual_seed(self.seed)
        with torch.inference_mode():
            ids = self.model.generate(**inputs, num_beams=1, max_new_tokens=self.args.max_new_tokens,
                                      **sampling, **self.stop_arguments)
        new = ids[:, inputs["input_ids"].shape[1]:]  # (B, new tokens): left padding aligns every prompt's end
        return [t.strip() for t in self.processor.tokenizer.batch_decode(new, skip_special_tokens=True)]


def wav_base64(audio: Audio) -> str:
    """The clip as a 32-bit float WAV in base64: how Voxtral's chat template takes audio (mistral_common decodes it
    with soundfile), without the 16-bit rounding a path or a PCM WAV would add."""
    import base64
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, audio.samples, audio.sample_rate, format="WAV", subtype="FLOAT")
    return base64.b64encode(buffer.getvalue()).decode()


#: names of a processor's special-token attributes, copied from its tokenizer as the processors' own ``__init__`` do
_TOKEN_ATTRIBUTES = ("audio_token", "audio_token_id", "image_token", "image_token_id", "video_token",
                     "video_token_id", "audio_bos_token", "audio_eos_token", "vision_bos_token", "vision_eos_token")


@lru_cache(maxsize=None)
def audio_only_processor(name: str) -> type:
    """transformers' processor class ``name`` with only its feature extractor and tokenizer: transformers reads a
    processor's parts from its ``__init__`` signature, so this subclass loads just those from the folder, while the
    audio preprocessing and placeholder expansion (``__call__``, ``replace_audio_token``) stay the library's own.
    For machines without torchvision, which the image/video processors of Qwen2.5-Omni and Phi-4-multimodal need."""
    import transformers
    from transformers.processing_utils import ProcessorMixin

    base = getattr(transformers, name)

    def copy_tokens(processor):
        for attribute in _TOKEN_ATTRIBUTES:
            if getattr(processor.tokenizer, attribute, None) is not None:
                setattr(processor, attribute, getattr(processor.tokenizer, attribute))

    if name == "Phi4MultimodalProcessor":
        class AudioOnly(base):
            def __init__(self, audio_processor=None, tokenizer=None, chat_template=None, **kwargs):
                ProcessorMixin.__init__(self, audio_processor, tokenizer, chat_template=chat_template, **kwargs)
                copy_tokens(self)
    else:  # feature_extractor + tokenizer (Qwen2.5-Omni)
        class AudioOnly(base):
            def __init__(self, feature_extractor=None, tokenizer=None, chat_template=None, **kwargs):
                ProcessorMixin.__init__(self, feature_extractor, tokenizer, chat_template=chat_template, **kwargs)
                copy_tokens(self)

            @property
            def model_input_names(self):  # the base's reads its image and video processors
                return list(dict.fromkeys(self.tokenizer.model_input_names + self.feature_extractor.model_input_names
                                          + ["feature_attention_mask"]))

    AudioOnly.__name__ = AudioOnly.__qualname__ = f"{name}AudioOnly"
    return AudioOnly
