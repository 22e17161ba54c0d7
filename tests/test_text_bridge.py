"""Text-ability retention through lm-eval: a tiny local causal LM on a local lm-eval task, no downloads."""

from __future__ import annotations

import json

import pytest
import transformers
from conftest import TEXT_TASKS, read_jsonl, run_cli

WORDS = "<unk> <eos> the cat dog sat ran on a mat log is red blue sky grass green what color".split()
DOCS = [
    {"question": "the cat sat on a", "choices": [" mat", " log", " sky"], "label": 0},
    {"question": "the sky is", "choices": [" green", " blue"], "label": 1},
    {"question": "grass is", "choices": [" green", " red", " blue"], "label": 0},
    {"question": "the dog ran on a", "choices": [" log", " cat"], "label": 0},
    {"question": "what color is the sky", "choices": [" blue", " mat"], "label": 0},
]


def _tiny_lm(folder):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>",
                                                bos_token="<eos>")
    fast.save_pretrained(folder)
    cfg = transformers.GPT2Config(vocab_size=len(WORDS), n_positions=64, n_embd=16, n_layer=1, n_head=2,
                                  bos_token_id=1, eos_token_id=1)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(folder)


def _task(folder):
    data = folder / "tiny_mc.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    (folder / "tiny_mc.yaml").write_text(
        "task: tiny_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {data}\ntest_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "{{question}}"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: "{{label}}"\n'
        "metric_list:\n  - metric: acc\nmetadata:\n  version: 1.0\n")


def test_lm_eval_task_through_the_bridge_matches_direct_scoring(tmp_path):
    model_dir, tasks_dir = tmp_path / "lm", tmp_path / "tasks"
    model_dir.mkdir()
    tasks_dir.mkdir()
    _tiny_lm(model_dir)
    _task(tasks_dir)
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "hf-causal-lm", "--model-args", f"path={model_dir}", "--tasks", "text:tiny_mc",
                   "--task-args", f"include_path={tasks_dir}", "--output", str(out), "--no-progress",
                   env={"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())["results"]["text:tiny_mc"]

    # the same accuracy computed directly from the adapter's score_text, without lm-eval
    from most_eval.models.hf_lm import HFCausalLM, HFCausalLMArgs

    model = HFCausalLM(HFCausalLMArgs(path=str(model_dir)))
    right = 0
    for d in DOCS:
        scores = [lp for lp, _ in model.score_text([d["question"]] * len(d["choices"]), d["choices"])]
        right += max(range(len(scores)), key=scores.__getitem__) == d["label"]
    assert res["accuracy"] == pytest.approx(100 * right / len(DOCS))
    assert res["documents"] == len(DOCS) and res["harness"] == "lm-eval"
    # what makes the number comparable, from lm-eval's own output: task version, few-shot count, task config
    assert res["lm_eval_version"] == "1.0" and res["n_shot"] == 0
    assert res["lm_eval_config"]["task"] == "tiny_mc" and res["lm_eval_config"]["output_type"] == "multiple_choice"
    docs = read_jsonl(out / "samples" / "text_tiny_mc.jsonl")
    assert sorted(d["id"] for d in docs) == [str(i) for i in range(len(DOCS))]
    assert sum(d["correct"] for d in docs) == right


def test_text_task_on_a_model_without_text_capabilities_is_not_supported(tmp_path):
    proc = run_cli("run", "--model", "offline-baseline", "--tasks", "text:most_tiny_mc", "--output", str(tmp_path),
                   "--task-args", f"include_path={TEXT_TASKS}", "--no-progress")
    assert proc.returncode == 0
    res = json.loads((tmp_path / "results.json").read_text())["results"]["text:most_tiny_mc"]
    assert res == {"status": "not supported", "capability": "score_text"}


def test_optional_llm_judge_scorer_for_spoken_qa(tmp_path):
    """The QA LLM-judge path: verdicts equal the judge's own yes/no log-probability comparison."""
    model_dir = tmp_path / "lm"
    model_dir.mkdir()
    _tiny_lm(model_dir)
    pre = tmp_path / "pre"
    pre.mkdir()
    answers = {"1": "paris", "2": "eight legs", "3": "mars", "4": "blue sky"}
    (pre / "sqa_llama-questions-s2t.jsonl").write_text(
        "".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in answers.items()))
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "precomputed", "--model-args", f"dir={pre}", "--tasks",
                   "sqa:llama-questions-s2t", "--task-args", f"scorer=llm-judge,judge_lm={model_dir}",
                   "--output", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((out / "results.json").read_text())["results"]["sqa:llama-questions-s2t"]
    assert res["scorer"] == "llm-judge:lm"
    records = read_jsonl(out / "samples" / "sqa_llama-questions-s2t.jsonl")

    from most_eval.registry import build_model
    from most_eval_tasks.sqa.llm_judge import PROMPT

    judge = build_model("hf-causal-lm", f"path={model_dir}")
    for r in records:
        prompt = PROMPT.format(question=r["question"], answers=" | ".join(r["answers"]), response=r["response"])
        (yes, _), (no, _) = judge.score_text([prompt, prompt], [" yes", " no"])
        assert r["correct"] == (1.0 if yes > no else 0.0)
        assert r["has_answer"] in (0.0, 1.0)
    assert res["accuracy"] == pytest.approx(100 * sum(r["correct"] for r in records) / 4)
