"""Text family: ``text:<lm-eval task>`` runs any lm-evaluation-harness task on the model's text capabilities.

There is no default: name the lm-eval task (``text:arc_easy``; local task YAMLs via
``--task-args include_path=DIR``). Datasets load the way lm-eval loads them (local files work offline).
Besides lm-eval's metrics, results.json records what makes the number comparable: the task's version
(``lm_eval_version``), its few-shot count (``n_shot``) and its whole lm-eval config (``lm_eval_config``).
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from pathlib import Path

from most_eval.core.adapter import SCORE_TEXT, Request
from most_eval.core.options import OptionError
from most_eval.core.task import TaskFamily, Sample, Task


@dataclass(frozen=True)
class TextOptions:
    """Options of text tasks."""

    include_path: str | None = None  # folder of extra lm-eval task definitions (YAML)
    num_fewshot: int | None = None  # lm-eval's few-shot count (None: the task's default)


@functools.lru_cache(maxsize=4)
def task_manager(include_path: str | None):
    """lm-eval's task index (with the local task YAMLs of ``include_path``), built once per folder: it reads every
    task definition lm-eval ships, a few seconds."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path) if include_path else TaskManager()


class TextBenchmark(Task):
    """One lm-eval task, run as a single unit through :class:`most_eval.core.lm_eval_bridge.MostEvalLM`."""

    capability = SCORE_TEXT
    Options = TextOptions
    lm_eval_task = ""

    def __init__(self, *args, **kwargs):
        """The task, refused (OptionError, one line) when lm-eval has no task of that name: before any model loads."""
        super().__init__(*args, **kwargs)
        known = task_manager(self.options.include_path).all_tasks
        if self.lm_eval_task not in known:
            close = difflib.get_close_matches(self.lm_eval_task, known, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            where = f" (nor in --task-args include_path={self.options.include_path})" if self.options.include_path \
                else " (local task YAMLs: --task-args include_path=DIR)"
            raise OptionError(f"{self.name}: lm-eval has no task {self.lm_eval_task!r}{where}{hint}")

    def samples(self) -> list[Sample]:
        local = self.options.include_path
        files = tuple(sorted(p for p in Path(local).expanduser().rglob("*") if p.is_file())) if local else ()
        return [Sample(self.lm_eval_task, Request(SCORE_TEXT, text=self.lm_eval_task), files=files)]

    def predict(self, model, prepared) -> list:
        """lm-eval drives the model itself: one output (lm-eval's results for this task) per sample."""
        from lm_eval import simple_evaluate

        from most_eval.core.lm_eval_bridge import MostEvalLM

        manager = task_manager(self.options.include_path)
        # lm-eval caches the model's responses (log-likelihoods, generations) itself, in the runner's cache folder
        # of this model and task config, and scores them again on every run
        cache = self.context.cache_dir
        out = simple_evaluate(model=MostEvalLM(model), tasks=[self.lm_eval_task], task_manager=manager,
                              num_fewshot=self.options.num_fewshot, log_samples=True, bootstrap_iters=0,
                              random_seed=self.context.seed,
                              use_cache=str(cache / "lm_eval") if cache is not None else None)
        return [out]

    def score(self, samples: list[Sample], outputs: list) -> list[dict]:
        out = outputs[0]
        if self.lm_eval_task not in out.get("samples", {}):
            raise ValueError(f"lm-eval task {self.lm_eval_task!r} is a group; name its subtasks one by one")
        # "metric,filter" keys: the filter name is dropped only for lm-eval's default filter "none"
        metrics = {(k[:-len(",none")] if k.endswith(",none") else k): v
                   for k, v in out["results"][self.lm_eval_task].items()
                   if isinstance(v, (int, float)) and not k.startswith("alias") and "stderr" not in k}
        version = out.get("versions", {}).get(self.lm_eval_task)
        n_shot = out.get("n-shot", {}).get(self.lm_eval_task)
        lm_eval = {"lm_eval_version": None if version is None else str(version),  # a label, not a metric
                   "n_shot": None if n_shot is None else int(n_shot),
                   # lm-eval's config dump may hold non-JSON values (functions): those as their str()
                   "lm_eval_config": json.loads(json.dumps(out.get("configs", {}).get(self.lm_eval_task, {}),
                                                           default=str))}
        logged = out["samples"][self.lm_eval_task]
        first_filter = logged[0].get("filter") if logged else None  # lm-eval logs each doc once per filter
        docs = []
        for s in (s for s in logged if s.get("filter") == first_filter):
            doc = {"id": str(s["doc_id"]), "target": str(s.get("target"))}
            for key in metrics:
                if key in s:
                    doc[key] = s[key]
            if "acc" in s:
                doc["correct"] = float(s["acc"])
            elif "exact_match" in s:
                doc["correct"] = float(s["exact_match"])
            docs.append(doc)
        return [{"id": samples[0].id, "lm_eval_metrics": metrics, "lm_eval": lm_eval, "docs": docs}]

    def items(self, records: list[dict], samples: list[Sample]) -> "LmEvalDocs":
        """The documents lm-eval scored, carrying lm-eval's own task-level metrics and config (from the record)."""
        return LmEvalDocs([doc for r in records for doc in r["docs"]],
                          metrics=records[0]["lm_eval_metrics"] if records else {},
                          lm_eval=records[0].get("lm_eval", {}) if records else {})  # absent from older records

    def aggregate(self, items: "LmEvalDocs") -> dict:
        """lm-eval's metrics (accuracies in percent) with the document count and what makes them comparable."""
        if not isinstance(items, LmEvalDocs):
            raise TypeError("a text task aggregates the LmEvalDocs its items() returns: lm-eval's task-level "
                            "metrics travel with the documents, no document holds them")
        metrics = dict(items.metrics)
        for key in ("acc", "acc_norm", "exact_match"):
            if key in metrics:
                metrics["accuracy" if key != "acc_norm" else "accuracy_norm"] = round(100 * metrics.pop(key), 4)
        return {**metrics, "documents": len(items), "harness": "lm-eval", **items.lm_eval}


class LmEvalDocs(list):
    """A text task's items: the documents lm-eval scored (one dict each: what the samples file holds), plus what
    lm-eval computed over the whole task and no document holds: ``metrics`` (its aggregated metrics) and ``lm_eval``
    (task version, few-shot count, task config). They travel with the documents so that
    :meth:`TextBenchmark.aggregate` depends on its argument alone (no state kept between ``items`` and it)."""

    def __init__(self, docs=(), metrics: dict | None = None, lm_eval: dict | None = None):
        super().__init__(docs)
        self.metrics = dict(metrics or {})
        self.lm_eval = dict(lm_eval or {})


def text_task(name: str) -> type[Task]:
    """The task class for ``text:<lm-eval task>``."""
    task = name.split(":", 1)[1]
    return type(f"Text_{task}", (TextBenchmark,), {"name": name, "lm_eval_task": task,
                                                   "description": f"lm-eval task {task}"})


FAMILY = TaskFamily(name="text", tasks={}, defaults=[], description="text benchmarks through lm-eval",
                dynamic=text_task)
