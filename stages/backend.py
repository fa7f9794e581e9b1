"""Choosing the Keras backend: it must be set before the first `import keras`."""

import importlib.util
import os
import sys

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


def have_tensorboard() -> bool:
    """Keras's TensorBoard callback writes through tf.summary: it needs both packages."""
    return all(importlib.util.find_spec(name) is not None for name in ("tensorflow", "tensorboard"))
