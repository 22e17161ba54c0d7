#!/usr/bin/env bash
# Set up most-eval in a project virtual environment on a fresh Debian/Ubuntu machine (CPU; --gpu on a GPU machine).
#   bash install.sh          # .venv/ with the package and what it needs at run time
#   bash install.sh --serve  # also vLLM in a venv of its own (.venv-vllm, scripts/install_vllm.sh), to serve models
#                            # that --model openai-api evaluates
#   bash install.sh --test   # also the test extras (pytest; mlflow and wandb for --tracker), chromium for the
#                            # leaderboard page test, the official ZeroSpeech scorer's environment
#                            # (tests/official/zr_official.py --build: the
#                            # zerospeech-benchmarks sdist + a pandas<3 venv under ~/.cache/most-eval/zr-official, or
#                            # $MOST_EVAL_ZR_OFFICIAL_DIR) and --serve's vLLM for the served tests; the tests
#                            # themselves never download anything
# Then run `.venv/bin/most-eval ...` (or `source .venv/bin/activate` first). A venv, because Debian's and Ubuntu's
# system Python refuses pip (EXTERNALLY-MANAGED). Every step that fails stops the script with its own message.
# Environment: PYTHON (interpreter that makes the venv, default python3), VENV (default .venv), INSTALLER (pip or uv),
# TORCH_SPEC / TORCHAUDIO_SPEC (e.g. TORCH_SPEC=torch==2.9.1 TORCHAUDIO_SPEC=torchaudio==2.9.1), TORCH_INDEX_URL
# (the index torch alone comes from, e.g. https://download.pytorch.org/whl/cu128 or .../whl/cpu).
# GPU route: `bash install.sh --gpu` — on Linux x86_64 the pinned PyPI torch is already a CUDA build (its CUDA
# libraries come as nvidia-* wheels); --gpu stops unless torch sees a GPU afterwards (a local +cpu wheel wins over
# the PyPI build where pip is configured to find one: then set TORCH_INDEX_URL to a CUDA index).
# Route: torch 2.13.0 first and pinned (an unpinned torch, or speechbrain installed first, pulls a multi-GB CUDA
# build; a CPU wheel on local disk is used where pip is configured to find one), then torchaudio 2.11.0 without deps
# for speechbrain's imports, its CUDA-only compiled libraries moved aside (most-eval itself never uses torchaudio).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
INSTALLER=${INSTALLER:-pip}
TEST=0; GPU=0; SERVE=0
for arg in "$@"; do
  case "$arg" in
    --test) TEST=1; SERVE=1 ;;
    --gpu) GPU=1 ;;
    --serve) SERVE=1 ;;
    *) echo "install.sh: unknown option $arg (use --test, --serve, --gpu)" >&2; exit 2 ;;
  esac
done
say() { echo "install.sh: $*" >&2; }

apt_pkgs=()
command -v espeak-ng >/dev/null || apt_pkgs+=(espeak-ng)
[ -e /usr/lib/x86_64-linux-gnu/libsndfile.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/libsndfile.so.1 ] || apt_pkgs+=(libsndfile1)
if ! "$PY" -c "import ensurepip, venv" >/dev/null 2>&1; then  # Debian ships venv support separately
  apt_pkgs+=("python3-venv" "$("$PY" -c 'import sys; print(f"python3.{sys.version_info[1]}-venv")')")
fi
if [ "$TEST" = 1 ]; then command -v chromium >/dev/null || apt_pkgs+=(chromium); fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "apt-get install ${apt_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
  else
    say "please install: sudo apt-get install ${apt_pkgs[*]}"; exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating the virtual environment $VENV with $("$PY" --version 2>&1)"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
if [ "$INSTALLER" = uv ]; then
  "$VPY" -m pip install -q --disable-pip-version-check uv
  install() { "$VENV/bin/uv" pip install -q --python "$VPY" "$@"; }
else
  install() { "$VPY" -m pip install -q --disable-pip-version-check --root-user-action=ignore "$@"; }
fi

if [ -n "${TORCH_INDEX_URL:-}" ]; then  # e.g. https://download.pytorch.org/whl/cu128: torch only, from there
  install --index-url "$TORCH_INDEX_URL" "${TORCH_SPEC:-torch==2.13.0}"
else
  install "${TORCH_SPEC:-torch==2.13.0}"
fi
if [ "$GPU" = 1 ] && ! "$VPY" -c "import torch, sys; sys.exit(0 if torch.version.cuda and torch.cuda.is_available() else 1)"; then
  say "--gpu: $("$VPY" -c "import torch; print(f'torch {torch.__version__}, CUDA build {torch.version.cuda}, GPU visible {torch.cuda.is_available()}')")"
  say "--gpu: no usable CUDA torch (a CPU wheel won, or no GPU/driver): set TORCH_INDEX_URL to a CUDA index"; exit 1
fi
install --no-deps "${TORCHAUDIO_SPEC:-torchaudio==2.11.0}"
if [ "$TEST" = 1 ]; then install -e '.[test,trackers]'; else install -e .; fi
# the tests compare whisper-normalizer with openai-whisper's own English normaliser (normalizer=openai-whisper);
# only its pure-Python normaliser files are read, so none of its dependencies (torch, numba, tiktoken) is needed
if [ "$TEST" = 1 ]; then install --no-deps "openai-whisper==20250625"; fi

# torchaudio 2.11 is a CUDA build: on a CPU machine its compiled libraries fail to load; move them aside.
if ! "$VPY" -c "import torchaudio" >/dev/null 2>&1; then
  lib=$("$VPY" -c "import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec('torchaudio').origin), 'lib'))")
  mkdir -p "$lib/cuda-only"
  find "$lib" -maxdepth 1 -name '*.so' -exec mv {} "$lib/cuda-only/" \;
  "$VPY" -c "import torchaudio" || { say "torchaudio still fails to import"; exit 1; }
fi
"$VPY" -c "import most_eval, most_eval_tasks, most_reference, speechbrain.inference.speaker" >/dev/null
if [ "$TEST" = 1 ]; then
  say "preparing the official ZeroSpeech scorer for the tests (tests/official/zr_official.py --build)"
  if ! "$VPY" tests/official/zr_official.py --build >&2; then
    say "could not prepare the official ZeroSpeech scorer (see the line above)"; exit 1
  fi
fi
if [ "$SERVE" = 1 ]; then
  if [ "$GPU" = 1 ]; then PYTHON="$PY" bash scripts/install_vllm.sh --gpu; else PYTHON="$PY" bash scripts/install_vllm.sh; fi
fi
say "most-eval $("$VPY" -m pip show most-eval 2>/dev/null | sed -n 's/^Version: //p') installed in $VENV (run $VENV/bin/most-eval)"
