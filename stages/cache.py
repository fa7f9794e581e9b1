"""The project's cache outside the repository: MNIST downloads and JAX's compiled programs.

MNIST_CACHE_DIR (default ~/.cache/mnist-dvc) is read and checked here only, so a path that is
not a writable directory is one clear error, whichever stage meets it first.
"""

import os
import tempfile
from pathlib import Path

from stages.errors import ParamsError

CACHE_ENV = "MNIST_CACHE_DIR"


def cache_dir(part: str = "") -> Path:
    """A writable folder of the cache (created if missing), or a ParamsError naming MNIST_CACHE_DIR."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mnist-dvc"
    root = Path(os.environ.get(CACHE_ENV) or default)
    folder = root / part if part else root
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        source = f"{CACHE_ENV} = {os.environ[CACHE_ENV]!r}" if os.environ.get(CACHE_ENV) else f"the cache {root}"
        raise ParamsError(
            f"{source} is not a writable directory ({exc.strerror or exc}): point {CACHE_ENV} at a folder "
            "you can write to, e.g. `export MNIST_CACHE_DIR=$HOME/.cache/mnist-dvc`"
        ) from None
    return folder
