"""Choosing the Keras backend: it must be set before the first `import keras`."""

import importlib.util
import os
import sys

from stages.cache import cache_dir
from stages.console import TENSORFLOW_NOISE, native_stderr_without
from stages.errors import ParamsError

BACKEND_PACKAGES = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}


def use_backend(name: str) -> None:
    """Make `name` Keras's backend for this process (params win over a KERAS_BACKEND variable)."""
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise ParamsError(f"train.backend = {name!r}, but Keras was already imported with {current!r}")
        return
    if importlib.util.find_spec(BACKEND_PACKAGES[name]) is None:
        installed = [b for b, package in BACKEND_PACKAGES.items() if importlib.util.find_spec(package)]
        raise ParamsError(
            f"train.backend = {name!r}, but the package {BACKEND_PACKAGES[name]!r} is not installed: "
            f"install it, or choose one of: {', '.join(installed)}"
        )
    os.environ["KERAS_BACKEND"] = name
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    if name != "tensorflow" and "tensorflow" not in sys.modules:
        # Keras asks `tf.available` here and there (seeding, HDF5 saving and loading) and imports
        # TensorFlow to answer whenever it is installed: 4.5 s and a page of C++ logging in a
        # process that never uses it. None in sys.modules makes that import fail at once, so the
        # answer is False, as on a machine without TensorFlow.
        sys.modules["tensorflow"] = None
    if name == "tensorflow" and "tensorflow" not in sys.modules:
        with native_stderr_without(TENSORFLOW_NOISE):
            import tensorflow  # noqa: F401  (imported here so its C++ start-up notes are filtered)
    if name == "jax":
        # Compiled programs are kept on disk, so a rerun (evaluate after a params change, the next
        # sweep run) loads them instead of compiling again; the same program gives the same results.
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache_dir("jax-compiled")))
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
        # A size cap turns on JAX's file lock around each read and write: sweep workers share it safely.
        os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(1 << 30))


def without_plotting() -> None:
    """For a process that draws nothing: Keras imports matplotlib at its own import (0.4 s here), for
    plotting utilities no stage calls. None in sys.modules makes that guarded import fail at once, as
    on a machine without matplotlib. (evaluate draws in a process of its own, forked before this.)"""
    sys.modules.setdefault("matplotlib", None)
