"""`most-eval routing`: per-modality expert use of the MoST LM on the bundled tiny checkpoint and mini suite.

With modality routing on, no routed weight crosses the text/audio expert split (exactly 0); with it off (the same
weights as a plain DeepSeek-V2 MoE) some does; shares are distributions; padding is not counted; the report works
on a checkpoint imported from plain DeepSeek-V2 weights; the CLI writes both files and refuses bad input in one line
with exit code 2.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MINI_SUITE, run_cli
from typer.testing import CliRunner

from most_eval import cli
from most_eval.registry import build_model, resolve_tasks
from most_reference import commands
from most_reference import routing as R
from most_reference.mixing import Sequence
from most_reference.model import AUDIO, TEXT

TINY_CONFIG = Path(R.__file__).resolve().parent / "checkpoints" / "tiny" / "config.json"
UTTERANCES = 4


@pytest.fixture(scope="module")
def tiny():
    """The bundled tiny checkpoint (float32, so batched and one-by-one runs agree to rounding), and the rendered
    sequences of the first mini-suite LibriSpeech test-clean utterances."""
    model = build_model("most", "dtype=float32")
    samples = resolve_tasks(R.SOURCE_TASK)[0](MINI_SUITE).samples()
    utterances, skipped = R.utterances_from_samples(samples, UTTERANCES)
    assert len(utterances) == UTTERANCES and skipped == []
    inputs = list(R.routing_inputs(model, utterances))
    saved = model.lm.config.modality_routing
    yield model, samples, inputs
    model.lm.config.modality_routing = saved


def _report(model, inputs, mode: str, batch_size: int = 8) -> dict:
    R.set_modality_routing(model.lm, mode)
    stats = R.collect_routing(model.lm, inputs, batch_size, pad_id=model.tokenizer.pad_token_id)
    return R.build_report(stats, model.lm.config.num_text_experts, R.model_summary(model.lm))


def _check_shares(report: dict, n_experts: int) -> None:
    for entry in report["layers"]:
        for name in ("text", "audio"):
            share = entry[name]
            assert len(share) == n_experts and min(share) >= 0
            assert sum(share) == pytest.approx(1.0, abs=1e-9)
            assert entry["entropy"][name] == pytest.approx(-sum(p * math.log2(p) for p in share if p > 0))
            assert 0 <= entry["entropy"][name] <= math.log2(n_experts) + 1e-9


def test_inputs_hold_text_continuous_audio_and_unit_tokens(tiny):
    model, _, inputs = tiny
    cfg = model.lm.config
    assert [i.sequence.task for i in inputs] == ["asr", "tts"] * UTTERANCES
    asr, tts = inputs[0], inputs[1]
    assert cfg.audio_span_begin_id in asr.sequence.input_ids and asr.audio_features is not None
    n_span = asr.sequence.input_ids.index(cfg.audio_span_end_id) - asr.sequence.input_ids.index(cfg.audio_span_begin_id) - 1
    assert asr.audio_features.shape == (n_span, cfg.hidden_size)
    first, last = cfg.audio_token_range
    assert tts.audio_features is None and any(first <= t <= last for t in tts.sequence.input_ids)
    report = _report(model, inputs, "checkpoint")
    counts = report["inputs"]
    assert counts["sequences"] == 2 * UTTERANCES
    assert counts["text_tokens"] > 0 and counts["continuous_audio_tokens"] > 0 and counts["discrete_audio_tokens"] > 0
    assert counts["audio_tokens"] == counts["continuous_audio_tokens"] + counts["discrete_audio_tokens"]
    assert counts["text_tokens"] + counts["audio_tokens"] == sum(len(i.sequence.input_ids) for i in inputs)


def test_routing_on_never_crosses_the_expert_split(tiny):
    model, _, inputs = tiny
    report = _report(model, inputs, "on")
    n_text, n_experts = model.lm.config.num_text_experts, model.lm.config.n_routed_experts
    assert [e["layer"] for e in report["layers"]] == [1, 2]  # layer 0 is dense (first_k_dense_replace = 1)
    for entry in report["layers"]:
        assert entry["cross_modality"] == {"text": 0.0, "audio": 0.0, "all": 0.0}
        assert entry["text"][n_text:] == [0.0] * (n_experts - n_text)
        assert entry["audio"][:n_text] == [0.0] * n_text
    _check_shares(report, n_experts)


def test_routing_off_crosses_the_split_and_padding_is_not_counted(tiny):
    model, _, inputs = tiny
    one = _report(model, inputs, "off", batch_size=1)
    padded = _report(model, inputs, "off", batch_size=len(inputs))  # every sequence but the longest is padded
    assert max(e["cross_modality"]["all"] for e in one["layers"]) > 0.05
    assert any(e["cross_modality"]["text"] > 0 and e["cross_modality"]["audio"] > 0 for e in one["layers"])
    _check_shares(one, model.lm.config.n_routed_experts)
    assert one["inputs"] == padded["inputs"]
    for a, b in zip(one["layers"], padded["layers"]):
        for name in ("text", "audio"):
            np.testing.assert_allclose(a[name], b[name], atol=1e-5)
        assert a["cross_modality"]["all"] == pytest.approx(b["cross_modality"]["all"], abs=1e-5)
    assert model.lm.config.modality_routing is False
    R.set_modality_routing(model.lm, "on")
    assert model.lm.config.modality_routing is True


def test_report_definitions_on_hand_made_counts():
    weight = torch.zeros(1, 2, 4, dtype=torch.float64)
    weight[0, TEXT] = torch.tensor([3.0, 1.0, 0.0, 0.0])  # text experts 0-1, audio experts 2-3
    weight[0, AUDIO] = torch.tensor([0.0, 1.0, 1.0, 2.0])
    report = R.build_report(R.RoutingStats([5], weight), num_text_experts=2)
    (entry,) = report["layers"]
    assert entry["layer"] == 5
    assert entry["text"] == [0.75, 0.25, 0.0, 0.0] and entry["audio"] == [0.0, 0.25, 0.25, 0.5]
    assert entry["cross_modality"] == {"text": 0.0, "audio": 0.25, "all": 1 / 8}
    assert entry["entropy"]["text"] == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    assert entry["entropy"]["audio"] == pytest.approx(1.5)
    empty = torch.zeros(1, 2, 4, dtype=torch.float64)
    empty[0, TEXT, 0] = 1.0  # no audio token at all
    (entry,) = R.build_report(R.RoutingStats([1], empty), num_text_experts=2)["layers"]
    assert entry["audio"] is None and entry["cross_modality"]["audio"] is None and entry["entropy"]["audio"] is None
    assert entry["entropy"]["text"] == 0.0 and entry["cross_modality"]["all"] == 0.0


def test_routing_modes_are_checked():
    from types import SimpleNamespace

    lm = SimpleNamespace(config=SimpleNamespace(modality_routing=False, num_text_experts=1, n_routed_experts=8,
                                                num_experts_per_tok=2))
    with pytest.raises(ValueError, match="expected one of on, off, checkpoint"):
        R.set_modality_routing(lm, "maybe")
    with pytest.raises(ValueError, match="1 text / 7 audio"):
        R.set_modality_routing(lm, "on")
    assert R.set_modality_routing(lm, "checkpoint") == {"routing": "checkpoint", "modality_routing": False,
                                                         "modality_routing_saved": False}
    assert commands.ROUTING_MODES is R.ROUTING_MODES and commands.SOURCE_TASK is R.SOURCE_TASK  # one definition


def test_report_on_a_plain_deepseek_v2_checkpoint():
    """A DeepSeek-V2 checkpoint imported with import_weights is MoST with modality routing off: the report runs on
    it from the token ids alone (unit tokens are audio), and its routing crosses the split."""
    from transformers import DeepseekV2Config, DeepseekV2ForCausalLM

    from most_reference.import_weights import import_deepseek_v2
    from most_reference.model import MoSTConfig

    fields = json.loads(TINY_CONFIG.read_text())
    config = DeepseekV2Config(**{k: v for k, v in fields.items() if k in DeepseekV2Config().to_dict()
                                 and k not in ("architectures", "model_type")})
    most = MoSTConfig.from_json_file(str(TINY_CONFIG))
    most.modality_routing = False
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        DeepseekV2ForCausalLM(config).save_pretrained(folder)
        lm = import_deepseek_v2(folder, most, dtype=torch.float32)
    assert lm.config.modality_routing is False
    g = torch.Generator().manual_seed(0)
    first, _ = most.audio_token_range
    seqs = [[most.bos_token_id] + torch.randint(16, 60, (12,), generator=g).tolist()
            + torch.randint(first, first + most.num_units, (12,), generator=g).tolist() for _ in range(3)]
    inputs = [R.RoutingInput(Sequence("tts", str(i), ids, ids)) for i, ids in enumerate(seqs)]
    report = R.build_report(R.collect_routing(lm, inputs, 2), most.num_text_experts, R.model_summary(lm))
    assert report["inputs"]["audio_tokens"] == report["inputs"]["discrete_audio_tokens"] == 36
    assert report["inputs"]["text_tokens"] == 39
    assert any(e["cross_modality"]["all"] > 0 for e in report["layers"])
    _check_shares(report, most.n_routed_experts)


def test_cli_writes_the_report(tmp_path):
    out = tmp_path / "routing"
    proc = run_cli("routing", "--output", str(out), "--limit", "3", "--batch-size", "4")
    assert proc.returncode == 0, proc.stderr
    assert "report:" in proc.stdout
    report = json.loads((out / "routing.json").read_text())
    assert report["model"]["routing"] == "checkpoint" and report["model"]["modality_routing"] is True
    assert report["model"]["checkpoint"].endswith("checkpoints/tiny") and report["model"]["moe_layers"] == [1, 2]
    assert report["inputs"]["sequences"] == 6 and report["inputs"]["utterances"] == 3
    assert report["inputs"]["task"] == "asr:librispeech-test-clean"
    assert all(e["cross_modality"] == {"text": 0.0, "audio": 0.0, "all": 0.0} for e in report["layers"])
    _check_shares(report, report["model"]["n_routed_experts"])
    from matplotlib.image import imread

    image = imread(out / "routing.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 300


def test_routing_report_off_through_the_library_entry_point(tiny, tmp_path):
    model, samples, _ = tiny
    report = R.routing_report(model, samples, tmp_path, routing="off", limit=2, batch_size=3)
    assert report["model"]["modality_routing"] is False and report["model"]["modality_routing_saved"] is True
    assert any(e["cross_modality"]["all"] > 0 for e in report["layers"])
    assert json.loads((tmp_path / "routing.json").read_text()) == report
    assert (tmp_path / "routing.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    R.set_modality_routing(model.lm, "checkpoint")


@pytest.mark.parametrize("case", ["output is a file", "checkpoint without most.json", "unknown routing"])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, case):
    args = ["routing", "--output", str(tmp_path / "out"), "--limit", "1"]
    if case == "output is a file":
        (tmp_path / "file").write_text("x")
        args[2] = str(tmp_path / "file")
        expected = "is a file"
    elif case == "checkpoint without most.json":
        (tmp_path / "ckpt").mkdir()
        args += ["--model-args", f"checkpoint={tmp_path / 'ckpt'}"]
        expected = "most.json is missing"
    else:
        args += ["--routing", "maybe"]
        expected = "--routing maybe"
    result = CliRunner().invoke(cli.app, args, env={"COLUMNS": "200"})  # in process: torch is already imported
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert not (tmp_path / "out" / "routing.json").exists()


def test_help_shows_every_default():
    from test_cli_newcomer import WIDE, _option_rows

    result = CliRunner().invoke(cli.app, ["routing", "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    rows = _option_rows(result.output)
    for option in ("--model-args", "--data-root", "--task", "--limit", "--routing", "--batch-size", "--device"):
        assert "[default: " in rows[option], rows[option]
    assert "[required]" in rows["--output"]
