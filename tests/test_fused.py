"""The fused JAX loop (stages/fused.py) against Keras's own fit: the same results, bit for bit."""

import keras
import numpy as np
import pytest
from conftest import default_params, synthetic_mnist, with_overrides

from stages.fused import fit_fused, group_bounds, group_size
from stages.model import build_model, compile_model
from stages.params import parse_params
from stages.preprocess import prepare


def test_group_size_is_the_largest_even_divisor_within_the_limit():
    assert group_size(1500, 64) == 60  # the study: 48,000 / 32 training batches
    assert group_size(375, 64) == 25  # and its 12,000 / 32 validation batches
    assert group_size(7, 64) == 7
    assert group_size(13, 4) == 1
    assert group_size(0, 64) == 1


def test_group_bounds_cover_every_sample_once_with_the_partial_batch_alone():
    assert group_bounds(100, 10, 4) == [(0, 40), (40, 80), (80, 100)]
    assert group_bounds(105, 10, 5) == [(0, 50), (50, 100), (100, 105)]
    assert group_bounds(7, 10, 3) == [(0, 7)]


@pytest.mark.parametrize(
    ("shuffle", "batch_size", "samples"),
    [(True, 32, 640), (False, 32, 640), (True, 48, 500)],  # the last: a partial batch in both parts
    ids=["shuffled", "in-order", "partial-batches"],
)
def test_fused_training_gives_exactly_what_keras_fit_gives(shuffle, batch_size, samples):
    overrides = {"train.shuffle": shuffle, "train.batch_size": batch_size, "train.epochs": 3,
                 "train.steps_per_execution": 4, "preprocess.train_samples": samples}  # fmt: skip
    params = parse_params(with_overrides(default_params(), overrides))
    data = prepare(synthetic_mnist(n_train=samples, n_test=10), params.preprocess)
    x, y, train = data["x_train"], data["y_train"], params.train

    results = {}
    for loop in ("keras", "fused"):
        keras.utils.set_random_seed(train.seed)
        model = build_model(784, 10, train)
        if loop == "keras":
            compile_model(model, train, steps_per_execution=train.steps_per_execution)
            history = model.fit(x, y, batch_size=batch_size, epochs=3, validation_split=train.validation_split,
                                shuffle=shuffle, verbose=0)  # fmt: skip
        else:
            compile_model(model, train, steps_per_execution=1)
            history = fit_fused(model, x, y, train, callbacks=[])
        results[loop] = (history.history, model.get_weights())

    (keras_history, keras_weights), (fused_history, fused_weights) = results["keras"], results["fused"]
    assert keras_history.keys() == fused_history.keys()
    for name in keras_history:
        np.testing.assert_allclose(fused_history[name], keras_history[name], rtol=1e-6, err_msg=name)
    for fused_weight, keras_weight in zip(fused_weights, keras_weights, strict=True):
        np.testing.assert_allclose(fused_weight, keras_weight, rtol=1e-6, atol=1e-7)
