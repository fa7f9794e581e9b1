"""data/prepared/{train,test}.npz: the arrays that train and evaluate read, written and read only here.

Each file holds `x` (float32, n x features, in [0, 1]) and `y` (float32 one-hot, n x classes).
np.savez would stamp each zip entry with the current time, so the bytes (and DVC's hash) would
change on every run and everything downstream would rerun; here the zip is written with a fixed
entry time, order and attributes, so the same arrays give the same bytes on every machine.
Entries are stored, not deflated: 190 MB of floats load faster than they would inflate.
"""

import zipfile
from pathlib import Path

import numpy as np

from mnist_dvc.core.errors import damaged, missing, unreadable
from mnist_dvc.core.files import atomic_path

PREPARED_DIR = Path("data/prepared")
SPLITS = ("train", "test")
MEMBERS = ("x", "y")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def split_path(split: str, directory: Path = PREPARED_DIR) -> Path:
    return Path(directory) / f"{split}.npz"


def write_split(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in zip(MEMBERS, (x, y), strict=True):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.create_system = 3  # Unix, whichever system writes it
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def read_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one split, checked, so that a wrong or damaged file fails with its name and the fix."""
    path = Path(path)
    if not path.is_file():
        raise missing(path, "preprocess")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if sorted(npz.files) != sorted(MEMBERS):
                raise damaged(path, f"holds {sorted(npz.files)}, expected {list(MEMBERS)}", "preprocess")
            x, y = npz["x"], npz["y"]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise damaged(path, unreadable(exc, ".npz"), "preprocess") from None
    if x.dtype != np.float32 or x.ndim != 2:
        raise damaged(path, f"holds x as {x.dtype} {x.shape}; expected float32 (n, features)", "preprocess")
    if y.dtype != np.float32 or y.ndim != 2 or len(y) != len(x):
        raise damaged(
            path, f"holds y as {y.dtype} {y.shape}; expected float32 one-hot ({len(x)}, classes)", "preprocess"
        )
    return x, y
