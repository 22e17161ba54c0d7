"""GPU suite: MoST's MoE layer, a training step and batched ASR on one GPU, written to one JSON file.

    bash benchmarks/gpu_suite.sh [--out gpu_suite.json]        # one GPU, <= 8 minutes after install.sh
    bash benchmarks/gpu_suite.sh --dry-run --out /tmp/x.json   # tiny sizes, CPU, float32, < 60 s (CI)
    python benchmarks/gpu_suite.py --help                      # every size / repeat option

Three sections, each timed as `warmup` untimed steps, then the median of `reps` timed steps (every timed step
synchronises the device; all step times are in the JSON). A section or case that fails is recorded with its error
(`status: "error"`), never a crash; a section that would start after `--budget-s` is recorded as skipped.

1. `moe_layer`: one MoST MoE layer of configs/most_full.json (hidden 2048, 64 routed experts = 32 text + 32 audio,
   top-6, 2 shared experts, moe_intermediate 1408), bf16 weights, training mode (router + routed + shared experts +
   balance loss), forward + backward (input gradient included) for each experts kernel (eager / batched_mm /
   grouped_mm) at each token count (default 64, 256, 16384); tokens alternate text/audio in spans of 64. Records
   tokens/s, achieved TFLOP/s (3 x forward FLOPs: tokens * (2*H*E + (top_k + shared) * 6*H*I)) and peak GPU
   memory (allocated, including the layer's weights and gradients). batched_mm copies one expert weight matrix
   per (token, expert) pair, forward and backward; where that estimate (3 * tokens * top_k * 3*H*I * bytes)
   exceeds `--max-gather-gb` (default 0.8 of the GPU's memory) the case is recorded as skipped, not attempted.
2. `train_step`: MoSTForCausalLM of configs/most_full.json at full width with `--train-layers` layers (default 4:
   layer 0 dense, the rest MoE), random init, a mixed text/unit-token batch (default 8 x 2048); one step =
   forward + backward + gradient clipping (1.0) + AdamW step + zero_grad. Precisions: `bf16` (bf16 weights, AdamW
   states in bf16) and `amp_bf16` (fp32 weights + torch.autocast bf16, what train.py does on GPUs; transformers'
   grouped_mm casts its input to the weights' dtype, so there the routed experts run in fp32). MFU = model FLOPs/s
   / peak, with
       model FLOPs per token = 6 * N_active + 6 * L * T * n_heads * (qk_nope + qk_rope + v_head_dim)
   N_active = parameters a token multiplies with: all but the input embedding, routed experts counted top_k / E
   (so lm_head, attention, dense MLP, shared experts, routers count in full); the second term is the attention
   score and value matmuls over the full T x T matrix (PaLM's convention: causal masking not discounted), L layers,
   T = sequence length. Peak dense bf16 FLOP/s by device name: H100 SXM / H200 989.4e12, H100 NVL 835e12,
   H100 PCIe 756e12, A100 312e12 (NVIDIA datasheets, no sparsity); other devices: peak and MFU null. With few
   layers lm_head (2048 x 102400) dominates N_active, so this MFU is not the 27-layer model's.
3. `asr_rtf`: a random full-width checkpoint folder (most_full.json with `--asr-layers` layers, HuBERT-base-sized
   25 Hz encoder, SpiritLM-sized vocoder; benchmarks/_most_random_checkpoint.py) loaded by the `most` adapter
   (bf16), `transcribe` on `--asr-utts` synthetic waveforms of `--asr-seconds` s (noise) with max_new_tokens
   `--asr-new-tokens`: batch 1 = one transcribe call per utterance, batch N = one call with all of them. RTF =
   compute seconds / audio seconds for one pass over all utterances. `generate` calls and their new-token counts
   are recorded too (a random LM rarely emits EOS, so most calls run all max_new_tokens steps).

--dry-run: the same code at tiny sizes on CPU in float32 (configs/most_tiny.json: hidden 64, 8 experts, top-2;
3 layers; tiny HuBERT / vocoder; 1 s utterances), for CI (tests/test_gpu_suite_dryrun.py).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2Moe

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this file
from _most_random_checkpoint import build_random_checkpoint, most_config  # noqa: E402
from bench_moe import mixed_marks  # noqa: E402

from most_reference.model import MoSTForCausalLM, MoSTMoe, RoutingState  # noqa: E402

KERNELS = ("eager", "batched_mm", "grouped_mm")
REPO = Path(__file__).resolve().parents[1]

# Dense (no sparsity) bf16 tensor-core peak per GPU, NVIDIA datasheets; the first matching rule wins.
PEAK_BF16 = (
    (("H200",), 989.4e12, "H200 (SXM and NVL: 989.4 TFLOP/s dense bf16)"),
    (("H100", "NVL"), 835e12, "H100 NVL"),
    (("H100", "PCIE"), 756e12, "H100 PCIe"),
    (("H100",), 989.4e12, "H100 SXM"),
    (("A100",), 312e12, "A100 (SXM and PCIe)"),
)

FULL = dict(
    config="most_full.json", size="full", dtype="bfloat16",
    moe_tokens=[64, 256, 16384], moe_warmup=3, moe_reps=10,
    train_layers=4, train_batch=8, train_seq=2048, train_precisions=["bf16", "amp_bf16"], train_warmup=2,
    train_reps=8,
    asr_layers=4, asr_utts=16, asr_seconds=10.0, asr_new_tokens=16, asr_batches=[1, 16], asr_warmup=1, asr_reps=3,
)
DRY = dict(
    config="most_tiny.json", size="tiny", dtype="float32",
    moe_tokens=[64, 256], moe_warmup=1, moe_reps=3,
    train_layers=3, train_batch=2, train_seq=64, train_precisions=["fp32"], train_warmup=1, train_reps=3,
    asr_layers=3, asr_utts=16, asr_seconds=1.0, asr_new_tokens=4, asr_batches=[1, 16], asr_warmup=1, asr_reps=2,
)


# ---------------------------------------------------------------------------------------------------------------
# small helpers


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_steps(step, warmup: int, reps: int, device: str) -> list[float]:
    """Seconds of `reps` calls of `step` after `warmup` untimed ones; the device is synchronised around each."""
    for _ in range(warmup):
        step()
    sync(device)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_bytes(device: str) -> int | None:
    """Peak allocated device memory since the last reset; None on CPU (not tracked)."""
    return int(torch.cuda.max_memory_allocated()) if device.startswith("cuda") else None


def free_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def error_text(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:500] if lines else ''}"


def dtype_of(name: str) -> torch.dtype:
    return {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32,
            "float16": torch.float16}[name]


def peak_bf16_flops(device_name: str | None) -> tuple[float | None, str | None]:
    """(peak dense bf16 FLOP/s, which rule matched) for an NVIDIA device name; (None, None) when unknown."""
    if not device_name:
        return None, None
    upper = device_name.upper()
    for needles, flops, label in PEAK_BF16:
        if all(n in upper for n in needles):
            return flops, label
    return None, None


def environment(device: str) -> dict:
    info = {
        "device": device, "device_name": None, "capability": None, "gpu_memory_bytes": None,
        "torch": torch.__version__, "transformers": transformers.__version__, "cuda": torch.version.cuda,
        "python": platform.python_version(), "platform": platform.platform(), "cpu_threads": torch.get_num_threads(),
        "git_revision": None,
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        info.update(device_name=torch.cuda.get_device_name(device), capability=list(torch.cuda.get_device_capability(device)),
                    gpu_memory_bytes=int(props.total_memory))
    else:
        info["device_name"] = platform.processor() or "cpu"
    try:
        info["git_revision"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    peak, label = peak_bf16_flops(info["device_name"]) if device.startswith("cuda") else (None, None)
    info["peak_bf16_flops"], info["peak_bf16_source"] = peak, label
    return info


def config_summary(config) -> dict:
    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "moe_intermediate_size",
            "n_routed_experts", "num_text_experts", "num_experts_per_tok", "n_shared_experts", "first_k_dense_replace",
            "vocab_size", "kv_lora_rank", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
    return {k: getattr(config, k) for k in keys}


# ---------------------------------------------------------------------------------------------------------------
# 1. MoE layer


def moe_layer_flops(config, n_tokens: int) -> float:
    """Forward + backward FLOPs of one MoE layer: 3 x (router + (top_k + shared) gate/up/down GEMMs)."""
    h, i = config.hidden_size, config.moe_intermediate_size
    forward = n_tokens * (2 * h * config.n_routed_experts + (config.num_experts_per_tok + config.n_shared_experts) * 6 * h * i)
    return 3.0 * forward


def batched_mm_gather_gb(config, n_tokens: int, dtype: torch.dtype) -> float:
    """GB that batched_mm's per-pair weight copies need, forward (kept for backward) + their gradients + slack."""
    per_pair = 3 * config.hidden_size * config.moe_intermediate_size * torch.finfo(dtype).bits // 8
    return 3 * n_tokens * config.num_experts_per_tok * per_pair / 1e9


def bench_moe_layer(args, device: str) -> dict:
    config = most_config(args.config)
    dtype = dtype_of(args.dtype)
    torch.manual_seed(0)
    with torch.device(device):
        deepseek = DeepseekV2Moe(config)
    with torch.no_grad():
        for p in deepseek.parameters():
            p.normal_(0, 0.02)
    state = RoutingState()
    layer = MoSTMoe.from_deepseek(deepseek, config, state).to(dtype).train()
    del deepseek
    params = sum(p.numel() for p in layer.parameters())
    result = {"config": config_summary(config), "dtype": str(dtype).removeprefix("torch."), "parameters": params,
              "warmup": args.moe_warmup, "reps": args.moe_reps, "max_gather_gb": args.max_gather_gb,
              "flops_formula": "3 * tokens * (2*H*E + (top_k + n_shared) * 6*H*I)", "cases": []}
    for n_tokens in args.moe_tokens:
        torch.manual_seed(1)
        x = torch.randn(1, n_tokens, config.hidden_size, device=device, dtype=dtype, requires_grad=True)
        grad_out = torch.randn_like(x)
        marks = mixed_marks(n_tokens).to(device)
        for kernel in KERNELS:
            case = {"tokens": n_tokens, "kernel": kernel, "status": "ok", "error": None}
            gather = batched_mm_gather_gb(config, n_tokens, dtype)
            if kernel == "batched_mm" and gather > args.max_gather_gb:
                case.update(status="skipped", error=f"batched_mm would copy ~{gather:.1f} GB of expert weights "
                                                    f"(> --max-gather-gb {args.max_gather_gb:.1f})")
                result["cases"].append(case)
                continue
            config._experts_implementation_internal = kernel

            def step():
                state.marks, state.aux_losses = marks, []
                layer.zero_grad(set_to_none=True)
                x.grad = None
                out = layer(x)
                torch.autograd.backward([out, torch.stack(state.aux_losses).sum()],
                                        [grad_out, torch.ones((), device=device)])

            try:
                free_memory(device)
                reset_peak(device)
                times = timed_steps(step, args.moe_warmup, args.moe_reps, device)
                median = statistics.median(times)
                case.update(step_s_median=median, step_s=times, tokens_per_s=n_tokens / median,
                            tflops=moe_layer_flops(config, n_tokens) / median / 1e12, peak_mem_bytes=peak_bytes(device))
            except Exception as error:  # noqa: BLE001 - an OOM or unsupported kernel is a result, not a crash
                case.update(status="error", error=error_text(error))
            finally:
                layer.zero_grad(set_to_none=True)
                state.aux_losses = []
                free_memory(device)
            result["cases"].append(case)
        x = grad_out = None  # free before the next size
    layer = None
    free_memory(device)
    return result


# ---------------------------------------------------------------------------------------------------------------
# 2. training step


def active_parameters(model: MoSTForCausalLM) -> tuple[int, int]:
    """(total parameters, parameters one token multiplies with: no input embedding, routed experts x top_k / E)."""
    cfg = model.config
    total = active = 0
    embed = model.get_input_embeddings().weight
    for name, p in model.named_parameters():
        total += p.numel()
        if p is embed:
            continue
        if ".mlp.experts." in name:  # 3-D routed expert weights (E, ., .)
            active += p.numel() * cfg.num_experts_per_tok // cfg.n_routed_experts
        else:
            active += p.numel()
    return total, active


def attention_flops_per_token(config, seq_len: int) -> int:
    """Forward + backward FLOPs per token of the score and value matmuls (full T x T, PaLM's convention)."""
    qk = config.qk_nope_head_dim + config.qk_rope_head_dim
    return 6 * config.num_hidden_layers * seq_len * config.num_attention_heads * (qk + config.v_head_dim)


def mixed_batch(config, batch: int, seq: int, device: str) -> torch.Tensor:
    """(batch, seq) ids: spans of 64 alternating text ids and HuBERT unit ids (both routing groups in use)."""
    g = torch.Generator().manual_seed(0)
    first_audio = config.audio_token_range[0]
    text = torch.randint(3, min(first_audio, config.vocab_size), (batch, seq), generator=g)
    units = torch.randint(config.unit_token_offset, config.unit_token_offset + config.num_units, (batch, seq), generator=g)
    audio = mixed_marks(seq).expand(batch, seq).bool()
    return torch.where(audio, units, text).to(device)


def bench_train_step(args, device: str, peak_flops: float | None) -> dict:
    config = most_config(args.config, num_hidden_layers=args.train_layers, use_cache=False)
    if args.train_kernel:
        config._experts_implementation = args.train_kernel
    ids = mixed_batch(config, args.train_batch, args.train_seq, device)
    tokens = ids.numel()
    result = {"config": config_summary(config), "batch": args.train_batch, "seq_len": args.train_seq,
              "tokens_per_step": tokens, "warmup": args.train_warmup, "reps": args.train_reps,
              "step": "forward + backward (LM loss + balance loss) + clip_grad_norm_(1.0) + AdamW(lr 1e-4) + zero_grad",
              "flops_formula": "6 * N_active + 6 * L * T * n_heads * (qk_nope + qk_rope + v_head_dim) per token; "
                               "N_active excludes the input embedding and counts routed experts x top_k / E",
              "peak_flops": peak_flops, "runs": []}
    for precision in args.train_precisions:
        run = {"precision": precision, "status": "ok", "error": None}
        model = optimizer = None
        try:
            free_memory(device)
            torch.manual_seed(0)
            start = time.perf_counter()
            with torch.device(device):
                model = MoSTForCausalLM(config)
            if precision == "bf16":
                model.to(torch.bfloat16)
            elif precision not in ("amp_bf16", "fp32"):
                raise ValueError(f"unknown precision {precision!r} (bf16, amp_bf16, fp32)")
            model.train()
            sync(device)
            run["build_s"] = time.perf_counter() - start
            total, active = active_parameters(model)
            per_token = 6 * active + attention_flops_per_token(config, args.train_seq)
            result.update(parameters_total=total, parameters_active=active, flops_per_token=per_token,
                          attention_flops_per_token=attention_flops_per_token(config, args.train_seq))
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.startswith("cuda"))
            autocast = precision == "amp_bf16"
            losses = []

            def step():
                with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=autocast):
                    out = model(input_ids=ids, labels=ids)
                out.loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(out.loss.detach())

            reset_peak(device)
            times = timed_steps(step, args.train_warmup, args.train_reps, device)
            median = statistics.median(times)
            tokens_per_s = tokens / median
            run.update(step_s_median=median, step_s=times, tokens_per_s=tokens_per_s,
                       model_tflops=per_token * tokens_per_s / 1e12,
                       mfu=per_token * tokens_per_s / peak_flops if peak_flops and precision != "fp32" else None,
                       peak_mem_bytes=peak_bytes(device), loss_first=float(losses[0]), loss_last=float(losses[-1]),
                       experts_kernel=model.config._experts_implementation,
                       attn_implementation=model.config._attn_implementation,
                       weights_dtype=str(next(model.parameters()).dtype).removeprefix("torch."))
        except Exception as error:  # noqa: BLE001
            run.update(status="error", error=error_text(error))
        finally:
            model = optimizer = None
            free_memory(device)
        result["runs"].append(run)
    return result


# ---------------------------------------------------------------------------------------------------------------
# 3. batched ASR real-time factor


def bench_asr(args, device: str, workdir: Path) -> dict:
    from most_eval.core.audio import Audio
    from most_reference.adapter import MoSTArgs, MoSTModel

    config = most_config(args.config, num_hidden_layers=args.asr_layers)
    result = {"config": config_summary(config), "dtype": args.dtype, "utterances": args.asr_utts,
              "seconds_per_utterance": args.asr_seconds, "max_new_tokens": args.asr_new_tokens,
              "warmup": args.asr_warmup, "reps": args.asr_reps, "runs": []}
    start = time.perf_counter()
    path = build_random_checkpoint(workdir / "most-random", config, size=args.size, dtype=dtype_of(args.dtype),
                                   device=device, seed=0)
    free_memory(device)
    result["checkpoint_build_s"] = time.perf_counter() - start
    result["checkpoint_bytes"] = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

    start = time.perf_counter()
    model = MoSTModel(MoSTArgs(checkpoint=str(path), dtype=args.dtype, max_new_tokens=args.asr_new_tokens,
                               allow_untrained=True), device=device)
    model.speech_encoder  # noqa: B018 - load HuBERT before timing
    sync(device)
    result["load_s"] = time.perf_counter() - start

    calls: list[dict] = []
    generate = model.lm.generate

    def counting_generate(*a, **kw):  # how the adapter batches: one record per generate call
        out = generate(*a, **kw)
        prompt = a[0] if a else kw.get("input_ids")
        try:
            calls.append({"rows": int(out.shape[0]), "new_tokens": int(out.shape[1] - prompt.shape[1])})
        except (AttributeError, IndexError):
            calls.append({"rows": None, "new_tokens": None})
        return out

    model.lm.generate = counting_generate
    rng = np.random.default_rng(0)
    n = int(round(args.asr_seconds * 16_000))
    audios = [Audio((0.1 * rng.standard_normal(n)).astype(np.float32), 16_000) for _ in range(args.asr_utts)]
    audio_s = sum(a.duration for a in audios)
    for batch in args.asr_batches:
        run = {"batch": batch, "status": "ok", "error": None}
        chunks = [audios[i:i + batch] for i in range(0, len(audios), batch)]

        def one_pass():
            for chunk in chunks:
                texts = model.transcribe(chunk)
                assert len(texts) == len(chunk) and all(isinstance(t, str) for t in texts)

        try:
            reset_peak(device)
            for _ in range(args.asr_warmup):
                one_pass()
            calls.clear()
            times = timed_steps(one_pass, 0, args.asr_reps, device)
            median = statistics.median(times)
            per_pass = calls[:len(calls) // max(1, args.asr_reps)]
            run.update(transcribe_calls_per_pass=len(chunks), compute_s_median=median, compute_s=times,
                       audio_s=audio_s, rtf=median / audio_s, utterances_per_s=len(audios) / median,
                       generate_calls_per_pass=len(per_pass), generate_calls=per_pass,
                       peak_mem_bytes=peak_bytes(device))
        except Exception as error:  # noqa: BLE001
            run.update(status="error", error=error_text(error))
        result["runs"].append(run)
    result["experts_kernel_last_step"] = model.lm.config._experts_implementation  # the auto choice of a decode step
    model = None
    free_memory(device)
    return result


# ---------------------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="gpu_suite.json", help="JSON file to write")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on CPU in float32 (CI)")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    parser.add_argument("--sections", default="moe_layer,train_step,asr_rtf", help="comma-separated subset")
    parser.add_argument("--budget-s", type=float, default=480.0, help="skip sections that would start after this")
    parser.add_argument("--max-gather-gb", type=float, default=None,
                        help="skip batched_mm above this weight-copy estimate (default: 0.8 x GPU memory; 1 on CPU)")
    parser.add_argument("--workdir", default=None, help="where the ASR checkpoint folder goes (default: a temp dir)")
    parser.add_argument("--strict", dest="strict_errors", action="store_true",
                        help="exit 1 when any case or section recorded an error")
    parser.add_argument("--train-kernel", default=None, help="pin the experts kernel of the train step (default: auto)")
    for key, value in FULL.items():  # size / repeat options: the full suite's defaults, or DRY's with --dry-run
        flag = "--" + key.replace("_", "-")
        if isinstance(value, list):
            kind = type(value[0])
            parser.add_argument(flag, type=lambda s, k=kind: [k(v) for v in s.split(",")], default=None,
                                help=f"comma-separated (default {','.join(map(str, value))}; dry-run "
                                     f"{','.join(map(str, DRY[key]))})")
        else:
            parser.add_argument(flag, type=type(value), default=None, help=f"default {value} (dry-run {DRY[key]})")
    args = parser.parse_args(argv)
    for key, value in (DRY if args.dry_run else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" / "Writing model shards" bars
    transformers.utils.logging.set_verbosity_error()
    device = args.device or ("cpu" if args.dry_run else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        why = (f"torch {torch.__version__} is a CPU build: install a CUDA build of torch (README, GPU route)"
               if torch.version.cuda is None else f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU")
        print(f"gpu_suite: no CUDA device: {why}; or run with --dry-run (tiny sizes on CPU)", file=sys.stderr)
        return 2
    if args.dry_run:
        torch.set_num_threads(1)  # plumbing, not speed: one thread is robust on a loaded CI machine
    env = environment(device)
    if args.max_gather_gb is None:
        args.max_gather_gb = 0.8 * env["gpu_memory_bytes"] / 1e9 if env["gpu_memory_bytes"] else 1.0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"suite": "most-eval gpu_suite", "dry_run": args.dry_run, "command": sys.argv,
              "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "budget_s": args.budget_s,
              "environment": env, "dtype": args.dtype, "sections": {}}

    def write():
        report["wall_s"] = time.perf_counter() - t0
        errors = [f"{name}: {s.get('error')}" for name, s in report["sections"].items() if s.get("status") == "error"]
        for name, s in report["sections"].items():
            for item in s.get("cases", []) + s.get("runs", []):
                if item.get("status") == "error":
                    errors.append(f"{name} {({k: v for k, v in item.items() if k in ('tokens', 'kernel', 'precision', 'batch')})}: {item['error']}")
        report["errors"] = errors
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(finite(report), indent=2, allow_nan=False))
        tmp.replace(out)

    print(f"gpu_suite: {env['device_name']} ({device}), torch {env['torch']}, transformers {env['transformers']}, "
          f"{args.dtype}{', DRY RUN' if args.dry_run else ''} -> {out}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu-suite-", dir=args.workdir) as workdir:
        runners = {
            "moe_layer": lambda: bench_moe_layer(args, device),
            "train_step": lambda: bench_train_step(args, device, env["peak_bf16_flops"]),
            "asr_rtf": lambda: bench_asr(args, device, Path(workdir)),
        }
        for name in [s.strip() for s in args.sections.split(",") if s.strip()]:
            if name not in runners:
                print(f"gpu_suite: unknown section {name!r} (known: {', '.join(runners)})", file=sys.stderr)
                return 2
            elapsed = time.perf_counter() - t0
            if elapsed > args.budget_s:
                report["sections"][name] = {"status": "skipped", "error": f"budget of {args.budget_s:.0f} s spent "
                                                                          f"({elapsed:.0f} s elapsed)"}
                write()
                continue
            start = time.perf_counter()
            print(f"gpu_suite: {name} ...", flush=True)
            try:
                section = {"status": "ok", **runners[name]()}
            except Exception as error:  # noqa: BLE001 - record, go on with the next section
                traceback.print_exc()
                section = {"status": "error", "error": error_text(error)}
            section["wall_s"] = time.perf_counter() - start
            report["sections"][name] = section
            free_memory(device)
            write()
            summarize(name, section)
    write()
    print(f"gpu_suite: wrote {out} in {report['wall_s']:.1f} s; {len(report['errors'])} error(s)", flush=True)
    for line in report["errors"]:
        print(f"  {line}")
    return 1 if args.strict_errors and report["errors"] else 0


def finite(value):
    """`value` with every NaN / infinity replaced by None (JSON has neither; a test then sees the gap)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def gib(n):
    return "-" if n is None else f"{n / 2**30:.2f} GiB"


def summarize(name: str, section: dict) -> None:
    """A few lines per section on stdout (everything is in the JSON)."""
    if section.get("status") != "ok":
        print(f"  {name}: {section.get('status')}: {section.get('error')}")
        return
    if name == "moe_layer":
        for c in section["cases"]:
            if c["status"] == "ok":
                print(f"  {c['tokens']:>6} tokens {c['kernel']:>11}: {c['tokens_per_s']:>12,.0f} tok/s "
                      f"{c['tflops']:8.2f} TFLOP/s  peak {gib(c['peak_mem_bytes'])}")
            else:
                print(f"  {c['tokens']:>6} tokens {c['kernel']:>11}: {c['status']}: {c['error']}")
    elif name == "train_step":
        for r in section["runs"]:
            if r["status"] == "ok":
                mfu = "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f} %"
                print(f"  {r['precision']:>8}: {r['tokens_per_s']:>10,.0f} tok/s  {r['model_tflops']:.2f} TFLOP/s  "
                      f"MFU {mfu}  peak {gib(r['peak_mem_bytes'])}  loss {r['loss_first']:.3f} -> {r['loss_last']:.3f}")
            else:
                print(f"  {r['precision']:>8}: error: {r['error']}")
    elif name == "asr_rtf":
        for r in section["runs"]:
            if r["status"] == "ok":
                print(f"  batch {r['batch']:>3}: RTF {r['rtf']:.4f}  {r['utterances_per_s']:.2f} utt/s  "
                      f"{r['generate_calls_per_pass']} generate call(s) per pass")
            else:
                print(f"  batch {r['batch']:>3}: error: {r['error']}")


if __name__ == "__main__":
    sys.exit(main())
