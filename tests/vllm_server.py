"""Real vLLM OpenAI servers for the served tests: ``vllm serve`` from vLLM's own venv (``install.sh --serve``, default
``.venv-vllm``, or ``$MOST_EVAL_VLLM_VENV``) on 127.0.0.1, one process group per model, stopped by that group.

Where the venv is absent the served tests skip, except in CI (``CI=true``), where they fail: CI installs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 300  # vLLM takes 30-40 s per server here with --enforce-eager; several start at once


def vllm_venv() -> Path:
    """vLLM's venv: ``$MOST_EVAL_VLLM_VENV``, else ``$VLLM_VENV`` (what install_vllm.sh built), else .venv-vllm."""
    given = os.environ.get("MOST_EVAL_VLLM_VENV") or os.environ.get("VLLM_VENV")
    return Path(given) if given else REPO / ".venv-vllm"


def require_vllm() -> Path:
    """The ``vllm`` executable; skips (fails in CI) when vLLM's venv is absent."""
    exe = vllm_venv() / "bin" / "vllm"
    if not exe.exists():
        message = f"vLLM's venv is absent ({exe}): bash install.sh --serve"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class VLLMServer:
    """One ``vllm serve`` process serving ``folder`` as ``name`` on 127.0.0.1."""

    folder: Path
    name: str
    max_model_len: int
    log: Path
    extra: tuple[str, ...] = ()
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, exe: Path) -> "VLLMServer":
        self.port = free_port()
        env = {**os.environ, "VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1",
               "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
        cmd = [str(exe), "serve", str(self.folder), "--served-model-name", self.name, "--host", "127.0.0.1",
               "--port", str(self.port), "--dtype", "float32", "--max-num-seqs", "4",
               "--max-model-len", str(self.max_model_len), "--enforce-eager", *self.extra]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)  # its own process group, stopped as one
        return self

    def wait(self, deadline: float) -> None:
        """Until ``GET /v1/models`` lists the model; fails with the log's tail if the process dies or time runs out."""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"vllm serve {self.name} exited {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/models", timeout=5) as resp:
                    if any(m.get("id") == self.name for m in json.load(resp).get("data", [])):
                        return
            except OSError:
                pass
            time.sleep(1.0)
        pytest.fail(f"vllm serve {self.name} not up after {START_TIMEOUT_S} s:\n{self.tail()}")

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:]) if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@contextmanager
def serving(servers: list[VLLMServer], exe: Path):
    """Start every server at once, wait until all are up (one deadline), stop them all on the way out."""
    try:
        for server in servers:
            server.start(exe)
        deadline = time.monotonic() + START_TIMEOUT_S
        for server in servers:
            server.wait(deadline)
        yield servers
    finally:
        for server in servers:
            server.stop()
