"""Atomic writes: a file appears under its real name whole, or not at all."""

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnist_dvc.core.errors import write_error

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds.

    So a crash or a kill never leaves a half-written file behind a name DVC trusts.
    The temporary name ends with the real name, since Keras picks a format by it.
    A write the file system refuses (no space, read-only, no permission), here or in the
    block, is a WriteError naming `path`; the temporary file is removed, `path` left as it was.
    """
    path = Path(path)
    with reported_as(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}")
        os.close(fd)
    tmp = Path(tmp)
    try:
        with reported_as(path):
            yield tmp
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def reported_as(path: Path, what_to_do: str = "") -> Iterator[None]:
    """A block that writes `path`: an OSError for lack of space, a read-only file system or permission
    becomes a WriteError naming `path` (core/errors.py, `write_error`); any other error passes."""
    try:
        yield
    except OSError as exc:
        error = write_error(exc, path, what_to_do)
        if error is None:
            raise
        raise error from None


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
