"""The tests' fixtures and process-wide settings; the shared helpers are in tests/helpers.py."""

import os
from pathlib import Path

import pytest

# Unit tests import Keras in-process; the default backend of params.yaml, set before any import.
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["DVC_NO_ANALYTICS"] = "1"

from helpers import write_params  # noqa: E402  (after the settings above)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """An empty project directory with the default params, as the current directory."""
    write_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path
