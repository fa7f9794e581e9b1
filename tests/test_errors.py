"""Every stage's every input, damaged: one `error:` line naming the file or key, what is wrong and
what to run; exit code 2; no traceback, no numpy pickle advice; nothing that was there is lost."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, project_env, run_stage, write_params


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00\x93NUMPY not really \xff\xfe" * 40)


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def missing(path: Path) -> None:
    path.unlink()


def pickled(path: Path) -> None:
    objects = np.array([{"code": "anything"}], dtype=object)
    if path.suffix == ".npz":
        np.savez(path, x=objects, y=np.zeros((1, 10), np.float32))
    else:
        np.save(path, objects, allow_pickle=True)


def wrong_members(path: Path) -> None:
    np.savez(path, images=np.zeros((2, 784), np.float32), labels=np.zeros((2, 10), np.float32))


def wrong_columns(path: Path) -> None:
    path.write_text("epoch,acc,loss\n1,0.5,0.7\n")


def not_numbers(path: Path) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1].replace(".", "x", 1)]) + "\n")


DAMAGED_FILES = (
    [("preprocess", "data/raw/x_train.npy", damage) for damage in (garbage, truncated, empty, missing, pickled)]
    + [
        ("train", "data/prepared/train.npz", damage)
        for damage in (garbage, truncated, empty, missing, pickled, wrong_members)
    ]
    + [
        ("evaluate", "data/prepared/test.npz", garbage),
        ("evaluate", "models/model.h5", garbage),
        ("evaluate", "models/model.h5", truncated),
        ("evaluate", "models/model.h5", empty),
        ("evaluate", "models/model.h5", missing),
        ("evaluate", "metrics/history.csv", garbage),
        ("evaluate", "metrics/history.csv", empty),
        ("evaluate", "metrics/history.csv", missing),
        ("evaluate", "metrics/history.csv", wrong_columns),
        ("evaluate", "metrics/history.csv", not_numbers),
        ("train", "params.yaml", garbage),
    ]
)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def run_damaged(workspace: Path, tmp_path: Path, stage: str, env: dict | None = None, damage=None, name=""):
    """Run `stage` on a copy of the workspace with one thing damaged; check it fails the one clear way."""
    project = tmp_path / "project"
    shutil.copytree(workspace, project)
    if damage:
        damage(project / name)
    before = snapshot(project)
    result = run_stage(stage, project, check=False, env=env or {})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "allow_pickle=" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert snapshot(project) == before, "a failed stage changes nothing"
    return errors[0]


@pytest.mark.parametrize(("stage", "name", "damage"), DAMAGED_FILES, ids=lambda v: getattr(v, "__name__", v))
def test_a_damaged_input_file_is_named_with_the_way_back(workspace, tmp_path, stage, name, damage):
    error = run_damaged(workspace, tmp_path, stage, damage=damage, name=name)
    assert name in error, error
    if damage is missing:
        assert "is missing: run the" in error and "`dvc repro`" in error, error
    elif name == "params.yaml":
        assert "is not valid" in error, error
    else:
        restore = f"git checkout -- {name}" if name.startswith("metrics/") else f"dvc checkout -f {name}"
        assert f"restore it with `{restore}` or rebuild it with `dvc repro -f -s " in error, error


@pytest.mark.parametrize(
    ("stage", "variable", "value"),
    [
        ("fetch", "MNIST_CACHE_DIR", "params.yaml"),  # a file, not a directory: nowhere to download to
        ("train", "MNIST_CPU_DEVICES", "two"),
        ("train", "KERAS_DISTRIBUTION_NUM_PROCESSES", "several"),
    ],
)
def test_a_bad_environment_variable_is_named_with_what_to_set(workspace, tmp_path, stage, variable, value):
    if stage == "fetch":
        write_params(workspace, TINY | {"train.epochs": 1})
    error = run_damaged(workspace, tmp_path, stage, env={variable: value})
    assert f"{variable} = {value!r}" in error, error


@pytest.mark.parametrize(
    ("stage", "value"),
    [("train", "params.yaml/cache"), ("evaluate", "params.yaml")],  # under a file: cannot be made; a file
)
def test_a_compile_cache_that_cannot_be_used_is_one_warning_and_the_stage_goes_on(workspace, tmp_path, stage, value):
    project = tmp_path / "project"
    shutil.copytree(workspace, project)
    result = run_stage(stage, project, env={"MNIST_CACHE_DIR": value})
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"MNIST_CACHE_DIR = {value!r} is not a writable directory" in warnings[0], warnings
    assert "going on without the jax-compiled cache" in warnings[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("stage", ["fetch", "preprocess", "train", "evaluate"])
def test_a_stage_run_by_a_python_without_the_projects_packages_says_so(tmp_path, stage):
    """As under a DVC installed globally: this venv's Python without its site-packages (-S)."""
    write_params(tmp_path)
    result = subprocess.run(
        [sys.executable, "-S", "-m", f"stages.{stage}"], cwd=tmp_path, env=project_env(), capture_output=True, text=True
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: this stage runs under {sys.executable} (Python 3."), line
    assert "not the project's environment: it lacks numpy, yaml, pydantic, keras, jax, h5py" in line
    assert "`source .venv/bin/activate`" in line and "`make repro`" in line
    assert list(tmp_path.iterdir()) == [tmp_path / "params.yaml"], "nothing written"
