"""HuBERT units for MoST's training data: the waveforms, the k-means quantizer, and the resumable unit files.

Units are the TTS targets and the spoken answers. `fit_kmeans` fits centroids on HuBERT features of the unit layer
(or pass a ready quantizer: SpiritLM's linear quantizer or k-means centroids, see import_weights.import_quantizer),
and `extract_units` writes one JSONL line per utterance (`{"id", "units": "3 17 5 ..."}`, runs of equal units
collapsed as the release's SpiritLM `encode_string` does, unless the model config says `deduplicate_units: false`),
appending and flushing as it goes: a restarted extraction skips the ids already in the file (a torn last line is cut
off first). `load_waveform` reads a file or a segment of it at the encoder's 16 kHz; `hubert_frames_fn` says how many
HuBERT frames a waveform gives, without a model.
"""

from __future__ import annotations

import glob
import json
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import torch

from most_eval.core.audio import AudioError, load_audio

from .manifests import Instruction, Utterance, warn_only
from .speech_encoder import KMeansQuantizer, SAMPLE_RATE

logger = logging.getLogger(__name__)


# -----------------------------------------------------------------------------------------------------------------
# Audio at the encoder's rate


def load_waveform(audio: str, start: float = 0.0, duration: float | None = None) -> np.ndarray:
    """16 kHz mono float32 of a file or a segment of it (LibriHeavy cuts read only their frames).

    Raises AudioError (missing, undecodable, empty, non-finite).
    """
    if not start and duration is None:
        return load_audio(audio, SAMPLE_RATE).samples
    try:
        info = sf.info(audio)
        first = int(round(start * info.samplerate))
        last = first + int(round(duration * info.samplerate)) if duration is not None else -1
        data, rate = sf.read(audio, start=first, stop=None if last < 0 else last, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(audio, f"cannot decode audio segment ({str(exc).splitlines()[0][:120]})") from None
    if data.shape[0] == 0:
        raise AudioError(audio, f"segment {start}+{duration}s is empty")
    if not np.isfinite(data).all():
        raise AudioError(audio, "audio contains NaN or infinite samples")
    samples = data.mean(axis=1).astype(np.float32)
    if rate != SAMPLE_RATE:
        import soxr

        samples = soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32)
    return samples


def hubert_frames_fn(hubert_config) -> Callable[[int], int]:
    """num_samples -> HuBERT frames, from the conv stack (kernel, stride) of a HubertConfig; no model needed."""
    layers = list(zip(hubert_config.conv_kernel, hubert_config.conv_stride))

    def frames(num_samples: int) -> int:
        n = int(num_samples)
        for kernel, stride in layers:
            n = (n - kernel) // stride + 1
        return max(n, 0)

    return frames


# -----------------------------------------------------------------------------------------------------------------
# Units


@torch.no_grad()
def fit_kmeans(features: torch.Tensor, k: int, iterations: int = 30, seed: int = 0) -> KMeansQuantizer:
    """k-means (k-means++ init, Lloyd iterations) on (N, D) features; deterministic for a seed."""
    x = features.float()
    if x.shape[0] < k:
        raise ValueError(f"{x.shape[0]} feature frames cannot seed {k} clusters")
    g = torch.Generator().manual_seed(seed)
    centroids = x[torch.randint(x.shape[0], (1,), generator=g)]
    for _ in range(1, k):  # k-means++: next centroid with probability ~ squared distance
        d2 = torch.cdist(x, centroids).pow(2).min(dim=1).values
        centroids = torch.cat([centroids, x[torch.multinomial(d2 + 1e-12, 1, generator=g)]])
    for _ in range(iterations):
        assign = torch.cdist(x, centroids).argmin(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).float()[:, None]
        empty = counts[:, 0] == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp(min=1))
    return KMeansQuantizer(centroids)


@torch.no_grad()
def collect_features(utterances: list[Utterance], encoder, layer: int, max_frames: int = 200_000,
                     bad=warn_only) -> torch.Tensor:
    """HuBERT features of `layer` (fairseq, 1-based) from the utterances in order, up to `max_frames` frames."""
    chunks, total = [], 0
    for utt in utterances:
        try:
            wav = load_waveform(utt.audio, utt.start, utt.duration)
        except AudioError as exc:
            bad("units", utt.id, str(exc))
            continue
        feats = encoder.hubert_features(torch.from_numpy(wav)[None], layer=layer)[0].float().cpu()
        chunks.append(feats)
        total += feats.shape[0]
        if total >= max_frames:
            break
    if not chunks:
        raise ValueError("no readable audio to fit k-means on")
    return torch.cat(chunks)[:max_frames]


class UnitStore:
    """Units per utterance id in JSONL files (`{"id", "units": "3 3 17"}`); appended, flushed, resumable.

    `path` is the file written; `read_paths` (a glob) may add shards written elsewhere.
    """

    def __init__(self, path: str | Path, read_glob: str | None = None):
        self.path = Path(path)
        self.units: dict[str, np.ndarray] = {}
        files = sorted(set(glob.glob(read_glob)) | {str(self.path)}) if read_glob else [str(self.path)]
        for file in files:
            if Path(file).is_file():
                self._read(Path(file))

    def _read(self, path: Path) -> None:
        data = path.read_bytes()
        if data and not data.endswith(b"\n") and path == self.path:  # torn last line of an interrupted run
            cut = data.rfind(b"\n") + 1
            with open(path, "r+b") as f:
                f.truncate(cut)
            data = data[:cut]
        for line in data.decode("utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                self.units[rec["id"]] = np.array([int(u) for u in rec["units"].split()], dtype=np.int16)

    def __contains__(self, uid: str) -> bool:
        return uid in self.units

    def __getitem__(self, uid: str) -> np.ndarray:
        return self.units[uid]

    def __len__(self) -> int:
        return len(self.units)

    def add(self, uid: str, units: np.ndarray, f) -> None:
        f.write(json.dumps({"id": uid, "units": " ".join(map(str, np.asarray(units).tolist()))}) + "\n")
        f.flush()
        self.units[uid] = np.asarray(units, dtype=np.int16)


@torch.no_grad()
def extract_units(items: list[tuple[str, str, float, float | None]], extractor, store: UnitStore, bad=warn_only,
                  log_every: int = 500) -> int:
    """Units of `(id, audio, start, duration)` items missing from `store`, appended to its file. Returns how many
    were added. Unreadable audio is reported to `bad` and skipped (tried again by the next run)."""
    todo = [it for it in items if it[0] not in store]
    store.path.parent.mkdir(parents=True, exist_ok=True)
    added, t0 = 0, time.time()
    with open(store.path, "a") as f:
        for i, (uid, audio, start, duration) in enumerate(todo):
            try:
                wav = load_waveform(audio, start, duration)
            except AudioError as exc:
                bad("units", uid, str(exc))
                continue
            units = extractor(torch.from_numpy(wav)).cpu().numpy()
            if units.size == 0:
                bad("units", uid, "audio shorter than one HuBERT frame")
                continue
            store.add(uid, units, f)
            added += 1
            if log_every and (i + 1) % log_every == 0:
                logger.info("units: %d/%d utterances (%.1f/s)", i + 1, len(todo), (i + 1) / (time.time() - t0))
    return added


def unit_items(speech: list[Utterance], instr: list[Instruction]) -> list[tuple[str, str, float, float | None]]:
    """What needs units: every utterance (TTS target) and every spoken answer (`<id>#answer`)."""
    items = [(u.id, u.audio, u.start, u.duration) for u in speech]
    items += [(f"{i.id}#answer", i.answer_audio, 0.0, None) for i in instr if i.answer_audio]
    return items
