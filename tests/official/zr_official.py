"""Prepare (at install time) and call the environment that runs the official ZeroSpeech sLM21 scorer next to ours.

The official scorer (``zerospeech-benchmarks``) needs pandas < 3 and cannot be pip-installed here (0.9.4 declares a
direct-URL dependency; importing the package contacts its server). So ``bash install.sh --test`` runs
``python tests/official/zr_official.py --build``, which

1. ``pip download --no-deps zerospeech-benchmarks==0.9`` (an sdist) and unpacks it;
2. creates a small venv with ``pandas<3`` and ``numpy`` only;
3. writes ``ready.json``;

and the tests run ``run_official_zr.py`` in that venv, which imports the official scoring modules from the unpacked
sdist. The tests never build or download anything: :func:`ensure_env` only checks the prepared environment.

Everything lives under ``$MOST_EVAL_ZR_OFFICIAL_DIR`` (default ``~/.cache/most-eval/zr-official``).
Missing environment: an error (test failure) under CI (``CI=1``/``true``, set by ``.ci/run``) or with
``MOST_EVAL_ZR_OFFICIAL=1``; otherwise a skip naming ``install.sh --test``. ``MOST_EVAL_ZR_OFFICIAL=0`` disables the
official path.

    python tests/official/zr_official.py --build   # prepare the environment (install.sh --test does this)
    python tests/official/zr_official.py           # check it and print where it is
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import venv
from dataclasses import dataclass
from pathlib import Path

SDIST = "zerospeech-benchmarks==0.9"
SDIST_DIR_NAME = "zerospeech-benchmarks-0.9"
VENV_REQUIREMENTS = ("pandas<3", "numpy")
RUNNER = Path(__file__).with_name("run_official_zr.py")


class OfficialUnavailable(RuntimeError):
    """The official scorer cannot be run here; the message says why."""


@dataclass(frozen=True)
class OfficialEnv:
    python: Path  # the venv's interpreter
    sdist_root: Path  # unpacked sdist (holds zerospeech/benchmarks/...)
    pandas_version: str


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "most-eval" / "zr-official"
    return Path(os.environ.get("MOST_EVAL_ZR_OFFICIAL_DIR", default))


TRUTHY = ("1", "true", "yes")
NOT_PREPARED = "not prepared: run `bash install.sh --test` (or `python tests/official/zr_official.py --build`)"


def mode() -> str:
    """'off', 'require' or 'auto' from MOST_EVAL_ZR_OFFICIAL; unset, it is 'require' under CI (CI=1 or true)."""
    value = os.environ.get("MOST_EVAL_ZR_OFFICIAL", "").strip().lower()
    modes = {"0": "off", "false": "off", "no": "off", "1": "require", "true": "require", "yes": "require"}
    if value in modes:
        return modes[value]
    return "require" if os.environ.get("CI", "").strip().lower() in TRUTHY else "auto"


def _run(cmd: list[str], timeout: int) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise OfficialUnavailable(f"{' '.join(cmd[:4])} ...: {error}") from None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _python(root: Path) -> Path:
    return root / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _probe(python: Path) -> subprocess.CompletedProcess:
    return _run([str(python), "-c", "import pandas, numpy; print(pandas.__version__)"], timeout=120)


def ensure_env(root: Path | None = None) -> OfficialEnv:
    """The prepared official-scorer environment; OfficialUnavailable with the reason when it is not there or broken.
    Builds nothing and downloads nothing (that is :func:`build_env`, run by ``install.sh --test``)."""
    if mode() == "off":
        raise OfficialUnavailable("disabled by MOST_EVAL_ZR_OFFICIAL=0")
    try:
        return _check_env(Path(root or cache_dir()))
    except OfficialUnavailable as error:
        if mode() == "require" and not os.environ.get("MOST_EVAL_ZR_OFFICIAL", "").strip():
            raise OfficialUnavailable(f"{error} (required under CI={os.environ.get('CI')})") from None
        raise


def _check_env(root: Path) -> OfficialEnv:
    sdist_root, python = root / SDIST_DIR_NAME, _python(root)
    if not (root / "ready.json").is_file():
        raise OfficialUnavailable(f"{root}: {NOT_PREPARED}")
    if not (sdist_root / "zerospeech" / "benchmarks" / "tasks" / "lm" / "lexical.py").is_file():
        raise OfficialUnavailable(f"{sdist_root}: the unpacked {SDIST} sdist is incomplete; {NOT_PREPARED}")
    if not python.exists():
        raise OfficialUnavailable(f"{python} is missing; {NOT_PREPARED}")
    probe = _probe(python)
    if probe.returncode != 0 or probe.stdout.strip().startswith("3."):
        raise OfficialUnavailable(f"{python}: pandas<3 does not import ({_last_line(probe.stderr or probe.stdout)}); "
                                  f"{NOT_PREPARED}")
    return OfficialEnv(python=python, sdist_root=sdist_root, pandas_version=probe.stdout.strip())


def build_env(root: Path | None = None) -> OfficialEnv:
    """Prepares the environment (downloads the sdist, builds the venv); reuses what is already there."""
    try:
        return _build_env(Path(root or cache_dir()))
    except OSError as error:
        raise OfficialUnavailable(f"{error}") from None


def _build_env(root: Path) -> OfficialEnv:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ready.json").unlink(missing_ok=True)
    sdist_root = root / SDIST_DIR_NAME
    if not (sdist_root / "zerospeech" / "benchmarks" / "tasks" / "lm" / "lexical.py").is_file():
        download = root / "download"
        result = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "zerospeech-benchmarks",
                       SDIST, "-d", str(download)], timeout=600)
        archives = sorted(download.glob(f"{SDIST_DIR_NAME}.tar.gz"))
        if result.returncode != 0 or not archives:
            raise OfficialUnavailable(f"pip download {SDIST} failed: {_last_line(result.stderr or result.stdout)}")
        with tarfile.open(archives[0]) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(root, filter="data")
            else:  # Python without extraction filters (< 3.10.12 / 3.11.4)
                archive.extractall(root)
    python = _python(root)
    if not python.exists():
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(root / "venv")
        except Exception as error:  # noqa: BLE001 - any failure means "unavailable", with its reason
            raise OfficialUnavailable(f"cannot create venv: {error}") from None
    probe = _probe(python)
    if probe.returncode != 0 or probe.stdout.strip().startswith("3."):
        result = _run([str(python), "-m", "pip", "install", "-q", *VENV_REQUIREMENTS], timeout=900)
        if result.returncode != 0:
            raise OfficialUnavailable(f"pip install {' '.join(VENV_REQUIREMENTS)} failed: "
                                      f"{_last_line(result.stderr or result.stdout)}")
        probe = _probe(python)
        if probe.returncode != 0:
            raise OfficialUnavailable(f"venv pandas import failed: {_last_line(probe.stderr)}")
    (root / "ready.json").write_text(json.dumps({"sdist": SDIST, "pandas": probe.stdout.strip()}) + "\n")
    return _check_env(root)


def run_official(env: OfficialEnv, kind: str, dev: tuple[Path, Path], test: tuple[Path, Path] | None = None,
                 repeat: int = 0, timeout: int = 600) -> dict:
    """The official scorer's output for (gold, submission) pairs: score CSVs as records + leaderboard numbers."""
    cmd = [str(env.python), str(RUNNER), "--sdist-root", str(env.sdist_root), "--kind", kind,
           "--dev", str(dev[0]), str(dev[1])]
    if test is not None:
        cmd += ["--test", str(test[0]), str(test[1])]
    if repeat:
        cmd += ["--repeat", str(repeat)]
    result = _run(cmd, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"official scorer failed (rc {result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


if __name__ == "__main__":
    try:
        env = build_env() if sys.argv[1:] == ["--build"] else ensure_env()
    except OfficialUnavailable as error:
        print(f"official ZeroSpeech scorer unavailable: {error}")
        sys.exit(1)
    print(f"python: {env.python}\nsdist: {env.sdist_root}\npandas: {env.pandas_version}")
