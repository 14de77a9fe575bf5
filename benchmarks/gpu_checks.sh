#!/usr/bin/env bash
# Every GPU figure of issue 15 in one command, for one short lease on one H100/H200 (15 minutes of
# device time with the start-up; one command may run 10): BUDGET_S (default 540 s) in all.
#
#  1. Decode latency (benchmarks/gpu_latency.py), unless examples/latency/gpu_decode_latency.csv is
#     already committed (DECODE=1 measures again), each part with its own limit:
#     decode_jax       180 s  the fused jax path on the 12 shapes of examples/latency/gpu_shapes.toml
#                             (the five reference shapes first, written before the other seven)
#     decode_torch     120 s  eager torch on the five reference shapes
#     decode_variants   90 s  on 1024x79, in the same rounds: the fused path, unrolled, unfused
#     decode_xla_*      45 s  each: the fused paths on 1024x79 under one XLA flag set (dynamic-slice
#                             fusion; command buffers with loops)
#  2. sweep: the rest of BUDGET_S. benchmarks/gpu_sweep.py trains the runs of
#     examples/sweeps/gpu_shape.toml not in examples/data/gpu_shape_windows/, cheapest first, each
#     only if it is predicted to end in time; its table is rewritten after every run.
#
# Everything goes to OUT_DIR, 8 files at most: checks.txt (all output), decode_*.csv,
# gpu_shape_window.parquet. A part that hangs or fails leaves the others' results.
#
#   bash benchmarks/gpu_checks.sh [OUT_DIR]           # one GPU window: 9 minutes (BUDGET_S=540)
#   TINY=1 bash benchmarks/gpu_checks.sh /tmp/out     # the same steps on the CPU, tiny: 3 to 5 minutes
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-gpu_logs}"
BUDGET_S="${BUDGET_S:-540}"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR"
START=$SECONDS

TINY_FLAG=()
[ -n "${TINY:-}" ] && TINY_FLAG=(--tiny)

part() {  # part NAME SECONDS COMMAND...: run with a time limit
    local name=$1 seconds=$2
    shift 2
    echo "== $name (limit ${seconds} s, at $((SECONDS - START)) s): $*"
    timeout "$seconds" "$@"
    echo "== $name: exit $? after $((SECONDS - START)) s"
}

checks() {  # every part, in order; its output goes to the terminal and to OUT_DIR/checks.txt
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
    "$PYTHON" -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"

    if [ -n "${TINY:-}${DECODE:-}" ] || [ ! -f examples/latency/gpu_decode_latency.csv ]; then
        part decode_jax 180 "$PYTHON" benchmarks/gpu_latency.py "${TINY_FLAG[@]}" --quiet --backends jax --variants \
            -o "$OUT_DIR/decode_jax.csv"
        part decode_torch 120 "$PYTHON" benchmarks/gpu_latency.py "${TINY_FLAG[@]}" --quiet --backends torch \
            -o "$OUT_DIR/decode_torch.csv"
        part decode_variants 90 "$PYTHON" benchmarks/gpu_latency.py "${TINY_FLAG[@]}" --quiet --backends jax \
            --only 1024x79 -o "$OUT_DIR/decode_variants.csv"
        for flags in dynamic_slice_fusion command_buffers; do
            case $flags in
                dynamic_slice_fusion) xla="--xla_gpu_enable_dynamic_slice_fusion=true" ;;
                command_buffers) xla="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL --xla_gpu_graph_min_graph_size=1" ;;
            esac
            [ -n "${TINY:-}" ] && xla=""  # GPU flags: the CPU run checks the steps only
            XLA_FLAGS="$xla" part "decode_xla_$flags" 45 "$PYTHON" benchmarks/gpu_latency.py "${TINY_FLAG[@]}" --quiet \
                --backends jax --only 1024x79 --variants jax-unrolled -o "$OUT_DIR/decode_xla_$flags.csv"
        done
        echo "== decode, all shapes (the fused path; torch; the variants on 1024x79):"
        "$PYTHON" benchmarks/gpu_latency.py "${TINY_FLAG[@]}" --table "$OUT_DIR"/decode_{jax,torch,variants}.csv
    else
        echo "== decode: examples/latency/gpu_decode_latency.csv is committed; skipped (DECODE=1 measures again)"
    fi

    # the sweep: what is left of the budget for starting runs, and 40 s more before it is stopped
    LEFT=$((BUDGET_S - (SECONDS - START)))
    if [ "$LEFT" -ge 30 ]; then
        part sweep $((LEFT + 40)) "$PYTHON" benchmarks/gpu_sweep.py "${TINY_FLAG[@]}" --out "$OUT_DIR" --budget-s "$LEFT"
    else
        echo "== sweep: skipped, ${LEFT} s of BUDGET_S left"
    fi
    echo "== all parts done after $((SECONDS - START)) s; results in $OUT_DIR"
}

checks 2>&1 | tee -a "$OUT_DIR/checks.txt"
