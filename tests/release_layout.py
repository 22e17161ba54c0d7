"""A tiny checkpoint in the MoST release's exact layout, written by hand from the bundled tiny checkpoint: release
config fields, per-expert keys with the experts stored in another order, the ``MAMoEGate`` rows, a fairseq-layout
HuBERT and its projection under ``audio_wave_processor``, and a tokenizer with ``[HuN]`` tokens and the release's
special tokens (plus a ``tokenization_most_fast.py`` that fails if anything runs it)."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

TINY = Path(__file__).resolve().parents[1] / "reference_impl" / "checkpoints" / "tiny"
#: where the release stores our expert j: our text experts 0..3 at release indices 6, 1, 4, 3; audio 4..7 at 0, 7, 2, 5
RELEASE_INDEX = [6, 1, 4, 3, 0, 7, 2, 5]
#: the release config's fields beyond DeepSeek-V2's (the tiny checkpoint's values)
RELEASE_FIELDS = {"text_expert_indices": [6, 1, 4, 3], "audio_expert_indices": [0, 7, 2, 5],
                  "use_modality_aware_routing": True, "begin_audio_wave_token_id": 118, "end_audio_wave_token_id": 119}
#: our config fields, which a release config does not have
OUR_FIELDS = ("modality_routing", "num_text_experts", "audio_token_range", "unit_token_offset", "num_units",
              "audio_span_begin_id", "audio_span_end_id", "span_marker_modality", "speech_feature_dim",
              "speech_feature_layer", "unit_feature_layer", "deduplicate_units", "aux_loss_alpha")
#: transformers HubertModel key -> fairseq key, by hand (the tiny HuBERT has 8 conv layers and 2 encoder layers)
HF_TO_FAIRSEQ = {
    "feature_projection.layer_norm": "layer_norm",
    "feature_projection.projection": "post_extract_proj",
    "encoder.layer_norm": "encoder.layer_norm",
    "encoder.pos_conv_embed.conv.bias": "encoder.pos_conv.0.bias",
    "encoder.pos_conv_embed.conv.parametrizations.weight.original0": "encoder.pos_conv.0.weight_g",
    "encoder.pos_conv_embed.conv.parametrizations.weight.original1": "encoder.pos_conv.0.weight_v",
    "masked_spec_embed": "mask_emb",
    "feature_extractor.conv_layers.0.layer_norm": "feature_extractor.conv_layers.0.2",
    **{f"feature_extractor.conv_layers.{i}.conv": f"feature_extractor.conv_layers.{i}.0" for i in range(8)},
    **{f"encoder.layers.{i}.{ours}": f"encoder.layers.{i}.{theirs}" for i in range(2) for ours, theirs in (
        ("attention.q_proj", "self_attn.q_proj"), ("attention.k_proj", "self_attn.k_proj"),
        ("attention.v_proj", "self_attn.v_proj"), ("attention.out_proj", "self_attn.out_proj"),
        ("layer_norm", "self_attn_layer_norm"), ("feed_forward.intermediate_dense", "fc1"),
        ("feed_forward.output_dense", "fc2"), ("final_layer_norm", "final_layer_norm"))},
}
TOKENIZER_CODE = 'raise RuntimeError("the release tokenizer code must never be run")\n'
CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 '.,?!-:;\"()&%$/"


def read(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}


def fairseq_key(hf_key: str) -> str:
    for ours, theirs in HF_TO_FAIRSEQ.items():
        if hf_key == ours or hf_key.startswith(ours + "."):
            return theirs + hf_key[len(ours):]
    raise KeyError(hf_key)


def release_tokenizer_files(folder: Path) -> None:
    """tokenizer.json: characters, the release's sentence and audio tokens, [Hu0]..[Hu15] at the tiny config's ids."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = {"<unk>": 0, "<|begin_of_sentence|>": 1, "<|end_of_sentence|>": 2, "<pad>": 3}
    vocab.update({c: 16 + i for i, c in enumerate(CHARS)})
    specials = {f"[Hu{k}]": 100 + k for k in range(16)}
    specials.update({"<|begin_of_audio|>": 116, "<|end_of_audio|>": 117, "<|begin_of_audio_wave|>": 118,
                     "<|end_of_audio_wave|>": 119})
    vocab.update(specials)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_sentence|> $A",
                                                       special_tokens=[("<|begin_of_sentence|>", 1)])
    from tokenizers import AddedToken

    tok.add_special_tokens([AddedToken(t, special=True) for t in ("<|begin_of_sentence|>", "<|end_of_sentence|>",
                                                                   "<pad>", *specials)])
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "MoSTTokenizerFast",
        "auto_map": {"AutoTokenizer": [None, "tokenization_most_fast.MoSTTokenizerFast"]},
        "bos_token": "<|begin_of_sentence|>", "eos_token": "<|end_of_sentence|>", "pad_token": "<pad>",
        "unk_token": "<unk>"}, indent=2))
    (folder / "tokenization_most_fast.py").write_text(TOKENIZER_CODE)


def write_release_checkpoint(folder: Path, extra: dict | None = None, drop: tuple[str, ...] = ()) -> Path:
    """The bundled tiny checkpoint rewritten in the release's layout under ``folder``; ``extra`` tensors are added
    (unexpected ones) and ``drop`` keys left out (to be left at init)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = json.loads((TINY / "config.json").read_text())
    for name in OUR_FIELDS:
        config.pop(name, None)
    config.update(RELEASE_FIELDS, model_type="MoST", architectures=["MoSTForCausalLM"],
                  auto_map={"AutoModelForCausalLM": "modeling_most.MoSTForCausalLM"})
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    tensors = {}
    for key, value in read(TINY / "model.safetensors").items():
        parts = key.split(".")
        if len(parts) > 5 and parts[3] == "mlp" and parts[4] == "experts":  # model.layers.i.mlp.experts.j.*
            parts[5] = str(RELEASE_INDEX[int(parts[5])])
            key = ".".join(parts)
        elif key.endswith(".mlp.gate.weight"):  # release row RELEASE_INDEX[j] = our expert j's row
            rows = value.clone()
            for j, r in enumerate(RELEASE_INDEX):
                rows[r] = value[j]
            value = rows
        tensors[key] = value
    for key, value in read(TINY / "hubert" / "model.safetensors").items():
        tensors["audio_wave_processor.hubert_model." + fairseq_key(key)] = value
    for key, value in read(TINY / "speech_projection.safetensors").items():
        tensors["audio_wave_processor.proj." + key] = value
    tensors.update(extra or {})
    for key in drop:
        tensors.pop(key)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"))
    release_tokenizer_files(folder)
    return folder
