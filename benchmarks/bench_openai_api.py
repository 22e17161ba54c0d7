"""``openai-api`` against a real vLLM server: concurrency 1 vs 8, and served vs in-process on the same weights.

    python benchmarks/bench_openai_api.py [--utterances 32] [--pairs 64] [--repeats 2]

Needs vLLM's venv (``bash install.sh --serve``; ``$MOST_EVAL_VLLM_VENV`` names another). It builds the tiny
random-weight Whisper and Qwen2 of the served tests (``tests/tiny_models.py``), starts one ``vllm serve`` each on
127.0.0.1 (CPU, float32, ``--enforce-eager``, ``--max-num-seqs 4``) and times, best of ``--repeats``:

* transcription: ``--utterances`` 16 kHz clips of the mini suite's LibriSpeech through ``openai-api`` at
  concurrency 1 and 8, and through ``hf-whisper`` in process on the same folder (all clips in one batch);
* text scoring: ``--pairs`` (context, continuation) pairs through ``openai-api`` ``score_text`` at concurrency 1 and
  8, and through ``hf-causal-lm`` in process (``batch_size=8``).

Prints items/s for each and the ratios. Tiny models make the per-request overhead (HTTP, WAV encoding, vLLM's
scheduling) the dominant cost, so the served/in-process ratio here is a floor for what a real model shows, where
the forward pass dominates and vLLM's batching pays.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from tiny_models import served_qwen2, served_whisper  # noqa: E402
from vllm_server import VLLMServer, serving, vllm_venv  # noqa: E402

from most_eval.core.audio import load_audio  # noqa: E402
from most_eval.registry import build_model  # noqa: E402

WHISPER_LEN, QWEN2_LEN = 40, 66


def best(fn, repeats: int) -> tuple[float, object]:
    """(fastest seconds, last result) of ``fn()`` over ``repeats`` runs."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utterances", type=int, default=32)
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    exe = vllm_venv() / "bin" / "vllm"
    if not exe.exists():
        sys.exit(f"bench_openai_api: vLLM's venv is absent ({exe}): bash install.sh --serve")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        servers = [VLLMServer(served_whisper(root / "whisper"), "whisper", WHISPER_LEN, root / "whisper.log",
                              ("--max-num-batched-tokens", "2048")),
                   VLLMServer(served_qwen2(root / "qwen2"), "qwen2", QWEN2_LEN, root / "qwen2.log")]
        with serving(servers, exe):
            whisper, qwen2 = servers
            clips = sorted((REPO / "most_eval" / "mini_suite" / "LibriSpeech").rglob("*.flac"))
            audios = [load_audio(clips[i % len(clips)], 16000) for i in range(a.utterances)]
            rows = []
            local = build_model("hf-whisper", f"path={whisper.folder},max_new_tokens={WHISPER_LEN - 4}")
            seconds, reference = best(lambda: local.transcribe(audios), a.repeats)
            rows.append(("transcribe", "in process (hf-whisper, one batch)", seconds, a.utterances))
            for concurrency in (1, 8):
                served = build_model("openai-api", f"base_url={whisper.url},model=whisper,language=en,"
                                                   f"concurrency={concurrency}")
                seconds, out = best(lambda: served.transcribe(audios), a.repeats)
                assert out == reference, "served transcripts differ from in-process ones"
                rows.append(("transcribe", f"served, concurrency {concurrency}", seconds, a.utterances))
            contexts = [f"question {i}: the sky is" for i in range(a.pairs)]
            continuations = [" blue" if i % 2 else " green and wide" for i in range(a.pairs)]
            local = build_model("hf-causal-lm", f"path={qwen2.folder},max_length={QWEN2_LEN - 2},batch_size=8")
            seconds, reference = best(lambda: local.score_text(contexts, continuations), a.repeats)
            rows.append(("score_text", "in process (hf-causal-lm, batch 8)", seconds, a.pairs))
            for concurrency in (1, 8):
                served = build_model("openai-api", f"base_url={qwen2.url},model=qwen2,tokenizer={qwen2.folder},"
                                                   f"concurrency={concurrency}")
                seconds, out = best(lambda: served.score_text(contexts, continuations), a.repeats)
                assert all(abs(x[0] - y[0]) < 1e-4 for x, y in zip(out, reference)), "served scores differ"
                rows.append(("score_text", f"served, concurrency {concurrency}", seconds, a.pairs))
    print(f"vLLM server: {exe} (CPU), tiny random-weight models; best of {a.repeats}")
    rate = {}
    for capability, how, seconds, n in rows:
        rate[(capability, how)] = n / seconds
        print(f"{capability:11s} {how:38s} {n:4d} items {seconds:8.3f} s {n / seconds:9.1f} items/s")
    for capability, local_how in (("transcribe", "in process (hf-whisper, one batch)"),
                                  ("score_text", "in process (hf-causal-lm, batch 8)")):
        c1, c8 = rate[(capability, "served, concurrency 1")], rate[(capability, "served, concurrency 8")]
        print(f"{capability}: concurrency 8 / 1 = {c8 / c1:.2f}x; served (concurrency 8) / in process = "
              f"{c8 / rate[(capability, local_how)]:.2f}x")


if __name__ == "__main__":
    main()
