"""Training speed and stage start-up, as whole processes, in one run on one machine (`make bench`).

    python -m benchmarks.train_speed [--short 6] [--long 24]

Each contender runs in its own process on the same data/prepared/ (`dvc repro preprocess` first)
and is timed from start to exit, imports, compilation and saving included:
  (a) the study's plain Keras script (benchmarks/study_loop.py: TensorFlow, steps_per_execution=1),
  (b) the pipeline's train stage (default params, `python -m stages.train`),
  (c) the floor: the same training written by hand in JAX (benchmarks/floor.py).
(a) and (b) at --short epochs give the whole-process speed-up; (b) and (c) at --short and --long
epochs give each further epoch's cost, (long - short) / (long - short epochs), and its ratio.
(d) is the train stage on 80 images (2 training batches an epoch), where an epoch's compiled work is
next to nothing: its further-epoch cost is the host's work between epochs (callbacks, metrics, the
resume save), which every epoch adds to its compiled calls on any device, a GPU included.
Then, in a copy of the pipeline, `dvc repro --no-run-cache` after changing evaluate.num_images.
Prints numbers; asserts nothing.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import ROOT, commit_all, copy_project, project_env, write_params

PREPARED = ROOT / "data/prepared"
HOST_EPOCHS = (10, 110)  # (d): a short and a long run


def timed(command: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds of a whole process, and its result (text output); exits with its output if it fails."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=project_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return seconds, result


def study(epochs: int) -> dict:
    seconds, result = timed([sys.executable, str(ROOT / "benchmarks/study_loop.py"), str(epochs), str(PREPARED)], ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1]) | {"process": seconds}


def stage(epochs: int, work: Path) -> dict:
    (work / "data").mkdir(parents=True)
    (work / "data/prepared").symlink_to(PREPARED)
    write_params(work, {"train.epochs": epochs, "train.early_stopping.patience": epochs})  # run every epoch
    seconds, _ = timed([sys.executable, "-m", "stages.train"], work)
    timed([sys.executable, "-m", "stages.evaluate"], work)  # not timed: for the test accuracy
    metrics = json.loads((work / "metrics/metrics.json").read_text())
    train = json.loads((work / "metrics/train.json").read_text())
    return {
        "process": seconds,
        "val_accuracy": train["final"]["val_accuracy"],
        "test_accuracy": metrics["test_accuracy"],
    }


def host_per_epoch(work: Path, prepared: Path = PREPARED) -> float:
    """(d): seconds per further epoch of the train stage on 80 images, from its own "s of fit" line."""
    from mnist_dvc.data.prepared import read_split, split_path, write_split

    x, y = read_split(split_path("train", prepared))
    write_split(split_path("train", work / "data/prepared"), x[:80], y[:80])
    seconds = {}
    for epochs in HOST_EPOCHS:
        write_params(work, {"train.epochs": epochs, "train.early_stopping.patience": epochs})
        _, result = timed([sys.executable, "-m", "stages.train"], work)
        line = next(line for line in result.stderr.splitlines() if " s of fit " in line)
        seconds[epochs] = float(line.split(" epochs in ")[1].split()[0])
    short, long = HOST_EPOCHS
    return (seconds[long] - seconds[short]) / (long - short)


def floor(epochs: int) -> dict:
    command = [sys.executable, str(ROOT / "benchmarks/floor.py"), str(epochs), str(PREPARED / "train.npz")]
    seconds, result = timed(command, ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1]) | {"process": seconds}


def evaluate_only(work: Path) -> float:
    """`dvc repro --no-run-cache` after changing evaluate.num_images, in a copy of the pipeline."""
    project = copy_project(work)
    write_params(project, {"train.epochs": 1, "fetch.sources": ["pypi"]})  # DVC's cost does not depend on epochs
    commit_all(project, "pipeline")
    timed([sys.executable, "-m", "dvc", "repro"], project)
    times = []
    for images in (20, 21, 22):
        write_params(project, {"train.epochs": 1, "fetch.sources": ["pypi"], "evaluate.num_images": images})
        times.append(timed([sys.executable, "-m", "dvc", "repro", "--no-run-cache"], project)[0])
    return sorted(times)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", type=int, default=6)
    parser.add_argument("--long", type=int, default=24)
    args = parser.parse_args()
    if not (PREPARED / "train.npz").is_file():
        sys.exit(f"{PREPARED}/train.npz is missing: run `dvc repro preprocess` (or `make repro`) first")
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}"
    )
    extra = args.long - args.short
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmp = Path(tmp)
        a = study(args.short)
        b, b_long = stage(args.short, tmp / "b"), stage(args.long, tmp / "b-long")
        c, c_long = floor(args.short), floor(args.long)
        print(f"\nwhole processes, {args.short} epochs (48,000 train / 12,000 validation images, batch 32):")
        print(f"  (a) the study's plain Keras script: {a['process']:6.1f} s  test_accuracy {a['test_accuracy']:.4f}")
        print(f"  (b) the train stage:                {b['process']:6.1f} s  test_accuracy {b['test_accuracy']:.4f}")
        print(f"  (c) the floor, hand-written JAX:    {c['process']:6.1f} s  val_accuracy  {c['val_accuracy']:.4f}")
        print(f"  (a)/(b): {a['process'] / b['process']:.2f}x faster")
        per_b, per_c = (b_long["process"] - b["process"]) / extra, (c_long["process"] - c["process"]) / extra
        print(f"\neach further epoch ({args.long} - {args.short} epochs, whole processes, over {extra}):")
        print(f"  (b) the train stage: {per_b:.3f} s   (c) the floor: {per_c:.3f} s   (b)/(c): {per_b / per_c:.2f}x")
        print(
            f"\n(d) the host's work between epochs (the train stage on 80 images, each further epoch): "
            f"{host_per_epoch(tmp / 'd') * 1000:.1f} ms"
        )
        print(
            f"\ndvc repro --no-run-cache after changing evaluate.num_images (median of 3): {evaluate_only(tmp):.2f} s"
        )


if __name__ == "__main__":
    main()
