"""The model files of models/: the study's three saves, and loading one with Keras's safe_mode.

Import this only after `mnist_dvc.runtime.process.start_process`: importing Keras fixes the backend.
"""

import logging
from pathlib import Path

import keras

from mnist_dvc.core.errors import ModelError, damaged, missing
from mnist_dvc.core.files import atomic_path


class _NotLegacyHDF5Warning(logging.Filter):
    """Keras warns on every .h5 save that HDF5 is legacy; the study asks for HDF5, so that one line is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "You are saving your model as an HDF5 file" not in record.getMessage()


logging.getLogger("absl").addFilter(_NotLegacyHDF5Warning())


def save_model_files(model: keras.Model, models_dir: Path) -> None:
    """The study's three files: full model (with optimizer state, to resume), light model, weights."""
    with atomic_path(models_dir / "model.h5") as tmp:
        model.save(tmp)
    with atomic_path(models_dir / "model-no-opt.h5") as tmp:
        model.save(tmp, include_optimizer=False)
    with atomic_path(models_dir / "model.weights.h5") as tmp:
        model.save_weights(tmp)


def load_trusted_model(path: Path, compile: bool = True) -> keras.Model:
    """Load with Keras's safe_mode: a file carrying serialized code (a Lambda) is refused."""
    if not Path(path).is_file():
        raise missing(path, "train")
    try:
        return keras.models.load_model(path, compile=compile, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc):
            raise ModelError(
                f"{path} is refused: it carries serialized Python code (a Lambda layer), which safe_mode will not run"
            ) from None
        raise damaged(path, f"could not be loaded as a Keras model ({exc})", "train") from None
    except (OSError, KeyError, TypeError) as exc:  # h5py: not HDF5, truncated, or missing groups
        raise damaged(path, f"is not a readable Keras model file ({exc})", "train") from None
