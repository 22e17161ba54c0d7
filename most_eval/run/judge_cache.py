"""The judge's transcripts of generated speech, cached as what they are: outputs of the judge model.

Scoring runs on every run (most_eval.run.runner), so a resumed TTS or speech-to-speech run would otherwise transcribe
every generated utterance again. :class:`CachedJudge` stands in for the judge while a task scores: a transcript is
kept under the judge's own fingerprint, keyed by a digest of the audio handed to it, in
``OUTPUT/cache/judge/<judge fingerprint>/rank<r>.jsonl`` (the same append-only files as the sample cache). Everything
else (name, args, identity, fingerprint, sample rate) is the judge's own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from most_eval.core.adapter import Model
from most_eval.core.audio import Audio
from most_eval.run.cache import STAMP, CacheStats, SampleCache, choose_records, read_records

TASK = "transcribe"


def audio_digest(audio: Audio) -> str:
    """A digest of the samples and rate a judge is handed."""
    digest = hashlib.sha256(str(int(audio.sample_rate)).encode())
    digest.update(np.ascontiguousarray(audio.samples, dtype=np.float32).tobytes())
    return digest.hexdigest()[:32]


def _problem(record: dict) -> str | None:
    if type(record.get("text")) is not str:
        return "'text' must be a text"
    seconds = record.get("seconds")
    if type(seconds) not in (int, float) or not seconds >= 0:
        return "'seconds' must be a number >= 0"
    return None


class CachedJudge:
    """A judge ASR whose transcripts are read from, and added to, its cache folder."""

    def __init__(self, judge: Model, output_dir: Path, rank: int = 0):
        self.judge = judge
        folder = Path(output_dir) / "cache" / "judge" / judge.fingerprint()
        self.cache = SampleCache(folder / f"rank{rank}.jsonl", model=judge.fingerprint(), task=TASK)
        self.stats = CacheStats()
        records = [r for path in sorted(folder.glob("rank*.jsonl"))
                   for r in read_records(path, self.cache.model, TASK, self.stats)[0]]
        inputs = {r["id"]: r["id"] for r in records}  # the id is the input digest
        self.known = choose_records(records, inputs, _problem, self.stats)
        self.reused = 0

    def __getattr__(self, name):
        return getattr(self.judge, name)

    def transcribe(self, audios: Sequence[Audio]) -> list[str]:
        """The judge's transcripts, from the cache where it has them."""
        return self.transcribe_timed(audios)[0]

    def transcribe_timed(self, audios: Sequence[Audio]) -> tuple[list[str], list[float]]:
        """Transcripts and each one's share of the judge's compute time (as measured when it was transcribed)."""
        keys = [audio_digest(a) for a in audios]
        todo = list(dict.fromkeys(k for k in keys if k not in self.known))  # each new audio transcribed once
        self.reused += sum(1 for k in keys if k in self.known)
        if todo:
            first = {k: keys.index(k) for k in todo}
            texts, seconds = self.judge.transcribe_timed([audios[first[k]] for k in todo])
            fresh = []
            for key, text, spent in zip(todo, texts, seconds):
                record = {"id": key, "text": str(text), "seconds": round(float(spent), 6)}
                fresh.append({**record, STAMP: self.cache.stamp(key)})
                self.known[key] = record
            self.cache.append(fresh)
        return [self.known[k]["text"] for k in keys], [float(self.known[k]["seconds"]) for k in keys]

    def close(self) -> None:
        """Flush and close the cache file."""
        self.cache.close()
