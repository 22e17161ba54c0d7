"""Benchmark: MoST's modality-aware MoE layer vs transformers' DeepseekV2Moe on the same weights.

    python benchmarks/bench_moe.py            # hidden 2048 and 512, prefill 2048 tokens, decode 1/4/8 tokens (~2-3 min, 2 CPU cores)
    python benchmarks/bench_moe.py --quick    # hidden 512 only, prefill 512 tokens, decode 1/8 (~20 s)

Timings are the fastest of a few interleaved runs; on a shared machine single cells still move by tens of percent,
so the router-alone line is the clean measure of what the mask itself costs.

Layer: 64 routed experts (32 text + 32 audio), top-6, 2 shared experts, moe_intermediate = 1408 * hidden / 2048
(1408 at hidden 2048, DeepSeek-V2-Lite's size). Tokens: half text, half audio, in alternating spans of 64.
For each experts kernel (eager / batched_mm / grouped_mm):
- mask overhead = time(MoST layer, mask on) / time(DeepseekV2Moe); same kernel, same weights, same tokens;
- prefill GFLOP/s = active FLOPs / time, where active FLOPs = tokens * (2*H*E router + (top_k + n_shared) * 6*H*I
  expert GEMMs), next to a dense matmul of the same FLOPs ((tokens, H) @ (H, 3*(top_k+n_shared)*I));
- decode: time vs the bytes of expert weights the step touches (distinct routed experts + shared experts + router),
  as effective GB/s, next to a plain read of a buffer of the same size.
batched_mm gathers one weight copy per (token, expert) pair, so it is skipped where that copy exceeds --max-gather-gb.
Prints a table and the fastest kernel per case; model.FASTEST_EXPERTS_KERNEL holds the per-device choice.
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2Moe

from most_reference.model import DECODE_MAX_TOKENS, FASTEST_EXPERTS_KERNEL, MoSTConfig, MoSTMoe, RoutingState

KERNELS = ("eager", "batched_mm", "grouped_mm")


def layer_config(hidden: int) -> MoSTConfig:
    """One MoST MoE layer's config at the given hidden size (intermediate scaled with it)."""
    return MoSTConfig(
        hidden_size=hidden, intermediate_size=4 * hidden, moe_intermediate_size=1408 * hidden // 2048,
        n_routed_experts=64, num_text_experts=32, num_experts_per_tok=6, n_shared_experts=2,
        n_group=1, topk_group=1, q_lora_rank=None, num_attention_heads=16, num_hidden_layers=2,
    )


def build_layers(config: MoSTConfig):
    """(DeepseekV2Moe, MoSTMoe) sharing one set of random weights."""
    torch.manual_seed(0)
    deepseek = DeepseekV2Moe(config)
    with torch.no_grad():
        for p in deepseek.parameters():
            p.normal_(0, 0.02)
    state = RoutingState()
    return deepseek.eval(), MoSTMoe.from_deepseek(deepseek, config, state).eval(), state


def mixed_marks(n_tokens: int, span: int = 64) -> torch.Tensor:
    """(1, n) marks: alternating text/audio spans of `span` tokens (single tokens alternate for tiny n)."""
    span = min(span, max(1, n_tokens // 2))
    return ((torch.arange(n_tokens) // span) % 2).view(1, -1)


def timeit(fn, reps: int) -> float:
    """Fastest of `reps` calls after one warm-up call (the minimum is the least disturbed by other processes)."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_pair(fn_a, fn_b, reps: int) -> tuple[float, float]:
    """Fastest of `reps` calls of each, interleaved (a, b, a, b, ...) so drifting load hits both alike."""
    fn_a(), fn_b()
    times_a, times_b = [], []
    for _ in range(reps):
        for fn, times in ((fn_a, times_a), (fn_b, times_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return min(times_a), min(times_b)


def active_flops(config: MoSTConfig, n_tokens: int) -> float:
    hidden, inter = config.hidden_size, config.moe_intermediate_size
    per_token = 2 * hidden * config.n_routed_experts + (config.num_experts_per_tok + config.n_shared_experts) * 6 * hidden * inter
    return n_tokens * per_token


def touched_bytes(config: MoSTConfig, topk_indices: torch.Tensor, element_size: int) -> int:
    hidden, inter = config.hidden_size, config.moe_intermediate_size
    experts = topk_indices.unique().numel() + config.n_shared_experts  # each: gate, up, down = 3*H*I
    return (experts * 3 * hidden * inter + config.n_routed_experts * hidden) * element_size


def run_case(config, deepseek, most, state, n_tokens, reps, max_gather_gb, mode):
    """Times every kernel on one token count; returns result rows."""
    torch.manual_seed(1)
    x = torch.randn(1, n_tokens, config.hidden_size)
    marks = mixed_marks(n_tokens)
    state.marks = marks
    with torch.no_grad():
        _, _, topk = most.gate(x, marks.view(-1))
    gather_gb = n_tokens * config.num_experts_per_tok * 3 * config.hidden_size * config.moe_intermediate_size * 4 / 1e9
    rows = []
    for kernel in KERNELS:
        if kernel == "batched_mm" and gather_gb > max_gather_gb:
            rows.append(dict(mode=mode, hidden=config.hidden_size, tokens=n_tokens, kernel=kernel, skipped=f"gathers {gather_gb:.0f} GB"))
            continue
        config._experts_implementation_internal = kernel
        with torch.no_grad():
            t_ds, t_most = time_pair(lambda: deepseek(x), lambda: most(x), reps)
        row = dict(mode=mode, hidden=config.hidden_size, tokens=n_tokens, kernel=kernel, t_ds=t_ds, t_most=t_most)
        row["overhead"] = t_most / t_ds
        row["gflops"] = active_flops(config, n_tokens) / t_most / 1e9
        row["gbps"] = touched_bytes(config, topk, 4) / t_most / 1e9
        rows.append(row)
    return rows


def router_cost(config, most, n_tokens) -> tuple[float, float]:
    """Seconds of the router without and with the modality mask."""
    x = torch.randn(n_tokens, config.hidden_size)
    marks = mixed_marks(n_tokens).view(-1)
    with torch.no_grad():
        return time_pair(lambda: most.gate(x), lambda: most.gate(x, marks), 20)


def dense_reference(config, n_tokens, reps) -> float:
    """GFLOP/s of one dense matmul with the MoE layer's active expert FLOPs."""
    width = 3 * (config.num_experts_per_tok + config.n_shared_experts) * config.moe_intermediate_size
    a, b = torch.randn(n_tokens, config.hidden_size), torch.randn(config.hidden_size, width)
    seconds = timeit(lambda: a @ b, reps)
    return 2 * n_tokens * config.hidden_size * width / seconds / 1e9


def read_bandwidth(n_bytes: int, reps: int) -> float:
    """GB/s of summing a float32 buffer of n_bytes (a plain memory-read reference)."""
    buffer = torch.randn(max(1, n_bytes // 4))
    return n_bytes / timeit(lambda: buffer.sum(), reps) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="hidden 512 only, 512-token prefill, fewer repeats")
    parser.add_argument("--max-gather-gb", type=float, default=1.0, help="skip batched_mm above this weight gather")
    args = parser.parse_args()

    hiddens = [512] if args.quick else [2048, 512]
    prefill_tokens = 512 if args.quick else 2048
    decode_tokens = [1, 8] if args.quick else [1, 4, 8]
    reps = 2  # prefill: fastest of 2 (+1 warm-up); decode: fastest of 6
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, device cpu")

    rows, dense, bandwidth, routers = [], {}, {}, []
    for hidden in hiddens:
        config = layer_config(hidden)
        deepseek, most, state = build_layers(config)
        rows += run_case(config, deepseek, most, state, prefill_tokens, reps, args.max_gather_gb, "prefill")
        dense[hidden] = dense_reference(config, prefill_tokens, reps)
        for n in decode_tokens:
            rows += run_case(config, deepseek, most, state, n, reps * 3, args.max_gather_gb, "decode")
        bandwidth[hidden] = read_bandwidth(touched_bytes(config, torch.arange(6), 4), reps * 3)
        for n in (prefill_tokens, 1):
            routers.append((hidden, n, *router_cost(config, most, n)))
        del deepseek, most

    header = f"{'mode':8} {'hidden':>6} {'tokens':>6} {'kernel':>11} {'DSV2 ms':>9} {'MoST ms':>9} {'mask x':>7} {'GFLOP/s':>8} {'dense':>7} {'GB/s':>6} {'read':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        lead = f"{r['mode']:8} {r['hidden']:>6} {r['tokens']:>6} {r['kernel']:>11}"
        if "skipped" in r:
            print(f"{lead}   skipped: {r['skipped']}")
            continue
        extra = (
            f"{r['gflops']:>8.1f} {dense[r['hidden']]:>7.1f} {'':>6} {'':>6}"
            if r["mode"] == "prefill"
            else f"{'':>8} {'':>7} {r['gbps']:>6.1f} {bandwidth[r['hidden']]:>6.1f}"
        )
        print(f"{lead} {r['t_ds'] * 1e3:>9.2f} {r['t_most'] * 1e3:>9.2f} {r['overhead']:>7.3f} {extra}")

    print("\nmask x = MoST (mask on) / DeepseekV2Moe, same kernel. GFLOP/s: active FLOPs / MoST time; dense: one matmul")
    print("of the same FLOPs. GB/s: touched expert + router bytes / MoST time; read: summing a buffer of that size.")
    print("router alone (what the mask adds: one (tokens, 64) multiply), fastest of 20:")
    for hidden, n, off, on in routers:
        print(f"  hidden {hidden:>4} tokens {n:>5}: mask off {off * 1e3:7.3f} ms, mask on {on * 1e3:7.3f} ms ({on / off:.2f}x)")
    print("fastest kernel per case (MoST layer):")
    for key in sorted({(r["mode"], r["hidden"], r["tokens"]) for r in rows}):
        timed = [r for r in rows if (r["mode"], r["hidden"], r["tokens"]) == key and "skipped" not in r]
        best = min(timed, key=lambda r: r["t_most"])
        print(f"  {key[0]:8} hidden {key[1]:>4} tokens {key[2]:>5}: {best['kernel']}")
    print(f"model.FASTEST_EXPERTS_KERNEL['cpu'] = {FASTEST_EXPERTS_KERNEL['cpu']} (decode = at most {DECODE_MAX_TOKENS} tokens)")


if __name__ == "__main__":
    main()
