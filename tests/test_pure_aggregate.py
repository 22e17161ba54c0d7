"""``aggregate(items)`` computes from its argument only; side files are the runner's to write.

A resumed run, or rank 0 of a multi-rank run, re-aggregates records read back from the cache in a task instance
that never scored them: the metrics must not depend on anything ``items()`` left on the instance, aggregating twice
must give the same numbers, and aggregating must write nothing (the ZeroSpeech submission file is declared by
``Task.side_files`` and written by the runner).
"""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import pytest
from conftest import MINI_SUITE, TEXT_TASKS, read_jsonl
from test_zerospeech_scoring import make_lexical, make_syntactic

from most_eval.data.files import output_path
from most_eval.models.dummy import DummyModel
from most_eval.run.runner import run_tasks
from most_eval.core.task import TaskContext
from most_eval_tasks.slm import task as slm
from most_eval_tasks.slm import zerospeech as zr
from most_eval_tasks.text import text_task


def _round_trip(rows: list[dict]) -> list[dict]:
    """What reading rows back from a JSONL file (the cache, the samples file) gives."""
    return [json.loads(json.dumps(r)) for r in rows]


def _same(a, b) -> bool:
    """Equal results, NaN equal to NaN (an empty in-vocabulary set)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _text_ids(gold: Path) -> Path:
    """The same gold with text ids ("i<n>", one plain "<n>" left): ids sort as text, not as numbers."""
    rows = list(csv.reader(gold.open(encoding="utf-8")))
    column = rows[0].index("id")
    for row in rows[1:]:
        row[column] = row[column] if row[column] == "7" else f"i{row[column]}"
    out = gold.with_name(f"text_{gold.name}")
    with out.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return out


@pytest.mark.parametrize("seed,text_ids", [(1, False), (5, False), (2, True)])
def test_lexical_from_pairs_equals_scoring_the_gold(tmp_path, seed, text_ids):
    gold_path, submission = make_lexical(tmp_path, "lex", seed=seed, n_ids=150, max_voices=6, unpaired=True)
    gold = zr.read_gold(_text_ids(gold_path) if text_ids else gold_path, zr.LEXICAL)
    assert (gold.table["id"].dtype.kind == "i") is not text_ids
    scores = zr.read_submission(submission)
    for stem in random.Random(seed).sample(sorted(scores), 25):  # some wavs without a score: pairs left out
        del scores[stem]
    full = zr.score_lexical(gold, scores, allow_missing=True)
    again = zr.lexical_from_pairs(_round_trip([p.to_record() for p in full.pairs]))
    assert again.all == full.all and again.all_exact == full.all_exact  # bit for bit
    assert _same(again.in_vocab, full.in_vocab) and _same(again.in_vocab_exact, full.in_vocab_exact)
    assert (again.by_frequency, again.by_length, again.items) == (full.by_frequency, full.by_length, full.items)
    assert again.pairs == full.pairs and (again.n_items, again.n_pairs) == (full.n_items, full.n_pairs)


@pytest.mark.parametrize("seed,text_ids", [(11, False), (12, True)])
def test_syntactic_from_pairs_equals_scoring_the_gold(tmp_path, seed, text_ids):
    gold_path, submission = make_syntactic(tmp_path, "syn", seed=seed, n_pairs=250, mismatched=3)
    gold = zr.read_gold(_text_ids(gold_path) if text_ids else gold_path, zr.SYNTACTIC)
    scores = zr.read_submission(submission)
    for stem in random.Random(seed).sample(sorted(scores), 20):
        del scores[stem]
    full = zr.score_syntactic(gold, scores, allow_missing=True)
    again = zr.syntactic_from_pairs(_round_trip([p.to_record() for p in full.pairs]))
    assert again.score == full.score and again.score_exact == full.score_exact
    assert (again.by_type, again.items, again.pairs) == (full.by_type, full.items, full.pairs)
    kept = {p.position for p in full.pairs}
    assert again.mismatched_pairs == [p for p in full.mismatched_pairs if p in kept]


def _records(task, seed: int, with_tokens: bool) -> list[dict]:
    """Per-wav records as ``score`` gives them (ties included), for every usable sample, in sample order."""
    rng = random.Random(seed)
    out = []
    for s in task.samples():
        if s.request is None:
            continue
        record = {"id": s.id, "score": float(rng.choice([-3, -2, -2, -1])) if rng.random() < 0.4
                  else round(rng.gauss(-20, 4), 5)}
        if with_tokens:
            record["n_tokens"] = rng.randint(5, 40)
        out.append(record)
    return out


def _pure(cls, tmp_path, options=None, seed=0, with_tokens=False) -> tuple[dict, object, list[dict]]:
    """Metrics of ``cls`` from synthetic records, checked to be the same when aggregated twice and when a fresh
    instance re-aggregates the records read back as from the cache; nothing is written under the output folder."""
    out = tmp_path / "out"
    kwargs = {} if options is None else {"options": cls.Options(**options)}
    task = cls(MINI_SUITE, context=TaskContext(output_dir=out), **kwargs)
    records = _records(task, seed, with_tokens)
    items = task.items(records, task.samples())
    metrics = task.aggregate(items)
    assert task.aggregate(items) == metrics  # twice: no state consumed
    assert task.aggregate(_round_trip(items)) == metrics  # items read back from the samples file

    fresh = cls(MINI_SUITE, context=TaskContext(output_dir=out), **kwargs)  # a resumed run, or rank 0 of many
    fresh_items = fresh.items(_round_trip(records), fresh.samples())
    assert fresh_items == items and fresh.aggregate(fresh_items) == metrics
    assert not out.exists(), "aggregating wrote files"
    return metrics, task, records


@pytest.mark.parametrize("cls", [slm.SWuggyDev, slm.SBlimpDev])
@pytest.mark.parametrize("reduction,with_tokens", [("sum", False), ("mean", True)])
def test_zerospeech_aggregate_is_pure_and_equals_the_scorer(cls, reduction, with_tokens, tmp_path):
    metrics, task, records = _pure(cls, tmp_path, {"reduction": reduction}, seed=3, with_tokens=with_tokens)
    scores = task.scores(records)
    scorer = zr.score_lexical if task.kind == zr.LEXICAL else zr.score_syntactic
    result = scorer(task.gold(), scores)
    headline = result.all if task.kind == zr.LEXICAL else result.score
    assert metrics["accuracy"] == round(100 * headline, 6) and metrics["pairs"] == result.n_pairs
    assert metrics["reduction"] == reduction

    # the submission file is declared, not written: complete records give it, incomplete ones remove it
    name = f"zerospeech/{task.submission_file}"
    assert task.side_files(records) == {name: zr.submission_text(scores)}
    assert output_path(tmp_path, name) == tmp_path / "zerospeech" / task.submission_file
    assert task.side_files(records[1:]) == {name: None}
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cls", [slm.SStoryCloze, slm.TStoryCloze])
@pytest.mark.parametrize("reduction,with_tokens", [("mean", True), ("sum", False)])
def test_storycloze_aggregate_is_pure(cls, reduction, with_tokens, tmp_path):
    metrics, task, records = _pure(cls, tmp_path, {"reduction": reduction}, seed=8, with_tokens=with_tokens)
    assert metrics["pairs"] == 3 and metrics["reduction"] == reduction
    assert task.side_files(records) == {}


def test_text_aggregate_reads_lm_evals_metrics_from_its_argument(tmp_path):
    cls = text_task("text:most_tiny_mc")
    record = {"id": "tiny_mc", "lm_eval_metrics": {"acc": 0.625, "acc_norm": 0.5, "f1": 0.3},
              "lm_eval": {"lm_eval_version": "1.0", "n_shot": 0, "lm_eval_config": {"task": "tiny_mc"}},
              "docs": [{"id": str(i), "target": "a", "correct": float(i % 2)} for i in range(8)]}
    out = tmp_path / "out"
    options = cls.Options(include_path=str(TEXT_TASKS))  # where lm-eval finds the task's YAML
    task = cls(tmp_path, options, context=TaskContext(output_dir=out))
    items = task.items([record], [])
    metrics = task.aggregate(items)
    assert metrics == {"accuracy": 62.5, "accuracy_norm": 50.0, "f1": 0.3, "documents": 8, "harness": "lm-eval",
                       "lm_eval_version": "1.0", "n_shot": 0, "lm_eval_config": {"task": "tiny_mc"}}
    assert task.aggregate(items) == metrics
    fresh = cls(tmp_path, options, context=TaskContext(output_dir=out))
    assert fresh.aggregate(fresh.items(_round_trip([record]), [])) == metrics
    assert list(items) == record["docs"]  # the samples file holds the documents alone
    with pytest.raises(TypeError, match="LmEvalDocs"):
        task.aggregate(list(items))  # lm-eval's own metrics are in no document
    assert not out.exists()


def _slm_tasks(out: Path, **options):
    return [cls(MINI_SUITE, context=TaskContext(output_dir=out),
                **({"options": cls.Options(**options)} if options else {}))
            for cls in (slm.SWuggyDev, slm.SBlimpDev, slm.SStoryCloze)]


def test_resumed_run_re_aggregates_cached_records_to_the_same_results(tmp_path):
    out = tmp_path / "out"
    first = run_tasks(DummyModel(), _slm_tasks(out), out, show_progress=False).document["results"]
    submission = out / "zerospeech" / "lexical" / "dev.txt"
    written = submission.read_text()
    # fresh task instances, every record from the cache
    second = run_tasks(DummyModel(), _slm_tasks(out), out, show_progress=False).document["results"]
    for name, entry in first.items():
        assert second[name]["reused"] == second[name]["listed"] > 0
        drop = ("seconds", "reused")
        assert {k: v for k, v in second[name].items() if k not in drop} == \
               {k: v for k, v in entry.items() if k not in drop}, name
    assert submission.read_text() == written
    lines = dict(line.split(" ") for line in written.splitlines())
    assert set(lines) == set(zr.read_gold(MINI_SUITE / "sLM21-dataset/lexical/dev/gold.csv", zr.LEXICAL).stems)
    items = read_jsonl(out / "samples" / "slm_swuggy-dev.jsonl")
    assert all("gold_id" in r for r in items) and not any(math.isnan(r["correct"]) for r in items)


def test_the_runner_removes_a_stale_submission_when_records_are_incomplete(tmp_path):
    out = tmp_path / "out"
    run_tasks(DummyModel(), _slm_tasks(out)[:1], out, show_progress=False)
    submission = out / "zerospeech" / "lexical" / "dev.txt"
    assert submission.is_file()
    run_tasks(DummyModel(), _slm_tasks(out)[:1], out, show_progress=False, limit=2)  # two words: incomplete
    assert not submission.exists()


def test_side_file_names_stay_plain_and_under_the_output_folder(tmp_path):
    assert output_path(tmp_path, "zerospeech/syntactic/test.txt") == tmp_path / "zerospeech/syntactic/test.txt"
    for bad in ("../x.txt", "a/../../x.txt", "/etc/passwd", "", "a//b.txt", "dir/", "sp ace.txt", "nul\0.txt"):
        with pytest.raises(ValueError, match="not a plain file name"):
            output_path(tmp_path, bad)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="escapes"):
        output_path(tmp_path / "out", "link/x.txt")
