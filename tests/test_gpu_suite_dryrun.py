"""benchmarks/gpu_suite.sh --dry-run: the GPU suite's code end to end at tiny sizes on CPU, and its JSON's values."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KERNELS = {"eager", "batched_mm", "grouped_mm"}


def positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gpu_suite") / "nested" / "suite.json"
    proc = subprocess.run(["bash", "benchmarks/gpu_suite.sh", "--dry-run", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"wrote {out}" in proc.stdout
    return json.loads(out.read_text())


def test_header_and_environment(report):
    assert report["dry_run"] is True and report["dtype"] == "float32"
    assert report["errors"] == []
    env = report["environment"]
    assert env["device"] == "cpu"
    assert env["torch"] and env["transformers"] and env["python"]
    assert env["peak_bf16_flops"] is None  # no GPU: no peak, so no MFU
    assert positive(report["wall_s"]) and report["wall_s"] < 300
    assert set(report["sections"]) == {"moe_layer", "train_step", "asr_rtf"}
    for section in report["sections"].values():
        assert section["status"] == "ok" and positive(section["wall_s"])


def test_moe_layer_every_kernel_at_every_size(report):
    moe = report["sections"]["moe_layer"]
    cfg = moe["config"]
    assert (cfg["hidden_size"], cfg["n_routed_experts"]) == (64, 8)  # the tiny layer, not the full one
    assert moe["dtype"] == "float32" and positive(moe["parameters"])
    cases = moe["cases"]
    assert {(c["tokens"], c["kernel"]) for c in cases} == {(t, k) for t in (64, 256) for k in KERNELS}
    for c in cases:
        assert c["status"] == "ok" and c["error"] is None, c
        assert len(c["step_s"]) == moe["reps"] and all(positive(t) for t in c["step_s"])
        assert min(c["step_s"]) <= c["step_s_median"] <= max(c["step_s"])
        assert c["tokens_per_s"] == pytest.approx(c["tokens"] / c["step_s_median"])
        h, i, e, k, s = (cfg[n] for n in ("hidden_size", "moe_intermediate_size", "n_routed_experts",
                                          "num_experts_per_tok", "n_shared_experts"))
        flops = 3 * c["tokens"] * (2 * h * e + (k + s) * 6 * h * i)
        assert c["tflops"] == pytest.approx(flops / c["step_s_median"] / 1e12)
        assert c["peak_mem_bytes"] is None  # not tracked on CPU


def test_train_step_throughput_and_flops(report):
    train = report["sections"]["train_step"]
    cfg = train["config"]
    assert cfg["num_hidden_layers"] == 3 and cfg["hidden_size"] == 64
    assert train["tokens_per_step"] == train["batch"] * train["seq_len"]
    assert 0 < train["parameters_active"] < train["parameters_total"]  # routed experts count top_k / E
    qk = cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]
    attention = 6 * cfg["num_hidden_layers"] * train["seq_len"] * cfg["num_attention_heads"] * (qk + cfg["v_head_dim"])
    assert train["attention_flops_per_token"] == attention
    assert train["flops_per_token"] == 6 * train["parameters_active"] + attention
    (run,) = train["runs"]
    assert run["precision"] == "fp32" and run["status"] == "ok" and run["weights_dtype"] == "float32"
    assert positive(run["tokens_per_s"]) and positive(run["step_s_median"]) and positive(run["build_s"])
    assert run["tokens_per_s"] == pytest.approx(train["tokens_per_step"] / run["step_s_median"])
    assert run["model_tflops"] == pytest.approx(train["flops_per_token"] * run["tokens_per_s"] / 1e12)
    assert run["mfu"] is None
    # a random LM over a 128-token vocabulary starts near ln(128) and AdamW moves it
    assert positive(run["loss_first"]) and abs(run["loss_first"] - math.log(cfg["vocab_size"])) < 1.0
    assert positive(run["loss_last"]) and run["loss_last"] != run["loss_first"]


def test_asr_rtf_batch_1_and_16(report):
    asr = report["sections"]["asr_rtf"]
    assert asr["utterances"] == 16 and positive(asr["seconds_per_utterance"])
    assert positive(asr["checkpoint_build_s"]) and positive(asr["load_s"]) and positive(asr["checkpoint_bytes"])
    runs = {r["batch"]: r for r in asr["runs"]}
    assert set(runs) == {1, 16}
    audio_s = asr["utterances"] * asr["seconds_per_utterance"]
    for batch, r in runs.items():
        assert r["status"] == "ok", r
        assert r["audio_s"] == pytest.approx(audio_s, rel=1e-3)
        assert positive(r["rtf"]) and r["rtf"] == pytest.approx(r["compute_s_median"] / r["audio_s"])
        assert r["utterances_per_s"] == pytest.approx(asr["utterances"] / r["compute_s_median"])
        assert r["transcribe_calls_per_pass"] == asr["utterances"] // batch
        assert r["generate_calls_per_pass"] >= 1
        for call in r["generate_calls"]:
            assert 1 <= call["rows"] <= batch and 0 <= call["new_tokens"] <= asr["max_new_tokens"]
        assert sum(c["rows"] for c in r["generate_calls"]) == asr["utterances"]


def test_no_gpu_without_dry_run_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    proc = subprocess.run([sys.executable, "benchmarks/gpu_suite.py", "--out", str(tmp_path / "x.json")], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--dry-run" in proc.stderr
    assert not (tmp_path / "x.json").exists()
