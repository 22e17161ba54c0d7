"""Random (untrained) MoST checkpoint folders in the `most` adapter's layout, for benchmarks.

Used by benchmarks/gpu_suite.py and benchmarks/bench_most_batch.py (import it from a script in benchmarks/):

    from _most_random_checkpoint import SIZES, build_random_checkpoint, most_config
    path = build_random_checkpoint(tmp / "ckpt", most_config("most_full.json", num_hidden_layers=4), size="full")
    model = MoSTModel(MoSTArgs(checkpoint=str(path), allow_untrained=True), device="cuda")

Every part is random but has the real part's shape, so compute costs are realistic while outputs are noise:
- LM: `MoSTForCausalLM(config)` with transformers' own init, saved at `dtype` (a config from reference_impl/configs,
  overrides on top: e.g. most_full.json with fewer layers is "full width, reduced depth");
- tokenizer: the character tokenizer of the training recipe (`mixing.build_char_tokenizer`), which names every id
  the config uses (bos/eos, units, span markers) and works for both the full and the tiny token layouts;
- speech in: a random HuBERT with the 25 Hz frame rate (hop 640 samples) of MoST's mHuBERT-base; "full" is
  HuBERT-base sized (768-d, 12 layers, 512-channel convs), "tiny" the training recipe's 2-layer toy;
- units: a random `LinearQuantizer` (SpiritLM's kind: MLP with num_units + 1 outputs, the last a blank);
- speech out: a random unit HiFi-GAN; "full" is SpiritLM-sized (512 initial channels, unit embedding 128, 640
  samples per unit, speaker + style tables, duration predictor), "tiny" the training recipe's toy.
The folder's stage is "imported" (untrained), so the adapter needs `allow_untrained=True` to load it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import HubertConfig, HubertModel

from most_reference.adapter import save_checkpoint
from most_reference.mixing import build_char_tokenizer
from most_reference.model import MoSTConfig, MoSTForCausalLM
from most_reference.prompt_formats import TINY
from most_reference.speech_encoder import LinearQuantizer, SpeechEncoder
from most_reference.vocoder import UnitVocoder, speechbrain_to_fairseq

CONFIGS = Path(__file__).resolve().parents[1] / "reference_impl" / "configs"

# HuBERT with MoST's 25 Hz frames: conv strides 5 * 2^7 = 640 samples per frame at 16 kHz.
_CONV_25HZ = dict(conv_kernel=[10, 3, 3, 3, 3, 2, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2, 2], conv_bias=False)
SIZES = {
    "full": {  # mHuBERT-base-25Hz-sized HuBERT, SpiritLM-sized vocoder
        "hubert": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                       conv_dim=[512] * 8, **_CONV_25HZ),
        "quantizer_hidden": 512,
        "vocoder": dict(
            upsample_rates=[5, 4, 4, 4, 2], upsample_kernel_sizes=[11, 8, 8, 8, 4], upsample_initial_channel=512,
            resblock_kernel_sizes=[3, 7, 11], resblock_dilation_sizes=[[1, 3, 5]] * 3, embedding_dim=128,
            model_in_dim=384, multispkr=True, num_speakers=4, multistyle=True, num_styles=10,
            dur_predictor_params=dict(encoder_embed_dim=128, var_pred_hidden_dim=128, var_pred_kernel_size=3,
                                      var_pred_dropout=0.5),
        ),
    },
    "tiny": {  # the training recipe's toy parts (configs/train_tiny.yaml), hidden from the config
        "hubert": dict(num_hidden_layers=2, num_attention_heads=2, conv_dim=[32] * 8, num_conv_pos_embeddings=16,
                       num_conv_pos_embedding_groups=4, **_CONV_25HZ),
        "quantizer_hidden": 32,
        "vocoder": dict(upsample_rates=[8, 8, 10], upsample_kernel_sizes=[16, 16, 20], upsample_initial_channel=32,
                        resblock_kernel_sizes=[3, 5], resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
                        embedding_dim=16, model_in_dim=16),
    },
}


def most_config(base: str = "most_full.json", **overrides) -> MoSTConfig:
    """A MoSTConfig from reference_impl/configs/<base> with `overrides` on top."""
    fields = json.loads((CONFIGS / base).read_text())
    return MoSTConfig.from_dict({**fields, **overrides})


def random_hubert(config: MoSTConfig, size: str = "full", seed: int = 0) -> HubertModel:
    """A random HuBERT whose hidden size is the config's speech_feature_dim and which has the layers it reads."""
    fields = dict(SIZES[size]["hubert"])
    fields["hidden_size"] = config.speech_feature_dim
    fields.setdefault("intermediate_size", 2 * config.speech_feature_dim)
    fields["num_hidden_layers"] = max(fields["num_hidden_layers"], config.speech_feature_layer,
                                      config.unit_feature_layer)
    torch.manual_seed(seed)
    return HubertModel(HubertConfig(**fields)).eval()


def write_random_vocoder(folder: Path, config: MoSTConfig, size: str = "full", seed: int = 0) -> Path:
    """generator.safetensors + config.json of a random unit HiFi-GAN (fairseq layout, as train.py's export)."""
    cfg = dict(SIZES[size]["vocoder"], num_embeddings=config.num_units)
    torch.manual_seed(seed)
    vocoder = UnitVocoder(cfg).remove_weight_norm()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(vocoder.cfg))
    state = speechbrain_to_fairseq(vocoder.state_dict())
    save_file({k: t.contiguous() for k, t in state.items()}, str(folder / "generator.safetensors"))
    return folder


def build_random_checkpoint(path, config: MoSTConfig, size: str = "full", dtype: torch.dtype = torch.bfloat16,
                            device: str = "cpu", seed: int = 0, prompts: dict | None = None,
                            lm: MoSTForCausalLM | None = None) -> Path:
    """Writes a random MoST checkpoint folder at `path` (see the module docstring) and returns it.

    The LM is built on `device` (a full-width LM initialises much faster on a GPU) unless `lm` is given; it is saved
    at `dtype`. `size` picks the HuBERT / vocoder sizes ("full" or "tiny", SIZES).
    """
    path = Path(path)
    if lm is None:
        torch.manual_seed(seed)
        with torch.device(device):
            lm = MoSTForCausalLM(config)
    lm = lm.to(dtype).eval()
    lm.config.dtype = str(dtype).removeprefix("torch.")
    lm.config.use_cache = True
    encoder = SpeechEncoder(random_hubert(config, size, seed), config.hidden_size, config.speech_feature_layer)
    hidden = SIZES[size]["quantizer_hidden"]
    torch.manual_seed(seed)
    quantizer = LinearQuantizer([config.speech_feature_dim, hidden, hidden, config.num_units + 1])
    with tempfile.TemporaryDirectory(prefix="most-vocoder-") as staging:
        vocoder_dir = write_random_vocoder(Path(staging), config, size, seed)
        # the character tokenizer has the tiny format's tags (the release frame's marker characters it has not)
        return save_checkpoint(path, lm, build_char_tokenizer(config), encoder, quantizer, vocoder_dir,
                               stage="imported", prompts=prompts, prompt_format=None if prompts else TINY)
