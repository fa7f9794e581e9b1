"""The tests' fixtures and process-wide settings; the shared helpers are in tests/helpers.py."""

import os
from pathlib import Path

import pytest

# Unit tests import Keras in-process; the default backend of params.yaml, set before any import.
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["DVC_NO_ANALYTICS"] = "1"

from helpers import TINY, make_prepared, run_stage, synthetic_mnist, write_params  # noqa: E402  (after the settings)

from mnist_dvc.data.raw import save_arrays  # noqa: E402


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """An empty project directory with the default params, as the current directory."""
    write_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A project after a whole (tiny) run: raw and prepared data, a model, its history and metrics."""
    directory = tmp_path_factory.mktemp("workspace")
    make_prepared(directory, {"train.epochs": 1})
    save_arrays(directory / "data/raw", synthetic_mnist(TINY["preprocess.train_samples"], 200))
    run_stage("train", directory)
    run_stage("evaluate", directory)
    return directory
