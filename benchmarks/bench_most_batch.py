"""Benchmark: the `most` adapter's utterances/s at batch 16 (one call with 16 items) vs batch 1 (16 calls of one).

    python benchmarks/bench_most_batch.py                         # both models, CPU (~5 min on 2 idle cores)
    python benchmarks/bench_most_batch.py --threads 1             # on a busy machine: stabler, often faster
    python benchmarks/bench_most_batch.py --models tiny --reps 3  # the bundled tiny checkpoint only (~1 min)
    python benchmarks/bench_most_batch.py --device cuda --out runs/bench_most_batch.json

Same process, same inputs, interleaved (batch 1 pass, batch 16 pass, repeated `--reps` times after one warm-up
call); each figure is the fastest pass (the least disturbed by other processes, as in bench_moe.py), every pass
time is in the JSON, with the load average at start and end. On a CPU shared with other processes, more than one
torch thread makes every small step wait for a busy core, which slows batch 1 (many small steps) most: there pass
`--threads 1`. Capabilities: `transcribe` and `score_audio` on 16 utterances of the mini suite's LibriSpeech
test-clean (most_eval/mini_suite/, read with soundfile; its 12 utterances taken in order and cycled to 16), and
`synthesize` on their 16 transcripts. Models:
- tiny: the bundled checkpoint (`MoSTModel()` with no checkpoint: reference_impl/checkpoints/tiny), adapter
  defaults except `dtype` (max_new_tokens 256, max_new_units 1500: it was trained to stop);
- mid: a random checkpoint folder built in a temp dir (benchmarks/_most_random_checkpoint.py): configs/most_full.json
  at hidden 512, 8 layers (layer 0 dense), 4 heads of DeepSeek-V2's head sizes, kv_lora_rank 128, 64 routed
  experts (32 text + 32 audio), top-6, 2 shared, moe_intermediate 352 (1408 * 512 / 2048), the full 102,400-token
  vocabulary, with HuBERT-base-sized speech input and a SpiritLM-sized vocoder. Random weights rarely emit a stop
  token, so every call runs its `--mid-new-tokens` / `--mid-new-units` decoding steps.
`dtype` defaults to float32 on CPU (bfloat16 matmuls are slow on most CPUs) and bfloat16 on CUDA.

"speedup" = batch-16 utt/s / batch-1 utt/s. "same" says whether the batch-16 outputs equal batch 1's (transcripts
identical; scores within 1e-3 relative and the same token counts; synthesized audio of the same length within 1e-3):
a batched adapter that changes outputs is not a faster adapter. Prints a table and writes `--out` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this file
from _most_random_checkpoint import build_random_checkpoint, most_config  # noqa: E402

from most_eval.core.audio import Audio  # noqa: E402
from most_reference.adapter import MoSTArgs, MoSTModel  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LIBRISPEECH = REPO / "most_eval" / "mini_suite" / "LibriSpeech" / "test-clean"
CAPABILITIES = ("transcribe", "score_audio", "synthesize")
MID = dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=128,
           intermediate_size=2736, moe_intermediate_size=352, n_routed_experts=64, num_text_experts=32,
           num_experts_per_tok=6, n_shared_experts=2)


def librispeech_items(n: int) -> tuple[list[Audio], list[str], list[str]]:
    """(audios, transcripts, ids): the mini suite's test-clean utterances in sorted order, cycled to n."""
    found = []
    for trans in sorted(LIBRISPEECH.rglob("*.trans.txt")):
        for line in trans.read_text().splitlines():
            uid, _, text = line.partition(" ")
            if uid:
                found.append((uid, text, trans.parent / f"{uid}.flac"))
    if not found:
        raise SystemExit(f"no LibriSpeech test-clean utterances under {LIBRISPEECH}")
    picked = [found[i % len(found)] for i in range(n)]
    audios = []
    for _, _, path in picked:
        samples, rate = sf.read(path, dtype="float32", always_2d=False)
        audios.append(Audio(samples, rate).resampled(16_000))
    return audios, [t for _, t, _ in picked], [u for u, _, _ in picked]


def same_outputs(capability: str, one: list, batched: list) -> bool:
    """Whether batch-16 outputs equal the batch-1 outputs (see the module docstring for the tolerances)."""
    if len(one) != len(batched):
        return False
    if capability == "transcribe":
        return one == batched
    if capability == "score_audio":
        return all(a.n_tokens == b.n_tokens and abs(a.total - b.total) <= 1e-3 * max(1.0, abs(a.total))
                   for a, b in zip(one, batched))
    return all(len(a.samples) == len(b.samples)
               and (len(a.samples) == 0 or float(np.abs(a.samples - b.samples).max()) <= 1e-3)
               for a, b in zip(one, batched))


def bench_model(name: str, model: MoSTModel, inputs: dict, reps: int, device: str) -> dict:
    """Interleaved batch-1 / batch-16 passes of every capability on `model`."""
    results = {}
    for capability in CAPABILITIES:
        items = inputs[capability]
        call = getattr(model, capability)

        def sync():
            if device.startswith("cuda"):
                torch.cuda.synchronize()

        entry = {"items": len(items), "batch1_s": [], "batch16_s": []}
        try:
            call(items[:2])  # warm-up: loads the lazily built parts (HuBERT, quantizer, vocoder)
            outputs = {}
            for _ in range(reps):
                for mode in ("batch1", "batch16"):
                    sync()
                    start = time.perf_counter()
                    out = [call([x])[0] for x in items] if mode == "batch1" else call(list(items))
                    sync()
                    entry[f"{mode}_s"].append(time.perf_counter() - start)
                    outputs[mode] = out
            for mode in ("batch1", "batch16"):
                entry[f"{mode}_utt_per_s"] = len(items) / min(entry[f"{mode}_s"])
            entry["speedup"] = entry["batch16_utt_per_s"] / entry["batch1_utt_per_s"]
            entry["same_outputs"] = same_outputs(capability, outputs["batch1"], outputs["batch16"])
            entry["status"] = "ok"
        except Exception as error:  # noqa: BLE001 - a failing capability is a result, the others still run
            entry.update(status="error", error=f"{type(error).__name__}: {str(error).strip()[:300]}")
        results[capability] = entry
        print(f"  {name:5} {capability:12} done", flush=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="bench_most_batch.json", help="JSON file to write")
    parser.add_argument("--models", default="tiny,mid", help="comma-separated: tiny, mid")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="adapter dtype (default: float32 on CPU, bfloat16 on CUDA)")
    parser.add_argument("--reps", type=int, default=2, help="interleaved batch-1 / batch-16 passes per capability")
    parser.add_argument("--items", type=int, default=16, help="utterances per pass (the batch size of 'batch 16')")
    parser.add_argument("--mid-layers", type=int, default=MID["num_hidden_layers"])
    parser.add_argument("--mid-parts", default="full", choices=("full", "tiny"),
                        help="HuBERT / vocoder size of the mid checkpoint (_most_random_checkpoint.SIZES)")
    parser.add_argument("--mid-new-tokens", type=int, default=16, help="mid: max_new_tokens (transcribe)")
    parser.add_argument("--mid-new-units", type=int, default=32, help="mid: max_new_units (synthesize)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    dtype = args.dtype or ("float32" if args.device == "cpu" else "bfloat16")

    audios, texts, ids = librispeech_items(args.items)
    inputs = {"transcribe": audios, "score_audio": audios, "synthesize": texts}
    report = {"benchmark": "bench_most_batch", "command": sys.argv, "device": args.device,
              "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu",
              "torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads(),
              "dtype": dtype, "reps": args.reps, "timing": "fastest of reps interleaved passes",
              "load_average_start": os.getloadavg()[0], "cpus": os.cpu_count(),
              "items": args.items, "utterance_ids": ids, "audio_s": sum(a.duration for a in audios), "models": {}}
    print(f"bench_most_batch: {args.items} items, {args.device} ({report['device_name']}), {dtype}, "
          f"{report['threads']} threads, torch {torch.__version__}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-most-batch-") as tmp:
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            start = time.perf_counter()
            if name == "tiny":
                model_args = MoSTArgs(dtype=dtype)
                info = {"checkpoint": "bundled tiny (reference_impl/checkpoints/tiny)"}
            elif name == "mid":
                config = most_config("most_full.json", **{**MID, "num_hidden_layers": args.mid_layers})
                path = build_random_checkpoint(Path(tmp) / "mid", config, size=args.mid_parts,
                                               dtype=getattr(torch, dtype), device=args.device)
                model_args = MoSTArgs(checkpoint=str(path), dtype=dtype, max_new_tokens=args.mid_new_tokens,
                                      max_new_units=args.mid_new_units, allow_untrained=True)
                info = {"checkpoint": "random (built in a temp dir)", "overrides": {**MID, "num_hidden_layers": args.mid_layers},
                        "parts": args.mid_parts}
            else:
                raise SystemExit(f"unknown model {name!r} (tiny, mid)")
            model = MoSTModel(model_args, device=args.device)
            info.update(args={k: getattr(model.args, k) for k in ("dtype", "max_new_tokens", "max_new_units")},
                        parameters=sum(p.numel() for p in model.lm.parameters()), setup_s=time.perf_counter() - start)
            info["capabilities"] = bench_model(name, model, inputs, args.reps, args.device)
            report["models"][name] = info
            del model

    report["load_average_end"] = os.getloadavg()[0]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\n{'model':5} {'capability':12} {'batch 1 utt/s':>14} {'batch 16 utt/s':>15} {'speedup':>8} {'same':>5}")
    for name, info in report["models"].items():
        for capability, e in info["capabilities"].items():
            if e["status"] != "ok":
                print(f"{name:5} {capability:12} error: {e['error']}")
                continue
            print(f"{name:5} {capability:12} {e['batch1_utt_per_s']:>14.2f} {e['batch16_utt_per_s']:>15.2f} "
                  f"{e['speedup']:>7.2f}x {'yes' if e['same_outputs'] else 'NO':>5}")
    print(f"\nfastest of {args.reps} interleaved passes of {args.items} items; wrote {out}")
    load = max(report["load_average_start"], report["load_average_end"])
    if args.device == "cpu" and report["threads"] > 1 and load > (os.cpu_count() or 1):
        print(f"note: load average {load:.1f} on {os.cpu_count()} CPUs: other processes share the cores; with more "
              f"than one torch thread, the many small steps of batch 1 suffer most (try --threads 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
