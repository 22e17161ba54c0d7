"""Claims of the user pages (README.md, CONTRIBUTING.md, docs/*.md) that no other test exercised, each quoted in its
test's docstring with the page it lives on and checked through the CLI on real components (the bundled tiny MoST
checkpoint, the mini suite, tiny local models built through their config classes; nothing is downloaded)."""

from __future__ import annotations

import functools
import json
import re
import shutil
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf
import torch
import transformers
from conftest import MINI_SUITE, read_jsonl, run_cli
from test_families_e2e import librispeech_transcripts as transcripts
from whisper_normalizer.english import EnglishTextNormalizer

from most_eval import registry

REPO = Path(__file__).resolve().parents[1]
NO_JUDGE_ENV = {"MOST_EVAL_JUDGE_PATH": ""}  # the documented default judge, whatever the caller's shell sets
LIBRI = "asr:librispeech-test-clean"
TTS = "tts:librispeech-test-clean"
NORMALISE = EnglishTextNormalizer()
README_LIMIT = 12_000  # characters: the README is the front page; the manual is docs/


@functools.lru_cache(maxsize=None)
def page(name: str) -> str:
    """A user page's text, by its path in the repository: "README.md", "CONTRIBUTING.md" or "docs/<page>.md"."""
    return (REPO / name).read_text(encoding="utf-8")


def page_says(name: str, text: str) -> None:
    """The claim a test checks is still on that page, word for word (whitespace aside)."""
    flat = " ".join(page(name).split())
    assert " ".join(text.split()) in flat, f"{name} no longer says: {text}"


def section(name: str, title: str) -> str:
    """From the heading ``title`` of page ``name`` to the next heading."""
    text = page(name)
    start = text.index(title)
    end = text.find("\n#", start + len(title))
    return text[start:end if end > 0 else None]


def default_tasks(name: str = "docs/tasks.md", title: str = "## Task table") -> dict[str, bool]:
    """task name -> default, from a page's task table (docs/tasks.md's "Task table" unless told; README.md's "Tasks"
    has the same first two columns): `name`* marks a default; `{a,b}-{x,y}` expands; "(+ `-test` splits)" adds the
    -test task of every -dev one; `text:<...>` is the dynamic family."""
    out = {}
    for line in section(name, title).splitlines():
        m = re.match(r"\| `(\w+)` \| (.*?) \|", line)
        if not m:
            continue
        family, cell = m.groups()
        if family == "text":
            out["text:<lm-eval task>"] = False
            continue
        for task, star in re.findall(r"`([^`]+)`(\*?)", cell):
            if task == "-test":
                continue
            names = [task]
            brace = re.fullmatch(r"\{([^}]*)\}-\{([^}]*)\}", task)
            if brace:
                names = [f"{a}-{b}" for a in brace.group(1).split(",") for b in brace.group(2).split(",")]
            for n in names:
                out[f"{family}:{n}"] = bool(star)
        if "(+ `-test` splits)" in cell:
            out.update({k.replace("-dev", "-test"): False for k in list(out) if k.startswith(family) and k.endswith("-dev")})
    return out


def documented_models(name: str = "docs/models.md", title: str = "## Adapters") -> set[str]:
    """Model names in a page's models table (docs/models.md's "Adapters" unless told; README.md's "Models" too):
    rows starting `| `name` |` or `| `name`, `name` |`."""
    names = re.findall(r"^\| `([a-z-]+)`(?:, `([a-z-]+)`)? \|", section(name, title), re.M)
    return {n for pair in names for n in pair if n}


def table_rows(stdout: str) -> list[list[str]]:
    """Cells of a rich table's body rows (one line per row at a wide terminal)."""
    return [[c.strip() for c in line.strip().strip("│").split("│")] for line in stdout.splitlines()
            if line.startswith("│")]


def corpus_wer(records: list[dict]) -> float:
    out = jiwer.process_words([r["ref"] for r in records], [r["hyp"] for r in records])
    return 100 * (out.substitutions + out.deletions + out.insertions) / sum(len(r["ref"].split()) for r in records)


# ---------------------------------------------------------------------------------------------------------------
# Quick start


def test_quick_start_runs_most_on_every_family_of_the_bundled_mini_suite(tmp_path, monkeypatch):
    """README.md, Quick start: "bash install.sh && .venv/bin/most-eval run --model most --tasks asr,tts,slm,sqa" —
    "It uses the bundled mini suite ... and the MoST reference model with its bundled **tiny** checkpoint";
    docs/results-format.md: outputs "(default `runs/<model>/`)"; "Every listed sample ends there as a scored record
    or an error record"; the default tasks are docs/tasks.md's task table."""
    page_says("README.md", "most-eval run --model most --tasks asr,tts,slm,sqa")
    page_says("docs/results-format.md", "Outputs** (default `runs/<model>/`)")
    monkeypatch.chdir(tmp_path)  # the command exactly as printed: its output goes to ./runs/most/
    proc = run_cli("run", "--model", "most", "--tasks", "asr,tts,slm,sqa", env=NO_JUDGE_ENV, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "runs" / "most"
    doc = json.loads((out / "results.json").read_text())
    assert doc["model"]["name"] == "most" and doc["model"]["args"]["checkpoint"] == ""
    assert Path(doc["data_root"]).resolve() == MINI_SUITE.resolve()
    assert "bundled TINY checkpoint" in proc.stderr

    defaults = {name for name, default in default_tasks().items() if default}
    assert set(doc["results"]) == defaults and len(defaults) == 13
    listed = 0
    for task, res in doc["results"].items():
        assert "status" not in res, (task, res)
        assert res["errors"] == 0 and res["scored"] == res["listed"] > 0, (task, res)
        metric = "wer" if task.startswith(("asr", "tts")) else "accuracy"
        assert np.isfinite(res[metric]), (task, res)
        records = read_jsonl(out / "samples" / f"{task.replace(':', '_')}.jsonl")
        assert not [r for r in records if "error" in r], task
        listed += res["listed"]
        assert task in proc.stdout
    assert f"scored {listed} of {listed} listed samples; 0 error record(s)" in proc.stdout

    # the numbers are the records' numbers: corpus WER and QA accuracy recomputed from the samples files
    for task in ("asr:librispeech-test-clean", "asr:librispeech-test-other", TTS):
        records = read_jsonl(out / "samples" / f"{task.replace(':', '_')}.jsonl")
        refs = transcripts(task.split("librispeech-")[1])
        assert all(r["ref"] == NORMALISE(refs[r["id"]]) and r["hyp"] == NORMALISE(r["hyp_raw"]) for r in records)
        assert doc["results"][task]["wer"] == pytest.approx(corpus_wer(records), abs=5e-5), task
    for task in [t for t in doc["results"] if t.startswith("sqa:")]:
        records = read_jsonl(out / "samples" / f"{task.replace(':', '_')}.jsonl")
        expected = 100 * sum(r["correct"] for r in records) / len(records)
        assert doc["results"][task]["accuracy"] == pytest.approx(expected, abs=1e-4), task


# ---------------------------------------------------------------------------------------------------------------
# Cache: content digests and scoring-only options


def _libri_copy(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(MINI_SUITE / "LibriSpeech", data / "LibriSpeech")
    return data


def _most_asr(data: Path, out: Path, *extra: str):
    proc = run_cli("run", "--model", "most", "--model-args", "dtype=float32", "--tasks", LIBRI, "--data-root",
                   str(data), "--output", str(out), "--limit", "4", "--no-progress", *extra, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    return proc, doc["results"][LIBRI], {r["id"]: r for r in read_jsonl(out / "samples" / "asr_librispeech-test-clean.jsonl")}


def test_audio_replaced_at_an_unchanged_path_is_run_again_and_the_rest_reused(tmp_path):
    """docs/usage.md, Resume: "Each record carries the model fingerprint, the task's cache key and a digest of the
    sample's input *content* (audio bytes, prompt, reference): it is reused only while all three match, so audio
    replaced at an unchanged path runs again." The summary and results.json say how many records were reused."""
    page_says("docs/usage.md", "it is reused only while all three match, so audio replaced at an unchanged path runs "
                               "again")
    data, out = _libri_copy(tmp_path), tmp_path / "out"
    first_proc, first, before = _most_asr(data, out)
    assert first["reused"] == 0 and "0 record(s) reused from the cache" in first_proc.stdout
    ids = sorted(before)
    assert len(ids) == 4 and len({before[i]["hyp_raw"] for i in ids}) == 4  # four different transcripts

    # utterance 0's file now holds utterance 1's audio, at the same path
    target, source = (next(data.glob(f"LibriSpeech/test-clean/*/*/{i}.flac")) for i in ids[:2])
    target.write_bytes(source.read_bytes())
    proc, res, after = _most_asr(data, out)
    assert res["reused"] == 3 and res["scored"] == 4
    assert "3 record(s) reused from the cache" in proc.stdout
    # recomputed: the model now hears utterance 1 (the same transcript as utterance 1's), against utterance 0's text
    assert after[ids[0]]["hyp_raw"] == before[ids[1]]["hyp_raw"]
    assert after[ids[0]]["ref"] == before[ids[0]]["ref"]
    assert all(after[i] == before[i] for i in ids[1:])  # the others: the cached records, unchanged
    assert res["wer"] == pytest.approx(corpus_wer(list(after.values())), abs=5e-5)


def test_scoring_only_options_rescore_cached_records_without_running_the_model(tmp_path):
    """docs/usage.md, Resume: "A scoring-only option such as `bootstrap` or StoryCloze `reduction` re-scores the cached
    outputs without running the model again." """
    page_says("docs/usage.md", "A scoring-only option such as `bootstrap` or StoryCloze `reduction` re-scores the "
                               "cached outputs without running the model again.")
    data, out = _libri_copy(tmp_path), tmp_path / "out"
    # a non-zero WER so the confidence interval is not a single point: utterance 0 hears utterance 1
    flac = sorted(data.glob("LibriSpeech/test-clean/*/*/*.flac"))
    flac[0].write_bytes(flac[1].read_bytes())
    _, base, records = _most_asr(data, out)
    assert base["wer"] > 0 and base["wer_ci95"][0] < base["wer_ci95"][1]
    for value in ("0", "50"):
        proc, res, again = _most_asr(data, out, "--task-args", f"bootstrap={value}")
        assert res["reused"] == res["scored"] == 4 and "4 record(s) reused from the cache" in proc.stdout
        assert again == records and res["wer"] == base["wer"]
        config = json.loads((out / "results.json").read_text())["tasks"][LIBRI]["config"]
        assert config["options"]["bootstrap"] == int(value)
        if value == "0":
            assert "wer_ci95" not in res  # 0 resamples: the cached records re-scored without an interval
        else:
            assert res["wer_ci95"][0] <= res["wer"] <= res["wer_ci95"][1]

    # StoryCloze (default reduction=mean): reduction=sum re-scores the cached (log-likelihood, token count) records
    cloze = "slm:sstorycloze"
    args = ("run", "--model", "most", "--model-args", "dtype=float32", "--tasks", cloze, "--output", str(out / "c"),
            "--no-progress")
    results = []
    for extra in ((), ("--task-args", "reduction=sum")):
        proc = run_cli(*args, *extra, timeout=600)
        assert proc.returncode == 0, proc.stderr
        results.append(json.loads((out / "c" / "results.json").read_text())["results"][cloze])
    (cache_file,) = (out / "c" / "cache" / "slm_sstorycloze").glob("*/rank0.jsonl")
    raw = {r["id"]: r for r in read_jsonl(cache_file)}
    assert len(raw) == 6
    for res, reduction in zip(results, ("mean", "sum")):
        score = (lambda r: r["score"] / r["n_tokens"]) if reduction == "mean" else (lambda r: r["score"])
        right = [score(raw[f"{i}_correct"]) > score(raw[f"{i}_incorrect"]) for i in range(3)]
        assert res["reduction"] == reduction and res["accuracy"] == pytest.approx(100 * sum(right) / 3, abs=1e-4)
    assert results[1]["reused"] == results[1]["scored"] == 6
    for r in read_jsonl(out / "c" / "samples" / "slm_sstorycloze.jsonl"):
        assert r["true_score"] == raw[f"{r['id']}_correct"]["score"]
        assert r["false_score"] == raw[f"{r['id']}_incorrect"]["score"]


# ---------------------------------------------------------------------------------------------------------------
# --strict


def test_strict_exits_1_on_a_dataset_error(tmp_path):
    """docs/usage.md: "A dataset that cannot be read at all is reported as `dataset error` for that task. The other
    tasks still run." and "`--fail-on-error` exits 1 when any task has error records, a dataset or scoring error, or
    no scored sample; `--strict` does the same and also exits 1 when a task is not supported by the model." """
    page_says("docs/usage.md", "`--strict` does the same and also exits 1 when a task is not supported by the model.")
    data = tmp_path / "data"
    shutil.copytree(MINI_SUITE / "LibriSpeech", data / "LibriSpeech")  # LibriSpeech readable, no voxpopuli/
    args = ("run", "--model", "dummy", "--model-args", "text=the", "--tasks", f"{LIBRI},asr:voxpopuli-en",
            "--data-root", str(data), "--no-progress")
    plain = run_cli(*args, "--output", str(tmp_path / "plain"))
    assert plain.returncode == 1, plain.stderr  # a task that measured nothing exits 1 without the flag too
    assert "1 task(s) measured nothing: asr:voxpopuli-en: dataset error" in plain.stderr
    strict = run_cli(*args, "--output", str(tmp_path / "strict"), "--strict")
    assert strict.returncode == 1, strict.stderr
    assert "dataset error" in strict.stderr and "asr:voxpopuli-en" in strict.stderr
    for out in ("plain", "strict"):
        res = json.loads((tmp_path / out / "results.json").read_text())["results"]
        assert res["asr:voxpopuli-en"]["status"] == "dataset error"
        assert res[LIBRI]["scored"] == 12  # the other task still ran


# ---------------------------------------------------------------------------------------------------------------
# Judge and embedders


def _tts_run(tmp_path: Path, *extra: str, env: dict | None = None):
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "dummy", "--tasks", TTS, "--limit", "2", "--output", str(out), "--no-progress",
                   *extra, env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    return proc, doc, out, read_jsonl(out / "samples" / "tts_librispeech-test-clean.jsonl")


def _prompt_of(uid: str) -> Path:
    """LibriSpeech prompt=other: the same speaker's next utterance (cyclic, over the whole split)."""
    same = sorted(i for i in transcripts("test-clean") if i.split("-")[0] == uid.split("-")[0])
    (path,) = (MINI_SUITE / "LibriSpeech" / "test-clean").glob(f"*/*/{same[(same.index(uid) + 1) % len(same)]}.flac")
    return path


def _audio_16k(path: Path) -> np.ndarray:
    samples, rate = sf.read(path, dtype="float32")
    assert rate == 16000
    return samples


def test_judge_path_env_makes_a_local_whisper_the_default_judge(tmp_path):
    """docs/tasks.md: "The judge is `--judge` (...; default: `hf-whisper` from `$MOST_EVAL_JUDGE_PATH` if set, else
    the offline baseline, ...)". A tiny random Whisper saved locally is the judge: every TTS record's transcript is
    that Whisper's greedy decode of the written audio, computed here with transformers directly."""
    page_says("docs/tasks.md", "default: `hf-whisper` from `$MOST_EVAL_JUDGE_PATH` if set, else the offline baseline")
    from test_hf_adapters import _tiny_whisper

    folder = tmp_path / "whisper"
    folder.mkdir()
    _tiny_whisper(folder)  # tokenizer, feature extractor, generation config; then 448 decoder positions, as
    config = transformers.WhisperConfig.from_pretrained(folder)  # Whisper's, for hf-whisper's default 440 new tokens
    config.max_target_positions = 448
    generation = transformers.GenerationConfig.from_pretrained(folder)
    torch.manual_seed(0)
    whisper = transformers.WhisperForConditionalGeneration(config)
    whisper.generation_config = generation
    whisper.save_pretrained(folder)
    proc, doc, out, records = _tts_run(tmp_path, env={"MOST_EVAL_JUDGE_PATH": str(folder)})
    judge = doc["tasks"][TTS]["config"]["judge"]
    assert judge["name"] == "hf-whisper" and judge["args"]["path"] == str(folder)
    assert doc["results"][TTS]["judge"] != "offline-baseline"
    assert "judge ASR = offline-baseline" not in proc.stderr

    processor = transformers.WhisperProcessor.from_pretrained(folder)
    model = transformers.WhisperForConditionalGeneration.from_pretrained(folder).eval()
    max_new = judge["args"]["max_new_tokens"]
    assert len(records) == 2
    for r in records:
        audio = _audio_16k(out / r["audio"])
        feats = processor.feature_extractor([audio], sampling_rate=16000, return_tensors="pt",
                                            return_attention_mask=True)
        with torch.no_grad():
            ids = model.generate(feats.input_features, attention_mask=feats.attention_mask, task="transcribe",
                                 num_beams=1, max_new_tokens=max_new)
        assert r["hyp_raw"] == processor.tokenizer.batch_decode(ids, skip_special_tokens=True)[0].strip()
    assert any(r["hyp_raw"] for r in records)  # random weights say something: not empty strings compared

    _, plain, _, _ = _tts_run(tmp_path / "plain", env=NO_JUDGE_ENV)  # unset: the offline baseline
    assert plain["tasks"][TTS]["config"]["judge"]["name"] == "offline-baseline"


ECAPA_ARGS = dict(input_size=24, channels=[16, 16, 16, 16, 48], kernel_sizes=[5, 3, 3, 3, 1],
                  dilations=[1, 2, 3, 4, 1], attention_channels=8, lin_neurons=12)


def _tiny_ecapa(folder: Path) -> None:
    """A speechbrain ECAPA-TDNN folder as `EncoderClassifier.from_hparams` reads it: hyperparams.yaml (Fbank,
    sentence mean normalisation, ECAPA_TDNN) and the embedding model's checkpoint, random weights."""
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

    folder.mkdir()
    torch.manual_seed(0)
    torch.save(ECAPA_TDNN(**ECAPA_ARGS).state_dict(), folder / "embedding_model.ckpt")
    a = ECAPA_ARGS
    (folder / "hyperparams.yaml").write_text(f"""\
n_mels: {a['input_size']}
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: {a['channels']}
    kernel_sizes: {a['kernel_sizes']}
    dilations: {a['dilations']}
    attention_channels: {a['attention_channels']}
    lin_neurons: {a['lin_neurons']}
modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
    paths:
        embedding_model: {folder}/embedding_model.ckpt
""")


def _ecapa_embedder(folder: Path):
    """The same network run by hand: Fbank -> sentence mean normalisation -> ECAPA_TDNN, L2-normalised."""
    from speechbrain.lobes.features import Fbank
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    from speechbrain.processing.features import InputNormalization

    model = ECAPA_TDNN(**ECAPA_ARGS).eval()
    model.load_state_dict(torch.load(folder / "embedding_model.ckpt"))
    fbank, norm = Fbank(n_mels=ECAPA_ARGS["input_size"]), InputNormalization(norm_type="sentence", std_norm=False)

    def embed(samples: np.ndarray) -> np.ndarray:
        wav, lens = torch.from_numpy(samples)[None], torch.ones(1)
        with torch.no_grad():
            vector = model(norm(fbank(wav), lens), lens).reshape(-1).numpy()
        return vector / np.linalg.norm(vector)

    return embed


def _tiny_wavlm(folder: Path) -> None:
    """A transformers WavLMForXVector folder (model + feature extractor), random weights."""
    folder.mkdir()
    torch.manual_seed(0)
    config = transformers.WavLMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                      conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8),
                                      num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
                                      tdnn_dim=(8, 8), tdnn_kernel=(3, 1), tdnn_dilation=(1, 1), xvector_output_dim=6)
    transformers.WavLMForXVector(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000).save_pretrained(folder)


def _wavlm_embedder(folder: Path):
    extractor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(folder)
    model = transformers.WavLMForXVector.from_pretrained(folder).eval()

    def embed(samples: np.ndarray) -> np.ndarray:
        inputs = extractor(samples, sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            vector = model(**inputs).embeddings.reshape(-1).numpy()
        return vector / np.linalg.norm(vector)

    return embed


@pytest.mark.parametrize("kind,build,reference", [("ecapa", _tiny_ecapa, _ecapa_embedder),
                                                  ("wavlm", _tiny_wavlm, _wavlm_embedder)])
def test_embedder_option_loads_a_local_speaker_model_for_sim(tmp_path, kind, build, reference):
    """docs/tasks.md: "SIM uses `--embedder` (resemblyzer by default, ships its weights)"; docs/usage.md:
    `--embedder resemblyzer|ecapa:PATH|wavlm:PATH|seedtts-wavlm:PATH`. `ecapa:PATH` is a speechbrain ECAPA-TDNN
    folder, `wavlm:PATH` a transformers WavLMForXVector folder (most_eval/models/speaker_embedders.py). Each record's SIM is the
    cosine of that model's embeddings of the prompt and the generated audio, computed here directly."""
    page_says("docs/usage.md", "[--embedder resemblyzer|ecapa:PATH|wavlm:PATH|seedtts-wavlm:PATH]")
    page_says("docs/tasks.md", "SIM uses `--embedder` (resemblyzer by default, ships its weights)")
    folder = tmp_path / kind
    build(folder)
    _, doc, out, records = _tts_run(tmp_path, "--embedder", f"{kind}:{folder}", env=NO_JUDGE_ENV)
    res = doc["results"][TTS]
    assert res["embedder"] == f"{kind}:{folder.name}"
    assert doc["tasks"][TTS]["config"]["options"]["embedder"] == f"{kind}:{folder}"
    embed = reference(folder)
    # the dummy speaks a 0.2 s 220 Hz tone of amplitude 0.1 (DummyArgs); SIM is taken on what was kept of it, the
    # 16-bit WAV, as on every later run that scores the cached output again
    t = np.arange(int(0.2 * 16000), dtype=np.float32) / 16000
    tone = (0.1 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    assert len(records) == 2
    for r in records:
        kept = _audio_16k(out / r["audio"])
        assert np.abs(kept - tone).max() <= 1 / 32768
        expected = float(embed(_audio_16k(_prompt_of(r["id"]))) @ embed(kept))
        assert r["sim"] == pytest.approx(expected, abs=1e-5), r["id"]
    assert res["sim"] == pytest.approx(np.mean([r["sim"] for r in records]), abs=5e-5)


# ---------------------------------------------------------------------------------------------------------------
# list tasks / list models


def test_list_tasks_shows_every_task_its_capability_folder_and_default():
    """docs/usage.md: "most-eval list tasks  # every task, its capability, dataset folder, default or not"; the
    tasks and their defaults are docs/tasks.md's task table."""
    page_says("docs/usage.md", "most-eval list tasks  # every task, its capability, dataset folder, default or not")
    proc = run_cli("list", "tasks", env={"COLUMNS": "400"})
    assert proc.returncode == 0, proc.stderr
    rows = {r[0]: r for r in table_rows(proc.stdout) if r[0]}
    expected = default_tasks()
    assert set(rows) == set(expected)
    families = registry.families()
    for name, default in expected.items():
        _, needs, folder, shown_default, _ = rows[name]
        assert shown_default == ("yes" if default else ""), name
        family, task = name.split(":", 1)
        if family == "text":
            assert needs == "score_text"
            continue
        cls = families[family].tasks[name]
        assert (needs, folder) == (cls.capability, cls.dataset_folder), name
        assert (MINI_SUITE / folder.replace("cv-corpus-*", "cv-corpus-15.0-2023-09-08")).is_dir(), name


def test_list_models_shows_every_readme_model_with_its_capabilities():
    """docs/usage.md: "most-eval list models  # every model and its capabilities (fast: imports no backend)";
    the models are docs/models.md's "Adapters" table. Capabilities are those the imported adapter classes override."""
    page_says("docs/usage.md", "most-eval list models  # every model and its capabilities")
    documented = documented_models()
    assert len(documented) == 12
    proc = run_cli("list", "models", env={"COLUMNS": "400"})
    assert proc.returncode == 0, proc.stderr
    rows = {r[0]: r for r in table_rows(proc.stdout) if r[0]}
    assert set(rows) == documented
    for name in documented:
        cls = registry.get_model_class(name)
        shown = rows[name][1]
        if name == "precomputed":  # what it serves depends on the files it is given
            assert shown == "from its files"
        else:
            assert shown == ", ".join(sorted(cls.capabilities())), name
        assert rows[name][2] == cls.description, name


def test_judge_args_without_a_judge_is_an_error(tmp_path):
    """docs/usage.md: "`--model-args`, `--judge-args`, `--task-args` are typed. An unknown key is an error" — also
    when no --judge is named (the default judge takes no arguments, so any --judge-args would be silently ignored)."""
    proc = run_cli("run", "--model", "dummy", "--tasks", "tts:librispeech-test-clean", "--judge-args", "no_such_key=3",
                   "--output", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 2 and "--judge-args needs --judge NAME" in proc.stderr
    assert not (tmp_path / "out" / "results.json").exists()
    proc = run_cli("run", "--model", "dummy", "--tasks", "asr:librispeech-test-clean", "--judge", "dummy",
                   "--judge-args", "no_such_key=3", "--output", str(tmp_path / "out2"), "--no-progress")
    assert proc.returncode == 2 and "no_such_key" in proc.stderr


# ---------------------------------------------------------------------------------------------------------------
# The user pages themselves

USER_PAGES = ("README.md", "CONTRIBUTING.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")))
COMMIT_HASH = re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b", re.I)  # hex with digits and letters
HISTORY_WORDS = re.compile(r"development notes|session", re.I)


def test_user_pages_are_a_short_readme_a_docs_folder_and_contributing_without_development_history():
    """README.md is the front page (at most 12,000 characters) and links to the manual in docs/ (at least five pages)
    and to CONTRIBUTING.md; no user page cites a commit or development notes."""
    assert len(page("README.md")) <= README_LIMIT, len(page("README.md"))
    docs = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    assert len(docs) >= 5, docs
    assert (REPO / "CONTRIBUTING.md").is_file()
    for name in USER_PAGES:
        text = page(name)
        assert not COMMIT_HASH.findall(text), (name, COMMIT_HASH.findall(text))
        assert not HISTORY_WORDS.findall(text), (name, HISTORY_WORDS.findall(text))
    for doc in docs:  # every docs page is reachable from the front page
        assert f"(docs/{doc})" in page("README.md"), doc


def test_readme_tables_list_the_tasks_and_models_the_docs_pages_describe():
    """README.md's "Tasks" and "Models" tables are summaries of docs/tasks.md's task table and docs/models.md's
    adapters table: the same tasks with the same defaults, the same model names."""
    assert default_tasks("README.md", "## Tasks") == default_tasks()
    assert documented_models("README.md", "## Models") == documented_models()
