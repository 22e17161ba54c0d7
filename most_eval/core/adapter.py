"""The model adapter contract — read this file first.

A model is a class with a few *batched* capability methods: a list in, a list out, same length, same order.
It declares nothing else: its capabilities are the methods it overrides. Tasks never call models directly;
a task describes each sample as a :class:`Request` whose ``kind`` names the method that serves it, and the
runner loads the audio (once, at ``model.sample_rate``, mono float32) and calls the method on a batch.

==============  ==========================================================  ==============================
capability      method                                                      used by
==============  ==========================================================  ==============================
transcribe      ``transcribe(audios) -> list[str]``                         ASR; judge of TTS and S->S QA
synthesize      ``synthesize(texts, prompts=None) -> list[Audio]``          TTS (prompt: speaker reference)
score_audio     ``score_audio(audios) -> list[float]``                      spoken LM (natural-log score)
respond         ``respond(audios, modality) -> list[str] | list[Audio]``    spoken QA (S->T, S->S)
score_text      ``score_text(contexts, continuations) -> [(logp, greedy)]``  text benchmarks through lm-eval
generate_text   ``generate_text(prompts, until, max_tokens) -> list[str]``  text benchmarks through lm-eval
==============  ==========================================================  ==============================

A task that needs a capability the model lacks is reported as "not supported" — never a crash.
Models are registered by name through the ``most_eval.models`` entry-point group (or :func:`register_model`
in-process) and receive their ``--model-args`` as a typed dataclass (``Args``), see :mod:`most_eval.core.options`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

from most_eval.core.audio import DEFAULT_SAMPLE_RATE, Audio
from most_eval.core.fingerprints import code_version, path_stamp

TRANSCRIBE = "transcribe"
SYNTHESIZE = "synthesize"
SCORE_AUDIO = "score_audio"
RESPOND = "respond"
SCORE_TEXT = "score_text"
GENERATE_TEXT = "generate_text"
CAPABILITIES = (TRANSCRIBE, SYNTHESIZE, SCORE_AUDIO, RESPOND, SCORE_TEXT, GENERATE_TEXT)


@dataclass(frozen=True)
class Request:
    """What a task asks of the model for one sample; ``kind`` is the capability (method name) that serves it."""

    kind: str  # one of CAPABILITIES
    audio: Path | None = None  # input speech (transcribe, score_audio, respond); loaded by the runner
    text: str | None = None  # input text (synthesize)
    prompt: Path | None = None  # speaker-prompt audio (synthesize, optional); loaded by the runner
    modality: str = "text"  # respond: "text" or "speech" answers


@dataclass(frozen=True)
class Prepared:
    """A request with its audio loaded, as handed to :meth:`Model.run_batch`."""

    task: str  # task name, e.g. "asr:librispeech-test-clean"
    id: str  # the task's sample id
    request: Request
    audio: Audio | None = None
    prompt: Audio | None = None


@dataclass(frozen=True)
class SampleFailure:
    """An output slot meaning "no output for this sample": the runner records ``reason`` as its error."""

    reason: str


@dataclass(frozen=True)
class AudioScore:
    """A ``score_audio`` output that keeps both reductions available: summed log-likelihood and its token count.

    ``score_audio`` may return plain floats (reduced as the class's ``score_reduction`` says) or these; tasks with a
    sum-or-mean option (StoryCloze) need them to compare in the units the user asked for.
    """

    total: float  # summed natural-log probability of the utterance's tokens
    n_tokens: int  # tokens predicted


@dataclass(frozen=True)
class NoArgs:
    """Models without ``--model-args`` use this."""


class Model:
    """Base class of every model adapter. Override the capability methods the model has; nothing else is required.

    Class attributes:
      name:          registry name (``--model NAME``).
      description:   one line for ``most-eval list models``; say what the model really is (e.g. a cascade).
      Args:          dataclass of typed ``--model-args``; unknown keys are rejected before the model is built.
      score_reduction: how ``score_audio`` reduces per-token log-probabilities: "sum" or "mean".
    Instance attribute ``sample_rate``: the rate (Hz) at which the runner hands over audio.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Args: ClassVar[type] = NoArgs
    score_reduction: ClassVar[str] = "sum"
    #: False for models that never look at input audio (precomputed outputs): the runner then skips loading it.
    needs_audio: ClassVar[bool] = True
    #: modules besides the class's own that shape its outputs (a model file): their source is in the code version
    code_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, args: Any = None, *, device: str = "cpu", seed: int = 0):
        self.args = args if args is not None else self.Args()
        self.device = device
        self.seed = seed
        self.sample_rate = DEFAULT_SAMPLE_RATE

    # ---- capabilities: override the ones the model has -------------------------------------------------
    def transcribe(self, audios: Sequence[Audio]) -> list[str]:
        """Speech -> text, one transcript per input audio."""
        raise NotImplementedError

    def synthesize(self, texts: Sequence[str], prompts: Sequence[Audio | None] | None = None) -> list[Audio]:
        """Text -> speech. ``prompts[i]``, when given, is a reference utterance whose voice to imitate."""
        raise NotImplementedError

    def score_audio(self, audios: Sequence[Audio]) -> list[float] | list[AudioScore]:
        """Spoken-LM score of each utterance: natural-log likelihood, reduced as ``score_reduction`` says
        (or :class:`AudioScore` with the sum and the token count)."""
        raise NotImplementedError

    def respond(self, audios: Sequence[Audio], modality: str = "text") -> list[str] | list[Audio]:
        """Spoken question -> answer, as text (``modality="text"``) or as speech (``"speech"``)."""
        raise NotImplementedError

    def score_text(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[tuple[float, bool]]:
        """Text LM: natural-log probability of each continuation given its context (summed over the
        continuation's tokens), and whether greedy decoding would produce exactly that continuation."""
        raise NotImplementedError

    def generate_text(self, prompts: Sequence[str], until: Sequence[Sequence[str]], max_tokens: int) -> list[str]:
        """Text LM: greedy continuation of each prompt, cut at the first of its stop strings."""
        raise NotImplementedError

    # ---- machinery ---------------------------------------------------------------------------------------
    def transcribe_timed(self, audios: Sequence[Audio]) -> tuple[list[str], list[float]]:
        """:meth:`transcribe`, with each transcript's share of the call's time (by duration): what a task that uses
        this model as its judge reports as the judge's real-time factor."""
        started = time.perf_counter()
        texts = self.transcribe(audios)
        spent = time.perf_counter() - started
        total = sum(a.duration for a in audios) or 1.0
        return texts, [spent * a.duration / total for a in audios]

    @classmethod
    def capabilities(cls) -> frozenset[str]:
        """The capability methods this class overrides."""
        return frozenset(c for c in CAPABILITIES if getattr(cls, c) is not getattr(Model, c))

    def supports(self, task: str, capability: str) -> bool:
        """Whether this model instance can serve ``capability`` for ``task`` (precomputed models check their files)."""
        return capability in self.capabilities()

    def run_batch(self, batch: Sequence[Prepared]) -> list:
        """Serve a batch of requests of one kind (and one modality); the runner's only entry point."""
        kind = batch[0].request.kind
        if kind == TRANSCRIBE:
            return self.transcribe([p.audio for p in batch])
        if kind == SYNTHESIZE:
            prompts = [p.prompt for p in batch]
            return self.synthesize([p.request.text for p in batch], prompts if any(prompts) else None)
        if kind == SCORE_AUDIO:
            return self.score_audio([p.audio for p in batch])
        if kind == RESPOND:
            return self.respond([p.audio for p in batch], batch[0].request.modality)
        raise ValueError(f"unknown request kind {kind!r}")

    def uses_speaker_prompt(self) -> bool:
        """Whether :meth:`synthesize` conditions its speech on the ``prompts`` it is given (False: it speaks in its
        own voice, and TTS SIM says how close that voice happens to be)."""
        return False

    def output_warnings(self, task: str, sample_ids: set[str]) -> list[str]:
        """Problems with this model's outputs for ``task`` that belong to no single sample (e.g. precomputed
        entries for ids the task does not list); reported in results.json and on the terminal."""
        return []

    def deterministic(self, capability: str) -> bool:
        """Whether this model's outputs for ``capability`` do not depend on the seed (greedy decoding, fixed
        outputs). ``--seeds`` then runs a task once and says that every seed gives the same outputs; False (the
        default, and right for any model that samples) runs it once per seed."""
        return False

    def facts(self) -> dict:
        """What the model reports of itself that does not key the cache (a server's version and model listing);
        recorded in results.json as ``model.facts`` when not empty."""
        return {}

    def identity(self) -> dict:
        """What determines this model's outputs; hashed into the fingerprint that keys the sample cache.

        Override to add weight digests or versions; the default is the name and the typed args.
        """
        args = asdict(self.args) if is_dataclass(self.args) else dict(self.args or {})
        return {"name": self.name, "args": args}

    def file_stamps(self) -> dict:
        """Weights stamps of every ``--model-args`` value that names an existing file or folder (names, sizes,
        modification times, content digests of small files): overwritten weights never reuse cached outputs."""
        args = asdict(self.args) if is_dataclass(self.args) else dict(self.args or {})
        stamps = {}
        for key, value in sorted(args.items()):
            if isinstance(value, (str, Path)) and str(value):
                stamp = path_stamp(value)
                if stamp is not None:
                    stamps[key] = stamp
        return stamps

    def fingerprint(self) -> str:
        """Short stable hash of :meth:`identity`, the adapter's code version and :meth:`file_stamps`."""
        if getattr(self, "_fingerprint", None) is None:
            whole = {"identity": self.identity(), "code": code_version(type(self), self.code_modules),
                     "files": self.file_stamps()}
            self._fingerprint = hashlib.sha256(json.dumps(whole, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return self._fingerprint
