"""The bundled mini suite (most_eval/mini_suite/) follows the official dataset layouts and regenerates exactly.

The tree is produced by scripts/make_mini_suite.py.  These tests check the committed copy against the official
on-disk layouts (files present, headers, sample rates, formats that decode, transcript <-> audio in both
directions, complete gold pairs, total size) and, when espeak-ng is available, that the script reproduces the
committed MANIFEST.sha256 byte for byte.

Encoder determinism: FLAC, WAV and MP3 (LAME via libsndfile) output is bit-identical run to run.  Ogg Vorbis is
too, because libsndfile's random Ogg serial number is overwritten by the script (see fix_ogg_serial); so no file
type is excluded from the byte comparison.  Byte equality is only expected with the espeak-ng / libsndfile /
soxr versions recorded in the committed README; with other versions the test still compares the file list and
every text file, and skips the audio-byte comparison with a message saying why.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "most_eval" / "mini_suite"
SCRIPT = REPO / "scripts" / "make_mini_suite.py"
LIMIT = 4 * 1024 * 1024
TEXT_SUFFIXES = {".txt", ".tsv", ".csv", ".lst", ".jsonl"}  # audio-independent files (not SPEAKERS/CHAPTERS.TXT)


def _info(path: Path) -> sf._SoundFileInfo:
    return sf.info(str(path))


def _assert_audio(path: Path, rate: int, fmt: str, subtype: str) -> None:
    assert path.is_file(), f"missing {path.relative_to(SUITE)}"
    info = _info(path)
    assert (info.samplerate, info.channels, info.format, info.subtype) == (rate, 1, fmt, subtype), (path, info)
    data, sr = sf.read(str(path), dtype="float32")
    assert sr == rate and data.ndim == 1 and len(data) > 0.2 * rate, path
    assert np.abs(data).max() > 0.1, f"{path} is (nearly) silent"


def _read_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    text = path.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    header = rows[0]
    body = [dict(zip(header, r, strict=True)) for r in rows[1:]]
    return header, body


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _manifest(root: Path) -> dict[str, str]:
    out = {}
    for line in (root / "MANIFEST.sha256").read_text().splitlines():
        digest, rel = line.split("  ", 1)
        out[rel] = digest
    return out


def _load_script():
    spec = importlib.util.spec_from_file_location("make_mini_suite", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------------------------------------------
# Whole tree
# ----------------------------------------------------------------------------------------------------------------
def test_manifest_covers_tree_exactly():
    manifest = _manifest(SUITE)
    files = {p.relative_to(SUITE).as_posix() for p in SUITE.rglob("*") if p.is_file()} - {"MANIFEST.sha256"}
    assert set(manifest) == files
    assert list(manifest) == sorted(manifest), "MANIFEST.sha256 must be sorted by path"
    for rel, digest in manifest.items():
        assert hashlib.sha256((SUITE / rel).read_bytes()).hexdigest() == digest, rel


def test_total_size_at_most_4_mib():
    files = [p for p in SUITE.rglob("*") if p.is_file()]
    dirs = [p for p in SUITE.rglob("*") if p.is_dir()]
    apparent = sum(p.stat().st_size for p in files)
    assert apparent <= LIMIT, apparent
    # what `du` reports on a file system with 4 KiB blocks
    blocks = sum(-(-p.stat().st_size // 4096) * 4096 for p in files) + 4096 * (len(dirs) + 1)
    assert blocks <= LIMIT, blocks


def test_top_level_folders_and_readme():
    expected = {"LibriSpeech", "voxpopuli", "cv-corpus-15.0-2023-09-08", "seedtts_testset", "sLM21-dataset",
                "spoken-storycloze", "llama-questions", "webquestions", "triviaqa"}
    present = {p.name for p in SUITE.iterdir() if p.is_dir()}
    assert present == expected
    readme = (SUITE / "README.md").read_text()
    assert "python scripts/make_mini_suite.py" in readme
    for name in expected:
        assert f"`{name}/" in readme, name
    assert re.search(r"^Generated with: espeak-ng \S+, libsndfile \S+, soxr \S+$", readme, re.M)


# ----------------------------------------------------------------------------------------------------------------
# ASR sets
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("subset,n_spk,n_chap,n_utt", [("test-clean", 3, 2, 2), ("test-other", 2, 1, 3)])
def test_librispeech(subset, n_spk, n_chap, n_utt):
    base = SUITE / "LibriSpeech" / subset
    speakers = sorted(p for p in base.iterdir() if p.is_dir())
    assert len(speakers) == n_spk and all(p.name.isdigit() for p in speakers)
    for spk in speakers:
        chapters = sorted(p for p in spk.iterdir() if p.is_dir())
        assert len(chapters) == n_chap and all(p.name.isdigit() for p in chapters)
        for chap in chapters:
            prefix = f"{spk.name}-{chap.name}"
            assert {p.name for p in chap.iterdir()} == (
                {f"{prefix}.trans.txt"} | {f"{prefix}-{k:04d}.flac" for k in range(n_utt)})
            lines = (chap / f"{prefix}.trans.txt").read_text().splitlines()
            ids = []
            for line in lines:
                utt, text = line.split(" ", 1)
                assert re.fullmatch(rf"{prefix}-\d{{4}}", utt)
                assert re.fullmatch(r"[A-Z']+( [A-Z']+)*", text), text
                assert 4 <= len(text.split()) <= 10
                ids.append(utt)
            assert {f"{u}.flac" for u in ids} == {p.name for p in chap.glob("*.flac")}
            for utt in ids:
                _assert_audio(chap / f"{utt}.flac", 16000, "FLAC", "PCM_16")
    speakers_txt = (SUITE / "LibriSpeech" / "SPEAKERS.TXT").read_text().splitlines()
    assert ";ID  |SEX| SUBSET           |MINUTES| NAME" in speakers_txt
    rows = [[c.strip() for c in ln.split("|")] for ln in speakers_txt if ln and not ln.startswith(";")]
    assert {r[0] for r in rows if r[2] == subset} == {p.name for p in speakers}
    assert all(r[1] in {"M", "F"} for r in rows)
    chapters_txt = (SUITE / "LibriSpeech" / "CHAPTERS.TXT").read_text().splitlines()
    assert any(ln.startswith(";ID    |READER|MINUTES| SUBSET") for ln in chapters_txt)
    rows = [[c.strip() for c in ln.split("|")] for ln in chapters_txt if ln and not ln.startswith(";")]
    assert {(r[1], r[0]) for r in rows if r[3] == subset} == {
        (s.name, c.name) for s in speakers for c in s.iterdir() if c.is_dir()}


def test_voxpopuli():
    base = SUITE / "voxpopuli" / "transcribed_data" / "en"
    header, rows = _read_tsv(base / "asr_test.tsv")
    assert header == ["id", "raw_text", "normalized_text", "speaker_id", "split", "gender",
                      "is_gold_transcript", "accent"]
    assert len(rows) == 4
    for r in rows:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", r["id"]), "ids must be file-system safe"
        assert r["split"] == "test" and r["normalized_text"] == r["normalized_text"].lower()
        _assert_audio(base / r["id"][:4] / f"{r['id']}.ogg", 16000, "OGG", "VORBIS")
    assert {p.stem for p in base.rglob("*.ogg")} == {r["id"] for r in rows}


def test_common_voice():
    base = SUITE / "cv-corpus-15.0-2023-09-08" / "en"
    header, rows = _read_tsv(base / "test.tsv")
    assert header == ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accents",
                      "variant", "locale", "segment"]
    assert len(rows) == 4
    for r in rows:
        assert re.fullmatch(r"common_voice_en_\d+\.mp3", r["path"]) and r["locale"] == "en"
        assert re.fullmatch(r"[0-9a-f]{128}", r["client_id"])
        _assert_audio(base / "clips" / r["path"], 48000, "MP3", "MPEG_LAYER_III")
    assert {p.name for p in (base / "clips").iterdir()} == {r["path"] for r in rows}


# ----------------------------------------------------------------------------------------------------------------
# TTS
# ----------------------------------------------------------------------------------------------------------------
def test_seedtts():
    base = SUITE / "seedtts_testset" / "en"
    lines = (base / "meta.lst").read_text().splitlines()
    assert len(lines) == 4
    prompts = []
    for line in lines:
        fields = line.split("|")
        assert len(fields) == 4 and all(fields), line
        utt, prompt_text, prompt_wav, infer_text = fields
        assert prompt_wav.startswith("prompt-wavs/") and not Path(prompt_wav).is_absolute()
        _assert_audio(base / prompt_wav, 16000, "WAV", "PCM_16")
        prompts.append(prompt_wav)
    assert len(set(prompts)) == 4
    assert {f"prompt-wavs/{p.name}" for p in (base / "prompt-wavs").iterdir()} == set(prompts)
    assert len({ln.split("|")[0] for ln in lines}) == 4


# ----------------------------------------------------------------------------------------------------------------
# Spoken language modelling
# ----------------------------------------------------------------------------------------------------------------
def _cmudict() -> set[str] | None:
    try:
        import pocketsphinx
    except ImportError:
        return None
    path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    if not path.is_file():
        return None
    return {ln.split()[0].split("(")[0] for ln in path.read_text(errors="replace").splitlines() if ln.strip()}


def test_slm21_lexical():
    base = SUITE / "sLM21-dataset" / "lexical" / "dev"
    header, rows = _read_csv(base / "gold.csv")
    assert header == ["filename", "id", "voice", "frequency", "word", "phones", "length", "correct"]
    assert {r["filename"] for r in rows} == {p.stem for p in base.glob("*.wav")}
    assert len({r["filename"] for r in rows}) == len(rows) == 48
    assert len({r["filename"].lower() for r in rows}) == len(rows), "stems must differ case-insensitively"
    voices = {r["voice"] for r in rows}
    ids = {r["id"] for r in rows}
    assert len(voices) == 2 and len(ids) == 12
    for r in rows:
        assert re.fullmatch(r"[A-Za-z]{11}", r["filename"])
        assert int(r["length"]) == len(r["phones"].split()) > 0
        _assert_audio(base / f"{r['filename']}.wav", 16000, "WAV", "PCM_16")
    # each (id, voice): exactly one word and one non-word
    by_key = Counter((r["id"], r["voice"], r["correct"]) for r in rows)
    assert set(by_key.values()) == {1} and len(by_key) == 12 * 2 * 2
    # the official 2021 scorer pairs positionally; the benchmarks package joins on (voice, id): both agree here
    words = [r for r in rows if r["correct"] == "1"]
    nonwords = [r for r in rows if r["correct"] == "0"]
    assert [(w["id"], w["voice"]) for w in words] == [(n["id"], n["voice"]) for n in nonwords]
    # one word / non-word per id, the same across voices
    for i in ids:
        assert len({r["word"] for r in rows if r["id"] == i and r["correct"] == "1"}) == 1
        assert len({r["word"] for r in rows if r["id"] == i and r["correct"] == "0"}) == 1
    # frequency bands [0,1) [1,5) [5,20) [20,100) [100,inf) all populated, band edges included
    freqs = {int(r["frequency"]) for r in words}
    bands = Counter(sum(f >= edge for edge in (1, 5, 20, 100)) for f in freqs)
    assert set(bands) == {0, 1, 2, 3, 4}
    assert {1, 5, 20, 100} <= freqs and 0 in freqs
    cmu = _cmudict()
    if cmu is not None:
        assert all(w["word"] in cmu for w in words)
        assert not any(n["word"] in cmu for n in nonwords)


def test_slm21_syntactic():
    base = SUITE / "sLM21-dataset" / "syntactic" / "dev"
    header, rows = _read_csv(base / "gold.csv")
    assert header == ["filename", "id", "voice", "type", "subtype", "transcription", "correct"]
    assert {r["filename"] for r in rows} == {p.stem for p in base.glob("*.wav")}
    assert len(rows) == 16
    for r in rows:
        _assert_audio(base / f"{r['filename']}.wav", 16000, "WAV", "PCM_16")
    good = [r for r in rows if r["correct"] == "1"]
    bad = [r for r in rows if r["correct"] == "0"]
    assert len(good) == len(bad) == 8
    for g, b in zip(good, bad):  # positional pairing, as the official scorer does
        assert (g["id"], g["voice"], g["type"], g["subtype"]) == (b["id"], b["voice"], b["type"], b["subtype"])
        assert g["transcription"] != b["transcription"]
    assert 2 <= len({r["type"] for r in rows}) <= 3
    assert len({(g["type"], g["subtype"], g["id"]) for g in good}) == 8
    lexical = {p.stem.lower() for p in (SUITE / "sLM21-dataset" / "lexical" / "dev").glob("*.wav")}
    assert not lexical & {r["filename"].lower() for r in rows}


@pytest.mark.parametrize("split", ["sSC", "tSC"])
def test_storycloze(split):
    base = SUITE / "spoken-storycloze" / split
    names = {p.name for p in base.iterdir()}
    assert names == {f"{i}_{s}.{e}" for i in range(3) for s in ("correct", "incorrect") for e in ("wav", "txt")}
    texts = {}
    for i in range(3):
        for s in ("correct", "incorrect"):
            _assert_audio(base / f"{i}_{s}.wav", 16000, "WAV", "PCM_16")
            texts[i, s] = (base / f"{i}_{s}.txt").read_text().strip()
    for i in range(3):
        good, bad = texts[i, "correct"], texts[i, "incorrect"]
        assert good != bad
        ctx_good, ctx_bad = good.rsplit(". ", 1)[0], bad.rsplit(". ", 1)[0]
        assert ctx_good == ctx_bad, "true and false story share the context"
        assert len(re.findall(r"[.!?]", good)) == 3
        if split == "tSC":  # the wrong ending is another story's ending
            endings = {texts[j, "correct"].rsplit(". ", 1)[1] for j in range(3) if j != i}
            assert bad.rsplit(". ", 1)[1] in endings


# ----------------------------------------------------------------------------------------------------------------
# Spoken QA
# ----------------------------------------------------------------------------------------------------------------
def test_llama_questions():
    base = SUITE / "llama-questions"
    raw = (base / "llama_questions_300.tsv").read_bytes()
    assert raw.endswith(b"\r\n") and raw.count(b"\n") == raw.count(b"\r\n"), "CRLF line endings"
    lines = raw.decode().split("\r\n")[:-1]
    assert lines[0] == "Questions\tAnswer\tWav Filename"
    rows = [ln.split("\t") for ln in lines[1:]]
    assert len(rows) == 4 and all(len(r) == 3 and r[0] and r[1] for r in rows)
    assert [r[2] for r in rows] == [f"{n}.wav" for n in range(1, 5)]
    assert {p.name for p in base.glob("*.wav")} == {r[2] for r in rows}
    for r in rows:
        _assert_audio(base / r[2], 16000, "WAV", "PCM_16")


@pytest.mark.parametrize("folder,answer_key,extra",
                         [("webquestions", "answers", {"url"}), ("triviaqa", "answer", set())])
def test_qa_jsonl(folder, answer_key, extra):
    base = SUITE / folder
    records = [json.loads(ln) for ln in (base / "test.jsonl").read_text().splitlines()]
    assert len(records) == 3
    for rec in records:
        assert set(rec) == {"question", answer_key, "audio"} | extra
        assert isinstance(rec[answer_key], list) and rec[answer_key] and all(rec[answer_key])
        assert re.fullmatch(r"audio/\d+\.wav", rec["audio"])
        _assert_audio(base / rec["audio"], 16000, "WAV", "PCM_16")
    assert {f"audio/{p.name}" for p in (base / "audio").iterdir()} == {r["audio"] for r in records}


# ----------------------------------------------------------------------------------------------------------------
# Regeneration
# ----------------------------------------------------------------------------------------------------------------
def test_ogg_and_mp3_encoding_is_deterministic(tmp_path):
    """Encoding the same samples twice gives the same bytes (OGG thanks to the fixed stream serial)."""
    mod = _load_script()
    t = np.arange(16000) / 16000
    pcm = (np.sin(2 * np.pi * 220 * t) * 20000).astype(np.int16)
    for kind, rate in (("ogg", 16000), ("mp3", 48000), ("flac", 16000), ("wav", 16000)):
        first, second = tmp_path / "1" / f"x.{kind}", tmp_path / "2" / f"x.{kind}"
        mod.write_audio(first, pcm, rate, kind)
        mod.write_audio(second, pcm, rate, kind)
        assert first.read_bytes() == second.read_bytes(), kind
        assert sf.info(str(second)).samplerate == rate


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        msg = "espeak-ng is not installed, cannot regenerate the mini suite"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI=true: install espeak-ng)")
        pytest.skip(msg)
    out = tmp_path_factory.mktemp("regen") / "mini_suite"
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True, cwd=REPO, capture_output=True)
    return out


def _versions(root: Path) -> str:
    m = re.search(r"^Generated with: (.*)$", (root / "README.md").read_text(), re.M)
    return m.group(1) if m else ""


def test_regeneration_reproduces_file_list_and_text(regenerated):
    committed, fresh = _manifest(SUITE), _manifest(regenerated)
    assert set(committed) == set(fresh), set(committed) ^ set(fresh)
    differing = [rel for rel in committed if Path(rel).suffix in TEXT_SUFFIXES and committed[rel] != fresh[rel]]
    assert not differing, f"text files differ after regeneration: {differing}"


def test_regeneration_reproduces_manifest_byte_for_byte(regenerated):
    if _versions(regenerated) != _versions(SUITE):
        pytest.skip(f"tool versions differ (committed: {_versions(SUITE)}; here: {_versions(regenerated)}), "
                    "audio bytes are not expected to match; file list and text files are checked elsewhere")
    committed = (SUITE / "MANIFEST.sha256").read_bytes()
    fresh = (regenerated / "MANIFEST.sha256").read_bytes()
    if committed != fresh:
        a, b = _manifest(SUITE), _manifest(regenerated)
        diff = sorted(rel for rel in set(a) | set(b) if a.get(rel) != b.get(rel))
        pytest.fail(f"regenerated mini suite differs from the committed one in {len(diff)} files: {diff[:10]}")
