"""Training data pieces: manifests of the corpus layouts, units (k-means, resumable store), sequence formats (and that
they equal what the harness adapter feeds the model), the mixture plan, the LR schedule. Fast, no training."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import HubertConfig, HubertModel

from most_eval.core.audio import load_audio
from most_reference import manifests as M
from most_reference import units as U
from most_reference.mixing import (
    IGNORE,
    TINY_PROMPTS,
    Example,
    Formatter,
    STAGE_MIXTURES,
    MixturePlan,
    audio_markers,
    build_char_tokenizer,
)
from most_reference.model import MoSTConfig
from most_reference.speech_encoder import SpeechEncoder
from most_reference.train_config import DEFAULTS, load_config, lr_at, stage_grad_accum

REPO = Path(__file__).resolve().parents[1]
MINI = REPO / "most_eval" / "mini_suite"
CONFIGS = REPO / "reference_impl" / "configs"
BUNDLED = REPO / "reference_impl" / "checkpoints" / "tiny"


def tiny_config() -> MoSTConfig:
    return MoSTConfig.from_json_file(str(CONFIGS / "most_tiny.json"))


# -----------------------------------------------------------------------------------------------------------------
# Manifests


def test_corpus_layouts_of_the_mini_suite():
    bad = []
    log = lambda *a: bad.append(a)  # noqa: E731
    utts = M.speech_manifest([
        {"format": "librispeech", "path": MINI / "LibriSpeech", "splits": ["test-clean", "test-other"]},
        {"format": "voxpopuli", "path": MINI / "voxpopuli", "split": "test"},
        {"format": "common_voice", "path": MINI / "cv-corpus-15.0-2023-09-08" / "en", "split": "test"},
        {"format": "seedtts", "path": MINI / "seedtts_testset" / "en"},
        {"format": "spoken_qa", "name": "webq", "path": MINI / "webquestions"},
    ], log)
    counts = Counter(u.id.split("/")[0] for u in utts)
    assert counts == {"librispeech": 18, "voxpopuli": 4, "common_voice": 4, "seedtts": 4, "webq": 3} and not bad
    assert utts[0].id == "librispeech/1089-134686-0000" and utts[0].text == "THE OLD MAN SAT DOWN"
    cv = next(u for u in utts if u.id.startswith("common_voice"))
    assert cv.audio.endswith(".mp3") and len(U.load_waveform(cv.audio)) > 1600  # 48 kHz MP3 -> 16 kHz

    ins = M.instructions([{"format": "llama_questions", "path": MINI / "llama-questions"},
                          {"format": "spoken_qa", "name": "trivia", "path": MINI / "triviaqa"}], log)
    assert len(ins) == 7 and ins[0].answer_text == "Paris" and Path(ins[0].question_audio).is_file()
    assert ins[4].answer_text == "Oxygen"  # TriviaQA: the first alias


def test_libriheavy_cuts_read_their_segment_and_report_bad_lines(tmp_path):
    flac = sorted((MINI / "LibriSpeech" / "test-clean").rglob("*.flac"))[0]
    rel = Path("download") / "librilight" / flac.name
    (tmp_path / "audio" / rel.parent).mkdir(parents=True)
    (tmp_path / "audio" / rel).write_bytes(flac.read_bytes())
    cut = lambda cid, texts, start=0.25: {  # noqa: E731
        "id": cid, "start": start, "duration": 0.5, "channel": 0,
        "supervisions": [{"id": cid, "start": 0, "duration": 0.5, "custom": {"texts": texts}}],
        "recording": {"id": "r", "sources": [{"type": "file", "channels": [0], "source": str(rel)}],
                      "sampling_rate": 16000, "num_samples": 10, "duration": 1.0}}
    manifest = tmp_path / "libriheavy_cuts_small.jsonl.gz"
    with gzip.open(manifest, "wt") as f:
        f.write(json.dumps(cut("a", ["The old man.", "THE OLD MAN"])) + "\n")
        f.write(json.dumps(cut("b", ["", ""])) + "\n")
        f.write(json.dumps({"id": "c"}) + "\n")
    bad = []
    utts = M.speech_manifest([{"format": "libriheavy", "path": manifest, "audio_root": tmp_path / "audio",
                               "text_index": 1}], lambda *a: bad.append(a))
    assert [(u.id, u.text, u.start, u.duration) for u in utts] == [("libriheavy/a", "THE OLD MAN", 0.25, 0.5)]
    assert [b[2] for b in bad][0] == "empty transcript" and bad[1][2].startswith("unreadable cut")
    whole = U.load_waveform(str(flac))
    segment = U.load_waveform(utts[0].audio, utts[0].start, utts[0].duration)
    assert len(segment) == 8000 and np.allclose(segment, whole[4000:12000], atol=1e-6)


# -----------------------------------------------------------------------------------------------------------------
# Units


def random_hubert() -> HubertModel:
    torch.manual_seed(0)
    cfg = load_config(CONFIGS / "train_tiny.yaml")["model"]["hubert"]["random"]
    return HubertModel(HubertConfig(**cfg)).eval()


def test_frame_count_formula_matches_hubert_and_kmeans_is_deterministic():
    hubert = random_hubert()
    encoder = SpeechEncoder(hubert, 8, 2)
    frames = U.hubert_frames_fn(hubert.config)
    for n in (1000, 1279, 1500, 16000, 23456):
        assert frames(n) == encoder.num_frames(n) == encoder(torch.zeros(1, n)).shape[1]
    assert frames(16000) == 24  # 25 Hz, as mHuBERT-base 25 Hz
    x = torch.randn(500, 6, generator=torch.Generator().manual_seed(0))
    a, b = U.fit_kmeans(x, 8, seed=3), U.fit_kmeans(x, 8, seed=3)
    assert torch.equal(a.centroids, b.centroids) and a.num_units == 8
    assert len(set(a(x[None])[0].tolist())) == 8


def test_unit_store_resumes_after_a_torn_line(tmp_path):
    hubert = random_hubert()
    encoder = SpeechEncoder(hubert, 8, 2)
    utts = M.speech_manifest([{"format": "voxpopuli", "path": MINI / "voxpopuli", "split": "test"}])
    quantizer = U.fit_kmeans(U.collect_features(utts, encoder, 1), 16)
    from most_reference.speech_encoder import UnitExtractor

    extractor = UnitExtractor(encoder, quantizer, 1)
    items = U.unit_items(utts, [])
    path = tmp_path / "units.jsonl"
    store = U.UnitStore(path)
    assert U.extract_units(items[:2], extractor, store) == 2
    with open(path, "a") as f:
        f.write('{"id": "voxpopuli/x", "units": "1 2')  # a run killed mid-line
    store = U.UnitStore(path)
    assert len(store) == 2 and path.read_text().endswith("\n")
    assert U.extract_units(items, extractor, store) == 2  # only the missing two
    again = U.UnitStore(path)
    assert len(again) == 4 and len(path.read_text().splitlines()) == 4
    wav = U.load_waveform(utts[3].audio)
    assert np.array_equal(again[utts[3].id], extractor(torch.from_numpy(wav)).numpy())


# -----------------------------------------------------------------------------------------------------------------
# Formats


def test_char_tokenizer_and_sequence_formats():
    cfg = tiny_config()
    tok = build_char_tokenizer(cfg)
    ids = tok("Hello, World's <asr>", add_special_tokens=False).input_ids
    assert tok.decode(ids, skip_special_tokens=True) == "hello, world's "
    assert tok.convert_tokens_to_ids(["<boa>", "<eoa>", "<hu0>"]) == [*audio_markers(cfg), cfg.unit_token_offset]
    fmt = Formatter(cfg, tok, TINY_PROMPTS, frames=lambda n: n // 640)
    boa, eoa = audio_markers(cfg)
    wav = np.zeros(6400, dtype=np.float32)

    asr = fmt(Example("asr", "u", text="Hi", waveform=wav))
    prompt = [cfg.bos_token_id, tok.convert_tokens_to_ids("<asr>"), cfg.audio_span_begin_id] + [0] * 10 + \
             [cfg.audio_span_end_id]
    assert asr.input_ids == prompt + tok("hi", add_special_tokens=False).input_ids + [cfg.eos_token_id]
    assert asr.labels[: len(prompt)] == [IGNORE] * len(prompt) and asr.labels[len(prompt):] == asr.input_ids[len(prompt):]
    assert len(asr.waveforms) == 1

    tts = fmt(Example("tts", "u", text="Hi", units=np.array([3, 3, 7])))
    assert tts.input_ids[-6:] == [boa, 103, 103, 107, eoa, cfg.eos_token_id] and not tts.waveforms
    assert tts.labels[-6:] == tts.input_ids[-6:] and tts.labels[-7] == IGNORE

    lm = fmt(Example("text_lm", "d", text="ab"))
    assert lm.labels == [IGNORE] + lm.input_ids[1:] and lm.input_ids[-1] == cfg.eos_token_id

    spoken = fmt(Example("speech_instruction", "q", waveform=wav, units=np.array([1])))
    assert tok.convert_tokens_to_ids("<as_speech>") in spoken.input_ids and spoken.input_ids[-4:] == [boa, 101, eoa, 2]
    written = fmt(Example("text_instruction", "q", text="why", answer="no"))
    assert tok.convert_tokens_to_ids("<as_text>") in written.input_ids and not written.waveforms


def test_training_prompts_equal_what_the_adapter_feeds_the_model():
    """The adapter renders most.json's templates itself; training must have produced the very same ids."""
    from most_reference.adapter import MoSTArgs, MoSTModel

    assert (BUNDLED / "most.json").is_file(), f"the committed bundled checkpoint is missing: {BUNDLED}"

    model = MoSTModel(MoSTArgs(checkpoint=str(BUNDLED), dtype="float32"))
    frames = U.hubert_frames_fn(model.speech_encoder.hubert.config)
    fmt = Formatter(model.lm.config, model.tokenizer, model.prompts, frames)
    audio = load_audio(MINI / "llama-questions" / "1.wav")
    for key in ("asr", "respond_text", "respond_speech", "score", "tts"):
        ids, features = model._prompt(model.prompts[key], audio, text="The old man")
        units = model.unit_extractor(torch.from_numpy(audio.samples)).numpy()
        ours, waves = fmt.render(model.prompts[key], text="The old man", waveform=audio.samples, units=units)
        assert ids[0].tolist() == ours, key
        assert (features is None) == (not waves) and (features is None or features.shape[0] == frames(len(waves[0])))


# -----------------------------------------------------------------------------------------------------------------
# Mixture and schedule


# The paper's mixtures (README "Training"), written here independently of mixing.STAGE_MIXTURES.
PAPER_MIXTURES = {
    "stage1": {"asr": 0.4, "tts": 0.4, "text_lm": 0.2},
    "stage2": {"speech_instruction": 0.4, "text_instruction": 0.4, "asr": 0.1, "tts": 0.1},
}
ALL_TASKS_PRESENT = {"asr": 10, "tts": 7, "text_lm": 3, "speech_instruction": 5, "text_instruction": 4}


def config_plans(name: str):
    """(stage name, its resolved mixture, the MixturePlan the trainer builds for it on one process) per stage of a
    shipped recipe: micro-batches per step = global_batch / micro_batch_size, seed = seed * 1000 + stage index."""
    cfg = load_config(CONFIGS / f"{name}.yaml")
    t = cfg["training"]
    for index, stage in enumerate(t["stages"]):
        accum = stage_grad_accum(t, stage, 1)
        yield stage["name"], stage["mixture"], MixturePlan(ALL_TASKS_PRESENT, stage["mixture"], t["micro_batch_size"],
                                                           accum, seed=cfg["seed"] * 1000 + index)


def test_shipped_recipes_use_the_papers_stage_mixtures():
    seen = {}
    for name in ("train_stage1", "train_stage2", "train_tiny"):
        for stage, mixture, _ in config_plans(name):
            assert mixture == PAPER_MIXTURES[stage], (name, stage)
            seen.setdefault(name, []).append(stage)
    assert seen == {"train_stage1": ["stage1"], "train_stage2": ["stage2"], "train_tiny": ["stage1", "stage2"]}
    assert STAGE_MIXTURES == PAPER_MIXTURES


@pytest.mark.parametrize("name", ["train_stage1", "train_stage2", "train_tiny"])
def test_mixture_plan_draws_tasks_at_the_papers_frequencies(name):
    """Over >= 20,000 micro-batch draws each task's share is within 4.5 binomial standard deviations of the paper's
    weight (a wrong weight by 0.05 is more than 10 sigma away)."""
    for stage, mixture, plan in config_plans(name):
        steps = -(-20_000 // plan.m)
        counts = Counter(spec.task for _ in range(steps) for spec in plan.next_step())
        n = sum(counts.values())
        assert n == steps * plan.m and set(counts) == set(PAPER_MIXTURES[stage])
        for task, p in PAPER_MIXTURES[stage].items():
            sigma = (p * (1 - p) / n) ** 0.5
            assert 4.5 * sigma < 0.05 / 2
            assert abs(counts[task] / n - p) <= 4.5 * sigma, (name, stage, task, counts[task] / n, p)


def test_mixture_plan_is_deterministic_rank_independent_and_replayable():
    sizes = {"asr": 10, "tts": 7, "text_lm": 3, "speech_instruction": 0, "text_instruction": 0}
    plan = lambda: MixturePlan(sizes, STAGE_MIXTURES["stage1"], batch_size=2, micro_batches_per_step=4, seed=5)  # noqa: E731
    a, b = plan(), plan()
    steps = [a.next_step() for _ in range(200)]
    assert steps == [b.next_step() for _ in range(200)]
    asr = [i for step in steps for s in step if s.task == "asr" for i in s.examples]
    assert sorted(asr[:10]) == list(range(10))  # every example once per epoch
    replay = plan()
    replay.advance_to(120)
    assert replay.next_step() == steps[120]
    replay.advance_to(200)
    replay.check_state(a.state_dict())  # same step, same examples drawn per task
    stage2 = MixturePlan(sizes, STAGE_MIXTURES["stage2"], 2, 4, 0)
    assert stage2.tasks == ["asr", "tts"] and stage2.missing == ["speech_instruction", "text_instruction"]
    # the tasks with data keep their relative weights (0.1 : 0.1, renormalised)
    assert stage2.p.tolist() == [0.5, 0.5]


def test_lr_schedule_warmup_cosine_per_stage():
    stages = [{"name": "a", "steps": 100, "lr": 1e-3, "warmup_steps": 10, "min_lr_ratio": 0.1},
              {"name": "b", "steps": 50, "lr": 1e-4, "warmup_steps": 0, "min_lr_ratio": 0.0}]
    assert lr_at(0, stages) == pytest.approx(1e-4) and lr_at(9, stages) == pytest.approx(1e-3)
    assert lr_at(55, stages) == pytest.approx(1e-4 + 0.9e-3 * 0.5)  # cosine midpoint
    assert lr_at(100, stages) == pytest.approx(1e-4) and lr_at(150, stages) == pytest.approx(0.0)


def test_configs_parse_and_unknown_keys_are_errors(tmp_path):
    for name in ("train_tiny", "train_stage1", "train_stage2"):
        cfg = load_config(CONFIGS / f"{name}.yaml")
        assert set(cfg) - {"_path"} == set(DEFAULTS)
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  stages: [{name: s, steps: 1, mixture: stage1, lr: 1.0}]\n  grad_acum: 2\n")
    with pytest.raises(ValueError, match="unknown config key training.grad_acum"):
        load_config(bad)
    header = (CONFIGS / "train_stage1.yaml").read_text().splitlines()[:10]
    assert any("most_reference.train --config reference_impl/configs/train_stage1.yaml" in line or
               "single_node.sh reference_impl/configs/train_stage1.yaml" in line for line in header)
    assert "USER PATH" in (CONFIGS / "train_stage1.yaml").read_text()
