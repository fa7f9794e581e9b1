"""The JAX training loop (mnist_dvc/training/jax_loop.py) against Keras's own fit: the same results."""

import keras
import numpy as np
import pytest
from helpers import default_params, synthetic_mnist, with_overrides

from mnist_dvc.core.params import parse_params
from mnist_dvc.training import jax_loop
from mnist_dvc.training.jax_loop import batch_orders, keras_split
from mnist_dvc.training.network import build_model, compile_model
from stages.preprocess import prepare


def test_the_split_is_keras_validation_split():
    assert keras_split(60000, 0.2) == (48000, 12000)
    assert keras_split(1001, 0.2) == (800, 201)


def test_an_epoch_is_one_call_of_full_batches_and_one_of_the_partial_batch():
    parts = batch_orders(np.arange(105), 10)
    assert [len(p) for p in parts] == [100, 5]
    assert np.array_equal(np.concatenate(parts), np.arange(105))
    assert [len(p) for p in batch_orders(np.arange(7), 10)] == [7]
    assert [len(p) for p in batch_orders(np.arange(40), 10)] == [40]


@pytest.mark.parametrize(
    ("shuffle", "batch_size", "samples"),
    [(True, 32, 640), (False, 32, 640), (True, 48, 500)],  # the last: a partial batch in both parts
    ids=["shuffled", "in-order", "partial-batches"],
)
def test_training_on_the_device_gives_what_keras_fit_gives(shuffle, batch_size, samples):
    overrides = {
        "train.shuffle": shuffle,
        "train.batch_size": batch_size,
        "train.epochs": 3,
        "train.steps_per_execution": 4,
        "preprocess.train_samples": samples,
    }
    params = parse_params(with_overrides(default_params(), overrides))
    data = prepare(synthetic_mnist(n_train=samples, n_test=10), params.preprocess)
    x, y, train = data["x_train"], data["y_train"], params.train

    results = {}
    for loop in ("keras", "device"):
        keras.utils.set_random_seed(train.seed)
        model = build_model(784, 10, train)
        if loop == "keras":
            compile_model(model, train, steps_per_execution=train.steps_per_execution)
            history = model.fit(
                x,
                y,
                batch_size=batch_size,
                epochs=3,
                validation_split=train.validation_split,
                shuffle=shuffle,
                verbose=0,
            )
        else:
            compile_model(model, train, steps_per_execution=1)
            history = jax_loop.fit(model, x, y, train, callbacks=[])
        results[loop] = (history.history, model.get_weights())

    (keras_history, keras_weights), (device_history, device_weights) = results["keras"], results["device"]
    assert keras_history.keys() == device_history.keys()
    for name in keras_history:
        np.testing.assert_allclose(device_history[name], keras_history[name], rtol=1e-6, err_msg=name)
    for device_weight, keras_weight in zip(device_weights, keras_weights, strict=True):
        np.testing.assert_allclose(device_weight, keras_weight, rtol=1e-6, atol=1e-7)
