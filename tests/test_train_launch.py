"""The MoST recipe's full-scale launch paths (reference_impl/train.py with configs/accelerate_*.yaml), on CPU.

- global batch: accumulation = global_batch / (micro_batch_size x processes), for 1, 8 and 16 processes, with a
  one-line error when that does not divide; train_stage1.yaml / train_stage2.yaml give the paper's 512 / 128;
- loss: the LM loss of a step is the token mean over all its micro-batches (not a mean of per-micro-batch means);
- FSDP (accelerate_fsdp.yaml): `accelerate launch` with 2 CPU processes (gloo) runs prepare, two optimizer steps and
  the export; losses, gradient norms (clipped over the prepared, sharded parameters: not 0) and exported weights equal
  those of one process at the same global batch, although rank 1 builds its LM with uninitialised storage
  (cpu_ram_efficient_loading). accelerate itself maps FSDP onto GPU-like devices only (AcceleratorState turns CPU
  processes into MULTI_CPU, i.e. DDP, and `--cpu` would start a single process), while torch's FSDP2 runs on CPU with
  gloo; so on a machine without GPUs the launched script sets accelerate's state to FSDP after Accelerator() (a no-op
  where accelerate already chose FSDP) and everything else is accelerate's and the recipe's own code;
- DeepSpeed (accelerate_deepspeed_zero2.yaml, _zero3.yaml): the plugin config that `accelerate launch` builds from
  each file gets a numeric micro-batch, accumulation, train batch and clipping from the recipe before prepare() (the
  recipe's setup runs up to prepare() against that plugin), leaving nothing "auto" that accelerate could not fill
  without a DataLoader. The launch itself needs deepspeed and GPUs (accelerate runs DeepSpeed on accelerator devices
  only) and is skipped, naming why, where either is missing.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from most_reference.train import Recipe
from most_reference.train_config import configure_deepspeed, grad_accum_for, load_config, stage_grad_accum
from most_reference.train_modules import SpeechTextLM, materialize_meta_parameters
from test_train_recipe import SMALL_DATA, TINY

CONFIGS = TINY.parent
RTOL = 1e-4 if torch.cuda.is_available() else 1e-5
TIMEOUT = 240

# Run by `accelerate launch` in place of `-m most_reference.train` (see the module docstring).
FSDP_ON_CPU = '''
import sys

from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType

_init = AcceleratorState.__init__


def _init_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
    _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        PartialState._shared_state["distributed_type"] = DistributedType.FSDP  # AcceleratorState() re-reads it
        self.distributed_type = DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin


AcceleratorState.__init__ = _init_fsdp_on_cpu
from most_reference.train import cli  # noqa: E402

sys.exit(cli())
'''


# -----------------------------------------------------------------------------------------------------------------
# Global batch


@pytest.mark.parametrize("world, stage1, stage2", [(1, 128, 32), (8, 16, 4), (16, 8, 2)])
def test_accumulation_keeps_the_papers_global_batch_for_any_process_count(world, stage1, stage2):
    assert grad_accum_for(512, 4, world) == stage1 and grad_accum_for(128, 4, world) == stage2
    for name, accum, paper in (("train_stage1.yaml", stage1, 512), ("train_stage2.yaml", stage2, 128)):
        cfg = load_config(CONFIGS / name)
        t = cfg["training"]
        assert t["global_batch"] == paper and t["grad_accum"] is None
        assert stage_grad_accum(t, t["stages"][0], world) == accum
        assert accum * t["micro_batch_size"] * world == paper


def test_global_batch_that_does_not_divide_is_a_one_line_error():
    with pytest.raises(ValueError) as info:
        grad_accum_for(512, 4, 3)
    assert "\n" not in str(info.value) and "512" in str(info.value) and "3 processes" in str(info.value)
    with pytest.raises(ValueError, match="not a multiple"):
        grad_accum_for(8, 4, 4)  # 16 sequences per round already exceed the global batch
    t = load_config(CONFIGS / "train_stage1.yaml")["training"]
    with pytest.raises(ValueError, match="stage stage1: global batch 512"):
        stage_grad_accum(t, t["stages"][0], 24)


def test_batch_config_is_global_batch_or_grad_accum(tmp_path):
    tiny = load_config(TINY)["training"]
    assert [stage_grad_accum(tiny, s, 1) for s in tiny["stages"]] == [1, 1]  # the tiny run's own batch of 8
    per_stage = [{"name": "a", "steps": 1, "mixture": "stage1", "lr": 1e-3, "global_batch": 16},
                 {"name": "b", "steps": 1, "mixture": "stage2", "lr": 1e-3}]
    t = load_config(TINY, {"training.stages": per_stage})["training"]
    assert [stage_grad_accum(t, s, 1) for s in t["stages"]] == [2, 1]  # a: its own 16 / 8; b: the run's 8 / 8
    t = load_config(TINY, {"training.global_batch": None, "training.grad_accum": 3})["training"]
    assert stage_grad_accum(t, t["stages"][0], 16) == 3  # as given: the global batch grows with the processes
    with pytest.raises(ValueError, match="both set"):
        load_config(TINY, {"training.grad_accum": 2})
    with pytest.raises(ValueError, match="no batch size"):
        load_config(TINY, {"training.global_batch": None})
    with pytest.raises(ValueError, match="not a multiple of training.micro_batch_size 8"):
        load_config(TINY, {"training.global_batch": 12})


def test_stage1_vocoder_path_follows_spiritlm_release_layout():
    path = load_config(CONFIGS / "train_stage1.yaml")["model"]["vocoder"]["path"]
    assert path.endswith("/speech_tokenizer/hifigan_spiritlm_base/generator.pt")


# -----------------------------------------------------------------------------------------------------------------
# Loss normalisation


def _tiny_module(aux_loss_alpha: float = 0.0) -> SpeechTextLM:
    from transformers import HubertConfig, HubertModel

    from most_reference.model import MoSTConfig, MoSTForCausalLM
    from most_reference.speech_encoder import SpeechEncoder

    torch.manual_seed(0)
    config = MoSTConfig.from_dict({**json.loads((CONFIGS / "most_tiny.json").read_text()),
                                   "aux_loss_alpha": aux_loss_alpha})
    hubert = HubertModel(HubertConfig(hidden_size=config.speech_feature_dim, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=32, conv_dim=[8] * 7,
                                      num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2))
    return SpeechTextLM(MoSTForCausalLM(config), SpeechEncoder(hubert, config.hidden_size, 1))


def _micro_batch(n_targets: int, length: int = 24, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 90, (2, length), generator=g)
    labels = torch.full_like(ids, -100)
    labels[0, length - n_targets:] = ids[0, length - n_targets:]  # targets of row 0 only (shifted: n_targets)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels, "waveforms": [],
            "empty": False, "task": "text_lm"}


def test_step_loss_is_the_token_mean_over_the_whole_accumulation_step():
    from accelerate import Accelerator

    from most_reference.train_config import lr_at

    module = _tiny_module()
    reference = copy.deepcopy(module)
    micro = [_micro_batch(3, seed=1), _micro_batch(20, seed=2)]  # 3 and 20 target tokens

    recipe = Recipe.__new__(Recipe)  # only what _step reads
    acc = Accelerator(cpu=True)
    grads = {}

    class Recording(torch.optim.SGD):
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        grads[id(p)] = p.grad.clone()
            return super().step(closure)

    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = Recording(params, lr=0.0)
    stages = [{"name": "s", "steps": 1, "lr": 1.0}]
    recipe.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s, stages))
    recipe.model, recipe.optimizer = acc.prepare(module, optimizer)
    recipe.accelerator, recipe.world, recipe.expert_load = acc, 1, None
    recipe.t, recipe.sizes = {"grad_clip": 0.0}, {"text_lm": 1}
    acc.gradient_accumulation_steps = len(micro)
    try:
        stats = recipe._step(micro)
    finally:
        acc.end_training()
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()

    reference.train()
    total = 0.0
    for batch in micro:  # sum of token losses over the step / its target tokens
        logits = reference.lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        total = total + torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1), reduction="sum")
    (total / 23).backward()
    assert stats["tokens"] == 23
    assert stats["lm"] / stats["tokens"] == pytest.approx(float(total) / 23, rel=1e-5)
    assert stats["grad_norm"] > 0
    ref_params = [p for p in reference.parameters() if p.requires_grad]
    assert len(ref_params) == len(params) and sum(q.grad is not None for q in ref_params) > 10
    for p, q in zip(params, ref_params):  # the projection gets a zero gradient in the recipe (kept in the graph)
        expected = q.grad if q.grad is not None else torch.zeros_like(q)
        torch.testing.assert_close(grads[id(p)], expected, rtol=1e-4, atol=1e-7)


def test_ranks_receiving_weights_get_uninitialised_cpu_parameters_and_real_buffers():
    from accelerate import init_empty_weights

    from most_reference.model import MoSTConfig, MoSTForCausalLM

    config = MoSTConfig.from_dict(json.loads((CONFIGS / "most_tiny.json").read_text()))
    with init_empty_weights(include_buffers=False):
        empty = MoSTForCausalLM(config)
    materialize_meta_parameters(empty, torch.float32)
    params = list(empty.parameters())
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 and not p.is_meta for p in params)
    assert len({p.data_ptr() for p in params}) == len(params)  # accelerate maps optimizer params by address
    real = dict(MoSTForCausalLM(config).named_buffers())
    for name, buffer in empty.named_buffers():
        torch.testing.assert_close(buffer, real[name])  # RoPE's non-persistent buffers are not broadcast


# -----------------------------------------------------------------------------------------------------------------
# accelerate launch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recipe_args(out: Path) -> list[str]:
    sets = {**SMALL_DATA, "data.instructions": [], "training.threads": 1, "training.micro_batch_size": 4,
            "training.global_batch": 8, "logging.every": 1, "checkpointing.every": 0,
            "training.stages": [{"name": "stage1", "steps": 2, "mixture": "stage1", "lr": 1.0e-3}]}
    args = ["--config", str(TINY), "--output", str(out)]
    for key, value in sets.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    return args


def _run(cmd: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


def _launch(config: Path, script: list[str], out: Path, mixed_precision: str = "no") -> None:
    # no --cpu: with it accelerate starts one plain process; without GPUs the recipe's processes still run on CPU
    _run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--num_machines", "1",
          "--num_processes", "2", "--mixed_precision", mixed_precision, "--main_process_port", str(_free_port())]
         + script + _recipe_args(out))


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_fsdp_launch_on_two_cpu_processes_matches_one_process(tmp_path):
    if torch.cuda.device_count() == 1:
        pytest.skip("one GPU: a 2-process FSDP launch needs 2 GPUs, or none (then it runs on 2 CPU processes)")
    shim = tmp_path / "fsdp_on_cpu.py"
    shim.write_text(FSDP_ON_CPU)
    _launch(CONFIGS / "accelerate_fsdp.yaml", [str(shim)], tmp_path / "fsdp")
    _run([sys.executable, "-m", "most_reference.train"] + _recipe_args(tmp_path / "one"))

    info = json.loads((tmp_path / "fsdp" / "run_info.json").read_text())
    assert info["distributed"] == "DistributedType.FSDP" and info["world_size"] == 2
    assert info["batch"][0]["grad_accum"] == 1 and info["batch"][0]["global_batch_sequences"] == 8
    fsdp, one = _log(tmp_path / "fsdp"), _log(tmp_path / "one")
    assert [r["step"] for r in fsdp] == [r["step"] for r in one] == [1, 2]
    for a, b in zip(fsdp, one):
        assert a["tokens"] == b["tokens"]
        assert a["loss"] == pytest.approx(b["loss"], rel=RTOL)
        assert a["grad_norm"] > 0 and a["grad_norm"] == pytest.approx(b["grad_norm"], rel=10 * RTOL)
    wa = load_file(str(tmp_path / "fsdp" / "export" / "model.safetensors"))
    wb = load_file(str(tmp_path / "one" / "export" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=10 * RTOL, atol=1e-6)


# -----------------------------------------------------------------------------------------------------------------
# DeepSpeed


def _deepspeed_plugin(config: Path, monkeypatch, processes: int):
    """The DeepSpeedPlugin that `accelerate launch --config_file CONFIG` makes each process build (no deepspeed
    needed for this part)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import DeepSpeedPlugin
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    args = launch_command_parser().parse_args(["--config_file", str(config), "--num_processes", str(processes),
                                               "-m", "most_reference.train"])
    args, defaults, mixed_from_config = _validate_launch_command(args)
    fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mixed_from_config else [])
    args.deepspeed_fields_from_accelerate_config = ",".join(fields)  # as accelerate's launch_command sets it
    _, env = prepare_deepspeed_cmd_env(args)
    for key, value in env.items():
        if key.startswith("ACCELERATE_"):
            monkeypatch.setenv(key, value)
    plugin = DeepSpeedPlugin()
    plugin.set_mixed_precision(env["ACCELERATE_MIXED_PRECISION"])
    return plugin


def _autos(config: dict, prefix: str = "") -> list[str]:
    found = []
    for key, value in config.items():
        if isinstance(value, dict):
            found += _autos(value, f"{prefix}{key}.")
        elif value == "auto":
            found.append(prefix + key)
    return found


class _StopAtPrepare(Exception):
    pass


class _DeepSpeedAcceleratorUpToPrepare:
    """Stands in for accelerate.Accelerator under DeepSpeed on `world` processes as seen from rank 0, up to
    prepare(), which records the DeepSpeed config it would hand to deepspeed.initialize and stops the run."""

    def __init__(self, plugin, world: int):
        from accelerate.utils import DistributedType

        self.state = SimpleNamespace(deepspeed_plugin=plugin, fsdp_plugin=None)
        self.distributed_type = DistributedType.DEEPSPEED
        self.process_index, self.num_processes, self.is_main_process = 0, world, True
        self.mixed_precision, self.device = "bf16", torch.device("cpu")
        self.gradient_accumulation_steps = 1
        self.prepared_config = None

    def wait_for_everyone(self):
        pass

    def prepare(self, *objects):
        self.prepared_config = copy.deepcopy(self.state.deepspeed_plugin.deepspeed_config)
        self.prepared_accumulation = self.gradient_accumulation_steps
        raise _StopAtPrepare


@pytest.mark.parametrize("config", ["accelerate_deepspeed_zero2.yaml", "accelerate_deepspeed_zero3.yaml"])
def test_deepspeed_config_gets_the_recipes_batch_before_prepare(config, tmp_path, monkeypatch):
    import accelerate

    plugin = _deepspeed_plugin(CONFIGS / config, monkeypatch, processes=8)
    assert plugin.is_auto("train_micro_batch_size_per_gpu")  # what accelerate refuses without a DataLoader
    fake = _DeepSpeedAcceleratorUpToPrepare(plugin, world=8)
    monkeypatch.setattr(accelerate, "Accelerator", lambda **kwargs: fake)
    sets = {**SMALL_DATA, "data.instructions": [], "training.micro_batch_size": 4, "training.global_batch": 64,
            "training.threads": 1, "training.stages": [{"name": "s", "steps": 2, "mixture": "stage1", "lr": 1e-3}]}
    recipe = Recipe(load_config(TINY, sets), tmp_path / "out")
    with pytest.raises(_StopAtPrepare):
        recipe.setup()
    assert recipe.sizes["asr"] > 0  # the whole setup ran: model, data, optimizer
    ds = fake.prepared_config
    assert ds["train_micro_batch_size_per_gpu"] == 4 and ds["gradient_accumulation_steps"] == 2
    assert ds["train_batch_size"] == 64 and ds["gradient_clipping"] == 1.0
    assert fake.prepared_accumulation == 2 and recipe.load_dtype == torch.bfloat16

    # what accelerate's _prepare_deepspeed then fills (must_match=False) leaves nothing "auto" behind
    plugin.deepspeed_config = ds
    plugin.hf_ds_config.config = ds
    assert not plugin.is_auto("train_micro_batch_size_per_gpu")
    plugin.deepspeed_config_process(must_match=False, **{
        "gradient_clipping": 1.0, "zero_optimization.stage3_gather_16bit_weights_on_model_save": False,
        "train_micro_batch_size_per_gpu": 4, "train_batch_size": 4 * 2 * 8})
    assert _autos(ds) == []
    assert ds["train_batch_size"] == ds["train_micro_batch_size_per_gpu"] * ds["gradient_accumulation_steps"] * 8


@pytest.mark.parametrize("world", [1, 8, 16])
def test_configure_deepspeed_for_the_papers_batch(world, monkeypatch):
    plugin = _deepspeed_plugin(CONFIGS / "accelerate_deepspeed_zero2.yaml", monkeypatch, processes=world)
    accum = grad_accum_for(512, 4, world)
    assert configure_deepspeed(plugin.deepspeed_config, 4, accum, world, 1.0) == []
    ds = plugin.deepspeed_config
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (4, accum)
    assert ds["train_batch_size"] == 512 and _autos(ds) == []
    ds["gradient_accumulation_steps"] = 3  # a number set elsewhere: the recipe's wins, and says so
    assert configure_deepspeed(ds, 4, accum, world, 1.0) == [f"gradient_accumulation_steps: 3 -> {accum} "
                                                             "(from the recipe)"]


def test_deepspeed_refuses_stages_of_different_accumulation(tmp_path, monkeypatch):
    import accelerate

    plugin = _deepspeed_plugin(CONFIGS / "accelerate_deepspeed_zero2.yaml", monkeypatch, processes=1)
    monkeypatch.setattr(accelerate, "Accelerator", lambda **kwargs: _DeepSpeedAcceleratorUpToPrepare(plugin, 1))
    stages = [{"name": "a", "steps": 1, "mixture": "stage1", "lr": 1e-3, "global_batch": 16},
              {"name": "b", "steps": 1, "mixture": "stage2", "lr": 1e-3}]
    recipe = Recipe(load_config(TINY, {"training.stages": stages}), tmp_path / "out")
    with pytest.raises(ValueError, match=r"DeepSpeed fixes gradient accumulation at prepare\(\).*\[2, 1\]"):
        recipe.setup()


def _deepspeed_launch_skip_reason() -> str | None:
    if importlib.util.find_spec("deepspeed") is None:
        return ("deepspeed is not installed (not a most-eval dependency: `pip install deepspeed` on a GPU machine); "
                "the config the recipe hands to DeepSpeed is checked above instead")
    if torch.cuda.device_count() < 2:
        return ("accelerate runs DeepSpeed on accelerator devices only (CPU processes become MULTI_CPU); "
                "the launch needs 2 GPUs")
    return None


@pytest.mark.parametrize("config", ["accelerate_deepspeed_zero2.yaml", "accelerate_deepspeed_zero3.yaml"])
def test_deepspeed_launch_runs_two_optimizer_steps(config, tmp_path):
    reason = _deepspeed_launch_skip_reason()
    if reason:
        pytest.skip(reason)
    out = tmp_path / "run"
    _launch(CONFIGS / config, ["-m", "most_reference.train"], out, mixed_precision="bf16")
    log = _log(out)
    assert [r["step"] for r in log] == [1, 2]
    assert all(r["loss"] is not None and r["grad_norm"] and r["grad_norm"] > 0 for r in log)
    assert json.loads((out / "run_info.json").read_text())["distributed"] == "DistributedType.DEEPSPEED"
    assert (out / "export" / "model.safetensors").is_file()
