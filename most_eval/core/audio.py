"""Audio: the one small type every adapter sees, and the one place audio is read, down-mixed and resampled.

Adapters never open files. The runner calls :func:`load_audio` with the sample rate the model asks for, so a
model always receives float32 mono samples at its own rate, whatever the dataset stores (FLAC, Ogg, MP3, WAV;
8 kHz stereo is converted, not rejected). Anything that cannot become usable audio raises :class:`AudioError`
with the file and the reason, which the runner turns into a per-sample error record.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from most_eval.core.errors import MostEvalError

# Most speech models in this field consume 16 kHz mono; it is the default target rate.
DEFAULT_SAMPLE_RATE = 16_000
#: the longest audio file read by default (seconds): a few kilobytes of compressed audio can claim hours of samples,
#: which would fill the memory once decoded and resampled; ``--max-audio-seconds`` raises it
DEFAULT_MAX_SECONDS = 600.0


class AudioError(MostEvalError):
    """A file that cannot be used as audio; ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] (not enforced) and their sample rate in Hz."""

    samples: np.ndarray  # (n_samples,) float32
    sample_rate: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate

    def resampled(self, sample_rate: int) -> "Audio":
        """This audio at another rate (soxr, high quality); returns self when the rate already matches."""
        if sample_rate == self.sample_rate:
            return self
        samples = soxr.resample(self.samples, self.sample_rate, sample_rate).astype(np.float32, copy=False)
        return Audio(samples, sample_rate)


def to_mono_float32(data: np.ndarray) -> np.ndarray:
    """Average channels of a (frames, channels) array to (frames,) float32."""
    if data.ndim == 2:
        data = data.mean(axis=1)
    return np.ascontiguousarray(data, dtype=np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int | None = DEFAULT_SAMPLE_RATE,
               max_seconds: float = DEFAULT_MAX_SECONDS) -> Audio:
    """Read an audio file as mono float32, resampled to ``sample_rate`` (None keeps the file's rate).

    Raises AudioError for a missing, non-regular (directory, FIFO, device), unreadable, empty or non-finite file, and
    for one longer than ``max_seconds`` (checked from the header, before anything is decoded); a FIFO is never
    opened, so it cannot block the run.
    """
    path = Path(path)
    try:  # opened without blocking and checked to be a regular file: a FIFO named like audio cannot hang the run
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise AudioError(path, "file not found" if isinstance(exc, FileNotFoundError)
                         else f"cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise AudioError(path, "not a regular file (directory, FIFO or device)")
    with os.fdopen(fd, "rb") as fh:
        try:
            with sf.SoundFile(fh) as sound:
                seconds = sound.frames / sound.samplerate if sound.samplerate > 0 else float("inf")
                if seconds > max_seconds:
                    raise AudioError(path, f"audio is {seconds:,.0f} s long ({sound.frames:,} frames at "
                                           f"{sound.samplerate} Hz), over the {max_seconds:g} s limit "
                                           f"(--max-audio-seconds raises it)")
                data, rate = sound.read(dtype="float32", always_2d=True), sound.samplerate
        except AudioError:
            raise
        except OSError as exc:  # permission denied, I/O error
            raise AudioError(path, f"cannot read ({exc.strerror or exc})") from None
        except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError for bad files
            raise AudioError(path, f"cannot decode audio ({str(exc).splitlines()[0][:120]})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "audio is empty (0 samples)")
    if not np.isfinite(data).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    audio = Audio(to_mono_float32(data), int(rate))
    return audio.resampled(sample_rate) if sample_rate else audio


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds from the file header (cheap; 0.0 when the header is unreadable)."""
    try:
        info = sf.info(str(path))
        return info.frames / info.samplerate if info.samplerate else 0.0
    except Exception:
        return 0.0


def save_audio(path: str | os.PathLike, audio: Audio) -> Path:
    """Write audio as 16-bit PCM WAV (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio.samples, -1.0, 1.0), audio.sample_rate, subtype="PCM_16")
    return path
