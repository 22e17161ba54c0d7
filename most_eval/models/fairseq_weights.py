"""fairseq's HuBERT / wav2vec 2.0 weights in transformers' modules: the key names, and the conv stack spec.

fairseq's ``HubertModel`` and ``Wav2Vec2Model`` share one layout (``feature_extractor.conv_layers``,
``post_extract_proj``, ``encoder.pos_conv``, ``encoder.layers.{i}.self_attn``, ...), and transformers'
``HubertModel`` / ``Wav2Vec2Model`` (``feat_extract_norm="group"``, post-LN) compute the same thing under other
names. This is that renaming, used for SpiritLM's HuBERT dict, a MoST release checkpoint's HuBERT and UTMOS's
wav2vec 2.0 (fairseq: ``fairseq/models/hubert/hubert.py``, ``fairseq/models/wav2vec/wav2vec2.py``).
"""

from __future__ import annotations

import ast
import re

import torch


def conv_layers(spec: str) -> list[tuple[int, int, int]]:
    """Parses fairseq's `conv_feature_layers` string, e.g. "[(512,10,5)] + [(512,3,2)] * 4", without eval."""

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = value(node.left), value(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(f"unsupported expression in conv_feature_layers: {ast.dump(node)}")

    return [tuple(layer) for layer in value(ast.parse(spec, mode="eval").body)]


#: fairseq key -> transformers key (applied in order, first match wins)
RULES = [
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"layer_norm\.(weight|bias)", r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_projection.projection.\1"),
    (r"mask_emb", r"masked_spec_embed"),
    (r"encoder\.pos_conv\.0\.bias", r"encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.pos_conv\.0\.weight_g", r"encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.weight_v", r"encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
]
PRETRAINING_ONLY = ("label_embs_concat", "final_proj.weight", "final_proj.bias")


def fairseq_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames fairseq HuBERT / wav2vec 2.0 weights to transformers' ``HubertModel`` / ``Wav2Vec2Model`` keys
    (pre-training heads dropped); KeyError naming the first key no rule knows."""
    out = {}
    for key, tensor in state.items():
        if key in PRETRAINING_ONLY:
            continue
        for pattern, replacement in RULES:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, replacement, key)] = tensor
                break
        else:
            raise KeyError(key)
    return out
