"""``--model openai-api`` against real vLLM servers (CPU, tiny random-weight models built here): served outputs
equal the same weights in process — Whisper transcripts (hf-whisper), Qwen2-Audio spoken-QA answers (hf-audio-lm),
Qwen2 log-likelihoods and lm-eval task results (hf-causal-lm) — and the server's own facts reach results.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import MINI_SUITE, TEXT_TASKS, read_jsonl, run_cli
from tiny_models import served_qwen2, served_qwen2_audio, served_whisper
from vllm_server import VLLMServer, require_vllm, serving

pytestmark = [pytest.mark.served, pytest.mark.slow]

#: the served windows: Whisper's decoder holds 4 prompt tokens + 36 of transcript; Qwen2 scores 64-token windows
WHISPER_LEN, WHISPER_NEW = 40, 36
QWEN2_LEN, QWEN2_WINDOW = 66, 64
ANSWER_TOKENS = 12


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Whisper, Qwen2 and Qwen2-Audio, each served by its own ``vllm serve``, started together."""
    exe = require_vllm()
    root = tmp_path_factory.mktemp("served")
    specs = [VLLMServer(served_whisper(root / "whisper"), "tiny-whisper", WHISPER_LEN, root / "whisper.log",
                        ("--max-num-batched-tokens", "2048")),  # one audio item is 1500 encoder tokens
             VLLMServer(served_qwen2(root / "qwen2"), "tiny-qwen2", QWEN2_LEN, root / "qwen2.log"),
             VLLMServer(served_qwen2_audio(root / "qwen2-audio"), "tiny-qwen2-audio", 2048, root / "qwen2-audio.log")]
    with serving(specs, exe):
        yield {s.name: s for s in specs}


def _run(out, model: str, args: str, *tasks: str, extra=()):
    return run_cli("run", "--model", model, "--model-args", args, "--tasks", ",".join(tasks), "--data-root",
                   str(MINI_SUITE), "--output", str(out), "--no-progress", *extra, timeout=600)


def _served_and_local(tmp_path, task: str, served_args: str, local_model: str, local_args: str):
    """The same task run over HTTP (``openai-api``) and in process: both output folders and their sample records
    by id."""
    served, local = tmp_path / "served", tmp_path / "local"
    for out, model, args in ((served, "openai-api", served_args), (local, local_model, local_args)):
        proc = _run(out, model, args, task)
        assert proc.returncode == 0, proc.stderr[-3000:]
    name = task.replace(":", "_") + ".jsonl"
    records = [{r["id"]: r for r in read_jsonl(out / "samples" / name)} for out in (served, local)]
    return served, local, records[0], records[1]


def test_served_whisper_transcribes_as_the_same_weights_in_process(servers, tmp_path):
    whisper = servers["tiny-whisper"]
    served, local, ours, theirs = _served_and_local(
        tmp_path, "asr:librispeech-test-clean", f"base_url={whisper.url},model=tiny-whisper,language=en",
        "hf-whisper", f"path={whisper.folder},max_new_tokens={WHISPER_NEW}")
    assert ours.keys() == theirs.keys() and len(ours) >= 3
    assert all("error" not in r for r in ours.values())
    assert {k: r["hyp_raw"] for k, r in ours.items()} == {k: r["hyp_raw"] for k, r in theirs.items()}
    assert len({r["hyp_raw"] for r in ours.values()}) > 1  # the transcripts depend on the audio
    document = json.loads((served / "results.json").read_text())
    a = document["results"]["asr:librispeech-test-clean"]
    b = json.loads((local / "results.json").read_text())["results"]["asr:librispeech-test-clean"]
    assert (a["wer"], a["scored"], a["errors"]) == (b["wer"], b["scored"], 0) and a["scored"] >= 3
    facts = document["model"]["facts"]  # the server's own account
    assert facts["served_model"] == "tiny-whisper" and facts["max_model_len"] == WHISPER_LEN
    assert facts["root"] == str(whisper.folder) and facts["server_version"].startswith("0.32")


def test_served_qwen2_audio_answers_spoken_questions_as_in_process(servers, tmp_path):
    audio_lm = servers["tiny-qwen2-audio"]
    _, _, served, local = _served_and_local(
        tmp_path, "sqa:llama-questions-s2t", f"base_url={audio_lm.url},model=tiny-qwen2-audio,max_tokens={ANSWER_TOKENS}",
        "hf-audio-lm", f"path={audio_lm.folder},max_new_tokens={ANSWER_TOKENS}")
    ours = {k: r["response"] for k, r in served.items()}
    assert ours == {k: r["response"] for k, r in local.items()} and len(ours) == 4
    assert len(set(ours.values())) > 1 and all(len(a) == ANSWER_TOKENS for a in ours.values())


def test_served_log_likelihoods_and_generations_equal_in_process(servers):
    from most_eval.registry import build_model

    qwen2 = servers["tiny-qwen2"]
    served = build_model("openai-api", f"base_url={qwen2.url},model=tiny-qwen2,tokenizer={qwen2.folder}")
    local = build_model("hf-causal-lm", f"path={qwen2.folder},max_length={QWEN2_WINDOW}")
    assert served.max_length == QWEN2_WINDOW  # the server's max_model_len less 2
    contexts = ["The capital of France is", "", "Question: 2+2=\nAnswer:", "x" * 90]
    continuations = [" Paris", "hello world", " 4", " the end"]  # the last context is cut to the window
    ours, theirs = served.score_text(contexts, continuations), local.score_text(contexts, continuations)
    for (lp, greedy), (ref, ref_greedy) in zip(ours, theirs):
        assert lp == pytest.approx(ref, abs=1e-4) and greedy == ref_greedy
    # a continuation that is the model's own greedy answer is greedy on both sides
    said = local.generate_text(["the sky is"], [[]], 6)[0]
    assert served.generate_text(["the sky is"], [[]], 6) == [said] and said
    assert served.score_text(["the sky is"], [said])[0][1] is True
    assert served.generate_text(["the sky is"], [[said[2:4]]], 6) == [said[:said.index(said[2:4])]]


@pytest.mark.parametrize("task", ["most_tiny_mc", "most_tiny_ppl"])
def test_a_text_task_over_http_equals_in_process(servers, tmp_path, task):
    """lm-eval tasks through the bridge: multiple choice, and rolling-window perplexity over windows of 64 tokens."""
    qwen2 = servers["tiny-qwen2"]
    results = {}
    for name, model, args in (("served", "openai-api", f"base_url={qwen2.url},model=tiny-qwen2,tokenizer={qwen2.folder}"),
                              ("local", "hf-causal-lm", f"path={qwen2.folder},max_length={QWEN2_WINDOW}")):
        out = tmp_path / name
        proc = subprocess.run([sys.executable, "-m", "most_eval", "run", "--model", model, "--model-args", args,
                               "--tasks", f"text:{task}", "--task-args", f"include_path={TEXT_TASKS}", "--output",
                               str(out), "--no-progress"], cwd=TEXT_TASKS, capture_output=True, text=True,
                              timeout=600, env={**os.environ, "HF_DATASETS_OFFLINE": "1"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[name] = json.loads((out / "results.json").read_text())["results"][f"text:{task}"]
    numbers = [k for k, v in results["local"].items() if isinstance(v, float) and k not in ("seconds",)]
    assert numbers
    for key in numbers:
        assert results["served"][key] == pytest.approx(results["local"][key], rel=1e-5), key


def test_a_model_the_server_does_not_list_exits_2_naming_the_ones_it_does(servers, tmp_path):
    qwen2 = servers["tiny-qwen2"]
    proc = _run(tmp_path / "out", "openai-api", f"base_url={qwen2.url},model=tiny-qwen3", "asr:librispeech-test-clean")
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "does not serve model 'tiny-qwen3'" in lines[0] and "tiny-qwen2" in lines[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "out" / "results.json").exists()


def test_spoken_lm_scoring_is_not_offered_over_http_and_says_so(servers, tmp_path):
    """vLLM takes speech as continuous embeddings: its prompt log-probabilities of a chat with audio are those of the
    repeated audio placeholder, so sWUGGY cannot be scored through it and the run says "not supported"."""
    audio_lm = servers["tiny-qwen2-audio"]
    out = tmp_path / "out"
    proc = _run(out, "openai-api", f"base_url={audio_lm.url},model=tiny-qwen2-audio", "slm:swuggy-dev")
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())["results"]["slm:swuggy-dev"]
    assert res == {"status": "not supported", "capability": "score_audio"}
