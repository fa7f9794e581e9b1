"""Interruptions: real processes killed mid-epoch, concurrent runs, and resuming."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    TINY,
    commit_all,
    copy_project,
    dvc,
    make_prepared,
    project_env,
    run_stage,
    stages_run,
    write_params,
)

from mnist_dvc.training.history import read_history
from mnist_dvc.training.resume import STATE_FILE, epochs_saved, write_state

pytestmark = pytest.mark.slow

# Slow enough to be killed mid-run, well before the end: 800 steps an epoch, 30 epochs.
KILLABLE = TINY | {"train.epochs": 30, "train.batch_size": 1, "train.early_stopping.patience": 50}


def as_in_a_terminal() -> None:
    """Ctrl-C's default disposition, as a shell gives its foreground job. A process started in the
    background of a non-interactive shell (a CI runner, say) inherits SIGINT ignored, and Python
    then never turns it into KeyboardInterrupt: the interrupt tests would test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(command: list[str], cwd: Path, **env: str) -> subprocess.Popen:
    """Start a command in its own process group, as a terminal runs a foreground job."""
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=project_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=as_in_a_terminal,
    )


def wait_for_epochs(history: Path, epochs: int, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if history.is_file() and len(history.read_text().splitlines()) > epochs:
            return
        if process.poll() is not None:
            raise AssertionError(f"the run ended before epoch {epochs}:\n{process.stdout.read()}")
        time.sleep(0.05)
    raise AssertionError(f"no epoch {epochs} within {timeout} s")


def kill_mid_epoch(process: subprocess.Popen, history: Path, sig: signal.Signals) -> None:
    wait_for_epochs(history, 2, process)
    time.sleep(0.3)  # into the third epoch
    assert process.poll() is None, "the run ended before the kill: make it longer"
    os.killpg(process.pid, sig)
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0, output


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The killable configuration reproduced without interruption: the results to match."""
    project = copy_project(tmp_path_factory.mktemp("reference"))
    write_params(project, KILLABLE)
    dvc(project, "repro")
    return project


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_a_repro_killed_during_train_is_completed_by_the_next_repro(tmp_path, uninterrupted, sig):
    project = copy_project(tmp_path)
    write_params(project, KILLABLE)
    commit_all(project, "pipeline")
    process = start([sys.executable, "-m", "dvc", "repro"], project)
    kill_mid_epoch(process, project / "metrics/history.csv", sig)

    result = dvc(project, "repro")
    assert stages_run(result.stdout) == ["train", "evaluate"]
    for name in ("metrics/history.csv", "metrics/train.json", "metrics/metrics.json"):
        assert (project / name).read_text() == (uninterrupted / name).read_text(), name
    assert not list(project.rglob(".tmp-*")), "no temporary file is left behind"
    assert stages_run(dvc(project, "repro").stdout) == []


def kill_after_saved_epoch(directory: Path, epoch: int) -> int:
    """Start a training, kill -9 it mid-epoch once epoch `epoch` is saved; the saved epoch."""
    process = start([sys.executable, "-m", "stages.train"], directory)
    deadline = time.monotonic() + 240
    while True:
        found = [saved.parent for saved in (directory / ".train-state").glob(f"*/{STATE_FILE}")]  # not kept/
        if found and epochs_saved(found[0]) >= epoch:
            break
        assert process.poll() is None and time.monotonic() < deadline, "no saved epoch to kill after"
        time.sleep(0.05)
    time.sleep(0.1)  # into the next epoch
    assert process.poll() is None, "training ended before the kill: make it longer"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    return epochs_saved(found[0])


def test_a_killed_run_resumes_from_its_last_saved_epoch(tmp_path):
    # 400 steps an epoch and 12 epochs: the kill lands mid-epoch, long before the end.
    make_prepared(tmp_path, KILLABLE | {"train.resume": True, "train.epochs": 12})
    saved = kill_after_saved_epoch(tmp_path, 2)
    (state,) = (tmp_path / ".train-state").iterdir()

    result = run_stage("train", tmp_path)
    assert f"resuming the run saved in {state.relative_to(tmp_path)}/" in result.stderr
    assert f"Epoch {saved + 1}/12" in result.stdout and f"Epoch {saved}/12" not in result.stdout
    rows = read_history(tmp_path / "metrics/history.csv")
    assert [row["epoch"] for row in rows] == list(range(1, 13)), "the killed run's epochs are kept"
    assert json.loads((tmp_path / "metrics/train.json").read_text())["epochs"] == 12
    assert not state.exists(), "the state is removed once training ends"


def test_a_damaged_saved_state_is_refused_in_one_line_and_left_as_it_was(tmp_path):
    make_prepared(tmp_path, KILLABLE | {"train.resume": True, "train.epochs": 12})
    kill_after_saved_epoch(tmp_path, 1)
    (saved,) = (tmp_path / ".train-state").glob(f"*/{STATE_FILE}")
    saved.write_bytes(saved.read_bytes()[:5000])  # cut short, as a full disk or a bad copy would leave it
    damaged = saved.read_bytes()

    result = run_stage("train", tmp_path, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"error: {saved.relative_to(tmp_path)} cannot be resumed: it is not a readable saved state" in line
    assert "set train.resume: false" in line
    assert "Epoch 1/12" not in result.stdout
    assert saved.read_bytes() == damaged, "left as it was"


def test_a_killed_run_is_kept_when_resume_is_off_and_resumed_later(tmp_path):
    make_prepared(tmp_path, KILLABLE | {"train.epochs": 12})
    saved = kill_after_saved_epoch(tmp_path, 3)  # a long run, killed
    (state,) = (tmp_path / ".train-state").iterdir()
    # Started again without resume, and killed early: the further run is kept, and said so.
    (tmp_path / "metrics/history.csv").unlink()  # as DVC removes it before a run
    process = start([sys.executable, "-m", "stages.train"], tmp_path)
    wait_for_epochs(tmp_path / "metrics/history.csv", 1, process)
    os.killpg(process.pid, signal.SIGKILL)
    output, _ = process.communicate(timeout=60)
    kept = state / "kept"
    assert f"train: kept {kept.relative_to(tmp_path)}/, a killed run of these params ({saved} of 12 epochs)" in (output)
    assert "dvc exp run -S train.resume=true" in output
    assert epochs_saved(kept) == saved

    write_params(tmp_path, KILLABLE | {"train.epochs": 12, "train.resume": True})
    result = run_stage("train", tmp_path)
    assert f"Epoch {saved + 1}/12" in result.stdout and f"Epoch {saved}/12" not in result.stdout
    assert not state.exists(), "kept until a run of the same params finishes, then removed"


def test_resume_with_nothing_saved_for_these_params_says_so_and_starts_from_the_first_epoch(tmp_path):
    other = tmp_path / ".train-state/0123456789ab"
    other.mkdir(parents=True)
    write_state(other, 5, [np.zeros(3)])
    make_prepared(tmp_path, {"train.resume": True})
    result = run_stage("train", tmp_path)
    assert "train.resume is true, but .train-state/ holds no killed run of these params" in result.stderr
    assert "Epoch 1/2" in result.stdout
    assert other.exists(), "another configuration's state is left alone"


# DVC runs a stage's command with `$SHELL -c`. bash replaces itself with the command; dash (/bin/sh here,
# and DVC's choice where SHELL is unset, as under CI runners) stays between `dvc` and the stage.
@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_a_kill_of_the_dvc_process_alone_stops_its_training_with_nothing_half_written(tmp_path, shell):
    project = copy_project(tmp_path)
    write_params(project, KILLABLE)
    commit_all(project, "pipeline")
    process = start([sys.executable, "-m", "dvc", "repro"], project, SHELL=shell)
    wait_for_epochs(project / "metrics/history.csv", 1, process)
    (train,) = [p for p in children(process.pid) if cmdline(p).startswith("python -m stages.train")]
    os.kill(process.pid, signal.SIGKILL)  # dvc alone, not its process group: its stage is orphaned
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{train}").exists() and "stages.train" in cmdline(train):
        assert time.monotonic() < deadline, "the orphaned training is still running"
        time.sleep(0.2)
    assert not list(project.rglob(".tmp-*")), "nothing half-written"
    history = (project / "metrics/history.csv").read_text()
    time.sleep(2)
    assert (project / "metrics/history.csv").read_text() == history, "nothing writes on after the stop"
    output = process.stdout.read()  # the stage wrote on into the dead dvc's output, to its end
    assert "error: training stopped: the process that started this stage" in output, output[-2000:]
    assert len(read_history(project / "metrics/history.csv")) < KILLABLE["train.epochs"], "stopped, not finished"
    result = dvc(project, "repro")  # DVC's lock of the dead run is released; the run completes
    assert stages_run(result.stdout) == ["train", "evaluate"]


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (from /proc), so the test finds the stage process under dvc."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
                    frontier.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_a_second_repro_at_once_fails_with_dvcs_lock_and_the_first_finishes(tmp_path):
    project = copy_project(tmp_path)
    write_params(project, KILLABLE | {"train.epochs": 3})
    commit_all(project, "pipeline")
    first = start([sys.executable, "-m", "dvc", "repro"], project)
    wait_for_epochs(project / "metrics/history.csv", 1, first)
    second = dvc(project, "repro", check=False)
    assert second.returncode != 0
    # DVC's lock on the stage's files (.dvc/tmp/rwlock) names the blocking process.
    assert "is busy, it is being blocked by" in second.stdout + second.stderr
    output, _ = first.communicate(timeout=300)
    assert first.returncode == 0, output
    assert json.loads((project / "metrics/train.json").read_text())["epochs"] == 3
