"""The one start-up of a stage process that uses Keras (train and evaluate): `start_process`."""

import os
import shutil
import sys
import warnings

from mnist_dvc.core.cache import ELSEWHERE, optional_cache_dir
from mnist_dvc.core.errors import ParamsError
from mnist_dvc.runtime.backend import block_module, check_backend, import_tensorflow

CPU_DEVICES_ENV = "MNIST_CPU_DEVICES"
XLA_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
XLA_DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"
# Of the card, per process, allocated as needed instead of 75% at start: two runs of
# `dvc queue start --jobs 2` (a train beside an evaluate, say) fit on one GPU.
GPU_MEMORY_SHARE = "0.45"
# Below this much free space the compile cache is not used: a write that runs out of room mid-file
# leaves JAX a cut-short entry, which it then fails to read (with a warning) on every later run.
COMPILE_CACHE_MIN_FREE = 64 << 20
_CACHE_WARNINGS = (
    "Error writing persistent compilation cache entry",
    "Error reading persistent compilation cache entry",
)


def start_process(backend: str) -> None:
    """Make this process ready for `import keras` on `backend`. A user's own setting of a variable wins.

    The engines read their settings once, when they start, so the order is: check the backend; the
    XLA and allocator flags and the deterministic ops; JAX's compile cache; then the guards against
    the engines this process does not use, and TensorFlow itself last, when it is the backend.
    """
    check_backend(backend)
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["XLA_FLAGS"] = xla_flags(os.environ.get("XLA_FLAGS", ""), simulated_cpu_devices())
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", GPU_MEMORY_SHARE)
    if backend == "tensorflow":
        os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")  # same params, same machine: same metrics
    if backend == "jax":
        use_jax_compile_cache()
    block_module("matplotlib")  # evaluate draws in a process of its own
    if backend == "tensorflow":
        import_tensorflow()
    else:
        block_module("tensorflow")


def xla_flags(flags: str, cpu_devices: int) -> str:
    """XLA_FLAGS with the simulated CPU devices (if any) and deterministic GPU ops, unless already set."""
    if cpu_devices and XLA_DEVICE_COUNT_FLAG not in flags:
        flags += f" {XLA_DEVICE_COUNT_FLAG}={cpu_devices}"
    if "xla_gpu_deterministic_ops" not in flags:
        flags += f" {XLA_DETERMINISTIC_FLAG}"
    return flags.strip()


def use_jax_compile_cache() -> None:
    """Keep compiled programs on disk, so a rerun (evaluate after a params change, the next sweep run)
    loads them instead of compiling again; the same program gives the same results."""
    folder = optional_cache_dir("jax-compiled")
    if folder is None:
        return
    free = shutil.disk_usage(folder).free
    if free < COMPILE_CACHE_MIN_FREE and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        print(
            f"warning: the compile cache {folder}/ is not used: only {free / 2**20:.1f} MiB left on the device "
            f"holding it; going on without it, so this run compiles everything (free space there{ELSEWHERE})",
            file=sys.stderr,
        )
        return
    warnings.showwarning = _one_cache_warning(warnings.showwarning, folder)
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(folder))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    # A size cap turns on JAX's file lock around each read and write: sweep workers share it safely.
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(1 << 30))


def _one_cache_warning(show, folder):
    """warnings.showwarning, but JAX's warnings of cache entries it could not write or read (one per
    program, with its source line) become one line of ours; the run goes on without those entries."""
    said = False

    def showwarning(message, category, filename, lineno, file=None, line=None):
        nonlocal said
        text = str(message)
        if not text.startswith(_CACHE_WARNINGS):
            return show(message, category, filename, lineno, file, line)
        if not said:
            said = True
            action = "written" if text.startswith(_CACHE_WARNINGS[0]) else "read"
            print(
                f"warning: the compile cache {folder}/ could not be {action} ({text.split(': ', 1)[-1]}); going on, "
                f"compiling what it lacks (free space there{ELSEWHERE}; deleting the folder starts it afresh)",
                file=sys.stderr,
            )
        return None

    return showwarning


def simulated_cpu_devices() -> int:
    """MNIST_CPU_DEVICES=N splits the host CPU into N devices (tests, trying it out); 0 when unset."""
    value = os.environ.get(CPU_DEVICES_ENV, "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) < 1:
        raise ParamsError(f"{CPU_DEVICES_ENV} = {value!r}: give a whole number of CPU devices, at least 1")
    return int(value)
