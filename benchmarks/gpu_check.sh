#!/usr/bin/env bash
# Every GPU check in one go, on a lent GPU machine (JAX with CUDA, no Keras, TensorFlow or DVC,
# no package index; ../shared/docs/gpu.md). Prepare here with benchmarks/gpu_prepare.sh, then run
# there from the repository root with .gpu/ carried:   OUT=$OUT bash benchmarks/gpu_check.sh
# It runs the stages directly (no DVC) on the prepared data and writes logs and metrics to $OUT:
#   1. the default training: the device it names, seconds of fit and of the whole process, and
#      evaluate's test accuracy (issue targets: <= 3 s of fit and <= 12 s of process on an H100,
#      test accuracy >= 0.983);
#   2. the same training again: the metrics must be identical (XLA's deterministic GPU ops);
#   3. two trainings side by side on the one GPU (each JAX process takes a bounded share);
#   4. the hand-written JAX floor (benchmarks/floor.py), for the per-epoch ratio.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/wheels/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" | tee -a "$OUT/gpu.txt"

run_dir() {  # run_dir NAME: a working directory with the prepared data and the default params
  local dir=/tmp/gpu-$1
  rm -rf "$dir" && mkdir -p "$dir/data" && ln -s "$PWD/.gpu/prepared" "$dir/data/prepared" && cp params.yaml "$dir/"
  echo "$dir"
}

train() {  # train NAME: the train stage as a whole process, timed
  local dir; dir=$(run_dir "$1")
  local started; started=$(date +%s.%N)
  (cd "$dir" && python3 -m stages.train > "$OUT/train-$1.log" 2>&1)
  local status=$?
  local seconds; seconds=$(python3 -c "print(round($(date +%s.%N) - $started, 1))")
  echo "$1: exit $status, whole process $seconds s" | tee -a "$OUT/summary.txt"
  grep -h "^train:" "$OUT/train-$1.log" | tee -a "$OUT/summary.txt"
  cp "$dir/metrics/train.json" "$OUT/train-$1.json" 2>/dev/null; cp "$dir/metrics/history.csv" "$OUT/history-$1.csv" 2>/dev/null
}

train first
(cd /tmp/gpu-first && python3 -m stages.evaluate > "$OUT/evaluate-first.log" 2>&1; cp metrics/metrics.json "$OUT/metrics-first.json")
tail -1 "$OUT/evaluate-first.log" | tee -a "$OUT/summary.txt"
train second
cmp -s "$OUT/history-first.csv" "$OUT/history-second.csv" && echo "repeatable: identical history" | tee -a "$OUT/summary.txt" \
  || echo "NOT repeatable: histories differ" | tee -a "$OUT/summary.txt"
train side-a & train side-b & wait
nvidia-smi --query-gpu=memory.used,memory.total --format=csv | tee -a "$OUT/summary.txt"
for epochs in 6 24; do
  python3 benchmarks/floor.py "$epochs" .gpu/prepared/train.npz | tee -a "$OUT/summary.txt"
done
