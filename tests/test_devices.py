"""train.devices: the batch/learning-rate rule, the refusal of a count that is not there, and real
data-parallel runs on two simulated CPU devices, on JAX and TensorFlow."""

import json
import re
import sys

import pytest
from helpers import ROOT, THREE_EPOCHS, default_params, make_prepared, run, run_stage, with_overrides

from mnist_dvc.core.errors import ParamsError
from mnist_dvc.core.params import parse_params
from mnist_dvc.runtime.devices import scale_for_replicas, start_devices
from mnist_dvc.training.history import read_history
from mnist_dvc.training.jax_loop import check_even_split

SETTINGS = ("XLA_FLAGS", "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION")


def started_environment(**env: str) -> dict:
    """The settings of a process after `start_process("jax")`, with `env` as the user's own."""
    probe = (
        "import json, os, sys; from mnist_dvc.runtime.process import start_process; "
        f"[os.environ.pop(name, None) for name in {(*SETTINGS, 'MNIST_CPU_DEVICES')!r}]; "
        "os.environ.update(json.loads(sys.argv[1])); start_process('jax'); "
        f"print(json.dumps({{name: os.environ.get(name) for name in {SETTINGS!r}}}))"
    )
    return json.loads(run([sys.executable, "-c", probe, json.dumps(env)], ROOT).stdout)


def test_before_the_backend_starts_gpu_ops_are_made_deterministic_and_memory_bounded():
    settings = started_environment()
    assert settings["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=true"
    # Each process allocates as it needs, up to a share of the card: two sweep workers fit on one GPU.
    assert settings["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert float(settings["XLA_PYTHON_CLIENT_MEM_FRACTION"]) < 0.5


def test_a_users_own_settings_win():
    settings = started_environment(
        XLA_FLAGS="--xla_gpu_deterministic_ops=false", XLA_PYTHON_CLIENT_MEM_FRACTION="0.9", MNIST_CPU_DEVICES="2"
    )
    assert settings["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=false --xla_force_host_platform_device_count=2"
    assert settings["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.9"


def test_one_device_changes_nothing():
    assert scale_for_replicas(32, 0.001, 1) == (32, 0.001)


def test_batch_size_is_per_device_and_the_learning_rate_scales_linearly():
    assert scale_for_replicas(32, 0.001, 2) == (64, 0.002)
    assert scale_for_replicas(32, 0.001, 8) == (256, 0.008)
    with pytest.raises(ValueError, match="at least 1"):
        scale_for_replicas(32, 0.001, 0)


def test_jax_needs_both_splits_to_divide_by_the_device_count():
    check_even_split(60000, 0.2, 8)
    check_even_split(3000, 0.2, 2)
    with pytest.raises(ParamsError, match="training part of 801 and a validation part of 201") as error:
        check_even_split(1002, 0.2, 2)
    assert "set preprocess.train_samples to 1000" in str(error.value)


def test_devices_is_a_positive_count_and_one_by_default():
    assert parse_params(default_params()).train.devices == 1
    for bad in (0, True, "2"):
        with pytest.raises(ParamsError, match="train.devices"):
            parse_params(with_overrides(default_params(), {"train.devices": bad}))


def test_torch_has_no_data_parallel_engine_and_says_so():
    with pytest.raises(ParamsError, match="train.devices = 2 needs backend jax or tensorflow"):
        start_devices("torch", 2)


def test_a_device_count_that_is_not_there_is_refused(tmp_path):
    make_prepared(tmp_path, {"train.devices": 3})
    result = run_stage("train", tmp_path, check=False, env={"MNIST_CPU_DEVICES": "2"})
    assert result.returncode == 2
    assert "error: train.devices = 3, but JAX sees 2 devices" in result.stderr
    assert "Traceback" not in result.stderr


# Two devices on one CPU: MNIST_CPU_DEVICES, read by start_process before the backend starts.


def train_on(directory, backend, devices):
    directory.mkdir()
    make_prepared(directory, THREE_EPOCHS | {"train.backend": backend, "train.devices": devices})
    result = run_stage("train", directory, env={"MNIST_CPU_DEVICES": "2"})
    return result.stderr + result.stdout, read_history(directory / "metrics/history.csv")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_devices_train_in_sync_and_learn_as_well_as_one(tmp_path, backend):
    single_log, single = train_on(tmp_path / "single", backend, 1)
    multi_log, multi = train_on(tmp_path / "multi", backend, 2)

    assert "replicas in sync" not in single_log
    weights = re.search(r"train: (\d+) replicas in sync, global batch (\d+), .*; weights on (.*)", multi_log)
    assert weights, multi_log
    assert weights[1] == "2" and weights[2] == "64"
    devices = weights[3].split(", ")
    assert len(devices) == 2 and len(set(devices)) == 2, f"one copy of the weights on each device: {devices}"
    # 800 training samples: 25 steps of 32 on one device, 13 global steps of 2 x 32 on two.
    assert re.search(r"^25/25 ", single_log, re.M), single_log
    assert re.search(r"^13/13 ", multi_log, re.M), multi_log
    assert single[0]["learning_rate"] == pytest.approx(0.001)
    assert multi[0]["learning_rate"] == pytest.approx(0.002)
    single_acc, multi_acc = single[-1]["val_accuracy"], multi[-1]["val_accuracy"]
    print(f"{backend}: val_accuracy after 3 epochs: one device {single_acc:.4f}, two devices {multi_acc:.4f}")
    assert multi_acc > 0.9 and abs(multi_acc - single_acc) < 0.05
