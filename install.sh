#!/usr/bin/env bash
# Set up most-eval on a fresh Debian/Ubuntu machine (CPU route), offline-friendly. Idempotent.
#   bash install.sh          # the package and what it needs at run time
#   bash install.sh --test   # also the test extras (pytest) and chromium for the leaderboard page test
# Route: torch 2.13.0 (CPU wheel where one is on local disk; pinned first, since an unpinned torch or installing
# speechbrain first pulls a multi-GB CUDA build), torchaudio 2.11.0 for speechbrain's imports with its CUDA-only
# compiled libraries moved aside (its pure-Python parts work on CPU; most-eval itself never uses torchaudio).
# Override with TORCH_SPEC / TORCHAUDIO_SPEC (e.g. TORCH_SPEC=torch==2.9.1 TORCHAUDIO_SPEC=torchaudio==2.9.1).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
TEST=0; [ "${1:-}" = "--test" ] && TEST=1

apt_pkgs=()
command -v espeak-ng >/dev/null || apt_pkgs+=(espeak-ng)
[ -e /usr/lib/x86_64-linux-gnu/libsndfile.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/libsndfile.so.1 ] || apt_pkgs+=(libsndfile1)
if [ "$TEST" = 1 ]; then command -v chromium >/dev/null || apt_pkgs+=(chromium); fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
  else
    echo "install.sh: please install: sudo apt-get install ${apt_pkgs[*]}" >&2; exit 1
  fi
fi

pip() { "$PY" -m pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v "Running pip as the 'root' user" || true; }
pip "${TORCH_SPEC:-torch==2.13.0}"
pip --no-deps "${TORCHAUDIO_SPEC:-torchaudio==2.11.0}"
if [ "$TEST" = 1 ]; then pip -e '.[test]'; else pip -e .; fi

# torchaudio 2.11 is a CUDA build: on a CPU machine its compiled libraries fail to load; move them aside.
if ! "$PY" -c "import torchaudio" >/dev/null 2>&1; then
  lib=$("$PY" -c "import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec('torchaudio').origin), 'lib'))")
  mkdir -p "$lib/cuda-only"
  mv "$lib"/*.so "$lib/cuda-only/" 2>/dev/null || true
  "$PY" -c "import torchaudio" || { echo "install.sh: torchaudio still fails to import" >&2; exit 1; }
fi
"$PY" -c "import most_eval, most_eval_tasks, most_reference, speechbrain.inference.speaker" >/dev/null
echo "most-eval installed ($("$PY" -m pip show most-eval 2>/dev/null | grep ^Version))"
