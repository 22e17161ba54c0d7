"""Prompt formats: how each MoST task is framed as tokens, one named set per checkpoint, shared by training and
evaluation.

A format is a template per task key. Templates are what comes after the renderer's bos and before the target:
literal text goes through the checkpoint's tokenizer (so special-token strings such as ``<|end_of_sentence|>`` become
their ids), ``{audio}`` is a continuous audio span (span begin, one slot per HuBERT frame, span end), ``{units}`` the
utterance's unit tokens after a begin-of-audio marker, ``{text}`` the example's text. Targets are the text and
end-of-sentence, or begin-of-audio, units, end-of-audio, end-of-sentence (mixing.Formatter).

Task keys: ``asr``, ``tts``, ``score`` (unconditional unit scoring), ``respond_text`` / ``respond_speech`` (spoken
question, text or speech answer), ``text_instruction_text`` / ``text_instruction_speech`` (text question).

Formats:

* ``release`` -- the MoST release's instruction frame (``MoST_dataset/multimodal_dataset.py``, NUS-HPC-AI-Lab/MoST at
  9c13577): ``<|begin_of_sentence|>{instruction}\\n\\n{input}<|end_of_sentence|>\\n\\nOutput: `` followed by the target
  ``<|begin_of_sentence|>{output}<|end_of_sentence|>``. The release encodes both with ``add_special_tokens=False``,
  so the renderer adds no bos id here: the markers are the template's own text, tokenized as the checkpoint's
  tokenizer tokenizes them. The response's begin-of-sentence ends the prompt, so generation starts where the release's
  output text starts, and ends at the end-of-sentence id or the text ``<|end_of_sentence|>``. The release's
  ASR and TTS instructions are kept verbatim: "Transcribe the following speech into text." and "Convert the
  following text into speech.". The release has no instruction for spoken QA, text instructions or unconditional
  unit scoring: those (:data:`OUR_WORDING`) use the same frame with instructions of our own wording. The speech
  input is the release's waveform span (its ``[AUDIO_WAVEFORM]`` placeholder becomes begin-of-wave, the projected
  HuBERT frames, end-of-wave), and unit strings sit between ``<|begin_of_audio|>`` and ``<|end_of_audio|>``. The
  default for a checkpoint with the DeepSeek tokenizer.
* ``tiny`` -- the bundled tiny checkpoint's character-tokenizer task tags (``<asr>``, ``<tts>``, ``<ask>``,
  ``<as_text>``, ``<as_speech>``).
* a YAML file of your own: ``name:`` and ``templates:`` with every task key (:func:`load_prompt_format`).

The format's name and templates are written into the exported checkpoint's most.json (``prompt_format``,
``prompts``), and the ``most`` adapter prompts with what the checkpoint records; results.json names the format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

TASK_KEYS = ("asr", "tts", "score", "respond_text", "respond_speech", "text_instruction_text",
             "text_instruction_speech")

#: the release's prompt, verbatim (``multimodal_dataset.py``), followed by the begin-of-sentence its response starts
#: with, so generation continues where the release's output text starts
RELEASE_PROMPT = "<|begin_of_sentence|>{instruction}\n\n{input}<|end_of_sentence|>\n\nOutput: "
RELEASE_FRAME = RELEASE_PROMPT + "<|begin_of_sentence|>"
#: where the release's response text ends: generation stops there (and at the end-of-sentence id)
RELEASE_STOP = ("<|end_of_sentence|>",)
#: the release's two instructions, verbatim
RELEASE_INSTRUCTIONS = {
    "asr": "Transcribe the following speech into text.",
    "tts": "Convert the following text into speech.",
}
#: the tasks the release has no instruction for, worded by us in its frame
OUR_WORDING = {
    "score": "Generate speech.",
    "respond_text": "Answer the following spoken question in text.",
    "respond_speech": "Answer the following spoken question in speech.",
    "text_instruction_text": "Answer the following question in text.",
    "text_instruction_speech": "Answer the following question in speech.",
}
#: each task's input in the frame: the speech span, the text, or nothing (unconditional scoring: units follow)
RELEASE_INPUTS = {"asr": "{audio}", "tts": "{text}", "score": "", "respond_text": "{audio}",
                  "respond_speech": "{audio}", "text_instruction_text": "{text}", "text_instruction_speech": "{text}"}


def _release_templates() -> dict[str, str]:
    templates = {}
    for key in TASK_KEYS:
        instruction = RELEASE_INSTRUCTIONS.get(key) or OUR_WORDING[key]
        templates[key] = RELEASE_FRAME.format(instruction=instruction, input=RELEASE_INPUTS[key])
    templates["score"] += "{units}"  # the units are the output: scored after the frame's begin-of-audio
    return templates


@dataclass(frozen=True)
class PromptFormat:
    """A named template per task key (module docstring); ``required_tokens`` must each be one tokenizer token;
    ``bos``: the renderer puts the tokenizer's bos id first (False: the template writes its own start, as the
    release does); ``stop``: texts that end a generated answer besides the end-of-sentence id."""

    name: str
    templates: dict[str, str]
    required_tokens: tuple[str, ...] = ()
    description: str = ""
    ours: tuple[str, ...] = field(default=())  # task keys whose wording is ours, not the source's
    bos: bool = True
    stop: tuple[str, ...] = ()

    def __post_init__(self):
        missing = [k for k in TASK_KEYS if not isinstance(self.templates.get(k), str)]
        if missing:
            raise ValueError(f"prompt format {self.name!r}: no template for {', '.join(missing)}")
        unknown = sorted(set(self.templates) - set(TASK_KEYS))
        if unknown:
            raise ValueError(f"prompt format {self.name!r}: unknown task key(s) {unknown} (known: "
                             f"{', '.join(TASK_KEYS)})")

    def check_tokenizer(self, tokenizer, where: str = "tokenizer") -> None:
        """ValueError (one line) when a special-token string the format writes is not one token of ``tokenizer``,
        or a stop text is one it cannot write (it would never be generated, nor found)."""
        for token in self.required_tokens:
            ids = tokenizer(token, add_special_tokens=False).input_ids
            if len(ids) != 1:
                raise ValueError(f"{where}: prompt format {self.name!r} writes {token!r}, which this tokenizer "
                                 f"splits into {len(ids)} tokens (it needs the release's special tokens)")
        for text in self.stop:
            ids = tokenizer(text, add_special_tokens=False).input_ids
            if tokenizer.decode(ids) != text:
                raise ValueError(f"{where}: prompt format {self.name!r} ends answers at {text!r}, which this "
                                 f"tokenizer cannot write (give the checkpoint a format its tokenizer can: "
                                 f"prompt_format=tiny or a YAML file)")

    def record(self) -> dict:
        """What most.json and results record: the name and every template."""
        return {"prompt_format": self.name, "prompts": dict(self.templates), "prompt_bos": self.bos,
                "prompt_stop": list(self.stop)}


RELEASE = PromptFormat("release", _release_templates(), (),
                       "the MoST release's instruction frame and its ASR / TTS instructions", tuple(OUR_WORDING),
                       bos=False, stop=RELEASE_STOP)
TINY = PromptFormat("tiny", {
    "asr": "<asr>{audio}",
    "tts": "<tts>{text}",
    "score": "<tts><boa>{units}",  # unconditional: the units after an empty TTS prompt
    "respond_text": "<ask>{audio}<as_text>",
    "respond_speech": "<ask>{audio}<as_speech>",
    "text_instruction_text": "<ask>{text}<as_text>",
    "text_instruction_speech": "<ask>{text}<as_speech>",
}, ("<asr>", "<tts>", "<ask>", "<as_text>", "<as_speech>"), "the bundled tiny checkpoint's character-tokenizer tags",
    tuple(TASK_KEYS))
FORMATS = {f.name: f for f in (RELEASE, TINY)}


def load_prompt_format(path: str | Path) -> PromptFormat:
    """A format from a YAML file ``{name: str, templates: {task key: template}, required_tokens: [..]}``;
    ValueError (one line naming the file) when it is not one."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read prompt format ({' '.join(str(exc).split())[:160]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not isinstance(data.get("templates"),
                                                                                           dict):
        raise ValueError(f"{path}: a prompt format is a mapping with name: and templates: {{task: template}}")
    tokens = data.get("required_tokens") or []
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ValueError(f"{path}: required_tokens must be a list of strings")
    bad = [k for k, v in data["templates"].items() if not isinstance(v, str)]
    if bad:
        raise ValueError(f"{path}: template {bad[0]!r} is not a string")
    extra = sorted(set(data) - {"name", "templates", "required_tokens", "description", "bos", "stop"})
    if extra:
        raise ValueError(f"{path}: unknown key(s) {extra}")
    stop = data.get("stop") or []
    if not isinstance(data.get("bos", True), bool) or not isinstance(stop, list) or \
            not all(isinstance(t, str) and t for t in stop):
        raise ValueError(f"{path}: bos must be true or false, stop a list of texts")
    try:
        return PromptFormat(data["name"], dict(data["templates"]), tuple(tokens), str(data.get("description", "")),
                            tuple(TASK_KEYS), bos=data.get("bos", True), stop=tuple(stop))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def prompt_format(spec: str) -> PromptFormat:
    """The format ``spec`` names: ``release``, ``tiny``, or a YAML file's path."""
    if spec in FORMATS:
        return FORMATS[spec]
    if str(spec).endswith((".yaml", ".yml")):
        return load_prompt_format(spec)
    raise ValueError(f"unknown prompt format {spec!r}: use {', '.join(FORMATS)} or a YAML file")


#: the base of a template dict an older checkpoint records without a format name (its missing keys): the audio or
#: text alone
BARE_TEMPLATES = {"asr": "{audio}", "tts": "{text}", "score": "{units}", "respond_text": "{audio}",
                  "respond_speech": "{audio}", "text_instruction_text": "{text}", "text_instruction_speech": "{text}"}


def checkpoint_format(manifest: dict, override: str = "") -> PromptFormat:
    """The format a checkpoint is prompted with: ``override`` (``prompt_format=`` of the model args) when given,
    else what its most.json records: ``prompt_format`` (with its ``prompts``, the templates it was trained with),
    or only ``prompts`` (a checkpoint written before formats had names: ``tiny`` when they are the tiny tags, else
    ``custom``, missing keys from :data:`BARE_TEMPLATES`), or nothing: ``release``, the default."""
    if override:
        return prompt_format(override)
    templates = manifest.get("prompts") or {}
    name = manifest.get("prompt_format")
    if isinstance(name, str) and name:
        if name in FORMATS and (not templates or templates == FORMATS[name].templates):
            return FORMATS[name]
        return PromptFormat(name, {**BARE_TEMPLATES, **templates}, (), "templates recorded in the checkpoint",
                            tuple(TASK_KEYS), bos=bool(manifest.get("prompt_bos", True)),
                            stop=tuple(manifest.get("prompt_stop") or ()))
    if templates == TINY.templates:
        return TINY
    if templates:
        return PromptFormat("custom", {**BARE_TEMPLATES, **templates}, (), "templates recorded in the checkpoint",
                            tuple(TASK_KEYS))
    return RELEASE


def render_text(fmt: PromptFormat, key: str, text: str = "", audio: str = "[AUDIO_WAVEFORM]",
                units: str = "<|begin_of_audio|>") -> str:
    """A task's prompt as text (without the renderer's bos id), the speech span shown as the release shows it
    (``[AUDIO_WAVEFORM]``) and ``{units}`` as its begin-of-audio marker: for reading and for comparing with the
    release's strings."""
    return fmt.templates[key].replace("{text}", text).replace("{audio}", audio).replace("{units}", units)
