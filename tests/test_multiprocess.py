"""Training as several processes: two real `python -m stages.train` processes on this machine, each in
its own directory (as two hosts would each have a checkout), joined by the engines' own conventions:
KERAS_DISTRIBUTION_* on JAX (CPU collectives through gloo), TF_CONFIG on TensorFlow."""

import json
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
from helpers import THREE_EPOCHS, make_prepared, project_env, run_stage

from mnist_dvc.training.history import read_history

pytestmark = pytest.mark.slow

BACKENDS = ["jax", "tensorflow"]
TWO_PROCESSES = THREE_EPOCHS | {"train.devices": 2}
JOB_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def job_env(backend: str, ports: list[int], index: int) -> dict[str, str]:
    """What a scheduler would set for process `index` of a job on `ports` (one per process)."""
    if backend == "jax":
        return {
            "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{ports[0]}",
            "KERAS_DISTRIBUTION_NUM_PROCESSES": str(len(ports)),
            "KERAS_DISTRIBUTION_PROCESS_ID": str(index),
        }
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}


def start_job(tmp_path, backend: str, overrides: dict, processes: int = 2) -> list:
    """`processes` train stages, each in its own prepared directory; (directory, Popen) per process."""
    ports = [free_port() for _ in range(processes)]
    job = []
    for index in range(processes):
        (tmp_path / f"host{index}").mkdir(parents=True)
        directory = make_prepared(tmp_path / f"host{index}", overrides | {"train.backend": backend})
        with open(directory / "stdout.txt", "w") as out, open(directory / "stderr.txt", "w") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "stages.train"],
                cwd=directory,
                stdout=out,
                stderr=err,
                env=project_env(**job_env(backend, ports, index)),
            )
        job.append((directory, process))
    return job


def wait_all(job, timeout: float = JOB_TIMEOUT_S) -> list[int]:
    deadline = time.monotonic() + timeout
    try:
        return [process.wait(timeout=max(deadline - time.monotonic(), 0.1)) for _, process in job]
    finally:
        for _, process in job:
            if process.poll() is None:
                process.kill()
                process.wait()


def log(directory) -> str:
    return (directory / "stderr.txt").read_text()


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_train_one_model_and_only_process_0_writes(tmp_path, backend):
    started = time.monotonic()
    job = start_job(tmp_path / "jobs", backend, TWO_PROCESSES)
    codes = wait_all(job)
    seconds = time.monotonic() - started
    (chief, _), (other, _) = job
    assert codes == [0, 0], f"{log(chief)}\n---\n{log(other)}"

    for index, directory in enumerate((chief, other)):
        assert f"backend {backend}, process {index} of 2" in log(directory)
        # 800 training samples: 13 global steps of 2 x 32 in every process.
        assert re.search(r"^13/13 ", (directory / "stdout.txt").read_text(), re.M)
    checksums = [re.findall(r"^train: weights checksum (\w+)$", log(d), re.M) for d in (chief, other)]
    assert len(checksums[0]) == 1 and checksums[0] == checksums[1], checksums

    for name in ("models/model.h5", "models/model.weights.h5", "metrics/history.csv", "metrics/train.json"):
        assert (chief / name).is_file(), name
    hardware = json.loads((chief / "metrics/train.json").read_text())["hardware"]
    assert hardware == {"backend": backend, "kind": "cpu", "count": 2, "processes": 2}
    for name in ("models", "metrics", "logs"):
        assert not (other / name).exists(), f"process 1 wrote {name}/"

    # The same config in one process on two (simulated) devices.
    (tmp_path / "single").mkdir()
    single = make_prepared(tmp_path / "single", TWO_PROCESSES | {"train.backend": backend})
    run_stage("train", single, env={"MNIST_CPU_DEVICES": "2"})
    job_acc = read_history(chief / "metrics/history.csv")[-1]["val_accuracy"]
    single_acc = read_history(single / "metrics/history.csv")[-1]["val_accuracy"]
    print(f"{backend}: two processes {seconds:.0f} s; val_accuracy two processes {job_acc:.4f}, one {single_acc:.4f}")
    assert job_acc > 0.9 and abs(job_acc - single_acc) < 0.05


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_killed_process_ends_the_job_with_one_clear_error(tmp_path, backend):
    # Long enough to be killed mid-training: no early stop, many epochs.
    endless = TWO_PROCESSES | {"train.epochs": 500, "train.early_stopping.patience": 1000}
    job = start_job(tmp_path, backend, endless | {"train.reduce_lr.patience": 1000})
    (chief, survivor), (other, victim) = job
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while "Epoch 3/" not in (chief / "stdout.txt").read_text():
        assert survivor.poll() is None and victim.poll() is None, f"{log(chief)}\n---\n{log(other)}"
        assert time.monotonic() < deadline, "the job did not reach epoch 3"
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    codes = wait_all(job)
    seconds = time.monotonic() - killed
    print(f"{backend}: process 0 stopped {seconds:.1f} s after process 1 was killed")

    assert codes == [2, -signal.SIGKILL], log(chief)
    errors = [line for line in log(chief).splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "process 0 of this 2-process training job lost another process" in errors[0]
    assert "Traceback" not in log(chief)
