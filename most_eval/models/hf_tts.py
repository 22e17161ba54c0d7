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
bark (Bark, Bark-small)  ``BarkModel`` (semantic, coarse, fine, EnCodec)     voice_preset=NAME|FILE.npz,
                         + ``BarkProcessor``                                 max_new_tokens, do_sample
csm (Sesame CSM)         ``CsmForConditionalGeneration`` (Mimi codec)        speaker, max_new_tokens, do_sample
                         + ``CsmProcessor`` and its chat template
fastspeech2_conformer    ``FastSpeech2ConformerModel`` + its tokenizer        vocoder=DIR (required: a
(espnet FastSpeech 2)    (g2p_en phonemes) + ``FastSpeech2ConformerHifiGan``  fastspeech2_conformer_hifigan folder)
=======================  ==================================================  =====================================

The output rate is the vocoder's (SpeechT5), the model's (VITS) or the codec's (Bark: EnCodec, 24 kHz; CSM: Mimi,
24 kHz). ``max_new_tokens`` bounds the first generation stage: Bark semantic tokens (~50 per second of speech), CSM
audio frames (12.5 per second); None, like ``do_sample=None``, keeps the checkpoint's ``generation_config.json``.

Speaker prompts: only CSM uses them. CSM is conditioned on a conversation; a prompt becomes a context turn of the
same ``speaker`` before the text's turn — the prompt audio (resampled to the codec rate) with an *empty* transcript,
since the adapter contract carries no transcript of the prompt (Sesame's own context turns pair audio with its
text). Bark's voice is the fixed ``voice_preset`` (its history prompt: semantic, coarse and fine tokens, not audio),
SpeechT5's the fixed ``speaker_embedding`` x-vector, VITS/MMS-TTS is single-speaker: these ignore ``prompts``.
Each text is synthesised on its own with torch seeded by ``seed`` before it, so an output does not depend on its
batch-mates (VITS samples noise; Bark and CSM sample when ``do_sample``; SpeechT5 is deterministic).

FastSpeech2Conformer (transformers docs model_doc/fastspeech2_conformer.md: tokenizer -> model -> spectrogram ->
HiFi-GAN) turns text into phonemes with ``g2p_en``, which reads NLTK data (``cmudict``, the averaged perceptron
tagger) and, when it is missing, tries to download it at import. So the data is checked first, without importing
g2p_en: a missing package is a one-line error naming the ``python -m nltk.downloader`` command and ``$NLTK_DATA``.
Texts are synthesised one at a time: padded batches change the output (the encoder's convolutions see the padding).

Any other ``model_type``: a one-line error names the supported types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from most_eval.core.adapter import Model
from most_eval.core.audio import Audio
from most_eval.core.hf_loading import ModelLoadError, load_pretrained

SUPPORTED = ("vits", "speecht5", "bark", "csm", "fastspeech2_conformer")
#: NLTK resources FastSpeech2Conformer's g2p_en reads -> the nltk.downloader package that provides each
G2P_NLTK_DATA = {
    "taggers/averaged_perceptron_tagger.zip": "averaged_perceptron_tagger",  # g2p_en's check at import
    "taggers/averaged_perceptron_tagger_eng/": "averaged_perceptron_tagger_eng",  # nltk >= 3.9 pos_tag
    "corpora/cmudict.zip": "cmudict",  # G2p() -> cmudict.dict()
}


@dataclass(frozen=True)
class HFTTSArgs:
    """``--model-args`` of ``hf-tts``; family args are ignored by the other families."""

    path: str = ""  # local model folder (or a hub id where the network allows it)
    dtype: str = "float32"  # float32, float16 or bfloat16
    vocoder: str = ""  # SpeechT5: SpeechT5HifiGan folder; FastSpeech2Conformer: its fastspeech2_conformer_hifigan
    speaker_embedding: str = ""  # SpeechT5: .npy speaker x-vector, shape (speaker_embedding_dim,) = (512,)
    noise_scale: float | None = None  # VITS: prior noise (None = config's, 0.667 for MMS-TTS)
    noise_scale_duration: float | None = None  # VITS: duration-predictor noise (None = config's)
    speaking_rate: float | None = None  # VITS: >1 speaks faster (None = config's)
    min_length_ratio: float = 0.0  # SpeechT5: fewest output frames per input token
    max_length_ratio: float = 20.0  # SpeechT5: most output frames per input token
    stop_threshold: float = 0.5  # SpeechT5: stop-token probability that ends generation
    voice_preset: str = ""  # Bark: a preset of the folder (e.g. v2/en_speaker_6) or an .npz history prompt; "" = none
    speaker: int = 0  # CSM: speaker id of the text's turn (and of the prompt's context turn)
    max_new_tokens: int | None = None  # Bark: most semantic tokens; CSM: most audio frames (None = checkpoint's)
    do_sample: bool | None = None  # Bark, CSM: sample (seeded) rather than greedy (None = checkpoint's)


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
    """transformers TTS from a local folder; family from ``model_type``. Only CSM uses speaker prompts."""

    name = "hf-tts"
    description = ("transformers text-to-speech (VITS/MMS-TTS, SpeechT5, Bark, CSM, FastSpeech2Conformer) from a "
                   "local folder")
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
        elif self.model_type == "bark":
            parts["model"] = load("BarkModel", a.path, "Bark model", dtype=dtype)
            parts["processor"] = load("BarkProcessor", a.path, "processor")
            parts["history"] = self._bark_voice(parts["processor"])
        elif self.model_type == "csm":
            parts["model"] = load("CsmForConditionalGeneration", a.path, "CSM model", dtype=dtype)
            parts["processor"] = load("CsmProcessor", a.path, "processor")
            if not parts["processor"].chat_template:
                raise ModelLoadError(f"{a.path}: the CSM processor has no chat template (chat_template.jinja)")
        elif self.model_type == "fastspeech2_conformer":
            if not a.vocoder:
                raise ModelLoadError("FastSpeech2Conformer needs vocoder=<fastspeech2_conformer_hifigan folder> in "
                                     "--model-args")
            check_g2p_nltk_data()  # before g2p_en is imported: its import would try to download what is missing
            parts["model"] = load("FastSpeech2ConformerModel", a.path, "FastSpeech2Conformer model", dtype=dtype)
            parts["tokenizer"] = load("FastSpeech2ConformerTokenizer", a.path, "tokenizer")
            parts["vocoder"] = load("FastSpeech2ConformerHifiGan", a.vocoder, "vocoder",
                                    dtype=dtype).to(self.device).eval()
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

    def _bark_voice(self, processor):
        """Bark's history prompt of ``voice_preset`` as tensors, or None; loaded (and checked) once."""
        name = self.args.voice_preset
        if not name:
            return None
        try:
            return processor("", voice_preset=name)["history_prompt"]
        except Exception as exc:  # a name neither in speaker_embeddings_path.json nor an .npz file, or a bad .npz
            presets = ", ".join(processor.available_voice_presets[:8]) or "none"
            raise ModelLoadError(f"voice_preset {name!r}: not a preset of the folder (presets: {presets}) nor a "
                                 f"readable .npz ({str(exc).splitlines()[0][:120]})") from None

    def _output_rate(self, parts: dict) -> int:
        if self.model_type in ("bark", "csm"):  # the codec (EnCodec, Mimi) writes the waveform
            return int(parts["model"].config.codec_config.sampling_rate)
        config = (parts.get("vocoder") or parts["model"]).config
        if getattr(config, "sampling_rate", None) is None:  # FastSpeech2Conformer's HiFi-GAN: an extra config key
            raise ModelLoadError(f"{self.args.vocoder or self.args.path}: config.json has no sampling_rate")
        return int(config.sampling_rate)

    def identity(self) -> dict:
        return {**super().identity(), "model_type": self.model_type, "sample_rate": self.sample_rate}

    def deterministic(self, capability: str) -> bool:
        """SpeechT5 and FastSpeech2Conformer draw no random numbers; Bark and CSM only with ``do_sample=false``
        (their generation configs sample by default); VITS samples its prior noise."""
        if self.model_type in ("speecht5", "fastspeech2_conformer"):
            return True
        return self.model_type in ("bark", "csm") and self.args.do_sample is False

    def uses_speaker_prompt(self) -> bool:
        """Only CSM conditions on the prompt (a context turn); the other families ignore it."""
        return self.model_type == "csm"

    def synthesize(self, texts: Sequence[str], prompts: Sequence[Audio | None] | None = None) -> list[Audio]:
        import torch

        out = []
        with torch.inference_mode():
            for text, prompt in zip(texts, prompts or [None] * len(texts)):
                torch.manual_seed(self.seed)  # per text: outputs do not depend on batch composition
                wav = self._one(text, prompt)
                samples = wav.detach().float().cpu().numpy().reshape(-1).astype(np.float32)
                out.append(Audio(samples, self.sample_rate))
        return out

    def _generation_kwargs(self, first_stage: str) -> dict:
        """``generate`` overrides of the args that are set; ``first_stage`` prefixes ``max_new_tokens`` (Bark)."""
        a, kw = self.args, {}
        if a.do_sample is not None:
            kw["do_sample"] = a.do_sample
        if a.max_new_tokens is not None:
            kw[first_stage + "max_new_tokens"] = a.max_new_tokens
        return kw

    def _one(self, text: str, prompt: Audio | None):
        """Waveform tensor of one text (and, for CSM, its speaker prompt)."""
        p, a = self.parts, self.args
        model = p["model"]
        if self.model_type == "vits":
            inputs = p["tokenizer"](text, return_tensors="pt").to(self.device)
            return model(**inputs).waveform[0]
        if self.model_type == "bark":
            inputs = p["processor"](text).to(self.device)  # input_ids padded to 256, attention_mask
            history = p["history"].to(self.device) if p["history"] is not None else None
            return model.generate(**inputs, history_prompt=history, **self._generation_kwargs("semantic_"))[0]
        if self.model_type == "csm":
            return self._csm(text, prompt)
        if self.model_type == "fastspeech2_conformer":
            ids = p["tokenizer"](text, return_tensors="pt")["input_ids"].to(self.device)
            if ids.shape[-1] == 0:  # the tokenizer gives no ids for "" (not even <sos/eos>): the model cannot run
                raise ValueError("FastSpeech2Conformer: nothing to say (the text has no phonemes)")
            return p["vocoder"](model(ids, return_dict=True)["spectrogram"])[0]
        ids = p["processor"](text=text, return_tensors="pt").input_ids.to(self.device)  # speecht5
        return model.generate_speech(ids, p["speaker"], vocoder=p["vocoder"], threshold=a.stop_threshold,
                                     minlenratio=a.min_length_ratio, maxlenratio=a.max_length_ratio)

    def _csm(self, text: str, prompt: Audio | None):
        """CSM: the text as the last turn of a conversation; the prompt, if any, as a context turn before it."""
        p, speaker = self.parts, str(self.args.speaker)
        conversation = []
        if prompt is not None:  # no transcript of the prompt in the contract: an empty text next to its audio
            samples = prompt.resampled(p["processor"].feature_extractor.sampling_rate).samples
            conversation.append({"role": speaker, "content": [{"type": "text", "text": ""},
                                                              {"type": "audio", "path": samples}]})
        conversation.append({"role": speaker, "content": [{"type": "text", "text": text}]})
        inputs = p["processor"].apply_chat_template(conversation, tokenize=True, return_dict=True).to(self.device)
        if "input_values" in inputs:  # (1, 1, n_samples) prompt audio, encoded by the codec in the model's dtype
            inputs["input_values"] = inputs["input_values"].to(p["model"].dtype)
        return p["model"].generate(**inputs, output_audio=True, **self._generation_kwargs(""))[0]


def check_g2p_nltk_data() -> None:
    """ModelLoadError (one line) naming the NLTK packages g2p_en needs that nltk cannot find, the command that
    fetches them and where they go; nothing is downloaded and g2p_en is not imported."""
    import os
    import warnings

    import nltk

    missing = []
    for resource, package in G2P_NLTK_DATA.items():
        try:
            with warnings.catch_warnings():  # nltk warns about (and skips) data folders others can write to
                warnings.simplefilter("ignore")
                nltk.data.find(resource)
        except LookupError:
            missing.append(package)
    if missing:
        where = os.environ.get("NLTK_DATA", "").split(os.pathsep)[0] or "~/nltk_data"
        raise ModelLoadError(f"FastSpeech2Conformer's phonemizer (g2p_en) needs NLTK data {', '.join(missing)}: on "
                             f"a machine with network run `python -m nltk.downloader -d DIR {' '.join(missing)}`, "
                             f"copy DIR here and set NLTK_DATA=DIR (now: {where}; not writable by group or others)")
