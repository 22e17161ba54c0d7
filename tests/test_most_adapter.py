"""The `most` adapter on a tiny, untrained checkpoint: every capability's output equals the same computation done
directly on the checkpoint's parts (prompt ids written out here, one unpadded row, `lm.generate`, the vocoder).
Batching, the release's unit stream and scoring on the bundled checkpoint: tests/test_most_release_stream.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from most_eval.core.adapter import AudioScore
from most_eval.core.audio import Audio
from most_reference.adapter import MoSTArgs, MoSTModel, save_checkpoint
from most_reference.import_weights import CheckpointError
from most_reference.speech_encoder import LinearQuantizer, SpeechEncoder
from most_reference.vocoder import UnitVocoder, speechbrain_to_fairseq

from test_most_import_weights import VOCODER_CFG, tiny_hubert
from test_most_model import tiny_most

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
                           prompts={"asr": "{audio} what is", "tts": "{text} hello",
                                    "respond_text": "{audio} the answer is", "respond_speech": "{audio} world hello"})


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


def direct_greedy(model, ids: list[int], features, max_new: int, stops: list[int]) -> list[int]:
    """One unpadded row through transformers' generate (greedy, KV cache): the new ids before the first stop id."""
    extra = {"audio_features": features} if features is not None else {}
    prompt = torch.tensor([ids])
    with torch.no_grad():
        out = model.lm.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=max_new,
                                do_sample=False, eos_token_id=stops, pad_token_id=model.lm.config.eos_token_id, **extra)
    new = out[0, len(ids):].tolist()
    return new[:next((i for i, t in enumerate(new) if t in stops), len(new))]


def test_adapter_outputs_equal_direct_computations_on_a_tiny_checkpoint(checkpoint):
    model = MoSTModel(MoSTArgs(checkpoint=str(checkpoint), dtype="float32", max_new_tokens=4, max_new_units=12,
                               allow_untrained=True))
    assert model.capabilities() == {"transcribe", "synthesize", "score_audio", "respond", "score_text", "generate_text"}
    assert model.fingerprint() and model.identity()["stage"] == "imported"
    cfg = model.lm.config
    bos, eos, begin, end = 1, 2, cfg.audio_span_begin_id, cfg.audio_span_end_id  # <s>, </s> of WORDS; 118, 119
    boa, eoa = cfg.audio_token_range[1] - 1, cfg.audio_token_range[1]  # the two top ids of the audio range
    assert (boa, eoa) == model.audio_markers
    word = {w: i for i, w in enumerate(WORDS)}
    rng = np.random.default_rng(0)
    audios = [Audio(rng.standard_normal(n).astype(np.float32) * 0.1, 16_000) for n in (3000, 4200)]

    def features(audio):  # HuBERT + projection on the unpadded waveform, batch of one (not the adapter's batching)
        with torch.no_grad():
            return model.speech_encoder(torch.from_numpy(audio.samples)[None])[0]

    def span(audio):  # {audio}: begin marker, one placeholder (id 0) per HuBERT frame, end marker
        return [begin] + [0] * model.speech_encoder.num_frames(len(audio.samples)) + [end]

    def text_of(new):  # text tokens only (ids below the audio range), decoded
        return model.tokenizer.decode([t for t in new if t < cfg.audio_token_range[0]], skip_special_tokens=True).strip()

    # transcribe: "{audio} what is", then greedy text up to </s>
    expected = [text_of(direct_greedy(model, [bos] + span(a) + [word["what"], word["is"]], features(a), 4, [eos]))
                for a in audios]
    assert model.transcribe(audios) == expected
    assert any(expected), "the untrained LM emits text tokens here: the comparison is not of empty strings"
    # respond (text): "{audio} the answer is"
    expected = [text_of(direct_greedy(model, [bos] + span(a) + [word["the"], word["answer"], word["is"]], features(a), 4,
                                      [eos])) for a in audios]
    assert model.respond(audios, "text") == expected
    assert any(expected)

    # speech out: greedy unit tokens up to <eoa> or </s>, unit ids = token - offset, then the vocoder (speaker 2,
    # style 8) whose duration predictor gives each deduplicated unit its number of frames of samples_per_unit samples
    vocoder = model.vocoder

    def expected_speech(ids, feats):
        new = direct_greedy(model, ids, feats, 12, [eoa, eos])
        units = [t - cfg.unit_token_offset for t in new if cfg.unit_token_offset <= t < cfg.unit_token_offset + cfg.num_units]
        if not units:
            return units, np.zeros(0, dtype=np.float32), 0
        runs = torch.unique_consecutive(torch.tensor(units))
        with torch.no_grad():
            log_dur = vocoder.dur_predictor(vocoder.generator.unit_embedding(runs)[None])
            frames = int(torch.clamp(torch.round(torch.exp(log_dur) - 1), min=1).sum())
            wav = vocoder(torch.tensor(units), speaker=2, style=8).numpy()
        return units, wav, frames * vocoder.samples_per_unit

    texts = ["hello world", "what is the answer", "hello"]
    synthesized = model.synthesize(texts)
    n_units = []
    for text, audio in zip(texts, synthesized):  # "{text} hello"
        units, wav, length = expected_speech([bos] + [word[w] for w in text.split()] + [word["hello"]], None)
        n_units.append(len(units))
        assert audio.sample_rate == 16_000 and len(audio.samples) == length == len(wav)
        assert np.allclose(audio.samples, wav, atol=1e-6)
    assert max(n_units) >= 2, "some text gets several units: the length check is not of empty audio"
    spoken = []
    for audio, out in zip(audios, model.respond(audios, "speech")):  # "{audio} world hello"
        units, wav, length = expected_speech([bos] + span(audio) + [word["world"], word["hello"]], features(audio))
        assert out.sample_rate == 16_000 and len(out.samples) == length and np.allclose(out.samples, wav, atol=1e-6)
        spoken.append(len(units))
    assert any(spoken), "one spoken answer has units: not only empty audio compared"

    # score_audio: one scored token per deduplicated unit of the utterance
    scores = model.score_audio(audios)
    for audio, score in zip(audios, scores):
        assert isinstance(score, AudioScore) and score.total < 0
        assert score.n_tokens == len(model.unit_extractor(torch.from_numpy(audio.samples)))

    ids, feats = model._prompt("{audio} what is", audios[0])
    assert ids[0].tolist() == [bos] + span(audios[0]) + [word["what"], word["is"]]
    assert torch.allclose(feats, features(audios[0]), atol=1e-5)
