"""MoST training recipe: the paper's two stages on accelerate (one file: setup / train / save_checkpoint / cleanup).

    # one process (CPU or one GPU)
    most-eval train --config reference_impl/configs/train_tiny.yaml --output runs/tiny [--max-steps N]
    python -m most_reference.train --config CONFIG --output DIR [--max-steps N] [--set training.lr=2e-5 ...]
    # several GPUs / nodes: reference_impl/launch/single_node.sh, multi_node.sh (accelerate launch or torchrun)

What one run does (the MoST paper for the model and the two stages' mixtures, mixing.py for the sequence formats):
1. setup: builds the model parts (LM from DeepSeek-V2-Lite or a previous export or random; frozen HuBERT and a
   trainable projection; a quantizer for the unit targets), reads the manifests (data.py), extracts the missing
   HuBERT units on the main process (resumable), and resumes from OUTPUT/checkpoints/step_N when one exists.
   The LM is loaded in bf16 when the run trains in bf16 under FSDP or DeepSpeed (both keep fp32 master weights per
   shard themselves), in fp32 otherwise; under FSDP with `fsdp_cpu_ram_efficient_loading` only the main process reads
   the weights, the other ranks hold uninitialised storage that `prepare` fills from rank 0 (no per-rank full copy).
2. train: for each stage of `training.stages`, every optimizer step consumes `world_size * grad_accum` micro-batches,
   each of one task drawn from the stage's mixture (mixing.MixturePlan: the same micro-batches whatever the number of
   processes; rank r takes micro-batches r, r+W, ...). The batch is set as `global_batch` (sequences per optimizer
   step over all processes; the paper's 512 in stage 1, 128 in stage 2; per stage or for the whole run): then
   grad_accum = global_batch / (micro_batch_size * world_size) (`grad_accum_for`), so any GPU count trains the same
   steps; or directly as `grad_accum` (then the global batch grows with the number of processes). Under DeepSpeed the
   recipe writes micro-batch, accumulation and clipping into the plugin's config before `prepare`
   (`configure_deepspeed`). AdamW, warmup + cosine per stage, gradient clipping over the prepared model's parameters,
   optional activation checkpointing, bf16 autocast on GPUs (fp32 on CPU). The optimizer state is reset between
   stages (stage 2 is a fresh fine-tuning run in the paper).
   Loss: the LM loss of an optimizer step is the token mean over the whole step: the sum of the token losses of all
   its micro-batches on all ranks divided by the step's number of target tokens (counted across ranks before the
   forward passes), as the release's token-mean loss over its batch; a micro-batch is not averaged alone, so a
   micro-batch of short targets does not weigh as much as one of long targets. The balance (aux) loss is averaged
   over the step's micro-batches.
3. logging: OUTPUT/train_log.jsonl, one line per logged step: step, stage, loss (LM + balance loss, the objective),
   lm_loss (token mean over the step), aux_loss, task_loss {task: token-mean LM loss of its micro-batches in this
   step}, lr, grad_norm (global norm before clipping, of the prepared model's gradients),
   expert_load {text, audio: share of routed picks per expert of that modality's group, over all MoE layers},
   tokens (target tokens), seconds. TensorBoard too when `tensorboard` is installed (otherwise skipped, said once).
4. save_checkpoint: OUTPUT/checkpoints/step_N/ = accelerate state (model, optimizer, RNG of every process, the LR
   scheduler) + recipe_state.json (stage, step, data position). Resuming replays the data plan to that step, so a
   resumed run continues with exactly the losses of an uninterrupted one.
5. export: OUTPUT/export/ in the adapter's checkpoint layout (adapter.save_checkpoint), loadable with
   `most-eval run --model most --model-args checkpoint=OUTPUT/export`; written by every run that ends, a
   `--max-steps` one included (most.json's `training.steps` says how far it got).

Config: plain YAML (see configs/train_tiny.yaml, train_stage1.yaml, train_stage2.yaml); relative paths resolve
against the config file's folder, `$VARS` are expanded, `units` resolves against OUTPUT. `DEFAULTS` (train_config.py)
lists every key with its meaning; an unknown key is an error.

This file is the recipe itself, read top to bottom; what it runs on lives beside it: the config and the batch
arithmetic in train_config.py, the trained module (its parts, statistics and export copies) in train_modules.py,
the run log in train_log.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
import yaml

from . import data as D
from .mixing import Formatter, MixturePlan, build_char_tokenizer
from .prompt_formats import checkpoint_format, prompt_format
from .release_data import read_release_data
from .model import MoSTConfig, MoSTForCausalLM
from .train_config import configure_deepspeed, load_config, lr_at, stage_grad_accum
from .train_log import TrainLog, step_record
from .train_modules import (ExpertLoad, SpeechTextLM, export_copies, grad_norm_value, lm_skeleton, speech_encoder,
                            stage_vocoder)

logger = logging.getLogger("most_reference.train")

# -----------------------------------------------------------------------------------------------------------------
# The recipe


class SpecSampler:
    """This rank's micro-batch specs from a MixturePlan, step after step (runs ahead of training with workers)."""

    def __init__(self, plan: MixturePlan, rank: int, world: int, last_step: int):
        self.plan, self.rank, self.world, self.last_step = plan, rank, world, last_step

    def __iter__(self):
        while self.plan.step < self.last_step:
            yield from self.plan.next_step()[self.rank :: self.world]


class Recipe:
    def __init__(self, cfg: dict, output_dir: str | Path, max_steps: int | None = None):
        self.cfg = cfg
        self.out = Path(output_dir)
        self.max_steps = max_steps
        self.t = cfg["training"]
        self.stages = self.t["stages"]
        self.total_steps = sum(s["steps"] for s in self.stages)
        self.global_step = 0
        self.run_log = TrainLog(self.out)  # train_log.jsonl, TensorBoard, run_info.json (main process)

    # ---- setup ---------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedType, set_seed

        if self.t["threads"]:
            torch.set_num_threads(int(self.t["threads"]))
        precision = self.t["precision"]
        if precision == "auto":
            mixed = None if os.environ.get("ACCELERATE_MIXED_PRECISION") else (
                "bf16" if torch.cuda.is_available() else "no")
        else:
            mixed = {"bf16": "bf16", "fp32": "no"}[precision]
        self.accelerator = acc = Accelerator(mixed_precision=mixed, cpu=not torch.cuda.is_available())
        self.rank, self.world = acc.process_index, acc.num_processes
        self.accum = [stage_grad_accum(self.t, stage, self.world) for stage in self.stages]  # before any loading
        kind = acc.distributed_type
        if kind == DistributedType.DEEPSPEED and len(set(self.accum)) > 1:
            raise ValueError(f"DeepSpeed fixes gradient accumulation at prepare(), but the stages need {self.accum}: "
                             "run stages of different global batches as separate runs")
        # FSDP and DeepSpeed keep fp32 master weights per shard themselves, so the full model is read in bf16 there;
        # replicated models (one process, DDP) keep fp32 weights for AdamW and autocast to bf16
        sharded = kind in (DistributedType.FSDP, DistributedType.DEEPSPEED)
        self.load_dtype = torch.bfloat16 if sharded and acc.mixed_precision == "bf16" else torch.float32
        fsdp = acc.state.fsdp_plugin if kind == DistributedType.FSDP else None
        # FSDP's cpu_ram_efficient_loading: rank 0 reads the weights, prepare() broadcasts them to the others
        self.empty_lm = bool(fsdp is not None and fsdp.cpu_ram_efficient_loading and not acc.is_main_process)
        self.out.mkdir(parents=True, exist_ok=True)
        self.bad = D.BadDataLog(self.out / "bad_data.jsonl", self.rank)
        set_seed(self.cfg["seed"])

        self._build_model()
        self._build_data()

        params = [p for p in self.module.parameters() if p.requires_grad]
        self.parameter_counts = {"trained": sum(p.numel() for p in params),
                                 "total": sum(p.numel() for p in self.module.parameters())}
        t = self.t
        optimizer = torch.optim.AdamW(params, lr=1.0, betas=tuple(t["betas"]), eps=t["eps"],
                                      weight_decay=t["weight_decay"])
        # lr=1.0 so the LambdaLR factor is the absolute learning rate (lr_at); stepped once per optimizer step, by
        # us (an accelerate-prepared scheduler steps num_processes times per step).
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_at(step, self.stages))
        if kind == DistributedType.DEEPSPEED:  # no DataLoader goes to prepare(): the batch geometry comes from here
            changed = configure_deepspeed(acc.state.deepspeed_plugin.deepspeed_config, t["micro_batch_size"],
                                          self.accum[0], self.world, t["grad_clip"])
            for line in changed if acc.is_main_process else []:
                logger.warning("DeepSpeed config %s", line)
        acc.gradient_accumulation_steps = self.accum[0]  # set per stage in train()
        # the prepared model's parameters are the ones that get gradients (FSDP2 replaces them with sharded ones)
        self.model, self.optimizer = acc.prepare(self.module, optimizer)
        acc.register_for_checkpointing(self.scheduler)

        self.resume_state = self._maybe_resume()
        self._start_logging()

    def _build_model(self) -> None:
        from transformers import AutoTokenizer

        from .import_weights import import_deepseek_v2, import_quantizer

        m = self.cfg["model"]
        torch.manual_seed(self.cfg["seed"])
        config = MoSTConfig.from_dict({**json.loads(Path(m["config"]).read_text()), **(m["overrides"] or {})})
        init = Path(m["init"]) if m["init"] else None
        previous = init is not None and (init / "most.json").is_file()  # an export of an earlier stage
        if self.empty_lm:
            lm = lm_skeleton(config, init, previous)
        elif previous:
            lm = MoSTForCausalLM.from_pretrained(init, dtype=self.load_dtype, use_safetensors=True)
        elif init is not None:
            lm = import_deepseek_v2(init, config, dtype=self.load_dtype)
        else:
            lm = MoSTForCausalLM(config).to(self.load_dtype)
        lm.config.use_cache = False
        if m["experts_implementation"]:
            lm.set_experts_implementation(m["experts_implementation"])
        if self.t["activation_checkpointing"]:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

        tok_src = m["tokenizer"] or (str(init) if init else None)
        if tok_src == "char":
            self.tokenizer = build_char_tokenizer(lm.config)
        elif tok_src:
            self.tokenizer = AutoTokenizer.from_pretrained(tok_src)
        else:
            raise ValueError("model.tokenizer: give a tokenizer dir (or 'char' for a tiny config)")

        encoder = speech_encoder(m["hubert"], init, previous, lm.config)
        self.quantizer = None
        q = m["quantizer"]
        quant_path = init / "quantizer.safetensors" if previous else q["path"]
        if quant_path:
            self.quantizer = import_quantizer(quant_path)
        elif not q["fit_kmeans"]:
            raise ValueError("model.quantizer: give path or fit_kmeans: {k: ...}")
        self.lm, self.encoder = lm, encoder
        self.module = SpeechTextLM(lm, encoder)
        if previous:  # keep the format the earlier stage was trained with
            self.prompt_format = checkpoint_format(json.loads((init / "most.json").read_text()))
        elif isinstance(m["prompts"], dict):  # templates given in the config itself
            self.prompt_format = checkpoint_format({"prompt_format": "custom", "prompts": m["prompts"]})
        else:
            self.prompt_format = prompt_format(str(m["prompts"]))
        self.prompt_format.check_tokenizer(self.tokenizer, "model.tokenizer")
        self.prompts = dict(self.prompt_format.templates)
        self.init_dir = init if previous else None
        self.expert_load = ExpertLoad(lm) if self.cfg["logging"]["expert_load"] else None

    def _build_data(self) -> None:
        from .speech_encoder import UnitExtractor

        d, acc = self.cfg["data"], self.accelerator
        bad = self.bad if acc.is_main_process else D.warn_only  # manifests are read by every rank; report once
        self.speech = D.speech_manifest(d["speech"], bad)
        docs = D.text_corpus(d["text"], self.speech, bad)
        if acc.is_main_process:  # synthesised spoken answers (speak_answers) are written once, then read by all
            D.instructions(d["instructions"], bad, self.out / "spoken_answers")
        acc.wait_for_everyone()
        instr = D.instructions(d["instructions"], D.warn_only, self.out / "spoken_answers")
        units_path = Path(d["units"]) if os.path.isabs(str(d["units"])) else self.out / d["units"]

        if acc.is_main_process:
            self.encoder.to(acc.device)  # HuBERT on the GPU for k-means features and unit extraction
            q = self.cfg["model"]["quantizer"]
            layer = self.lm.config.unit_feature_layer
            kmeans_file = self.out / "kmeans.safetensors"
            if self.quantizer is None and kmeans_file.is_file():
                self.quantizer = D.KMeansQuantizer.from_file(kmeans_file)
            if self.quantizer is None:
                fit = q["fit_kmeans"]
                logger.info("fitting k-means (k=%d) on HuBERT layer-%d features", fit["k"], layer)
                feats = D.collect_features(self.speech, self.encoder, layer, int(fit.get("max_frames", 200_000)), bad)
                self.quantizer = D.fit_kmeans(feats, int(fit["k"]), int(fit.get("iterations", 30)), self.cfg["seed"])
                self.quantizer.save(kmeans_file)
            store = D.UnitStore(units_path, d["units_read_glob"])
            if d["extract_missing_units"]:
                extractor = UnitExtractor(self.encoder, self.quantizer, layer,
                                          deduplicate=self.lm.config.deduplicate_units).to(acc.device)
                added = D.extract_units(D.unit_items(self.speech, instr), extractor, store, bad)
                if added:
                    logger.info("extracted units of %d utterances -> %s", added, units_path)
        acc.wait_for_everyone()
        if self.quantizer is None:
            self.quantizer = D.KMeansQuantizer.from_file(self.out / "kmeans.safetensors")
        n_units = getattr(self.quantizer, "num_units", None)
        if n_units is not None and n_units > self.lm.config.num_units:
            raise ValueError(f"quantizer has {n_units} units, the model config {self.lm.config.num_units}")
        self.units = D.UnitStore(units_path, d["units_read_glob"])
        self.task_data = D.build_task_data(self.speech, docs, instr, self.units, bad)
        if d["release"]:  # the release's instruction files: units given inline, no audio to read
            release = read_release_data(d["release"], self.lm.config.num_units, bad, self.cfg["seed"])
            self.units.units.update(release.units)
            self.task_data.asr += release.asr
            self.task_data.tts += release.tts
        frames = D.hubert_frames_fn(self.encoder.hubert.config)
        self.formatter = Formatter(self.lm.config, self.tokenizer, self.prompts, frames, d["max_len"],
                                   add_bos=self.prompt_format.bos)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.lm.config.eos_token_id
        self.dataset = D.MicroBatchDataset(self.task_data, self.units, self.formatter, pad, self.bad, d["max_audio_s"])
        self.sizes = self.task_data.sizes()

    def _plan(self, stage_index: int) -> MixturePlan:
        stage = self.stages[stage_index]
        return MixturePlan(self.sizes, stage["mixture"], self.t["micro_batch_size"],
                           self.world * self.accum[stage_index], seed=self.cfg["seed"] * 1000 + stage_index)

    def _maybe_resume(self) -> dict | None:
        how = self.cfg["checkpointing"]["resume"]
        if how == "never":
            return None
        if how == "auto":
            found = sorted((self.out / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
            found = [p for p in found if (p / "recipe_state.json").is_file()]
            if not found:
                return None
            where = found[-1]
        else:
            where = Path(how)
        state = json.loads((where / "recipe_state.json").read_text())
        self.accelerator.load_state(str(where))
        self.global_step = state["global_step"]
        logger.info("resumed from %s (step %d)", where, self.global_step)
        return state

    def _start_logging(self) -> None:
        if not self.accelerator.is_main_process:  # the run log is the main process's
            return
        if self.resume_state:
            self.run_log.drop_steps_after(self.global_step)
        tb_status = self.run_log.open_tensorboard() if self.cfg["logging"]["tensorboard"] else "disabled"
        info = {
            "config": {k: v for k, v in self.cfg.items() if k != "_path"}, "config_path": self.cfg["_path"],
            "world_size": self.world, "device": str(self.accelerator.device),
            "mixed_precision": self.accelerator.mixed_precision, "distributed": str(self.accelerator.distributed_type),
            "tensorboard": tb_status, "examples": self.sizes, "bad_data_items": self.bad.count,
            "batch": [{"stage": s["name"], "grad_accum": a, "global_batch_micro_batches": self.world * a,
                       "global_batch_sequences": self.world * a * self.t["micro_batch_size"]}
                      for s, a in zip(self.stages, self.accum)],
            "load_dtype": str(self.load_dtype).removeprefix("torch."),
            "parameters": self.parameter_counts,
            "resumed_from_step": self.global_step if self.resume_state else None,
        }
        self.run_log.write_run_info(info)

    # ---- training ------------------------------------------------------------------------------------------------
    def train(self) -> dict:
        acc = self.accelerator
        last = None
        stop = self.total_steps if self.max_steps is None else min(self.total_steps, self.max_steps)
        stage_start = 0
        for stage_index, stage in enumerate(self.stages):
            stage_end = stage_start + stage["steps"]
            if self.global_step >= stage_end:
                stage_start = stage_end
                continue
            if self.global_step >= stop:
                break
            first = self.global_step - stage_start
            if first == 0 and stage_index > 0 and self.t["reset_optimizer_between_stages"]:
                self._reset_optimizer()
            plan = self._plan(stage_index)
            missing = plan.missing
            if missing and acc.is_main_process:
                logger.warning("stage %s: no examples for %s; its weight goes to the other tasks", stage["name"], missing)
            plan.advance_to(first)
            if self.resume_state and self.resume_state.get("stage_index") == stage_index:
                plan.check_state(self.resume_state["plan"])
            feeder = self._plan(stage_index)
            feeder.advance_to(first)
            accum = self.accum[stage_index]
            acc.gradient_accumulation_steps = accum
            end = min(stage["steps"], stop - stage_start)
            loader = torch.utils.data.DataLoader(
                self.dataset, batch_size=None, sampler=SpecSampler(feeder, self.rank, self.world, end),
                num_workers=self.cfg["data"]["num_workers"], persistent_workers=False)
            batches = iter(loader)
            for _ in range(first, end):
                step_t0 = time.time()
                micro = [next(batches) for _ in range(accum)]
                expected = plan.step
                plan.next_step()
                assert all(b["step"] == expected for b in micro), "data loader out of step with the plan"
                stats = self._step(micro)
                self.global_step += 1
                last = self._log(stats, stage, time.time() - step_t0) or last
                every = self.cfg["checkpointing"]["every"]
                if every and self.global_step % every == 0:
                    self.save_checkpoint(stage_index, plan)
            stage_start = stage_end
        saved = self.out / "checkpoints" / f"step_{self.global_step}" / "recipe_state.json"
        # The final checkpoint (where a rerun of the same command picks up). Saving is collective, so every rank must
        # make the same choice: all ranks look for the file before any can write it (else a slow rank sees the main
        # process's new file, skips the save and its barrier, and the ranks' barriers no longer pair up).
        needs_final_save = self.global_step > 0 and not saved.is_file()
        acc.wait_for_everyone()
        if needs_final_save:
            self.save_checkpoint(self._stage_of(min(self.global_step, self.total_steps - 1)), None)
        return {"steps": self.global_step, "last": last}

    def _stage_of(self, step: int) -> int:
        start = 0
        for i, stage in enumerate(self.stages):
            if step < start + stage["steps"]:
                return i
            start += stage["steps"]
        return len(self.stages) - 1

    def _reset_optimizer(self) -> None:
        base = getattr(self.optimizer, "optimizer", self.optimizer)
        if isinstance(base, torch.optim.Optimizer):
            base.state.clear()  # AdamW re-initialises its moments (and step count) on the next step
        else:
            logger.warning("optimizer state not reset between stages (wrapped by %s)", type(base).__name__)

    def _step(self, micro: list[dict]) -> dict:  # long: the token-mean loss arithmetic, read in one place
        """One optimizer step over this rank's micro-batches; returns global sums for logging.

        The LM loss is the token mean over the step (module docstring): every micro-batch's loss is its sum of token
        losses / `per_token`, where per_token = the step's target tokens on all ranks / (micro-batches x ranks),
        because accelerate divides each loss by the accumulation and the backends average gradients over ranks.
        """
        acc, device = self.accelerator, self.accelerator.device
        self.model.train()
        targets = [0 if b["empty"] else int((b["labels"][:, 1:] != -100).sum()) for b in micro]  # shifted labels
        step_tokens = torch.tensor([float(sum(targets))], dtype=torch.float64, device=device)
        if self.world > 1:
            step_tokens = acc.reduce(step_tokens, reduction="sum")
        per_token = max(float(step_tokens[0]), 1.0) / (len(micro) * self.world)
        sums = defaultdict(float)
        if self.expert_load:
            self.expert_load.counts.zero_()
        grad_norm = None
        acc.step = 0  # accumulate() syncs on the last of these micro-batches, whatever the stage's accumulation
        for batch, n_targets in zip(micro, targets):
            with acc.accumulate(self.model):
                inputs = {k: batch[k].to(device) for k in ("input_ids", "attention_mask", "labels")}
                waves = [w for w in batch["waveforms"]]
                if self.expert_load:
                    self.expert_load.valid = inputs["attention_mask"].reshape(-1).bool()
                    self.expert_load.active = True
                with acc.autocast():
                    out = self.model(**inputs, waveforms=waves, num_items_in_batch=per_token)
                if self.expert_load:
                    self.expert_load.active = False
                weight = 0.0 if batch["empty"] else 1.0
                acc.backward(out.loss * weight)
                if acc.sync_gradients:  # clip (or, with grad_clip 0, only measure) the prepared model's gradients
                    max_norm = self.t["grad_clip"] or math.inf
                    grad_norm = acc.clip_grad_norm_(self.model.parameters(), max_norm)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            if not batch["empty"]:
                aux = float(out.aux_loss.detach()) if getattr(out, "aux_loss", None) is not None else 0.0
                lm_sum = (float(out.loss.detach()) - aux) * per_token  # this micro-batch's sum of token losses
                sums["lm"] += lm_sum
                sums["aux"] += aux
                sums["n"] += 1
                sums[f"task/{batch['task']}"] += lm_sum
                sums[f"tokens/{batch['task']}"] += n_targets
                sums[f"count/{batch['task']}"] += 1
                sums["tokens"] += n_targets
        self.scheduler.step()
        per_task = [f"{kind}/{t}" for t in self.sizes for kind in ("task", "tokens", "count")]
        keys = ["lm", "aux", "n", "tokens"] + per_task
        vec = torch.tensor([sums.get(k, 0.0) for k in keys], dtype=torch.float64, device=device)
        if self.expert_load:
            vec = torch.cat([vec, self.expert_load.counts.to(device).reshape(-1)])
        if self.world > 1:
            vec = acc.reduce(vec, reduction="sum")
        vec = vec.cpu()
        stats = dict(zip(keys, vec[: len(keys)].tolist()))
        if self.expert_load:
            stats["expert_counts"] = vec[len(keys) :].reshape(2, -1)
        stats["grad_norm"] = grad_norm_value(grad_norm)
        return stats

    def _log(self, stats: dict, stage: dict, seconds: float) -> dict | None:
        every = self.cfg["logging"]["every"]
        record = step_record(stats, self.global_step, stage["name"], self.scheduler.get_last_lr()[0], self.sizes,
                             seconds, self.expert_load)
        if not self.accelerator.is_main_process:
            return record
        if every and (self.global_step % every == 0 or self.global_step == 1):
            self.run_log.write(record, seconds)
        return record

    # ---- checkpoints ---------------------------------------------------------------------------------------------
    def save_checkpoint(self, stage_index: int, plan: MixturePlan | None) -> Path:
        """OUTPUT/checkpoints/step_N: accelerate state (model, optimizer, scheduler, RNG) + recipe_state.json."""
        acc = self.accelerator
        where = self.out / "checkpoints" / f"step_{self.global_step}"
        acc.save_state(str(where), safe_serialization=True)
        if plan is None:  # replay to find the data position of this step
            stage_start = sum(s["steps"] for s in self.stages[:stage_index])
            plan = self._plan(stage_index)
            plan.advance_to(self.global_step - stage_start)
        if acc.is_main_process:
            state = {"global_step": self.global_step, "stage_index": stage_index,
                     "stage": self.stages[stage_index]["name"], "plan": plan.state_dict(),
                     "world_size": self.world, "grad_accum": self.accum[stage_index],
                     "micro_batch_size": self.t["micro_batch_size"]}
            (where / "recipe_state.json").write_text(json.dumps(state, indent=2))
            keep = self.cfg["checkpointing"]["keep_last"]
            found = sorted((self.out / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
            for old in found[:-keep] if keep else []:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        return where

    def export(self) -> Path | None:
        """The trained model in the adapter's layout (OUTPUT/<export.dir>), safetensors only."""
        from .adapter import save_checkpoint as save_for_adapter

        e, acc = self.cfg["export"], self.accelerator
        if not e["enabled"]:
            return None
        acc.wait_for_everyone()
        lm = acc.unwrap_model(self.model).lm
        state = acc.get_state_dict(self.model)  # full state on the main process (FSDP / ZeRO-3 gather here)
        if not acc.is_main_process:
            return None
        where = self.out / e["dir"]
        v = self.cfg["model"]["vocoder"]
        staging = self.out / "_vocoder"
        staging.mkdir(exist_ok=True)
        stage_vocoder(staging, v, self.init_dir, self.cfg["seed"])
        export_lm, encoder = export_copies(state, lm.config, acc.unwrap_model(self.model).encoder, e["dtype"])
        stage_name = e["stage"] or self.stages[-1]["name"]
        save_for_adapter(where, export_lm, self.tokenizer, encoder, self.quantizer, staging, stage=stage_name,
                         prompt_format=self.prompt_format)
        shutil.rmtree(staging, ignore_errors=True)
        manifest = json.loads((where / "most.json").read_text())
        manifest.update(e["manifest"] or {})
        manifest["training"] = {"steps": self.global_step, "config": Path(self.cfg["_path"]).name,
                                "stages": [{"name": s["name"], "steps": s["steps"], "mixture": s["mixture"]}
                                           for s in self.stages],
                                "examples": self.sizes}
        (where / "most.json").write_text(json.dumps(manifest, indent=2) + "\n")
        logger.info("exported %s", where)
        return where

    def cleanup(self) -> None:
        self.run_log.close()
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()  # destroys the process group of a distributed run
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state(reset_partial_state=True)  # so main() can run again in this process
        GradientState._reset_state()


# -----------------------------------------------------------------------------------------------------------------
# Entry points


def main(config_path, output_dir, max_steps: int | None = None, *, overrides: dict | None = None) -> dict:
    """Runs the recipe: setup, train (up to `max_steps` global steps in all), save, export, cleanup.

    Returns {"output", "steps", "last" (the last logged record), "export" (path or None)}. Every run that ends
    writes its export (unless ``export.enabled`` is false): one stopped by `max_steps` below the configured total
    exports the model as it stands (``most.json`` records its steps) beside its checkpoint, and a later run that
    resumes and finishes exports again over it.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("most_reference").setLevel(logging.INFO)
    cfg = load_config(config_path, overrides)
    recipe = Recipe(cfg, output_dir, max_steps)
    recipe.setup()
    try:
        result = recipe.train()
        exported = recipe.export()
    finally:
        recipe.cleanup()
    return {"output": str(Path(output_dir)), "steps": result["steps"], "last": result["last"],
            "export": str(exported) if exported else None}


def cli(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m most_reference.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="recipe YAML (configs/train_*.yaml)")
    parser.add_argument("--output", required=True, help="output folder (checkpoints, logs, export); resumes there")
    parser.add_argument("--max-steps", type=int, help="stop after this many global steps (checkpoint and export)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. training.global_batch=256 (value parsed as YAML)")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    result = main(args.config, args.output, args.max_steps, overrides=overrides)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in result.items() if k != "last"}))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
