"""Seconds of the train stage's compiled epoch alone: stages/loop.py's scan of Keras's train step
over one epoch's 1,500 batches, timed to completion, without callbacks or validation. Run from a
directory holding params.yaml and data/prepared/, with the repository on PYTHONPATH:
    python benchmarks/epoch_call.py [UNROLL ...]
One JSON line per scan unroll (default 1): the first call's seconds (compiling) and the fastest of
four more. XLA_FLAGS is read as set; on a GPU compare it with and without
--xla_gpu_deterministic_ops=true (the README's GPU figures).
"""

import json
import os
import sys
import time

from stages.backend import use_backend
from stages.params import load_params
from stages.prepared import read_split, split_path


def main() -> None:
    unrolls = [int(u) for u in sys.argv[1:]] or [1]
    params = load_params().train
    x, y = read_split(split_path("train"))
    use_backend("jax")
    import jax
    import keras
    import numpy as np

    from stages.devices import put_replicated
    from stages.loop import epoch_calls, keras_split
    from stages.model import build_model, compile_model

    keras.utils.set_random_seed(params.seed)
    model = build_model(x.shape[1], y.shape[1], params)
    compile_model(model, params, steps_per_execution=1)
    train_size, _ = keras_split(len(x), params.validation_split)
    model._symbolic_build(data_batch=(x[: params.batch_size], y[: params.batch_size]))
    xs, ys = put_replicated(x[:train_size]), put_replicated(y[:train_size])
    groups = (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables,
              model.metrics_variables)  # fmt: skip
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
        print(json.dumps({"xla_flags": os.environ.get("XLA_FLAGS", ""), "unroll": unroll,
                          "first_s": round(first, 3), "epoch_s": round(min(times), 4)}))  # fmt: skip


if __name__ == "__main__":
    main()
