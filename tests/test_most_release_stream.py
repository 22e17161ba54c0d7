"""The `most` adapter speaks the release's unit stream, batched: deduplicated units, the scoring context with the
begin-of-audio marker and only unit ids counted, speech cut at the first end-of-audio, SpiritLM's vocoder voice
defaults, batched outputs equal to batch 1's, and the text-LM contract through lm-eval's own HF model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from most_eval.core.audio import Audio
from most_reference.adapter import BUNDLED_TINY, MoSTArgs, MoSTModel, save_checkpoint
from most_reference.import_weights import CheckpointError
from most_reference.mixing import Formatter, audio_markers, build_char_tokenizer
from most_reference.speech_encoder import LinearQuantizer, SpeechEncoder, UnitExtractor
from most_reference.vocoder import UnitVocoder, speechbrain_to_fairseq

from test_most_adapter import tiny_tokenizer
from test_most_import_weights import VOCODER_CFG, tiny_hubert
from test_most_model import tiny_most

MINI = Path(__file__).resolve().parents[1] / "most_eval" / "mini_suite"


@pytest.fixture(scope="module")
def bundled():
    return MoSTModel(MoSTArgs(dtype="float32", max_new_tokens=40, max_new_units=80))


@pytest.fixture(scope="module")
def speech():
    """Mini-suite utterances of different lengths (real espeak-ng speech, FLAC)."""
    files = sorted((MINI / "LibriSpeech" / "test-clean").rglob("*.flac"))[:5]
    assert len(files) == 5
    return [Audio(sf.read(f, dtype="float32")[0], 16_000) for f in files]


def _vocoder_dir(root: Path, num_units: int, **extra) -> Path:
    cfg = dict(VOCODER_CFG, num_embeddings=num_units, **extra)
    folder = root / "vocoder_src"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    torch.manual_seed(0)
    state = speechbrain_to_fairseq(UnitVocoder(cfg).state_dict())
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "generator.safetensors"))
    return folder


def _save(root: Path, lm, prompts: dict, **vocoder_extra) -> Path:
    torch.manual_seed(0)
    encoder = SpeechEncoder(tiny_hubert(), lm.config.hidden_size, feature_layer=lm.config.speech_feature_layer)
    quantizer = LinearQuantizer([32, 24, 24, lm.config.num_units + 1])
    return save_checkpoint(root / "ckpt", lm, tiny_tokenizer(), encoder, quantizer,
                           _vocoder_dir(root, lm.config.num_units, **vocoder_extra), stage="imported", prompts=prompts)


# -----------------------------------------------------------------------------------------------------------------
# Deduplicated units


def test_units_are_deduplicated_in_scoring_and_training_paths(bundled, speech):
    extractor = bundled.unit_extractor
    assert extractor.deduplicate and bundled.lm.config.deduplicate_units
    plain = UnitExtractor(extractor.encoder, extractor.quantizer, extractor.unit_layer, deduplicate=False)
    for audio in speech:
        wav = torch.from_numpy(audio.samples)
        frames, units = plain(wav), extractor(wav)
        assert torch.equal(units, torch.unique_consecutive(frames))
        assert len(units) < len(frames)  # real speech repeats units: the stream is shorter than the frames
        assert bool((units[1:] != units[:-1]).all())
    # the scoring prompt carries exactly the deduplicated units
    rendered = bundled._render_batch(bundled.prompts["score"], speech[:1])[0]
    start, end = rendered.units_at
    offset = bundled.lm.config.unit_token_offset
    assert rendered.ids[start:end] == (extractor(torch.from_numpy(speech[0].samples)) + offset).tolist()
    # the TTS training target is built from the same units: <boa> units <eoa> <eos>
    cfg = bundled.lm.config
    fmt = Formatter(cfg, bundled.tokenizer, bundled.prompts, bundled.speech_encoder.num_frames)
    units = extractor(torch.from_numpy(speech[0].samples)).numpy()
    boa, eoa = audio_markers(cfg)
    assert fmt.speech_target(units) == [boa] + (units + offset).tolist() + [eoa, cfg.eos_token_id]


# -----------------------------------------------------------------------------------------------------------------
# Scoring context


def test_score_counts_only_unit_tokens_after_the_begin_of_audio_marker(bundled, speech):
    cfg = bundled.lm.config
    boa, _ = audio_markers(cfg)
    scores = bundled.score_audio(speech)
    for audio, score in zip(speech, scores):
        units = bundled.unit_extractor(torch.from_numpy(audio.samples))
        prefix = bundled.tokenizer(bundled.prompts["score"].replace("{units}", "")).input_ids  # bos, <tts>, <boa>
        assert prefix[0] == cfg.bos_token_id and prefix[-1] == boa
        ids = torch.tensor([prefix + (units + cfg.unit_token_offset).tolist()])
        with torch.no_grad():
            logp = torch.log_softmax(bundled.lm(ids).logits[0].float(), -1)
        n = len(units)
        expected = sum(float(logp[len(prefix) - 1 + i, ids[0, len(prefix) + i]]) for i in range(n))
        assert score.n_tokens == n  # the marker is context, not a scored unit
        assert score.total == pytest.approx(expected, rel=1e-6)


def test_a_units_template_without_the_marker_gets_one(bundled, speech):
    boa, _ = audio_markers(bundled.lm.config)
    rendered = bundled._render("{units}", units=torch.tensor([3, 1, 4]))
    assert rendered.ids == [bundled.tokenizer.bos_token_id, boa, 103, 101, 104] and rendered.units_at == (2, 5)
    once = bundled._render("<tts><boa>{units}", units=torch.tensor([3]))
    assert once.ids.count(boa) == 1  # a template that has it is not given a second
    fmt = Formatter(bundled.lm.config, bundled.tokenizer, {"score": "{units}"}, bundled.speech_encoder.num_frames)
    ids, _ = fmt.render("{units}", units=np.array([3, 1]))
    assert ids == rendered.ids[:2] + [103, 101]  # training's renderer agrees


# -----------------------------------------------------------------------------------------------------------------
# End-of-audio


def chain_model(successor: dict[int, int]):
    """A real tiny MoST whose greedy next token is `successor[current token]`: every attention and MLP output
    projection zeroed (the residual stream carries the token's embedding alone), each chain token embedded as its
    own basis vector and the LM head pointing it at its successor."""
    lm = tiny_most(seed=0)
    with torch.no_grad():
        for name, p in lm.model.layers.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight", "experts.down_proj")):
                p.zero_()
        emb, head = lm.model.embed_tokens.weight, lm.lm_head.weight
        emb.zero_()
        head.zero_()
        for k, token in enumerate(sorted(set(successor) | set(successor.values()))):
            emb[token, k] = 1.0
        basis = {token: k for k, token in enumerate(sorted(set(successor) | set(successor.values())))}
        for token, nxt in successor.items():
            head[nxt, basis[token]] = 10.0
    return lm


def test_speech_stops_and_is_cut_at_the_first_end_of_audio(tmp_path):
    lm = chain_model({})
    cfg = lm.config
    boa, eoa = audio_markers(cfg)
    u = cfg.unit_token_offset
    hello = 3  # "hello" in the test tokenizer; the TTS prompt "{text}" ends with it
    chain = {hello: boa, boa: u + 3, u + 3: u + 5, u + 5: eoa, eoa: u + 7, u + 7: u + 8, u + 8: cfg.eos_token_id}
    lm = chain_model(chain)
    root = _save(tmp_path, lm, {"tts": "{text}"})
    model = MoSTModel(MoSTArgs(checkpoint=str(root), dtype="float32", max_new_units=20, allow_untrained=True,
                               speaker=0, style=0))
    ids = torch.tensor([[1, hello]])
    raw = model.lm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20, do_sample=False,
                            eos_token_id=cfg.eos_token_id)[0, 2:].tolist()
    assert raw == [boa, u + 3, u + 5, eoa, u + 7, u + 8, cfg.eos_token_id]  # units follow end-of-audio
    (audio,) = model.synthesize(["hello"])
    vocoder = model.vocoder
    expected = vocoder(torch.tensor([3, 5]), speaker=0, style=0)
    assert len(audio.samples) == len(expected) and np.allclose(audio.samples, expected.numpy(), atol=1e-6)
    assert len(audio.samples) < len(vocoder(torch.tensor([3, 5, 7, 8]), speaker=0, style=0))  # not the units after
    assert model._generate(model._render_batch("{text}", texts=["hello"]), 20, [eoa, cfg.eos_token_id]) == \
        [[boa, u + 3, u + 5]]  # generation stopped at <eoa>


def test_vocoder_voice_defaults_to_spiritlm_base_and_bad_ids_are_named(tmp_path):
    assert (MoSTArgs().speaker, MoSTArgs().style) == (2, 8)
    lm = tiny_most(seed=0)
    root = _save(tmp_path, lm, {"tts": "{text}"}, multispkr=True, num_speakers=4, multistyle=True, num_styles=10)
    model = MoSTModel(MoSTArgs(checkpoint=str(root), dtype="float32", allow_untrained=True))
    units = torch.tensor([1, 2, 3])
    voice = model.vocoder(units, speaker=2, style=8)
    assert model._generate_speech  # the adapter renders with its args' voice:
    other = model.vocoder(units, speaker=0, style=0)
    assert not torch.allclose(voice, other)
    bad = MoSTModel(MoSTArgs(checkpoint=str(root), dtype="float32", allow_untrained=True, speaker=4))
    with pytest.raises(CheckpointError, match="speaker=4 is not one of the vocoder's 4 speaker ids"):
        bad.vocoder


# -----------------------------------------------------------------------------------------------------------------
# Batched = batch 1


def test_batched_outputs_equal_batch_one(bundled, speech):
    assert bundled.transcribe(speech) == [bundled.transcribe([a])[0] for a in speech]
    assert bundled.respond(speech, "text") == [bundled.respond([a], "text")[0] for a in speech]
    batched = bundled.score_audio(speech)
    for audio, score in zip(speech, batched):
        (alone,) = bundled.score_audio([audio])
        assert score.n_tokens == alone.n_tokens and score.total == pytest.approx(alone.total, rel=1e-6, abs=1e-5)
    texts = ["the old man sat down", "he said nothing", "a small boat drifted across the lake"]
    for many, one in ((bundled.synthesize(texts), [bundled.synthesize([t])[0] for t in texts]),
                      (bundled.respond(speech[:3], "speech"), [bundled.respond([a], "speech")[0] for a in speech[:3]])):
        assert [len(a.samples) for a in many] == [len(a.samples) for a in one]
        assert any(len(a.samples) for a in many)  # the checkpoint speaks: the comparison is not of empty outputs
        for a, b in zip(many, one):
            assert np.allclose(a.samples, b.samples, atol=1e-5)


def test_hubert_batched_features_equal_one_pass_per_utterance(bundled, speech):
    encoder = bundled.speech_encoder
    waves = [torch.from_numpy(a.samples) for a in speech]
    for layer in (1, encoder.feature_layer):
        for wave, batched in zip(waves, encoder.hubert_features_batch(waves, layer)):
            alone = encoder.hubert_features(wave, layer)[0]
            assert batched.shape == alone.shape and torch.allclose(batched, alone, atol=1e-5)


# -----------------------------------------------------------------------------------------------------------------
# Text ability


def test_text_scores_equal_lm_evals_hf_model_on_the_checkpoint(bundled):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    reference = HFLM(pretrained=str(BUNDLED_TINY), device="cpu", batch_size=1, dtype="float32")
    pairs = [("the old man", " sat down"), ("", "he said nothing at all"), ("what is the capital", " of france")]
    ours = bundled.score_text([c for c, _ in pairs], [x for _, x in pairs])
    theirs = reference.loglikelihood([Instance("loglikelihood", {}, p, i) for i, p in enumerate(pairs)],
                                     disable_tqdm=True)
    for (lp, greedy), (ref_lp, ref_greedy) in zip(ours, theirs):
        assert lp == pytest.approx(ref_lp, abs=1e-4) and greedy == ref_greedy
    assert bundled.tokenizer("ab").input_ids[0] == bundled.lm.config.bos_token_id  # text is scored after bos
    (text,) = bundled.generate_text(["the old man"], [["."]], 12)
    assert isinstance(text, str) and "." not in text


def test_char_tokenizer_puts_bos_first_unless_told_not_to(bundled):
    tok = build_char_tokenizer(bundled.lm.config)
    assert tok("ab").input_ids == [bundled.lm.config.bos_token_id] + tok("ab", add_special_tokens=False).input_ids


@pytest.mark.slow
def test_most_runs_an_lm_eval_text_task_through_the_cli(bundled, tmp_path):
    from conftest import run_cli
    from test_text_bridge import DOCS, _task

    tasks_dir, out = tmp_path / "tasks", tmp_path / "out"
    tasks_dir.mkdir()
    _task(tasks_dir)
    proc = run_cli("run", "--model", "most", "--model-args", "dtype=float32", "--tasks", "text:tiny_mc",
                   "--task-args", f"include_path={tasks_dir}", "--output", str(out), "--no-progress",
                   env={"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())["results"]["text:tiny_mc"]
    right = 0
    for d in DOCS:  # the same accuracy from the adapter's own score_text, without lm-eval; lm-eval's requests put
        # its target delimiter " " before each choice (the character tokenizer keeps both spaces)
        choices = [" " + c for c in d["choices"]]
        scores = [lp for lp, _ in bundled.score_text([d["question"]] * len(choices), choices)]
        right += max(range(len(scores)), key=scores.__getitem__) == d["label"]
    assert res["accuracy"] == pytest.approx(100 * right / len(DOCS)) and res["documents"] == len(DOCS)
