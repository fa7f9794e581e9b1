"""Stage 2, preprocess: data/raw/ -> data/prepared/{train,test}.npz (float32 images in [0, 1], one-hot labels).

numpy only: this stage must not import TensorFlow or Keras, so it stays fast and
runs anywhere.
"""

import numpy as np

from mnist_dvc.core.errors import run_stage
from mnist_dvc.core.params import PreprocessParams, load_params
from mnist_dvc.data.mnist import ARRAY_NAMES, check_images
from mnist_dvc.data.prepared import SPLITS, split_path, write_split
from mnist_dvc.data.raw import RAW_DIR, load_arrays


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


def main() -> None:
    params = load_params().preprocess
    raw = load_arrays(RAW_DIR, ARRAY_NAMES, stage="fetch")
    check_images(raw, str(RAW_DIR), params.num_classes)
    prepared = prepare(raw, params)
    for split in SPLITS:
        x, y = prepared[f"x_{split}"], prepared[f"y_{split}"]
        write_split(split_path(split), x, y)
        print(f"preprocess: wrote {split_path(split)} (x {x.shape}, y {y.shape})")


if __name__ == "__main__":
    run_stage(main)
