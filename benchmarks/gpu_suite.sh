#!/usr/bin/env bash
# GPU suite: MoST MoE layer per experts kernel, a reduced-depth full-width training step (tokens/s, MFU) and batched
# `most` ASR real-time factor, measured on one GPU and written to one JSON file (benchmarks/gpu_suite.py says what
# is measured and how).
#
#   bash install.sh && bash benchmarks/gpu_suite.sh [--out gpu_suite.json]    # one GPU: <= 8 minutes (--budget-s 480)
#   bash benchmarks/gpu_suite.sh --dry-run --out /tmp/gpu_suite.json           # tiny sizes on CPU, < 60 s (CI)
#   bash benchmarks/gpu_suite.sh --help                                         # sizes, repeats, sections
#
# Arguments go to gpu_suite.py unchanged. Python: $PYTHON if set, else the project's .venv (install.sh), else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3
fi
exec "$PY" benchmarks/gpu_suite.py "$@"
