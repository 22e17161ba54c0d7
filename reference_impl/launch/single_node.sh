#!/usr/bin/env bash
# MoST training on one node, all its GPUs (accelerate launch; DeepSpeed ZeRO-2 unless told otherwise).
#
#   bash reference_impl/launch/single_node.sh CONFIG OUTPUT [recipe args...]
#   e.g. bash reference_impl/launch/single_node.sh reference_impl/configs/train_stage1.yaml /runs/most-stage1
#        ACCELERATE_CONFIG=reference_impl/configs/accelerate_fsdp.yaml bash reference_impl/launch/single_node.sh ...
#
# Environment:
#   ACCELERATE_CONFIG  accelerate config file (default configs/accelerate_deepspeed_zero2.yaml; also
#                      accelerate_deepspeed_zero3.yaml, accelerate_fsdp.yaml)
#   NUM_GPUS           processes to start (default: the GPUs nvidia-smi lists)
#   LAUNCHER=torchrun  plain DDP through torchrun instead (no FSDP / DeepSpeed; what the CPU tests use)
# Recipe args after OUTPUT go to `python -m most_reference.train`: --max-steps N, --set KEY=VALUE.
# Re-running the same command resumes from OUTPUT/checkpoints (checkpointing.resume: auto).
set -euo pipefail
if [ $# -lt 2 ]; then sed -n '2,15p' "$0"; exit 2; fi
cd "$(dirname "$0")/../.."
CONFIG=$1; OUTPUT=$2; shift 2
ACCELERATE_CONFIG=${ACCELERATE_CONFIG:-reference_impl/configs/accelerate_deepspeed_zero2.yaml}
NUM_GPUS=${NUM_GPUS:-$(nvidia-smi -L 2>/dev/null | wc -l)}
if [ "$NUM_GPUS" -lt 1 ]; then echo "single_node.sh: no GPU found (set NUM_GPUS)" >&2; exit 2; fi

if [ "${LAUNCHER:-accelerate}" = torchrun ]; then
  exec torchrun --standalone --nproc-per-node "$NUM_GPUS" \
    -m most_reference.train --config "$CONFIG" --output "$OUTPUT" "$@"
fi
exec accelerate launch --config_file "$ACCELERATE_CONFIG" --num_machines 1 --num_processes "$NUM_GPUS" \
  -m most_reference.train --config "$CONFIG" --output "$OUTPUT" "$@"
