"""data/raw/*.npy: the fetched MNIST arrays, one uint8 .npy per array, written and read only here."""

from pathlib import Path

import numpy as np

from mnist_dvc.core.errors import damaged, missing, unreadable
from mnist_dvc.core.files import atomic_path

RAW_DIR = Path("data/raw")


def save_arrays(directory: Path, arrays: dict[str, np.ndarray]) -> None:
    """One .npy per array: np.save is byte-deterministic, unlike np.savez's zip timestamps."""
    for name, array in arrays.items():
        with atomic_path(Path(directory) / f"{name}.npy") as tmp:
            np.save(tmp, np.ascontiguousarray(array), allow_pickle=False)


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
