"""A newcomer's path: defaults in every --help, task options listed, lm-eval's flag spellings, --limit by scored
item, quiet transformers, a fast `list models`, and a hub id that fails at once offline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer
from conftest import MINI_SUITE, REPO, read_jsonl, run_cli
from typer.testing import CliRunner

from most_eval.cli import app
from most_eval.cli.listing import option_docs
from most_eval.registry import resolve_tasks
from most_eval.run.runner import limit_samples
from most_eval.core.task import TaskContext

runner = CliRunner()
WIDE = {"COLUMNS": "400", "TERMINAL_WIDTH": "400"}


def _option_rows(output: str) -> dict[str, str]:
    """The rows of rich's options panel: first option name -> the row's text (its wrapped lines joined)."""
    rows: dict[str, str] = {}
    current = None
    for line in output.splitlines():
        start = re.match(r"^│ [* ]?\s*(--[\w-]+)", line)
        if start:
            current = start.group(1)
            rows[current] = line
        elif current and line.startswith("│"):
            rows[current] += " " + line
        else:
            current = None
    return rows


@pytest.mark.parametrize("command", [["run"], ["list", "tasks"], ["list", "models"], ["check"], ["compare"],
                                     ["data", "download"], ["data", "list"], ["data", "verify"],
                                     ["leaderboard", "build"], ["train"]])
def test_every_option_shows_its_default_in_help(command):
    result = runner.invoke(app, [*command, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    click_command = typer.main.get_command(app)
    for name in command:
        click_command = click_command.commands[name]
    rows = _option_rows(result.output)
    for param in click_command.params:
        if param.param_type_name != "option" or param.required or param.name == "help":
            continue
        long_name = next(o for o in param.opts if o.startswith("--"))
        assert long_name in rows, f"{' '.join(command)}: {long_name} not in the help"
        assert "[default: " in rows[long_name], f"{' '.join(command)} {long_name}: no default shown: {rows[long_name]}"


def test_run_help_names_the_defaults_rich_markup_used_to_eat():
    rows = _option_rows(runner.invoke(app, ["run", "--help"], env=WIDE).output)
    assert "[default: (runs/<model>)]" in rows["--output"]
    assert "[default: (all)]" in rows["--limit"]
    assert "[default: (off)]" in rows["--strict"] and "[default: (off)]" in rows["--fail-on-error"]
    assert "[default: 8]" in rows["--batch-size"] and "mini_suite" in rows["--data-root"]
    assert "always written" in rows["--log-samples"]


@dataclass(frozen=True)
class _BaseOptions:
    """Options of a pretend task."""

    mode: str = "fast"  # how to run: fast or exact
    # resamples for the confidence interval,
    # 0 for none
    bootstrap: int = field(default=1000, metadata={"scoring": True})
    seed_list: tuple = field(default=(1, 2), metadata={"help": "seeds to try"})  # a comment the help overrides
    source: str | None = None


@dataclass(frozen=True)
class _ChildOptions(_BaseOptions):
    """Only changes a default."""

    mode: str = "exact"


def test_option_docs_read_type_default_and_meaning():
    docs = {d.key: d for d in option_docs(_ChildOptions)}
    assert (docs["mode"].type, docs["mode"].default, docs["mode"].meaning) == ("str", "exact", "how to run: fast or exact")
    assert docs["bootstrap"].meaning == "resamples for the confidence interval, 0 for none"
    assert docs["seed_list"].meaning == "seeds to try" and docs["seed_list"].default == "(1, 2)"
    assert (docs["source"].type, docs["source"].default, docs["source"].meaning) == ("str | None", "none", "")


def test_list_tasks_options_shows_keys_types_defaults_and_the_text_family():
    result = runner.invoke(app, ["list", "tasks", "--options"], env=WIDE)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    cloze = next(line for line in lines if "slm:sstorycloze" in line)
    assert "reduction" in cloze and " str " in cloze and " mean " in cloze and "slamkit" in cloze
    assert any("protocol" in line and "whisper" in line and "normalisation" in line for line in lines)
    assert any("num_fewshot" in line and "int | None" in line for line in lines)
    assert "text:<lm-eval task> is available" in result.output
    plain = runner.invoke(app, ["list", "tasks"], env=WIDE).output
    assert "text:<lm-eval task>" in plain and "text:arc_easy" in plain


def _capture_run(monkeypatch, *args):
    """Invoke ``run`` in-process with the evaluation replaced by a recorder; returns what it was given."""
    import most_eval.run.runner

    seen = {}

    def fake_evaluate(model, tasks, output_dir, **kwargs):
        seen.update(model=model, tasks=tasks, output=output_dir, **kwargs)
        return None  # as a rank other than 0: nothing to print

    monkeypatch.setattr(most_eval.run.runner, "run_tasks", fake_evaluate)
    result = runner.invoke(app, ["run", *args, "--no-progress"])
    return result, seen


def test_lm_eval_flag_spellings_are_accepted(tmp_path, monkeypatch):
    out = tmp_path / "out"
    result, seen = _capture_run(monkeypatch, "--model", "dummy", "--model_args", "text=the cat", "--tasks",
                                "asr:librispeech-test-clean", "--batch_size", "3", "--output_path", str(out),
                                "--log_samples")
    assert result.exit_code == 0, result.output
    assert seen["model"].args.text == "the cat" and seen["batch_size"] == 3 and seen["output"] == out


def test_num_fewshot_sets_the_text_tasks_task_arg(tmp_path, monkeypatch):
    result, seen = _capture_run(monkeypatch, "--model", "dummy", "--tasks", "text:arc_easy", "--num_fewshot", "5",
                                "--output", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert [t.options.num_fewshot for t in seen["tasks"]] == [5]
    same, seen = _capture_run(monkeypatch, "--model", "dummy", "--tasks", "text:arc_easy", "--num_fewshot", "5",
                              "--task-args", "num_fewshot=5", "--output", str(tmp_path / "o"))
    assert same.exit_code == 0 and seen["tasks"][0].options.num_fewshot == 5


def test_num_fewshot_is_refused_where_no_task_takes_it_or_task_args_disagree(tmp_path):
    wrong = run_cli("run", "--model", "dummy", "--tasks", "asr", "--num_fewshot", "5", "--output",
                    str(tmp_path / "o"), "--no-progress")
    assert wrong.returncode == 2 and wrong.stderr.strip().count("\n") == 0
    assert "--num_fewshot 5: only text:<lm-eval task> tasks take it" in wrong.stderr
    clash = run_cli("run", "--model", "dummy", "--tasks", "text:arc_easy", "--num_fewshot", "5", "--task-args",
                    "num_fewshot=2", "--output", str(tmp_path / "o"), "--no-progress")
    assert clash.returncode == 2 and "differ" in clash.stderr


def test_batch_size_alias_is_checked_like_the_option(tmp_path):
    bad = run_cli("run", "--model", "dummy", "--tasks", "asr", "--batch_size", "0", "--output", str(tmp_path / "o"))
    assert bad.returncode == 2 and "--batch-size 0: must be at least 1" in bad.stderr


def test_limit_counts_storycloze_pairs_not_wavs(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "dummy", "--tasks", "slm:sstorycloze", "--limit", "2", "--output", str(out),
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())["results"]["slm:sstorycloze"]
    assert (res["pairs"], res["listed"], res["scored"], res["errors"]) == (2, 4, 4, 0)
    assert [r["id"] for r in read_jsonl(out / "samples" / "slm_sstorycloze.jsonl")] == ["0", "1"]


def _task(name):
    (cls,) = resolve_tasks(name)
    return cls(MINI_SUITE, None, TaskContext(output_dir=Path(".")))


def test_limit_keeps_whole_zerospeech_items_and_first_samples_elsewhere():
    wuggy = _task("slm:swuggy-dev")
    table = wuggy.gold().table
    kept = limit_samples(wuggy, wuggy.samples(), 2)
    first_ids = list(dict.fromkeys(table["id"]))[:2]
    assert {s.id for s in kept} == set(table[table["id"].isin(first_ids)]["filename"])  # every voice, word and non-word

    blimp = _task("slm:sblimp-dev")
    kept = limit_samples(blimp, blimp.samples(), 2)
    assert len(kept) == 4  # two sentence pairs
    rows = blimp.gold().table.set_index("filename").loc[[s.id for s in kept]]
    assert sorted(rows["correct"]) == [0, 0, 1, 1]

    asr = _task("asr:librispeech-test-clean")
    samples = asr.samples()
    assert limit_samples(asr, samples, 3) == samples[:3]


def test_list_models_imports_no_torch_and_reads_capabilities():
    code = ("import sys\nfrom most_eval.cli import app\ntry:\n    app(['list', 'models'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in ('torch', 'transformers', 'lm_eval', 'speechbrain') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"}, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    most = next(line for line in proc.stdout.splitlines() if line.startswith("│ most "))
    assert "generate_text, respond, score_audio, score_text, synthesize, transcribe" in most
    assert "from its files" in next(line for line in proc.stdout.splitlines() if "│ precomputed" in line)


def test_model_info_read_from_source_matches_the_imported_classes():
    from most_eval import registry

    static = {name: registry.model_info(name) for name in registry.model_names() if name not in registry._models}
    for name, info in static.items():
        cls = registry.get_model_class(name)
        own = cls.__dict__.get("capabilities")
        caps = cls.capabilities() if own is None or isinstance(own, classmethod) else None
        assert (info.capabilities, info.description) == (caps, cls.description), name


#: runs the CLI with every connection attempt recorded and refused; prints how many there were
_NO_NETWORK = """
import runpy, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args)
    raise OSError("network disabled by the test")
socket.create_connection = refuse
socket.socket.connect = refuse
sys.argv = ["most-eval", *sys.argv[1:]]
try:
    runpy.run_module("most_eval", run_name="__main__")
except SystemExit as exc:
    print("CONNECTION ATTEMPTS", len(attempts), file=sys.stderr)
    raise
"""


def test_a_hub_id_fails_at_once_without_touching_the_network(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    proc = subprocess.run([sys.executable, "-c", _NO_NETWORK, "run", "--model", "hf-whisper", "--model-args",
                           "path=most-eval-tests/no-such-model", "--tasks", "asr", "--output", str(tmp_path),
                           "--no-progress"], capture_output=True, text=True, env={**env, "COLUMNS": "200"},
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    error, attempts = proc.stderr.strip().splitlines()
    assert attempts == "CONNECTION ATTEMPTS 0"
    assert error.startswith("error: model hf-whisper: ") and "hf download most-eval-tests/no-such-model" in error
    assert "HF_HUB_OFFLINE=0" in error and "path=/models/no-such-model" in error


def test_the_hub_is_asked_only_after_opting_in(monkeypatch):
    from most_eval.core.hf_loading import ModelLoadError, load_pretrained

    calls = []

    def loader(name, **kwargs):
        calls.append(kwargs.get("local_files_only", False))
        raise OSError("not cached")

    for value, expected in ((None, [True]), ("1", [True]), ("", [True]), ("0", [True, False])):
        calls.clear()
        if value is None:
            monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        else:
            monkeypatch.setenv("HF_HUB_OFFLINE", value)
        with pytest.raises(ModelLoadError):
            load_pretrained("org/model", loader, "model")
        assert calls == expected, value


@pytest.fixture
def hf_output_state(monkeypatch):
    """Environment and transformers' logging state restored after the test."""
    from transformers.utils import logging as hf_logging

    from most_eval.core import hf_loading

    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY", "TRANSFORMERS_NO_ADVISORY_WARNINGS"):
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    verbosity, bars, quiet = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(), hf_loading._quiet
    yield hf_logging
    hf_logging.set_verbosity(verbosity)
    (hf_logging.enable_progress_bar if bars else hf_logging.disable_progress_bar)()
    hf_loading._quiet = quiet


def test_transformers_is_quiet_unless_verbose(hf_output_state):
    from most_eval.core.hf_loading import configure_output

    hf_logging = hf_output_state
    hf_logging.set_verbosity_warning()
    hf_logging.enable_progress_bar()
    configure_output(verbose=True)
    assert hf_logging.get_verbosity() == hf_logging.WARNING and hf_logging.is_progress_bar_enabled()
    assert "TRANSFORMERS_VERBOSITY" not in os.environ
    configure_output(verbose=False)
    assert hf_logging.get_verbosity() == hf_logging.ERROR and not hf_logging.is_progress_bar_enabled()
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1" and os.environ["TRANSFORMERS_VERBOSITY"] == "error"


@pytest.mark.parametrize("rank, verbose, expected", [(0, True, True), (1, True, False), (0, False, False)])
def test_only_rank_0_is_verbose(rank, verbose, expected, monkeypatch, tmp_path):
    import most_eval.run.distributed
    from most_eval.run.distributed import Dist
    from most_eval.core import hf_loading

    told = []

    def record(verbose):
        told.append(verbose)
        raise KeyboardInterrupt  # stop the run here

    monkeypatch.setattr(most_eval.run.distributed, "init_distributed", lambda device: (Dist(rank, 2), device))
    monkeypatch.setattr(most_eval.run.distributed, "finish_distributed", lambda: None)
    monkeypatch.setattr(hf_loading, "configure_output", record)
    runner.invoke(app, ["run", "--model", "dummy", "--tasks", "asr", "--output", str(tmp_path / "o")]
                  + (["--verbose"] if verbose else []))
    assert told == [expected]


@pytest.mark.slow
def test_loading_bars_hidden_by_default_and_shown_with_verbose(tmp_path, libri_root):
    from test_hf_adapters import _tiny_whisper

    folder = tmp_path / "whisper"
    folder.mkdir()
    _tiny_whisper(folder)
    args = ["run", "--model", "hf-whisper", "--model-args", f"path={folder},max_new_tokens=2", "--tasks",
            "asr:librispeech-test-clean", "--data-root", str(libri_root), "--limit", "1", "--no-progress",
            "--no-cache"]
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "", "HF_HUB_DISABLE_PROGRESS_BARS": ""}
    env = {k: v for k, v in env.items() if v}
    clean = {k: v for k, v in os.environ.items() if k not in ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS")}
    quiet = subprocess.run([sys.executable, "-m", "most_eval", *args, "--output", str(tmp_path / "q")],
                           capture_output=True, text=True, env={**clean, **env, "COLUMNS": "200"}, timeout=300)
    loud = subprocess.run([sys.executable, "-m", "most_eval", *args, "--output", str(tmp_path / "v"), "--verbose"],
                          capture_output=True, text=True, env={**clean, **env, "COLUMNS": "200"}, timeout=300)
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr + loud.stderr
    assert "Loading weights" in loud.stderr
    assert "Loading weights" not in quiet.stderr


def test_a_broken_command_plugin_never_takes_the_other_commands_down(tmp_path):
    """A package in the ``most_eval.commands`` entry-point group whose module fails to import is listed, and running
    it says why in one line (exit 2); one that names a built-in command is left out with a warning."""
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[most_eval.commands]\nbroken = no_such_plugin_module:command\n"
                                           "run = no_such_plugin_module:run\n")
    env = {"PYTHONPATH": str(tmp_path)}
    listing = run_cli("--help", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "broken" in listing.stdout and "unavailable" in listing.stdout
    assert "names the built-in command 'run'; left out" in listing.stderr
    proc = run_cli("broken", env=env)
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: command plugin no_such_plugin_module:command could not be loaded: "
                               "ModuleNotFoundError")
    assert run_cli("run", "--help", env=env).returncode == 0  # the built-in command is the one that runs
