"""Per-modality expert use of a MoST LM: which routed experts text and audio tokens are sent to, layer by layer.

`most-eval routing` (a thin CLI wrapper) feeds the utterances of an ASR test set (LibriSpeech test-clean of the
bundled mini suite by default, read by the harness's own task reader) through the LM, rendered as training renders
them (mixing.Formatter), two sequences per utterance:

    asr   [bos] asr prompt with a continuous audio span (projected HuBERT frames), transcript text, eos
    tts   [bos] tts prompt with the transcript text, boa, discrete unit tokens of the utterance, eoa, eos

so text tokens, continuous-audio-span tokens and discrete unit tokens all occur. A forward hook on every MoE layer's
router (`MoSTMoe.gate`, which returns `(router_logits, topk_weights, topk_indices)`) records each token's top-k
experts and weights; the token's modality is its mark in `lm.routing_state.marks` (0 text, 1 audio: discrete audio
tokens and span interiors; the span markers are text, as in MoST). Padding positions (attention mask 0) are left out.
Dense layers (`layer < first_k_dense_replace`) have no router and no entry.

Definitions, per MoE layer, for modality m in {text, audio} (T_m = the tokens marked m, over all sequences;
w_{t,e} = the routed weight token t gives expert e: its top-k weight if e is among its top-k experts, else 0; with
`norm_topk_prob` false these are the (masked) softmax scores times `routed_scaling_factor`, a constant factor that
cancels in every ratio below):

    share_m[e]          = sum_{t in T_m} w_{t,e} / sum_{t in T_m} sum_e' w_{t,e'}     (sums to 1 over the experts)
    cross_modality[m]   = sum of share_m[e] over the experts of the *other* modality
                          (text: experts [num_text_experts, N); audio: experts [0, num_text_experts))
    cross_modality[all] = routed weight of all tokens that lands on the other modality's experts / all routed weight
    entropy[m]          = -sum_e share_m[e] log2 share_m[e]   (bits; 0 = one expert, log2 N = uniform over N)

With modality routing on, the router zeroes the other modality's scores before the top-k, so cross_modality is 0;
with it off (a plain DeepSeek-V2 MoE: `--routing off`, or a checkpoint imported from DeepSeek-V2) it measures how
much the experts' index split is respected without the mask. A modality without tokens gets `null` shares,
cross_modality and entropy.

routing.json:
    {"model":  {"checkpoint", "stage", "routing" (the mode asked for: on / off / checkpoint), "modality_routing"
                (what ran), "modality_routing_saved" (the checkpoint's), "n_routed_experts", "num_text_experts",
                "num_experts_per_tok", "norm_topk_prob", "dtype", "moe_layers"},
     "inputs": {"sequences", "text_tokens", "audio_tokens" (= continuous_audio_tokens + discrete_audio_tokens),
                "continuous_audio_tokens", "discrete_audio_tokens" (unit tokens and the begin/end-of-audio markers),
                "task", "utterances" (that gave sequences), "formats", "skipped": [{"id", "reason"}]},
     "layers": [{"layer", "text": [share per expert], "audio": [...], "cross_modality": {"text", "audio", "all"},
                 "entropy": {"text", "audio"}}, ...]}
(token counts are over all sequences, padding excluded)
routing.png: one heatmap per modality (MoE layers x routed experts, colour = share, one colour scale for both),
the text/audio expert boundary drawn as a dashed line; small grids print each share in percent.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from most_eval.core.audio import AudioError, load_audio

from .routing_options import ROUTING_MODES, SOURCE_TASK
from .units import hubert_frames_fn
from .mixing import Example, Formatter, collate
from .mixing import Sequence as FormattedSequence
from .model import AUDIO, TEXT, MoSTForCausalLM, MoSTMoe, continuous_span_interior

#: sequence formats rendered per utterance (mixing.Formatter tasks)
FORMATS = ("asr", "tts")
MODALITIES = {TEXT: "text", AUDIO: "audio"}


# -----------------------------------------------------------------------------------------------------------------
# The model under test


def set_modality_routing(lm: MoSTForCausalLM, mode: str) -> dict:
    """Applies `mode` (on / off / checkpoint) to `lm.config.modality_routing`, the flag every MoSTMoe reads at each
    forward (the same as loading the checkpoint with that config value: no weight depends on it). Returns
    {"routing": mode, "modality_routing": what runs, "modality_routing_saved": the value before}. ValueError for an
    unknown mode, or `on` with fewer than top-k experts on one side of the index split."""
    if mode not in ROUTING_MODES:
        raise ValueError(f"--routing {mode!r}: expected one of {', '.join(ROUTING_MODES)}")
    cfg = lm.config
    saved = bool(cfg.modality_routing)
    on = saved if mode == "checkpoint" else mode == "on"
    if on:
        n_text, n_audio = cfg.num_text_experts, cfg.n_routed_experts - cfg.num_text_experts
        if min(n_text, n_audio) < cfg.num_experts_per_tok:
            raise ValueError(f"--routing on: modality routing needs >= top-k ({cfg.num_experts_per_tok}) experts per "
                             f"modality, the checkpoint has {n_text} text / {n_audio} audio")
    cfg.modality_routing = on
    return {"routing": mode, "modality_routing": on, "modality_routing_saved": saved}


def moe_layers(lm: MoSTForCausalLM) -> list[tuple[int, MoSTMoe]]:
    """(decoder layer index, MoSTMoe) of every MoE layer, in order; ValueError when there is none."""
    layers = [(i, layer.mlp) for i, layer in enumerate(lm.model.layers) if isinstance(layer.mlp, MoSTMoe)]
    if not layers:
        raise ValueError(f"{type(lm).__name__} has no MoSTMoe layer: nothing is routed")
    return layers


def model_summary(lm: MoSTForCausalLM) -> dict:
    """The routing-relevant config of `lm` (part of routing.json's "model")."""
    cfg = lm.config
    return {"n_routed_experts": cfg.n_routed_experts, "num_text_experts": cfg.num_text_experts,
            "num_experts_per_tok": cfg.num_experts_per_tok, "norm_topk_prob": bool(cfg.norm_topk_prob),
            "dtype": str(lm.dtype).removeprefix("torch."), "moe_layers": [i for i, _ in moe_layers(lm)]}


# -----------------------------------------------------------------------------------------------------------------
# Inputs


@dataclass
class Utterance:
    """One usable utterance of the source task: id, audio file, reference transcript."""

    id: str
    audio: Path
    text: str


@dataclass
class RoutingInput:
    """One formatted sequence and the projected speech frames of its continuous audio span (None: no span)."""

    sequence: FormattedSequence
    audio_features: torch.Tensor | None = None  # (frames, hidden)


def utterances_from_samples(samples: Sequence, limit: int | None = None) -> tuple[list[Utterance], list[dict]]:
    """The first `limit` usable utterances of an ASR task's samples (most_eval.core.task.Sample: request.audio = the file,
    reference = the transcript), and {"id", "reason"} for each listed sample that could not be used."""
    usable, skipped = [], []
    for s in samples:
        if limit is not None and len(usable) >= limit:
            break
        if s.error or s.request is None or s.request.audio is None:
            skipped.append({"id": s.id, "reason": s.error or "no audio"})
        elif not str(s.reference or "").strip():
            skipped.append({"id": s.id, "reason": "empty transcript"})
        else:
            usable.append(Utterance(s.id, Path(s.request.audio), str(s.reference)))
    return usable, skipped


def routing_inputs(adapter, utterances: Iterable[Utterance], formats: Sequence[str] = FORMATS,
                   skipped: list | None = None) -> Iterator[RoutingInput]:
    """Formatted sequences for `utterances`, rendered with the adapter's tokenizer and prompts exactly as training
    renders them (mixing.Formatter). `adapter` is a loaded `most` model (most_reference.adapter.MoSTModel; uses its
    lm, tokenizer, prompts, speech_encoder, unit_extractor, sample_rate, device). Sequences longer than the LM's
    `max_position_embeddings` keep their prompt and lose the end of their target (Formatter's truncation); an
    utterance whose audio cannot be read or whose prompt alone is too long is appended to `skipped`."""
    lm = adapter.lm
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown sequence format(s) {sorted(unknown)}; known: {', '.join(FORMATS)}")
    frames = hubert_frames_fn(adapter.speech_encoder.hubert.config)
    formatter = Formatter(lm.config, adapter.tokenizer, adapter.prompts, frames, max_len=lm.config.max_position_embeddings,
                          add_bos=adapter.prompt_format.bos)
    skipped = [] if skipped is None else skipped
    for utt in utterances:
        try:
            samples = load_audio(utt.audio, adapter.sample_rate).samples
        except AudioError as exc:
            skipped.append({"id": utt.id, "reason": str(exc)})
            continue
        wav = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).to(adapter.device)
        for kind in formats:
            with torch.no_grad():
                if kind == "asr":
                    example = Example("asr", utt.id, text=utt.text, waveform=samples)
                    features = adapter.speech_encoder(wav[None])[0]  # (frames, H), as the adapter's prompts
                else:
                    units = adapter.unit_extractor(wav).reshape(-1).cpu().numpy()
                    example, features = Example("tts", utt.id, text=utt.text, units=units), None
            try:
                sequence = formatter(example)
            except ValueError as exc:  # the prompt alone does not fit
                skipped.append({"id": f"{utt.id}:{kind}", "reason": str(exc)})
                continue
            yield RoutingInput(sequence, features)


# -----------------------------------------------------------------------------------------------------------------
# Collection


@dataclass
class RoutingStats:
    """Routed weight summed per (MoE layer, modality, expert), and what was counted."""

    layers: list[int]  # decoder layer index of each MoE layer
    weight: torch.Tensor  # (L, 2, E) float64: sum of top-k weights tokens of modality m gave expert e
    tokens: dict = field(default_factory=lambda: {"sequences": 0, "text_tokens": 0, "audio_tokens": 0,
                                                  "continuous_audio_tokens": 0, "discrete_audio_tokens": 0})


@torch.no_grad()
def collect_routing(lm: MoSTForCausalLM, inputs: Iterable[RoutingInput], batch_size: int = 8,
                    pad_id: int | None = None) -> RoutingStats:
    """Runs `inputs` through `lm` (eval mode, no cache) in right-padded batches of `batch_size` and sums the routed
    weights per MoE layer, modality and expert. Routing is read by forward hooks on each MoSTMoe's `gate`, the marks
    from `lm.routing_state.marks`; positions with attention mask 0 (padding) are not counted, so the result does not
    depend on `batch_size`. Works with modality routing on or off (marks are derived from the ids either way)."""
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size}: must be at least 1")
    layers = moe_layers(lm)
    cfg = lm.config
    pad_id = cfg.eos_token_id if pad_id is None else pad_id
    stats = RoutingStats([i for i, _ in layers], torch.zeros(len(layers), 2, cfg.n_routed_experts, dtype=torch.float64))
    captured: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(j):
        def capture(module, args, output):
            _, topk_weights, topk_indices = output  # (B*T, k) each
            captured[j] = (topk_weights.detach(), topk_indices.detach())
        return capture

    handles = [moe.gate.register_forward_hook(hook(j)) for j, (_, moe) in enumerate(layers)]
    was_training = lm.training
    lm.eval()
    try:
        for batch in _batches(inputs, batch_size):
            _run_batch(lm, batch, pad_id, captured, stats)
    finally:
        for handle in handles:
            handle.remove()
        lm.train(was_training)
    return stats


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _run_batch(lm, batch: list[RoutingInput], pad_id: int, captured: dict, stats: RoutingStats) -> None:
    cfg = lm.config
    packed = collate([b.sequence for b in batch], pad_id)
    ids, mask = packed["input_ids"].to(lm.device), packed["attention_mask"].to(lm.device)
    spans = [b.audio_features for b in batch if b.audio_features is not None]  # row-major span order
    features = torch.cat(spans).to(lm.device, lm.dtype) if spans else None
    captured.clear()
    lm(input_ids=ids, attention_mask=mask, audio_features=features, use_cache=False, logits_to_keep=1)
    marks = lm.routing_state.marks.reshape(-1).to(lm.device)  # (B*T,) 0 text / 1 audio
    valid = mask.reshape(-1).bool()
    if len(captured) != stats.weight.shape[0]:
        raise RuntimeError(f"{len(captured)} of {stats.weight.shape[0]} MoE routers ran")
    for j, (weights, indices) in captured.items():
        weights, indices, m = weights[valid].double(), indices[valid], marks[valid]
        for modality in (TEXT, AUDIO):
            sel = m == modality
            stats.weight[j, modality].index_add_(0, indices[sel].reshape(-1).cpu(), weights[sel].reshape(-1).cpu())
    first, last = cfg.audio_token_range
    counts = stats.tokens
    counts["sequences"] += len(batch)
    counts["text_tokens"] += int(((marks == TEXT) & valid).sum())
    counts["audio_tokens"] += int(((marks == AUDIO) & valid).sum())
    counts["continuous_audio_tokens"] += int((continuous_span_interior(ids, cfg).reshape(-1) & valid).sum())
    counts["discrete_audio_tokens"] += int((((ids >= first) & (ids <= last)).reshape(-1) & valid).sum())


# -----------------------------------------------------------------------------------------------------------------
# Report


def _entropy_bits(share: list[float]) -> float:
    return float(-sum(p * math.log2(p) for p in share if p > 0)) + 0.0  # + 0.0: no "-0.0"


def build_report(stats: RoutingStats, num_text_experts: int, model: dict | None = None,
                 inputs: dict | None = None) -> dict:
    """routing.json's document (definitions in the module docstring) from collected stats. `model` and `inputs` are
    merged into the "model" and "inputs" sections."""
    layers = []
    for j, layer in enumerate(stats.layers):
        entry = {"layer": layer}
        cross, entropy = {}, {}
        for modality, name in MODALITIES.items():
            w = stats.weight[j, modality]
            total = float(w.sum())
            if total <= 0:
                entry[name], cross[name], entropy[name] = None, None, None
                continue
            share = (w / total).tolist()
            other = share[num_text_experts:] if modality == TEXT else share[:num_text_experts]
            entry[name] = share
            cross[name] = float(sum(other))
            entropy[name] = _entropy_bits(share)
        w = stats.weight[j]
        off = float(w[TEXT, num_text_experts:].sum() + w[AUDIO, :num_text_experts].sum())
        total = float(w.sum())
        cross["all"] = off / total if total > 0 else None
        entry["cross_modality"], entry["entropy"] = cross, entropy
        layers.append(entry)
    return {"model": dict(model or {}), "inputs": {**stats.tokens, **(inputs or {})}, "layers": layers}


def write_json(report: dict, path: str | Path) -> Path:
    """routing.json (indented, UTF-8)."""
    path = Path(path)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


# Fixed style so the PNG does not depend on the user's matplotlibrc.
_PLOT_RC = {"font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 9, "figure.dpi": 100,
            "savefig.dpi": 100, "path.simplify": False}


def write_png(report: dict, path: str | Path) -> Path:
    """routing.png: per modality a heatmap of the shares (rows: MoE layers, columns: routed experts) with the
    text/audio expert boundary drawn; matplotlib's Agg canvas (no display needed)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    model, layers = report["model"], report["layers"]
    n_experts = model.get("n_routed_experts") or max(len(e["text"] or e["audio"] or []) for e in layers)
    n_text = model.get("num_text_experts", n_experts // 2)
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_PLOT_RC)
        grids = {name: np.array([e[name] if e[name] is not None else [np.nan] * n_experts for e in layers],
                                dtype=float).reshape(len(layers), n_experts) for name in ("text", "audio")}
        top = max([float(np.nanmax(g)) for g in grids.values() if not np.isnan(g).all()] + [1e-9])
        annotate = n_experts <= 16 and len(layers) <= 16
        width = min(3.0 + 0.45 * n_experts, 16.0)
        fig = Figure(figsize=(2 * width, 1.8 + 0.4 * max(len(layers), 2)))
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, 2, squeeze=False)[0]
        for ax, (name, grid) in zip(axes, grids.items()):
            image = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0.0, vmax=top, interpolation="nearest")
            ax.axvline(n_text - 0.5, color="red", linewidth=1.5, linestyle="--")
            if annotate:
                for (row, col), value in np.ndenumerate(grid):
                    if not np.isnan(value):
                        ax.text(col, row, f"{100 * value:.0f}", ha="center", va="center", fontsize=7,
                                color="white" if value < 0.6 * top else "black")
            ax.set_yticks(range(len(layers)), [str(e["layer"]) for e in layers])
            step = max(1, n_experts // 16)
            ax.set_xticks(range(0, n_experts, step))
            ax.set_xlabel(f"routed expert (text experts 0-{n_text - 1} | audio experts {n_text}-{n_experts - 1})")
            ax.set_ylabel("MoE layer")
            cross = [e["cross_modality"][name] for e in layers if e["cross_modality"][name] is not None]
            worst = f"; cross-modality up to {100 * max(cross):.1f}%" if cross else "; no tokens"
            ax.set_title(f"{name} tokens: share of routed weight (%){worst}")
            fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02).set_label("share")
        state = "on" if model.get("modality_routing") else "off"
        fig.suptitle(f"expert use per modality, modality routing {state} ({model.get('checkpoint', '')})")
        fig.tight_layout()
        fig.savefig(path, format="png", metadata={"Software": None}, dpi=100)
    return path


def routing_report(adapter, samples: Sequence, output: str | Path, routing: str = "checkpoint",
                   limit: int | None = None, batch_size: int = 8, task: str = SOURCE_TASK) -> dict:
    """The whole report: applies `routing` to the adapter's LM, reads the first `limit` usable utterances of
    `samples` (an ASR task's samples), renders them (FORMATS), collects the routing and writes `output`/routing.json
    and `output`/routing.png (the folder must exist). Returns the report. ValueError when nothing could be run."""
    lm = adapter.lm
    mode = set_modality_routing(lm, routing)
    utterances, skipped = utterances_from_samples(samples, limit)
    ran = set()
    inputs = (ran.add(x.sequence.id) or x for x in routing_inputs(adapter, utterances, FORMATS, skipped))
    stats = collect_routing(lm, inputs, batch_size, pad_id=adapter.tokenizer.pad_token_id)
    if stats.tokens["sequences"] == 0:
        reason = f"; e.g. {skipped[0]['id']}: {skipped[0]['reason']}" if skipped else ""
        raise ValueError(f"no usable utterance in {task} ({len(skipped)} skipped{reason})")
    manifest = getattr(adapter, "manifest", {}) or {}
    model = {"checkpoint": str(getattr(adapter, "root", "")), "stage": manifest.get("stage"), **mode,
             **model_summary(lm)}
    report = build_report(stats, lm.config.num_text_experts, model,
                          {"task": task, "utterances": len(ran), "formats": list(FORMATS), "skipped": skipped})
    output = Path(output)
    write_json(report, output / "routing.json")
    write_png(report, output / "routing.png")
    return report
