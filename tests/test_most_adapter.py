"""The `most` adapter on a tiny, untrained checkpoint: plumbing only (outputs are meaningless by construction)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import save_file

from most_eval.adapter import AudioScore
from most_eval.audio import Audio
from most_reference.adapter import MoSTArgs, MoSTModel, save_checkpoint
from most_reference.import_weights import CheckpointError
from most_reference.speech_encoder import LinearQuantizer, SpeechEncoder
from most_reference.vocoder import UnitVocoder, speechbrain_to_fairseq

from test_most_model import VOCODER_CFG, tiny_hubert, tiny_most

WORDS = ["<unk>", "<s>", "</s>", "hello", "world", "what", "is", "the", "answer"]


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("most_ckpt")
    lm = tiny_most()
    encoder = SpeechEncoder(tiny_hubert(), lm.config.hidden_size, feature_layer=lm.config.speech_feature_layer)
    quantizer = LinearQuantizer([32, 24, 24, lm.config.num_units + 1])
    vocoder_cfg = dict(VOCODER_CFG, num_embeddings=lm.config.num_units, num_styles=10)  # SpiritLM's style 8 exists
    vocoder_dir = root / "vocoder_src"
    vocoder_dir.mkdir()
    (vocoder_dir / "config.json").write_text(json.dumps(vocoder_cfg))
    vocoder_state = speechbrain_to_fairseq(UnitVocoder(vocoder_cfg).state_dict())
    save_file({k: v.contiguous() for k, v in vocoder_state.items()}, str(vocoder_dir / "generator.safetensors"))
    return save_checkpoint(root / "ckpt", lm, tiny_tokenizer(), encoder, quantizer, vocoder_dir, stage="imported",
                           prompts={"asr": "{audio} what is", "tts": "{text} hello"})


def test_no_checkpoint_says_so(tmp_path):
    # no checkpoint= loads the bundled tiny checkpoint, which says what it is
    assert MoSTModel(MoSTArgs(dtype="float32")).identity()["stage"] == "tiny-mini-suite"
    with pytest.raises(CheckpointError, match="no trained MoST checkpoint"):
        MoSTModel(MoSTArgs(checkpoint=str(tmp_path / "absent")))
    with pytest.raises(CheckpointError, match="most.json is missing"):
        MoSTModel(MoSTArgs(checkpoint=str(tmp_path)))


def test_untrained_checkpoint_is_refused_by_default(checkpoint):
    with pytest.raises(CheckpointError, match="not a trained MoST"):
        MoSTModel(MoSTArgs(checkpoint=str(checkpoint), dtype="float32"))


def test_adapter_runs_every_capability_on_a_tiny_checkpoint(checkpoint):
    model = MoSTModel(MoSTArgs(checkpoint=str(checkpoint), dtype="float32", max_new_tokens=4, max_new_units=6,
                               allow_untrained=True))
    assert model.capabilities() == {"transcribe", "synthesize", "score_audio", "respond", "score_text", "generate_text"}
    rng = np.random.default_rng(0)
    audios = [Audio(rng.standard_normal(n).astype(np.float32) * 0.1, 16_000) for n in (3000, 4200)]

    scores = model.score_audio(audios)
    assert all(isinstance(s, AudioScore) and s.n_tokens > 0 and s.total < 0 for s in scores)
    assert scores[1].n_tokens > scores[0].n_tokens

    assert all(isinstance(t, str) for t in model.transcribe(audios))
    assert all(isinstance(t, str) for t in model.respond(audios, "text"))
    for out in model.synthesize(["hello world"]) + model.respond(audios[:1], "speech"):
        assert isinstance(out, Audio) and out.sample_rate == 16_000

    ids, features = model._prompt("{audio} what is", audios[0])
    assert features.shape == (model.speech_encoder.num_frames(3000), model.lm.config.hidden_size)
    assert (ids[0] == 0).sum() == features.shape[0]  # one placeholder per HuBERT frame between the markers
    assert ids[0, -2:].tolist() == [5, 6]  # "what is"
    assert model.fingerprint() and model.identity()["stage"] == "imported"
