"""``--seeds``: a sampling model runs once per seed, results.json holds the mean over seeds with its spread and each
seed's own numbers, deterministic models run once and say so, and compare / check / leaderboard read the seeds."""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from pathlib import Path

import pytest
from conftest import read_jsonl, run_cli

from most_eval import evaluate
from most_eval.models.dummy import DummyModel
from most_eval.report.comparison import metric_delta
from most_eval.results.runs import load_run
from most_eval.results.seeds import (DECLARED_IDENTICAL, OBSERVED_IDENTICAL, combine_seed_metrics, parse_seeds)

TTS = "tts:librispeech-test-clean"
#: Student's t, 0.975 quantile, 2 degrees of freedom (tables: 4.303)
T_975_DOF2 = 4.302652729749464


def test_parse_seeds():
    assert parse_seeds("3") == [0, 1, 2]
    assert parse_seeds("3", base=5) == [5, 6, 7]
    assert parse_seeds("0,1,7") == [0, 1, 7]
    assert parse_seeds(None) is None
    for bad in ("0", "1,1", "-1", "a", "", "1,,2", "2.5"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def test_combine_seed_metrics_mean_std_interval():
    per_seed = [(0, {"wer": 10.0, "wer_ci95": [8.0, 12.0], "substitutions": 3, "ref_words": 30, "sim": 0.5,
                     "judge": "j", "judge_rtf": 0.1, "protocol": "a"}),
                (1, {"wer": 12.0, "wer_ci95": [9.0, 15.0], "substitutions": 4, "ref_words": 30, "sim": 0.6,
                     "judge": "j", "judge_rtf": 0.3, "protocol": "b"}),
                (2, {"wer": 17.0, "wer_ci95": [14.0, 20.0], "substitutions": 5, "ref_words": 30, "sim": 0.4,
                     "judge": "j", "judge_rtf": 0.2, "protocol": "a"})]
    out = combine_seed_metrics(per_seed)
    assert out["wer"] == pytest.approx(13.0)
    assert out["wer_std"] == pytest.approx(statistics.stdev([10.0, 12.0, 17.0]), abs=1e-6)
    half = T_975_DOF2 * statistics.stdev([10.0, 12.0, 17.0]) / math.sqrt(3)
    assert out["wer_seeds_ci95"] == pytest.approx([13.0 - half, 13.0 + half], abs=1e-6)
    assert out["sim"] == pytest.approx(0.5) and out["sim_std"] == pytest.approx(0.1, abs=1e-6)
    assert out["substitutions"] == 12 and out["ref_words"] == 90  # counts: the samples file holds every seed
    assert out["judge_rtf"] == pytest.approx(0.2) and "judge_rtf_std" not in out
    assert out["judge"] == "j" and "protocol" not in out  # text kept only where every seed agrees
    assert "wer_ci95" not in out  # a single seed's bootstrap interval stays with its seed
    assert out["seeds"] == [0, 1, 2]
    assert [p["seed"] for p in out["per_seed"]] == [0, 1, 2]
    assert out["per_seed"][1]["wer"] == 12.0 and out["per_seed"][1]["wer_ci95"] == [9.0, 15.0]
    assert "seeds_identical" not in out
    same = combine_seed_metrics([(s, {"wer": 5.0, "sim": 0.3}) for s in (0, 1)])
    assert same["seeds_identical"] == OBSERVED_IDENTICAL and same["wer_std"] == 0


def _tts_run(out: Path, libri_root: Path, *extra: str):
    proc = run_cli("run", "--model", "most", "--model-args", "do_sample=true", "--tasks", TTS,
                   "--data-root", str(libri_root), "--limit", "2", "--task-args", "mos=none", "--no-progress",
                   "-o", str(out), *extra, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "results.json").read_text()), proc


@pytest.fixture(scope="module")
def seeded_runs(tmp_path_factory, libri_root):
    """A 3-seed run of sampling MoST and a plain run at --seed 1, same samples."""
    root = tmp_path_factory.mktemp("seeds")
    three, proc = _tts_run(root / "three", libri_root, "--seeds", "3")
    one, _ = _tts_run(root / "one", libri_root, "--seed", "1")
    return root, three, one, proc


def test_three_seeds_give_three_runs_and_their_mean(seeded_runs):
    root, document, single, proc = seeded_runs
    entry = document["results"][TTS]
    assert document["seeds"] == [0, 1, 2] and entry["seeds"] == [0, 1, 2]
    per_seed = entry["per_seed"]
    assert [p["seed"] for p in per_seed] == [0, 1, 2]
    sims = [p["sim"] for p in per_seed]
    assert len(set(sims)) == 3, f"sampling gave equal SIM for two seeds: {sims}"
    assert entry["sim"] == pytest.approx(statistics.fmean(sims), abs=1e-6)
    assert entry["sim_std"] == pytest.approx(statistics.stdev(sims), abs=1e-6)
    lo, hi = entry["sim_seeds_ci95"]
    assert lo < entry["sim"] < hi
    assert entry["listed"] == 2 and entry["scored"] == 2 and entry["errors"] == 0
    assert "seeds_identical" not in entry
    # each seed is a run of its own: seed 1 equals a plain run at --seed 1
    plain = single["results"][TTS]
    assert per_seed[1]["sim"] == plain["sim"] and per_seed[1]["wer"] == plain["wer"]
    # the samples file: every seed's records, each with its seed, each with its own audio
    records = read_jsonl(root / "three" / document["tasks"][TTS]["samples_file"])
    assert sorted((r["id"], r["seed"]) for r in records) == sorted((i, s) for i in {r["id"] for r in records}
                                                                  for s in (0, 1, 2))
    digests = {hashlib.sha256((root / "three" / r["audio"]).read_bytes()).hexdigest() for r in records}
    assert len(digests) == 6  # six different clips: 2 samples x 3 seeds
    assert "± " in proc.stdout and "× 3 seeds" in proc.stdout  # the table prints mean ± std


def test_seeds_resume_from_each_seeds_cache(seeded_runs, libri_root):
    root, document, _, _ = seeded_runs
    again, _ = _tts_run(root / "three", libri_root, "--seeds", "3")
    entry = again["results"][TTS]
    assert entry["reused"] == 6
    assert entry["per_seed"] == document["results"][TTS]["per_seed"]


def test_check_and_compare_average_each_sample_over_its_seeds(seeded_runs):
    root, document, single, _ = seeded_runs
    three, one = load_run(root / "three"), load_run(root / "one")
    delta = metric_delta(one, three, TTS, "sim", n_resamples=200)
    assert delta.seeds == (1, 3) and delta.n == 2 and delta.n_label == "2 samples, seeds 1/3"
    assert delta.b == pytest.approx(document["results"][TTS]["sim"], abs=1e-3)  # the mean over seeds
    assert delta.a == pytest.approx(single["results"][TTS]["sim"], abs=1e-3)
    itself = metric_delta(three, three, TTS, "sim", n_resamples=200)
    assert itself.delta == 0 and itself.ci_low == itself.ci_high == 0
    proc = run_cli("check", "--baseline", str(root / "one"), "--candidate", str(root / "three"),
                   "--tolerance", "sim=1,wer=100")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "seeds 1/3" in proc.stdout


def test_leaderboard_shows_mean_and_std(seeded_runs, tmp_path):
    from most_eval.report.leaderboard.collect import collect

    root, document, _, _ = seeded_runs
    entry = document["results"][TTS]
    tables = collect(Path(__file__).resolve().parents[1] / "leaderboards" / "data", runs=(root / "three",))
    details = [d for t in tables for d in t.details if d.task == TTS and d.metric == "sim"]
    assert details and details[0].value == f"{entry['sim']:.3f} ± {entry['sim_std']:.3f}"
    assert details[0].ci95.endswith("over 3 seeds")
    cells = [v for t in tables for r in t.rows if r.is_run for v in r.values.values() if v]
    assert cells == [f"{entry['wer']:.2f} ± {entry['wer_std']:.2f}"]  # the run's one paper cell: TTS WER


class FixedButUndeclared(DummyModel):
    """Fixed outputs, but no claim of being deterministic: each seed runs, and the sameness is observed."""

    name = "dummy-undeclared"

    def deterministic(self, capability: str) -> bool:
        return False


def test_deterministic_models_run_once_and_say_so(tmp_path, libri_root):
    declared = evaluate(DummyModel(), [TTS, "asr:librispeech-test-clean"], output=tmp_path / "declared",
                        data_root=libri_root, limit=2, seeds="3", task_args="mos=none")
    for task in (TTS, "asr:librispeech-test-clean"):
        entry = declared["results"][task]
        assert entry["seeds"] == [0, 1, 2] and entry["seeds_identical"] == DECLARED_IDENTICAL
        assert "per_seed" not in entry
    assert len(list((tmp_path / "declared" / "cache" / "tts_librispeech-test-clean").glob("*/rank0.jsonl"))) == 1
    observed = evaluate(FixedButUndeclared(), [TTS], output=tmp_path / "observed", data_root=libri_root, limit=2,
                        seeds=[4, 9], task_args="mos=none")
    entry = observed["results"][TTS]
    assert entry["seeds"] == [4, 9] and entry["seeds_identical"] == OBSERVED_IDENTICAL
    assert [p["seed"] for p in entry["per_seed"]] == [4, 9]
    assert len(list((tmp_path / "observed" / "cache" / "tts_librispeech-test-clean").glob("*/rank0.jsonl"))) == 2


def test_scoring_tasks_run_once(tmp_path):
    document = evaluate(FixedButUndeclared(), ["slm:swuggy-dev"], output=tmp_path / "slm", limit=2, seeds="3")
    entry = document["results"]["slm:swuggy-dev"]
    assert "seeds" not in entry and "per_seed" not in entry


def test_bad_seeds_are_one_line(tmp_path):
    proc = run_cli("run", "--model", "dummy", "--tasks", TTS, "--seeds", "1,1", "-o", str(tmp_path / "x"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: --seeds '1,1': a seed is given twice"]
