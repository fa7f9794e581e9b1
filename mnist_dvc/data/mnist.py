"""MNIST's facts, and the checks that hold every copy of it to them.

The facts are those of the canonical Keras file (`keras.datasets.mnist`); whichever source
served, the arrays must match them before anything is written.
"""

import hashlib
from dataclasses import dataclass

import numpy as np

from mnist_dvc.core.errors import DataError

ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SHAPE = (28, 28)


@dataclass(frozen=True)
class DatasetFacts:
    train_label_counts: tuple[int, ...]
    test_label_counts: tuple[int, ...]
    first_train_labels: tuple[int, ...]
    first_test_labels: tuple[int, ...]
    x_train_sha256: str
    mean_pixel: tuple[float, float]  # (train, test), to 6 decimals


MNIST = DatasetFacts(
    train_label_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    test_label_counts=(980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
    first_train_labels=(5, 0, 4, 1, 9, 2, 1, 3, 1, 4),
    first_test_labels=(7, 2, 1, 0, 4, 1, 4, 9, 5, 9),
    x_train_sha256="741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    mean_pixel=(33.318421, 33.791224),
)


def array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def describe_facts(arrays: dict[str, np.ndarray]) -> DatasetFacts:
    """The facts of a data set; `check_dataset` compares them with the expected ones."""
    counts = {
        split: tuple(int(n) for n in np.bincount(arrays[f"y_{split}"], minlength=10)) for split in ("train", "test")
    }
    return DatasetFacts(
        train_label_counts=counts["train"],
        test_label_counts=counts["test"],
        first_train_labels=tuple(int(v) for v in arrays["y_train"][:10]),
        first_test_labels=tuple(int(v) for v in arrays["y_test"][:10]),
        x_train_sha256=array_sha256(arrays["x_train"]),
        mean_pixel=(round(float(arrays["x_train"].mean()), 6), round(float(arrays["x_test"].mean()), 6)),
    )


def check_images(arrays: dict[str, np.ndarray], where: str, num_classes: int = 10) -> None:
    """Shapes, dtypes and label range of raw MNIST-like arrays; raise DataError naming `where`."""
    missing = [name for name in ARRAY_NAMES if name not in arrays]
    if missing:
        raise DataError(f"{where}: missing arrays {missing}; expected {list(ARRAY_NAMES)}")
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise DataError(f"{where}: x_{split} is {x.dtype} and y_{split} is {y.dtype}; both must be uint8")
        if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{where}: x_{split} has shape {x.shape}; expected (n, 28, 28)")
        if y.shape != (x.shape[0],):
            raise DataError(f"{where}: y_{split} has shape {y.shape}; expected ({x.shape[0]},), one label per image")
        if y.size and y.max() >= num_classes:
            raise DataError(f"{where}: y_{split} holds label {int(y.max())}; labels must be 0..{num_classes - 1}")


def check_dataset(arrays: dict[str, np.ndarray], where: str, expected: DatasetFacts = MNIST) -> None:
    """Hold a whole downloaded data set to the expected facts, naming the first that differs."""
    check_images(arrays, where)
    actual = describe_facts(arrays)
    for field in DatasetFacts.__dataclass_fields__:
        want, got = getattr(expected, field), getattr(actual, field)
        if want != got:
            raise DataError(f"{where}: {field} is {got}, expected {want}; this is not the MNIST the study used")
