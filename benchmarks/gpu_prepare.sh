#!/usr/bin/env bash
# Gathers what benchmarks/gpu_check.sh needs on a lent GPU machine that reaches no package index:
# pure-Python and cp312 wheels of what the stages import beyond the
# machine's own JAX, h5py, numpy, matplotlib, pyyaml and tensorboard, into .gpu/wheels/, and
# MNIST's raw arrays, gzipped, into .gpu/raw/ (the prepared float32 arrays, 213 MB, would not fit
# the 64 MiB the device tool carries; gpu_check.sh runs the preprocess stage there). Run from the
# repository root after `make repro` (or `dvc repro fetch`); .gpu/ is ignored by Git and travels
# with the device tool's `carry: [".gpu"]`. PYTHON_VERSION is the GPU machine's (3.12).
set -euo pipefail
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/raw
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .gpu/wheels \
  keras==3.15.1 namex optree rich markdown-it-py mdurl pygments absl-py \
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types typing-inspection typing-extensions
for array in data/raw/*.npy; do gzip -c "$array" > ".gpu/raw/$(basename "$array").gz"; done
du -sh .gpu/wheels .gpu/raw
