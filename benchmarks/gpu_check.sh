#!/usr/bin/env bash
# Every GPU check in one go, on a lent GPU machine (JAX with CUDA, no Keras, TensorFlow or DVC,
# no package index). Prepare here with benchmarks/gpu_prepare.sh, then run
# there from the repository root with .gpu/ carried:   OUT=$OUT bash benchmarks/gpu_check.sh
# It runs the stages directly (no DVC): preprocess once from the carried raw arrays, then on its
# output, and writes its summary and an archive of every log and metric to $OUT:
#   0. the set-up's GPU detection (tools/accelerator) against the real nvidia-smi;
#   1. the default training: the device it names, seconds of fit and of the whole process, and
#      evaluate's test accuracy (issue targets: <= 3 s of fit and <= 12 s of process on an H100,
#      test accuracy >= 0.983);
#   2. the same training again: the metrics must be identical (XLA's deterministic GPU ops);
#   3. two trainings side by side on the one GPU (each JAX process takes a bounded share);
#   4. the hand-written JAX floor (benchmarks/floor.py), for the per-epoch ratio;
#   5. the host's work between epochs (`make bench`'s (d): the train stage on 80 images).
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
LOGS=$(mktemp -d)  # every log and metric; $OUT gets the summary and one archive (the device tool returns few files)
trap 'cp "$LOGS/summary.txt" "$LOGS/gpu.txt" "$OUT/" 2>/dev/null; tar -czf "$OUT/logs.tgz" -C "$LOGS" .' EXIT
python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/wheels/*.whl  # with .pyc, as make setup
# That machine's Python has scikit-learn, which Keras imports at start-up where it is installed (1.4 s there);
# the project's venv has none, so it is hidden here to time the process a user runs.
mkdir -p /tmp/site/sklearn && echo 'raise ImportError("not in the project lock")' > /tmp/site/sklearn/__init__.py
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
nvidia-smi -L | tee "$LOGS/gpu.txt"
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" | tee -a "$LOGS/gpu.txt"
tools/accelerator --why | tee -a "$LOGS/gpu.txt"

BASE=/tmp/gpu-base  # the preprocess stage, once, on the carried raw arrays
rm -rf "$BASE" && mkdir -p "$BASE/data/raw" && cp params.yaml "$BASE/"
for packed in .gpu/raw/*.gz; do gunzip -c "$packed" > "$BASE/data/raw/$(basename "$packed" .gz)"; done
(cd "$BASE" && python3 -m stages.preprocess > "$LOGS/preprocess.log" 2>&1) || { cat "$LOGS/preprocess.log"; exit 1; }

run_dir() {  # run_dir NAME: a working directory with the prepared data and the default params
  local dir=/tmp/gpu-$1
  rm -rf "$dir" && mkdir -p "$dir/data" && ln -s "$BASE/data/prepared" "$dir/data/prepared" && cp params.yaml "$dir/"
  echo "$dir"
}

train() {  # train NAME: the train stage as a whole process, timed
  local dir; dir=$(run_dir "$1")
  local started; started=$(date +%s.%N)
  (cd "$dir" && python3 -m stages.train > "$LOGS/train-$1.log" 2>&1)
  local status=$?
  local seconds; seconds=$(python3 -c "print(round($(date +%s.%N) - $started, 1))")
  echo "$1: exit $status, whole process $seconds s" | tee -a "$LOGS/summary.txt"
  grep -h "^train:" "$LOGS/train-$1.log" | tee -a "$LOGS/summary.txt"
  cp "$dir/metrics/train.json" "$LOGS/train-$1.json" 2>/dev/null; cp "$dir/metrics/history.csv" "$LOGS/history-$1.csv" 2>/dev/null
}

train first
(cd /tmp/gpu-first && python3 -m stages.evaluate > "$LOGS/evaluate-first.log" 2>&1; cp metrics/metrics.json "$LOGS/metrics-first.json")
tail -1 "$LOGS/evaluate-first.log" | tee -a "$LOGS/summary.txt"
train second
cmp -s "$LOGS/history-first.csv" "$LOGS/history-second.csv" && echo "repeatable: identical history" | tee -a "$LOGS/summary.txt" \
  || echo "NOT repeatable: histories differ" | tee -a "$LOGS/summary.txt"
train side-a & train side-b & (sleep 8 && nvidia-smi --query-gpu=memory.used,memory.total --format=csv \
  | tee -a "$LOGS/summary.txt") & wait  # the memory the two take, mid-run
for epochs in 6 24; do  # with the stage's deterministic GPU ops (mnist_dvc/runtime/process.py), a like-for-like floor
  XLA_FLAGS=--xla_gpu_deterministic_ops=true python3 benchmarks/floor.py "$epochs" "$BASE/data/prepared/train.npz" \
    | tee -a "$LOGS/summary.txt"
done
python3 -c "import sys, tempfile; from pathlib import Path; from benchmarks.train_speed import host_per_epoch
with tempfile.TemporaryDirectory() as work:
    print(f'host work between epochs: {host_per_epoch(Path(work), Path(sys.argv[1])) * 1000:.1f} ms an epoch')" \
  "$BASE/data/prepared" | tee -a "$LOGS/summary.txt"
