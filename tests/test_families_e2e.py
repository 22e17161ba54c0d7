"""End to end on the bundled mini suite, every number checked against an independent computation.

* offline baseline (pocketsphinx + espeak-ng, deterministic): the ASR transcripts are pocketsphinx run here directly on
  the dataset files; the TTS audio is espeak-ng run here directly on the transcripts; the judge transcripts are
  pocketsphinx on that audio; SIM is resemblyzer run here on (generated audio, the speaker's next utterance); corpus
  WER is jiwer.process_words over Whisper-normalised pairs; sLM accuracies are re-aggregated from the pair records.
* dummy (a fixed transcript / minus the duration as score): exact values derived by hand from the dataset files.
* precomputed outputs re-score to the same numbers.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import warnings
from collections import defaultdict
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import MINI_SUITE, read_jsonl, run_cli
from whisper_normalizer.english import EnglishTextNormalizer

NO_JUDGE_ENV = {"MOST_EVAL_JUDGE_PATH": ""}  # the default judge is the offline baseline whatever the caller's shell says
ASR_TASKS = ("asr:librispeech-test-clean", "asr:librispeech-test-other")
NORMALISE = EnglishTextNormalizer()  # Whisper's English normaliser, the protocol's (README: ASR metric)


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline")
    proc = run_cli("run", "--model", "offline-baseline", "--tasks", "asr,tts,slm", "--output", str(out),
                   "--no-progress", "--batch-size", "4", env=NO_JUDGE_ENV, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads((out / "results.json").read_text()), proc


# ---------------------------------------------------------------------------------------------------------------
# independent references


def librispeech_transcripts(split: str) -> dict[str, str]:
    """id -> transcript, read from the mini suite's trans.txt files."""
    out = {}
    for path in (MINI_SUITE / "LibriSpeech" / split).glob("*/*/*.trans.txt"):
        for line in path.read_text().splitlines():
            uid, text = line.split(" ", 1)
            out[uid] = text
    return out


def librispeech_audio(split: str, uid: str) -> np.ndarray:
    (path,) = (MINI_SUITE / "LibriSpeech" / split).glob(f"*/*/{uid}.flac")
    samples, rate = sf.read(path, dtype="float32")
    assert rate == 16000
    return samples


class Pocketsphinx:
    """pocketsphinx 5's bundled English model on 16 kHz float audio, one fresh utterance per call."""

    def __init__(self):
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=16000, loglevel="FATAL")

    def __call__(self, samples: np.ndarray) -> str:
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        self.decoder.reinit_feat()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


def jiwer_counts(refs: list[str], hyps: list[str]) -> tuple[int, int, int, int]:
    """(S, D, I, N) of a corpus by jiwer.process_words; pairs with an empty side are counted by hand."""
    s = d = i = n = 0
    full = [(r, h) for r, h in zip(refs, hyps) if r.split() and h.split()]
    for r, h in zip(refs, hyps):
        if not h.split():
            d += len(r.split())
            n += len(r.split())
        elif not r.split():
            i += len(h.split())
    if full:
        out = jiwer.process_words([r for r, _ in full], [h for _, h in full])
        s, d, i = s + out.substitutions, d + out.deletions, i + out.insertions
        n += sum(len(r.split()) for r, _ in full)
    return s, d, i, n


def assert_wer_recomputed(result: dict, records: list[dict], transcripts: dict[str, str]):
    """The records' normalised pairs, their per-utterance counts and the corpus WER, all recomputed."""
    assert [r["id"] for r in records] == sorted(transcripts), "one record per utterance, in id order"
    for r in records:
        assert r["ref"] == NORMALISE(transcripts[r["id"]])
        assert r["hyp"] == NORMALISE(r["hyp_raw"])
        assert (r["substitutions"], r["deletions"], r["insertions"], r["ref_words"]) == jiwer_counts([r["ref"]], [r["hyp"]])
    s, d, i, n = jiwer_counts([r["ref"] for r in records], [r["hyp"] for r in records])
    assert (result["substitutions"], result["deletions"], result["insertions"], result["ref_words"]) == (s, d, i, n)
    assert result["wer"] == pytest.approx(100 * (s + d + i) / n, abs=5e-5)
    low, high = result["wer_ci95"]
    assert low <= result["wer"] <= high
    assert (result["scored"], result["listed"], result["errors"]) == (len(transcripts),) * 2 + (0,)


def gold_rows(kind: str) -> list[dict]:
    with open(MINI_SUITE / "sLM21-dataset" / kind / "dev" / "gold.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def outcome(good: float, bad: float) -> float:
    return 1.0 if good > bad else 0.5 if good == bad else 0.0


def lexical_reference(pair_outcomes: dict[tuple[str, str], float]) -> tuple[float, float]:
    """ZeroSpeech lexical (all, in-vocab) in percent from (id, voice) outcomes: per id the mean over its voices,
    then the mean over ids; in-vocab leaves out the ids whose word has frequency 0 (oov)."""
    by_id = defaultdict(list)
    for (item, _), value in pair_outcomes.items():
        by_id[item].append(value)
    per_id = {item: sum(v) / len(v) for item, v in by_id.items()}
    frequency = {r["id"]: int(r["frequency"]) for r in gold_rows("lexical") if r["correct"] == "1"}
    in_vocab = [per_id[i] for i in per_id if frequency[i] > 0]
    return 100 * sum(per_id.values()) / len(per_id), 100 * sum(in_vocab) / len(in_vocab)


def lexical_pairs() -> dict[tuple[str, str], tuple[str, str]]:
    """(id, voice) -> (word file stem, non-word file stem), from gold.csv."""
    pairs: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for r in gold_rows("lexical"):
        pairs[(r["id"], r["voice"])][r["correct"]] = r["filename"]
    assert all(len(v) == 2 for v in pairs.values()), "one word and one non-word per (id, voice)"
    return {k: (v["1"], v["0"]) for k, v in pairs.items()}


def syntactic_pairs() -> dict[str, tuple[str, str, str]]:
    """"type/subtype/id" -> (type, good stem, bad stem), from gold.csv (ids repeat across subtypes)."""
    pairs: dict[str, dict[str, str]] = defaultdict(dict)
    for r in gold_rows("syntactic"):
        key = f"{r['type']}/{r['subtype']}/{r['id']}"
        pairs[key][r["correct"]] = r["filename"]
        pairs[key]["type"] = r["type"]
    assert all(len(v) == 3 for v in pairs.values()), "one good and one bad sentence per item"
    return {k: (v["type"], v["1"], v["0"]) for k, v in pairs.items()}


# ---------------------------------------------------------------------------------------------------------------
# offline baseline


@pytest.mark.slow
def test_baseline_asr_transcripts_and_wer_recomputed(baseline_run):
    out, doc, proc = baseline_run
    pocketsphinx = Pocketsphinx()
    for task in ASR_TASKS:
        split = task.split("librispeech-")[1]
        records = read_jsonl(out / "samples" / f"{task.replace(':', '_')}.jsonl")
        for r in records:  # the transcript of *this* id's audio: ids and files are not mixed up
            assert r["hyp_raw"] == pocketsphinx(librispeech_audio(split, r["id"])), r["id"]
        assert_wer_recomputed(doc["results"][task], records, librispeech_transcripts(split))
        assert task in proc.stdout
    assert sum(doc["results"][t]["wer"] > 0 for t in ASR_TASKS) == 2  # pocketsphinx on espeak-ng is far from perfect


@pytest.mark.slow
def test_baseline_tts_audio_judge_wer_and_sim_recomputed(baseline_run):
    with warnings.catch_warnings():  # resemblyzer -> webrtcvad imports the deprecated pkg_resources
        warnings.simplefilter("ignore")
        from resemblyzer import VoiceEncoder, preprocess_wav

    out, doc, _ = baseline_run
    task = "tts:librispeech-test-clean"
    res = doc["results"][task]
    assert res["judge"] == "offline-baseline" and res["embedder"].startswith("resemblyzer")
    records = read_jsonl(out / "samples" / "tts_librispeech-test-clean.jsonl")
    transcripts = librispeech_transcripts("test-clean")
    assert_wer_recomputed(res, records, transcripts)

    pocketsphinx, encoder = Pocketsphinx(), VoiceEncoder("cpu", verbose=False)

    def embed(samples):
        wav = preprocess_wav(samples, source_sr=16000)
        vector = encoder.embed_utterance(wav if len(wav) >= 1600 else samples)
        return vector / np.linalg.norm(vector)

    ids = [r["id"] for r in records]
    for r in records:
        audio, rate = sf.read(out / r["audio"], dtype="float32")
        assert r["audio"].startswith("audio/tts_librispeech-test-clean/")
        # the audio is espeak-ng's for this utterance's transcript (offline-baseline: voice en-us, 160 words/min)
        wav = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "--stdout", "--stdin"],
                             input=transcripts[r["id"]].encode(), capture_output=True, check=True).stdout
        expected, expected_rate = sf.read(io.BytesIO(wav), dtype="float32")
        assert rate == expected_rate and np.array_equal(audio, expected), r["id"]
        assert r["audio_seconds"] == pytest.approx(len(audio) / rate, abs=1e-4)
        at_16k = soxr.resample(audio, rate, 16000).astype(np.float32)
        assert r["hyp_raw"] == pocketsphinx(at_16k), r["id"]  # the judge heard this audio
        # the prompt: the same speaker's next utterance (cyclic), prompt=other
        same = [i for i in ids if i.split("-")[0] == r["id"].split("-")[0]]
        prompt = librispeech_audio("test-clean", same[(same.index(r["id"]) + 1) % len(same)])
        assert r["sim"] == pytest.approx(float(embed(prompt) @ embed(at_16k)), abs=1e-5), r["id"]
    assert res["sim"] == pytest.approx(np.mean([r["sim"] for r in records]), abs=5e-5)


@pytest.mark.slow
def test_baseline_slm_accuracies_reaggregated_from_pair_records(baseline_run):
    out, doc, _ = baseline_run
    res = doc["results"]

    lexical = read_jsonl(out / "samples" / "slm_swuggy-dev.jsonl")
    pairs = lexical_pairs()
    assert {(r["item"], r["voice"]): (r["correct_stem"], r["incorrect_stem"]) for r in lexical} == pairs
    for r in lexical:
        assert r["outcome"] == r["correct"] == outcome(r["correct_score"], r["incorrect_score"])
    accuracy, in_vocab = lexical_reference({(r["item"], r["voice"]): r["outcome"] for r in lexical})
    assert res["slm:swuggy-dev"]["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert res["slm:swuggy-dev"]["accuracy_in_vocab"] == pytest.approx(in_vocab, abs=1e-4)
    assert (res["slm:swuggy-dev"]["scored"], res["slm:swuggy-dev"]["pairs"]) == (2 * len(pairs), len(pairs))
    # the submission file holds every file's score from the records
    submission = dict(line.split() for line in (out / "zerospeech" / "lexical" / "dev.txt").read_text().splitlines())
    for r in lexical:
        assert float(submission[r["correct_stem"]]) == r["correct_score"]
        assert float(submission[r["incorrect_stem"]]) == r["incorrect_score"]

    syntactic = read_jsonl(out / "samples" / "slm_sblimp-dev.jsonl")
    spairs = syntactic_pairs()
    assert {r["item"]: (r["type"], r["correct_stem"], r["incorrect_stem"]) for r in syntactic} == spairs
    for r in syntactic:
        assert r["outcome"] == outcome(r["correct_score"], r["incorrect_score"])
    assert res["slm:sblimp-dev"]["accuracy"] == pytest.approx(100 * np.mean([r["outcome"] for r in syntactic]), abs=1e-4)
    for kind, value in res["slm:sblimp-dev"]["by_type_percent"].items():
        assert value == pytest.approx(100 * np.mean([r["outcome"] for r in syntactic if r["type"] == kind]), abs=5e-3)

    for task in ("slm:sstorycloze", "slm:tstorycloze"):
        name = task.replace(":", "_")
        stories = read_jsonl(out / "samples" / f"{name}.jsonl")
        assert sorted(r["id"] for r in stories) == ["0", "1", "2"]
        # reduction=mean: a story's score is its summed log-likelihood over its token count (the cached raw scores)
        cache = {r["id"]: r for r in read_jsonl(next((out / "cache" / name).glob("*/rank0.jsonl")))}
        for r in stories:
            assert r["correct"] == outcome(r["true_score"], r["false_score"])
            for side, stem in (("true_score", "correct"), ("false_score", "incorrect")):
                raw = cache[f"{r['id']}_{stem}"]
                assert r[side] == pytest.approx(raw["score"] / raw["n_tokens"], rel=1e-12)
        assert res[task]["reduction"] == "mean"
        assert res[task]["accuracy"] == pytest.approx(100 * np.mean([r["correct"] for r in stories]), abs=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# dummy: exact values from the dataset files


def test_dummy_asr_wer_is_exact(tmp_path):
    """Every transcript is "the": an utterance with n reference words costs n - 1 edits when "the" is among them
    (one word kept, the rest substituted or deleted), else n."""
    proc = run_cli("run", "--model", "dummy", "--model-args", "text=the", "--tasks", "asr", "--output",
                   str(tmp_path), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "results.json").read_text())["results"]
    for task in ASR_TASKS:
        refs = [NORMALISE(t).split() for t in librispeech_transcripts(task.split("librispeech-")[1]).values()]
        words = sum(len(r) for r in refs)
        edits = sum(len(r) - ("the" in r) for r in refs)
        assert res[task]["wer"] == round(100 * edits / words, 4)
        assert res[task]["ref_words"] == words and res[task]["insertions"] == 0


def test_dummy_slm_accuracies_are_exact(tmp_path):
    """The dummy scores a file by minus its duration (sum), over max(1, round(25 x duration)) tokens (mean), so the
    outcome of every pair follows from the two files' lengths."""
    proc = run_cli("run", "--model", "dummy", "--tasks", "slm", "--output", str(tmp_path), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "results.json").read_text())["results"]

    def duration(path: Path) -> float:
        info = sf.info(path)
        assert info.samplerate == 16000
        return info.frames / info.samplerate

    lexical_dir = MINI_SUITE / "sLM21-dataset" / "lexical" / "dev"
    outcomes = {key: outcome(-duration(lexical_dir / f"{good}.wav"), -duration(lexical_dir / f"{bad}.wav"))
                for key, (good, bad) in lexical_pairs().items()}
    accuracy, in_vocab = lexical_reference(outcomes)
    assert 0 < accuracy < 100  # lengths decide both ways on this suite
    assert res["slm:swuggy-dev"]["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert res["slm:swuggy-dev"]["accuracy_in_vocab"] == pytest.approx(in_vocab, abs=1e-4)

    syntactic_dir = MINI_SUITE / "sLM21-dataset" / "syntactic" / "dev"
    blimp = [outcome(-duration(syntactic_dir / f"{g}.wav"), -duration(syntactic_dir / f"{b}.wav"))
             for _, g, b in syntactic_pairs().values()]
    assert res["slm:sblimp-dev"]["accuracy"] == pytest.approx(100 * np.mean(blimp), abs=1e-4)

    def mean_score(path: Path) -> float:
        d = duration(path)
        return -d / max(1, round(d * 25))

    for task, folder in (("slm:sstorycloze", "sSC"), ("slm:tstorycloze", "tSC")):
        base = MINI_SUITE / "spoken-storycloze" / folder
        right = [outcome(mean_score(base / f"{i}_correct.wav"), mean_score(base / f"{i}_incorrect.wav"))
                 for i in range(3)]
        assert res[task]["accuracy"] == pytest.approx(100 * np.mean(right), abs=1e-4)


def test_dummy_qa_accuracy_is_exact_and_equals_the_per_sample_records(tmp_path):
    """The fixed answer names Paris, blue, Portuguese and Leonardo: llama-questions 2 of 4 (Paris, blue),
    WebQuestions 1 of 3 (Portuguese), TriviaQA 1 of 3 (Leonardo). Speech-to-speech answers are a tone the judge
    transcribes; their accuracy is whatever the per-sample records say, recomputed here."""
    answer = "Paris is blue; Portuguese, said Leonardo"
    proc = run_cli("run", "--model", "dummy", "--model-args", json.dumps({"text": answer}), "--tasks", "sqa",
                   "--output", str(tmp_path), "--no-progress", env=NO_JUDGE_ENV)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "results.json").read_text())["results"]
    expected = {"sqa:llama-questions-s2t": 100 * 2 / 4, "sqa:webquestions-s2t": 100 / 3, "sqa:triviaqa-s2t": 100 / 3}
    matched = {"Paris", "blue", "Portuguese", "Leonardo"}
    listed = {"llama-questions": 4, "webquestions": 3, "triviaqa": 3}
    assert len(res) == 6
    pocketsphinx = Pocketsphinx()
    for task, result in res.items():
        records = read_jsonl(tmp_path / "samples" / f"{task.replace(':', '_')}.jsonl")
        n = listed[task.split(":")[1].rsplit("-", 1)[0]]
        assert len(records) == n and all("error" not in r for r in records), task
        assert result["accuracy"] == pytest.approx(100 * sum(r["correct"] for r in records) / n, abs=1e-4), task
        if task.endswith("-s2t"):
            assert result["accuracy"] == pytest.approx(expected[task], abs=1e-4), task
            for r in records:
                assert r["response"] == answer
                assert (r["matched"] in matched) if r["correct"] == 1.0 else r["matched"] is None, r
        else:  # the spoken answer is the dummy's 0.2 s tone; the judge's transcript of it is the response
            for r in records:
                audio, rate = sf.read(tmp_path / r["audio"], dtype="float32")
                assert len(audio) == int(0.2 * rate)
                assert r["response"] == pocketsphinx(soxr.resample(audio, rate, 16000).astype(np.float32))
                assert r["correct"] == (1.0 if r["matched"] else 0.0)


@pytest.mark.slow
def test_precomputed_transcripts_and_scores_reproduce_the_run(baseline_run, tmp_path):
    out, doc, _ = baseline_run
    pre = tmp_path / "pre"
    pre.mkdir()
    for task in ("asr:librispeech-test-clean", "asr:librispeech-test-other"):
        name = task.replace(":", "_")
        rows = [{"id": r["id"], "text": r["hyp_raw"]} for r in read_jsonl(out / "samples" / f"{name}.jsonl")]
        (pre / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # sLM: the official ZeroSpeech submission layout the run wrote, and a StoryCloze scores JSONL
    (pre / "lexical").mkdir()
    (pre / "lexical" / "dev.txt").write_text((out / "zerospeech" / "lexical" / "dev.txt").read_text())
    cache = next((out / "cache" / "slm_tstorycloze").glob("*/rank0.jsonl"))
    rows = [{"id": r["id"], "score": r["score"] / r["n_tokens"]} for r in read_jsonl(cache)]
    (pre / "slm_tstorycloze.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    tasks = "asr,slm:swuggy-dev,slm:tstorycloze,slm:sblimp-dev"
    proc = run_cli("run", "--model", "precomputed", "--model-args", f"dir={pre},score_reduction=mean", "--tasks", tasks,
                   "--output", str(tmp_path / "o"), "--no-progress", "--task-args", "reduction=mean")
    assert proc.returncode == 0, proc.stderr
    again = json.loads((tmp_path / "o" / "results.json").read_text())["results"]
    for task in ("asr:librispeech-test-clean", "asr:librispeech-test-other"):
        assert again[task]["wer"] == doc["results"][task]["wer"]
        assert again[task]["wer_ci95"] == doc["results"][task]["wer_ci95"]
    assert again["slm:swuggy-dev"]["accuracy"] == doc["results"]["slm:swuggy-dev"]["accuracy"]
    assert again["slm:swuggy-dev"]["accuracy_in_vocab"] == doc["results"]["slm:swuggy-dev"]["accuracy_in_vocab"]
    assert again["slm:tstorycloze"]["accuracy"] == doc["results"]["slm:tstorycloze"]["accuracy"]
    assert again["slm:sblimp-dev"] == {"status": "not supported", "capability": "score_audio"}  # no file given


def test_precomputed_qa_answers_and_missing_ids(tmp_path):
    pre = tmp_path / "pre"
    pre.mkdir()
    answers = {"1": "The capital is Paris.", "2": "It has 8 legs", "3": "mars, the red one"}  # 4 missing
    (pre / "sqa_llama-questions-s2t.jsonl").write_text(
        "".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in answers.items()))
    proc = run_cli("run", "--model", "precomputed", "--model-args", f"dir={pre}", "--tasks",
                   "sqa:llama-questions-s2t", "--output", str(tmp_path / "o"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "o" / "results.json").read_text())["results"]["sqa:llama-questions-s2t"]
    # "8" is not "eight" under the has-answer rule: Paris and Mars are right, 2 of 3 scored
    assert res["accuracy"] == pytest.approx(100 * 2 / 3, abs=1e-3)
    assert (res["scored"], res["listed"], res["errors"]) == (3, 4, 1)
    records = read_jsonl(tmp_path / "o" / "samples" / "sqa_llama-questions-s2t.jsonl")
    missing = [r for r in records if "error" in r]
    assert missing[0]["id"] == "4" and "no entry for id 4" in missing[0]["error"]
    assert all(r["matched"] is not None for r in records if r.get("correct") == 1.0)


def test_qa_record_without_answers_is_an_error_record(tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(MINI_SUITE / "triviaqa", data / "triviaqa")
    lines = (data / "triviaqa" / "test.jsonl").read_text().splitlines()
    broken = json.loads(lines[1])
    broken["answer"] = []
    lines[1] = json.dumps(broken)
    (data / "triviaqa" / "test.jsonl").write_text("\n".join(lines) + "\n")
    proc = run_cli("run", "--model", "dummy", "--model-args", "text=oxygen", "--tasks", "sqa:triviaqa-s2t",
                   "--data-root", str(data), "--output", str(tmp_path / "o"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "o" / "results.json").read_text())["results"]["sqa:triviaqa-s2t"]
    assert (res["scored"], res["listed"], res["accuracy"]) == (2, 3, 50.0)
    err = [r for r in read_jsonl(tmp_path / "o" / "samples" / "sqa_triviaqa-s2t.jsonl") if "error" in r][0]
    assert "test.jsonl:2" in err["error"] and "no reference answers" in err["error"]
