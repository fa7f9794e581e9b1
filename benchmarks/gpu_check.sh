#!/usr/bin/env bash
# The GPU checks in one go, for a lent GPU machine that has JAX with CUDA but no Keras,
# TensorFlow, DVC or package index (see README "Performance"). From the repository root:
#   .whl/  wheels for keras, namex, optree, pydantic(-core), annotated-types, typing-inspection,
#          typing_extensions (cp312 manylinux), installed with --no-index;
#   .gpu/mnist_raw.npz  data/raw/ compressed (np.savez_compressed).
# Runs the stages directly (no DVC): preprocess, the default training, evaluate; then the
# training at other steps_per_execution. Writes logs and metrics to $OUT (or ./gpu-out).
set -euo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 KERAS_BACKEND=jax  # Keras defaults to TensorFlow, absent there
nvidia-smi -L
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"

run_dir() {  # run_dir NAME SPE EPOCHS: a work dir with data/raw and params for that run
  local dir=/tmp/gpu-$1
  mkdir -p "$dir/data"
  [ -d /tmp/gpu-raw ] || python3 -c "
import numpy as np, os
os.makedirs('/tmp/gpu-raw')
with np.load('.gpu/mnist_raw.npz') as d:
    for k in d.files: np.save(f'/tmp/gpu-raw/{k}.npy', d[k])"
  ln -sfn /tmp/gpu-raw "$dir/data/raw"
  sed -e "s/^  steps_per_execution: .*/  steps_per_execution: $2/" -e "s/^  epochs: .*/  epochs: $3/" params.yaml > "$dir/params.yaml"
  echo "$dir"
}

d=$(run_dir default 64 50)
(cd "$d" && python3 -m stages.preprocess && python3 -m stages.train 2>&1 | tee "$OUT/train-default.log" | grep -v "^Epoch" \
  && python3 -m stages.evaluate && cp metrics/train.json "$OUT/train-default.json" && cp metrics/evaluate.json "$OUT/evaluate-default.json" \
  && cp metrics/history.csv "$OUT/history-default.csv")
for spe in 1 500; do
  e=$([ "$spe" = 1 ] && echo 3 || echo 50)
  d=$(run_dir "spe$spe" "$spe" "$e")
  (cd "$d" && ln -sfn /tmp/gpu-default/data/prepared data/prepared \
    && python3 -m stages.train 2>&1 | tee "$OUT/train-spe$spe.log" | grep "train:")
done
grep -h "train:" "$OUT"/train-*.log
