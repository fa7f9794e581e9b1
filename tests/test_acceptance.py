"""The study itself: real MNIST, default params, the study's accuracy (0.9832) or near it."""

import json
import sys

import pytest
from helpers import copy_project, run

pytestmark = [pytest.mark.slow, pytest.mark.acceptance]


def test_the_default_pipeline_reproduces_the_studys_accuracy(tmp_path):
    project = copy_project(tmp_path)
    result = run([sys.executable, "-m", "dvc", "repro"], project)
    metrics = json.loads((project / "metrics/metrics.json").read_text())
    train = json.loads((project / "metrics/train.json").read_text())
    print(f"test_accuracy {metrics['test_accuracy']}, test_loss {metrics['test_loss']}, epochs {train['epochs']}")
    assert metrics["test_accuracy"] >= 0.98
    assert 10 < train["epochs"] <= 50, "early stopping ends the run, as in the study"
    assert "Running stage 'evaluate'" in result.stdout
