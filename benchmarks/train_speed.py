"""Training speed and pipeline overhead, measured in one run on one machine.

    python benchmarks/train_speed.py [--epochs 3]      (or: make bench)

(a) the study's plain loop (benchmarks/study_loop.py: Keras 3, TensorFlow backend,
    steps_per_execution=1), (b) the pipeline's train stage with the default params and
    (c) the same on the TensorFlow backend, for the same epochs on the same data/prepared/,
    each in its own process;
then DVC's overhead: a no-op `dvc repro` of this pipeline next to a minimal two-stage
pipeline's no-op, and `dvc repro` after changing evaluate.num_images alone.
Needs data/prepared/ (`dvc repro preprocess`). Prints numbers; asserts nothing.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import copy_project, write_params  # noqa: E402  (the pipeline copy and params the tests use)

PREPARED = ROOT / "data/prepared"
ENV = os.environ | {
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    "PYTHONPATH": str(ROOT),
    "DVC_NO_ANALYTICS": "1",
}


def sh(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return result


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    sh(command, cwd)
    return time.perf_counter() - started


def median_time(command: list[str], cwd: Path, repeat: int = 5) -> float:
    return statistics.median(timed(command, cwd) for _ in range(repeat))


def study_loop(epochs: int) -> dict:
    result = sh([sys.executable, str(ROOT / "benchmarks/study_loop.py"), str(epochs), str(PREPARED)], ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def pipeline_train(epochs: int, work: Path, overrides: dict | None = None) -> dict:
    (work / "data").mkdir(parents=True)
    (work / "data/prepared").symlink_to(PREPARED)
    write_params(work, {"train.epochs": epochs} | (overrides or {}))
    result = sh([sys.executable, "-m", "stages.train"], work)
    seconds = float(re.search(r"in ([\d.]+) s of fit", result.stderr).group(1))
    history = (work / "metrics/history.csv").read_text().splitlines()
    header, last = history[0].split(","), history[-1].split(",")
    return {"seconds_per_epoch": seconds / epochs, "val_accuracy": float(last[header.index("val_accuracy")])}


def git_repo(directory: Path) -> None:
    sh(["git", "init", "-q"], directory)
    sh(
        [
            "git",
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
        directory,
    )


def minimal_pipeline(directory: Path) -> Path:
    directory.mkdir()
    git_repo(directory)
    sh([sys.executable, "-m", "dvc", "init", "-q"], directory)
    (directory / "dvc.yaml").write_text(
        "stages:\n"
        "  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n"
        "  b:\n    cmd: cat a.txt > b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n"
    )
    sh([sys.executable, "-m", "dvc", "repro"], directory)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--skip-dvc", action="store_true", help="time training only")
    args = parser.parse_args()
    if not (PREPARED / "x_train.npy").is_file():
        sys.exit(f"{PREPARED} is missing: run `dvc repro preprocess` (or `make repro`) first")

    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")  # fmt: skip
    dvc = [sys.executable, "-m", "dvc", "repro"]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmp = Path(tmp)
        study = study_loop(args.epochs)
        ours = pipeline_train(args.epochs, tmp / "train")
        ours_tf = pipeline_train(args.epochs, tmp / "train-tf", {"train.backend": "tensorflow"})
        ratio = study["seconds_per_epoch"] / ours["seconds_per_epoch"]
        print(f"\ntraining, {args.epochs} epochs, 48,000 train / 12,000 validation images, batch 32")
        print(f"  (a) study loop (TensorFlow, steps_per_execution=1): {study['seconds_per_epoch']:6.2f} s/epoch, "
              f"val_accuracy {study['val_accuracy']:.4f}")  # fmt: skip
        print(f"  (b) pipeline train stage (default params):          {ours['seconds_per_epoch']:6.2f} s/epoch, "
              f"val_accuracy {ours['val_accuracy']:.4f}")  # fmt: skip
        print(f"  (c) the same, train.backend tensorflow:             {ours_tf['seconds_per_epoch']:6.2f} s/epoch, "
              f"val_accuracy {ours_tf['val_accuracy']:.4f}")  # fmt: skip
        print(f"  speed-up (a)/(b): {ratio:.2f}x")
        if args.skip_dvc:
            return

        floor = minimal_pipeline(tmp / "minimal")
        project = copy_project(tmp)
        write_params(project, {"train.epochs": 1})  # DVC's overhead does not depend on training length
        sh(dvc, project)
        ours_noop, floor_noop = median_time(dvc, project), median_time(dvc, floor)
        write_params(project, {"train.epochs": 1, "evaluate.num_images": 20})
        evaluate_only = timed(dvc, project)
        print("\ndvc repro (median of 5)")
        print(f"  no-op, minimal two-stage pipeline: {floor_noop:6.2f} s")
        print(f"  no-op, this pipeline:              {ours_noop:6.2f} s  ({ours_noop / floor_noop:.2f}x DVC's floor)")
        print(f"  after changing evaluate.num_images (evaluate reruns alone): {evaluate_only:6.2f} s")


if __name__ == "__main__":
    main()
