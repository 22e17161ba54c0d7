"""Build MoST from the weights a user has on disk (local paths only; nothing is downloaded).

- `import_deepseek_v2(dir)`: DeepSeek-V2-Lite safetensors -> MoSTForCausalLM, one-to-one. Routed expert j of V2-Lite
  becomes MoST expert j (index partition: 0..31 seed the text experts, 32..63 the audio experts); router rows, shared
  experts, attention, norms, embeddings and lm_head are copied as they are (MoST paper). The per-expert tensors are
  merged into transformers' 3-D layout by the load-time conversion registered in model.py.
- `import_hubert(path)`: a transformers HubertModel directory, or SpiritLM's converted fairseq dict
  (`model_cfg, task_cfg, model_weight, dictionaries_symbols`) read with `torch.load(weights_only=True)`.
- `import_vocoder(path)`: SpiritLM / fairseq CodeHiFiGAN `generator.pt` (+ `config.json` beside it) or safetensors.
- `import_quantizer(path)`: SpiritLM's linear quantizer (.pt dict or safetensors) or k-means centroids (.npy /
  safetensors).

Safety: no pickle is ever executed. Where safetensors are expected, the file's first bytes are checked before any
reader touches it (a zip archive or a pickle is refused); `.pt` files are read with `torch.load(weights_only=True)`,
whose restricted unpickler refuses arbitrary objects. Every problem raises `CheckpointError`, one line,
`<file>: <what is wrong>`.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import HubertConfig, HubertModel
from transformers.models.deepseek_v2.configuration_deepseek_v2 import DeepseekV2Config

from .model import MoSTConfig, MoSTForCausalLM
from .speech_encoder import KMeansQuantizer, LinearQuantizer
from .vocoder import UnitVocoder, fairseq_to_speechbrain
from most_eval.core.errors import ModelFilesError
from most_eval.models.fairseq_weights import conv_layers, fairseq_to_hf

logger = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "configs"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format: a zip archive holding a pickle
PICKLE_MAGIC = b"\x80"  # pickle protocol >= 2 starts with opcode PROTO, then the protocol number


class CheckpointError(ModelFilesError):
    """A checkpoint file is missing, malformed, or not what was expected. str(error) == '<file>: <problem>'."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}".replace("\n", " "))


# -----------------------------------------------------------------------------------------------------------------
# Reading files safely


def check_safetensors_file(path: str | Path) -> None:
    """Raises CheckpointError unless `path` starts like a safetensors file (checked before anything parses it)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "file is missing")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
    header_len = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if len(head) == 9 and head[8:9] == b"{" and 0 < header_len <= size - 8:
        return  # u64 header length, then the JSON header
    if head.startswith(ZIP_MAGIC):
        raise CheckpointError(path, "is a zip archive (torch.save pickle), expected safetensors; not loaded")
    if head[:1] == PICKLE_MAGIC and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise CheckpointError(path, "is a pickle, expected safetensors; not loaded")
    raise CheckpointError(path, "is not a safetensors file (bad header), expected safetensors; not loaded")


def safetensors_files(directory: str | Path) -> list[Path]:
    """The safetensors shards of a checkpoint directory, each checked; the index must not name missing shards."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(directory, "directory is missing")
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(index, "has no weight_map")
        files = [directory / name for name in sorted(set(weight_map.values()))]
        for file in files:
            if not file.is_file():
                raise CheckpointError(index, f"names shard {file.name}, which is missing")
    elif (directory / "model.safetensors").is_file():
        files = [directory / "model.safetensors"]
    else:
        files = sorted(directory.glob("*.safetensors"))
        pickles = sorted(p.name for ext in ("*.bin", "*.pt", "*.pth", "*.ckpt") for p in directory.glob(ext))
        if not files:
            problem = f"only pickle checkpoints ({', '.join(pickles)}), expected safetensors" if pickles else "no safetensors files"
            raise CheckpointError(directory, problem)
    for file in files:
        check_safetensors_file(file)
    return files


def tensor_shapes(files: list[Path]) -> dict[str, tuple[tuple[int, ...], Path]]:
    """{tensor name: (shape, file)} read from the safetensors headers (no tensor data is loaded)."""
    shapes = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                for key in f.keys():
                    shapes[key] = (tuple(f.get_slice(key).get_shape()), file)
        except Exception as error:  # safetensors raises its own error types for corrupt headers
            raise CheckpointError(file, f"unreadable safetensors header ({type(error).__name__}: {error})") from None
    return shapes


def load_torch_dict(path: str | Path) -> dict:
    """torch.load(weights_only=True): tensors, numbers, strings, lists and dicts only; anything else is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "file is missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(path, f"refused by torch.load(weights_only=True): {first_line}") from None
    if not isinstance(state, dict):
        raise CheckpointError(path, f"holds a {type(state).__name__}, expected a dict")
    return state


def read_json(path: Path) -> dict:
    """A JSON file as a dict; CheckpointError (one line) when missing or invalid."""
    if not path.is_file():
        raise CheckpointError(path, "file is missing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(path, f"invalid JSON ({error})") from None


def _check_shapes(found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """Every expected key present with the expected shape, no unknown keys."""
    missing = sorted(set(expected) - set(found))
    unknown = sorted(set(found) - set(expected))
    if missing or unknown:
        raise CheckpointError(path, f"{what}: missing {missing[:3]}, unexpected {unknown[:3]}")
    for key, tensor in found.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(path, f"tensor {key} has shape {list(tensor.shape)}, expected {list(expected[key].shape)}")


# -----------------------------------------------------------------------------------------------------------------
# DeepSeek-V2(-Lite) -> MoST


def most_config_from_deepseek(deepseek: dict, most: MoSTConfig | str | Path | None = None, source="config.json"):
    """MoSTConfig with the architecture of a DeepSeek-V2 `config.json` dict and the MoST fields of `most`.

    `most` defaults to configs/most_full.json; its architecture must agree with the checkpoint's.
    """
    if most is None or isinstance(most, (str, Path)):
        most = MoSTConfig.from_json_file(str(most or CONFIG_DIR / "most_full.json"))
    deepseek = {k: v for k, v in deepseek.items() if k not in ("auto_map", "architectures", "model_type")}
    arch = DeepseekV2Config.from_dict(deepseek).to_dict()
    arch = {k: v for k, v in arch.items() if k in DeepseekV2Config.__annotations__}
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "n_routed_experts", "num_experts_per_tok"):
        if arch[key] != getattr(most, key):
            raise CheckpointError(source, f"{key} is {arch[key]}, the MoST config says {getattr(most, key)}")
    most_fields = {k: getattr(most, k) for k in MoSTConfig.__annotations__}
    return MoSTConfig(**{**arch, **most_fields})


def expected_checkpoint_shapes(config: MoSTConfig) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of a DeepSeek-V2-layout checkpoint for `config` (one tensor per expert, as V2-Lite ships)."""
    with torch.device("meta"):
        model = MoSTForCausalLM(config)
    shapes = {}
    for key, tensor in model.state_dict().items():
        merged = re.fullmatch(r"(.*\.mlp\.experts)\.(gate_up_proj|down_proj)", key)
        if not merged:
            shapes[key] = tuple(tensor.shape)
            continue
        prefix, name = merged.groups()
        n_experts, rows, cols = tensor.shape  # gate_up: (E, 2I, H) gate rows first; down: (E, H, I)
        for j in range(n_experts):
            if name == "gate_up_proj":
                shapes[f"{prefix}.{j}.gate_proj.weight"] = (rows // 2, cols)
                shapes[f"{prefix}.{j}.up_proj.weight"] = (rows // 2, cols)
            else:
                shapes[f"{prefix}.{j}.down_proj.weight"] = (rows, cols)
    return shapes


def import_deepseek_v2(
    directory: str | Path,
    most_config: MoSTConfig | str | Path | None = None,
    dtype: torch.dtype = torch.bfloat16,
    **from_pretrained_kwargs,
) -> MoSTForCausalLM:
    """DeepSeek-V2(-Lite) safetensors directory -> MoSTForCausalLM (expert j -> expert j), validated first.

    Checks, before loading any tensor: config.json is a DeepSeek-V2 config matching the MoST config; the index names
    no missing shard; every shard is safetensors (not a pickle); every expected tensor exists with the right shape.
    Tensors the model does not use are logged and ignored. MoST-only parts (the audio projection) live in
    SpeechEncoder and start fresh.
    """
    directory = Path(directory)
    config_path = directory / "config.json"
    deepseek = read_json(config_path)
    if deepseek.get("model_type") not in ("deepseek_v2", "most"):
        raise CheckpointError(config_path, f"model_type is {deepseek.get('model_type')!r}, expected 'deepseek_v2'")
    config = most_config_from_deepseek(deepseek, most_config, source=config_path)

    found = tensor_shapes(safetensors_files(directory))
    expected = expected_checkpoint_shapes(config)
    for key, shape in expected.items():
        if key in found and found[key][0] != shape:
            raise CheckpointError(found[key][1], f"tensor {key} has shape {list(found[key][0])}, expected {list(shape)}")
    missing = sorted(set(expected) - set(found))
    if missing:
        raise CheckpointError(directory, f"{len(missing)} tensors missing from the safetensors, e.g. {missing[0]}")
    unused = sorted(set(found) - set(expected))
    if unused:
        logger.warning("ignoring %d tensors MoST does not use, e.g. %s", len(unused), unused[0])

    return MoSTForCausalLM.from_pretrained(directory, config=config, dtype=dtype, use_safetensors=True, **from_pretrained_kwargs)


# -----------------------------------------------------------------------------------------------------------------
# HuBERT


def hubert_config_from_fairseq(model_cfg: dict) -> HubertConfig:
    """transformers HubertConfig for a fairseq HuBERT `model_cfg` dict (inference: dropouts off)."""
    layers = conv_layers(model_cfg.get("conv_feature_layers", "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"))
    if model_cfg.get("conv_pos_batch_norm"):
        raise NotImplementedError("conv_pos_batch_norm HuBERT checkpoints are not supported")
    return HubertConfig(
        hidden_size=model_cfg.get("encoder_embed_dim", 768),
        num_hidden_layers=model_cfg.get("encoder_layers", 12),
        num_attention_heads=model_cfg.get("encoder_attention_heads", 12),
        intermediate_size=model_cfg.get("encoder_ffn_embed_dim", 3072),
        hidden_act=model_cfg.get("activation_fn", "gelu"),
        conv_dim=[d for d, _, _ in layers],
        conv_kernel=[k for _, k, _ in layers],
        conv_stride=[s for _, _, s in layers],
        conv_bias=bool(model_cfg.get("conv_bias", False)),
        feat_extract_norm="group" if model_cfg.get("extractor_mode", "default") == "default" else "layer",
        feat_proj_layer_norm=True,  # fairseq HuBERT layer-norms the conv features before post_extract_proj
        num_conv_pos_embeddings=model_cfg.get("conv_pos", 128),
        num_conv_pos_embedding_groups=model_cfg.get("conv_pos_groups", 16),
        do_stable_layer_norm=bool(model_cfg.get("layer_norm_first", False)),
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0,
    )


def import_hubert(path: str | Path) -> tuple[HubertModel, bool]:
    """HuBERT from a transformers directory or a SpiritLM converted dict. Returns (model in eval mode, normalize):
    whether to layer-norm the waveform first (fairseq task.normalize, or transformers' preprocessor do_normalize;
    False for HuBERT-base models)."""
    path = Path(path)
    if path.is_dir():
        read_json(path / "config.json")
        safetensors_files(path)
        preprocessor = path / "preprocessor_config.json"
        normalize = bool(read_json(preprocessor).get("do_normalize", False)) if preprocessor.is_file() else False
        return HubertModel.from_pretrained(path, use_safetensors=True).eval(), normalize

    if path.suffix == ".safetensors":
        check_safetensors_file(path)
    state = load_torch_dict(path)
    if not {"model_cfg", "model_weight"} <= set(state):
        raise CheckpointError(path, f"keys {sorted(state)[:5]}: expected SpiritLM's converted dict (model_cfg, model_weight)")
    model = HubertModel(hubert_config_from_fairseq(dict(state["model_cfg"])))
    try:
        weights = fairseq_to_hf(state["model_weight"])
    except KeyError as error:
        raise CheckpointError(path, f"unexpected HuBERT tensor {error.args[0]!r}") from None
    _check_shapes(weights, model.state_dict(), path, "HuBERT weights")
    model.load_state_dict(weights)
    normalize = bool(dict(state.get("task_cfg") or {}).get("normalize", False))
    return model.eval(), normalize


# -----------------------------------------------------------------------------------------------------------------
# Vocoder and quantizer


def import_vocoder(path: str | Path, config_path: str | Path | None = None) -> UnitVocoder:
    """Unit HiFi-GAN from SpiritLM's `generator.pt` (key `generator`) or a safetensors file; config.json beside it."""
    path = Path(path)
    cfg = read_json(Path(config_path) if config_path else path.parent / "config.json")
    if path.suffix == ".safetensors":
        check_safetensors_file(path)
        state = load_file(str(path))
    else:
        state = load_torch_dict(path)
        state = state.get("generator", state)
    try:
        vocoder = UnitVocoder(cfg)
    except (KeyError, NotImplementedError) as error:
        raise CheckpointError(path.parent / "config.json", f"unusable vocoder config ({error})") from None
    weight_norm = any(key.endswith("weight_g") for key in state)
    if not weight_norm:
        vocoder.remove_weight_norm()  # weight norm already folded into the saved weights
    try:
        weights = fairseq_to_speechbrain(state)
    except KeyError as error:
        raise CheckpointError(path, str(error.args[0])) from None
    _check_shapes(weights, vocoder.state_dict(), path, "vocoder weights")
    vocoder.load_state_dict(weights)
    if weight_norm:
        vocoder.remove_weight_norm()
    return vocoder.eval()


def import_quantizer(path: str | Path):
    """LinearQuantizer (SpiritLM .pt dict `model_weight`, or safetensors `encoder.*`) or KMeansQuantizer
    (.npy / safetensors `centroids`). joblib / pickle k-means files are refused: export `cluster_centers_` to .npy
    in an environment you trust."""
    path = Path(path)
    if path.suffix in (".pkl", ".joblib", ".bin"):
        raise CheckpointError(path, "is a pickle (e.g. joblib k-means); export the centroids to .npy or safetensors")
    if path.suffix == ".npy":
        try:
            return KMeansQuantizer.from_file(path)
        except ValueError as error:
            raise CheckpointError(path, f"unreadable without pickle ({error})") from None
    if path.suffix == ".safetensors":
        check_safetensors_file(path)
        state = load_file(str(path))
        if "centroids" in state:
            return KMeansQuantizer(state["centroids"])
        return LinearQuantizer.from_state_dict(state).eval()
    state = load_torch_dict(path)
    if "model_weight" not in state:
        raise CheckpointError(path, f"keys {sorted(state)[:5]}: expected SpiritLM's quantizer dict (model_weight)")
    return LinearQuantizer.from_state_dict(state["model_weight"]).eval()
