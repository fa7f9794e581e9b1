"""Sweeps with DVC experiments: a queued grid run by two workers, each run with its own params and metrics."""

import json
import time

import pytest
from helpers import TINY, commit_all, copy_project, dvc, experiments, run, write_params

pytestmark = pytest.mark.slow

LEARNING_RATES = (0.002, 0.005)  # neither is the baseline's, so both really train
QUEUE_TIMEOUT_S = 300


def wait_for_queue(project) -> str:
    """Poll `dvc queue status` until nothing is queued or running; fail with every task's log."""
    deadline = time.monotonic() + QUEUE_TIMEOUT_S
    while True:
        status = dvc(project, "queue", "status").stdout
        tasks = [line.split() for line in status.splitlines()[1:] if line.strip() and not line.startswith("Worker")]
        states = [fields[-1] for fields in tasks]
        if tasks and not any(state in ("Queued", "Running") for state in states):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(3)
    if states != ["Success"] * len(LEARNING_RATES):
        logs = "\n".join(dvc(project, "queue", "logs", fields[1], check=False).stdout for fields in tasks)
        pytest.fail(f"queue did not finish with {len(LEARNING_RATES)} successes:\n{status}\n{logs}")
    return status


def test_a_queued_grid_runs_on_two_workers_and_each_run_keeps_its_own_metrics(tmp_path):
    project = copy_project(tmp_path)
    write_params(project, TINY | {"train.epochs": 1})
    commit_all(project, "pipeline")
    dvc(project, "repro", "preprocess")  # the data once; experiments check it out from the cache
    commit_all(project, "data")

    queued = dvc(project, "exp", "run", "--queue", "-S", f"train.learning_rate={','.join(map(str, LEARNING_RATES))}")
    assert queued.stdout.count("Queued experiment") == len(LEARNING_RATES), queued.stdout
    try:
        started = dvc(project, "queue", "start", "--jobs", "2")
        assert "Started '2' new experiments task queue workers" in started.stdout, started.stdout
        print(wait_for_queue(project))
    finally:
        dvc(project, "queue", "stop", "--kill", check=False)

    runs = experiments(json.loads(dvc(project, "exp", "show", "--json").stdout))
    assert len(runs) == len(LEARNING_RATES), list(runs)
    seen = {}
    for name, data in runs.items():
        learning_rate = data["params"]["params.yaml"]["data"]["train"]["learning_rate"]
        train = data["metrics"]["metrics/train.json"]["data"]
        evaluate = data["metrics"]["metrics/metrics.json"]["data"]
        # Its own metrics: the learning rate its training logged is the one it was queued with.
        assert train["final"]["learning_rate"] == pytest.approx(learning_rate), name
        assert 0 < evaluate["test_accuracy"] <= 1
        seen[learning_rate] = (name, evaluate["test_accuracy"], evaluate["test_loss"])
    print(seen)
    assert sorted(seen) == sorted(LEARNING_RATES)
    assert len({loss for _, _, loss in seen.values()}) == len(LEARNING_RATES), "each run has its own metrics"

    # Keep the best: into the workspace, and as a branch.
    best_name = max(seen.values(), key=lambda run_: run_[1])[0]
    dvc(project, "exp", "apply", best_name)
    applied = json.loads((project / "metrics/metrics.json").read_text())
    assert applied["test_accuracy"] == max(accuracy for _, accuracy, _ in seen.values())
    dvc(project, "exp", "branch", best_name, "sweep-best")
    assert "sweep-best" in run(["git", "branch", "--list", "sweep-best"], project).stdout
