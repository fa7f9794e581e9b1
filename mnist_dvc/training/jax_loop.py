"""The training loop on JAX: the data on the device, a whole epoch per compiled call.

`model.fit` at batch 32 spends its time between batches, not in them: each batch is drawn
and copied from the host and dispatched from Python. Here the training and validation
arrays are copied to the device once; each epoch the host draws only the order (48,000
integers), and one compiled call gathers every batch on the device and runs Keras's own
train step over all of them in a `lax.scan`. Validation is a second call, with Keras's
own test step. Between epochs the state goes back into the Keras variables and every
callback sees the epoch exactly as under `model.fit` (EarlyStopping, ReduceLROnPlateau,
checkpoints, history, TensorBoard, resume).

The batches are those of `model.fit(validation_split=..., shuffle=True)`: the last
fraction of the data validates, unshuffled, and the training order is one
`np.random.permutation` per epoch from the generator `keras.utils.set_random_seed` seeds,
drawn as fit draws it. With Keras's own steps, same updates in the same order:
tests/test_loop.py holds this loop and `model.fit` to the same weights and history.
"""

import math
import sys
from functools import partial

import numpy as np

from mnist_dvc.core.errors import ParamsError
from mnist_dvc.runtime.devices import device_names


def keras_split(num_samples: int, validation_split: float) -> tuple[int, int]:
    """(training, validation) sizes as Keras's `validation_split` cuts them."""
    train = int(math.floor(num_samples * (1.0 - validation_split)))
    return train, num_samples - train


def check_even_split(num_samples: int, validation_split: float, replicas: int) -> None:
    """Data-parallel JAX shards every batch evenly over the devices, the last, partial one too:
    refuse early a sample count whose training or validation part does not divide by the device count."""
    train, validation = keras_split(num_samples, validation_split)
    if train % replicas == 0 and validation % replicas == 0:
        return
    fits = next(n for n in range(num_samples, 0, -1) if not any(p % replicas for p in keras_split(n, validation_split)))
    raise ParamsError(
        f"train.devices = {replicas} on JAX splits every batch evenly, the last one too, but "
        f"preprocess.train_samples = {num_samples} makes a training part of {train} and a validation part of "
        f"{validation} (validation_split {validation_split}); both must be multiples of {replicas}: set "
        f"preprocess.train_samples to {fits}, for example, or use backend tensorflow"
    )


def batch_orders(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """An epoch's sample order cut into at most two calls: the full batches, then the partial one alone."""
    full = len(order) // batch_size * batch_size
    return [part for part in (order[:full], order[full:]) if len(part)]


def fit(model, x: np.ndarray, y: np.ndarray, params, callbacks: list, mesh=None):
    """model.fit(x, y, validation_split, shuffle, epochs, batch_size, callbacks, verbose=2), on the device.

    `model` is compiled (steps_per_execution is not used here: an epoch is one call). With a `mesh`
    (data-parallel), the data is copied to each of its devices and every batch split between them.
    Callbacks run between compiled calls, as fit's do between its steps. Returns the History.
    """
    import keras

    batch = params.batch_size
    train_size, _ = keras_split(len(x), params.validation_split)
    model._symbolic_build(data_batch=(x[:batch], y[:batch]))  # optimizer, loss and metrics, as fit builds them
    if params.shuffle:
        np.random.permutation(train_size)  # fit draws one order to peek at the data; so the epochs match its own

    train_data = put_replicated(x[:train_size], mesh), put_replicated(y[:train_size], mesh)
    validation_data = put_replicated(x[train_size:], mesh), put_replicated(y[train_size:], mesh)
    train_epoch, validate = epoch_calls(model, partial(shard_batch, mesh=mesh))
    steps = math.ceil(train_size / batch)
    callbacks = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=True, verbose=2, epochs=params.epochs, steps=steps, model=model
    )
    where = device_names(train_data[0].sharding.device_set)
    print(f"train: {steps} batches per compiled call, a whole epoch, data on {where}", file=sys.stderr)

    model.stop_training = False
    callbacks.on_train_begin()
    model.reset_metrics()
    fresh_metrics = [variable.value for variable in model.metrics_variables]  # each epoch's metrics start here
    model_groups = (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables)
    logs = {}
    for epoch in range(model._initial_epoch or 0, params.epochs):  # ResumeState sets _initial_epoch
        callbacks.on_epoch_begin(epoch)
        order = np.random.permutation(train_size) if params.shuffle else np.arange(train_size)
        state = (*_read(model_groups), fresh_metrics)
        for part in batch_orders(order, batch):
            train_logs, state = train_epoch(state, *train_data, part.reshape(-1, min(batch, len(part))))
        _write(model_groups, state[:3])

        state = (*_read(model_groups[:2]), fresh_metrics)
        for part in batch_orders(np.arange(len(validation_data[0])), batch):
            validation_logs, state = validate(state, *validation_data, part.reshape(-1, min(batch, len(part))))
        # Both calls' metrics, computed in them, in one copy to the host: the device runs the validation
        # call without first waiting for the host to read the training call's.
        logs, validation_logs = _floats(train_logs, validation_logs)
        callbacks.on_train_batch_end(steps - 1, logs)  # the progress bar counts the epoch's batches
        logs |= {f"val_{name}": value for name, value in validation_logs.items()}

        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end(logs)
    return model.history


def epoch_calls(model, shard, unroll: int = 1) -> tuple:
    """The compiled calls `(state, x, y, orders) -> (logs, state)`: Keras's train step, then its test step,
    over every batch of `orders` in one `lax.scan`, the batches gathered from the device-resident
    arrays by index. The logs are the metrics of the whole call (its state's last element holds the
    metric variables), computed once at its end. `unroll` (for benchmarks/epoch_call.py) runs more
    steps per loop iteration, which takes longer to compile.
    """
    import jax
    import keras

    def metrics(values) -> dict:
        with keras.StatelessScope(state_mapping=list(zip(model.metrics_variables, values, strict=True))):
            return model.get_metrics_result()

    def scan(step):
        def run(state, x, y, orders):
            def body(state, rows):
                _, state = step(state, (shard(x[rows]), shard(y[rows])))
                return state, None

            state, _ = jax.lax.scan(body, state, orders, unroll=unroll)
            return metrics(state[-1]), state

        return jax.jit(run)

    return scan(model.train_step), scan(model.test_step)


def _read(groups) -> tuple:
    return tuple([variable.value for variable in group] for group in groups)


def _write(groups, values) -> None:
    for group, group_values in zip(groups, values, strict=True):
        for variable, value in zip(group, group_values, strict=True):
            variable.assign(value)


def _floats(*logs: dict) -> list[dict[str, float]]:
    import jax

    return [{name: float(value) for name, value in values.items()} for values in jax.device_get(logs)]


def put_replicated(array, mesh=None):
    """An array copied to the device once: the first device, or every device of `mesh` (all processes')."""
    import jax

    if mesh is None:
        return jax.device_put(array)
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def shard_batch(batch, mesh=None):
    """Inside the compiled step: split a batch between the devices of `mesh` (unchanged without one)."""
    if mesh is None:
        return batch
    import jax

    return jax.lax.with_sharding_constraint(
        batch, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    )
