"""The project's cache outside the repository: MNIST downloads and JAX's compiled programs.

MNIST_CACHE_DIR (default ~/.cache/mnist-dvc) is read and checked here only.
"""

import os
import sys
import tempfile
from pathlib import Path

from mnist_dvc.core.errors import ParamsError, write_cause

CACHE_ENV = "MNIST_CACHE_DIR"
ELSEWHERE = f", or point {CACHE_ENV} elsewhere"


def cache_dir(part: str = "") -> Path:
    """A writable folder of the cache (created if missing), or a ParamsError naming MNIST_CACHE_DIR."""
    root = _cache_root()
    folder = root / part if part else root
    try:
        _check_writable(folder)
    except OSError as exc:
        raise ParamsError(
            f"{_source(root)} is not a writable directory ({exc.strerror or exc}): point {CACHE_ENV} at a folder "
            "you can write to, e.g. `export MNIST_CACHE_DIR=$HOME/.cache/mnist-dvc`"
        ) from None
    return folder


def download_cache() -> Path | None:
    """The cache's root for downloads; None, with one warning, where it cannot be written for lack of space,
    a read-only file system or permission (fetch then downloads into a temporary folder). A value of
    MNIST_CACHE_DIR that is no folder at all stays a ParamsError: that is a setting to fix."""
    root = _cache_root()
    try:
        _check_writable(root)
    except OSError as exc:
        found = write_cause(exc, root / "download")
        if found is None:
            return cache_dir()  # the ParamsError that names the setting
        warn_uncached(root, found[0])
        return None
    return root


def warn_uncached(root: Path, cause: str) -> None:
    """The one warning of a fetch whose download cache cannot be written."""
    print(
        f"warning: the download cache {root}/ cannot be written: {cause}; downloading into a temporary folder "
        f"instead, removed after this run (free space there{ELSEWHERE}, to keep downloads)",
        file=sys.stderr,
    )


def optional_cache_dir(part: str) -> Path | None:
    """`cache_dir(part)` for a stage that can work without it: None, with one warning, where it is unusable."""
    try:
        return cache_dir(part)
    except ParamsError as exc:
        print(f"warning: {exc}; going on without the {part} cache, so this run compiles everything", file=sys.stderr)
        return None


def _check_writable(folder: Path) -> None:
    """Make `folder` if missing and write a file in it; an OSError where either is refused."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def _cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mnist-dvc"
    return Path(os.environ.get(CACHE_ENV) or default)


def _source(root: Path) -> str:
    return f"{CACHE_ENV} = {os.environ[CACHE_ENV]!r}" if os.environ.get(CACHE_ENV) else f"the cache {root}"
