"""Shared fixtures: real speech synthesised with espeak-ng into official dataset layouts, and CLI helpers."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

REPO = Path(__file__).resolve().parents[1]
# weight digests remembered across runs go to a folder of this test session, not the user's ~/.cache
os.environ["MOST_EVAL_CACHE"] = tempfile.mkdtemp(prefix="most-eval-cache-")
MINI_SUITE = REPO / "most_eval" / "mini_suite"
TEXT_TASKS = Path(__file__).parent / "data" / "text_tasks"  # local lm-eval task YAMLs (tiny_mc, tiny_ppl)

SENTENCES = [
    "HE HOPED THERE WOULD BE STEW FOR DINNER",
    "THE CAT SAT ON THE MAT",
    "IT WAS A BRIGHT COLD DAY IN APRIL",
    "SHE OPENED THE DOOR AND WALKED IN",
    "WE SHOULD GO HOME BEFORE IT RAINS",
    "THE CHILDREN PLAYED IN THE GARDEN",
    "HE READ THE LETTER TWICE",
    "THE TRAIN LEFT THE STATION AT NOON",
    "I CAN SEE THE MOUNTAINS FROM HERE",
    "THE OLD MAN SAT BY THE FIRE",
    "MY BROTHER LIKES GREEN APPLES",
    "THEY WORKED LATE INTO THE NIGHT",
]
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-scotland"]


def espeak(text: str, voice: str = "en-us", rate: int = 16000) -> np.ndarray:
    """Real synthetic speech: espeak-ng output resampled to ``rate`` as float32 mono."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required for the tests (apt-get install espeak-ng); install.sh installs it")
    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True).stdout
    data, sr = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(data, sr, rate).astype(np.float32)


def make_librispeech(root: Path, split: str = "test-clean", sentences=SENTENCES, speakers=(1089, 121)) -> list[str]:
    """Write a LibriSpeech split (FLAC + trans.txt) under ``root/LibriSpeech``; returns the utterance ids."""
    ids = []
    per = -(-len(sentences) // len(speakers))
    for s_idx, spk in enumerate(speakers):
        chap = 100 + s_idx
        folder = root / "LibriSpeech" / split / str(spk) / str(chap)
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for u, text in enumerate(sentences[s_idx * per:(s_idx + 1) * per]):
            uid = f"{spk}-{chap}-{u:04d}"
            sf.write(folder / f"{uid}.flac", espeak(text, VOICES[s_idx % len(VOICES)]), 16000)
            lines.append(f"{uid} {text}")
            ids.append(uid)
        (folder / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")
    return ids


@pytest.fixture(scope="session")
def libri_root(tmp_path_factory) -> Path:
    """A data root holding a 12-utterance LibriSpeech test-clean synthesised with espeak-ng."""
    root = tmp_path_factory.mktemp("libri")
    make_librispeech(root)
    return root


def run_cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m most_eval ARGS`` as a user would; returns the completed process (text output)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "most_eval", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSONL file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
