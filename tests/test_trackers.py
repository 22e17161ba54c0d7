"""``run --tracker mlflow --tracker wandb``: the run's metrics, params and files logged to a real MLflow file store
(read back with MLflow's own client) and a real W&B offline run (read back from its run file with W&B's own
protobuf records), with no network."""

from __future__ import annotations

import json
import struct

import pytest
from conftest import run_cli

pytestmark = pytest.mark.slow


def wandb_records(path):
    """The protobuf records of a W&B run file (``run-<id>.wandb``): W&B's own ``Record`` messages, framed as
    LevelDB log blocks (32 KiB blocks; a 7-byte chunk header of crc32c, length, type; full / first / middle / last
    chunks) after the file's 7-byte header."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, pending, out = path.read_bytes(), 7, 32768, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # the block's tail is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def test_a_run_logs_to_mlflow_and_wandb_offline(tmp_path, monkeypatch):
    out = tmp_path / "run"
    env = {"MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true",
           "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}
    proc = run_cli("run", "--model", "most", "--tasks", "asr:librispeech-test-clean,slm:swuggy-dev", "--output",
                   str(out), "--no-progress", "--report", "--tracker", "mlflow", "--tracker", "wandb",
                   "--tracker-args", "project=mini,tags=ci+tiny", env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    wer = results["results"]["asr:librispeech-test-clean"]["wer"]
    accuracy = results["results"]["slm:swuggy-dev"]["accuracy"]

    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads its file store only with this
    client = mlflow.tracking.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    (experiment,) = [e for e in client.search_experiments() if e.name == "mini"]
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == "run (most)" and {"ci", "tiny"} <= set(logged.data.tags)
    assert logged.data.metrics["asr:librispeech-test-clean/wer"] == wer
    assert logged.data.metrics["slm:swuggy-dev/accuracy"] == accuracy
    assert logged.data.params["model"] == "most" and logged.data.params["command"] == results["command"]
    files = {f.path for f in client.list_artifacts(logged.info.run_id)}
    files |= {f.path for f in client.list_artifacts(logged.info.run_id, "samples")}
    assert {"results.json", "report.html", "samples/asr_librispeech-test-clean.jsonl"} <= files
    assert f"mlflow: run {logged.info.run_id} in experiment 'mini'" in proc.stderr

    (folder,) = (tmp_path / "wandb").glob("offline-run-*")
    records = wandb_records(next(folder.glob("run-*.wandb")))
    summary = {u.key or "/".join(u.nested_key): json.loads(u.value_json)
               for r in records if r.WhichOneof("record_type") == "summary" for u in r.summary.update}
    assert summary["asr:librispeech-test-clean/wer"] == wer and summary["slm:swuggy-dev/accuracy"] == accuracy
    (run_record,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run_record.project == "mini" and run_record.display_name == "run (most)"
    assert set(run_record.tags) == {"ci", "tiny"}
    config = {u.key: json.loads(u.value_json) for u in run_record.config.update}
    model = config["model"]  # W&B keeps config values as {"value": ...}
    assert (model.get("value") if isinstance(model, dict) else model) == "most"
    assert {"results.json", "report.html"} <= {p.name for p in (folder / "files").rglob("*")}


def test_a_tracker_that_cannot_be_used_is_refused_before_the_model_loads(tmp_path):
    bad = run_cli("run", "--model", "most", "--tasks", "asr", "--tracker", "neptune", "--output", str(tmp_path / "x"))
    assert bad.returncode == 2 and "--tracker neptune: unknown tracker (known: mlflow, wandb)" in bad.stderr
    alone = run_cli("run", "--model", "most", "--tasks", "asr", "--tracker-args", "project=x", "--output",
                    str(tmp_path / "y"))
    assert alone.returncode == 2 and "--tracker-args given without --tracker" in alone.stderr
    typo = run_cli("run", "--model", "most", "--tasks", "asr", "--tracker", "mlflow", "--tracker-args", "projekt=x",
                   "--output", str(tmp_path / "z"))
    assert typo.returncode == 2 and "projekt" in typo.stderr
    assert not any((tmp_path / n).exists() for n in "xyz")


def test_a_tracker_that_fails_after_the_run_is_one_line_and_exit_1(tmp_path):
    """The results stand; the tracker's own failure (here an MLflow store inside a file) is one line, exit 1."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = tmp_path / "run"
    proc = run_cli("run", "--model", "most", "--tasks", "asr:librispeech-test-clean", "--output", str(out),
                   "--no-progress", "--tracker", "mlflow",
                   env={"MLFLOW_TRACKING_URI": (blocker / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true"})
    assert proc.returncode == 1 and (out / "results.json").is_file()
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith("error: tracker: ") and "Traceback" not in proc.stderr


def test_metric_names_mlflow_refuses_are_made_acceptable():
    """lm-eval's filtered metrics (``exact_match,strict-match``) carry a comma, which MLflow refuses."""
    from mlflow.utils.validation import _validate_metric_name

    from most_eval.report.trackers import mlflow_name

    name = mlflow_name("text:gsm8k/exact_match,strict-match")
    assert name == "text:gsm8k/exact_match_strict-match"
    _validate_metric_name(name)  # MLflow's own check: raises on a name it would refuse
    assert mlflow_name("asr:librispeech-test-clean/wer") == "asr:librispeech-test-clean/wer"
