"""The Python API (``most_eval.evaluate`` / ``load_model`` / ``list_tasks``): it returns the document results.json
holds, and it gives the numbers ``most-eval run`` gives for the same inputs."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

import most_eval
from most_eval.core.errors import MostEvalError
from most_eval.registry import families

LIBRI = "asr:librispeech-test-clean"
#: what differs between two runs of the same inputs: when and how they were started, and how long they took
VOLATILE_TOP = {"created", "command", "efficiency", "run_name"}  # run_name: the output folders differ
VOLATILE_ENTRY = {"seconds", "created", "judge_rtf"}


def _same_run(doc: dict) -> dict:
    out = {k: v for k, v in doc.items() if k not in VOLATILE_TOP}
    out["results"] = {t: {k: v for k, v in r.items() if k not in VOLATILE_ENTRY} for t, r in doc["results"].items()}
    out["tasks"] = {t: {k: v for k, v in i.items() if k not in VOLATILE_ENTRY} for t, i in doc["tasks"].items()}
    return out


def test_evaluate_returns_what_results_json_holds(tmp_path):
    out = tmp_path / "api"
    doc = most_eval.evaluate(model="offline-baseline", tasks=[LIBRI], limit=2, output=out)
    assert doc == json.loads((out / "results.json").read_text())
    assert doc["results"][LIBRI]["scored"] == 2 and doc["limit"] == 2
    assert (out / "samples" / "asr_librispeech-test-clean.jsonl").is_file()


def test_the_api_and_the_cli_give_identical_results(tmp_path):
    tasks = [LIBRI, "slm:swuggy-dev", "tts:librispeech-test-clean", "sqa:llama-questions-s2t"]
    doc = most_eval.evaluate("offline-baseline", tasks, limit=3, output=tmp_path / "api", seed=1)
    proc = run_cli("run", "--model", "offline-baseline", "--tasks", ",".join(tasks), "--limit", "3", "--seed", "1",
                   "--output", str(tmp_path / "cli"), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    cli = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert _same_run(doc) == _same_run(cli)
    assert doc["results"]["sqa:llama-questions-s2t"]["status"] == "not supported"  # the baseline does not respond
    scored = [t for t in tasks if "status" not in doc["results"][t]]
    assert len(scored) == 3
    for task in scored:  # and sample by sample
        name = task.replace(":", "_") + ".jsonl"
        assert _records(tmp_path / "api" / "samples" / name) == _records(tmp_path / "cli" / "samples" / name)


def _records(path) -> list[dict]:
    """A samples file's records without the timings (``judge_seconds``; ``audio_seconds`` is the audio's length)."""
    return [{k: v for k, v in json.loads(line).items() if k == "audio_seconds" or not k.endswith("seconds")}
            for line in path.read_text().splitlines()]


def test_evaluate_takes_a_built_model_and_model_args(tmp_path):
    model = most_eval.load_model("dummy", text="he hoped")
    by_instance = most_eval.evaluate(model, "asr:librispeech-test-clean", limit=2, output=tmp_path / "a")
    by_name = most_eval.evaluate("dummy", [LIBRI], model_args={"text": "he hoped"}, limit=2, output=tmp_path / "b")
    assert by_instance["results"][LIBRI]["wer"] == by_name["results"][LIBRI]["wer"]
    assert by_instance["model"] == by_name["model"]
    with pytest.raises(MostEvalError, match="only for a model given by name"):
        most_eval.evaluate(model, [LIBRI], model_args="text=x", output=tmp_path / "c")


def test_bad_input_is_one_line_error_before_any_model_work(tmp_path):
    with pytest.raises(MostEvalError, match="unknown task"):
        most_eval.evaluate("dummy", ["asr:no-such-task"], output=tmp_path / "x")
    with pytest.raises(MostEvalError, match="unknown --model-args key for dummy 'nope'"):
        most_eval.evaluate("dummy", [LIBRI], model_args="nope=1", output=tmp_path / "x")
    with pytest.raises(MostEvalError, match="--limit 0: must be at least 1"):
        most_eval.evaluate("dummy", [LIBRI], limit=0, output=tmp_path / "x")
    with pytest.raises(MostEvalError, match="unknown model"):
        most_eval.load_model("no-such-model")
    assert not (tmp_path / "x" / "results.json").exists()


def test_list_tasks_is_every_registered_task():
    everything = most_eval.list_tasks()
    assert everything == sorted(n for fam in families().values() for n in fam.tasks)
    assert LIBRI in everything and most_eval.list_tasks("asr") == [n for n in everything if n.startswith("asr:")]
    with pytest.raises(MostEvalError, match="unknown task family"):
        most_eval.list_tasks("asrr")
