#!/usr/bin/env bash
# Every GPU figure the README records, in one command for a short lease on one H100/H200:
# decode latency of the five 1B shapes (jax 107 s, then torch 136 s on an H100), then training
# throughput/MFU at batch 32 and 64. Each part has its own time limit, so one that hangs or
# fails leaves the others' figures; each part's output is kept in LOG_DIR.
#
#   bash benchmarks/gpu_checks.sh [LOG_DIR] [REFERENCE_CSV]    # H100: about 6 min; 9 at most
#   TINY=1 bash benchmarks/gpu_checks.sh /tmp/logs             # the same steps on the CPU, tiny
set -uo pipefail
cd "$(dirname "$0")/.."
LOG_DIR="${1:-gpu_logs}"
REFERENCE="${2:-../shared/data/h200_decode_latency_1b.csv}"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONUNBUFFERED=1
mkdir -p "$LOG_DIR"

if [ -n "${TINY:-}" ]; then
    latency_size=(--tiny) train=("$PYTHON" benchmarks/train_throughput.py --tiny)
else
    latency_size=() train=(bash benchmarks/gpu_train.sh)
fi

part() {  # part NAME SECONDS COMMAND...: run with a time limit, log to LOG_DIR/NAME.txt
    local name=$1 seconds=$2
    shift 2
    echo "== $name (limit ${seconds} s): $*"
    timeout "$seconds" "$@" 2>&1 | tee "$LOG_DIR/$name.txt"
    echo "== $name: exit ${PIPESTATUS[0]}"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
"$PYTHON" -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"

part latency_jax 150 "$PYTHON" benchmarks/gpu_latency.py "${latency_size[@]}" --quiet --backends jax \
    --reference "$REFERENCE" -o "$LOG_DIR/latency_jax.csv"
part latency_torch 200 "$PYTHON" benchmarks/gpu_latency.py "${latency_size[@]}" --quiet --backends torch \
    --reference "$REFERENCE" -o "$LOG_DIR/latency_torch.csv"
part train_b32 100 "${train[@]}" --batch-size 32
part train_b64 100 "${train[@]}" --batch-size 64
