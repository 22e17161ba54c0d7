"""The training recipe's config and batch arithmetic: what a recipe YAML may hold and how big a step is.

`DEFAULTS` lists every config key with its meaning (an unknown key is an error); `load_config` reads a plain-YAML
config into the full dict the recipe (train.py) runs from. The rest sizes the optimizer step and its learning rate:
`grad_accum_for` / `stage_grad_accum` turn a global batch (sequences per optimizer step over all processes) into the
micro-batches each process accumulates, `configure_deepspeed` writes that geometry into a DeepSpeed config, `lr_at`
is the per-stage warmup + cosine schedule. Plain functions over dicts and numbers (no model, no tensors): kept apart
from the recipe so the arithmetic can be read, and tested, without building a model or starting processes.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import yaml

from .mixing import STAGE_MIXTURES

CONFIG_DIR = Path(__file__).parent / "configs"

DEFAULTS = {
    "seed": 0,
    "model": {
        "config": "most_full.json",  # MoSTConfig JSON (relative: to the YAML's folder)
        "overrides": {},  # MoSTConfig fields on top of it
        "init": None,  # DeepSeek-V2(-Lite) dir, or an export dir of a previous stage (has most.json); None: random
        "tokenizer": None,  # tokenizer dir; None: the init dir; "char": the tiny character tokenizer (built here)
        "hubert": {"path": None, "random": None},  # HuBERT dir / SpiritLM dict, or a HubertConfig dict (random, tiny)
        "quantizer": {"path": None, "fit_kmeans": None},  # quantizer file, or {k, max_frames, iterations}
        "vocoder": {"path": None, "random": None},  # generator.pt / .safetensors (+config.json), or a config dict
        "prompts": "release",  # prompt format: release (the MoST release's frame), tiny (char tokenizer's tags), a
        # YAML file (prompt_formats.py), or a dict of templates
        "experts_implementation": None,  # eager / grouped_mm / batched_mm; None: per-device automatic choice
    },
    "data": {
        "speech": [],  # speech sources (data.SPEECH_READERS): ASR inputs and TTS targets
        "text": [],  # text-LM sources: txt / jsonl / transcripts
        "instructions": [],  # instruction sources (data.INSTRUCTION_READERS)
        # the MoST release's ASR / TTS instruction JSON (release_data.py): [{path, name, asr_tts_mix_ratio (0.5)}]
        "release": [],
        "units": "units.jsonl",  # units file (relative: to OUTPUT); extracted for what is missing
        "units_read_glob": None,  # more unit shards to read (e.g. from `python -m most_reference.data extract-units`)
        "extract_missing_units": True,  # False: utterances without units are not TTS examples
        "max_audio_s": 30.0,  # longer audio is skipped (logged)
        "max_len": 4096,  # tokens per sequence (targets truncated)
        "num_workers": 0,  # DataLoader worker processes per rank
    },
    "training": {
        # [{name, steps, mixture: {task: weight} | "stage1" | "stage2", lr, warmup_steps, min_lr_ratio, global_batch}]
        "stages": [],
        "micro_batch_size": 4,  # sequences per micro-batch (release default: per-device batch 4)
        # sequences per optimizer step over all processes (paper: 512 stage 1, 128 stage 2); a stage's own
        # global_batch wins; grad accumulation = global_batch / (micro_batch_size x processes)
        "global_batch": None,
        "grad_accum": None,  # instead of global_batch: micro-batches per optimizer step per process (release: 8)
        "weight_decay": 0.0,
        "betas": [0.9, 0.95],
        "eps": 1e-8,
        "grad_clip": 1.0,  # max global grad norm; 0 disables
        "precision": "auto",  # auto (bf16 on CUDA, fp32 on CPU; an `accelerate launch` config wins), bf16, fp32
        "activation_checkpointing": False,
        "reset_optimizer_between_stages": True,
        "threads": None,  # torch.set_num_threads (CPU runs)
    },
    "logging": {"every": 10, "tensorboard": True, "expert_load": True},
    "checkpointing": {"every": 1000, "keep_last": 2, "resume": "auto"},  # resume: auto | never | a step_N dir
    "export": {"enabled": True, "dir": "export", "stage": None, "dtype": "bfloat16", "manifest": {}},
}


# -----------------------------------------------------------------------------------------------------------------
# Config


def _merge(defaults: dict, given: dict, where: str) -> dict:
    out = copy.deepcopy(defaults)
    for key, value in (given or {}).items():
        if key not in defaults:
            raise ValueError(f"unknown config key {where}{key} (known: {', '.join(defaults)})")
        if isinstance(defaults[key], dict) and defaults[key] and isinstance(value, dict):
            out[key] = _merge(defaults[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def _set(cfg: dict, dotted: str, value) -> None:
    node = cfg
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """YAML -> full config (DEFAULTS merged, paths resolved against the YAML's folder, $VARS expanded)."""
    path = Path(path).resolve()
    try:
        raw = yaml.safe_load(path.read_text())  # plain YAML only: tags such as !!python/object are refused
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not a plain-YAML recipe config ({' '.join(str(exc).split())})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a recipe config is a mapping, got {type(raw).__name__}")
    for dotted, value in (overrides or {}).items():
        _set(raw, dotted, value)
    try:
        cfg = _merge(DEFAULTS, raw, "")
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    base = path.parent

    def resolve(p):
        if p is None or p in ("char",) or isinstance(p, dict):
            return p
        p = os.path.expandvars(os.path.expanduser(str(p)))
        return str((base / p).resolve()) if not os.path.isabs(p) else p

    m = cfg["model"]
    m["config"] = resolve(m["config"])
    for key in ("init", "tokenizer"):
        m[key] = resolve(m[key])
    for part in ("hubert", "quantizer", "vocoder"):
        m[part]["path"] = resolve(m[part]["path"])
    for group in ("speech", "text", "instructions"):
        for spec in cfg["data"][group]:
            for key in ("path", "audio_root"):
                if key in spec:
                    spec[key] = resolve(spec[key])
    if not cfg["training"]["stages"]:
        raise ValueError(f"{path}: training.stages is empty")
    for i, stage in enumerate(cfg["training"]["stages"]):
        missing = {"name", "steps", "mixture", "lr"} - set(stage)
        if missing:
            raise ValueError(f"{path}: training.stages[{i}] lacks {', '.join(sorted(missing))}")
        if isinstance(stage["mixture"], str):
            if stage["mixture"] not in STAGE_MIXTURES:
                raise ValueError(f"{path}: training.stages[{i}].mixture {stage['mixture']!r}: a mapping or one of "
                                 f"{', '.join(STAGE_MIXTURES)}")
            stage["mixture"] = dict(STAGE_MIXTURES[stage["mixture"]])
    try:
        _check_batch(cfg["training"])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    cfg["_path"] = str(path)
    return cfg


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_batch(t: dict) -> None:
    """One way to size the optimizer step: global_batch (for the run, or per stage) or grad_accum, never both."""
    mbs = _positive_int(t["micro_batch_size"], "training.micro_batch_size")
    per_stage = [s.get("global_batch", t["global_batch"]) for s in t["stages"]]
    if t["grad_accum"] is not None:
        _positive_int(t["grad_accum"], "training.grad_accum")
        if any(b is not None for b in per_stage):
            raise ValueError("training.global_batch (sequences per step, all processes) and training.grad_accum "
                             "(micro-batches per process) are both set: give one")
        return
    for stage, batch in zip(t["stages"], per_stage):
        if batch is None:
            raise ValueError(f"stage {stage['name']}: no batch size: set training.global_batch (or the stage's "
                             "global_batch, or training.grad_accum)")
        _positive_int(batch, f"stage {stage['name']}: global_batch")
        if batch % mbs:
            raise ValueError(f"stage {stage['name']}: global_batch {batch} is not a multiple of "
                             f"training.micro_batch_size {mbs}")


def grad_accum_for(global_batch: int, micro_batch_size: int, world_size: int) -> int:
    """Micro-batches each process accumulates per optimizer step so that a step holds exactly `global_batch`
    sequences: global_batch / (micro_batch_size * world_size). ValueError (one line) when that is not a whole number.
    """
    per_round = micro_batch_size * world_size
    if global_batch < per_round or global_batch % per_round:
        raise ValueError(f"global batch {global_batch} is not a multiple of micro_batch_size {micro_batch_size} x "
                         f"{world_size} processes = {per_round}: change training.global_batch, "
                         "training.micro_batch_size or the number of processes")
    return global_batch // per_round


def stage_grad_accum(training: dict, stage: dict, world_size: int) -> int:
    """Gradient accumulation of one stage on `world_size` processes: from the stage's global batch (its own
    `global_batch`, else training.global_batch), else training.grad_accum as given."""
    global_batch = stage.get("global_batch", training["global_batch"])
    if global_batch is None:
        return int(training["grad_accum"])
    try:
        return grad_accum_for(int(global_batch), int(training["micro_batch_size"]), world_size)
    except ValueError as exc:
        raise ValueError(f"stage {stage['name']}: {exc}") from None


def configure_deepspeed(ds_config: dict, micro_batch_size: int, grad_accum: int, world_size: int,
                        grad_clip: float) -> list[str]:
    """Writes the recipe's step geometry into a DeepSpeed config dict, in place; call before `accelerator.prepare`.

    The dict is accelerate's `AcceleratorState().deepspeed_plugin.deepspeed_config`. accelerate fills
    `train_micro_batch_size_per_gpu: "auto"` only from a DataLoader given to `prepare` and refuses to prepare without
    one; the recipe feeds its micro-batches itself, so it sets: train_micro_batch_size_per_gpu (sequences per
    micro-batch), gradient_accumulation_steps, train_batch_size (= their product x processes, which DeepSpeed checks)
    and gradient_clipping (DeepSpeed clips inside its step; 0 = off). The recipe's values win over numbers already
    there (the loop runs the recipe's); returns a line per value that was changed, for the log.
    """
    wanted = {"train_micro_batch_size_per_gpu": micro_batch_size, "gradient_accumulation_steps": grad_accum,
              "train_batch_size": micro_batch_size * grad_accum * world_size, "gradient_clipping": float(grad_clip)}
    changed = []
    for key, value in wanted.items():
        given = ds_config.get(key, "auto")
        if given not in ("auto", None) and given != value:
            changed.append(f"{key}: {given} -> {value} (from the recipe)")
        ds_config[key] = value
    return changed


def lr_at(step: int, stages: list[dict]) -> float:
    """Absolute learning rate at global step `step`: per stage, linear warmup then cosine to lr * min_lr_ratio."""
    start = 0
    for stage in stages:
        if step < start + stage["steps"] or stage is stages[-1]:
            s = min(step - start, stage["steps"])
            lr, warm = float(stage["lr"]), int(stage.get("warmup_steps", 0))
            floor = lr * float(stage.get("min_lr_ratio", 0.1))
            if s < warm:
                return lr * (s + 1) / warm
            progress = (s - warm) / max(1, stage["steps"] - warm)
            return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        start += stage["steps"]
    raise AssertionError("unreachable")
