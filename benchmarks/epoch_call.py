"""Seconds of the train stage's compiled epoch alone: mnist_dvc/training/jax_loop.py's scan of Keras's train step
over one epoch's 1,500 batches, timed to completion, without callbacks or validation. Run from a
directory holding params.yaml and data/prepared/, with the repository on PYTHONPATH:
    python benchmarks/epoch_call.py [UNROLL ...]
One JSON line per scan unroll (default 1): the first call's seconds (compiling) and the fastest of
four more. The process starts as the stage's does, so the deterministic GPU ops are on unless
XLA_FLAGS names them: on a GPU compare with XLA_FLAGS=--xla_gpu_deterministic_ops=false.
"""

import json
import os
import sys
import time

from mnist_dvc.core.params import load_params
from mnist_dvc.data.prepared import read_split, split_path
from mnist_dvc.runtime.process import start_process


def main() -> None:
    unrolls = [int(u) for u in sys.argv[1:]] or [1]
    params = load_params().train
    x, y = read_split(split_path("train"))
    start_process("jax")
    import jax
    import keras
    import numpy as np

    from mnist_dvc.training.jax_loop import epoch_calls, keras_split, put_replicated
    from tests.helpers import compiled_model

    keras.utils.set_random_seed(params.seed)
    model = compiled_model(params, x, y)
    train_size, _ = keras_split(len(x), params.validation_split)
    xs, ys = put_replicated(x[:train_size]), put_replicated(y[:train_size])
    groups = (
        model.trainable_variables,
        model.non_trainable_variables,
        model.optimizer.variables,
        model.metrics_variables,
    )
    start_state = tuple([v.value for v in group] for group in groups)
    orders = np.random.permutation(train_size)[: train_size // params.batch_size * params.batch_size]
    orders = orders.reshape(-1, params.batch_size)

    for unroll in unrolls:
        compiled, _ = epoch_calls(model, lambda batch: batch, unroll=unroll)
        started = time.perf_counter()
        _, state = jax.block_until_ready(compiled(start_state, xs, ys, orders))
        first = time.perf_counter() - started
        times = []
        for _ in range(4):
            started = time.perf_counter()
            _, state = jax.block_until_ready(compiled(state, xs, ys, orders))
            times.append(time.perf_counter() - started)
        print(
            json.dumps(
                {
                    "xla_flags": os.environ.get("XLA_FLAGS", ""),
                    "unroll": unroll,
                    "first_s": round(first, 3),
                    "epoch_s": round(min(times), 4),
                }
            )
        )


if __name__ == "__main__":
    main()
