"""A checkpoint saved by the MoST release (NUS-HPC-AI-Lab/MoST at 9c13577) converted, once, into this package's
checkpoint layout (adapter.py), with a report of what was mapped, left at init and unexpected.

A release checkpoint is a ``save_pretrained`` of its ``MoSTForCausalLM``:

* ``config.json`` with ``model_type: "MoST"``, DeepSeek-V2's fields, and ``text_expert_indices`` /
  ``audio_expert_indices``, ``use_modality_aware_routing``, ``begin_audio_wave_token_id`` /
  ``end_audio_wave_token_id``;
* the LM in DeepSeek-V2's per-expert layout (``model.layers.{i}.mlp.experts.{j}.{gate,up,down}_proj.weight``), its
  ``MAMoEGate`` router (``model.layers.{i}.mlp.gate.weight``) and the shared experts, as DeepSeek-V2-Lite ships them;
* ``audio_wave_processor.hubert_model.*``: a fairseq-layout HuBERT, and ``audio_wave_processor.proj``, the linear
  layer from HuBERT features to the LM's hidden size;
* its tokenizer (``tokenizer.json`` with ``[Hu0]`` ... unit tokens, ``<|begin_of_audio|>`` / ``<|end_of_audio|>``;
  ``tokenization_most_fast.py``, which is never run here: ``tokenizer.json`` is read by transformers' own fast
  tokenizer).

The mapping, field by field (:func:`most_config`): DeepSeek-V2's fields as they are; ``use_modality_aware_routing``
-> ``modality_routing``; the expert index lists -> ``num_text_experts``, the experts (and the router's rows) reordered
text experts first, audio experts after, since this package splits experts by index; the two wave-span ids ->
``audio_span_begin_id`` / ``audio_span_end_id``; the unit token ids (read from the tokenizer) ->
``unit_token_offset``, ``num_units``, ``audio_token_range``; HuBERT's shapes -> ``speech_feature_dim`` and
``speech_feature_layer`` (its last layer). The HuBERT architecture is read from its tensors' shapes; what shapes do
not say (attention heads, conv strides) follows fairseq's conventions: ``hidden / 64`` heads unless
``hubert_heads`` says otherwise, stride 5 for a kernel of 10 and 2 for kernels of 3 and 2.

Where the release's code differs from the MoST paper this package follows the paper (docs/release-checkpoints.md):
the span markers 100504/100505 are text-marked here (the release's modality function labels them 2, "image"), and
HuBERT gets a padding mask with True at padded frames (the release passes its inverted mask, 1 = valid).

A release checkpoint holds neither the unit quantizer nor the vocoder (the release takes them from SpiritLM): give
them as ``quantizer=`` / ``vocoder=``; without them the converted checkpoint transcribes and answers in text but
neither speaks nor scores speech.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import HubertConfig, HubertModel
from transformers.models.deepseek_v2.configuration_deepseek_v2 import DeepseekV2Config

from most_eval.models.fairseq_weights import fairseq_to_hf

from .import_weights import (CheckpointError, expected_checkpoint_shapes, import_quantizer, read_json,
                             safetensors_files)
from .model import MoSTConfig
from .prompt_formats import prompt_format

logger = logging.getLogger(__name__)

RELEASE_MODEL_TYPE = "MoST"
HUBERT_PREFIX = "audio_wave_processor.hubert_model."
PROJ_PREFIX = "audio_wave_processor.proj."
#: fairseq's conv kernel -> stride (HuBERT and wav2vec 2.0 use kernel 10 / stride 5, then 3/2 and 2/2)
KERNEL_STRIDE = {10: 5, 3: 2, 2: 2}
UNIT_TOKEN = re.compile(r"\[Hu(\d+)\]")
#: bumped when the conversion changes, so cached conversions are made again
CONVERTER_VERSION = 1


@dataclass
class ConversionReport:
    """What a conversion did: tensors mapped (by part), left at init, unexpected; the config fields mapped; the
    expert order; what the release checkpoint lacks."""

    source: str
    mapped: dict[str, int] = field(default_factory=dict)
    left_at_init: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    config_fields: dict[str, str] = field(default_factory=dict)
    expert_order: list[int] = field(default_factory=list)
    not_in_checkpoint: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log."""
        mapped = ", ".join(f"{n} {part}" for part, n in self.mapped.items())
        return (f"release checkpoint {self.source}: mapped {mapped}; left at init: {len(self.left_at_init)}"
                f"{' (' + ', '.join(self.left_at_init[:3]) + ')' if self.left_at_init else ''}; unexpected: "
                f"{len(self.unexpected)}{' (' + ', '.join(self.unexpected[:3]) + ')' if self.unexpected else ''}"
                + (f"; not in a release checkpoint: {', '.join(self.not_in_checkpoint)}" if self.not_in_checkpoint
                   else ""))


def is_release_checkpoint(folder: str | Path) -> bool:
    """Whether ``folder`` holds a release checkpoint (its config.json says ``model_type: "MoST"``)."""
    config = Path(folder) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type") == RELEASE_MODEL_TYPE
    except (OSError, ValueError, AttributeError):
        return False


def release_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the release checkpoint's safetensors files (checked as safetensors first)."""
    tensors = {}
    for path in safetensors_files(folder):
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():
                tensors[key] = fh.get_tensor(key)
    return tensors


def unit_layout(tokenizer, source: Path) -> dict:
    """``unit_token_offset``, ``num_units`` and ``audio_token_range`` from the tokenizer's ``[HuN]`` tokens and
    begin / end-of-audio tokens; CheckpointError when they do not form this package's layout (units contiguous,
    begin-of-audio and end-of-audio right after the last unit)."""
    vocab = tokenizer.get_vocab()
    units = sorted((int(m.group(1)), i) for t, i in vocab.items() if (m := UNIT_TOKEN.fullmatch(t)))
    if not units:
        raise CheckpointError(source, "the tokenizer has no [HuN] unit tokens")
    offset = units[0][1]
    if [n for n, _ in units] != list(range(len(units))) or any(i != offset + n for n, i in units):
        raise CheckpointError(source, "the tokenizer's [HuN] tokens are not [Hu0]...[HuK] at consecutive ids")
    boa, eoa = vocab.get("<|begin_of_audio|>"), vocab.get("<|end_of_audio|>")
    if (boa, eoa) != (offset + len(units), offset + len(units) + 1):
        raise CheckpointError(source, f"<|begin_of_audio|> / <|end_of_audio|> are ids {boa} / {eoa}; this package "
                                      f"needs them right after the last unit ({offset + len(units)} / "
                                      f"{offset + len(units) + 1})")
    return {"unit_token_offset": offset, "num_units": len(units), "audio_token_range": [offset, eoa]}


def hubert_config(weights: dict[str, torch.Tensor], heads: int, source: Path) -> HubertConfig:
    """A transformers HubertConfig for fairseq HuBERT weights, from their shapes (module docstring)."""
    try:
        conv = sorted((int(m.group(1)), w) for k, w in weights.items()
                      if (m := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.0\.weight", k)))
        hidden = weights["post_extract_proj.weight"].shape[0]
        layers = 1 + max(int(m.group(1)) for k in weights if (m := re.match(r"encoder\.layers\.(\d+)\.", k)))
        pos = weights["encoder.pos_conv.0.weight_v"]
    except (KeyError, ValueError) as exc:
        raise CheckpointError(source, f"{HUBERT_PREFIX}*: not a fairseq HuBERT ({exc})") from None
    kernels = [w.shape[-1] for _, w in conv]
    if any(k not in KERNEL_STRIDE for k in kernels):
        raise CheckpointError(source, f"HuBERT conv kernels {kernels}: no fairseq stride known for "
                                      f"{[k for k in kernels if k not in KERNEL_STRIDE]}")
    heads = heads or hidden // 64
    if heads < 1 or hidden % heads:
        raise CheckpointError(source, f"HuBERT hidden size {hidden}: give hubert_heads= (it divides the hidden size)")
    return HubertConfig(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=weights["encoder.layers.0.fc1.weight"].shape[0],
        conv_dim=[w.shape[0] for _, w in conv], conv_kernel=kernels, conv_stride=[KERNEL_STRIDE[k] for k in kernels],
        conv_bias=any(k.endswith(".0.bias") for k in weights if k.startswith("feature_extractor")),
        feat_extract_norm="group", feat_proj_layer_norm=True, do_stable_layer_norm=False,
        num_conv_pos_embeddings=pos.shape[-1], num_conv_pos_embedding_groups=hidden // pos.shape[1],
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0)


def most_config(release: dict, layout: dict, hubert: HubertConfig, source: Path,
                report: ConversionReport) -> tuple[MoSTConfig, list[int]]:
    """Our MoSTConfig from the release's config.json (field by field, module docstring) and the expert order
    (text experts first) the weights are reordered into."""
    n = release.get("n_routed_experts")
    text, audio = release.get("text_expert_indices"), release.get("audio_expert_indices")
    if not (isinstance(text, list) and isinstance(audio, list) and sorted(text + audio) == list(range(n or 0))):
        raise CheckpointError(source, f"text_expert_indices {text} and audio_expert_indices {audio} do not split the "
                                      f"{n} routed experts")
    begin, end = release.get("begin_audio_wave_token_id"), release.get("end_audio_wave_token_id")
    if not (isinstance(begin, int) and isinstance(end, int)):
        raise CheckpointError(source, "begin_audio_wave_token_id / end_audio_wave_token_id missing")
    release_only = {"text_expert_indices", "audio_expert_indices", "use_modality_aware_routing",
                    "begin_audio_wave_token_id", "end_audio_wave_token_id"}
    given = {k: v for k, v in release.items() if k not in release_only | {"model_type", "architectures", "auto_map"}}
    arch = DeepseekV2Config.from_dict(given).to_dict()  # DeepSeek-V2's own reading (legacy rope_scaling included)
    fields = {k: v for k, v in arch.items() if k in DeepseekV2Config.__annotations__}
    ignored = sorted(k for k in given if k not in DeepseekV2Config.__annotations__
                     and k not in ("rope_scaling", "rope_theta", "transformers_version", "torch_dtype", "dtype"))
    mapped = {
        "modality_routing": bool(release.get("use_modality_aware_routing", True)),
        "num_text_experts": len(text),
        "audio_span_begin_id": begin, "audio_span_end_id": end,
        "span_marker_modality": 0,
        "speech_feature_dim": hubert.hidden_size, "speech_feature_layer": hubert.num_hidden_layers,
        "unit_feature_layer": max(1, hubert.num_hidden_layers - 1), **layout,
    }
    report.config_fields = {
        "use_modality_aware_routing": "modality_routing",
        "text_expert_indices, audio_expert_indices": f"num_text_experts={len(text)}, experts reordered text first",
        "begin_audio_wave_token_id, end_audio_wave_token_id": "audio_span_begin_id, audio_span_end_id",
        "tokenizer [HuN], <|begin_of_audio|>, <|end_of_audio|>": "unit_token_offset, num_units, audio_token_range",
        "audio_wave_processor.hubert_model shapes": "speech_feature_dim, speech_feature_layer (last layer)",
        **({"ignored": ", ".join(ignored)} if ignored else {}),
    }
    return MoSTConfig(**{**fields, **mapped}), [*text, *audio]


def reorder_experts(tensors: dict[str, torch.Tensor], order: list[int]) -> dict[str, torch.Tensor]:
    """Expert j of ours = the release's expert ``order[j]`` (weights and the router's row), so text experts come
    first; the identity order changes nothing."""
    out = {}
    inverse = {old: new for new, old in enumerate(order)}
    for key, tensor in tensors.items():
        m = re.fullmatch(r"(model\.layers\.\d+\.mlp\.experts)\.(\d+)\.(.*)", key)
        if m:
            out[f"{m.group(1)}.{inverse[int(m.group(2))]}.{m.group(3)}"] = tensor
        elif re.fullmatch(r"model\.layers\.\d+\.mlp\.gate\.weight", key):
            out[key] = tensor[order].contiguous()
        else:
            out[key] = tensor
    return out


def release_tokenizer(folder: Path):
    """The release's tokenizer from its ``tokenizer.json`` through transformers' own fast tokenizer (its
    ``tokenization_most_fast.py`` is not run), special tokens from ``tokenizer_config.json``."""
    from transformers import PreTrainedTokenizerFast

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise CheckpointError(path, "missing: the release checkpoint's tokenizer")
    config = read_json(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").is_file() else {}

    def token(name):
        value = config.get(name)
        return value.get("content") if isinstance(value, dict) else value

    return PreTrainedTokenizerFast(tokenizer_file=str(path), bos_token=token("bos_token") or "<|begin_of_sentence|>",
                                   eos_token=token("eos_token") or "<|end_of_sentence|>", pad_token=token("pad_token"),
                                   unk_token=token("unk_token"))


def convert_release_checkpoint(source: str | Path, target: str | Path, *, quantizer: str | Path | None = None,
                               vocoder: str | Path | None = None, hubert_heads: int = 0,
                               format_name: str = "release") -> ConversionReport:
    """Write the release checkpoint at ``source`` to ``target`` in this package's layout; the report is also
    written there (``conversion.json``) and into most.json."""
    source, target = Path(source), Path(target)
    release = read_json(source / "config.json")
    report = ConversionReport(str(source))
    tensors = release_tensors(source)
    hubert_fairseq = {k[len(HUBERT_PREFIX):]: v for k, v in tensors.items() if k.startswith(HUBERT_PREFIX)}
    proj = {k[len(PROJ_PREFIX):]: v for k, v in tensors.items() if k.startswith(PROJ_PREFIX)}
    if not hubert_fairseq or set(proj) != {"weight", "bias"}:
        raise CheckpointError(source, f"no {HUBERT_PREFIX}* and {PROJ_PREFIX}{{weight,bias}} tensors: not a release "
                                      f"checkpoint with its audio_wave_processor")
    tokenizer = release_tokenizer(source)
    hub_config = hubert_config(hubert_fairseq, hubert_heads, source)
    config, order = most_config(release, unit_layout(tokenizer, source / "tokenizer.json"), hub_config, source,
                                report)
    report.expert_order = order
    lm = reorder_experts({k: v for k, v in tensors.items() if k.startswith(("model.", "lm_head."))}, order)
    expected = expected_checkpoint_shapes(config)
    wrong = next((k for k in expected if k in lm and tuple(lm[k].shape) != expected[k]), None)
    if wrong:
        raise CheckpointError(source, f"{wrong} has shape {list(lm[wrong].shape)}, the config gives "
                                      f"{list(expected[wrong])}")
    report.left_at_init = sorted(set(expected) - set(lm))
    report.unexpected = sorted(set(lm) - set(expected)) + sorted(
        k for k in tensors if not k.startswith(("model.", "lm_head.", HUBERT_PREFIX, PROJ_PREFIX)))
    lm = {k: v.contiguous() for k, v in lm.items() if k in expected}
    dtype = next(iter(lm.values())).dtype if lm else torch.float32
    generator = torch.Generator().manual_seed(0)
    for key in report.left_at_init:  # initialised as the model initialises (norms 1, the rest N(0, range)): listed
        shape = expected[key]
        lm[key] = (torch.ones(shape) if key.endswith("norm.weight")
                   else torch.randn(shape, generator=generator) * config.initializer_range).to(dtype)

    try:
        hubert_state = fairseq_to_hf(hubert_fairseq)
    except KeyError as exc:
        raise CheckpointError(source, f"unexpected HuBERT tensor {HUBERT_PREFIX}{exc.args[0]}") from None
    hubert = HubertModel(hub_config)
    hubert_expected = hubert.state_dict()
    hubert_missing = sorted(set(hubert_expected) - set(hubert_state) - {"masked_spec_embed"})
    report.left_at_init += [f"hubert.{k}" for k in hubert_missing]
    hubert.load_state_dict({**hubert_expected, **hubert_state}, strict=True)

    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    config.architectures = ["MoSTForCausalLM"]
    config.save_pretrained(target)
    save_file(lm, str(target / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(target)
    hubert.save_pretrained(target / "hubert")
    save_file({k: v.contiguous() for k, v in proj.items()}, str(target / "speech_projection.safetensors"))
    report.mapped = {"LM tensors": len(lm), "HuBERT tensors": len(hubert_state), "projection tensors": len(proj)}
    if quantizer:
        import_quantizer(quantizer)  # checked before it is copied
        shutil.copy(quantizer, target / "quantizer.safetensors")
    else:
        report.not_in_checkpoint.append("quantizer (quantizer=)")
    if vocoder:
        shutil.copytree(vocoder, target / "vocoder")
    else:
        report.not_in_checkpoint.append("vocoder (vocoder=)")
    fmt = prompt_format(format_name)
    (target / "conversion.json").write_text(json.dumps(asdict(report), indent=2))
    (target / "most.json").write_text(json.dumps({"stage": "release", **fmt.record(),
                                                  "converted_from": str(source), "conversion": asdict(report)},
                                                 indent=2))
    logger.warning("most: %s", report.summary())
    return report


def conversion_key(source: Path, **options) -> str:
    """Digest of what a conversion depends on: the release files (names, sizes, modification times), the options
    and the converter's version."""
    files = sorted(p for p in source.rglob("*") if p.is_file())
    stamp = [(p.relative_to(source).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    blob = json.dumps({"files": stamp, "options": {k: str(v) for k, v in options.items()},
                       "version": CONVERTER_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def converted_checkpoint(source: str | Path, **options) -> tuple[Path, dict]:
    """The converted copy of a release checkpoint (made once, reused while the release files and the options are
    unchanged) and its conversion report. It lives under ``$MOST_EVAL_CACHE`` (default ``~/.cache/most-eval``)
    ``/release/<name>-<key>``."""
    source = Path(source).expanduser().resolve()
    root = Path(os.environ.get("MOST_EVAL_CACHE") or Path.home() / ".cache" / "most-eval")
    target = root / "release" / f"{source.name}-{conversion_key(source, **options)}"
    if not (target / "most.json").is_file():
        partial = target.with_name(target.name + ".partial")
        convert_release_checkpoint(source, partial, **options)
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    return target, read_json(target / "most.json").get("conversion", {})
