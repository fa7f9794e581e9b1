import json
import threading

import keras
import numpy as np
import pytest
from helpers import compiled_model, imported_by_stage, make_prepared, run_stage

from mnist_dvc.core.errors import DataError
from mnist_dvc.core.params import load_params
from mnist_dvc.training.history import read_history
from mnist_dvc.training.network import build_model
from mnist_dvc.training.resume import ResumeState

# Four epochs, a checkpoint looked at every two.
FOUR_EPOCHS = {"train.epochs": 4, "train.batch_size": 50, "train.checkpoint.every_epochs": 2}


def test_the_default_model_is_the_studys(workdir):
    model = build_model(784, 10, load_params().train)
    assert model.count_params() == 235_146
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [256, 128, 10]
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.2, 0.5]
    assert dense[-1].activation.__name__ == "softmax"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("trained")
    make_prepared(directory, FOUR_EPOCHS)
    result = run_stage("train", directory)
    return directory, result


def test_train_writes_the_three_model_files_and_they_load(trained):
    directory, _ = trained
    full = keras.models.load_model(directory / "models/model.h5")
    assert full.optimizer is not None and int(full.optimizer.iterations) > 0, "optimizer state is kept, to resume"
    light = keras.models.load_model(directory / "models/model-no-opt.h5", compile=False)
    model = build_model(784, 10, load_params(directory / "params.yaml").train)
    model.load_weights(directory / "models/model.weights.h5")
    x = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    np.testing.assert_allclose(full.predict(x, verbose=0), light.predict(x, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(full.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)
    assert "235,146" in (directory / "models/summary.txt").read_text()


def test_train_logs_every_epoch_with_its_learning_rate(trained):
    directory, _ = trained
    rows = read_history(directory / "metrics/history.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert all(r["learning_rate"] == pytest.approx(0.001) for r in rows)
    assert rows[-1]["val_accuracy"] > 0.5, "the synthetic data is learnable"
    metrics = json.loads((directory / "metrics/train.json").read_text())
    assert metrics["epochs"] == 4
    assert metrics["final"]["val_loss"] == pytest.approx(rows[-1]["val_loss"])


def test_tensorboard_reads_the_scalars_of_every_epoch(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    directory, _ = trained
    rows = read_history(directory / "metrics/history.csv")
    tags = {"train": ("epoch_loss", "epoch_accuracy", "epoch_learning_rate"), "validation": ("epoch_loss",)}
    for run_name, names in tags.items():
        events = EventAccumulator(str(directory / "logs" / run_name))
        events.Reload()
        for name in names:
            scalars = events.Scalars(name)
            assert [s.step for s in scalars] == [0, 1, 2, 3], f"{run_name}/{name}"
            column = ("val_" if run_name == "validation" else "") + name.removeprefix("epoch_")
            assert [s.value for s in scalars] == pytest.approx([row[column] for row in rows], rel=1e-6)


def test_the_jax_stage_imports_neither_tensorflow_nor_matplotlib_and_names_its_device_first(trained):
    directory, result = trained
    assert result.stderr.splitlines()[0] == "train: training on cpu:0 (cpu), backend jax"
    hardware = json.loads((directory / "metrics/train.json").read_text())["hardware"]
    assert hardware == {"backend": "jax", "kind": "cpu", "count": 1, "processes": 1}
    assert imported_by_stage("train", directory) == {"tensorflow": False, "matplotlib": False}


def test_the_resume_state_brings_back_every_variable_and_the_epoch(tmp_path):
    params = load_params(make_prepared(tmp_path, {"train.epochs": 2}) / "params.yaml").train
    x = np.random.default_rng(0).random((64, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(64) % 10]
    trained, fresh = compiled_model(params, x, y), compiled_model(params, x, y)
    trained.fit(x, y, epochs=2, verbose=0)
    saving, restoring = ResumeState(tmp_path / "state"), ResumeState(tmp_path / "state")
    saving.set_model(trained)
    restoring.set_model(fresh)
    values = [[keras.ops.convert_to_numpy(v) for v in callback.variables()] for callback in (saving, restoring)]
    assert not np.array_equal(values[0][0], values[1][0]), "two different models to begin with"

    gate = threading.Event()
    saving.writer.submit(gate.wait)  # hold the writer, so the save below is written only after...
    try:
        saving.on_epoch_end(1)  # after the second epoch
        trained.fit(x, y, epochs=1, verbose=0)  # ...a third epoch has changed every variable
    finally:
        gate.set()  # (a held writer thread would keep pytest from exiting)
    saving.wait()
    restoring.on_train_begin()
    assert restoring.restored_epoch == 2 and int(fresh.optimizer.iterations) == 4
    for restored, saved in zip(restoring.variables(), values[0], strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored), saved)
    restoring.on_train_end()
    assert not (tmp_path / "state").exists(), "deleted when training ends"


def test_a_resume_state_that_cannot_be_written_is_one_clear_error(tmp_path):
    params = load_params(make_prepared(tmp_path) / "params.yaml").train
    model = compiled_model(params, np.zeros((2, 784), np.float32), np.zeros((2, 10), np.float32))
    blocked = tmp_path / "state"
    blocked.write_text("a file where the folder would be")
    saving = ResumeState(blocked)
    saving.set_model(model)
    saving.on_epoch_end(0)  # written in the background: the failure surfaces at the next wait
    with pytest.raises(DataError, match=r"the resume state could not be saved in .*state/ \(.*\): make room"):
        saving.on_train_end()
    assert blocked.read_text() == "a file where the folder would be"


def test_checkpoints_are_looked_at_every_n_epochs_only(trained):
    directory, _ = trained
    rows = read_history(directory / "metrics/history.csv")
    looked_at = [rows[i]["val_loss"] for i in (1, 3)]  # epochs 2 and 4
    allowed = {f"val_loss{v:.3f}.weights.h5" for v in looked_at}
    saved = {p.name for p in (directory / "models/checkpoints").iterdir()}
    assert saved and saved <= allowed


def test_the_same_params_give_the_same_metrics(trained, tmp_path):
    directory, _ = trained
    make_prepared(tmp_path, FOUR_EPOCHS)
    run_stage("train", tmp_path)
    assert (tmp_path / "metrics/history.csv").read_text() == (directory / "metrics/history.csv").read_text()


def test_the_tensorflow_backend_trains_too(tmp_path):
    make_prepared(tmp_path, {"train.backend": "tensorflow", "train.epochs": 2})
    result = run_stage("train", tmp_path)
    assert "backend tensorflow" in result.stderr
    # TensorFlow's C++ start-up notes are filtered at its import (mnist_dvc/core/console.py); nothing else is.
    assert "oneDNN custom operations" not in result.stderr and "absl::InitializeLog" not in result.stderr
    assert len(read_history(tmp_path / "metrics/history.csv")) == 2
    assert (tmp_path / "models/model.h5").is_file()


def test_a_missing_backend_package_is_a_clear_error(tmp_path):
    make_prepared(tmp_path, {"train.backend": "torch"})
    result = run_stage("train", tmp_path, check=False)
    if "error:" not in result.stderr:
        pytest.skip("torch is installed here")
    assert result.returncode == 2
    assert "train.backend = 'torch', but the package 'torch' is not installed" in result.stderr
