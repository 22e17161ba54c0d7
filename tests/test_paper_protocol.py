"""The paper's protocol per task: reference judges (--judge paper), the tables as task groups, the TTS tasks of every
paper column, sLM reductions, and the reasons a number is not comparable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers
from conftest import read_jsonl, run_cli

from most_eval.registry import resolve_tasks

TTS_COLUMNS = ("tts:librispeech-test-clean", "tts:librispeech-test-other", "tts:voxpopuli-en", "tts:commonvoice-en")


def _tiny_hubert_ctc(folder: Path) -> None:
    """A HuBERT CTC model with random weights, saved through transformers' own classes (as hubert-large-ls960-ft)."""
    import torch

    torch.manual_seed(0)
    folder.mkdir(parents=True)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{c: i + 3 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz'")}}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tok = transformers.Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), word_delimiter_token="|")
    fe = transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, return_attention_mask=True)
    transformers.Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(folder)
    cfg = transformers.HubertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=32, conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8),
                                    num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, pad_token_id=0)
    transformers.HubertForCTC(cfg).save_pretrained(folder)


def _tiny_whisper(folder: Path) -> None:
    from test_hf_adapters import _tiny_whisper as build

    folder.mkdir(parents=True)
    build(folder)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A local models folder holding the reference judges under their published names (tiny random weights)."""
    root = tmp_path_factory.mktemp("models")
    _tiny_hubert_ctc(root / "hubert-large-ls960-ft")
    _tiny_whisper(root / "whisper-large-v3")
    return root


def test_paper_groups_select_exactly_the_tables_columns():
    names = [c.name for c in resolve_tasks("paper-asr-tts")]
    assert names == ["asr:librispeech-test-clean", "asr:librispeech-test-other", "asr:voxpopuli-en",
                     "asr:commonvoice-en", *TTS_COLUMNS]
    assert sorted(c.name for c in resolve_tasks("paper-spoken-lm")) == ["slm:sblimp-dev", "slm:sstorycloze",
                                                                       "slm:swuggy-dev", "slm:tstorycloze"]
    assert len(resolve_tasks("paper-spoken-qa")) == 6 and len(resolve_tasks("paper")) == 18


def test_paper_groups_are_the_tasks_declaring_each_tables_cells():
    """The groups come from the tasks' LeaderboardSlot declarations: each group's tasks fill every number column of
    its paper table (leaderboards/data/paper/<table>.csv) once per row kind, and nothing else."""
    import csv

    from most_eval.scoring.paper import PAPER_TABLE_GROUPS
    from most_eval.registry import paper_groups

    groups = paper_groups()
    tables = Path(__file__).resolve().parents[1] / "leaderboards" / "data" / "paper"
    for table, group in PAPER_TABLE_GROUPS.items():
        with open(tables / f"{table}.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        columns = [c for c in rows[0] if c not in ("model", "task", "source", "average")]
        row_kinds = sorted({r["task"] for r in rows}) if "task" in rows[0] else [None]
        slots = [resolve_tasks(name)[0].leaderboard for name in groups[group]]
        assert all(s.table == table for s in slots), group
        assert sorted((s.row_task or "", s.column) for s in slots) == sorted(
            (kind or "", c) for kind in row_kinds for c in columns), group
    assert groups["paper"] == tuple(n for g in PAPER_TABLE_GROUPS.values() for n in groups[g])


@pytest.mark.slow
def test_judge_paper_gives_each_task_its_reference_judge(models, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "dummy", "--tasks", "tts:librispeech-test-clean,sqa:llama-questions-s2s",
                   "--judge", "paper", "--judge-args", f"models={models}", "--output", str(out), "--no-progress",
                   "--limit", "2")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    tts, qa = doc["tasks"]["tts:librispeech-test-clean"]["config"], doc["tasks"]["sqa:llama-questions-s2s"]["config"]
    assert tts["judge"]["name"] == "hf-ctc" and tts["judge"]["args"]["path"] == str(models / "hubert-large-ls960-ft")
    assert qa["judge"]["name"] == "hf-whisper" and qa["judge"]["args"]["path"] == str(models / "whisper-large-v3")
    assert len(tts["judge_fingerprint"]) == 16
    assert doc["results"]["tts:librispeech-test-clean"]["judge"] == "hf-ctc:hubert-large-ls960-ft"
    for task in ("tts:librispeech-test-clean", "sqa:llama-questions-s2s"):  # only the subset keeps them apart
        reasons = doc["comparability"][task]["reasons"]
        assert reasons[0] == "--limit 2" and not [r for r in reasons if "judge" in r], reasons


def test_judge_paper_without_the_models_fails_before_any_model_work(tmp_path):
    # the model's checkpoint does not exist either: the judge folder must be what the message names
    proc = run_cli("run", "--model", "most", "--model-args", f"checkpoint={tmp_path / 'none'}", "--tasks",
                   "paper-asr-tts", "--judge-args", f"models={tmp_path}", "--output", str(tmp_path / "o"),
                   "--no-progress")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert f"{tmp_path / 'hubert-large-ls960-ft'} not found" in proc.stderr
    assert "hf download facebook/hubert-large-ls960-ft" in proc.stderr
    no_folder = run_cli("run", "--model", "dummy", "--tasks", "sqa:triviaqa-s2s", "--judge", "paper", "--output",
                        str(tmp_path / "o"), "--no-progress", env={"MOST_EVAL_MODELS": ""})
    assert no_folder.returncode == 2 and "--judge-args models=DIR or set $MOST_EVAL_MODELS" in no_folder.stderr


@pytest.mark.slow
def test_the_tts_tasks_of_every_paper_column_run_on_the_official_layouts(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "dummy", "--tasks", ",".join(TTS_COLUMNS), "--judge", "dummy", "--output",
                   str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    for task in TTS_COLUMNS:
        res = doc["results"][task]
        assert res["scored"] == res["listed"] > 0 and res["errors"] == 0, (task, res)
        records = read_jsonl(out / "samples" / f"{task.replace(':', '_')}.jsonl")
        assert all(-1.0 <= r["sim"] <= 1.0 for r in records)  # every sentence has its prompt for SIM
        assert all((out / r["audio"]).is_file() for r in records)
        assert "judge dummy, not the paper's judge hubert-large-ls960-ft" in doc["comparability"][task]["reasons"]
    assert doc["tasks"]["tts:commonvoice-en"]["config"]["corpus"].startswith("cv-corpus-")
    # the new sets' sentences with their own utterance as the prompt: other-speaker prompts need speaker groups
    bad = run_cli("run", "--model", "dummy", "--tasks", "tts:voxpopuli-en", "--task-args", "prompt=other",
                  "--judge", "dummy", "--output", str(tmp_path / "bad"), "--no-progress")
    assert bad.returncode == 2 and "prompt=other needs speaker groups" in bad.stderr


def test_slm_reductions_are_options_recorded_and_judged(tmp_path):
    out = tmp_path / "out"
    assert run_cli("run", "--model", "dummy", "--tasks", "slm:swuggy-dev,slm:sstorycloze", "--output", str(out),
                   "--no-progress").returncode == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["results"]["slm:swuggy-dev"]["reduction"] == "sum"
    assert doc["results"]["slm:sstorycloze"]["reduction"] == "mean"
    assert all(0 <= v <= 100 for v in doc["results"]["slm:swuggy-dev"]["by_frequency_percent"].values()
               if v is not None)
    for task in ("slm:swuggy-dev", "slm:sstorycloze"):
        assert not [r for r in doc["comparability"][task]["reasons"] if "reduction" in r]
    swapped = tmp_path / "swapped"
    assert run_cli("run", "--model", "dummy", "--tasks", "slm:swuggy-dev,slm:sstorycloze", "--output", str(swapped),
                   "--task-args", "reduction=mean", "--no-progress").returncode == 0
    doc = json.loads((swapped / "results.json").read_text())
    assert doc["results"]["slm:swuggy-dev"]["reduction"] == "mean"
    assert "reduction mean, not the ZeroSpeech convention (summed log-likelihood)" in \
        doc["comparability"]["slm:swuggy-dev"]["reasons"]


def test_seed_tts_eval_needs_its_own_embedder_and_judge_to_be_comparable(tmp_path):
    from most_eval.models.dummy import DummyModel
    from most_eval.core.task import TaskContext

    cls = resolve_tasks("tts:seed-tts-eval-en")[0]
    task = cls(tmp_path, context=TaskContext(output_dir=tmp_path, judge=DummyModel()))
    # WER and SIM have their own verdicts: the judge makes the WER's, the judge and the embedder the SIM's
    assert task.protocol_differences() == ["judge dummy, not the official scorer's judge whisper-large-v3"]
    differences = task.metric_differences()
    assert differences.pop("sim") == [
        "judge dummy, not the official scorer's judge whisper-large-v3",
        "SIM embedder resemblyzer, not seed-tts-eval's WavLM-large verification model (seedtts-wavlm:PATH)"]
    assert differences.pop("utmos") == ["UTMOS is not a number of the MoST paper (its speech tables are WER and SIM)"]
    assert differences == {m: ["DNSMOS is not a number of the MoST paper (its speech tables are WER and SIM)"]
                           for m in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")}
