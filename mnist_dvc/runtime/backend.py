"""The Keras backend: checked, chosen before the first `import keras`, and the engines it does not use kept out."""

import importlib.util
import os
import sys

from mnist_dvc.core.console import TENSORFLOW_NOISE, native_stderr_without
from mnist_dvc.core.errors import ParamsError

BACKEND_PACKAGES = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}
# How each gets into the venv: `make setup` installs JAX; TensorFlow has a lock of its own; torch none.
INSTALL = {"jax": "`make setup`", "tensorflow": "`make setup TENSORFLOW=cpu`", "torch": "`pip install torch`"}


def check_backend(name: str) -> None:
    """Refuse a backend that is not installed, or that differs from the one Keras was already imported with."""
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise ParamsError(f"train.backend = {name!r}, but Keras was already imported with {current!r}")
        return
    if importlib.util.find_spec(BACKEND_PACKAGES[name]) is None:
        installed = [b for b, package in BACKEND_PACKAGES.items() if importlib.util.find_spec(package)]
        choices = f", or choose one of: {', '.join(installed)}" if installed else ""
        raise ParamsError(
            f"train.backend = {name!r}, but the package {BACKEND_PACKAGES[name]!r} is not installed: "
            f"install it ({INSTALL[name]}){choices}"
        )


def block_module(name: str) -> None:
    """Make `import name` fail at once in this process, as on a machine without it.

    Keras imports TensorFlow whenever it is installed, to answer `tf.available` (seeding, HDF5
    saving), and matplotlib for plotting utilities no stage calls: both slow to import, and
    TensorFlow chatters. A None in sys.modules turns such a guarded import into an ImportError.
    """
    sys.modules.setdefault(name, None)


def unblock_module(name: str) -> None:
    """Undo `block_module` (in a child process that inherited the block and needs the module)."""
    if name in sys.modules and sys.modules[name] is None:
        del sys.modules[name]


def import_tensorflow() -> None:
    """Import TensorFlow with its C++ start-up notes filtered from stderr (they are written before its
    log level applies)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_without(TENSORFLOW_NOISE):
        import tensorflow  # noqa: F401
