"""Stage 3, train: data/prepared/ -> models/ (the study's DNN, fitted as the study fitted it).

Outputs: models/model.h5 (with optimizer state), models/model-no-opt.h5 (prediction
only), models/model.weights.h5, models/summary.txt, models/checkpoints/ (best
val_loss weights, looked at every `checkpoint.every_epochs`), metrics/history.csv
(per-epoch curves), metrics/train.json, and TensorBoard logs under logs/.
"""

import sys
import time
from pathlib import Path

import numpy as np

from stages.backend import use_backend
from stages.distribute import start_distribution
from stages.errors import DataError, run_stage
from stages.files import load_arrays, write_json, write_text
from stages.params import load_params

PREPARED_DIR = Path("data/prepared")
MODELS_DIR = Path("models")
CHECKPOINT_DIR = MODELS_DIR / "checkpoints"
LOG_DIR = Path("logs")
HISTORY_CSV = Path("metrics/history.csv")
TRAIN_METRICS = Path("metrics/train.json")


def check_prepared(x: np.ndarray, y: np.ndarray, where: Path) -> None:
    if x.dtype != np.float32 or x.ndim != 2:
        raise DataError(f"{where}/x_train.npy is {x.dtype} {x.shape}; expected float32 (n, features)")
    if y.dtype != np.float32 or y.ndim != 2 or len(y) != len(x):
        raise DataError(f"{where}/y_train.npy is {y.dtype} {y.shape}; expected float32 one-hot ({len(x)}, classes)")


def summarize_history(history: dict[str, list[float]], monitor: str) -> dict:
    """What metrics/train.json reports: the final epoch and the best by the checkpoint's monitor."""
    values = history[monitor]
    best = int(np.argmin(values) if monitor.endswith("loss") else np.argmax(values))
    return {
        "epochs": len(values),
        "best_epoch": best + 1,
        f"best_{monitor}": values[best],
        "final": {name: series[-1] for name, series in history.items()},
    }


def main() -> None:
    params = load_params().train
    use_backend(params.backend)
    distribution = start_distribution(params.backend, params.distribute)  # devices are fixed at start-up
    params = distribution.scale(params)  # global batch and learning rate for its replicas
    import keras  # only now: the backend is fixed at import

    from stages.model import build_model, compile_model, make_callbacks, save_model_files, summary_text

    data = load_arrays(PREPARED_DIR, ("x_train", "y_train"))
    x, y = data["x_train"], data["y_train"]
    check_prepared(x, y, PREPARED_DIR)
    distribution.check_samples(len(x), params)

    keras.utils.set_random_seed(params.seed)
    if params.backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()  # same params, same machine: same metrics

    model = build_model(x.shape[1], y.shape[1], params)
    compile_model(model, params)
    distribution.report(model)
    print(summary_text(model), end="")
    print(f"train: backend {keras.backend.backend()}, devices {_devices(keras.backend.backend())}", file=sys.stderr)

    CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    history = model.fit(
        x,
        y,
        batch_size=params.batch_size,
        epochs=params.epochs,
        validation_split=params.validation_split,  # Keras's own: the last fraction, unshuffled
        shuffle=params.shuffle,
        callbacks=make_callbacks(params, HISTORY_CSV, CHECKPOINT_DIR, LOG_DIR),
        verbose=2,
    )
    seconds = time.perf_counter() - started
    epochs = len(history.history["loss"])
    print(f"train: {epochs} epochs in {seconds:.1f} s of fit ({seconds / epochs:.2f} s/epoch)", file=sys.stderr)

    save_model_files(model, MODELS_DIR)
    write_text(MODELS_DIR / "summary.txt", summary_text(model))
    write_json(TRAIN_METRICS, summarize_history(history.history, params.checkpoint.monitor))


def _devices(backend: str) -> str:
    if backend == "jax":
        import jax

        return ", ".join(str(d) for d in jax.devices())
    if backend == "tensorflow":
        import tensorflow as tf

        return ", ".join(d.name for d in tf.config.list_logical_devices())
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


if __name__ == "__main__":
    run_stage(main)
