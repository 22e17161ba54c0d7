#!/usr/bin/env bash
# MoST training on several nodes: run this same command on every node (e.g. one srun task per node).
#
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 bash reference_impl/launch/multi_node.sh CONFIG OUTPUT [recipe args...]
#
# Rendezvous (the same on every node except NODE_RANK):
#   NNODES         number of nodes                          (SLURM: $SLURM_NNODES, the default)
#   NODE_RANK      this node's index, 0 .. NNODES-1         (SLURM: $SLURM_NODEID, the default)
#   MASTER_ADDR    host name / IP of node 0, reachable from all nodes
#                  (SLURM default: the first host of $SLURM_JOB_NODELIST)
#   MASTER_PORT    a free TCP port on node 0 (default 29500)
#   GPUS_PER_NODE  processes per node (default: the GPUs nvidia-smi lists)
#   ACCELERATE_CONFIG  as in single_node.sh (num_machines / num_processes / machine_rank in it are overridden here)
#   LAUNCHER=torchrun  DDP via torchrun's c10d rendezvous instead: --rdzv-backend c10d
#                  --rdzv-endpoint MASTER_ADDR:MASTER_PORT --rdzv-id RDZV_ID (default: $SLURM_JOB_ID or "most");
#                  elastic, so NODE_RANK is not needed there
# OUTPUT must be a shared filesystem path: rank 0 writes logs, checkpoints and the export; every rank reads the
# checkpoint on resume. Global batch: the recipe's training.global_batch for any NNODES x GPUS_PER_NODE.
set -euo pipefail
if [ $# -lt 2 ]; then sed -n '2,21p' "$0"; exit 2; fi
cd "$(dirname "$0")/../.."
CONFIG=$1; OUTPUT=$2; shift 2
NNODES=${NNODES:-${SLURM_NNODES:-1}}
NODE_RANK=${NODE_RANK:-${SLURM_NODEID:-0}}
if [ -z "${MASTER_ADDR:-}" ] && [ -n "${SLURM_JOB_NODELIST:-}" ]; then
  MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
fi
: "${MASTER_ADDR:?set MASTER_ADDR to the address of node 0}"
MASTER_PORT=${MASTER_PORT:-29500}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(nvidia-smi -L 2>/dev/null | wc -l)}
ACCELERATE_CONFIG=${ACCELERATE_CONFIG:-reference_impl/configs/accelerate_deepspeed_zero2.yaml}

if [ "${LAUNCHER:-accelerate}" = torchrun ]; then
  exec torchrun --nnodes "$NNODES" --nproc-per-node "$GPUS_PER_NODE" \
    --rdzv-backend c10d --rdzv-endpoint "$MASTER_ADDR:$MASTER_PORT" --rdzv-id "${RDZV_ID:-${SLURM_JOB_ID:-most}}" \
    -m most_reference.train --config "$CONFIG" --output "$OUTPUT" "$@"
fi
exec accelerate launch --config_file "$ACCELERATE_CONFIG" \
  --num_machines "$NNODES" --num_processes $((NNODES * GPUS_PER_NODE)) --machine_rank "$NODE_RANK" \
  --main_process_ip "$MASTER_ADDR" --main_process_port "$MASTER_PORT" --same_network \
  -m most_reference.train --config "$CONFIG" --output "$OUTPUT" "$@"
