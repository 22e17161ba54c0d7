"""compare (paired bootstrap deltas) and check (regression gate) on synthetic runs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer import Typer
from typer.testing import CliRunner

from most_eval.cli.reports import check_command, compare_command
from most_eval.results.store import ResultsFileError
from most_eval.report.comparison import NotComparable, paired_bootstrap, task_rng
from most_eval.report.check import check, parse_tolerance
from most_eval.report.compare import compare, compare_runs
from most_eval.results.runs import load_run

N = 500
ASR = "asr:librispeech-test-clean"
SLM = "slm:swuggy-dev"
TTS = "tts:librispeech-test-clean"


# ----------------------------------------------------------------------------------------------------------- fixtures

def write_run(root: Path, tasks: dict[str, list[dict]], *, model: str = "dummy", sha: dict[str, str] | None = None,
              config: dict[str, dict] | None = None, limit: int | None = None) -> Path:
    """A results folder in the harness's format; metrics in results.json computed from the records."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "samples").mkdir(exist_ok=True)
    results, task_info = {}, {}
    for task, records in tasks.items():
        rel = f"samples/{task.replace(':', '_')}.jsonl"
        (root / rel).write_text("".join(json.dumps(r) + "\n" for r in records))
        ok = [r for r in records if "error" not in r]
        entry: dict = {"scored": len(ok), "listed": len(records), "errors": len(records) - len(ok)}
        if ok and "errors" in ok[0]:
            entry["wer"] = 100 * sum(r["errors"] for r in ok) / sum(r["ref_words"] for r in ok)
        if ok and "correct" in ok[0]:
            entry["accuracy"] = 100 * sum(r["correct"] for r in ok) / len(ok)
        if ok and "sim" in ok[0]:
            entry["sim"] = sum(r["sim"] for r in ok) / len(ok)
        results[task] = entry
        task_info[task] = {"config": (config or {}).get(task, {}), "samples_file": rel,
                           "dataset_sha256": (sha or {}).get(task, "ab" * 32)}
    data = {"format": "most-eval-results", "format_version": 1,
            "model": {"name": model, "args": {}, "fingerprint": "f" * 16},
            "results": results, "tasks": task_info, "seed": 0, "limit": limit, "git_revision": "0" * 40, "versions": {},
            "created": "2026-01-01T00:00:00Z"}
    (root / "results.json").write_text(json.dumps(data, indent=1))
    return root


def wer_records(errors: np.ndarray, ref: np.ndarray) -> list[dict]:
    return [{"id": f"utt-{i:04d}", "errors": int(e), "ref_words": int(r), "substitutions": int(e), "deletions": 0,
             "insertions": 0, "ref": "x", "hyp": "y"} for i, (e, r) in enumerate(zip(errors, ref))]


def acc_records(correct: np.ndarray) -> list[dict]:
    return [{"id": f"pair-{i:04d}", "correct": float(c)} for i, c in enumerate(correct)]


@pytest.fixture
def synth():
    rng = np.random.default_rng(1234)
    ref = rng.integers(10, 31, size=N)  # ~20 words per utterance, ~10k words
    base_err = rng.binomial(ref, 0.05)  # baseline WER ~5%
    return rng, ref, base_err


def paired_corpus_wer_interval(err_a, err_b, ref, *, seed=0, task=ASR, resamples=1000, level=0.95):
    """The paired percentile interval of corpus-WER deltas, written out independently of the harness: numpy's
    default_rng seeded with (seed, crc32(task)), one (resamples, n) draw of utterance indices, np.percentile."""
    draws = np.random.default_rng([seed, zlib.crc32(task.encode())]).integers(0, len(ref), size=(resamples, len(ref)))
    deltas = 100.0 * (err_b[draws].sum(axis=1) - err_a[draws].sum(axis=1)) / ref[draws].sum(axis=1)
    return tuple(np.percentile(deltas, [100 * (1 - level) / 2, 100 * (1 + level) / 2]))


def make_cli() -> Typer:
    app = Typer()
    app.command("compare")(compare_command)
    app.command("check")(check_command)
    return app


# --------------------------------------------------------------------------------------------------------- compare

def test_compare_delta_and_ci(tmp_path, synth):
    rng, ref, base_err = synth
    cand_err = base_err + rng.binomial(ref, 0.02)
    a = write_run(tmp_path / "a", {ASR: wer_records(base_err, ref)})
    b = write_run(tmp_path / "b", {ASR: wer_records(cand_err, ref)})
    comp = compare(a, b / "results.json")  # folder or results.json path
    (d,) = comp.deltas
    assert d.task == ASR and d.metric == "wer" and d.n == N and d.aggregation == "corpus"
    want_a = 100 * base_err.sum() / ref.sum()
    want_b = 100 * cand_err.sum() / ref.sum()
    assert d.a == pytest.approx(want_a) and d.b == pytest.approx(want_b)
    assert d.a_reported == pytest.approx(want_a)
    assert d.delta == pytest.approx(want_b - want_a)
    assert (d.ci_low, d.ci_high) == pytest.approx(paired_corpus_wer_interval(base_err, cand_err, ref), abs=1e-9)
    assert 1.0 < d.ci_low and d.ci_high < 3.0  # a ~2-point regression, narrow paired interval
    assert d.significant and d.worse_by > 0
    # Seeded: same result twice; another seed moves the interval slightly.
    again = compare(a, b).deltas[0]
    assert (again.ci_low, again.ci_high) == (d.ci_low, d.ci_high)
    other = compare(a, b, seed=7).deltas[0]
    assert (other.ci_low, other.ci_high) == pytest.approx(paired_corpus_wer_interval(base_err, cand_err, ref, seed=7),
                                                          abs=1e-9)
    assert (other.ci_low, other.ci_high) != (d.ci_low, d.ci_high)
    assert abs(other.ci_low - d.ci_low) < 0.2


def test_bootstrap_matches_reference_loop():
    rng = np.random.default_rng(0)
    n = 60
    ref = rng.integers(5, 20, size=n).astype(float)
    ea, eb = rng.binomial(ref.astype(int), 0.1).astype(float), rng.binomial(ref.astype(int), 0.15).astype(float)
    got = paired_bootstrap("wer", {"errors": ea, "ref_words": ref}, {"errors": eb, "ref_words": ref},
                           n_resamples=200, rng=task_rng(3, "t"))
    draws = task_rng(3, "t")
    want = []
    for _ in range(200):  # the reference: one resample at a time
        idx = draws.integers(0, n, size=(1, n))[0]
        want.append(100 * eb[idx].sum() / ref[idx].sum() - 100 * ea[idx].sum() / ref[idx].sum())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_compare_accuracy_sim_intersection_and_errors(tmp_path):
    rng = np.random.default_rng(5)
    correct_a = rng.integers(0, 2, size=N).astype(float)
    correct_b = correct_a.copy()
    correct_b[:40] = 0.5
    tts_a = [{**r, "sim": 0.6} for r in wer_records(np.ones(N, int), np.full(N, 10))]
    tts_b = [{**r, "sim": 0.5} for r in wer_records(np.ones(N, int), np.full(N, 10))]
    tts_b[3] = {"id": tts_b[3]["id"], "error": "synthesis failed"}  # error records are skipped
    a = write_run(tmp_path / "a", {SLM: acc_records(correct_a), TTS: tts_a})
    slm_b = acc_records(correct_b)
    slm_b[-10:] = [{"id": r["id"], "error": "scoring failed"} for r in slm_b[-10:]]  # same samples, 10 failed in B
    b = write_run(tmp_path / "b", {SLM: slm_b, TTS: tts_b})
    comp = compare(a, b)
    by = {(d.task, d.metric): d for d in comp.deltas}
    assert set(by) == {(SLM, "accuracy"), (TTS, "wer"), (TTS, "sim")}
    acc = by[(SLM, "accuracy")]
    assert (acc.n, acc.only_a, acc.only_b) == (N - 10, 10, 0)
    assert acc.a == pytest.approx(100 * correct_a[:-10].mean())
    sim = by[(TTS, "sim")]
    assert sim.n == N - 1 and sim.delta == pytest.approx(-0.1) and sim.significant
    assert by[(TTS, "wer")].delta == pytest.approx(0.0)
    json.dumps(comp.to_dict())  # serialisable


def zerospeech_records(outcomes: np.ndarray, voices=("en-us", "en-gb")) -> list[dict]:
    """sWUGGY-like records as the harness writes them today: the item id repeats once per voice."""
    return [{"id": i // len(voices), "voice": voices[i % len(voices)], "correct": float(c)}
            for i, c in enumerate(outcomes)]


def test_accuracy_averages_items_like_zerospeech(tmp_path):
    outcomes = np.array([1, 0, 1, 1, 0.5, 0, 0, 0, 1, 1])  # 5 ids x 2 voices
    a = write_run(tmp_path / "a", {SLM: zerospeech_records(outcomes)})
    flipped = outcomes.copy()
    flipped[1] = 1  # id 0, second voice
    b = write_run(tmp_path / "b", {SLM: zerospeech_records(flipped)})
    d = compare(a, b).deltas[0]
    per_id = outcomes.reshape(5, 2).mean(axis=1)  # per-id mean over voices, then the mean over ids
    assert (d.n, d.units) == (10, 5)
    assert d.a == pytest.approx(100 * per_id.mean()) and d.delta == pytest.approx(10.0)
    # sBLIMP-like: ids repeat across subtypes; items are (type, subtype, id)
    recs = [{"id": 0, "type": "t", "subtype": s, "voice": v, "correct": c}
            for s, v, c in (("x", "a", 1.0), ("x", "b", 0.0), ("y", "a", 1.0), ("y", "b", 1.0))]
    c = write_run(tmp_path / "c", {"slm:sblimp-dev": recs})
    d = compare(c, c).deltas[0]
    assert (d.n, d.units, d.a) == (4, 2, pytest.approx(75.0))


def test_compare_seed_tts_eval_uses_utterance_mean(tmp_path):
    ref = np.array([2, 10, 10, 10, 0])
    err = np.array([1, 0, 0, 0, 3])  # an empty reference with insertions counts 100%
    recs = wer_records(err, ref)
    a = write_run(tmp_path / "a", {"tts:seed-tts-eval-en": recs})
    d = compare(a, a).deltas[0]
    assert d.aggregation == "utterance_mean"
    assert d.a == pytest.approx(100 * np.mean([0.5, 0, 0, 0, 1]))  # 30, not the corpus 4/32
    # the protocol named in the task config (as the TTS task records it) selects it too
    b = write_run(tmp_path / "b", {"tts:custom": recs}, config={"tts:custom": {"protocol": "seed-tts-eval"}})
    assert compare(b, b).deltas[0].aggregation == "utterance_mean"
    c = write_run(tmp_path / "c", {"tts:custom": recs})
    assert compare(c, c).deltas[0].aggregation == "corpus"


def test_compare_common_voice_sized_test_set(tmp_path):
    rng = np.random.default_rng(9)
    n = 16000  # Common Voice test size: the vectorised bootstrap handles it in blocks
    ref = rng.integers(5, 30, size=n)
    err_a, err_b = rng.binomial(ref, 0.08), rng.binomial(ref, 0.08)
    a = write_run(tmp_path / "a", {ASR: wer_records(err_a, ref)})
    b = write_run(tmp_path / "b", {ASR: wer_records(err_b, ref)})
    (d,) = compare_runs(load_run(a), load_run(b), n_resamples=300).deltas  # 300 x 16,000 indices: in 2 blocks
    assert d.n == n and d.delta == pytest.approx(100 * (err_b.sum() - err_a.sum()) / ref.sum())
    order = sorted(range(n), key=lambda i: f"utt-{i:04d}")  # samples pair in sorted-id order ("utt-10000" < "utt-1001")
    want = paired_corpus_wer_interval(err_a[order], err_b[order], ref[order], resamples=300)  # blocks change nothing
    assert (d.ci_low, d.ci_high) == pytest.approx(want, abs=1e-9)


def test_compare_cli_json(tmp_path, synth):
    _, ref, base_err = synth
    a = write_run(tmp_path / "a", {ASR: wer_records(base_err, ref)})
    res = CliRunner().invoke(make_cli(), ["compare", str(a), str(a), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["deltas"][0]["delta"] == 0 and data["deltas"][0]["n"] == N
    res = CliRunner().invoke(make_cli(), ["compare", str(a), str(a)], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and ASR in res.stdout


# ----------------------------------------------------------------------------------------------------------- check

def test_check_fails_on_injected_2_point_wer_regression(tmp_path, synth):
    rng, ref, base_err = synth
    cand_err = base_err + rng.binomial(ref, 0.02)  # +2 WER points, paired
    base = write_run(tmp_path / "base", {ASR: wer_records(base_err, ref)})
    cand = write_run(tmp_path / "cand", {ASR: wer_records(cand_err, ref)})
    md, junit = tmp_path / "out" / "check.md", tmp_path / "out" / "check.xml"
    report = check(base, cand, {"wer": 0.3, "accuracy": 1.0}, markdown_path=md, junit_path=junit)
    assert not report.passed
    (row,) = report.rows
    assert row.status == "fail" and row.delta.worse_ci[0] > 0.3
    assert "FAIL" in md.read_text() and ASR in md.read_text()
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("failures") == "1" and suite.find("testcase/failure") is not None
    res = CliRunner().invoke(make_cli(), ["check", "--baseline", str(base), "--candidate", str(cand),
                                          "--junit", str(tmp_path / "cli.xml"), "--markdown", str(tmp_path / "cli.md")])
    assert res.exit_code == 1, res.output
    assert "FAIL" in res.stdout and (tmp_path / "cli.xml").exists() and (tmp_path / "cli.md").exists()


def test_check_passes_within_noise(tmp_path, synth):
    rng, ref, base_err = synth
    cand_err = rng.binomial(ref, 0.05)  # same system quality, independent noise per utterance
    base = write_run(tmp_path / "base", {ASR: wer_records(base_err, ref)})
    cand = write_run(tmp_path / "cand", {ASR: wer_records(cand_err, ref)})
    report = check(base, cand)
    assert report.passed, report.to_markdown()
    assert report.rows[0].status in ("pass", "warn")
    res = CliRunner().invoke(make_cli(), ["check", "--baseline", str(base), "--candidate", str(cand)])
    assert res.exit_code == 0, res.output
    assert "PASS" in res.stdout


def test_check_markdown_escapes_html_from_results(tmp_path, synth):
    _, ref, base_err = synth
    evil = "<img src=x onerror=alert(1)>"
    base = write_run(tmp_path / "base", {ASR: wer_records(base_err, ref)}, model=evil)
    cand = write_run(tmp_path / "cand", {ASR: wer_records(base_err, ref)}, model=evil)
    md = tmp_path / "check.md"
    check(base, cand, markdown_path=md)
    assert evil not in md.read_text() and "(model &lt;img src=x onerror=alert(1)&gt;)" in md.read_text()


def test_check_beyond_tolerance_but_not_significant_warns(tmp_path):
    # 500 binary pairs, candidate flips 7 right answers to wrong: -1.4 points (> tolerance 1.0) but the paired
    # interval of "worse by" is roughly [0.4, 2.4], which reaches below the tolerance -> warn, not fail.
    rng = np.random.default_rng(2)
    correct = rng.integers(0, 2, size=N).astype(float)
    cand = correct.copy()
    cand[np.flatnonzero(correct == 1)[:7]] = 0
    b = write_run(tmp_path / "b", {SLM: acc_records(correct)})
    c = write_run(tmp_path / "c", {SLM: acc_records(cand)})
    report = check(b, c)
    (row,) = report.rows
    assert row.delta.worse_by == pytest.approx(1.4)
    assert row.status == "warn" and report.passed
    assert check(b, c, {"accuracy": 0.0}).rows[0].status == "fail"  # significant at all -> fails with tol 0


def test_check_refuses_different_sample_ids(tmp_path, synth):
    _, ref, base_err = synth
    recs = wer_records(base_err, ref)
    base = write_run(tmp_path / "base", {ASR: recs})
    cand = write_run(tmp_path / "cand", {ASR: recs[:-1]})
    with pytest.raises(NotComparable) as exc:
        check(base, cand)
    msg = str(exc.value)
    assert "\n" not in msg and ASR in msg and "sample ids differ" in msg and "utt-0499" in msg
    # an error record in the candidate is a different scored set too, and the message says so
    errored = [*recs[:-1], {"id": recs[-1]["id"], "error": "timeout"}]
    cand2 = write_run(tmp_path / "cand2", {ASR: errored})
    with pytest.raises(NotComparable, match="the candidate has 1 error record"):
        check(base, cand2)
    junit = tmp_path / "refused.xml"
    res = CliRunner().invoke(make_cli(), ["check", "--baseline", str(base), "--candidate", str(cand),
                                          "--junit", str(junit)])
    assert res.exit_code == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "sample ids differ" in res.stderr
    assert ET.parse(junit).getroot().find("testsuite/testcase/error") is not None


def test_check_refuses_different_dataset_hash(tmp_path, synth):
    _, ref, base_err = synth
    recs = wer_records(base_err, ref)
    base = write_run(tmp_path / "base", {ASR: recs}, sha={ASR: "1" * 64})
    cand = write_run(tmp_path / "cand", {ASR: recs}, sha={ASR: "2" * 64})
    with pytest.raises(NotComparable) as exc:
        check(base, cand)
    msg = str(exc.value)
    assert "\n" not in msg and "dataset_sha256 differs" in msg and "111111111111" in msg and ASR in msg
    res = CliRunner().invoke(make_cli(), ["check", "--baseline", str(base), "--candidate", str(cand)])
    assert res.exit_code == 2 and "dataset_sha256 differs" in res.stderr


def test_check_refuses_missing_task(tmp_path, synth):
    _, ref, base_err = synth
    base = write_run(tmp_path / "base", {ASR: wer_records(base_err, ref), SLM: acc_records(np.ones(10))})
    cand = write_run(tmp_path / "cand", {ASR: wer_records(base_err, ref)})
    report = check(base, cand)  # the shared task is checked; the one the candidate lacks fails the gate
    assert not report.passed and report.missing == [SLM] and [r.delta.task for r in report.rows] == [ASR]
    assert report.verdict == "FAIL (1 baseline task missing from the candidate)"
    assert f"{SLM}: scored in the baseline, not in the candidate; fails the gate (--allow-missing accepts it)" \
        in report.notes
    allowed = check(base, cand, allow_missing=True)
    assert allowed.passed and f"{SLM}: scored in the baseline, not in the candidate; allowed by --allow-missing" \
        in allowed.notes
    assert check(base, cand, tasks=[ASR]).passed and not check(base, cand, tasks=[ASR]).notes
    with pytest.raises(NotComparable, match="--tasks tts:nowhere: scored in neither"):
        check(base, cand, tasks=["tts:nowhere"])
    res = CliRunner().invoke(make_cli(), ["check", "--baseline", str(base), "--candidate", str(cand)])
    assert res.exit_code == 1 and "FAIL (1 baseline task missing from the candidate)" in res.stdout
    res = CliRunner().invoke(make_cli(), ["check", "--baseline", str(base), "--candidate", str(cand),
                                          "--allow-missing"])
    assert res.exit_code == 0, res.stdout


def test_different_setups_are_refused_by_check_and_compare(tmp_path, synth):
    _, ref, base_err = synth
    recs = wer_records(base_err, ref)
    judge = {"name": "hf-asr", "args": {"path": "/models/whisper-large-v3"}}
    base = write_run(tmp_path / "base", {TTS: recs}, config={TTS: {"protocol": "whisper", "judge": judge}})
    cases = {  # candidate set-up -> the first difference named
        "judge": ({"config": {TTS: {"protocol": "whisper", "judge": {**judge, "args": {"path": "/models/tiny"}}}}},
                  f"{TTS}: judge.args.path differs: /models/whisper-large-v3 vs /models/tiny"),
        "limit": ({"config": {TTS: {"protocol": "whisper", "judge": judge}}, "limit": 5}, "limit differs: none vs 5"),
        "option": ({"config": {TTS: {"protocol": "whisper", "judge": judge, "options": {"embedder": "ecapa:x"}}}},
                   f"{TTS}: embedder differs: missing vs ecapa:x"),
    }
    for name, (kwargs, message) in cases.items():
        cand = write_run(tmp_path / name, {TTS: recs}, **kwargs)
        for refuse, error in ((check, NotComparable), (compare, NotComparable)):
            with pytest.raises(error) as exc:
                refuse(base, cand)
            assert str(exc.value).endswith(f": {message}") and "\n" not in str(exc.value), (name, str(exc.value))
        res = CliRunner().invoke(make_cli(), ["compare", str(base), str(cand)])
        assert res.exit_code == 2 and res.stderr.strip().splitlines() == [f"error: {exc.value}"]
    # a scoring field of the results entry (runs older than the config's judge/embedder) counts too
    cand = write_run(tmp_path / "entry", {TTS: recs}, config={TTS: {"protocol": "whisper", "judge": judge}})
    doc = json.loads((cand / "results.json").read_text())
    doc["results"][TTS]["embedder"] = "resemblyzer"
    (cand / "results.json").write_text(json.dumps(doc))
    with pytest.raises(NotComparable, match=f"{TTS}: embedder differs: missing vs resemblyzer$"):
        compare(base, cand)


def test_compare_refuses_different_sample_sets(tmp_path, synth):
    _, ref, base_err = synth
    recs = wer_records(base_err, ref)
    a = write_run(tmp_path / "a", {ASR: recs})
    b = write_run(tmp_path / "b", {ASR: recs[:-1]})
    with pytest.raises(NotComparable, match=r"sample ids differ \(run A 500, run B 499; 1 only in run A, e\.g\. "
                                            r"'utt-0499'\)$"):
        compare(a, b)
    # --limit differs too: the limit is named, not the sample ids it left out
    c = write_run(tmp_path / "c", {ASR: recs[:5]}, limit=5)
    with pytest.raises(NotComparable, match=r": limit differs: none vs 5$"):
        compare(a, c)
    with pytest.raises(NotComparable, match=r": limit differs: none vs 5; asr:librispeech-test-clean: scored sample ids "
                                            r"differ \(baseline 500, candidate 5; "):
        check(a, c)  # check lists every problem
    # compare stops at the first problem: a later samples file it would have to read is not opened
    (c / "samples" / "asr_librispeech-test-clean.jsonl").unlink()
    with pytest.raises(NotComparable, match=r": limit differs: none vs 5$"):
        compare(a, c)


def test_truncated_and_foreign_files_one_line(tmp_path, synth):
    _, ref, base_err = synth
    base = write_run(tmp_path / "base", {ASR: wer_records(base_err, ref)})
    trunc = write_run(tmp_path / "trunc", {ASR: wer_records(base_err, ref)})
    text = (trunc / "results.json").read_text()
    (trunc / "results.json").write_text(text[: len(text) // 2])
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"results": {"hellaswag": {"acc": 0.5}}, "config": {}}))  # lm-eval style
    for bad, why in ((trunc / "results.json", "truncated JSON"), (foreign, "not a most-eval results file")):
        with pytest.raises(ResultsFileError) as exc:
            compare(base, bad)
        assert str(bad) in str(exc.value) and why in str(exc.value) and "\n" not in str(exc.value)
        res = CliRunner().invoke(make_cli(), ["check", "--baseline", str(base), "--candidate", str(bad)])
        assert res.exit_code == 2
        assert len(res.stderr.strip().splitlines()) == 1 and str(bad) in res.stderr
    # a truncated samples file names the file and the line
    samples = trunc / "samples" / "asr_librispeech-test-clean.jsonl"
    (trunc / "results.json").write_text(text)
    lines = samples.read_text().splitlines()
    samples.write_text("\n".join(lines[:10] + [lines[10][:15]]) + "\n")
    with pytest.raises(ResultsFileError, match=r"asr_librispeech-test-clean\.jsonl: line 11: invalid JSON"):
        compare(base, trunc)


def test_parse_tolerance():
    mos = {m: 0.1 for m in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808", "utmos")}  # MOS points
    assert parse_tolerance("wer=0.5, accuracy=2") == {"wer": 0.5, "accuracy": 2.0, "sim": 0.01, **mos}
    assert parse_tolerance(None) == {"wer": 0.3, "accuracy": 1.0, "sim": 0.01, **mos}
    for bad in ("cer=1", "wer", "wer=-1", "wer=abc"):
        with pytest.raises(ValueError):
            parse_tolerance(bad)
