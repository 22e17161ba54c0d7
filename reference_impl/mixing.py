"""Sequence formatting and stage mixtures for MoST training.

Five tasks, each one token sequence `[bos] prompt target`, with the loss on the target only (labels -100 on the
prompt), except the text-LM task whose whole text is the target:

    task                 prompt template (configurable)    target
    asr                  "<asr>{audio}"                    transcript, eos
    tts                  "<tts>{text}"                     boa, unit tokens, eoa, eos
    text_lm              ""                                text, eos
    speech_instruction   "<ask>{audio}<as_text>"           answer text, eos          (text answer)
                         "<ask>{audio}<as_speech>"         boa, answer units, eoa, eos (speech answer)
    text_instruction     "<ask>{text}<as_text>"            answer text, eos
                         "<ask>{text}<as_speech>"          boa, answer units, eoa, eos

Special ids come from the model config (MoST's layout, remapped by the tiny config): bos / eos; the unit tokens
`unit_token_offset + k`; the discrete begin / end-of-audio markers, the two ids after the last unit
(`unit_token_offset + num_units` and `+ 1`: 100502 / 100503 in MoST, 116 / 117 in the tiny config); and the
continuous-span markers `audio_span_begin_id` / `audio_span_end_id`. `{audio}` becomes a continuous span: the begin
marker, one placeholder per HuBERT frame (the model writes the projected features there), the end marker.
Templates are rendered exactly as the harness adapter renders them (`adapter.MoSTModel._prompt`): literal text goes
through the tokenizer (so task tags such as `<asr>` must be tokenizer tokens: the tiny character tokenizer below has
them; with the DeepSeek tokenizer use the release's plain-text frame), `{text}` is substituted before tokenizing.
The templates come from a named prompt format (prompt_formats.py: `release`, `tiny`, a YAML file) and are written
into the exported checkpoint's most.json, so training and evaluation agree by construction.

Mixing (MoST paper): every micro-batch holds one task, drawn with the stage's mixture weights; examples of a task are
read in a seeded random order, epoch after epoch. `MixturePlan` makes the draw a pure function of (seed, step): the
same micro-batches in the same order for any number of processes (rank r takes micro-batches r, r+W, ... of a step),
and resuming at step s replays the cheap index draws up to s, so "data position" is just the step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import torch

from .prompt_formats import TINY

IGNORE = -100  # label of positions without loss
AUDIO_PLACEHOLDER = 0  # id written at continuous-span positions (replaced by features in the model)

TASKS = ("asr", "tts", "text_lm", "speech_instruction", "text_instruction")

# The MoST paper's mixtures (its two training stages); configs may override.
STAGE_MIXTURES = {
    "stage1": {"asr": 0.4, "tts": 0.4, "text_lm": 0.2},
    "stage2": {"speech_instruction": 0.4, "text_instruction": 0.4, "asr": 0.1, "tts": 0.1},
}

# The tiny character tokenizer's templates (the bundled checkpoint's prompt format; all formats: prompt_formats.py).
TINY_PROMPTS = TINY.templates


# -----------------------------------------------------------------------------------------------------------------
# Tiny tokenizer (built offline, no download)

TINY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 '.,?!-:;\"()&%$/"
TINY_TAGS = ("<asr>", "<tts>", "<ask>", "<as_text>", "<as_speech>")


def build_char_tokenizer(config):
    """Character tokenizer for a tiny MoST config: lower-cased, accents stripped, one id per character.

    Ids: 0 <unk>, bos / eos from the config, 3 <pad>, 4.. task tags, 16.. characters; the audio ids of the config get
    names too (`<hu{k}>`, `<boa>`, `<eoa>`, `<audio_span>`, `</audio_span>`) so decoded sequences are readable.
    Like DeepSeek's tokenizer it puts bos first unless `add_special_tokens=False` (what the formatter passes).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    boa, eoa = audio_markers(config)
    vocab = {"<unk>": 0, "<s>": config.bos_token_id, "</s>": config.eos_token_id, "<pad>": 3}
    if len(set(vocab.values())) != 4:
        raise ValueError(f"the char tokenizer needs bos/eos ids other than 0 and 3, got {config.bos_token_id}/"
                         f"{config.eos_token_id}")
    for i, tag in enumerate(TINY_TAGS):
        vocab[tag] = 4 + i
    for i, char in enumerate(TINY_CHARS):
        vocab[char] = 16 + i
    first_audio = config.audio_token_range[0]
    if max(vocab.values()) >= first_audio:
        raise ValueError(f"text ids reach {max(vocab.values())}, the config's audio tokens start at {first_audio}")
    audio_names = {f"<hu{k}>": config.unit_token_offset + k for k in range(config.num_units)}
    audio_names.update({"<boa>": boa, "<eoa>": eoa, "<audio_span>": config.audio_span_begin_id,
                        "</audio_span>": config.audio_span_end_id})
    vocab.update(audio_names)
    if max(vocab.values()) >= config.vocab_size:
        raise ValueError(f"tokenizer ids reach {max(vocab.values())} >= vocab_size {config.vocab_size}")

    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # one piece per character
    tok.decoder = decoders.Fuse()  # characters joined without separators
    tok.post_processor = processors.TemplateProcessing(  # bos first by default, as DeepSeek's tokenizer does:
        single="<s> $A", special_tokens=[("<s>", config.bos_token_id)])  # lm-eval's text path conditions on it
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")
    fast.add_special_tokens({"additional_special_tokens": list(TINY_TAGS) + list(audio_names)})
    return fast


def audio_markers(config) -> tuple[int, int]:
    """Discrete begin / end-of-audio ids: the two ids after the last unit (100502 / 100503 in MoST)."""
    boa = config.unit_token_offset + config.num_units
    if boa + 1 > config.audio_token_range[1]:
        raise ValueError(f"no room for begin/end-of-audio markers after {config.num_units} units in "
                         f"audio_token_range {config.audio_token_range}")
    return boa, boa + 1


# -----------------------------------------------------------------------------------------------------------------
# Formatting


@dataclass
class Example:
    """One training example after loading: what the formatter needs (any field may be empty)."""

    task: str
    id: str
    text: str = ""  # transcript (asr / tts), document (text_lm), question text (text_instruction)
    answer: str = ""  # instruction answer text
    waveform: np.ndarray | None = None  # 16 kHz mono: asr input, spoken question
    units: np.ndarray | None = None  # HuBERT units: tts target, spoken answer, asr input given as units


@dataclass
class Sequence:
    """A formatted example: ids, labels, and the waveforms whose features fill its audio spans (in order)."""

    task: str
    id: str
    input_ids: list[int]
    labels: list[int]
    waveforms: list[np.ndarray] = field(default_factory=list)


class Formatter:
    """Turns `Example`s into `Sequence`s for one model config, tokenizer and prompt set.

    `frames(num_samples)` is the number of HuBERT frames of a waveform (one placeholder each); `max_len` truncates
    the target (never the prompt's audio span) so long documents fit.
    """

    def __init__(self, config, tokenizer, prompts: dict, frames, max_len: int = 4096, add_bos: bool = True):
        self.config = config
        self.add_bos = add_bos  # False: the prompt format writes its own start (the release's)
        self.tokenizer = tokenizer
        self.prompts = prompts
        self.frames = frames
        self.max_len = max_len
        self.boa, self.eoa = audio_markers(config)
        self.bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else config.bos_token_id
        self.eos = config.eos_token_id

    # ---- pieces ------------------------------------------------------------------------------------------------
    def render(self, template: str, text: str = "", waveform: np.ndarray | None = None,
               units: np.ndarray | None = None) -> tuple[list[int], list[np.ndarray]]:
        """Prompt ids for a template, as the adapter builds them (bos first unless ``add_bos`` is off), and the
        waveforms of its spans."""
        ids, waves = ([self.bos] if self.add_bos else []), []
        for part in re.split(r"(\{audio\}|\{units\})", template):
            if part == "{audio}" and waveform is None and units is not None:  # speech given as units (release ASR)
                ids += [self.boa] + self.unit_ids(units) + [self.eoa]
            elif part == "{audio}":
                n = self.frames(len(waveform))
                ids += [self.config.audio_span_begin_id] + [AUDIO_PLACEHOLDER] * n + [self.config.audio_span_end_id]
                waves.append(waveform)
            elif part == "{units}":
                if not ids or ids[-1] != self.boa:  # units always follow a begin-of-audio marker, as in speech targets
                    ids.append(self.boa)
                ids += self.unit_ids(units)
            elif part:
                ids += self.text_ids(part.replace("{text}", text))
        return ids, waves

    def text_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def unit_ids(self, units: np.ndarray) -> list[int]:
        return (np.asarray(units, dtype=np.int64) + self.config.unit_token_offset).tolist()

    def speech_target(self, units: np.ndarray) -> list[int]:
        return [self.boa] + self.unit_ids(units) + [self.eoa, self.eos]

    def _join(self, ex: Example, prompt: list[int], target: list[int], waves) -> Sequence:
        room = self.max_len - len(prompt)
        if room < 2:
            raise ValueError(f"prompt of {len(prompt)} tokens leaves no room under max_len {self.max_len}")
        target = target[:room]
        return Sequence(ex.task, ex.id, prompt + target, [IGNORE] * len(prompt) + target, waves)

    # ---- tasks -------------------------------------------------------------------------------------------------
    def __call__(self, ex: Example) -> Sequence:
        if ex.task == "asr":
            prompt, waves = self.render(self.prompts["asr"], waveform=ex.waveform, units=ex.units)
            return self._join(ex, prompt, self.text_ids(ex.text) + [self.eos], waves)
        if ex.task == "tts":
            prompt, waves = self.render(self.prompts["tts"], text=ex.text)
            return self._join(ex, prompt, self.speech_target(ex.units), waves)
        if ex.task == "text_lm":
            ids = [self.bos] + self.text_ids(ex.text) + [self.eos]
            ids = ids[: self.max_len]
            return Sequence(ex.task, ex.id, ids, [IGNORE] + ids[1:], [])
        if ex.task in ("speech_instruction", "text_instruction"):
            speech_answer = ex.units is not None and not ex.answer
            if ex.task == "speech_instruction":
                key = "respond_speech" if speech_answer else "respond_text"
                prompt, waves = self.render(self.prompts[key], waveform=ex.waveform)
            else:
                key = "text_instruction_speech" if speech_answer else "text_instruction_text"
                prompt, waves = self.render(self.prompts[key], text=ex.text)
            target = self.speech_target(ex.units) if speech_answer else self.text_ids(ex.answer) + [self.eos]
            return self._join(ex, prompt, target, waves)
        raise ValueError(f"unknown task {ex.task!r}")


def collate(sequences: list[Sequence], pad_id: int) -> dict:
    """Right-padded batch: input_ids / labels / attention_mask (B, T) and the waveforms in row-major span order."""
    width = max(len(s.input_ids) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    labels = torch.full((len(sequences), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    waves = []
    for row, seq in enumerate(sequences):
        n = len(seq.input_ids)
        ids[row, :n] = torch.tensor(seq.input_ids)
        labels[row, :n] = torch.tensor(seq.labels)
        mask[row, :n] = 1
        waves += [torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)) for w in seq.waveforms]
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "waveforms": waves}


# -----------------------------------------------------------------------------------------------------------------
# Mixture sampling


@dataclass(frozen=True)
class MicroBatchSpec:
    """Which examples form micro-batch `index` of optimizer step `step`."""

    step: int
    index: int  # 0 .. micro_batches_per_step - 1; rank r of W processes takes index % W == r
    task: str
    examples: tuple[int, ...]  # indices into the task's example list


class MixturePlan:
    """Deterministic per-micro-batch task draws and per-task example order for one training stage.

    At step s, micro-batch j's task is drawn from `weights` with numpy's Generator seeded by (seed, s); each task then
    takes its next `batch_size` examples from a stream that walks a fresh seeded permutation of its examples every
    epoch. State = (step, examples drawn per task); `advance_to(s)` replays the draws (no data is read).
    Tasks with weight 0 or without examples are dropped, and the weights renormalised.
    """

    def __init__(self, sizes: dict[str, int], weights: dict[str, float], batch_size: int,
                 micro_batches_per_step: int, seed: int):
        unknown = set(weights) - set(TASKS)
        if unknown:
            raise ValueError(f"unknown task(s) in mixture: {sorted(unknown)} (tasks: {', '.join(TASKS)})")
        self.tasks = [t for t in TASKS if weights.get(t, 0) > 0 and sizes.get(t, 0) > 0]
        missing = [t for t in TASKS if weights.get(t, 0) > 0 and sizes.get(t, 0) == 0]
        if not self.tasks:
            raise ValueError(f"no task of the mixture {weights} has examples (sizes {sizes})")
        p = np.array([weights[t] for t in self.tasks], dtype=np.float64)
        self.p = p / p.sum()
        self.missing = missing  # mixture tasks without data (the recipe logs them)
        self.sizes = {t: int(sizes[t]) for t in self.tasks}
        self.batch_size = batch_size
        self.m = micro_batches_per_step
        self.seed = seed
        self.step = 0
        self.drawn = {t: 0 for t in self.tasks}
        self._perm_cache: dict[tuple[str, int], np.ndarray] = {}

    def _perm(self, task: str, epoch: int) -> np.ndarray:
        key = (task, epoch)
        if key not in self._perm_cache:
            if len(self._perm_cache) > 4 * len(self.tasks):
                self._perm_cache.clear()
            rng = np.random.default_rng([self.seed, TASKS.index(task), epoch])
            self._perm_cache[key] = rng.permutation(self.sizes[task])
        return self._perm_cache[key]

    def _take(self, task: str, n: int) -> tuple[int, ...]:
        out = []
        size = self.sizes[task]
        for k in range(self.drawn[task], self.drawn[task] + n):
            out.append(int(self._perm(task, k // size)[k % size]))
        self.drawn[task] += n
        return tuple(out)

    def next_step(self) -> list[MicroBatchSpec]:
        """The micro-batches of the current step (all ranks'), then moves to the next step."""
        rng = np.random.default_rng([self.seed, 1_000_003, self.step])
        choice = rng.choice(len(self.tasks), size=self.m, p=self.p)
        specs = [MicroBatchSpec(self.step, j, self.tasks[c], self._take(self.tasks[c], self.batch_size))
                 for j, c in enumerate(choice)]
        self.step += 1
        return specs

    def advance_to(self, step: int) -> None:
        """Replays draws up to (not including) `step`; only forward."""
        if step < self.step:
            raise ValueError(f"plan is at step {self.step}, cannot go back to {step}")
        while self.step < step:
            self.next_step()

    def state_dict(self) -> dict:
        return {"step": self.step, "drawn": dict(self.drawn), "sizes": dict(self.sizes), "seed": self.seed}

    def check_state(self, state: dict) -> None:
        """After `advance_to(state['step'])`: the replay must land where the saved run was (same data, same seed)."""
        if state.get("sizes") != self.sizes or state.get("drawn") != self.drawn:
            raise ValueError(f"data position mismatch on resume: saved {state}, replayed {self.state_dict()} "
                             "(did the manifests, mixture or seed change?)")
