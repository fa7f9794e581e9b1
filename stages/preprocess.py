"""Stage 2, preprocess: data/raw/ -> data/prepared/ (float32 images in [0, 1], one-hot labels).

numpy only: this stage must not import TensorFlow or Keras, so it stays fast and
runs anywhere.
"""

from pathlib import Path

import numpy as np

from stages.dataset import ARRAY_NAMES, check_images
from stages.errors import DataError, run_stage
from stages.files import load_arrays, save_arrays
from stages.params import PreprocessParams, load_params

RAW_DIR = Path("data/raw")
PREPARED_DIR = Path("data/prepared")


def flatten_and_scale(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) uint8 -> (n, 784) float32 in [0, 1], as the study's reshape and / 255."""
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Labels -> (n, num_classes) float32, like keras.utils.to_categorical."""
    return np.eye(num_classes, dtype=np.float32)[labels]


def prepare(raw: dict[str, np.ndarray], params: PreprocessParams) -> dict[str, np.ndarray]:
    sizes = {"train": params.train_samples, "test": params.test_samples}
    prepared = {}
    for split, size in sizes.items():
        prepared[f"x_{split}"] = flatten_and_scale(raw[f"x_{split}"][:size])
        prepared[f"y_{split}"] = one_hot(raw[f"y_{split}"][:size], params.num_classes)
    return prepared


def load_prepared(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one split as this stage wrote them, checked so a wrong file fails with its name."""
    arrays = load_arrays(directory, (f"x_{split}", f"y_{split}"))
    x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    if x.dtype != np.float32 or x.ndim != 2:
        raise DataError(f"{directory}/x_{split}.npy is {x.dtype} {x.shape}; expected float32 (n, features)")
    if y.dtype != np.float32 or y.ndim != 2 or len(y) != len(x):
        raise DataError(
            f"{directory}/y_{split}.npy is {y.dtype} {y.shape}; expected float32 one-hot ({len(x)}, classes)"
        )
    return x, y


def main() -> None:
    params = load_params().preprocess
    raw = load_arrays(RAW_DIR, ARRAY_NAMES)
    check_images(raw, str(RAW_DIR), params.num_classes)
    prepared = prepare(raw, params)
    save_arrays(PREPARED_DIR, prepared)
    print(f"preprocess: wrote {PREPARED_DIR}/ ({', '.join(f'{k} {v.shape}' for k, v in prepared.items())})")


if __name__ == "__main__":
    run_stage(main)
