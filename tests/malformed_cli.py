"""Running the CLI for the malformed-input corpus (tests/test_malformed_corpus.py): the ``most-eval run`` command
line, CLI runs in their own processes or in-process, and the torch group (tiny MoST checkpoints broken on purpose,
bad training configs and manifests), which runs in its own memory-capped process as
``python -c "import malformed_cli as m; m._torch_group_main(...)"``. A plain module (no tests).
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

from conftest import MINI_SUITE, REPO, read_jsonl
from malformed_corpus import LIBRI


# ---------------------------------------------------------------------------------------------------------------
# Running the CLI


def _cli_args(data_root: Path, out: Path, tasks: list[str], *extra: str, model: str = "dummy") -> list[str]:
    return ["run", "--model", model, "--tasks", ",".join(tasks), "--data-root", str(data_root), "--output", str(out),
            "--no-progress", *extra]


def _start(args: list[str], log: Path) -> tuple[subprocess.Popen, Path]:
    """Start ``python -m most_eval ARGS`` with stdout/stderr in files (no pipe can fill up while others run)."""
    env = {**os.environ, "COLUMNS": "200"}
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "most_eval", *args], stdout=out, stderr=err, text=True, env=env)
    return proc, log


def _finish(started: tuple[subprocess.Popen, Path], timeout: int = 300) -> subprocess.CompletedProcess:
    proc, log = started
    proc.wait(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, log.with_suffix(".out").read_text(),
                                       log.with_suffix(".err").read_text())


def _invoke(*args: str):
    """The CLI in-process (typer's runner): for the refusals, which never reach the evaluation."""
    from typer.testing import CliRunner

    from most_eval.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _collect(proc: subprocess.CompletedProcess, out: Path) -> dict:
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    records = {}
    for task in results.get("results", {}):
        path = out / "samples" / f"{task.replace(':', '_')}.jsonl"
        if path.is_file():
            by_id: dict[str, dict] = {}
            for r in read_jsonl(path):
                by_id.setdefault(str(r["id"]), r)
            records[task] = by_id
    return {"proc": proc, "out": out, "results": results.get("results", {}), "records": records}


# ---------------------------------------------------------------------------------------------------------------
# The torch group: runs in its own memory-capped process (python -c ... _torch_group_main)


def _limit_memory():  # the torch group builds models: never let a bad checkpoint take the machine's memory
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


class _Payload:
    """A pickle that creates a file when unpickled: proof that nothing unpickled it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def _torch_group_main(workdir: str, earlier: str) -> None:
    """Build tiny MoST checkpoints, break them, run `most-eval run --model most` on each; load bad training YAMLs.
    Writes ``answers.json`` in ``workdir``: per entry id, the exit code and stderr (or the raised message)."""
    import torch
    from typer.testing import CliRunner

    from most_eval.cli import app
    from most_reference.model import MoSTConfig, MoSTForCausalLM

    work = Path(workdir)
    marker = work / "pwned"
    answers: dict = {}
    config = json.loads((REPO / "reference_impl" / "configs" / "most_tiny.json").read_text())
    torch.manual_seed(0)
    lm = MoSTForCausalLM(MoSTConfig.from_dict(config)).eval()

    def checkpoint(name: str, **save) -> Path:
        folder = work / name
        lm.save_pretrained(folder, **save)
        (folder / "most.json").write_text(json.dumps({"stage": "stage2"}))
        return folder

    folders = {"checkpoint-missing-dir": work / "no-such-checkpoint"}
    folders["checkpoint-no-most-json"] = checkpoint("no_most_json")
    (folders["checkpoint-no-most-json"] / "most.json").unlink()
    folders["checkpoint-most-json-invalid"] = checkpoint("most_json_invalid")
    (folders["checkpoint-most-json-invalid"] / "most.json").write_text("{stage: stage2")
    folders["checkpoint-pickle-as-safetensors"] = checkpoint("pickle")
    (folders["checkpoint-pickle-as-safetensors"] / "model.safetensors").write_bytes(
        pickle.dumps(_Payload(str(marker))))
    folders["checkpoint-torch-save-as-safetensors"] = checkpoint("torch_save")
    torch.save(_Payload(str(marker)), folders["checkpoint-torch-save-as-safetensors"] / "model.safetensors")
    folders["checkpoint-truncated-safetensors"] = checkpoint("truncated")
    weights = folders["checkpoint-truncated-safetensors"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    folders["checkpoint-index-names-missing-shard"] = checkpoint("sharded", max_shard_size="100KB")
    index = json.loads((folders["checkpoint-index-names-missing-shard"] / "model.safetensors.index.json").read_text())
    assert "model-00002-of-00010.safetensors" in index["weight_map"].values()
    (folders["checkpoint-index-names-missing-shard"] / "model-00002-of-00010.safetensors").unlink()
    folders["checkpoint-no-config-json"] = checkpoint("no_config")
    (folders["checkpoint-no-config-json"] / "config.json").unlink()

    runner = CliRunner()
    for key, folder in folders.items():
        res = runner.invoke(app, _cli_args(MINI_SUITE, Path(earlier), [LIBRI], "--model-args",
                                           f"checkpoint={folder},dtype=float32", model="most"))
        answers[key] = {"exit_code": res.exit_code, "stderr": res.stderr, "stdout": res.stdout[-2000:]}

    yamls = {
        "config-train-yaml-python-tag": ("python_tag.yaml",
                                         f"seed: !!python/object/apply:builtins.open ['{marker}', 'w']\n"),
        "config-train-yaml-unknown-key": ("unknown_key.yaml", "seed: 0\ntrainig: {steps: 3}\n"),
        "config-train-yaml-syntax-error": ("syntax_error.yaml", "seed: 0\nmodel: {config: [most_tiny.json\n"),
        "config-train-yaml-not-a-mapping": ("list.yaml", "- seed\n- 0\n"),
    }
    try:
        from most_reference.train_config import load_config
    except Exception as exc:  # the recipe module is missing or broken: say so in every answer
        for key in yamls:
            answers[key] = {"raised": None, "message": f"cannot import most_reference.train.load_config: {exc!r}"}
    else:
        for key, (name, text) in yamls.items():
            path = work / name
            path.write_text(text)
            try:
                load_config(path)
                answers[key] = {"raised": None, "message": "accepted"}
            except Exception as exc:
                answers[key] = {"raised": type(exc).__name__, "message": str(exc)}
    answers.update(_train_manifest_answers(work / "train_manifests"))
    answers["marker"] = marker.exists()
    (work / "answers.json").write_text(json.dumps(answers))


def _train_manifest_answers(work: Path) -> dict:
    """Training manifests that are no regular file (FIFO, directory) or a symlink out of their layout: each call of
    the training data pipeline must raise one line naming the file, never block or read outside."""
    from most_reference import manifests as M

    work.mkdir()
    for name in ("speech_fifo.jsonl", "text_fifo.txt", "instructions_fifo.jsonl"):
        os.mkfifo(work / name)
    (work / "cuts.jsonl.gz").mkdir()
    seed = work / "seedtts_testset" / "en"
    seed.mkdir(parents=True)
    (work / "secret-meta.lst").write_text("utt|secret text|prompt-wavs/x.wav|secret\n")
    (seed / "meta.lst").symlink_to(work / "secret-meta.lst")
    calls = {
        "hostile-train-speech-jsonl-fifo": lambda: M.speech_manifest([{"format": "jsonl",
                                                                       "path": work / "speech_fifo.jsonl"}]),
        "hostile-train-libriheavy-directory": lambda: M.speech_manifest([{"format": "libriheavy",
                                                                          "path": work / "cuts.jsonl.gz"}]),
        "hostile-train-text-fifo": lambda: M.text_corpus([{"format": "txt", "path": work / "text_fifo.txt"}], []),
        "hostile-train-instructions-fifo": lambda: M.instructions([{"format": "jsonl",
                                                                    "path": work / "instructions_fifo.jsonl"}]),
        "hostile-train-seedtts-meta-symlink-out": lambda: M.speech_manifest([{"format": "seedtts", "path": seed}]),
    }
    answers = {}
    for key, call in calls.items():
        try:
            answers[key] = {"raised": None, "message": f"accepted: {call()!r}"[:300]}
        except Exception as exc:
            answers[key] = {"raised": type(exc).__name__, "message": str(exc)}
    return answers
