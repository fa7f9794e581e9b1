"""train.distribute: the batch/learning-rate rule, and real data-parallel runs on two simulated CPU devices."""

import csv
import re

import pytest
from conftest import default_params, make_prepared, run_stage, with_overrides

from stages.distribute import Distribution, check_even_split, keras_split, scale_for_replicas, start_distribution
from stages.errors import ParamsError
from stages.params import parse_params


def train_params(**overrides):
    return parse_params(with_overrides(default_params(), {f"train.{k}": v for k, v in overrides.items()})).train


def test_one_device_changes_nothing():
    assert scale_for_replicas(32, 0.001, 1) == (32, 0.001)


def test_batch_size_is_per_device_and_the_learning_rate_scales_linearly():
    assert scale_for_replicas(32, 0.001, 2) == (64, 0.002)
    assert scale_for_replicas(32, 0.001, 8) == (256, 0.008)
    with pytest.raises(ValueError, match="at least 1"):
        scale_for_replicas(32, 0.001, 0)


def test_scale_applies_the_rule_only_when_enabled():
    params = train_params()
    off = Distribution("jax", False, ("cpu:0", "cpu:1")).scale(params)
    assert (off.batch_size, off.learning_rate, off.steps_per_execution) == (32, 0.001, 64)
    on = Distribution("jax", True, ("cpu:0", "cpu:1")).scale(params)
    assert (on.batch_size, on.learning_rate, on.steps_per_execution) == (64, 0.002, 64)
    # keras-team/keras#19246: MirroredStrategy fails with steps_per_execution > 1.
    tf_on = Distribution("tensorflow", True, ("CPU:0", "CPU:1")).scale(params)
    assert (tf_on.batch_size, tf_on.learning_rate, tf_on.steps_per_execution) == (64, 0.002, 1)


def test_jax_needs_both_splits_to_divide_by_the_device_count():
    assert keras_split(60000, 0.2) == (48000, 12000)
    check_even_split(60000, 0.2, 8)
    check_even_split(3000, 0.2, 2)
    with pytest.raises(ParamsError, match="training part of 801 and a validation part of 201") as error:
        check_even_split(1002, 0.2, 2)
    assert "set preprocess.train_samples to 1000" in str(error.value)


def test_distribute_is_a_strict_bool_and_off_by_default():
    assert train_params().distribute is False
    with pytest.raises(ParamsError, match="train.distribute = 'yes'"):
        train_params(distribute="yes")


def test_torch_has_no_data_parallel_engine_and_says_so():
    with pytest.raises(ParamsError, match="train.distribute = true needs backend jax or tensorflow"):
        start_distribution("torch", True)


# Two devices on one CPU, set before the backend starts: JAX through XLA's own flag, as a
# user would; TensorFlow through MNIST_CPU_DEVICES (logical CPU devices, see stages/distribute.py).
TWO_DEVICES = {
    "jax": {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    "tensorflow": {"MNIST_CPU_DEVICES": "2"},
}
THREE_EPOCHS = {"train.epochs": 3, "train.tensorboard": False, "train.checkpoint.every_epochs": 3}


def train_on(directory, backend, distribute):
    directory.mkdir()
    make_prepared(directory, THREE_EPOCHS | {"train.backend": backend, "train.distribute": distribute})
    result = run_stage("train", directory, env=TWO_DEVICES[backend])
    with open(directory / "metrics/history.csv") as f:
        return result.stderr + result.stdout, list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_devices_train_in_sync_and_learn_as_well_as_one(tmp_path, backend):
    single_log, single = train_on(tmp_path / "single", backend, False)
    multi_log, multi = train_on(tmp_path / "multi", backend, True)

    assert "data-parallel" not in single_log
    weights = re.search(r"train: (\d+) replicas in sync; weights on (.*)", multi_log)
    assert weights, multi_log
    assert weights[1] == "2"
    devices = weights[2].split(", ")
    assert len(devices) == 2 and len(set(devices)) == 2, f"one copy of the weights on each device: {devices}"
    # 800 training samples: 25 steps of 32 on one device (on JAX fused into one call, stages/fused.py),
    # 13 global steps of 2 x 32 on two.
    assert re.search(r"^25/25 |\(25 per epoch\)", single_log, re.M), single_log
    assert re.search(r"^13/13 ", multi_log, re.M), multi_log
    assert float(single[0]["learning_rate"]) == pytest.approx(0.001)
    assert float(multi[0]["learning_rate"]) == pytest.approx(0.002)
    single_acc, multi_acc = float(single[-1]["val_accuracy"]), float(multi[-1]["val_accuracy"])
    print(f"{backend}: val_accuracy after 3 epochs: one device {single_acc:.4f}, two devices {multi_acc:.4f}")
    assert multi_acc > 0.9 and abs(multi_acc - single_acc) < 0.05
