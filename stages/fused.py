"""Many training steps per compiled call on JAX: Keras's own step, scanned inside XLA.

Keras 3's JAX trainer runs `steps_per_execution` as a Python loop around its compiled
one-batch step, so every batch still pays a dispatch from Python, which at batch 32
costs more than this network's arithmetic (on a GPU most of all). Here Keras is fed a
group of batches per item (`GroupedBatches`, reshuffled every epoch as fit(shuffle=True)
does) and the model's train and test steps become a `jax.lax.scan` of Keras's own steps
over the group: the same updates in the same order, one dispatch per group. Validation,
metrics and every callback still run at the end of each epoch, as in the study.
"""

import math
import signal
import sys
from contextlib import contextmanager

import jax
import keras
import numpy as np
from keras import tree

from stages.distribute import keras_split
from stages.params import TrainParams


def group_size(batches: int, most: int) -> int:
    """The largest number of batches per group, at most `most`, that divides `batches` evenly:
    every group then has one shape, and XLA compiles the scan once."""
    return max(d for d in range(1, max(1, min(most, batches)) + 1) if batches % d == 0)


def group_bounds(samples: int, batch_size: int, group: int) -> list[tuple[int, int]]:
    """(start, stop) of each item: `group` full batches each, then the partial last batch alone."""
    step = group * batch_size
    full = samples // batch_size * batch_size
    bounds = [(start, min(start + step, full)) for start in range(0, full, step)]
    if full < samples:
        bounds.append((full, samples))
    return bounds


class GroupedBatches(keras.utils.PyDataset):
    """An epoch's mini-batches, `group` per item, in a new random order every epoch when shuffling.

    The order is drawn as Keras's own fit(shuffle=True) draws it for arrays: one
    np.random.permutation, from the global generator that keras.utils.set_random_seed seeds,
    each time Keras starts going through the data (once to peek at it, then every epoch).
    So the batches are exactly those of the study's loop (tests/test_fused.py holds the two
    loops to the same results).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, group: int, shuffle: bool):
        super().__init__()
        self.x, self.y, self.shuffle = x, y, shuffle
        self.bounds = group_bounds(len(x), batch_size, group)
        self.order = None

    def __len__(self) -> int:
        return len(self.bounds)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = slice(*self.bounds[index])
        if self.order is None:
            return self.x[rows], self.y[rows]
        picked = self.order[rows]
        return self.x[picked], self.y[picked]

    def on_epoch_begin(self) -> None:
        if self.shuffle:
            self.order = np.random.permutation(len(self.x))


def scan_steps(step, batch_size: int):
    """Keras's one-batch `step(state, data)` applied to every batch of a group, in one scan."""

    def steps(state, data):
        rows = tree.flatten(data)[0].shape[0]
        count = rows // batch_size if rows % batch_size == 0 else 1  # the partial batch comes alone
        batches = tree.map_structure(lambda a: a.reshape(count, rows // count, *a.shape[1:]), data)

        def body(state, batch):
            logs, state = step(state, batch)
            return state, logs

        state, logs = jax.lax.scan(body, state, batches)
        return tree.map_structure(lambda values: values[-1], logs), state  # metrics after the last batch

    return steps


class StopOnInterrupt(keras.callbacks.Callback):
    """Ctrl-C stops training at the end of the current compiled call, with KeyboardInterrupt.

    A KeyboardInterrupt raised while JAX runs Python from inside its dispatch can be lost there
    (seen here: one Ctrl-C in three was ignored and training ran on), so during fit SIGINT only
    sets a flag, and this callback raises from plain Python between calls.
    """

    def __init__(self):
        super().__init__()
        self.interrupted = False

    @contextmanager
    def catching_sigint(self):
        def note(signum, frame):
            self.interrupted = True

        previous = signal.signal(signal.SIGINT, note)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _check(self, *args, **kwargs):
        if self.interrupted:
            raise KeyboardInterrupt

    on_train_batch_end = on_test_batch_end = on_epoch_end = _check


def fit_fused(model: keras.Model, x: np.ndarray, y: np.ndarray, params: TrainParams, callbacks: list):
    """model.fit as the study calls it (validation_split, shuffle), `steps_per_execution` batches a call.

    The model must be compiled with steps_per_execution=1: each item already is a group.
    """
    train_size, _ = keras_split(len(x), params.validation_split)
    batch, most = params.batch_size, params.steps_per_execution
    train_group = group_size(train_size // batch, most)
    validation_group = group_size((len(x) - train_size) // batch, most)
    model.train_step = scan_steps(model.train_step, batch)  # on this instance only; saving is unchanged
    model.test_step = scan_steps(model.test_step, batch)
    train = GroupedBatches(x[:train_size], y[:train_size], batch, train_group, params.shuffle)
    validation = GroupedBatches(x[train_size:], y[train_size:], batch, validation_group, False)
    per_epoch = math.ceil(train_size / batch)
    print(f"train: {train_group} batches per compiled call ({per_epoch} per epoch)", file=sys.stderr)
    stop = StopOnInterrupt()
    with stop.catching_sigint():
        # shuffle=False: Keras would otherwise reorder the groups; GroupedBatches shuffles the samples.
        history = model.fit(
            train,
            validation_data=validation,
            epochs=params.epochs,
            shuffle=False,
            callbacks=[stop, *callbacks],
            verbose=2,
        )
    stop._check()  # a Ctrl-C during the last call stops the stage too
    return history
