"""DNSMOS of generated speech: equal to ``speechmos.dnsmos.run`` on the same files, clearly lower for noise than for
speech, per sample and as means in results, compared by ``compare`` / ``check``, and labelled as no paper number."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from conftest import espeak, read_jsonl, run_cli

from most_eval.core.audio import Audio, load_audio
from most_eval.models.speech_quality import DNSMOSScorer
from most_eval.scoring.speech_quality import DNSMOS_FIELDS

SPEECHMOS_KEYS = dict(zip(DNSMOS_FIELDS, ("ovrl_mos", "sig_mos", "bak_mos", "p808_mos")))


@pytest.fixture(scope="module")
def scorer():
    return DNSMOSScorer()


def test_dnsmos_equals_speechmos_on_the_same_files(tmp_path, scorer):
    """Files at 22.05, 24 and 16 kHz (speechmos reads them with librosa at 16 kHz), one over DNSMOS's 9 s window."""
    from speechmos import dnsmos

    clips = [("the quick brown fox jumps over the lazy dog", "en-us", 22050),
             ("a short one", "en-gb", 24000),
             (" ".join(["we should plant more trees in the park"] * 6), "en-us+f3", 16000)]
    paths = []
    for i, (text, voice, rate) in enumerate(clips):
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], espeak(text, voice, rate=rate), rate)
    assert sf.info(paths[2]).duration > 9.01  # several DNSMOS windows
    ours = scorer.score([load_audio(p, None) for p in paths])
    for path, mine in zip(paths, ours):
        theirs = dnsmos.run(str(path), 16000)
        for field, key in SPEECHMOS_KEYS.items():
            assert mine[field] == pytest.approx(float(theirs[key]), abs=1e-4), (path.name, field)


def test_speech_and_white_noise_are_far_apart(scorer):
    speech = Audio(espeak("the library closes early on sundays", rate=16000), 16000)
    noise = Audio(np.random.default_rng(0).uniform(-0.5, 0.5, 3 * 16000).astype(np.float32), 16000)
    loud = Audio(speech.samples * 4.0, 16000)  # clipped to [-1, 1] as speechmos requires, not refused
    s, n, c = scorer.score([speech, noise, loud])
    assert s["dnsmos_ovrl"] > n["dnsmos_ovrl"] + 1.0 and s["dnsmos_bak"] > n["dnsmos_bak"] + 1.5
    assert all(1.0 <= v <= 5.0 for v in (*s.values(), *n.values(), *c.values()))


def test_tts_and_s2s_records_carry_dnsmos_and_results_their_means(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "dummy", "--tasks", "tts:seed-tts-eval-en,sqa:llama-questions-s2s",
                   "--judge", "dummy", "--output", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads((out / "results.json").read_text())
    for task in ("tts:seed-tts-eval-en", "sqa:llama-questions-s2s"):
        records = read_jsonl(out / "samples" / (task.replace(":", "_") + ".jsonl"))
        entry = document["results"][task]
        assert entry["mos"].startswith("dnsmos (speechmos ")
        for field in DNSMOS_FIELDS:
            values = [r[field] for r in records]
            assert len(values) == len(records) == 4
            assert entry[field] == round(sum(values) / len(values), 3)
        # what each clip's numbers are: the scorer's on the audio file the record names
        again = DNSMOSScorer().score([load_audio(out / records[0]["audio"], None)])[0]
        assert {f: records[0][f] for f in DNSMOS_FIELDS} == {f: round(again[f], 6) for f in DNSMOS_FIELDS}
        verdicts = document["comparability"][task]["metrics"]
        assert "DNSMOS is not a number of the MoST paper" in " ".join(verdicts["dnsmos_ovrl"]["reasons"])
    # espeak-ng's speech (offline-baseline's TTS) rates well above the dummy model's tones
    spoken = tmp_path / "spoken"
    proc = run_cli("run", "--model", "offline-baseline", "--tasks", "tts:seed-tts-eval-en", "--judge", "dummy",
                   "--output", str(spoken), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    espeak_ovrl = json.loads((spoken / "results.json").read_text())["results"]["tts:seed-tts-eval-en"]["dnsmos_ovrl"]
    assert espeak_ovrl > document["results"]["tts:seed-tts-eval-en"]["dnsmos_ovrl"] + 1.0

    quiet = tmp_path / "quiet"
    proc = run_cli("run", "--model", "dummy", "--tasks", "tts:seed-tts-eval-en", "--judge", "dummy",
                   "--task-args", "mos=none", "--output", str(quiet), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    entry = json.loads((quiet / "results.json").read_text())["results"]["tts:seed-tts-eval-en"]
    assert entry["mos"] is None and not any(f in entry for f in DNSMOS_FIELDS)
    bad = run_cli("run", "--model", "dummy", "--tasks", "tts:seed-tts-eval-en", "--task-args", "mos=utmos",
                  "--output", str(tmp_path / "bad"), "--no-progress")
    assert bad.returncode == 2 and "mos utmos needs its checkpoint file: utmos:PATH" in bad.stderr

    # compare pairs the DNSMOS fields like SIM: a run against itself differs by nothing
    cmp = run_cli("compare", str(out), str(out), "--json")
    assert cmp.returncode == 0, cmp.stderr[-2000:]
    rows = {(d["task"], d["metric"]): d for d in json.loads(cmp.stdout)["deltas"]}
    row = rows[("tts:seed-tts-eval-en", "dnsmos_ovrl")]
    assert row["n"] == 4 and row["delta"] == 0.0 and row["a"] == pytest.approx(
        document["results"]["tts:seed-tts-eval-en"]["dnsmos_ovrl"], abs=5e-4)
