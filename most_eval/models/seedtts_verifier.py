"""Seed-TTS-eval's speaker verifier rebuilt offline as torch modules: a WavLM-large upstream (transformers'
``WavLMModel`` built from its config, fairseq/s3prl key names mapped onto it) whose hidden states are mixed by a
softmax-weighted sum into an ECAPA-TDNN head (256-d), as UniSpeech's ``downstreams/speaker_verification``
``ECAPA_TDNN_SMALL(feat_dim=1024, feat_type="wavlm_large")`` builds it. The embedder that loads the official
checkpoint into it is :class:`most_eval.models.speaker_embedders.SeedTTSWavLMEmbedder`."""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn


# WavLM-Large in transformers' WavLMConfig terms (the values of microsoft/wavlm-large's config.json that shape the
# network); a config.json in PATH replaces it (the tests use a tiny one).
WAVLM_LARGE_CONFIG = {
    "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
    # conv front end: fairseq "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2", a LayerNorm in every block
    "conv_dim": [512] * 7, "conv_stride": [5, 2, 2, 2, 2, 2, 2], "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_bias": False, "feat_extract_norm": "layer",  # fairseq extractor_mode "layer_norm"
    "do_stable_layer_norm": True,  # fairseq layer_norm_first: pre-LN blocks, a final LayerNorm after the last
    "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16,  # fairseq conv_pos, conv_pos_groups
    "num_buckets": 320, "max_bucket_distance": 800,  # gated relative position bias (fairseq max_distance)
    "hidden_act": "gelu", "feat_extract_activation": "gelu", "layer_norm_eps": 1e-5,
}


# fairseq/s3prl WavLM parameter names (the checkpoint's ``feature_extract.model.*``) -> transformers WavLMModel names.
# Applied in order to the name after the prefix; weight-norm halves (g, v) are resolved against the model afterwards.
WAVLM_KEY_MAP = [
    (r"^feature_extractor\.conv_layers\.(\d+)\.0\.", r"feature_extractor.conv_layers.\1.conv."),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.1\.", r"feature_extractor.conv_layers.\1.layer_norm."),  # layer_norm
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.", r"feature_extractor.conv_layers.\1.layer_norm."),  # group norm
    (r"^layer_norm\.", "feature_projection.layer_norm."),  # LayerNorm(512) on the conv features
    (r"^post_extract_proj\.", "feature_projection.projection."),  # 512 -> 1024
    (r"^encoder\.pos_conv\.0\.", "encoder.pos_conv_embed.conv."),  # weight-normed conv (weight_g, weight_v, bias)
    (r"^encoder\.layers\.(\d+)\.self_attn\.grep_linear\.", r"encoder.layers.\1.attention.gru_rel_pos_linear."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.grep_a$", r"encoder.layers.\1.attention.gru_rel_pos_const"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.relative_attention_bias\.", r"encoder.layers.\1.attention.rel_attn_embed."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.", r"encoder.layers.\1.attention.\2_proj."),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.", r"encoder.layers.\1.layer_norm."),
    (r"^encoder\.layers\.(\d+)\.fc1\.", r"encoder.layers.\1.feed_forward.intermediate_dense."),
    (r"^encoder\.layers\.(\d+)\.fc2\.", r"encoder.layers.\1.feed_forward.output_dense."),
    (r"^encoder\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.final_layer_norm."),
    (r"^encoder\.layer_norm\.", "encoder.layer_norm."),
]


# checkpoint keys with no role in inference: WavLM's training-time mask vector, and the speaker classifier of the
# verification training loss (AAM softmax), where a checkpoint carries it
SEEDTTS_UNUSED_KEYS = {"feature_extract.model.mask_emb", "loss_calculator.projection.weight"}


# weight norm of the positional conv: torch's old layout (weight_g, weight_v) and its parametrizations layout
_WEIGHT_NORM = {".conv.weight_g": ".conv.parametrizations.weight.original0",
                ".conv.weight_v": ".conv.parametrizations.weight.original1"}


def wavlm_key(fairseq_name: str) -> str | None:
    """transformers ``WavLMModel`` name of a fairseq/s3prl WavLM parameter (weight-norm halves as ``weight_g/_v``);
    None for a name with no counterpart."""
    for pattern, repl in WAVLM_KEY_MAP:
        name, n = re.subn(pattern, repl, fairseq_name)
        if n:
            return name
    return None


class Conv1dReluBn(nn.Module):
    """Conv1d -> ReLU -> BatchNorm1d (UniSpeech's order: the norm comes after the activation)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 1, padding: int = 0, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel_size, padding=padding, dilation=dilation)
        self.bn = nn.BatchNorm1d(cout)

    def forward(self, x):
        return self.bn(F.relu(self.conv(x)))


class Res2Conv1dReluBn(nn.Module):
    """Res2Net block: channels split into ``scale`` groups; group i (i < scale-1) is conv(group i + output i-1),
    the last group passes through untouched."""

    def __init__(self, channels: int, kernel_size: int, padding: int, dilation: int, scale: int = 8):
        super().__init__()
        self.width = channels // scale
        self.convs = nn.ModuleList(nn.Conv1d(self.width, self.width, kernel_size, padding=padding,
                                             dilation=dilation) for _ in range(scale - 1))
        self.bns = nn.ModuleList(nn.BatchNorm1d(self.width) for _ in range(scale - 1))

    def forward(self, x):
        groups = torch.split(x, self.width, dim=1)
        out, y = [], None
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            y = groups[i] if i == 0 else y + groups[i]
            y = bn(F.relu(conv(y)))
            out.append(y)
        out.append(groups[len(self.convs)])
        return torch.cat(out, dim=1)


class SEConnect(nn.Module):
    """Squeeze-excitation over channels: time mean -> 128 -> ReLU -> channels -> sigmoid gate."""

    def __init__(self, channels: int, bottleneck: int = 128):
        super().__init__()
        self.linear1 = nn.Linear(channels, bottleneck)
        self.linear2 = nn.Linear(bottleneck, channels)

    def forward(self, x):
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(dim=2)))))  # (B, C)
        return x * gate.unsqueeze(2)


class SERes2Block(nn.Module):
    """1x1 conv, Res2 dilated conv, 1x1 conv, SE, plus the identity (in = out channels, so no shortcut conv)."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.Conv1dReluBn1 = Conv1dReluBn(channels, channels)
        self.Res2Conv1dReluBn = Res2Conv1dReluBn(channels, 3, padding=dilation, dilation=dilation)
        self.Conv1dReluBn2 = Conv1dReluBn(channels, channels)
        self.SE_Connect = SEConnect(channels)

    def forward(self, x):
        return x + self.SE_Connect(self.Conv1dReluBn2(self.Res2Conv1dReluBn(self.Conv1dReluBn1(x))))


class AttentiveStatsPool(nn.Module):
    """Attention-weighted mean and standard deviation over time (per channel attention; tanh, not ReLU)."""

    def __init__(self, channels: int, attention_channels: int = 128):
        super().__init__()
        self.linear1 = nn.Conv1d(channels, attention_channels, kernel_size=1)
        self.linear2 = nn.Conv1d(attention_channels, channels, kernel_size=1)

    def forward(self, x):  # (B, C, T) -> (B, 2C)
        alpha = torch.softmax(self.linear2(torch.tanh(self.linear1(x))), dim=2)
        mean = torch.sum(alpha * x, dim=2)
        var = torch.sum(alpha * x ** 2, dim=2) - mean ** 2
        return torch.cat([mean, torch.sqrt(var.clamp(min=1e-9))], dim=1)


class SeedTTSVerifier(nn.Module):
    """WavLM (transformers) + UniSpeech ``ECAPA_TDNN_SMALL`` head; head parameter names are UniSpeech's, so the
    official state dict maps on one-to-one; the upstream's names go through :data:`WAVLM_KEY_MAP`."""

    def __init__(self, config, channels: int = 512, emb_dim: int = 256):
        super().__init__()
        from transformers import WavLMModel

        self.wavlm = WavLMModel(config)
        dim = config.hidden_size
        self.feature_weight = nn.Parameter(torch.zeros(config.num_hidden_layers + 1))  # softmax-mixed states
        self.instance_norm = nn.InstanceNorm1d(dim)  # no affine, no running stats: no parameters
        self.layer1 = Conv1dReluBn(dim, channels, kernel_size=5, padding=2)
        self.layer2 = SERes2Block(channels, dilation=2)
        self.layer3 = SERes2Block(channels, dilation=3)
        self.layer4 = SERes2Block(channels, dilation=4)
        self.conv = nn.Conv1d(channels * 3, 1536, kernel_size=1)  # UniSpeech fixes 1536 here
        self.pooling = AttentiveStatsPool(1536)
        self.bn = nn.BatchNorm1d(1536 * 2)
        self.linear = nn.Linear(1536 * 2, emb_dim)

    def hidden_states(self, wav):
        """s3prl's ``hidden_states`` of WavLM: (L+1, B, T, D) — each layer's input, then the normed output."""
        wav = F.layer_norm(wav, wav.shape[-1:])  # WavLM-Large cfg.normalize: zero mean, unit variance
        feats = self.wavlm.feature_extractor(wav).transpose(1, 2)  # (B, T, 512), 20 ms frames
        x, _ = self.wavlm.feature_projection(feats)  # LayerNorm + Linear -> (B, T, D)
        encoder = self.wavlm.encoder
        x = x + encoder.pos_conv_embed(x)
        states, position_bias = [x], None
        for layer in encoder.layers:  # layer 0 computes the relative position bias, the others reuse it
            x, position_bias = layer(x, position_bias=position_bias)
            states.append(x)
        states[-1] = encoder.layer_norm(x)  # s3prl hooks the encoder's output: after the final LayerNorm
        return torch.stack(states)

    def forward(self, wav):  # (B, samples) at 16 kHz -> (B, emb_dim)
        states = self.hidden_states(wav)
        weights = F.softmax(self.feature_weight, dim=-1)[:, None, None, None]  # (L+1, 1, 1, 1)
        x = (weights * states).sum(dim=0)  # (B, T, D)
        x = self.instance_norm(x.transpose(1, 2) + 1e-6)  # (B, D, T)
        out1 = self.layer1(x)
        out2 = self.layer2(out1)
        out3 = self.layer3(out2)
        out4 = self.layer4(out3)
        x = F.relu(self.conv(torch.cat([out2, out3, out4], dim=1)))  # (B, 1536, T)
        return self.linear(self.bn(self.pooling(x)))


def seedtts_verifier(config) -> SeedTTSVerifier:
    """Seed-TTS-eval's verifier for a transformers ``WavLMConfig``, randomly initialised (load weights afterwards)."""
    return SeedTTSVerifier(config)
