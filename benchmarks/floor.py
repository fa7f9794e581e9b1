"""The floor: the study's training written by hand in JAX, as fast as this model trains here.

Same model (784 -> 256 ReLU -> dropout 0.2 -> 128 ReLU -> dropout 0.5 -> 10 softmax, Glorot
uniform weights), Adam(0.001), categorical cross-entropy, batch 32, the last 20% validating,
a new order every epoch; the data on the device, and each epoch (training, then validation)
one compiled call. No Keras, no callbacks: what is left is the arithmetic and one dispatch
per epoch. Run by train_speed.py in its own process:

    python benchmarks/floor.py EPOCHS PREPARED_TRAIN_NPZ

Prints one JSON line: epochs, seconds of training, the last validation accuracy.
"""

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

BATCH, LEARNING_RATE, DROPOUT = 32, 0.001, (0.2, 0.5)
BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-7  # Keras's Adam defaults


def init(key, sizes=(784, 256, 128, 10)):
    params = []
    keys = jax.random.split(key, len(sizes) - 1)
    for layer_key, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True):
        limit = np.sqrt(6 / (n_in + n_out))
        params.append((jax.random.uniform(layer_key, (n_in, n_out), minval=-limit, maxval=limit), jnp.zeros(n_out)))
    return params


def forward(params, x, key=None):
    for i, (w, b) in enumerate(params[:-1]):
        x = jax.nn.relu(x @ w + b)
        if key is not None:  # inverted dropout while training
            keep = 1 - DROPOUT[i]
            x = jnp.where(jax.random.bernoulli(jax.random.fold_in(key, i), keep, x.shape), x / keep, 0)
    w, b = params[-1]
    return jax.nn.softmax(x @ w + b)


def loss_fn(params, x, y, key):
    p = jnp.clip(forward(params, x, key), 1e-7, 1 - 1e-7)
    return -jnp.mean(jnp.sum(y * jnp.log(p), axis=1))


def adam(params, grads, m, v, t):
    m = jax.tree.map(lambda m, g: BETA1 * m + (1 - BETA1) * g, m, grads)
    v = jax.tree.map(lambda v, g: BETA2 * v + (1 - BETA2) * g * g, v, grads)
    rate = LEARNING_RATE * jnp.sqrt(1 - BETA2**t) / (1 - BETA1**t)
    params = jax.tree.map(lambda p, m, v: p - rate * m / (jnp.sqrt(v) + EPSILON), params, m, v)
    return params, m, v


@jax.jit
def epoch(state, x, y, xv, yv, key):
    """One epoch of training in a new order, then validation: a single compiled call."""
    order = jax.random.permutation(key, len(x))[: len(x) // BATCH * BATCH].reshape(-1, BATCH)

    def step(state, rows):
        params, m, v, t, key = state
        key, dropout_key = jax.random.split(key)
        grads = jax.grad(loss_fn)(params, x[rows], y[rows], dropout_key)
        params, m, v = adam(params, grads, m, v, t + 1)
        return (params, m, v, t + 1, key), None

    state, _ = jax.lax.scan(step, state, order)

    def check(hits, rows):
        guess = forward(state[0], xv[rows]).argmax(axis=1)
        return hits + jnp.sum(guess == yv[rows].argmax(axis=1)), None

    hits, _ = jax.lax.scan(check, 0, jnp.arange(len(xv) // BATCH * BATCH).reshape(-1, BATCH))
    return state, hits / (len(xv) // BATCH * BATCH)


def main() -> None:
    epochs, prepared = int(sys.argv[1]), sys.argv[2]
    with np.load(prepared, allow_pickle=False) as npz:
        x, y = npz["x"], npz["y"]
    train = int(len(x) * 0.8)
    x, y, xv, yv = (jax.device_put(a) for a in (x[:train], y[:train], x[train:], y[train:]))
    key = jax.random.key(42)
    params = init(key)
    zeros = jax.tree.map(jnp.zeros_like, params)
    state = (params, zeros, zeros, 0, key)
    started = time.perf_counter()
    for e in range(epochs):
        state, accuracy = epoch(state, x, y, xv, yv, jax.random.fold_in(key, e))
        accuracy = float(accuracy)  # waits for the epoch, as the stage's callbacks do
    seconds = time.perf_counter() - started
    print(json.dumps({"epochs": epochs, "seconds": seconds, "val_accuracy": accuracy}))


if __name__ == "__main__":
    main()
