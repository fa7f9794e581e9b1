"""Reading and writing the pipeline's files: every write is atomic, every array load refuses pickles."""

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from stages.errors import damaged, missing

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds.

    So a crash or a kill never leaves a half-written file behind a name DVC trusts.
    The temporary name ends with the real name, since Keras picks a format by it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_arrays(directory: Path, arrays: dict[str, np.ndarray]) -> None:
    """One .npy per array: np.save is byte-deterministic, unlike np.savez's zip timestamps."""
    for name, array in arrays.items():
        with atomic_path(Path(directory) / f"{name}.npy") as tmp:
            np.save(tmp, np.ascontiguousarray(array), allow_pickle=False)


def unreadable(exc: Exception, kind: str) -> str:
    """What numpy's refusal of an .npy/.npz file says, in this project's words (never its pickle advice)."""
    if isinstance(exc, ValueError) and ("pickle" in str(exc) or "Object arrays" in str(exc)):
        return "holds pickled Python objects, which are never loaded"
    return f"is not a readable {kind} file ({exc})"


def load_arrays(directory: Path, names: tuple[str, ...], stage: str) -> dict[str, np.ndarray]:
    """The named .npy files of `directory`, written by `stage`; a missing or damaged one is a DataError
    that says how to get it back."""
    arrays = {}
    for name in names:
        path = Path(directory) / f"{name}.npy"
        if not path.exists():
            raise missing(path, stage)
        try:
            arrays[name] = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise damaged(path, unreadable(exc, ".npy"), stage) from None
    return arrays
